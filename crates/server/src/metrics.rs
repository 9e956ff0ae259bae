//! Operational metrics, rendered in the Prometheus / OpenMetrics text format (by the
//! `prometheus-client` crate). The HTTP endpoint that serves them is
//! `metrics_endpoint.rs`.
//!
//! Counting must not slow the hot path: [`Metrics`] is a set of relaxed atomics, and
//! workers count into a thread-local [`chat_core::Tally`] that they fold into the
//! atomics once per batch, so fan-out to many recipients costs no shared-cache-line
//! traffic per message. Gauges (connections, rooms, queue depth) are read at scrape
//! time.

use std::sync::atomic::{AtomicU64, Ordering};

use chat_core::{ConnectionKind, OutKind, Tally};
use chat_proto::{RequestKind, WireFormat};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::admission::Refusal;

/// Server-wide counters.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    /// Connections accepted.
    pub(crate) accepted: AtomicU64,
    /// Connections closed (accepted − closed = open now).
    pub(crate) closed: AtomicU64,
    /// Connections refused at accept, at [`refusal_index`] of the reason.
    refused: [AtomicU64; 3],
    /// By kind, [`ConnectionKind::index`] and [`WireFormat::index`], as in the tally.
    requests: [ByTransport; RequestKind::COUNT],
    responses: [ByTransport; OutKind::COUNT],
    /// Bytes read from clients.
    pub(crate) bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    protocol_errors: AtomicU64,
    slow_consumer_disconnects: AtomicU64,
    /// Clients cut off after too many invalid messages.
    pub(crate) error_disconnects: AtomicU64,
    /// Clients cut off by the idle timeout.
    pub(crate) idle_disconnects: AtomicU64,
    /// Clients cut off for not finishing a frame in time.
    pub(crate) frame_timeout_disconnects: AtomicU64,
    /// Clients cut off for taking no output for the write timeout.
    pub(crate) write_timeout_disconnects: AtomicU64,
    /// Clients cut off for staying over the flood limit.
    pub(crate) flood_disconnects: AtomicU64,
    /// Frames read but dropped unhandled because a shutdown ran out of time.
    pub(crate) dropped_at_shutdown: AtomicU64,
    /// `/shutdown` requests refused by policy.
    pub(crate) shutdown_refused: AtomicU64,
    /// Times the reactor waited for the workers' backlog to drain before polling
    /// again.
    pub(crate) reactor_backlog_waits: AtomicU64,
    /// A cluster node's name, for `chat_cluster_node_info`.
    node_name: Option<String>,
}

/// One kind's counts by [`ConnectionKind::index`] and [`WireFormat::index`].
type ByTransport = [[AtomicU64; 2]; ConnectionKind::COUNT];

/// Where [`Metrics`] keeps the count of refusals for `why` (the reasons are
/// admission's; how they are stored and labelled is this module's).
fn refusal_index(why: Refusal) -> usize {
    match why {
        Refusal::Limit => 0,
        Refusal::NoDescriptors => 1,
        Refusal::PerAddress => 2,
    }
}

/// Adds one to a counter.
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    /// Zeroed counters of a cluster node called `node_name` (`None`: no cluster).
    pub(crate) fn named(node_name: Option<String>) -> Self {
        Metrics {
            node_name,
            ..Metrics::default()
        }
    }

    /// Counts a refused connection.
    pub(crate) fn refused(&self, why: Refusal) {
        bump(&self.refused[refusal_index(why)]);
    }

    /// Connections open now.
    pub(crate) fn connections(&self) -> u64 {
        let accepted = self.accepted.load(Ordering::Relaxed);
        accepted.saturating_sub(self.closed.load(Ordering::Relaxed))
    }
}

impl Metrics {
    /// Adds one worker's `tally` to the counters and zeroes it.
    pub(crate) fn fold(&self, tally: &mut Tally) {
        fn add(counter: &AtomicU64, value: u64) {
            if value != 0 {
                counter.fetch_add(value, Ordering::Relaxed);
            }
        }
        let tally = std::mem::take(tally);
        let rows = self
            .requests
            .iter()
            .zip(&tally.requests)
            .chain(self.responses.iter().zip(&tally.responses));
        for (counters, values) in rows {
            for (counters, values) in counters.iter().zip(values) {
                for (counter, value) in counters.iter().zip(values) {
                    add(counter, *value);
                }
            }
        }
        add(&self.bytes_out, tally.bytes_out);
        add(&self.protocol_errors, tally.protocol_errors);
        add(&self.slow_consumer_disconnects, tally.overflows);
    }
}

/// What the metrics page reads from the rest of the server at scrape time.
pub(crate) type Gauges = Box<dyn Fn() -> GaugeValues + Send + Sync>;

/// Gauges read at scrape time.
#[derive(Debug, Clone, Default)]
pub(crate) struct GaugeValues {
    /// Rooms that exist now.
    pub(crate) rooms: u64,
    /// Sessions waiting for a worker.
    pub(crate) queue_depth: u64,
    /// Bytes of the memory budget in use.
    pub(crate) budget_used: u64,
    /// The broker's own numbers (a cluster's view: round trips, log lag, resets).
    pub(crate) broker: Vec<chat_core::BrokerStat>,
}

type Labels = Vec<(&'static str, &'static str)>;

fn counter(registry: &mut Registry, name: &str, help: &str, value: &AtomicU64) {
    let metric = Counter::<u64>::default();
    metric.inc_by(value.load(Ordering::Relaxed));
    registry.register(name, help, metric);
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let metric = Gauge::<i64>::default();
    metric.set(i64::try_from(value).unwrap_or(i64::MAX));
    registry.register(name, help, metric);
}

/// A counter family labelled `type` (`types[i]` for row `i`), `format` and
/// `transport`. A web client speaks JSON only, so there is no web protobuf series.
fn by_type_format_and_transport(
    registry: &mut Registry,
    name: &str,
    help: &str,
    types: &[&'static str],
    counts: &[ByTransport],
) {
    let family = Family::<Labels, Counter<u64>>::default();
    for (kind, row) in types.iter().zip(counts) {
        for transport in ConnectionKind::ALL {
            for format in WireFormat::ALL {
                if transport == ConnectionKind::Web && format != WireFormat::Json {
                    continue;
                }
                family
                    .get_or_create(&vec![
                        ("type", *kind),
                        ("format", format.name()),
                        ("transport", transport.name()),
                    ])
                    .inc_by(row[transport.index()][format.index()].load(Ordering::Relaxed));
            }
        }
    }
    registry.register(name, help, family);
}

/// When this process started serving, for `process_start_time_seconds`: the first
/// call (`Server::bind`) sets it.
static STARTED: std::sync::OnceLock<std::time::SystemTime> = std::sync::OnceLock::new();

/// Notes the process's start (the first call wins).
pub(crate) fn note_start() {
    let _ = STARTED.get_or_init(std::time::SystemTime::now);
}

/// What the process figures are read from: `/proc/self` (Linux). A figure that
/// cannot be read (another system, a restricted /proc) is left out of the page rather
/// than shown as 0.
#[derive(Debug, Default, PartialEq)]
struct ProcessFigures {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<u64>,
    open_fds: Option<u64>,
    max_fds: Option<u64>,
}

impl ProcessFigures {
    fn read() -> Self {
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let status = std::fs::read_to_string("/proc/self/status").ok();
        let limits = std::fs::read_to_string("/proc/self/limits").ok();
        Self {
            cpu_seconds: stat.as_deref().and_then(cpu_seconds),
            resident_bytes: status.as_deref().and_then(resident_bytes),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|dir| dir.count() as u64),
            max_fds: limits.as_deref().and_then(max_fds),
        }
    }
}

/// utime + stime from `/proc/self/stat` (fields 14 and 15, counted after the
/// parenthesised command name, which may hold spaces), in USER_HZ ticks: 100 a second
/// on Linux whatever the kernel's own tick rate.
fn cpu_seconds(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")": state is field 3, so utime (14) is at index 11 and stime at 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// `VmRSS:   1234 kB` in `/proc/self/status`, in bytes.
fn resident_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The soft limit on the `Max open files` line of `/proc/self/limits`.
fn max_fds(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The figures every Prometheus client library exports under these names (no
/// `chat_` prefix, so the usual dashboards work), and `chat_build_info`.
fn process_metrics(root: &mut Registry) {
    let info = Family::<Labels, Gauge<i64>>::default();
    info.get_or_create(&vec![
        ("version", env!("CARGO_PKG_VERSION")),
        // Set by whoever builds, when they know it (`CHAT_GIT_COMMIT=$(git rev-parse
        // HEAD) cargo build`); no build script, so building never needs git.
        (
            "commit",
            option_env!("CHAT_GIT_COMMIT").unwrap_or("unknown"),
        ),
    ])
    .set(1);
    root.register(
        "chat_build_info",
        "The server's version and, if known at build time, git commit (always 1)",
        info,
    );
    if let Some(started) = STARTED.get() {
        let since_epoch = started
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let metric = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        metric.set(since_epoch);
        root.register(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds",
            metric,
        );
        let metric = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        metric.set(started.elapsed().unwrap_or_default().as_secs_f64());
        root.register(
            "process_uptime_seconds",
            "Seconds since the process started",
            metric,
        );
    }
    let figures = ProcessFigures::read();
    if let Some(cpu) = figures.cpu_seconds {
        let metric = Counter::<f64, std::sync::atomic::AtomicU64>::default();
        metric.inc_by(cpu);
        root.register(
            "process_cpu_seconds",
            "User and system CPU time spent, in seconds",
            metric,
        );
    }
    for (name, help, value) in [
        (
            "process_resident_memory_bytes",
            "Resident memory size, in bytes",
            figures.resident_bytes,
        ),
        (
            "process_open_fds",
            "Open file descriptors",
            figures.open_fds,
        ),
        (
            "process_max_fds",
            "The limit on open file descriptors",
            figures.max_fds,
        ),
    ] {
        if let Some(value) = value {
            gauge(root, name, help, value);
        }
    }
}

/// The metrics page, in the OpenMetrics text format.
pub(crate) fn render(m: &Metrics, gauges: GaugeValues) -> String {
    let mut root = Registry::default();
    process_metrics(&mut root);
    let registry = root.sub_registry_with_prefix("chat");

    gauge(
        registry,
        "connections",
        "Client connections open now",
        m.connections(),
    );
    counter(
        registry,
        "connections_accepted",
        "Client connections accepted",
        &m.accepted,
    );
    let refused = Family::<Labels, Counter<u64>>::default();
    for (why, name) in [
        (Refusal::Limit, "limit"),
        (Refusal::NoDescriptors, "no_descriptors"),
        (Refusal::PerAddress, "per_ip"),
    ] {
        refused
            .get_or_create(&vec![("reason", name)])
            .inc_by(m.refused[refusal_index(why)].load(Ordering::Relaxed));
    }
    registry.register(
        "connections_refused",
        "Connections closed at accept, by reason",
        refused,
    );
    gauge(registry, "rooms", "Rooms that exist now", gauges.rooms);
    gauge(
        registry,
        "queue_depth",
        "Sessions waiting for a worker",
        gauges.queue_depth,
    );

    by_type_format_and_transport(
        registry,
        "messages_in",
        "Client messages handled, by type, format and transport",
        &RequestKind::ALL.map(RequestKind::name),
        &m.requests,
    );
    by_type_format_and_transport(
        registry,
        "messages_out",
        "Messages queued for clients, by type, format and transport",
        &OutKind::ALL.map(OutKind::name),
        &m.responses,
    );

    counter(registry, "bytes_in", "Bytes read from clients", &m.bytes_in);
    counter(
        registry,
        "bytes_out",
        "Bytes queued for clients",
        &m.bytes_out,
    );
    counter(
        registry,
        "protocol_errors",
        "Client messages refused as invalid",
        &m.protocol_errors,
    );
    counter(
        registry,
        "slow_consumer_disconnects",
        "Clients cut off for letting their outbound queue overflow",
        &m.slow_consumer_disconnects,
    );
    counter(
        registry,
        "error_disconnects",
        "Clients cut off after too many invalid messages in a row",
        &m.error_disconnects,
    );
    counter(
        registry,
        "idle_disconnects",
        "Clients cut off by the idle timeout",
        &m.idle_disconnects,
    );
    counter(
        registry,
        "frame_timeout_disconnects",
        "Clients cut off for not finishing a frame within the frame timeout",
        &m.frame_timeout_disconnects,
    );
    counter(
        registry,
        "write_timeout_disconnects",
        "Clients cut off for taking none of their output within the write timeout",
        &m.write_timeout_disconnects,
    );
    counter(
        registry,
        "flood_disconnects",
        "Clients cut off for staying over the flood limit",
        &m.flood_disconnects,
    );
    counter(
        registry,
        "dropped_at_shutdown",
        "Frames read but not handled because a shutdown ran out of time",
        &m.dropped_at_shutdown,
    );
    gauge(
        registry,
        "memory_budget_used_bytes",
        "Queued output and buffered input held for clients now",
        gauges.budget_used,
    );
    if let Some(name) = &m.node_name {
        let info = Family::<Vec<(&'static str, String)>, Gauge<i64>>::default();
        info.get_or_create(&vec![("node_name", name.clone())])
            .set(1);
        registry.register(
            "cluster_node_info",
            "This node's name (--node-name; always 1)",
            info,
        );
    }
    for stat in &gauges.broker {
        if stat.counter {
            let metric = Counter::<u64>::default();
            metric.inc_by(stat.value);
            registry.register(stat.name, stat.help, metric);
        } else {
            gauge(registry, stat.name, stat.help, stat.value);
        }
    }
    counter(
        registry,
        "shutdown_refused",
        "/shutdown requests refused by policy",
        &m.shutdown_refused,
    );
    counter(
        registry,
        "reactor_backlog_waits",
        "Times the reactor waited for the workers' backlog before polling again",
        &m.reactor_backlog_waits,
    );

    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut text, &root);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_counted_by_reason_under_their_labels() {
        let m = Metrics::default();
        m.refused(Refusal::Limit);
        m.refused(Refusal::Limit);
        m.refused(Refusal::PerAddress);
        let text = render(&m, GaugeValues::default());
        for line in [
            "chat_connections_refused_total{reason=\"limit\"} 2",
            "chat_connections_refused_total{reason=\"per_ip\"} 1",
            "chat_connections_refused_total{reason=\"no_descriptors\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
    }

    #[test]
    fn messages_are_labelled_by_transport_and_a_cluster_node_by_name() {
        let m = Metrics::named(Some("web1:9001".to_owned()));
        let mut tally = Tally::default();
        let (tls, web) = (ConnectionKind::Tls.index(), ConnectionKind::Web.index());
        let (json, protobuf) = (WireFormat::Json.index(), WireFormat::Protobuf.index());
        tally.requests[RequestKind::Chat as usize][tls][protobuf] = 3;
        tally.responses[OutKind::Chat as usize][web][json] = 2;
        m.fold(&mut tally);
        let text = render(&m, GaugeValues::default());
        for line in [
            "chat_messages_in_total{type=\"CSChat\",format=\"protobuf\",transport=\"tls\"} 3",
            "chat_messages_in_total{type=\"CSChat\",format=\"protobuf\",transport=\"tcp\"} 0",
            "chat_messages_out_total{type=\"SCChat\",format=\"json\",transport=\"web\"} 2",
            "chat_messages_out_total{type=\"SCChat\",format=\"json\",transport=\"tls\"} 0",
            "chat_cluster_node_info{node_name=\"web1:9001\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
        }
        // A web client speaks JSON only.
        assert!(
            !text.contains("format=\"protobuf\",transport=\"web\""),
            "{text}"
        );
        let unnamed = render(&Metrics::default(), GaugeValues::default());
        assert!(!unnamed.contains("node_info"), "{unnamed}");
    }

    #[test]
    fn proc_figures_are_parsed_from_their_lines() {
        // A command name with spaces and a parenthesis does not shift the fields.
        let stat = "42 (chat (x) y) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1";
        assert_eq!(cpu_seconds(stat), Some(3.0));
        assert_eq!(
            resident_bytes("Name:\tchat\nVmRSS:\t    1500 kB\n"),
            Some(1_536_000)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            20000                524288               files\n";
        assert_eq!(max_fds(limits), Some(20000));
        assert_eq!(max_fds("nothing"), None);
    }
}
