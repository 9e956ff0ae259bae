//! The file's schema, its version, and moving an older file forward.
//!
//! The version is SQLite's `user_version`. A new file gets [`CURRENT`]; an older one is
//! migrated forward step by step, each step in one transaction; a newer one (written
//! by a later server) or a file that is not a sound SQLite database stops the start
//! with a message, and the file is left exactly as it was.

use rusqlite::Connection;

use crate::StoreError;

/// The schema version this server writes.
pub const CURRENT: i64 = 3;

/// Version 1: accounts, registered rooms, their chats.
const V1: &str = "
CREATE TABLE accounts (
    name_key      TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_ms    INTEGER NOT NULL
) STRICT;
CREATE TABLE rooms (
    id         INTEGER PRIMARY KEY,
    title      TEXT NOT NULL,
    owner_key  TEXT NOT NULL,
    created_ms INTEGER NOT NULL
) STRICT;
CREATE TABLE chats (
    room_id INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    member  TEXT NOT NULL,
    text    TEXT NOT NULL,
    PRIMARY KEY (room_id, seq)
) STRICT, WITHOUT ROWID;
";

/// Version 2: login tokens (the `resume` extension), by the hash of the token (the
/// token itself is never stored).
const V2: &str = "
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    name_key   TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_by_account ON sessions (name_key);
";

/// Version 3: a registered room's moderation (operators, bans, topic), as the
/// server's own text (JSON); `NULL` for none.
const V3: &str = "
ALTER TABLE rooms ADD COLUMN moderation TEXT;
";

/// The steps from each version to the next: `MIGRATIONS[v]` takes version `v` to
/// `v + 1` (version 0 is an empty file).
const MIGRATIONS: &[&str] = &[V1, V2, V3];

/// Checks that `conn` is a sound database of a version this server can use, and
/// brings it to [`CURRENT`].
pub(crate) fn prepare(conn: &mut Connection) -> Result<(), StoreError> {
    let corrupt = |e: rusqlite::Error| StoreError::Corrupt(e.to_string());
    // Reading the header is the first thing that fails on a file that is not a
    // database ("file is not a database").
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(corrupt)?;
    if version > CURRENT {
        return Err(StoreError::NewerVersion {
            found: version,
            supported: CURRENT,
        });
    }
    if version < 0 {
        return Err(StoreError::Corrupt(format!("schema version {version}")));
    }
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |row| row.get(0))
        .map_err(corrupt)?;
    if check != "ok" {
        return Err(StoreError::Corrupt(check));
    }
    for (from, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let to = from as i64 + 1;
        let tx = conn.transaction().map_err(StoreError::Sql)?;
        tx.execute_batch(step).map_err(StoreError::Sql)?;
        tx.pragma_update(None, "user_version", to)
            .map_err(StoreError::Sql)?;
        tx.commit().map_err(StoreError::Sql)?;
        if from > 0 {
            tracing::info!(from, to, "store: schema migrated");
        }
    }
    Ok(())
}
