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

use chat_core::{OutKind, Tally};
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
    requests: [[AtomicU64; 2]; RequestKind::COUNT],
    responses: [[AtomicU64; 2]; OutKind::COUNT],
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
}

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
        for (counters, values) in self.requests.iter().zip(&tally.requests) {
            for (counter, value) in counters.iter().zip(values) {
                add(counter, *value);
            }
        }
        for (counters, values) in self.responses.iter().zip(&tally.responses) {
            for (counter, value) in counters.iter().zip(values) {
                add(counter, *value);
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

/// A counter family labelled `type` (`types[i]` for row `i`) and `format`.
fn by_type_and_format(
    registry: &mut Registry,
    name: &str,
    help: &str,
    types: &[&'static str],
    counts: &[[AtomicU64; 2]],
) {
    let family = Family::<Labels, Counter<u64>>::default();
    for (kind, row) in types.iter().zip(counts) {
        for format in WireFormat::ALL {
            family
                .get_or_create(&vec![("type", *kind), ("format", format.name())])
                .inc_by(row[format.index()].load(Ordering::Relaxed));
        }
    }
    registry.register(name, help, family);
}

/// The metrics page, in the OpenMetrics text format.
pub(crate) fn render(m: &Metrics, gauges: GaugeValues) -> String {
    let mut registry = Registry::with_prefix("chat");

    gauge(
        &mut registry,
        "connections",
        "Client connections open now",
        m.connections(),
    );
    counter(
        &mut registry,
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
    gauge(&mut registry, "rooms", "Rooms that exist now", gauges.rooms);
    gauge(
        &mut registry,
        "queue_depth",
        "Sessions waiting for a worker",
        gauges.queue_depth,
    );

    by_type_and_format(
        &mut registry,
        "messages_in",
        "Client messages handled, by type and format",
        &RequestKind::ALL.map(RequestKind::name),
        &m.requests,
    );
    by_type_and_format(
        &mut registry,
        "messages_out",
        "Messages queued for clients, by type and format",
        &OutKind::ALL.map(OutKind::name),
        &m.responses,
    );

    counter(
        &mut registry,
        "bytes_in",
        "Bytes read from clients",
        &m.bytes_in,
    );
    counter(
        &mut registry,
        "bytes_out",
        "Bytes queued for clients",
        &m.bytes_out,
    );
    counter(
        &mut registry,
        "protocol_errors",
        "Client messages refused as invalid",
        &m.protocol_errors,
    );
    counter(
        &mut registry,
        "slow_consumer_disconnects",
        "Clients cut off for letting their outbound queue overflow",
        &m.slow_consumer_disconnects,
    );
    counter(
        &mut registry,
        "error_disconnects",
        "Clients cut off after too many invalid messages in a row",
        &m.error_disconnects,
    );
    counter(
        &mut registry,
        "idle_disconnects",
        "Clients cut off by the idle timeout",
        &m.idle_disconnects,
    );
    counter(
        &mut registry,
        "frame_timeout_disconnects",
        "Clients cut off for not finishing a frame within the frame timeout",
        &m.frame_timeout_disconnects,
    );
    counter(
        &mut registry,
        "write_timeout_disconnects",
        "Clients cut off for taking none of their output within the write timeout",
        &m.write_timeout_disconnects,
    );
    counter(
        &mut registry,
        "flood_disconnects",
        "Clients cut off for staying over the flood limit",
        &m.flood_disconnects,
    );
    counter(
        &mut registry,
        "dropped_at_shutdown",
        "Frames read but not handled because a shutdown ran out of time",
        &m.dropped_at_shutdown,
    );
    gauge(
        &mut registry,
        "memory_budget_used_bytes",
        "Queued output and buffered input held for clients now",
        gauges.budget_used,
    );
    for stat in &gauges.broker {
        if stat.counter {
            let metric = Counter::<u64>::default();
            metric.inc_by(stat.value);
            registry.register(stat.name, stat.help, metric);
        } else {
            gauge(&mut registry, stat.name, stat.help, stat.value);
        }
    }
    counter(
        &mut registry,
        "shutdown_refused",
        "/shutdown requests refused by policy",
        &m.shutdown_refused,
    );

    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut text, &registry);
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
}
