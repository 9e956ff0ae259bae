//! What a server is told at start: address, worker count, accepted formats.
//!
//! Plain data with defaults; the command line (`main.rs`) fills it, tests build it
//! directly with struct-update syntax so new fields do not break them.

use std::net::{Ipv4Addr, SocketAddr};

use chat_proto::WireFormat;

/// Which wire formats a server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FormatPolicy {
    /// Detect each connection's format from its first frame (both on one port).
    #[default]
    Auto,
    /// Speak only this format; other input is answered with an error in it.
    Only(WireFormat),
}

/// Everything a [`crate::Server`] needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Worker threads (at least 1).
    pub workers: usize,
    /// Accepted wire formats.
    pub format: FormatPolicy,
    /// Bytes that may wait in one client's outbound queue; a client that lets more
    /// pile up (it stopped reading) is disconnected.
    pub outbound_cap: usize,
}

/// The default [`ServerConfig::outbound_cap`]: 4 MiB.
pub const DEFAULT_OUTBOUND_CAP: usize = 4 * 1024 * 1024;

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 9000)),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            format: FormatPolicy::Auto,
            outbound_cap: DEFAULT_OUTBOUND_CAP,
        }
    }
}

impl ServerConfig {
    /// A config for tests: loopback, an ephemeral port, `workers` workers.
    pub fn local(workers: usize) -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            workers,
            ..Self::default()
        }
    }
}
