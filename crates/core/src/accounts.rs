//! Accounts (the `accounts` extension, docs/PROTOCOL.md §7.2): the password rules,
//! and how the seam to accounts works. [`AccountBackend`](crate::AccountBackend)
//! (in `broker.rs`, beside the broker it belongs to) says who holds which registered
//! name, checked when a name is claimed, and does the operations whose work is not
//! the chat core's — hashing passwords (slow on purpose) and keeping accounts (a
//! disk, or a cluster's Redis).
//!
//! A broker offers an [`AccountBackend`](crate::AccountBackend) through
//! [`MessageBroker::accounts`](crate::MessageBroker::accounts); without one the
//! extension is not offered. Like the broker's operations, the slow ones answer
//! [`Reply::Pending`](crate::Reply::Pending) and come back through
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

/// The fewest characters a password may have.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The most bytes a password may have (the hash's cost must not be the client's to
/// choose, and nobody types more).
pub const MAX_PASSWORD_BYTES: usize = 128;

/// The most bytes a `CSResume` token may have (the server's are 64 hex digits).
pub const MAX_TOKEN_BYTES: usize = 128;

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
