//! Accounts: the `chat_core::AccountBackend` of both brokers, kept by a
//! `chat_core::AccountKeeper` — the embedded store on one node (`kept_accounts.rs`),
//! Redis in a cluster (`chat_cluster`) — with passwords hashed on a thread of its own.
//!
//! * **The table** (in memory, read from the store at start) says which names are
//!   registered, at once, for every `/name`. A registration reserves its key in the
//!   table before anything slow, so two registrations of one name cannot both win.
//! * **Hashing** (Argon2id, the `argon2` crate's defaults: 19 MiB, two passes) takes
//!   tens of milliseconds on purpose; it runs on the `accounts` thread, never on a
//!   worker: the command answers `Pending`, the session is parked, and the outcome
//!   comes back through the transport like a cluster's. The queue is bounded
//!   ([`MAX_JOBS`]).
//! * **Durability**: an account or a new password is answered only once the keeper has
//!   made it durable; a keeper that cannot write refuses registrations with a clear
//!   text (`Unavailable`) and the chat goes on.
//! * **Shared keepers** (a cluster): another node's changes come in through
//!   [`AccountSink`], each possibly twice (this node's own, told back): every one is
//!   idempotent. Two nodes registering one key race in Redis; the loser is answered
//!   `NameTaken`.
//! * **Guessing**: attempts are limited per address and per account ([`PER_ADDRESS`],
//!   [`PER_ACCOUNT`]); a name with no account is checked against a dummy hash, so it
//!   answers the same as a wrong password, in the same time.
//!
//! * **Tokens** (the `resume` extension): 32 random bytes, handed to the client as
//!   hex and kept (in memory and by the keeper) only as their BLAKE2b hash, so a copy
//!   of the store logs nobody in. A token works for [`TOKEN_LIFETIME`]; an account
//!   has at most [`TOKENS_PER_ACCOUNT`] (a new one pushes out the one that expires
//!   first); `/logout` ends the connection's, a password change all of the account's.
//!   Checking one is a hash lookup, on the worker; it is throttled like a login.
//!
//! Passwords are never logged, kept or echoed: only their hashes reach the keeper.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use blake2::{Blake2b, Digest, digest::consts::U32};
use chat_core::{
    AccountBackend, AccountKeeper, AccountRecord, AccountSink, BrokerError, Bucket, JobThread,
    KeepError, Member, Rate, Reply, TokenRecord, Transport,
};

use crate::session::Session;

/// Hashing jobs waiting at most; past that an attempt is refused as too frequent.
pub(crate) const MAX_JOBS: usize = 256;
/// Login and registration attempts per address: 10, then one every 5 s.
pub(crate) const PER_ADDRESS: Rate = Rate {
    per_second: 0.2,
    burst: 10.0,
};
/// Login attempts per account: 10, then one every 10 s.
pub(crate) const PER_ACCOUNT: Rate = Rate {
    per_second: 0.1,
    burst: 10.0,
};
/// Throttle entries kept at most per kind; full buckets are forgotten first.
const MAX_TRACKED: usize = 10_000;
/// How long a login token works: 30 days.
pub(crate) const TOKEN_LIFETIME_MS: u64 = 30 * 24 * 3600 * 1000;
/// Tokens an account has at most (its devices and browsers).
pub(crate) const TOKENS_PER_ACCOUNT: usize = 16;

enum Entry {
    /// Being registered (hashing, then the commit).
    Pending,
    /// Registered.
    Account { name: String, hash: String },
}

enum Job {
    Register {
        key: String,
        name: String,
        password: String,
        to: Arc<Session>,
    },
    Login {
        key: String,
        hash: Option<String>,
        password: String,
        to: Arc<Session>,
    },
    /// A token checked where a shared keeper keeps them (a cluster's Redis): another
    /// node may have handed it out, or ended it, a moment ago.
    Resume {
        key: String,
        hash: String,
        to: Arc<Session>,
    },
    ChangePassword {
        key: String,
        hash: String,
        old: String,
        new: String,
        to: Arc<Session>,
    },
    /// `/logout` with the token whose hash this is, where other nodes read tokens
    /// too: answered once the shared store forgot it.
    Logout { hash: String, to: Arc<Session> },
}

/// The login tokens, by hash and by account.
#[derive(Default)]
struct Tokens {
    /// Token hash → the account's key and when it expires.
    by_hash: HashMap<String, (String, u64)>,
    /// Account key → its tokens' hashes.
    by_account: HashMap<String, Vec<String>>,
}

impl Tokens {
    fn insert(&mut self, hash: String, key: String, expires_ms: u64) {
        // Told twice (a shared keeper's echo): kept once.
        if self.by_hash.contains_key(&hash) {
            return;
        }
        self.by_account
            .entry(key.clone())
            .or_default()
            .push(hash.clone());
        self.by_hash.insert(hash, (key, expires_ms));
    }

    /// Ends every token of the account `key`.
    fn remove_all_of(&mut self, key: &str) {
        for hash in self.by_account.remove(key).unwrap_or_default() {
            self.by_hash.remove(&hash);
        }
    }

    /// Forgets token `hash`; answers whether it was kept.
    fn remove(&mut self, hash: &str) -> bool {
        let Some((key, _)) = self.by_hash.remove(hash) else {
            return false;
        };
        if let Some(hashes) = self.by_account.get_mut(&key) {
            hashes.retain(|h| h != hash);
            if hashes.is_empty() {
                self.by_account.remove(&key);
            }
        }
        true
    }

    /// The token of account `key` that expires first, if it has `limit` or more.
    fn over_limit(&self, key: &str, limit: usize) -> Option<String> {
        let hashes = self.by_account.get(key)?;
        if hashes.len() < limit {
            return None;
        }
        hashes
            .iter()
            .min_by_key(|h| self.by_hash.get(*h).map_or(0, |(_, expires)| *expires))
            .cloned()
    }
}

/// Whether a kept token (its account's key, when it expires) logs in the account
/// `key` at `now`: the right account, not expired.
fn logs_in((kept_key, expires_ms): (&str, u64), key: &str, now: u64) -> bool {
    kept_key == key && expires_ms > now
}

/// The hash a token is kept as (hex of BLAKE2b-256).
fn token_hash(token: &str) -> String {
    hex(&Blake2b::<U32>::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[derive(Default)]
struct Throttle {
    by_address: HashMap<IpAddr, Bucket>,
    by_account: HashMap<String, Bucket>,
}

/// See the module doc.
pub(crate) struct Accounts {
    table: Mutex<HashMap<String, Entry>>,
    keeper: Arc<dyn AccountKeeper>,
    jobs: JobThread<Job>,
    throttle: Mutex<Throttle>,
    tokens: Mutex<Tokens>,
    transport: OnceLock<Arc<dyn Transport<Session>>>,
    /// A hash of nothing anyone knows: a login for a name with no account is checked
    /// against it, so it takes as long as one with a wrong password.
    dummy_hash: String,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn hash(password: &str) -> Option<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .ok()
        .map(|hash| hash.to_string())
}

fn verify(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// The table of `accounts`.
fn table_of(accounts: Vec<AccountRecord>) -> HashMap<String, Entry> {
    accounts
        .into_iter()
        .map(|a| {
            let entry = Entry::Account {
                name: a.name,
                hash: a.password_hash,
            };
            (a.key, entry)
        })
        .collect()
}

/// `tokens`, but those expired already.
fn tokens_of(tokens: Vec<TokenRecord>) -> Tokens {
    let now = now_ms();
    let mut kept = Tokens::default();
    for token in tokens.into_iter().filter(|t| t.expires_ms > now) {
        kept.insert(token.token_hash, token.key, token.expires_ms);
    }
    kept
}

impl Accounts {
    /// The accounts `accounts` and login tokens `tokens` (read from `keeper` at
    /// start), kept by `keeper`.
    pub(crate) fn new(
        keeper: Arc<dyn AccountKeeper>,
        accounts: Vec<AccountRecord>,
        tokens: Vec<TokenRecord>,
    ) -> Arc<Self> {
        Arc::new(Accounts {
            table: Mutex::new(table_of(accounts)),
            keeper,
            jobs: JobThread::new(MAX_JOBS),
            throttle: Mutex::new(Throttle::default()),
            tokens: Mutex::new(tokens_of(tokens)),
            transport: OnceLock::new(),
            dummy_hash: hash("no account has this password").unwrap_or_default(),
        })
    }

    /// Starts the hashing thread; outcomes go back through `transport`.
    pub(crate) fn start(self: &Arc<Self>, transport: Arc<dyn Transport<Session>>) {
        let _ = self.transport.set(transport);
        let me = Arc::clone(self);
        if let Err(e) = self.jobs.start("accounts", move |job| me.work(job)) {
            tracing::error!("cannot start the accounts thread: {e}; accounts are off");
        }
    }

    /// Finishes the queued jobs and stops the thread.
    pub(crate) fn stop(&self) {
        self.jobs.stop();
    }

    fn complete(&self, to: &Arc<Session>, outcome: Result<(), BrokerError>) {
        if let Some(transport) = self.transport.get() {
            transport.complete(to, outcome.map(|()| 0));
        }
    }

    fn work(self: &Arc<Self>, job: Job) {
        match job {
            Job::Register {
                key,
                name,
                password,
                to,
            } => {
                let Some(hash) = hash(&password) else {
                    lock(&self.table).remove(&key);
                    return self.complete(&to, Err(BrokerError::Unavailable));
                };
                let account = AccountRecord {
                    key: key.clone(),
                    name: name.clone(),
                    password_hash: hash.clone(),
                    created_ms: now_ms(),
                };
                // Weak: the keeper's callback must not keep the table alive.
                let me = Arc::downgrade(self);
                self.keeper.create_account(
                    account,
                    Box::new(move |result| {
                        let Some(me) = me.upgrade() else { return };
                        let mut table = lock(&me.table);
                        match result {
                            Ok(()) => {
                                table.insert(key, Entry::Account { name, hash });
                            }
                            Err(e) => {
                                // Lost to another node, whose account may be here
                                // already: only this node's reservation goes.
                                if matches!(table.get(&key), Some(Entry::Pending)) {
                                    table.remove(&key);
                                }
                                if e == KeepError::Failed {
                                    tracing::error!("a registration could not be kept");
                                }
                            }
                        }
                        drop(table);
                        me.complete(
                            &to,
                            result.map_err(|e| match e {
                                KeepError::Taken => BrokerError::NameTaken,
                                KeepError::Failed => BrokerError::Unavailable,
                            }),
                        );
                    }),
                );
            }
            Job::Login {
                key,
                hash,
                password,
                to,
            } => {
                // An account another node registered a moment ago may not have
                // reached this one yet: a shared keeper is asked.
                let hash = hash.or_else(|| {
                    let found = self.keeper.fetch_account(&key)?;
                    let hash = found.password_hash.clone();
                    self.account(found);
                    Some(hash)
                });
                // Always one verification, against the dummy hash when there is no
                // account: the same work, the same answer.
                let right = verify(hash.as_deref().unwrap_or(&self.dummy_hash), &password);
                let outcome = if right && hash.is_some() {
                    Ok(())
                } else {
                    Err(BrokerError::BadCredentials)
                };
                self.complete(&to, outcome);
            }
            Job::Resume { key, hash, to } => {
                let outcome = match self.keeper.fetch_token(&hash) {
                    Some(token) if logs_in((&token.key, token.expires_ms), &key, now_ms()) => {
                        // Its account may be news here too (registered a moment ago
                        // on another node): the login takes the account's name.
                        if !self.is_registered(&key)
                            && let Some(account) = self.keeper.fetch_account(&key)
                        {
                            self.account(account);
                        }
                        self.token(token);
                        Ok(())
                    }
                    _ => Err(BrokerError::BadCredentials),
                };
                self.complete(&to, outcome);
            }
            Job::Logout { hash, to } => {
                let me = Arc::downgrade(self);
                self.keeper.forget_token_then(
                    &hash,
                    Box::new(move |_| {
                        // Forgotten or not (a failing Redis is logged by the keeper),
                        // the client is logged out here.
                        if let Some(me) = me.upgrade() {
                            me.complete(&to, Ok(()));
                        }
                    }),
                );
            }
            Job::ChangePassword {
                key,
                hash: current,
                old,
                new,
                to,
            } => {
                if !verify(&current, &old) {
                    return self.complete(&to, Err(BrokerError::BadCredentials));
                }
                let Some(hash) = hash(&new) else {
                    return self.complete(&to, Err(BrokerError::Unavailable));
                };
                // Weak: the keeper's callback must not keep the table alive.
                let me = Arc::downgrade(self);
                let keeper_key = key.clone();
                let kept_hash = hash.clone();
                self.keeper.set_password(
                    &keeper_key,
                    &kept_hash,
                    Box::new(move |result| {
                        let Some(me) = me.upgrade() else { return };
                        if result.is_ok() {
                            // A new password ends every login kept with a token
                            // (before the client is answered and handed a new one).
                            me.password(&key, &hash);
                        }
                        me.complete(&to, result.map_err(|_| BrokerError::Unavailable));
                    }),
                );
            }
        }
    }

    /// Ends the token whose hash is `hash`, if it is kept.
    fn forget_hash(&self, hash: &str) {
        if lock(&self.tokens).remove(hash) {
            self.keeper.forget_token(hash);
        }
    }

    /// Queues `job`, or refuses it: too many waiting.
    fn queue(&self, job: Job) -> Reply<()> {
        match self.jobs.push(job) {
            Ok(()) => Reply::Pending,
            Err(_) => Reply::Done(Err(BrokerError::Throttled)),
        }
    }

    /// Takes an attempt from `to`'s address (and from the account `key`'s, for a
    /// login), or says it is one too many.
    fn attempt(&self, to: &Session, key: Option<&str>) -> Result<(), BrokerError> {
        let now = Instant::now();
        let mut throttle = lock(&self.throttle);
        let address = to.client_ip();
        let taken = take(&mut throttle.by_address, address, PER_ADDRESS, now).and_then(|()| {
            key.map_or(Ok(()), |key| {
                take(&mut throttle.by_account, key.to_owned(), PER_ACCOUNT, now)
            })
        });
        taken.map_err(|()| {
            tracing::info!(peer = %to.shown_peer(), "account attempts throttled");
            BrokerError::Throttled
        })
    }
}

/// Takes a token from `who`'s bucket (made full if new). Full buckets are forgotten
/// when the map is at its bound; if none is, the attempt is refused (the map does not
/// grow without end).
fn take<K: std::hash::Hash + Eq>(
    buckets: &mut HashMap<K, Bucket>,
    who: K,
    rate: Rate,
    now: Instant,
) -> Result<(), ()> {
    if !buckets.contains_key(&who) && buckets.len() >= MAX_TRACKED {
        buckets.retain(|_, bucket| !bucket.is_full(now));
        if buckets.len() >= MAX_TRACKED {
            return Err(());
        }
    }
    buckets
        .entry(who)
        .or_insert_with(|| Bucket::new(rate, now))
        .take(now)
        .map_err(|_| ())
}

/// Changes learnt from a shared keeper (a cluster's other nodes, and this node's own
/// told back): each idempotent.
impl AccountSink for Accounts {
    fn reset(&self, accounts: Vec<AccountRecord>, tokens: Vec<TokenRecord>) {
        let mut table = table_of(accounts);
        {
            let mut kept = lock(&self.table);
            // Registrations under way here stay reserved: their outcome decides.
            for (key, entry) in kept.drain() {
                if matches!(entry, Entry::Pending) {
                    table.entry(key).or_insert(Entry::Pending);
                }
            }
            *kept = table;
        }
        *lock(&self.tokens) = tokens_of(tokens);
    }

    fn account(&self, account: AccountRecord) {
        lock(&self.table).insert(
            account.key,
            Entry::Account {
                name: account.name,
                hash: account.password_hash,
            },
        );
    }

    fn password(&self, key: &str, password_hash: &str) {
        if let Some(Entry::Account { hash, .. }) = lock(&self.table).get_mut(key) {
            password_hash.clone_into(hash);
        }
        lock(&self.tokens).remove_all_of(key);
    }

    fn token(&self, token: TokenRecord) {
        if token.expires_ms > now_ms() {
            lock(&self.tokens).insert(token.token_hash, token.key, token.expires_ms);
        }
    }

    fn token_gone(&self, token_hash: &str) {
        lock(&self.tokens).remove(token_hash);
    }
}

impl AccountBackend<Session> for Accounts {
    fn is_registered(&self, key: &str) -> bool {
        lock(&self.table).contains_key(key)
    }

    fn registered_name(&self, key: &str) -> Option<String> {
        match lock(&self.table).get(key) {
            Some(Entry::Account { name, .. }) => Some(name.clone()),
            _ => None,
        }
    }

    fn register(&self, member: Member<'_, Session>, key: &str, password: &str) -> Reply<()> {
        if let Err(e) = self.attempt(member.mailbox, None) {
            return Reply::Done(Err(e));
        }
        if self.keeper.failing() {
            return Reply::Done(Err(BrokerError::Unavailable));
        }
        {
            let mut table = lock(&self.table);
            if table.contains_key(key) {
                return Reply::Done(Err(BrokerError::NameTaken));
            }
            table.insert(key.to_owned(), Entry::Pending);
        }
        let reply = self.queue(Job::Register {
            key: key.to_owned(),
            name: member.name.to_owned(),
            password: password.to_owned(),
            to: Arc::clone(member.mailbox),
        });
        if matches!(reply, Reply::Done(_)) {
            lock(&self.table).remove(key);
        }
        reply
    }

    fn login(&self, member: Member<'_, Session>, key: &str, password: &str) -> Reply<()> {
        if let Err(e) = self.attempt(member.mailbox, Some(key)) {
            return Reply::Done(Err(e));
        }
        let hash = match lock(&self.table).get(key) {
            Some(Entry::Account { hash, .. }) => Some(hash.clone()),
            _ => None,
        };
        self.queue(Job::Login {
            key: key.to_owned(),
            hash,
            password: password.to_owned(),
            to: Arc::clone(member.mailbox),
        })
    }

    fn keeps_tokens(&self) -> bool {
        true
    }

    fn issue_token(&self, _member: Member<'_, Session>, key: &str) -> Option<(String, u64)> {
        let mut bytes = [0u8; 32];
        OsRng.try_fill_bytes(&mut bytes).ok()?;
        let token = hex(&bytes);
        let hash = token_hash(&token);
        let expires_ms = now_ms().saturating_add(TOKEN_LIFETIME_MS);
        let pushed_out = {
            let mut tokens = lock(&self.tokens);
            let oldest = tokens.over_limit(key, TOKENS_PER_ACCOUNT);
            if let Some(oldest) = &oldest {
                tokens.remove(oldest);
            }
            tokens.insert(hash.clone(), key.to_owned(), expires_ms);
            oldest
        };
        if let Some(oldest) = pushed_out {
            self.keeper.forget_token(&oldest);
        }
        // Not waited for: a token lost in a crash only means typing the password.
        self.keeper.add_token(TokenRecord {
            token_hash: hash,
            key: key.to_owned(),
            expires_ms,
        });
        Some((token, expires_ms))
    }

    fn resume(&self, member: Member<'_, Session>, key: &str, token: &str) -> Reply<()> {
        if let Err(e) = self.attempt(member.mailbox, Some(key)) {
            return Reply::Done(Err(e));
        }
        let hash = token_hash(token);
        if self.keeper.shared() {
            // The shared store decides: a token ended on another node a moment ago
            // may still be in this node's memory (its news not applied yet).
            return self.queue(Job::Resume {
                key: key.to_owned(),
                hash,
                to: Arc::clone(member.mailbox),
            });
        }
        let found = lock(&self.tokens).by_hash.get(&hash).cloned();
        let now = now_ms();
        match found {
            Some((kept, expires_ms)) if logs_in((&kept, expires_ms), key, now) => {
                Reply::Done(Ok(()))
            }
            Some((_, expires_ms)) if expires_ms <= now => {
                self.forget_hash(&hash);
                Reply::Done(Err(BrokerError::BadCredentials))
            }
            _ => Reply::Done(Err(BrokerError::BadCredentials)),
        }
    }

    fn forget_token(&self, token: &str) {
        self.forget_hash(&token_hash(token));
    }

    fn log_out(&self, member: Member<'_, Session>, token: Option<&str>) -> Reply<()> {
        let Some(token) = token else {
            return Reply::Done(Ok(()));
        };
        if !self.keeper.shared() {
            self.forget_token(token);
            return Reply::Done(Ok(()));
        }
        // Another node may hold the token in memory or look it up in the shared
        // store: answered once the store forgot it (and every node is told).
        let hash = token_hash(token);
        lock(&self.tokens).remove(&hash);
        let job = Job::Logout {
            hash: hash.clone(),
            to: Arc::clone(member.mailbox),
        };
        if self.jobs.push(job).is_ok() {
            return Reply::Pending;
        }
        // Too many jobs waiting: forgotten without waiting for the store.
        self.keeper.forget_token(&hash);
        Reply::Done(Ok(()))
    }

    fn change_password(
        &self,
        member: Member<'_, Session>,
        key: &str,
        old: &str,
        new: &str,
    ) -> Reply<()> {
        if let Err(e) = self.attempt(member.mailbox, Some(key)) {
            return Reply::Done(Err(e));
        }
        let hash = match lock(&self.table).get(key) {
            Some(Entry::Account { hash, .. }) => hash.clone(),
            _ => return Reply::Done(Err(BrokerError::BadCredentials)),
        };
        self.queue(Job::ChangePassword {
            key: key.to_owned(),
            hash,
            old: old.to_owned(),
            new: new.to_owned(),
            to: Arc::clone(member.mailbox),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_logs_in_only_its_account_and_only_until_it_expires() {
        let kept = ("alice", 1_000);
        assert!(logs_in(kept, "alice", 999));
        assert!(!logs_in(kept, "alice", 1_000), "expired");
        assert!(!logs_in(kept, "bob", 999), "another account");
    }

    #[test]
    fn an_account_keeps_a_bounded_number_of_tokens_and_the_first_to_expire_goes() {
        let mut tokens = Tokens::default();
        for n in 0..TOKENS_PER_ACCOUNT as u64 {
            assert_eq!(tokens.over_limit("alice", TOKENS_PER_ACCOUNT), None);
            tokens.insert(format!("h{n}"), "alice".into(), 100 - n);
        }
        let last = format!("h{}", TOKENS_PER_ACCOUNT - 1);
        assert_eq!(
            tokens.over_limit("alice", TOKENS_PER_ACCOUNT),
            Some(last.clone())
        );
        assert!(tokens.remove(&last));
        assert!(!tokens.remove(&last), "once");
        assert_eq!(token_hash("x").len(), 64);
        assert_ne!(token_hash("x"), token_hash("y"));
    }
}
