//! What a server is told at start: address, workers, formats, limits, policies.
//!
//! Plain data with defaults; the command line (`main.rs`) fills it, tests build it
//! directly with struct-update syntax so new fields do not break them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use chat_core::FloodLimits;
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
/// denial of service; the default here is the server's own user on the same machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShutdownPolicy {
    /// Clients connecting from this host whose socket belongs to the user the server
    /// runs as, or to root (read from the kernel's TCP tables, as identd does).
    #[default]
    Owner,
    /// Clients connecting from a loopback address, whoever runs them.
    Local,
    /// Any client (the reference server's behaviour).
    Any,
    /// Nobody: only a signal stops the server.
    None,
}

impl ShutdownPolicy {
    /// Whether a client at `peer`, connected to our address `local`, may shut the
    /// server down. For [`ShutdownPolicy::Owner`] this reads the kernel's TCP tables;
    /// `owner_of` is how (a parameter so that the rule can be tested apart).
    pub fn allows(
        self,
        peer: SocketAddr,
        local: SocketAddr,
        owner_of: impl FnOnce(SocketAddr, SocketAddr) -> Option<u32>,
    ) -> bool {
        match self {
            ShutdownPolicy::Any => true,
            ShutdownPolicy::None => false,
            ShutdownPolicy::Local => is_loopback(peer.ip()),
            ShutdownPolicy::Owner => {
                // SAFETY: geteuid has no preconditions and cannot fail.
                let me = unsafe { libc::geteuid() };
                is_loopback(peer.ip())
                    && owner_of(peer, local).is_some_and(|uid| uid == me || uid == 0)
            }
        }
    }
}

/// This machine's host name (`gethostname`), if it can be read and is UTF-8.
pub fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which outlives the call;
    // gethostname writes at most that many bytes.
    let done = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if done != 0 {
        return None;
    }
    // Truncation may leave no NUL: then the whole buffer is the name.
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = std::str::from_utf8(&buf[..len]).ok()?;
    (!name.is_empty()).then(|| name.to_owned())
}

/// Whether `ip` is a loopback address: `127.0.0.0/8`, `::1`, or an IPv4 loopback
/// address seen through a dual-stack socket.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
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
    /// Per-client flood control (`None`: off, for load generators and tests of other
    /// limits).
    pub flood_control: Option<FloodLimits>,
    /// Connections served at once; more are told the server is full and closed.
    pub max_connections: usize,
    /// Connections served at once from one IP address (0: no limit); more are told
    /// why and closed.
    pub max_connections_per_ip: usize,
    /// Whether loopback addresses are exempt from `max_connections_per_ip` (local
    /// tools and a local reverse proxy all share one address).
    pub per_ip_exempt_loopback: bool,
    /// Close connections that send no complete message for this long (`None`: never;
    /// the reference client sends nothing while its user is quiet).
    pub idle_timeout: Option<Duration>,
    /// Longest time from a frame's first byte to its last; a connection that takes
    /// longer (slowloris) is cut off.
    pub frame_timeout: Duration,
    /// Longest time a client with output waiting may take none of it; then it is cut
    /// off as a slow consumer.
    pub write_timeout: Duration,
    /// Bytes of queued output and buffered input the whole server may hold; past it,
    /// the largest queues are cut off and reading pauses.
    pub memory_budget: usize,
    /// `SO_SNDBUF` for each client socket (0: the kernel's default, which grows to
    /// megabytes per socket under load).
    pub send_buffer: usize,
    /// Serve Prometheus metrics at `http://ADDR/metrics`.
    pub metrics: Option<SocketAddr>,
    /// Serve the web client (HTTP `GET /`, WebSocket `/ws`) on this address.
    pub web: Option<SocketAddr>,
    /// Which names the web port answers to besides its own address, localhost and
    /// loopback (`Host`; others get 421), and which pages besides those of the allowed
    /// names may open the web client's WebSocket (`Origin`).
    pub web_policy: WebPolicy,
    /// The certificate and key for TLS: with them the web port speaks only
    /// `https://` and `wss://`, and [`ServerConfig::tls_bind`] can be served.
    pub tls: Option<std::sync::Arc<crate::tls::TlsAcceptor>>,
    /// A TLS listener for the chat protocol (both formats), beside the plain one (which
    /// stays: the reference client speaks only plain TCP); port 0 picks a free one.
    /// Needs [`ServerConfig::tls`].
    pub tls_bind: Option<SocketAddr>,
    /// The embedded store (accounts, registered rooms, history), in this data
    /// directory; `None` runs with nothing kept (and no accounts).
    pub store: Option<StoreSettings>,
    /// How much of each room's recent chats is kept for the `history` extension
    /// (`--history` lines).
    pub history: chat_core::HistoryLimit,
    /// A cluster node's name (`--node-name`), shown by the metrics as
    /// `chat_cluster_node_info{node_name="…"} 1`; `None` outside a cluster.
    pub node_name: Option<String>,
}

/// Where and how the embedded store is kept (`--data-dir`, `--sync`,
/// `--commit-window`, `--history`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    /// The data directory.
    pub dir: std::path::PathBuf,
    /// Commit window, sync mode, history kept per room.
    pub options: chat_store::StoreOptions,
}

/// The default [`ServerConfig::outbound_cap`]: 4 MiB.
pub const DEFAULT_OUTBOUND_CAP: usize = 4 * 1024 * 1024;

/// The default [`ServerConfig::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// The default [`ServerConfig::max_connections_per_ip`]: enough for a classroom
/// behind one NAT address, little enough that one host cannot take more than 1 % of
/// the default connection slots.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 100;

/// The default [`ServerConfig::frame_timeout`].
pub const DEFAULT_FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// The default [`ServerConfig::write_timeout`] (NATS's write deadline is similar).
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The default [`ServerConfig::memory_budget`]: 1 GiB, well under this machine's
/// memory and far above what 10,000 ordinary clients need.
pub const DEFAULT_MEMORY_BUDGET: usize = 1 << 30;

/// The default [`ServerConfig::send_buffer`]: 64 KiB (the kernel doubles it for its
/// own bookkeeping).
pub const DEFAULT_SEND_BUFFER: usize = 64 * 1024;

/// The default [`ServerConfig::workers`]: one per core but the reactor's, at least
/// one. The reactor is a busy thread of its own under load (it reads every frame and
/// sleeps and wakes with every poll round); a worker for every core as well puts
/// one more runnable thread than cores on the machine, and the scheduler's delays
/// then show in the tail. Measured on 2 cores beside the load generator
/// (BENCHMARKS.md, "Beside the peers"): 100 rooms × 10 at 75,000 chats/s, p99 41 ms
/// with one worker against 413 ms with two, at less CPU.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 9000)),
            workers: default_workers(),
            format: FormatPolicy::Auto,
            outbound_cap: DEFAULT_OUTBOUND_CAP,
            shutdown_from: ShutdownPolicy::Owner,
            flood_control: Some(FloodLimits::default()),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            per_ip_exempt_loopback: true,
            idle_timeout: None,
            frame_timeout: DEFAULT_FRAME_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            send_buffer: DEFAULT_SEND_BUFFER,
            metrics: None,
            web: None,
            web_policy: WebPolicy::default(),
            tls: None,
            tls_bind: None,
            store: None,
            history: chat_core::HistoryLimit::default(),
            node_name: None,
        }
    }
}

impl ServerConfig {
    /// A config for tests: loopback, an ephemeral port, `workers` workers, and flood
    /// control off (tests of everything else send far faster than people type; the
    /// flood-control tests turn it on).
    pub fn local(workers: usize) -> Self {
        Self {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            workers,
            flood_control: None,
            ..Self::default()
        }
    }
}

/// Who may reach the web client, and open its WebSocket, besides the defaults.
#[derive(Debug, Clone, Default)]
pub struct WebPolicy {
    /// Origins allowed in addition to those of the allowed hosts, exactly as browsers
    /// send them (`https://chat.example.org`).
    pub allowed_origins: Vec<String>,
    /// Names (or addresses) the `Host` header may give besides the address the
    /// connection came to, `localhost` and the loopback addresses: the names the page
    /// is reached by (`chat.example.org`; `--web-host`). Any port goes with them, and
    /// pages of `http://` or `https://` on them may open the WebSocket.
    pub allowed_hosts: Vec<String>,
    /// Reverse proxies in front of the web port (`--web-trusted-proxy`): from these
    /// addresses, and only these, `X-Forwarded-For` names the client (for the logs
    /// and the per-address limit). From anyone else the header is ignored: a client
    /// could write any address there.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_policy_by_peer_address_and_owner() {
        let addr = |ip: &str| SocketAddr::new(ip.parse().unwrap(), 5000);
        let server = addr("127.0.0.1");
        let nobody = |_, _| Some(65534);
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        let mine = |_, _| Some(me);
        for local in ["127.0.0.1", "127.5.6.7", "::1", "::ffff:127.0.0.1"] {
            let peer = addr(local);
            assert!(
                ShutdownPolicy::Local.allows(peer, server, nobody),
                "{local}"
            );
            assert!(ShutdownPolicy::Any.allows(peer, server, nobody));
            assert!(!ShutdownPolicy::None.allows(peer, server, mine));
            assert!(ShutdownPolicy::Owner.allows(peer, server, mine), "{local}");
            assert!(
                ShutdownPolicy::Owner.allows(peer, server, |_, _| Some(0)),
                "root may"
            );
            if me != 65534 {
                assert!(!ShutdownPolicy::Owner.allows(peer, server, nobody));
            }
            assert!(!ShutdownPolicy::Owner.allows(peer, server, |_, _| None));
        }
        for remote in [
            "10.0.0.2",
            "192.168.1.1",
            "8.8.8.8",
            "::ffff:10.0.0.2",
            "fe80::1",
            "0.0.0.0",
        ] {
            let peer = addr(remote);
            assert!(
                !ShutdownPolicy::Local.allows(peer, server, mine),
                "{remote}"
            );
            assert!(
                !ShutdownPolicy::Owner.allows(peer, server, mine),
                "{remote}"
            );
            assert!(ShutdownPolicy::Any.allows(peer, server, nobody));
            assert!(!ShutdownPolicy::None.allows(peer, server, mine));
        }
    }
}
