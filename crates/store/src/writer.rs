//! The writer thread: the one connection that writes, committing in groups.
//!
//! Writes are queued without blocking ([`Queue::submit`]) and the thread commits them
//! together: the first write of a group opens a commit window ([`StoreOptions::
//! commit_window`](crate::StoreOptions)), and everything queued until it closes is one
//! transaction. A write somebody waits for (an account, a room: not a chat) closes the
//! window at once, so a registration is answered as soon as it is durable and chats
//! never wait longer than the window. Each write is its own savepoint, so one that
//! fails (a constraint) fails alone; a commit that fails fails the group.
//!
//! A `kill -9` loses what is queued and not committed: at most one window of chats
//! (a waited-for write has not been answered yet). With `synchronous=NORMAL` in WAL
//! mode a committed group survives the process; `--sync=full` (`FULL`) also survives
//! the machine losing power, for an fsync per commit.
//!
//! The queue is bounded ([`MAX_QUEUED`]): past it a chat is dropped and counted
//! rather than held in memory without end (the disk is slower than the chat), and a
//! waited-for write is refused.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, Transaction, params};

use crate::StoreError;
use crate::model::Write;

/// Writes waiting at most, beyond which chats are dropped (and counted).
pub const MAX_QUEUED: usize = 100_000;
/// Writes in one transaction at most.
const MAX_BATCH: usize = 10_000;
/// A room's history on disk is trimmed to the limit every this many chats.
const TRIM_EVERY: u64 = 64;

/// Called with a write's result once it is committed (or failed).
pub type Done = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

struct Pending {
    write: Write,
    done: Option<Done>,
}

#[derive(Default)]
struct QueueState {
    writes: VecDeque<Pending>,
    /// When the oldest queued write arrived: its commit window runs from then.
    since: Option<Instant>,
    /// Somebody waits for a queued write: commit now.
    urgent: bool,
    stopping: bool,
}

/// The writes waiting for the writer thread.
#[derive(Default)]
pub(crate) struct Queue {
    state: Mutex<QueueState>,
    ready: Condvar,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").finish_non_exhaustive()
    }
}

/// How the store is doing, for logs and metrics; shared with the writer thread.
#[derive(Debug, Default)]
pub struct Health {
    /// Writes committed.
    pub committed: AtomicU64,
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Writes that failed (a disk error, a constraint).
    pub failed: AtomicU64,
    /// Chats dropped because the queue was full or the store had stopped.
    pub dropped: AtomicU64,
    /// The last commit failed (cleared by the next one that succeeds).
    pub failing: AtomicBool,
}

impl Queue {
    /// Queues `write`; `done` is called once it is committed or failed. Never blocks.
    /// Refused (answered at once through `done`, or counted if it is a chat) when the
    /// queue is full or the store is stopping.
    pub(crate) fn submit(&self, write: Write, done: Option<Done>, health: &Health) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.stopping || state.writes.len() >= MAX_QUEUED {
            drop(state);
            health
                .dropped
                .fetch_add(u64::from(write.is_chat()), Ordering::Relaxed);
            if let Some(done) = done {
                done(Err(StoreError::Backlog));
            }
            return;
        }
        // The writer needs waking only to start a window (the queue was empty), to
        // commit at once (somebody waits) or to take a full batch; otherwise it is
        // asleep until its window closes anyway, and waking it per chat would cost a
        // context switch per chat.
        let wake = state.writes.is_empty() || done.is_some() || state.writes.len() + 1 >= MAX_BATCH;
        state.urgent |= done.is_some();
        state.since.get_or_insert_with(Instant::now);
        state.writes.push_back(Pending { write, done });
        drop(state);
        if wake {
            self.ready.notify_one();
        }
    }

    /// Lets the writer commit what is queued and end.
    pub(crate) fn stop(&self) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stopping = true;
        self.ready.notify_one();
    }

    /// The next group to commit, once its window closed; `None` when stopped and
    /// drained.
    fn next_group(&self, window: Duration) -> Option<Vec<Pending>> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if state.writes.is_empty() {
                if state.stopping {
                    return None;
                }
                state = self
                    .ready
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            let closes = state.since.unwrap_or_else(Instant::now) + window;
            let now = Instant::now();
            if state.urgent || state.stopping || now >= closes || state.writes.len() >= MAX_BATCH {
                break;
            }
            state = self
                .ready
                .wait_timeout(state, closes - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let take = state.writes.len().min(MAX_BATCH);
        let group: Vec<Pending> = state.writes.drain(..take).collect();
        state.urgent = state.writes.iter().any(|p| p.done.is_some());
        state.since = (!state.writes.is_empty()).then(Instant::now);
        Some(group)
    }
}

/// The writer thread's loop: commit groups until stopped and drained.
pub(crate) fn run(
    mut conn: Connection,
    queue: &Queue,
    health: &Health,
    window: Duration,
    history_limit: usize,
) {
    while let Some(group) = queue.next_group(window) {
        let results = commit(&mut conn, &group, history_limit);
        let (mut ok, mut failed) = (0, 0);
        for (pending, result) in group.into_iter().zip(results) {
            match &result {
                Ok(()) => ok += 1,
                Err(_) => failed += 1,
            }
            if let Some(done) = pending.done {
                done(result);
            }
        }
        health.committed.fetch_add(ok, Ordering::Relaxed);
        health.failed.fetch_add(failed, Ordering::Relaxed);
        if ok > 0 {
            health.commits.fetch_add(1, Ordering::Relaxed);
        }
        let was_failing = health
            .failing
            .swap(ok == 0 && failed > 0, Ordering::Relaxed);
        if was_failing && ok > 0 {
            tracing::info!("store: writing again");
        }
    }
}

/// One transaction for `group`: a result per write.
fn commit(
    conn: &mut Connection,
    group: &[Pending],
    history_limit: usize,
) -> Vec<Result<(), StoreError>> {
    let fail_all = |e: rusqlite::Error| {
        tracing::error!("store: commit failed, {} writes lost: {e}", group.len());
        group
            .iter()
            .map(|_| Err(StoreError::Sql(clone_error(&e))))
            .collect()
    };
    let mut tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => return fail_all(e),
    };
    let mut results = Vec::with_capacity(group.len());
    for pending in group {
        results.push(apply_one(&mut tx, &pending.write, history_limit));
    }
    match tx.commit() {
        Ok(()) => results,
        Err(e) => fail_all(e),
    }
}

/// `write`, undone alone if it fails: a single statement is (SQLite backs out a
/// failed statement and the transaction goes on); a write of several statements
/// gets a savepoint of its own. A chat is one statement (its trim, every 64th, is a
/// second that may fail alone: the next trim does its work), and the savepoint's two
/// more statements per chat are most of a chat's cost in the writer.
fn apply_one(
    tx: &mut Transaction<'_>,
    write: &Write,
    history_limit: usize,
) -> Result<(), StoreError> {
    let result = if matches!(write, Write::DeleteRoom { .. }) {
        tx.savepoint().and_then(|sp| {
            apply(&sp, write, history_limit)?;
            sp.commit()
        })
    } else {
        apply(tx, write, history_limit)
    };
    result.map_err(|e| {
        tracing::warn!("store: a write failed: {e}");
        StoreError::Sql(e)
    })
}

fn apply(conn: &Connection, write: &Write, history_limit: usize) -> rusqlite::Result<()> {
    match write {
        Write::CreateAccount(a) => {
            conn.prepare_cached("INSERT INTO accounts (name_key, name, password_hash, created_ms) VALUES (?1, ?2, ?3, ?4)")?.execute(params![a.key, a.name, a.password_hash, a.created_ms as i64])?;
        }
        Write::SetPassword { key, password_hash } => {
            let changed = conn
                .prepare_cached("UPDATE accounts SET password_hash = ?2 WHERE name_key = ?1")?
                .execute(params![key, password_hash])?;
            if changed != 1 {
                return Err(rusqlite::Error::QueryReturnedNoRows);
            }
        }
        Write::CreateSession(s) => {
            conn.prepare_cached("INSERT OR REPLACE INTO sessions (token_hash, name_key, expires_ms) VALUES (?1, ?2, ?3)")?.execute(params![s.token_hash, s.key, s.expires_ms as i64])?;
        }
        Write::DeleteSession { token_hash } => {
            conn.prepare_cached("DELETE FROM sessions WHERE token_hash = ?1")?
                .execute(params![token_hash])?;
        }
        Write::DeleteSessionsOf { key } => {
            conn.prepare_cached("DELETE FROM sessions WHERE name_key = ?1")?
                .execute(params![key])?;
        }
        Write::CreateRoom(r) => {
            conn.prepare_cached(
                "INSERT INTO rooms (id, title, owner_key, created_ms) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![r.id, r.title, r.owner_key, r.created_ms as i64])?;
        }
        Write::SetModeration {
            id,
            owner_key,
            moderation,
        } => {
            conn.prepare_cached("UPDATE rooms SET owner_key = ?2, moderation = ?3 WHERE id = ?1")?
                .execute(params![id, owner_key, moderation])?;
        }
        Write::DeleteRoom { id } => {
            conn.prepare_cached("DELETE FROM chats WHERE room_id = ?1")?
                .execute(params![id])?;
            conn.prepare_cached("DELETE FROM rooms WHERE id = ?1")?
                .execute(params![id])?;
        }
        Write::Chat(c) => {
            conn.prepare_cached("INSERT INTO chats (room_id, seq, time_ms, member, text) VALUES (?1, ?2, ?3, ?4, ?5)")?.execute(params![c.room_id, c.seq as i64, c.time_ms as i64, c.member, c.text])?;
            // The history is bounded on disk as in memory: older lines go (every 64th
            // chat, so the trim costs little; the start reads only the newest).
            let keep_from = c.seq.saturating_sub(history_limit as u64);
            if keep_from > 0 && c.seq % TRIM_EVERY == 0 {
                // Best effort: a failed trim leaves older lines for the next one.
                if let Err(e) = conn
                    .prepare_cached("DELETE FROM chats WHERE room_id = ?1 AND seq <= ?2")
                    .and_then(|mut trim| trim.execute(params![c.room_id, keep_from as i64]))
                {
                    tracing::warn!("store: trimming a room's history failed: {e}");
                }
            }
        }
    }
    Ok(())
}

/// A copy of `e` for each write of a failed group (rusqlite's error is not `Clone`).
fn clone_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::ToSqlConversionFailure(other.to_string().into()),
    }
}
