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
    /// `host:port` as given (`host:port,port,…` for several nodes; ` (WebSocket)` for
    /// web clients).
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
    /// The hostile and slow populations, when any was asked for (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostile: Option<HostileReport>,
    /// With `--tls` (absent otherwise): what every connection negotiated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsReport>,
    /// With `--registered-rooms` (absent otherwise): the account the measured rooms
    /// were registered to during setup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered_rooms: Option<RegisteredRoomsReport>,
}

/// `--registered-rooms`: the owner connection that made the measured rooms registered
/// rooms before the members joined them (its time is part of `setup.seconds`, never
/// of a run).
#[derive(Debug, Clone, Serialize)]
pub struct RegisteredRoomsReport {
    /// The account's name.
    pub owner: String,
    /// Rooms registered to it.
    pub rooms: usize,
    /// From the owner's connect to the server's word that the account is stored (the
    /// server hashes the password with Argon2 first).
    pub register_account_s: f64,
    /// From the owner's connect to its last room registered and left.
    pub seconds: f64,
    /// The first and last room ids (the server numbers rooms in creation order).
    pub first_room_id: Option<i64>,
    /// See `first_room_id`.
    pub last_room_id: Option<i64>,
}

/// `--tls`: the session every measured connection set up during setup (its handshake
/// is in `setup.connect_to_joined_ms`, never in a run's latency).
#[derive(Debug, Clone, Serialize)]
pub struct TlsReport {
    /// The name checked against the certificate (`--tls-server-name`).
    pub server_name: String,
    /// `ca-file` (`--tls-ca`) or `insecure` (`--tls-insecure`: any certificate).
    pub trust: &'static str,
    /// The protocol version negotiated (the first client's, as rustls names it).
    pub version: Option<String>,
    /// The cipher suite negotiated (the first client's).
    pub cipher_suite: Option<String>,
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
    /// Per measured client: from starting its `connect()` to receiving its
    /// `/create` or `/join` reply. A SYN dropped by a full accept queue shows up as
    /// one second or more (the first retransmit).
    pub connect_to_joined_ms: Option<Percentiles>,
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
    /// Of `server_cpu_s`, the user part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_user_s: Option<f64>,
    /// Of `server_cpu_s`, the system (kernel) part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_system_s: Option<f64>,
    /// CPU time of each `--also-pid` process during the run, in that order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub others_cpu_s: Vec<Option<f64>>,
    /// Context switches of the server's threads during the run, with `--server-pid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_context_switches: Option<u64>,
    /// Context switches of each `--also-pid` process's threads during the run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub others_context_switches: Vec<Option<u64>>,
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

/// The hostile and slow populations: what they did and what the server did to them.
/// Each part is present only when its population was asked for.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HostileReport {
    /// Connections of all these populations together.
    pub connections: usize,
    /// Seconds it took to set them up (after the measured rooms).
    pub setup_s: f64,
    /// `--idle-rooms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_rooms: Option<IdleRoomsReport>,
    /// `--rooms-flooders`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rooms_flooders: Option<RoomsFloodReport>,
    /// `--flood-members`, `--flood-never-read`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flood: Option<FloodReport>,
    /// `--slowloris`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slowloris: Option<SlowlorisReport>,
    /// The kernel's TCP memory (`/proc/net/sockstat`, the whole machine), KiB.
    pub kernel_tcp_mem_kb: MemorySamples,
    /// The server's RSS (`VmRSS`), KiB, with `--server-pid`.
    pub server_rss_kb: Option<MemorySamples>,
}

/// A memory figure sampled around the run, KiB. `before` is taken when the run
/// starts (every population set up, nothing flooding yet), `peak` is the highest of
/// the samples taken every 100 ms during the run, `end` when the run (drain
/// included) ends, `after_2s` two seconds later, and `after_leave` (flood room only)
/// `--flood-leave-wait` seconds after the bench closed every flood-room connection.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct MemorySamples {
    /// When the run started.
    pub before: Option<u64>,
    /// The highest sample during the run.
    pub peak: Option<u64>,
    /// When the run ended.
    pub end: Option<u64>,
    /// Two seconds after the end (flood-room connections still open).
    pub after_2s: Option<u64>,
    /// After the flood room was left and `--flood-leave-wait` passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_leave: Option<u64>,
}

/// The median and the maximum of some times, seconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Spread {
    /// How many values.
    pub count: usize,
    /// The median.
    pub p50: f64,
    /// The largest.
    pub max: f64,
}

/// `--idle-rooms`: rooms whose only member never chats.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IdleRoomsReport {
    /// Rooms created (one connection each).
    pub rooms: usize,
    /// Messages their creators received (nothing is expected).
    pub messages_received: u64,
    /// Creators the server disconnected after setup.
    pub closed_by_server: usize,
    /// Creators still connected when the run ended.
    pub open_at_end: usize,
}

/// `--rooms-flooders`: connections writing `/rooms` requests as fast as they can.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RoomsFloodReport {
    /// Requests per write (`--rooms-batch`).
    pub batch: usize,
    /// Requests written by all flooders (whole batches and the part of the last one).
    pub requests_sent: u64,
    /// `SCRoomsResult` messages received by all flooders (a long list may come as
    /// several messages per request).
    pub rooms_results_received: u64,
    /// Bytes received by all flooders.
    pub bytes_received: u64,
    /// Flooders the server disconnected.
    pub disconnected: usize,
    /// One entry per flooder.
    pub per_flooder: Vec<FlooderReport>,
}

/// One `/rooms` flooder.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FlooderReport {
    /// Requests written.
    pub requests_sent: u64,
    /// `SCRoomsResult` messages received.
    pub rooms_results_received: u64,
    /// Other messages received.
    pub other_messages: u64,
    /// Bytes received.
    pub bytes_received: u64,
    /// Whether the server closed or reset the connection during the run.
    pub disconnected: bool,
    /// Seconds from the start of the run to the disconnection.
    pub disconnected_after_s: Option<f64>,
}

/// The flood room: one sender, slow readers and never-readers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FloodReport {
    /// Members reading at `read_bps` (`--flood-members`).
    pub slow_readers: usize,
    /// Members that never read (`--flood-never-read`).
    pub never_readers: usize,
    /// Bytes/s each slow reader reads at most (`--flood-read-bps`).
    pub read_bps: u64,
    /// The sender's schedule, chats/s (`--flood-rate`).
    pub rate: u64,
    /// Padding bytes per flood chat (`--flood-pad`).
    pub pad: usize,
    /// Flood chats the sender handed to its socket (or queued for it).
    pub chats_sent: u64,
    /// Bytes the sender still held when the run ended (the server stopped reading it).
    pub sender_unsent_bytes_at_end: u64,
    /// Whether the server disconnected the sender.
    pub sender_disconnected: bool,
    /// `[NAME] 님이 퇴장했습니다.` notices the sender received: members the server
    /// removed from the room.
    pub leave_notices: u64,
    /// Bytes the slow readers read, all together.
    pub slow_bytes_read: u64,
    /// Chats among them (complete messages only).
    pub slow_chats_read: u64,
    /// Slow readers the server disconnected (FIN or RST seen) by the end of the run.
    pub slow_readers_cut: usize,
    /// Seconds from the start of the run to each slow reader's cut.
    pub slow_readers_cut_after_s: Option<Spread>,
    /// Never-readers the server disconnected by the end of the run (seen by polling
    /// for POLLRDHUP / POLLHUP / POLLERR, without reading their data).
    pub never_readers_cut: usize,
    /// Seconds from the start of the run to each never-reader's cut.
    pub never_readers_cut_after_s: Option<Spread>,
    /// `--flood-leave-wait`, seconds.
    pub leave_wait_s: f64,
}

/// `--slowloris`: connections that never finish their first frame.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SlowlorisReport {
    /// Connections.
    pub connections: usize,
    /// Milliseconds between bytes (`--slowloris-interval-ms`).
    pub interval_ms: u64,
    /// Bytes they sent, headers included.
    pub bytes_sent: u64,
    /// Connections the server closed or reset (EOF or error on read, or a failed
    /// write).
    pub cut: usize,
    /// Seconds from each cut connection's start (its header) to its cut.
    pub cut_after_s: Option<Spread>,
    /// Connections still open when the run ended.
    pub open_at_end: usize,
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
    if let Some(tls) = &r.tls {
        let _ = writeln!(
            out,
            "TLS: {} {}, server name {} ({}); handshakes were part of setup",
            tls.version.as_deref().unwrap_or("(version unknown)"),
            tls.cipher_suite.as_deref().unwrap_or("(suite unknown)"),
            tls.server_name,
            if tls.trust == "insecure" {
                "any certificate accepted: --tls-insecure"
            } else {
                "certificate checked against --tls-ca"
            }
        );
    }
    if let Some(reg) = &r.registered_rooms {
        let _ = writeln!(
            out,
            "registered rooms: {} rooms (ids {}–{}) registered to account {} in {:.2} s of \
             setup (the account stored after {:.3} s); every member joined them",
            reg.rooms,
            reg.first_room_id.unwrap_or_default(),
            reg.last_room_id.unwrap_or_default(),
            reg.owner,
            reg.seconds,
            reg.register_account_s
        );
    }
    let _ = write!(out, "setup: {:.2} s", r.setup.seconds);
    if let (Some(before), Some(after)) = (r.setup.server_rss_before_kb, r.setup.server_rss_after_kb)
    {
        let _ = write!(out, "; server RSS {before} → {after} KiB");
    }
    if let Some(per) = r.setup.server_rss_per_connection_bytes {
        let _ = write!(out, " ({per:.0} B per connection)");
    }
    out.push('\n');
    if let Some(l) = &r.setup.connect_to_joined_ms {
        let _ = writeln!(
            out,
            "  connect → joined ms: p50 {:.3}, p99 {:.3}, max {:.3}{}",
            l.p50,
            l.p99,
            l.max,
            if l.max >= 1000.0 && r.format == "irc" {
                // InspIRCd completes registrations on its once-a-second timer.
                " (≥ 1 s: an IRC server may finish registrations on a 1 s timer)"
            } else if l.max >= 1000.0 {
                " (≥ 1 s: some connects needed a SYN retransmit)"
            } else {
                ""
            }
        );
    }
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
    if let Some(h) = &r.hostile {
        render_hostile(&mut out, h);
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

fn render_hostile(out: &mut String, h: &HostileReport) {
    let _ = writeln!(
        out,
        "hostile and slow clients: {} connections, set up in {:.2} s",
        h.connections, h.setup_s
    );
    let spread = |s: &Option<Spread>| match s {
        Some(s) => format!(" after {:.2} s median, {:.2} s max", s.p50, s.max),
        None => String::new(),
    };
    if let Some(i) = &h.idle_rooms {
        let _ = writeln!(
            out,
            "  idle rooms: {}, {} still open at the end, {} closed by the server, {} messages \
             received",
            i.rooms, i.open_at_end, i.closed_by_server, i.messages_received
        );
    }
    if let Some(f) = &h.rooms_flooders {
        let _ = writeln!(
            out,
            "  /rooms flooders: {} in batches of {}: {} requests sent, {} SCRoomsResult received \
             ({} bytes), {} disconnected by the server",
            f.per_flooder.len(),
            f.batch,
            f.requests_sent,
            f.rooms_results_received,
            f.bytes_received,
            f.disconnected
        );
        for (k, one) in f.per_flooder.iter().enumerate() {
            let cut = match one.disconnected_after_s {
                Some(t) => format!(", disconnected after {t:.2} s"),
                None if one.disconnected => ", disconnected".into(),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "    flooder {k}: {} sent, {} SCRoomsResult, {} other, {} bytes{cut}",
                one.requests_sent,
                one.rooms_results_received,
                one.other_messages,
                one.bytes_received
            );
        }
    }
    if let Some(f) = &h.flood {
        let _ = writeln!(
            out,
            "  flood room: {} slow readers ({} B/s each), {} never-readers; {} chats/s of {} B pad",
            f.slow_readers, f.read_bps, f.never_readers, f.rate, f.pad
        );
        let _ = writeln!(
            out,
            "    flood chats sent {}, sender unsent at end {} B{}, leave notices {} (members \
             the server removed)",
            f.chats_sent,
            f.sender_unsent_bytes_at_end,
            if f.sender_disconnected {
                ", sender disconnected"
            } else {
                ""
            },
            f.leave_notices
        );
        let _ = writeln!(
            out,
            "    slow readers read {} B ({} chats); cut {} of {}{}",
            f.slow_bytes_read,
            f.slow_chats_read,
            f.slow_readers_cut,
            f.slow_readers,
            spread(&f.slow_readers_cut_after_s)
        );
        let _ = writeln!(
            out,
            "    never-readers cut {} of {}{}",
            f.never_readers_cut,
            f.never_readers,
            spread(&f.never_readers_cut_after_s)
        );
    }
    if let Some(s) = &h.slowloris {
        let _ = writeln!(
            out,
            "  slowloris: {} connections, a byte every {} ms ({} B sent): cut {}{}, open at end {}",
            s.connections,
            s.interval_ms,
            s.bytes_sent,
            s.cut,
            spread(&s.cut_after_s),
            s.open_at_end
        );
    }
    let samples = |m: &MemorySamples| {
        let v = |x: Option<u64>| x.map_or("–".to_string(), |k| k.to_string());
        let mut line = format!(
            "before {}, peak {}, end {}, +2 s {}",
            v(m.before),
            v(m.peak),
            v(m.end),
            v(m.after_2s)
        );
        if m.after_leave.is_some() {
            let _ = write!(line, ", after leaving {}", v(m.after_leave));
        }
        line
    };
    let _ = writeln!(
        out,
        "  kernel TCP memory KiB: {}",
        samples(&h.kernel_tcp_mem_kb)
    );
    if let Some(rss) = &h.server_rss_kb {
        let _ = writeln!(out, "  server RSS KiB: {}", samples(rss));
    }
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
            server_user_s: None,
            server_system_s: None,
            others_cpu_s: Vec::new(),
            server_context_switches: None,
            others_context_switches: Vec::new(),
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
                connect_to_joined_ms: None,
            },
            steps: vec![step(None)],
            result: Some(step(None)),
            find_max: None,
            server_memory_end: None,
            errors: ErrorReport::default(),
            hostile: None,
            tls: None,
            registered_rooms: None,
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
        assert!(v.get("hostile").is_none(), "no hostile object unless used");
        assert!(v.get("tls").is_none(), "no tls object unless used");
    }

    #[test]
    fn tls_is_reported_when_used() {
        let mut r = report();
        r.tls = Some(TlsReport {
            server_name: "localhost".into(),
            trust: "ca-file",
            version: Some("TLSv1_3".into()),
            cipher_suite: Some("TLS13_AES_256_GCM_SHA384".into()),
        });
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["tls"]["version"], "TLSv1_3");
        assert_eq!(v["tls"]["trust"], "ca-file");
        let text = render_text(&r);
        assert!(
            text.contains("TLS: TLSv1_3 TLS13_AES_256_GCM_SHA384, server name localhost"),
            "{text}"
        );
    }

    #[test]
    fn setup_latency_and_hostile_figures_are_reported() {
        let mut r = report();
        let p = Percentiles {
            p50: 1.5,
            p90: 2.0,
            p99: 1003.0,
            p999: 1003.0,
            max: 1004.0,
            mean: 20.0,
        };
        r.setup.connect_to_joined_ms = Some(p);
        r.hostile = Some(HostileReport {
            flood: Some(FloodReport {
                slow_readers: 10,
                never_readers: 2,
                never_readers_cut: 2,
                never_readers_cut_after_s: Some(Spread {
                    count: 2,
                    p50: 1.25,
                    max: 2.5,
                }),
                ..FloodReport::default()
            }),
            slowloris: Some(SlowlorisReport {
                connections: 5,
                cut: 3,
                open_at_end: 2,
                ..SlowlorisReport::default()
            }),
            kernel_tcp_mem_kb: MemorySamples {
                before: Some(100),
                peak: Some(900),
                end: Some(300),
                after_2s: Some(120),
                after_leave: None,
            },
            ..HostileReport::default()
        });
        let v: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(v["setup"]["connect_to_joined_ms"]["p99"], 1003.0);
        let h = &v["hostile"];
        assert_eq!(h["flood"]["never_readers_cut"], 2);
        assert_eq!(h["flood"]["never_readers_cut_after_s"]["max"], 2.5);
        assert_eq!(h["slowloris"]["open_at_end"], 2);
        assert_eq!(h["kernel_tcp_mem_kb"]["peak"], 900);
        assert!(h.get("idle_rooms").is_none() && h.get("rooms_flooders").is_none());
        assert!(h["kernel_tcp_mem_kb"].get("after_leave").is_none());
        let text = render_text(&r);
        for needle in [
            "connect → joined ms: p50 1.500, p99 1003.000",
            "SYN retransmit",
            "never-readers cut 2 of 2 after 1.25 s median, 2.50 s max",
            "slowloris: 5 connections",
            "kernel TCP memory KiB: before 100, peak 900, end 300, +2 s 120",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from\n{text}");
        }
    }
}
