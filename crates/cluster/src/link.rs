//! Connections to Redis: opened with timeouts, named (so an operator's `CLIENT LIST`
//! tells which node and role each is), with the scripts loaded.
//!
//! Each of a node's threads owns one connection; none is shared, so none needs a
//! lock, and a thread whose connection breaks simply opens another.

use std::time::Duration;

use redis::{Connection, RedisResult, Script};

use crate::scripts;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Which thread a connection serves (its `CLIENT SETNAME`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Role {
    Commands,
    Reader,
    Control,
    Accounts,
}

/// One script: its source (for `SCRIPT LOAD`) and its hash (for `EVALSHA`).
#[derive(Debug)]
pub(crate) struct Lua {
    source: &'static str,
    sha: String,
}

impl Lua {
    fn new(source: &'static str) -> Self {
        Lua {
            source,
            sha: Script::new(source).get_hash().to_owned(),
        }
    }

    /// `EVALSHA` of this script with no keys (see `scripts.rs` on why) and `args`
    /// after the prefix, node and operation number every script takes.
    pub(crate) fn call(&self, prefix: &str, node: u64, seq: u64) -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&self.sha).arg(0).arg(prefix).arg(node).arg(seq);
        cmd
    }
}

/// Every script, loaded on every connection.
#[derive(Debug)]
pub(crate) struct Scripts {
    pub(crate) create: Lua,
    pub(crate) join: Lua,
    pub(crate) leave: Lua,
    pub(crate) rename: Lua,
    pub(crate) claim: Lua,
    pub(crate) release: Lua,
    pub(crate) register: Lua,
    pub(crate) beat: Lua,
    pub(crate) reap: Lua,
    pub(crate) snapshot: Lua,
    pub(crate) delete_room: Lua,
    pub(crate) chat_kept: Lua,
    pub(crate) account_create: Lua,
    pub(crate) password: Lua,
    pub(crate) token_add: Lua,
    pub(crate) token_del: Lua,
    pub(crate) direct: Lua,
    pub(crate) ignore: Lua,
    pub(crate) save_moderation: Lua,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Scripts {
            create: Lua::new(scripts::CREATE),
            join: Lua::new(scripts::JOIN),
            leave: Lua::new(scripts::LEAVE),
            rename: Lua::new(scripts::RENAME),
            claim: Lua::new(scripts::CLAIM),
            release: Lua::new(scripts::RELEASE),
            register: Lua::new(scripts::REGISTER),
            beat: Lua::new(scripts::BEAT),
            reap: Lua::new(scripts::REAP),
            snapshot: Lua::new(scripts::SNAPSHOT),
            delete_room: Lua::new(scripts::DELETE_ROOM),
            chat_kept: Lua::new(scripts::CHAT_KEPT),
            account_create: Lua::new(scripts::ACCOUNT_CREATE),
            password: Lua::new(scripts::PASSWORD),
            token_add: Lua::new(scripts::TOKEN_ADD),
            token_del: Lua::new(scripts::TOKEN_DEL),
            direct: Lua::new(scripts::DIRECT),
            ignore: Lua::new(scripts::IGNORE),
            save_moderation: Lua::new(scripts::SAVE_MODERATION),
        }
    }

    fn all(&self) -> [&Lua; 19] {
        [
            &self.create,
            &self.join,
            &self.leave,
            &self.rename,
            &self.claim,
            &self.release,
            &self.register,
            &self.beat,
            &self.reap,
            &self.snapshot,
            &self.delete_room,
            &self.chat_kept,
            &self.account_create,
            &self.password,
            &self.token_add,
            &self.token_del,
            &self.direct,
            &self.ignore,
            &self.save_moderation,
        ]
    }
}

/// Opens a connection for `role` of node `node` (called `name`, if not empty);
/// replies may take up to `read_timeout`.
pub(crate) fn open(
    client: &redis::Client,
    scripts: &Scripts,
    role: Role,
    (node, name): (u64, &str),
    read_timeout: Duration,
) -> RedisResult<Connection> {
    let mut connection = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
    connection.set_read_timeout(Some(read_timeout))?;
    connection.set_write_timeout(Some(read_timeout))?;
    let role = match role {
        Role::Commands => "commands",
        Role::Reader => "reader",
        Role::Control => "control",
        Role::Accounts => "accounts",
    };
    // `chat-reader-web1:9001-1234` (Redis allows no spaces; the name has none).
    let connection_name = if name.is_empty() {
        format!("chat-{role}-{node}")
    } else {
        format!("chat-{role}-{name}-{node}")
    };
    redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(connection_name)
        .query::<()>(&mut connection)?;
    // `EVALSHA` in a pipeline does not fall back to `EVAL`: load them all now (Redis
    // may have restarted empty since the last connection).
    let mut load = redis::pipe();
    for script in scripts.all() {
        load.cmd("SCRIPT").arg("LOAD").arg(script.source);
    }
    load.query::<()>(&mut connection)?;
    Ok(connection)
}
