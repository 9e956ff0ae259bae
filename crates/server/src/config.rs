//! What a server is told at start: address, workers, formats, limits, policies.
//!
//! Plain data with defaults; the command line (`main.rs`) fills it, tests build it
//! directly with struct-update syntax so new fields do not break them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

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

/// Who may stop the server with `/shutdown`.
///
/// The reference server obeys any client, which on a public port is a one-packet
/// denial of service; the default here is clients on the same machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShutdownPolicy {
    /// Clients connecting from a loopback address.
    #[default]
    Local,
    /// Any client (the reference server's behaviour).
    Any,
    /// Nobody: only a signal stops the server.
    None,
}

impl ShutdownPolicy {
    /// Whether a client at `peer` may shut the server down.
    pub fn allows(self, peer: IpAddr) -> bool {
        match self {
            ShutdownPolicy::Any => true,
            ShutdownPolicy::None => false,
            ShutdownPolicy::Local => match peer {
                IpAddr::V4(v4) => v4.is_loopback(),
                // `::1`, or an IPv4 loopback address seen through a dual-stack socket.
                IpAddr::V6(v6) => {
                    v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
                }
            },
        }
    }
}

impl std::fmt::Display for FormatPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormatPolicy::Auto => f.write_str("auto"),
            FormatPolicy::Only(format) => f.write_str(format.name()),
        }
    }
}

impl FormatPolicy {
    /// The format every connection is held to, if one is forced.
    pub fn forced(self) -> Option<WireFormat> {
        match self {
            FormatPolicy::Auto => None,
            FormatPolicy::Only(format) => Some(format),
        }
    }
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
    /// Who may use `/shutdown`.
    pub shutdown_from: ShutdownPolicy,
    /// Connections served at once; more are accepted and closed at once.
    pub max_connections: usize,
    /// Close connections that send nothing for this long (`None`: never; the
    /// reference client sends nothing while its user is quiet).
    pub idle_timeout: Option<Duration>,
    /// Serve Prometheus metrics at `http://ADDR/metrics`.
    pub metrics: Option<SocketAddr>,
}

/// The default [`ServerConfig::outbound_cap`]: 4 MiB.
pub const DEFAULT_OUTBOUND_CAP: usize = 4 * 1024 * 1024;

/// The default [`ServerConfig::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 9000)),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            format: FormatPolicy::Auto,
            outbound_cap: DEFAULT_OUTBOUND_CAP,
            shutdown_from: ShutdownPolicy::Local,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: None,
            metrics: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_policy_by_peer_address() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for local in ["127.0.0.1", "127.5.6.7", "::1", "::ffff:127.0.0.1"] {
            assert!(ShutdownPolicy::Local.allows(ip(local)), "{local}");
            assert!(ShutdownPolicy::Any.allows(ip(local)));
            assert!(!ShutdownPolicy::None.allows(ip(local)));
        }
        for remote in [
            "10.0.0.2",
            "192.168.1.1",
            "8.8.8.8",
            "::ffff:10.0.0.2",
            "fe80::1",
            "0.0.0.0",
        ] {
            assert!(!ShutdownPolicy::Local.allows(ip(remote)), "{remote}");
            assert!(ShutdownPolicy::Any.allows(ip(remote)));
            assert!(!ShutdownPolicy::None.allows(ip(remote)));
        }
    }
}
