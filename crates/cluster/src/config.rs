//! How a node joins a cluster: where Redis is, and the timings of liveness.

use std::time::Duration;

/// A node's cluster settings; [`ClusterConfig::new`] has the defaults.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `redis://HOST:PORT[/DB]` (or `redis+unix:///path`).
    pub url: String,
    /// A name for people (`--node-name`): it stands beside the node's id in this
    /// node's log lines, its metrics and the names of its Redis connections
    /// (`CLIENT LIST`). Only a label: the id stays random and unique and is what
    /// Redis keys use, so two nodes with one name are two nodes. Empty: the id alone.
    pub node_name: String,
    /// Every key starts with `{PREFIX}` (one hash tag: all keys in one slot).
    pub prefix: String,
    /// How often a node renews its deadline and looks for dead nodes.
    pub heartbeat: Duration,
    /// How long past its last renewal a node is declared dead and its members are
    /// taken out of their rooms. Members of a killed node leave within about
    /// `ttl + heartbeat`.
    pub node_ttl: Duration,
    /// How much of the log Redis keeps; a node that stalls longer resynchronises.
    pub retention: Duration,
    /// How long a command waits for the cluster before the client is told it is
    /// unavailable (below the 1 s a client may be kept waiting).
    pub op_timeout: Duration,
    /// The least time between two pipelines of the command thread; the reader waits
    /// twice this between two reads that found entries. Redis's cost is per round
    /// trip far more than per command, so this trades a little latency for a lot of
    /// Redis CPU under a trickle of chats (see BENCHMARKS.md); zero sends and reads
    /// as soon as possible.
    pub batch_window: Duration,
    /// How much of each room's chats a node keeps in memory, and how many chats of
    /// a registered room Redis keeps (`--history`).
    pub history: chat_core::HistoryLimit,
}

impl ClusterConfig {
    /// The defaults for `url`: no node name, prefix `chat`, 1 s heartbeat, 3 s time
    /// to live, 60 s of log, 800 ms per command, 1 ms batch window, the core's
    /// default history.
    pub fn new(url: impl Into<String>) -> Self {
        ClusterConfig {
            url: url.into(),
            node_name: String::new(),
            prefix: "chat".to_owned(),
            heartbeat: Duration::from_secs(1),
            node_ttl: Duration::from_secs(3),
            retention: Duration::from_secs(60),
            op_timeout: Duration::from_millis(800),
            batch_window: Duration::from_millis(1),
            history: chat_core::HistoryLimit::default(),
        }
    }

    /// The keys' common prefix, hash tag included.
    pub(crate) fn key_prefix(&self) -> String {
        format!("{{{}}}", self.prefix)
    }
}
