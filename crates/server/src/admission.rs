//! Admission: whether a new connection is served or refused, and the counts that
//! decide it.
//!
//! The reactor asks [`Admission::admit`] for every connection it accepts. A served
//! connection is counted once it is registered ([`Admission::opened`]) and uncounted
//! when it is dropped ([`Admission::closed`]). A refused one is still accepted (so it
//! neither waits in the backlog nor makes the listener spin) and, room permitting
//! ([`MAX_REFUSING`]), held until its first frame shows its format and it can be told
//! why ([`Admission::may_hold_refused`], [`Admission::holding_refused`],
//! [`Admission::refused_closed`]).
//!
//! The decisions, in this order:
//!
//! 1. `--max-connections` served connections open: refused, [`Refusal::Limit`].
//! 2. `--max-connections-per-ip` (0: no such limit) served connections open from the
//!    same address: refused, [`Refusal::PerAddress`]. Loopback addresses are exempt
//!    when `per_ip_exempt_loopback` is set (local tools and a local reverse proxy all
//!    share one address); exempt addresses are not counted per address at all.
//! 3. Out of file descriptors (the reactor's `accept` fails with `EMFILE`/`ENFILE`):
//!    a descriptor held in reserve here is given up so the waiting connection can be
//!    accepted and closed, [`Refusal::NoDescriptors`]
//!    ([`Admission::spend_reserve`], [`Admission::restore_reserve`]).
//!
//! It also rate-limits the "refusing connections" log line: a refusal flood must not
//! flood the log ([`Admission::note_refusal`]).
//!
//! **Behind a trusted proxy** (`--web-trusted-proxy`): every connection of the proxy
//! comes from its address, so that address is exempt from the per-address limit (like
//! loopback), and each web client the proxy names in `X-Forwarded-For` is counted
//! against the same limit by that address instead ([`ForwardedClients`], asked by the
//! web side when the WebSocket opens; refused there with `503`). One rule for both:
//! [`PerAddressRule`].
//!
//! What it does not do: no socket I/O (the reactor accepts, registers and closes), no
//! logging (it says *when* to log; the line is the reactor's), no metrics (the reactor
//! counts refusals into `metrics.rs`), and it does not tell clients anything (a
//! refused client is told in the chat core's words, [`Refusal::as_core`]).
//!
//! # Invariants
//!
//! * `open` is the number of served connections the reactor holds: each
//!   [`Admission::opened`] is matched by one [`Admission::closed`] with the same
//!   address. Refused connections are never in it.
//! * `per_ip` holds, for every address that counts against the per-address limit, the
//!   number of those served connections from it; an address with none has no entry
//!   (so the map does not grow with every address ever seen). Its values sum to at
//!   most `open`.
//! * `refusing` is the number of refused connections the reactor holds, waiting to be
//!   told why; it is at most [`MAX_REFUSING`].
//!
//! Only the reactor thread uses it, so nothing here locks.

use std::collections::HashMap;
use std::fs::File;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::{ServerConfig, is_loopback};

/// Refused connections waiting to be told why, at most; more are closed unheard.
pub(crate) const MAX_REFUSING: usize = 256;
/// At most one "refused" log line per this long.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(5);

/// Why a connection was refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `--max-connections` reached.
    Limit,
    /// The process ran out of file descriptors.
    NoDescriptors,
    /// `--max-connections-per-ip` reached for the client's address.
    PerAddress,
}

impl Refusal {
    /// What the client is told (out of descriptors, it cannot be told anything).
    pub(crate) fn as_core(self) -> chat_core::Refusal {
        match self {
            Refusal::Limit | Refusal::NoDescriptors => chat_core::Refusal::ServerFull,
            Refusal::PerAddress => chat_core::Refusal::TooManyFromAddress,
        }
    }
}

/// Leave to serve a connection from one address, from [`Admission::admit`].
///
/// Give it to [`Admission::opened`] once the connection is really served (registered
/// with the poll); dropping it instead (registration failed) counts nothing. Use it at
/// once: it was checked against the counts as they were when it was issued.
#[must_use = "a served connection is counted only through `Admission::opened`"]
#[derive(Debug)]
pub(crate) struct Ticket {
    ip: IpAddr,
}

/// The per-address limit, and which addresses it does not apply to: one rule for
/// the connections the reactor accepts and the web clients a trusted proxy names.
#[derive(Debug, Clone)]
pub(crate) struct PerAddressRule {
    /// `--max-connections-per-ip` (0: off).
    max: usize,
    /// Loopback addresses are not limited (nor counted) per address.
    exempt_loopback: bool,
    /// `--web-trusted-proxy` addresses: each connection of theirs carries another
    /// client (counted by [`ForwardedClients`]), so they are not limited themselves.
    trusted_proxies: Vec<IpAddr>,
}

impl PerAddressRule {
    fn new(config: &ServerConfig) -> Self {
        PerAddressRule {
            max: config.max_connections_per_ip,
            exempt_loopback: config.per_ip_exempt_loopback,
            trusted_proxies: config.web_policy.trusted_proxies.clone(),
        }
    }

    /// Whether connections from `ip` count against the per-address limit.
    fn counts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let exempt = (self.exempt_loopback && is_loopback(ip))
            || self.trusted_proxies.iter().any(|t| t.to_canonical() == ip);
        !exempt
    }

    /// Whether one more connection from an address that already has `open` is over
    /// the limit.
    fn refuses(&self, open: usize) -> bool {
        self.max > 0 && open >= self.max
    }
}

/// Web clients behind a trusted proxy, counted by the address the proxy names for
/// them (see the module doc). Shared by the reactor's web connections; only the
/// reactor thread uses it, so its lock is never contended.
#[derive(Debug)]
pub(crate) struct ForwardedClients {
    rule: PerAddressRule,
    /// Open WebSockets per forwarded address; an address with none has no entry.
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One forwarded client counted in [`ForwardedClients`] until dropped (with its
/// connection).
#[derive(Debug)]
pub(crate) struct ForwardedTicket {
    clients: Arc<ForwardedClients>,
    /// `None`: an exempt address, not counted.
    ip: Option<IpAddr>,
}

impl ForwardedClients {
    pub(crate) fn new(config: &ServerConfig) -> Arc<Self> {
        Arc::new(ForwardedClients {
            rule: PerAddressRule::new(config),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Counts a web client at `ip`, or refuses it: the per-address limit reached.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ForwardedTicket, Refusal> {
        let ip = ip.to_canonical();
        let counted = self.rule.counts(ip).then_some(ip);
        if let Some(ip) = counted {
            let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
            let count = open.entry(ip).or_insert(0);
            if self.rule.refuses(*count) {
                if *count == 0 {
                    open.remove(&ip);
                }
                return Err(Refusal::PerAddress);
            }
            *count += 1;
        }
        Ok(ForwardedTicket {
            clients: Arc::clone(self),
            ip: counted,
        })
    }

    /// Forwarded clients open from `ip` (for tests).
    #[cfg(test)]
    fn open_from(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for ForwardedTicket {
    fn drop(&mut self) {
        let Some(ip) = self.ip else { return };
        let mut open = self
            .clients
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&ip);
            }
        }
    }
}

/// The admission state: the limits, the counts they are checked against, the
/// refusal-log rate limit and the reserve descriptor. See the module doc.
#[derive(Debug)]
pub(crate) struct Admission {
    /// `--max-connections`: served connections at once.
    max_connections: usize,
    /// `--max-connections-per-ip`, and who it does not apply to.
    per_address: PerAddressRule,
    /// Connections served (refused ones waiting to be told are not counted).
    open: usize,
    /// Served connections per address (exempt addresses are not counted).
    per_ip: HashMap<IpAddr, usize>,
    /// Refused connections waiting for their first frame, to be told why.
    refusing: usize,
    /// Refusals since the last log line, and when that was.
    refusals_unlogged: u64,
    last_refusal_log: Option<Instant>,
    /// A descriptor held back for accepting-and-closing when out of descriptors.
    reserve_fd: Option<File>,
}

impl Admission {
    /// Admission with `config`'s limits, nothing open, and a reserve descriptor.
    pub(crate) fn new(config: &ServerConfig) -> Self {
        Self {
            max_connections: config.max_connections,
            per_address: PerAddressRule::new(config),
            open: 0,
            per_ip: HashMap::new(),
            refusing: 0,
            refusals_unlogged: 0,
            last_refusal_log: None,
            reserve_fd: File::open("/dev/null").ok(),
        }
    }

    /// Whether a new connection from `ip` may be served (a [`Ticket`]), or why not.
    /// Changes nothing: the connection is counted by [`Admission::opened`].
    pub(crate) fn admit(&self, ip: IpAddr) -> Result<Ticket, Refusal> {
        if self.open >= self.max_connections {
            return Err(Refusal::Limit);
        }
        if self.per_ip_counted(ip)
            && self
                .per_address
                .refuses(self.per_ip.get(&ip).copied().unwrap_or(0))
        {
            return Err(Refusal::PerAddress);
        }
        Ok(Ticket { ip })
    }

    /// The admitted connection is served now: count it.
    pub(crate) fn opened(&mut self, ticket: Ticket) {
        self.open += 1;
        if self.per_ip_counted(ticket.ip) {
            *self.per_ip.entry(ticket.ip).or_insert(0) += 1;
        }
    }

    /// A served connection from `ip` (one [`Admission::opened`] counted) is gone.
    pub(crate) fn closed(&mut self, ip: IpAddr) {
        self.open -= 1;
        if self.per_ip_counted(ip)
            && let Some(count) = self.per_ip.get_mut(&ip)
        {
            *count -= 1;
            if *count == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }

    /// Connections served now.
    pub(crate) fn open(&self) -> usize {
        self.open
    }

    /// Whether another refused connection may be held to be told why; if not, it is
    /// closed at once, unheard (a flood of refused connections must not hold the
    /// server's descriptors and memory).
    pub(crate) fn may_hold_refused(&self) -> bool {
        self.refusing < MAX_REFUSING
    }

    /// A refused connection is held now, waiting to be told why.
    pub(crate) fn holding_refused(&mut self) {
        self.refusing += 1;
    }

    /// A held refused connection (one [`Admission::holding_refused`]) is gone.
    pub(crate) fn refused_closed(&mut self) {
        self.refusing -= 1;
    }

    /// Notes one refusal at `now`. Returns the refusals to report in a log line
    /// (this one and those not logged since the last line), or `None` if a line was
    /// written less than [`REFUSAL_LOG_EVERY`] ago: a refusal flood must not flood the
    /// log, and each line counts the refusals since the one before.
    pub(crate) fn note_refusal(&mut self, now: Instant) -> Option<u64> {
        self.refusals_unlogged += 1;
        if self
            .last_refusal_log
            .is_some_and(|last| now.duration_since(last) < REFUSAL_LOG_EVERY)
        {
            return None;
        }
        self.last_refusal_log = Some(now);
        Some(std::mem::take(&mut self.refusals_unlogged))
    }

    /// Out of descriptors: closes the reserve descriptor, so the reactor can accept
    /// (and at once close) a waiting connection with it. `false` if there was none to
    /// give (not reopened after the last time): accepting must wait for a connection
    /// to close.
    pub(crate) fn spend_reserve(&mut self) -> bool {
        self.reserve_fd.take().is_some()
    }

    /// Takes the reserve back (after the accepted connection was closed, freeing its
    /// descriptor). If that fails, there is none until the next try.
    pub(crate) fn restore_reserve(&mut self) {
        self.reserve_fd = File::open("/dev/null").ok();
    }

    /// Whether connections from `ip` count against the per-address limit.
    fn per_ip_counted(&self, ip: IpAddr) -> bool {
        self.per_address.counts(ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(max: usize, per_ip: usize, exempt_loopback: bool) -> Admission {
        Admission::new(&ServerConfig {
            max_connections: max,
            max_connections_per_ip: per_ip,
            per_ip_exempt_loopback: exempt_loopback,
            ..ServerConfig::local(1)
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Admits and opens a connection from `from`, or says why not.
    fn open(a: &mut Admission, from: &str) -> Result<(), Refusal> {
        let ticket = a.admit(ip(from))?;
        a.opened(ticket);
        Ok(())
    }

    fn behind_proxy(per_ip: usize, exempt_loopback: bool) -> ServerConfig {
        let mut config = ServerConfig {
            max_connections_per_ip: per_ip,
            per_ip_exempt_loopback: exempt_loopback,
            ..ServerConfig::local(1)
        };
        config.web_policy.trusted_proxies = vec![ip("10.9.9.9")];
        config
    }

    #[test]
    fn a_trusted_proxy_is_not_limited_per_address_but_its_clients_are() {
        let config = behind_proxy(2, true);
        let mut a = Admission::new(&config);
        for _ in 0..5 {
            assert_eq!(open(&mut a, "10.9.9.9"), Ok(()), "the proxy carries many");
        }
        let clients = ForwardedClients::new(&config);
        let first = clients.admit(ip("203.0.113.7")).unwrap();
        let second = clients.admit(ip("203.0.113.7")).unwrap();
        assert_eq!(
            clients.admit(ip("203.0.113.7")).unwrap_err(),
            Refusal::PerAddress
        );
        assert!(clients.admit(ip("203.0.113.8")).is_ok(), "another address");
        // IPv4 seen through IPv6 is the same address.
        assert_eq!(
            clients.admit(ip("::ffff:203.0.113.7")).unwrap_err(),
            Refusal::PerAddress
        );
        drop(first);
        assert_eq!(clients.open_from(ip("203.0.113.7")), 1);
        let third = clients.admit(ip("203.0.113.7")).unwrap();
        drop((second, third));
        assert_eq!(clients.open_from(ip("203.0.113.7")), 0);
        assert!(
            clients.open.lock().unwrap().is_empty(),
            "no entry is left behind"
        );
    }

    #[test]
    fn forwarded_loopback_clients_follow_the_loopback_exemption() {
        let exempt = ForwardedClients::new(&behind_proxy(1, true));
        let tickets: Vec<_> = (0..3)
            .map(|_| exempt.admit(ip("127.0.0.1")).unwrap())
            .collect();
        assert_eq!(exempt.open_from(ip("127.0.0.1")), 0, "not counted");
        drop(tickets);
        let counted = ForwardedClients::new(&behind_proxy(1, false));
        let _one = counted.admit(ip("127.0.0.1")).unwrap();
        assert!(counted.admit(ip("127.0.0.1")).is_err());
        let off = ForwardedClients::new(&behind_proxy(0, false));
        let _many: Vec<_> = (0..3)
            .map(|_| off.admit(ip("192.0.2.1")).unwrap())
            .collect();
    }

    #[test]
    fn limit_reached_refuses_until_one_closes() {
        let mut a = admission(2, 0, false);
        assert_eq!(open(&mut a, "10.0.0.1"), Ok(()));
        assert_eq!(open(&mut a, "10.0.0.2"), Ok(()));
        assert_eq!(a.open(), 2);
        assert_eq!(open(&mut a, "10.0.0.3"), Err(Refusal::Limit));
        assert_eq!(a.open(), 2, "a refusal counts nothing");
        a.closed(ip("10.0.0.1"));
        assert_eq!(open(&mut a, "10.0.0.3"), Ok(()));
    }

    #[test]
    fn a_dropped_ticket_counts_nothing() {
        let mut a = admission(1, 1, false);
        drop(a.admit(ip("10.0.0.1")).unwrap());
        assert_eq!(a.open(), 0);
        assert!(a.per_ip.is_empty());
        assert_eq!(open(&mut a, "10.0.0.1"), Ok(()));
    }

    #[test]
    fn per_ip_limit_refuses_that_address_only() {
        let mut a = admission(10, 2, false);
        assert_eq!(open(&mut a, "10.0.0.1"), Ok(()));
        assert_eq!(open(&mut a, "10.0.0.1"), Ok(()));
        assert_eq!(open(&mut a, "10.0.0.1"), Err(Refusal::PerAddress));
        assert_eq!(open(&mut a, "10.0.0.2"), Ok(()));
        assert_eq!(open(&mut a, "2001:db8::1"), Ok(()));
        a.closed(ip("10.0.0.1"));
        assert_eq!(open(&mut a, "10.0.0.1"), Ok(()));
    }

    #[test]
    fn the_total_limit_is_checked_first() {
        let mut a = admission(2, 2, false);
        assert_eq!(open(&mut a, "10.0.0.1"), Ok(()));
        assert_eq!(open(&mut a, "10.0.0.1"), Ok(()));
        assert_eq!(open(&mut a, "10.0.0.1"), Err(Refusal::Limit));
    }

    #[test]
    fn per_ip_limit_zero_is_off() {
        let mut a = admission(100, 0, false);
        for _ in 0..50 {
            assert_eq!(open(&mut a, "10.0.0.1"), Ok(()));
        }
        assert_eq!(a.open(), 50);
    }

    #[test]
    fn loopback_is_exempt_only_when_configured() {
        for local in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
            let mut exempt = admission(100, 1, true);
            for _ in 0..5 {
                assert_eq!(open(&mut exempt, local), Ok(()), "{local}");
            }
            assert!(exempt.per_ip.is_empty(), "exempt addresses are not counted");
            for _ in 0..5 {
                exempt.closed(ip(local));
            }
            assert_eq!(exempt.open(), 0);
            // Others are still limited.
            assert_eq!(open(&mut exempt, "10.0.0.1"), Ok(()));
            assert_eq!(open(&mut exempt, "10.0.0.1"), Err(Refusal::PerAddress));

            let mut limited = admission(100, 1, false);
            assert_eq!(open(&mut limited, local), Ok(()), "{local}");
            assert_eq!(
                open(&mut limited, local),
                Err(Refusal::PerAddress),
                "{local}"
            );
        }
    }

    #[test]
    fn closing_releases_the_counts() {
        let mut a = admission(3, 2, false);
        for from in ["10.0.0.1", "10.0.0.1", "10.0.0.2"] {
            assert_eq!(open(&mut a, from), Ok(()));
        }
        for from in ["10.0.0.1", "10.0.0.2", "10.0.0.1"] {
            a.closed(ip(from));
        }
        assert_eq!(a.open(), 0);
        assert!(a.per_ip.is_empty(), "no entry is left for a gone address");
        for from in ["10.0.0.1", "10.0.0.1", "10.0.0.3"] {
            assert_eq!(open(&mut a, from), Ok(()));
        }
    }

    #[test]
    fn refused_connections_are_held_up_to_a_bound_and_not_counted_as_open() {
        let mut a = admission(0, 0, false);
        assert_eq!(open(&mut a, "10.0.0.1"), Err(Refusal::Limit));
        for _ in 0..MAX_REFUSING {
            assert!(a.may_hold_refused());
            a.holding_refused();
        }
        assert!(!a.may_hold_refused());
        assert_eq!(a.open(), 0);
        a.refused_closed();
        assert!(a.may_hold_refused());
    }

    #[test]
    fn refusal_log_lines_are_rate_limited_and_count_the_unlogged() {
        let mut a = admission(0, 0, false);
        let t0 = Instant::now();
        assert_eq!(a.note_refusal(t0), Some(1));
        assert_eq!(a.note_refusal(t0 + Duration::from_secs(1)), None);
        assert_eq!(a.note_refusal(t0 + Duration::from_secs(4)), None);
        assert_eq!(a.note_refusal(t0 + REFUSAL_LOG_EVERY), Some(3));
        assert_eq!(a.note_refusal(t0 + REFUSAL_LOG_EVERY * 3), Some(1));
    }

    #[test]
    fn the_reserve_is_spent_once_until_restored() {
        let mut a = admission(1, 0, false);
        assert!(a.spend_reserve());
        assert!(!a.spend_reserve());
        a.restore_reserve();
        assert!(a.spend_reserve());
    }

    #[test]
    fn what_the_client_is_told() {
        assert_eq!(Refusal::Limit.as_core(), chat_core::Refusal::ServerFull);
        assert_eq!(
            Refusal::NoDescriptors.as_core(),
            chat_core::Refusal::ServerFull
        );
        assert_eq!(
            Refusal::PerAddress.as_core(),
            chat_core::Refusal::TooManyFromAddress
        );
    }
}
