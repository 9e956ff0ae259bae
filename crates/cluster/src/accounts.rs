//! Accounts in a cluster: Redis keeps them (`scripts.rs`: `P:accounts`, `P:tokens`),
//! so every node sees the same accounts and login tokens, and a node's restart loses
//! nothing Redis kept.
//!
//! * **Writes** ([`ClusterAccounts`], the `chat_core::AccountKeeper` of a node) run on
//!   a thread of their own with a connection of their own: the callers (the accounts
//!   thread, workers handing out tokens) only queue. Each write is one script that
//!   changes the keys and appends a log entry saying so; a registration answers
//!   `taken` if another node's came first (Redis decides, atomically). A write whose
//!   connection broke is sent once more on a new connection: every script is
//!   idempotent (a registration sent twice finds its own account and answers `ok`).
//! * **Reads**: every node follows the log, so each learns every change (its own
//!   too) and tells its accounts (`entry::AccountChange`, `Shared::tell_accounts`):
//!   logins and token checks stay in memory, with no round trip. A snapshot (at
//!   start, after a resync) reads every account and token anew ([`fetch`]).
//!
//! What it does not do: hash passwords or throttle attempts (the server's accounts
//! do, the same for one node and many), or keep accounts through Redis losing its
//! data (nodes then reset, and the accounts are gone with the rooms; the README says
//! so: run Redis with persistence).

use std::sync::{Arc, Mutex};

use chat_core::{
    AccountKeeper, AccountRecord, JobThread, KeepDone, KeepError, Mailbox, TokenRecord,
};
use redis::{Connection, RedisResult, Value};

use crate::entry::SEP;
use crate::link::{self, Role};
use crate::shared::Shared;
use crate::sync::{bump, lock};
use crate::values::{items, status, text};

/// Writes waiting at most; past that a registration is refused as unavailable and a
/// token is kept on this node only (logged).
const MAX_QUEUED: usize = 1024;

/// Every account and every token Redis keeps now.
pub(crate) fn fetch<M: Mailbox>(
    shared: &Shared<M>,
    link: &mut Connection,
) -> RedisResult<(Vec<AccountRecord>, Vec<TokenRecord>)> {
    let prefix = &shared.prefix;
    let (accounts, tokens): (Value, Value) = redis::pipe()
        .cmd("HGETALL")
        .arg(format!("{prefix}:accounts"))
        .cmd("HGETALL")
        .arg(format!("{prefix}:tokens"))
        .query(link)?;
    let pairs = |value: &Value| -> Vec<(String, String)> {
        let flat = items(value);
        match value {
            // RESP3 answers a map.
            Value::Map(map) => map
                .iter()
                .filter_map(|(k, v)| Some((text(k)?.to_owned(), text(v)?.to_owned())))
                .collect(),
            _ => flat
                .chunks_exact(2)
                .filter_map(|kv| Some((text(&kv[0])?.to_owned(), text(&kv[1])?.to_owned())))
                .collect(),
        }
    };
    let accounts = pairs(&accounts)
        .into_iter()
        .filter_map(|(key, value)| account_of(key, &value))
        .collect();
    let tokens = pairs(&tokens)
        .into_iter()
        .filter_map(|(hash, value)| token_of(hash, &value))
        .collect();
    Ok((accounts, tokens))
}

/// Account `key` from its `P:accounts` value (`name ␟ hash ␟ created ms`).
fn account_of(key: String, value: &str) -> Option<AccountRecord> {
    let mut parts = value.splitn(3, SEP);
    Some(AccountRecord {
        key,
        name: parts.next()?.to_owned(),
        password_hash: parts.next()?.to_owned(),
        created_ms: parts.next()?.parse().ok()?,
    })
}

/// Token `token_hash` from its `P:tokens` value (`key ␟ expires ms`).
fn token_of(token_hash: String, value: &str) -> Option<TokenRecord> {
    let (key, expires) = value.split_once(SEP)?;
    Some(TokenRecord {
        token_hash,
        key: key.to_owned(),
        expires_ms: expires.parse().ok()?,
    })
}

/// Reads every account and token anew for this node's accounts, if it has any.
pub(crate) fn reload<M: Mailbox>(shared: &Shared<M>, link: &mut Connection) -> RedisResult<()> {
    if let Some(sink) = shared.account_sink() {
        let (accounts, tokens) = fetch(shared, link)?;
        sink.reset(accounts, tokens);
    }
    Ok(())
}

enum Job {
    Create(AccountRecord, KeepDone),
    Password {
        key: String,
        hash: String,
        done: KeepDone,
    },
    AddToken(TokenRecord),
    /// A token's hash, and who waits for it to be forgotten (a `/logout`).
    ForgetToken(String, Option<KeepDone>),
}

impl Job {
    /// Tells a waiting caller the write did not happen.
    fn fail(self) {
        match self {
            Job::Create(_, done) | Job::Password { done, .. } => done(Err(KeepError::Failed)),
            Job::ForgetToken(_, Some(done)) => {
                tracing::warn!("cluster: an ended login token was not forgotten in Redis");
                done(Err(KeepError::Failed));
            }
            Job::AddToken(_) | Job::ForgetToken(_, None) => {
                tracing::warn!("cluster: a login token change was not kept in Redis");
            }
        }
    }
}

/// This node's writes of accounts to Redis; see the module doc.
pub struct ClusterAccounts<M> {
    shared: Arc<Shared<M>>,
    jobs: JobThread<Job>,
    /// The accounts thread's connection, for its look-ups (`AccountKeeper::fetch_*`).
    lookups: Mutex<Option<Connection>>,
}

impl<M> std::fmt::Debug for ClusterAccounts<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterAccounts").finish_non_exhaustive()
    }
}

impl<M: Mailbox> ClusterAccounts<M> {
    pub(crate) fn new(shared: Arc<Shared<M>>) -> Arc<Self> {
        Arc::new(ClusterAccounts {
            shared,
            jobs: JobThread::new(MAX_QUEUED),
            lookups: Mutex::new(None),
        })
    }

    /// Starts the writing thread (once).
    pub(crate) fn start(self: &Arc<Self>) {
        let me = Arc::clone(self);
        let mut connection: Option<Connection> = None;
        let started = self.jobs.start("cluster-accounts", move |job| {
            me.write(job, &mut connection)
        });
        if let Err(e) = started {
            tracing::error!("cluster: cannot start the accounts thread: {e}");
        }
    }

    /// Writes what is queued, then stops the thread.
    pub(crate) fn stop(&self) {
        self.jobs.stop();
    }

    fn queue(&self, job: Job) {
        if let Err(job) = self.jobs.push(job) {
            job.fail();
        }
    }

    /// `HGET` of `field` in `P:NAME`, on the look-up connection (opened if need be);
    /// `None` if it is not there or Redis cannot be asked now.
    fn look_up(&self, name: &str, field: &str) -> Option<String> {
        let mut cmd = redis::cmd("HGET");
        cmd.arg(format!("{}:{name}", self.shared.prefix)).arg(field);
        let mut lookups = lock(&self.lookups);
        let reply = self.query(&cmd, &mut lookups)?;
        text(&reply).map(str::to_owned)
    }

    /// Runs `cmd` on `connection` (opened if need be), once more on a new connection
    /// if the first broke; `None` if Redis could not answer.
    fn query(&self, cmd: &redis::Cmd, connection: &mut Option<Connection>) -> Option<Value> {
        let shared = &self.shared;
        for _attempt in 0..2 {
            if connection.is_none() {
                *connection = link::open(
                    &shared.redis,
                    &shared.scripts,
                    Role::Accounts,
                    shared.identity(),
                    shared
                        .config
                        .op_timeout
                        .max(std::time::Duration::from_secs(1)),
                )
                .map_err(|e| tracing::debug!("cluster: accounts connection: {e}"))
                .ok();
            }
            let Some(link) = connection.as_mut() else {
                bump(&shared.stats.redis_errors);
                continue;
            };
            match cmd.query::<Value>(link) {
                Ok(value) => return Some(value),
                Err(e) => {
                    tracing::warn!("cluster: accounts call failed: {e}");
                    bump(&shared.stats.redis_errors);
                    *connection = None;
                }
            }
        }
        None
    }

    /// Sends `job`'s script, once more on a new connection if the first broke.
    fn write(&self, job: Job, connection: &mut Option<Connection>) {
        let shared = &self.shared;
        let (scripts, prefix, node) = (&shared.scripts, shared.prefix.as_str(), shared.node());
        let cmd = match &job {
            Job::Create(account, _) => {
                let mut cmd = scripts.account_create.call(prefix, node, 0);
                cmd.arg(&account.key)
                    .arg(&account.name)
                    .arg(&account.password_hash)
                    .arg(account.created_ms);
                cmd
            }
            Job::Password { key, hash, .. } => {
                let mut cmd = scripts.password.call(prefix, node, 0);
                cmd.arg(key).arg(hash);
                cmd
            }
            Job::AddToken(token) => {
                let mut cmd = scripts.token_add.call(prefix, node, 0);
                cmd.arg(&token.token_hash)
                    .arg(&token.key)
                    .arg(token.expires_ms);
                cmd
            }
            Job::ForgetToken(hash, _) => {
                let mut cmd = scripts.token_del.call(prefix, node, 0);
                cmd.arg(hash);
                cmd
            }
        };
        let Some(reply) = self.query(&cmd, connection) else {
            return job.fail();
        };
        let answer = status(&reply).0;
        let outcome = match answer {
            "ok" => Ok(()),
            "taken" => Err(KeepError::Taken),
            other => {
                tracing::error!(reply = other, "cluster: unexpected accounts reply");
                Err(KeepError::Failed)
            }
        };
        match job {
            Job::Create(_, done) | Job::Password { done, .. } | Job::ForgetToken(_, Some(done)) => {
                done(outcome)
            }
            // A token for an account Redis does not have (`nosuch`) is not kept:
            // nothing to tell anyone.
            Job::AddToken(_) | Job::ForgetToken(_, None) => {}
        }
    }
}

impl<M: Mailbox> AccountKeeper for ClusterAccounts<M> {
    fn failing(&self) -> bool {
        self.shared.ready().is_err()
    }

    fn create_account(&self, account: AccountRecord, done: KeepDone) {
        self.queue(Job::Create(account, done));
    }

    fn set_password(&self, key: &str, password_hash: &str, done: KeepDone) {
        self.queue(Job::Password {
            key: key.to_owned(),
            hash: password_hash.to_owned(),
            done,
        });
    }

    fn add_token(&self, token: TokenRecord) {
        self.queue(Job::AddToken(token));
    }

    fn forget_token(&self, token_hash: &str) {
        self.queue(Job::ForgetToken(token_hash.to_owned(), None));
    }

    fn forget_token_then(&self, token_hash: &str, done: KeepDone) {
        self.queue(Job::ForgetToken(token_hash.to_owned(), Some(done)));
    }

    fn shared(&self) -> bool {
        true
    }

    fn fetch_account(&self, key: &str) -> Option<AccountRecord> {
        let value = self.look_up("accounts", key)?;
        account_of(key.to_owned(), &value)
    }

    fn fetch_token(&self, token_hash: &str) -> Option<TokenRecord> {
        let value = self.look_up("tokens", token_hash)?;
        token_of(token_hash.to_owned(), &value)
    }
}
