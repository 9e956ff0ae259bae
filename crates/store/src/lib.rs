//! The embedded store: accounts, registered rooms and their history in one SQLite
//! file, for a server that runs on one machine with no service to install.
//!
//! [`Store::open`] takes a data directory, holds it (a second server on the same
//! directory is refused), opens or creates `chat.db` in WAL mode, checks it (a file
//! that is not a sound database, or one written by a newer server, stops the start
//! and is never written to), migrates an older schema forward (`schema.rs`), and
//! reads back a [`Snapshot`]. From then on one writer thread (`writer.rs`) makes
//! [`Write`]s durable in group commits; nothing here blocks the caller on the disk.
//! [`backup`] copies the database while the server runs.
//!
//! What it does not do: it decides nothing (who may register, which names clash —
//! the server's account table does, in memory), hashes no passwords, and is not used
//! in cluster mode (Redis keeps the same data there).
//!
//! # Durability
//!
//! A write is durable once its group is committed: a `kill -9` loses at most the
//! chats queued in the last commit window; a write with a `done` callback is answered
//! only after its commit. `SyncMode::Normal` (SQLite's `synchronous=NORMAL` in WAL
//! mode) survives the process dying; `SyncMode::Full` also survives the machine
//! losing power, for an fsync per commit.

#![forbid(unsafe_code)]

mod model;
mod schema;
mod writer;

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, params};

pub use model::{Account, ChatRecord, RegisteredRoom, Session, Snapshot, Write};
pub use schema::CURRENT as SCHEMA_VERSION;
pub use writer::{Done, Health, MAX_QUEUED};

/// The database file's name in the data directory.
pub const DB_FILE: &str = "chat.db";
/// The lock file's name in the data directory.
const LOCK_FILE: &str = "chat.db.lock";

/// How hard a commit insists on reaching the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// Survives the process dying (`kill -9`), not a power loss.
    #[default]
    Normal,
    /// Survives a power loss too: an fsync per commit.
    Full,
}

/// How a store is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// How long a group of writes may wait before its commit (what `kill -9` may
    /// lose of the chats).
    pub commit_window: Duration,
    /// See [`SyncMode`].
    pub sync: SyncMode,
    /// Chats kept per room (older ones are trimmed, on disk as in memory).
    pub history_limit: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            commit_window: Duration::from_millis(100),
            sync: SyncMode::Normal,
            history_limit: 1000,
        }
    }
}

/// Why the store cannot be used.
#[derive(Debug)]
pub enum StoreError {
    /// The data directory or its files cannot be made or opened.
    Io(PathBuf, std::io::Error),
    /// Another process holds the data directory.
    Locked(PathBuf),
    /// The file is not a sound SQLite database (it is left as it is).
    Corrupt(String),
    /// The file was written by a newer server (it is left as it is).
    NewerVersion {
        /// Its schema version.
        found: i64,
        /// The newest this server knows.
        supported: i64,
    },
    /// SQLite failed (a disk error, a full disk, a constraint).
    Sql(rusqlite::Error),
    /// The writer's queue is full, or the store has stopped: the write was not taken.
    Backlog,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io(path, e) => write!(f, "{}: {e}", path.display()),
            StoreError::Locked(path) => write!(
                f,
                "{} is in use by another chat-server (one server per data directory)",
                path.display()
            ),
            StoreError::Corrupt(why) => write!(
                f,
                "the database is damaged or not a chat-server database ({why}); it was not changed: restore a backup, or move it away to start empty"
            ),
            StoreError::NewerVersion { found, supported } => write!(
                f,
                "the database was written by a newer chat-server (schema version {found}; this one knows up to {supported}); it was not changed: run the newer server"
            ),
            StoreError::Sql(e) => write!(f, "database error: {e}"),
            StoreError::Backlog => {
                f.write_str("the store is not taking writes (queue full or stopped)")
            }
        }
    }
}

impl std::error::Error for StoreError {}

/// An open store: the writer thread and the directory it holds.
#[derive(Debug)]
pub struct Store {
    queue: Arc<writer::Queue>,
    health: Arc<Health>,
    thread: Mutex<Option<JoinHandle<()>>>,
    path: PathBuf,
    /// Held while the store is open (an exclusive lock on the lock file).
    _lock: File,
}

impl Store {
    /// Opens (or creates) the store in `dir` and reads it back; see the module doc.
    pub fn open(dir: &Path, options: StoreOptions) -> Result<(Store, Snapshot), StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Io(dir.to_owned(), e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StoreError::Io(lock_path.clone(), e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked(dir.to_owned()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(StoreError::Io(lock_path, e)),
        }
        let path = dir.join(DB_FILE);
        let mut conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        schema::prepare(&mut conn)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(StoreError::Sql)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt(format!("journal mode {mode}, not WAL")));
        }
        let sync = match options.sync {
            SyncMode::Normal => "NORMAL",
            SyncMode::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", sync)
            .map_err(StoreError::Sql)?;
        // A reader (a backup) holding the file must not fail a commit at once.
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(StoreError::Sql)?;
        let snapshot = read_snapshot(&conn, options.history_limit).map_err(StoreError::Sql)?;
        let queue = Arc::new(writer::Queue::default());
        let health = Arc::new(Health::default());
        let thread = {
            let (queue, health) = (Arc::clone(&queue), Arc::clone(&health));
            std::thread::Builder::new()
                .name("store-writer".into())
                .spawn(move || {
                    writer::run(
                        conn,
                        &queue,
                        &health,
                        options.commit_window,
                        options.history_limit,
                    );
                })
                .map_err(|e| StoreError::Io(path.clone(), e))?
        };
        Ok((
            Store {
                queue,
                health,
                thread: Mutex::new(Some(thread)),
                path,
                _lock: lock,
            },
            snapshot,
        ))
    }

    /// Queues `write` (never blocks); `done` is called once it is committed or has
    /// failed — from the writer thread, so it must be quick. A chat that cannot be
    /// queued is dropped and counted in [`Health::dropped`].
    pub fn submit(&self, write: Write, done: Option<Done>) {
        self.queue.submit(write, done, &self.health);
    }

    /// How the writes are going.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Commits what is queued, stops the writer and releases the directory.
    pub fn close(self) {
        self.shutdown();
    }

    /// Commits what is queued and stops the writer; later writes fail (their `done`
    /// is told so). A server calls it as it stops, whoever still holds the store: what
    /// was answered before is on disk before the process exits, whatever order the
    /// process's last references are dropped in.
    pub fn shutdown(&self) {
        self.queue.stop();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn read_snapshot(conn: &Connection, history_limit: usize) -> rusqlite::Result<Snapshot> {
    let accounts = conn
        .prepare(
            "SELECT name_key, name, password_hash, created_ms FROM accounts ORDER BY name_key",
        )?
        .query_map([], |row| {
            Ok(Account {
                key: row.get(0)?,
                name: row.get(1)?,
                password_hash: row.get(2)?,
                created_ms: row.get::<_, i64>(3)? as u64,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let rooms = conn
        .prepare("SELECT id, title, owner_key, created_ms FROM rooms ORDER BY id")?
        .query_map([], |row| {
            Ok(RegisteredRoom {
                id: row.get(0)?,
                title: row.get(1)?,
                owner_key: row.get(2)?,
                created_ms: row.get::<_, i64>(3)? as u64,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut chats = Vec::new();
    let mut newest = conn.prepare(
        "SELECT seq, time_ms, member, text FROM chats WHERE room_id = ?1 ORDER BY seq DESC LIMIT ?2",
    )?;
    for room in &rooms {
        let mut lines = newest
            .query_map(params![room.id, history_limit as i64], |row| {
                Ok(ChatRecord {
                    room_id: room.id,
                    seq: row.get::<_, i64>(0)? as u64,
                    time_ms: row.get::<_, i64>(1)? as u64,
                    member: row.get(2)?,
                    text: row.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        lines.reverse();
        chats.append(&mut lines);
    }
    // Expired tokens are not read back.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let sessions = conn
        .prepare(
            "SELECT token_hash, name_key, expires_ms FROM sessions WHERE expires_ms > ?1 ORDER BY token_hash",
        )?
        .query_map(params![now], |row| {
            Ok(Session {
                token_hash: row.get(0)?,
                key: row.get(1)?,
                expires_ms: row.get::<_, i64>(2)? as u64,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let moderation = conn
        .prepare("SELECT id, moderation FROM rooms WHERE moderation IS NOT NULL ORDER BY id")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Snapshot {
        accounts,
        rooms,
        chats,
        sessions,
        moderation,
    })
}

/// Copies the store in `dir` to the file `to` while a server may be running on it
/// (SQLite's online backup: a consistent copy of the last commit, pages copied in
/// steps so the writer is never held up for long). `to` must not exist.
pub fn backup(dir: &Path, to: &Path) -> Result<(), StoreError> {
    if to.exists() {
        return Err(StoreError::Io(
            to.to_owned(),
            std::io::Error::new(std::io::ErrorKind::AlreadyExists, "will not overwrite it"),
        ));
    }
    let source = Connection::open_with_flags(dir.join(DB_FILE), OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(StoreError::Sql)?;
    source
        .busy_timeout(Duration::from_secs(5))
        .map_err(StoreError::Sql)?;
    let mut target = Connection::open(to).map_err(StoreError::Sql)?;
    let backup = rusqlite::backup::Backup::new(&source, &mut target).map_err(StoreError::Sql)?;
    backup
        .run_to_completion(256, Duration::from_millis(5), None)
        .map_err(StoreError::Sql)?;
    Ok(())
}
