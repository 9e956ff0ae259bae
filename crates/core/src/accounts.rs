//! The seam to accounts (the `accounts` extension, docs/PROTOCOL.md §7.2): who holds
//! which registered name, checked when a name is claimed, and the operations whose
//! work is not the chat core's — hashing passwords (slow on purpose) and keeping
//! accounts (a disk, or a cluster's Redis).
//!
//! A broker offers an [`AccountBackend`] through
//! [`MessageBroker::accounts`](crate::MessageBroker::accounts); without one the
//! extension is not offered. Like the broker's operations, the slow ones answer
//! [`Reply::Pending`] and come back through
//! [`Transport::complete`](crate::Transport::complete): `Ok` when done, or a
//! [`BrokerError`](crate::BrokerError) — [`NameTaken`](crate::BrokerError::NameTaken)
//! for a name registered already, [`BadCredentials`](crate::BrokerError::BadCredentials)
//! for a login or password that does not match (the same for a name that has no
//! account), [`Throttled`](crate::BrokerError::Throttled) for too many attempts,
//! [`Unavailable`](crate::BrokerError::Unavailable) when the accounts cannot be
//! written.
//!
//! The rules a client meets (a password's length, who may register what, what
//! logging out does to a name) are the commands' (`command/account.rs`); a backend
//! decides only what needs its state: taken or not, right or wrong, too often or not.

use crate::broker::{Member, Reply};

/// The fewest characters a password may have.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The most bytes a password may have (the hash's cost must not be the client's to
/// choose, and nobody types more).
pub const MAX_PASSWORD_BYTES: usize = 128;

/// Accounts, kept by the transport's side; see the module doc.
pub trait AccountBackend<M>: Send + Sync {
    /// Whether the name whose key is `key` is registered: nobody but a client logged
    /// in as it may take it (or anything confusable with it: same key).
    fn is_registered(&self, key: &str) -> bool;

    /// The registered name whose key is `key`, as it was registered.
    fn registered_name(&self, key: &str) -> Option<String>;

    /// Registers `member`'s name (its key is `key`) with `password`.
    fn register(&self, member: Member<'_, M>, key: &str, password: &str) -> Reply<()>;

    /// Checks `password` for the account whose key is `key`.
    fn login(&self, member: Member<'_, M>, key: &str, password: &str) -> Reply<()>;

    /// Replaces the password of the account `key` (the member is logged in as it),
    /// if `old` is its password now.
    fn change_password(&self, member: Member<'_, M>, key: &str, old: &str, new: &str) -> Reply<()>;
}

/// Why a password is refused before any account is looked at, or `None`.
pub(crate) fn check_password(password: &str) -> Option<&'static str> {
    if password.len() > MAX_PASSWORD_BYTES {
        Some(crate::texts::PASSWORD_TOO_LONG)
    } else if password.chars().count() < MIN_PASSWORD_CHARS {
        Some(crate::texts::PASSWORD_TOO_SHORT)
    } else {
        None
    }
}
