//! The results: plain data, printed for people ([`render_text`]) or as JSON (serde).
//!
//! Every figure a run measures is here, including the unflattering ones: losses,
//! duplicates, reordering, the bench's own send lag and CPU use (so a reader can tell
//! when the bench rather than the server was the limit). Nothing is computed here
//! except formatting.

use std::fmt::Write as _;

use serde::Serialize;

/// Everything one invocation of `chat-bench` found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `host:port` as given.
    pub target: String,
    /// The wire format, `json` or `protobuf`.
    pub format: &'static str,
    /// Number of rooms.
    pub rooms: usize,
    /// Clients per room.
    pub per_room: usize,
    /// Padding bytes per chat (`--pad`).
    pub pad: usize,
    /// `fixed` (one run at `--rate`) or `find-max`.
    pub mode: &'static str,
    /// Connecting and joining every client.
    pub setup: SetupReport,
    /// One entry per run: a single one in fixed mode, one per step with find-max.
    pub steps: Vec<StepReport>,
    /// The headline: the only run in fixed mode; the highest passing step with
    /// find-max (absent when none passed).
    pub result: Option<StepReport>,
    /// The search's bound and outcome (find-max only).
    pub find_max: Option<FindMaxReport>,
    /// The server's memory at the end (with `--server-pid`).
    pub server_memory_end: Option<MemoryReport>,
    /// Problems over the whole invocation, setup included.
    pub errors: ErrorReport,
}

/// Connecting and joining.
#[derive(Debug, Clone, Serialize)]
pub struct SetupReport {
    /// Connections set up (all of them, or the run would have stopped).
    pub connections: usize,
    /// How long setting them up took.
    pub seconds: f64,
    /// Server RSS before the bench connected, KiB.
    pub server_rss_before_kb: Option<u64>,
    /// Server RSS once every client had joined, KiB.
    pub server_rss_after_kb: Option<u64>,
    /// (after − before) / connections.
    pub server_rss_per_connection_bytes: Option<f64>,
}

/// One run at a fixed rate.
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// The run's number, from 0 (find-max steps are numbered in order).
    pub step: u32,
    /// Scheduled chats/s, all clients together.
    pub rate: u64,
    /// Seconds of sending.
    pub duration_s: f64,
    /// Seconds from the first intended send to the end of the drain.
    pub elapsed_s: f64,
    /// Scheduled chats handed to a connected client to send.
    pub chats_sent: u64,
    /// Scheduled chats not sent because their client had lost its connection.
    pub chats_skipped: u64,
    /// `chats_sent × (per_room − 1)`.
    pub expected_deliveries: u64,
    /// Distinct chats delivered to a member of the sender's room.
    pub deliveries: u64,
    /// Expected deliveries that had not arrived when the drain ended.
    pub lost: u64,
    /// Extra copies of chats a member had already received.
    pub duplicated: u64,
    /// Deliveries that arrived after a later chat of the same sender.
    pub out_of_order: u64,
    /// Bench chats delivered where they do not belong (echo, another room, a
    /// sequence number never sent) or with damaged padding.
    pub misdelivered: u64,
    /// Chats of an earlier step that arrived during this one.
    pub stale: u64,
    /// Messages that were neither bench chats nor expected notices.
    pub unexpected_messages: u64,
    /// Deliveries per second from the first intended send to the last delivery.
    pub deliveries_per_s: f64,
    /// Intended send time → receipt, over distinct deliveries.
    pub latency_ms: Option<Percentiles>,
    /// Intended send time → the bench queueing the chat: the bench's own lateness.
    pub send_lag_ms: Option<Percentiles>,
    /// Bytes the bench still held for the server when the run ended (the server
    /// stopped reading).
    pub unsent_bytes_at_end: u64,
    /// Connections still open when the run ended.
    pub connections_alive_at_end: usize,
    /// Server CPU time (user + system) during the run, with `--server-pid`.
    pub server_cpu_s: Option<f64>,
    /// The same as a share of one core: 100 is one core busy for the whole run.
    pub server_cpu_pct: Option<f64>,
    /// The bench's own CPU use during the run, as a share of one core (it uses one
    /// thread, so near 100 means the bench may have been the limit).
    pub bench_cpu_pct: Option<f64>,
    /// With find-max: whether this step met the bound with nothing lost.
    pub passed: Option<bool>,
}

/// Latency percentiles, milliseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Percentiles {
    /// The median.
    pub p50: f64,
    /// The 90th percentile.
    pub p90: f64,
    /// The 99th percentile.
    pub p99: f64,
    /// The 99.9th percentile.
    pub p999: f64,
    /// The largest value recorded.
    pub max: f64,
    /// The arithmetic mean.
    pub mean: f64,
}

/// The find-max search.
#[derive(Debug, Clone, Serialize)]
pub struct FindMaxReport {
    /// The p99 latency bound a step had to meet, milliseconds (`--p99-max-ms`).
    pub p99_max_ms: f64,
    /// The highest rate that passed, chats/s.
    pub best_rate: Option<u64>,
    /// Why the search ended early, if it did.
    pub stopped_early: Option<String>,
}

/// A process's memory, KiB.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MemoryReport {
    /// Resident set size (`VmRSS`).
    pub rss_kb: u64,
    /// The highest resident set size since the process started (`VmHWM`).
    pub peak_rss_kb: u64,
}

/// Problems seen over the whole invocation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ErrorReport {
    /// Connections the server closed while the bench still needed them.
    pub closed_by_server: u64,
    /// Socket reads and writes that failed, and chats that could not be encoded.
    pub io_errors: u64,
    /// Server messages that did not decode.
    pub decode_errors: u64,
    /// Messages that were neither bench chats nor expected notices.
    pub unexpected_messages: u64,
    /// Bench chats that arrived after their run's drain had ended (already lost).
    pub chats_after_drain: u64,
    /// The first few problems, in words.
    pub samples: Vec<String>,
}

/// The human-readable report.
pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    let r = report;
    let _ = writeln!(
        out,
        "chat-bench → {} ({}), {} rooms × {} clients = {} connections, pad {} B",
        r.target, r.format, r.rooms, r.per_room, r.setup.connections, r.pad
    );
    let _ = write!(out, "setup: {:.2} s", r.setup.seconds);
    if let (Some(before), Some(after)) = (r.setup.server_rss_before_kb, r.setup.server_rss_after_kb)
    {
        let _ = write!(out, "; server RSS {before} → {after} KiB");
    }
    if let Some(per) = r.setup.server_rss_per_connection_bytes {
        let _ = write!(out, " ({per:.0} B per connection)");
    }
    out.push('\n');
    for step in &r.steps {
        render_step(&mut out, step, r.steps.len() > 1);
    }
    if let Some(fm) = &r.find_max {
        match fm.best_rate {
            Some(rate) => {
                let _ = writeln!(
                    out,
                    "find-max: highest rate with p99 ≤ {} ms and nothing lost: {rate} chats/s",
                    fm.p99_max_ms
                );
                if let Some(best) = &r.result {
                    let _ = writeln!(
                        out,
                        "          {:.0} deliveries/s at that rate",
                        best.deliveries_per_s
                    );
                }
            }
            None => {
                let _ = writeln!(
                    out,
                    "find-max: no rate met p99 ≤ {} ms with nothing lost",
                    fm.p99_max_ms
                );
            }
        }
        if let Some(why) = &fm.stopped_early {
            let _ = writeln!(out, "          search stopped early: {why}");
        }
    }
    if let Some(mem) = &r.server_memory_end {
        let _ = writeln!(
            out,
            "server memory at end: RSS {} KiB, peak {} KiB",
            mem.rss_kb, mem.peak_rss_kb
        );
    }
    let e = &r.errors;
    let _ = writeln!(
        out,
        "errors: closed by server {}, I/O {}, undecodable {}, unexpected {}, late chats {}",
        e.closed_by_server,
        e.io_errors,
        e.decode_errors,
        e.unexpected_messages,
        e.chats_after_drain
    );
    for sample in &e.samples {
        let _ = writeln!(out, "  - {sample}");
    }
    out
}

fn render_step(out: &mut String, s: &StepReport, numbered: bool) {
    if numbered {
        let verdict = match s.passed {
            Some(true) => " PASS",
            Some(false) => " FAIL",
            None => "",
        };
        let _ = writeln!(out, "step {}: {} chats/s{verdict}", s.step, s.rate);
    } else {
        let _ = writeln!(out, "run: {} chats/s for {} s", s.rate, s.duration_s);
    }
    let _ = writeln!(
        out,
        "  chats sent {} (skipped {}), deliveries {} of {} expected, {:.0} deliveries/s",
        s.chats_sent, s.chats_skipped, s.deliveries, s.expected_deliveries, s.deliveries_per_s
    );
    let _ = writeln!(
        out,
        "  lost {}, duplicated {}, out of order {}, misdelivered {}, stale {}, unexpected {}",
        s.lost, s.duplicated, s.out_of_order, s.misdelivered, s.stale, s.unexpected_messages
    );
    match &s.latency_ms {
        Some(l) => {
            let _ = writeln!(
                out,
                "  latency ms: p50 {:.3}, p90 {:.3}, p99 {:.3}, p99.9 {:.3}, max {:.3}, mean {:.3}",
                l.p50, l.p90, l.p99, l.p999, l.max, l.mean
            );
        }
        None => out.push_str("  latency: nothing delivered\n"),
    }
    if let Some(lag) = &s.send_lag_ms {
        let _ = writeln!(
            out,
            "  bench send lag ms: p99 {:.3}, max {:.3}",
            lag.p99, lag.max
        );
    }
    let mut cpu = String::new();
    if let (Some(secs), Some(pct)) = (s.server_cpu_s, s.server_cpu_pct) {
        let _ = write!(cpu, "server CPU {secs:.2} s ({pct:.0}% of a core)");
    }
    if let Some(pct) = s.bench_cpu_pct {
        if !cpu.is_empty() {
            cpu.push_str(", ");
        }
        let _ = write!(cpu, "bench CPU {pct:.0}% of a core");
        if pct >= 90.0 {
            cpu.push_str(" — the bench may be the bottleneck");
        }
    }
    if !cpu.is_empty() {
        let _ = writeln!(out, "  {cpu}");
    }
    if s.unsent_bytes_at_end > 0 {
        let _ = writeln!(
            out,
            "  {} bytes still unsent at the end (the server stopped reading)",
            s.unsent_bytes_at_end
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_step_with_a_late_bench_is_not_the_servers_failure() {
        let lag = |p99: f64| Percentiles {
            p50: 0.01,
            p90: 0.02,
            p99,
            p999: p99,
            max: p99,
            mean: 0.01,
        };
        let mut s = step(Some(false));
        assert!(!crate::bench_lagged(&s, 10.0), "no lag recorded");
        s.send_lag_ms = Some(lag(0.04));
        assert!(!crate::bench_lagged(&s, 10.0));
        s.send_lag_ms = Some(lag(32.9));
        assert!(crate::bench_lagged(&s, 10.0));
    }

    fn step(passed: Option<bool>) -> StepReport {
        StepReport {
            step: 0,
            rate: 200,
            duration_s: 1.0,
            elapsed_s: 1.01,
            chats_sent: 200,
            chats_skipped: 0,
            expected_deliveries: 600,
            deliveries: 600,
            lost: 0,
            duplicated: 0,
            out_of_order: 0,
            misdelivered: 0,
            stale: 0,
            unexpected_messages: 0,
            deliveries_per_s: 594.0,
            latency_ms: Some(Percentiles {
                p50: 0.1,
                p90: 0.2,
                p99: 0.3,
                p999: 0.4,
                max: 0.5,
                mean: 0.12,
            }),
            send_lag_ms: None,
            unsent_bytes_at_end: 0,
            connections_alive_at_end: 12,
            server_cpu_s: None,
            server_cpu_pct: None,
            bench_cpu_pct: Some(95.0),
            passed,
        }
    }

    fn report() -> Report {
        Report {
            target: "127.0.0.1:9000".into(),
            format: "json",
            rooms: 3,
            per_room: 4,
            pad: 0,
            mode: "fixed",
            setup: SetupReport {
                connections: 12,
                seconds: 0.1,
                server_rss_before_kb: None,
                server_rss_after_kb: None,
                server_rss_per_connection_bytes: None,
            },
            steps: vec![step(None)],
            result: Some(step(None)),
            find_max: None,
            server_memory_end: None,
            errors: ErrorReport::default(),
        }
    }

    #[test]
    fn text_names_every_headline_figure() {
        let text = render_text(&report());
        for needle in [
            "12 connections",
            "deliveries 600 of 600 expected",
            "lost 0, duplicated 0, out of order 0",
            "p99 0.300",
            "may be the bottleneck",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from\n{text}");
        }
    }

    #[test]
    fn json_has_the_fields_scripts_read() {
        let mut r = report();
        r.mode = "find-max";
        r.steps.push(step(Some(false)));
        r.find_max = Some(FindMaxReport {
            p99_max_ms: 10.0,
            best_rate: Some(200),
            stopped_early: None,
        });
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["result"]["latency_ms"]["p99"], 0.3);
        assert_eq!(v["result"]["lost"], 0);
        assert_eq!(v["find_max"]["best_rate"], 200);
        assert_eq!(v["steps"][1]["passed"], false);
        assert!(render_text(&r).contains("FAIL"));
    }
}
