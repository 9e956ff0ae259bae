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

/// An account as it is kept (a store's row, a cluster's Redis hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    /// The name's key ([`crate::validate::name_key`]).
    pub key: String,
    /// The name as it was registered.
    pub name: String,
    /// Its password's Argon2id hash (PHC string).
    pub password_hash: String,
    /// When it was registered, in ms since the Unix epoch.
    pub created_ms: u64,
}

/// A login token as it is kept: only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The token's hash (hex).
    pub token_hash: String,
    /// The key of the account it logs in.
    pub key: String,
    /// When it stops working, in ms since the Unix epoch.
    pub expires_ms: u64,
}

/// Why a write of accounts did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepError {
    /// Somebody else registered that key first (a cluster's other node).
    Taken,
    /// It could not be written (a disk, or Redis, failing).
    Failed,
}

/// Told once a write is durable, or why it is not.
pub type KeepDone = Box<dyn FnOnce(Result<(), KeepError>) + Send>;

/// Where accounts and tokens are kept for good: the embedded store on one node,
/// Redis in a cluster. Every call only queues: callers are the accounts thread and
/// the workers, neither of which may wait on a disk or the network.
pub trait AccountKeeper: Send + Sync {
    /// Whether writes are failing now (registrations are refused at once).
    fn failing(&self) -> bool;
    /// Keeps a new account; `done` once it is durable, or with [`KeepError::Taken`]
    /// if the key is registered already.
    fn create_account(&self, account: AccountRecord, done: KeepDone);
    /// Replaces account `key`'s password hash, and ends every token of the
    /// account; `done` once that is durable.
    fn set_password(&self, key: &str, password_hash: &str, done: KeepDone);
    /// Keeps a new token.
    fn add_token(&self, token: TokenRecord);
    /// Forgets the token whose hash is `token_hash`.
    fn forget_token(&self, token_hash: &str);
    /// Forgets it and tells `done` once no one can log in with it any more (a
    /// `/logout` is answered then). The default, for a keeper no one else reads:
    /// forgets and tells at once.
    fn forget_token_then(&self, token_hash: &str, done: KeepDone) {
        self.forget_token(token_hash);
        done(Ok(()));
    }

    /// Whether others (a cluster's other nodes) write here too, so that something
    /// this process has not heard of yet may be kept all the same: then a login or
    /// a token this process does not know is looked up ([`Self::fetch_account`],
    /// [`Self::fetch_token`]) before it is refused. The default: no, what this
    /// process holds is everything.
    fn shared(&self) -> bool {
        false
    }

    /// Account `key` as kept now. Blocks (the accounts thread only). The default
    /// keeps nothing this process does not know.
    fn fetch_account(&self, key: &str) -> Option<AccountRecord> {
        let _ = key;
        None
    }

    /// The token whose hash is `token_hash`, as kept now. Blocks, likewise.
    fn fetch_token(&self, token_hash: &str) -> Option<TokenRecord> {
        let _ = token_hash;
        None
    }
}

/// What a shared keeper (a cluster's) tells the accounts of changes it learns from
/// elsewhere — another node's, or this node's own, told again. Every call must be
/// idempotent: the same change may come twice.
pub trait AccountSink: Send + Sync {
    /// Start over from these (a snapshot of everything kept).
    fn reset(&self, accounts: Vec<AccountRecord>, tokens: Vec<TokenRecord>);
    /// An account was registered.
    fn account(&self, account: AccountRecord);
    /// Account `key`'s password is now `password_hash`; its tokens ended.
    fn password(&self, key: &str, password_hash: &str);
    /// A token was handed out.
    fn token(&self, token: TokenRecord);
    /// The token whose hash is `token_hash` ended.
    fn token_gone(&self, token_hash: &str);
}
