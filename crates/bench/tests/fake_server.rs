//! The bench against a small fake server (`fake/mod.rs`): does it count right, and
//! does it notice when a server loses, duplicates or misdirects chats?

mod fake;

use chat_bench::cli::Args;
use chat_bench::report::StepReport;
use chat_bench::{BenchError, run};
use clap::Parser;
use fake::{FakeServer, Faults};

/// 3 rooms × 4 clients, 200 chats/s for 1 s, plus `extra` flags.
fn args(server: &FakeServer, format: &str, extra: &[&str]) -> Args {
    let port = format!("--port={}", server.addr.port());
    let format = format!("--format={format}");
    let base = [
        "chat-bench",
        "--host=127.0.0.1",
        &port,
        &format,
        "--rooms=3",
        "--per-room=4",
        "--rate=200",
        "--duration=1",
        "--drain=2",
    ];
    Args::try_parse_from(base.iter().chain(extra)).unwrap()
}

fn result(server: &FakeServer, format: &str, extra: &[&str]) -> StepReport {
    let report = run(&args(server, format, extra)).unwrap();
    assert_eq!(report.setup.connections, 12);
    report.result.expect("a fixed run always has a result")
}

#[test]
fn a_correct_server_gets_a_clean_bill_in_both_formats() {
    for format in ["json", "protobuf"] {
        // Rooms already on the server: the bench must look its own up by title.
        let server = FakeServer::start(Faults::default(), 5);
        let r = result(&server, format, &["--pad=50"]);
        assert_eq!(r.chats_sent, 200, "{format}");
        assert_eq!(r.expected_deliveries, 600);
        assert_eq!(r.deliveries, 600);
        assert_eq!((r.lost, r.duplicated, r.out_of_order), (0, 0, 0));
        assert_eq!((r.misdelivered, r.stale, r.unexpected_messages), (0, 0, 0));
        assert_eq!(r.connections_alive_at_end, 12);
        let latency = r.latency_ms.expect("latencies recorded");
        assert!(latency.p50 > 0.0 && latency.p50 <= latency.p99 && latency.p99 <= latency.max);
    }
}

#[test]
fn connect_to_joined_is_measured_for_every_client() {
    let server = FakeServer::start(Faults::default(), 0);
    let report = run(&args(&server, "json", &[])).unwrap();
    let setup = report.setup.connect_to_joined_ms.expect("measured");
    assert!(setup.p50 > 0.0 && setup.p50 <= setup.p99 && setup.p99 <= setup.max);
    assert!(
        setup.max < 1000.0,
        "no SYN retransmits on loopback: {setup:?}"
    );
    assert!(report.hostile.is_none(), "no hostile populations asked for");
}

/// A run with hostile populations: the measured rooms must come out as clean as
/// without them (the fake server is correct), and the populations' report present.
fn hostile_run(
    server: &FakeServer,
    format: &str,
    extra: &[&str],
) -> chat_bench::report::HostileReport {
    let report = run(&args(server, format, extra)).unwrap();
    let r = report.result.as_ref().unwrap();
    assert_eq!(
        (r.deliveries, r.lost),
        (600, 0),
        "{format} {extra:?}: {r:?}"
    );
    assert_eq!(
        r.connections_alive_at_end, 12,
        "hostile connections are not counted"
    );
    assert_eq!(report.errors.closed_by_server, 0, "{:?}", report.errors);
    assert_eq!(report.errors.unexpected_messages, 0, "{:?}", report.errors);
    report.hostile.expect("hostile report")
}

#[test]
fn idle_rooms_are_created_and_stay() {
    for format in ["json", "protobuf"] {
        let server = FakeServer::start(Faults::default(), 2);
        let h = hostile_run(&server, format, &["--idle-rooms=7"]);
        let idle = h.idle_rooms.expect("idle rooms reported");
        assert_eq!(
            (idle.rooms, idle.open_at_end, idle.closed_by_server),
            (7, 7, 0)
        );
        assert_eq!(h.connections, 7);
        assert!(h.rooms_flooders.is_none() && h.flood.is_none() && h.slowloris.is_none());
        assert!(h.kernel_tcp_mem_kb.before.is_some() && h.kernel_tcp_mem_kb.after_2s.is_some());
        assert!(h.server_rss_kb.is_none(), "no --server-pid");
    }
}

#[test]
fn rooms_flooders_send_batches_and_count_the_answers() {
    for format in ["json", "protobuf"] {
        let server = FakeServer::start(Faults::default(), 0);
        let h = hostile_run(
            &server,
            format,
            &["--idle-rooms=3", "--rooms-flooders=2", "--rooms-batch=8"],
        );
        let f = h.rooms_flooders.expect("flooders reported");
        assert_eq!((f.batch, f.per_flooder.len(), f.disconnected), (8, 2, 0));
        for one in &f.per_flooder {
            assert!(one.requests_sent >= 8, "{format}: {one:?}");
            assert!(one.rooms_results_received > 0, "{format}: {one:?}");
            assert!(one.rooms_results_received <= one.requests_sent);
            assert_eq!(one.other_messages, 0, "{format}: {one:?}");
            assert!(!one.disconnected);
        }
        assert_eq!(
            f.requests_sent,
            f.per_flooder.iter().map(|x| x.requests_sent).sum::<u64>()
        );
    }
}

#[test]
fn flood_room_readers_read_slowly_and_cut_members_are_seen() {
    let server = FakeServer::start(
        Faults {
            kick_names_starting: Some("n"),
            ..Faults::default()
        },
        0,
    );
    let h = hostile_run(
        &server,
        "json",
        &[
            "--flood-members=3",
            "--flood-read-bps=2000",
            "--flood-never-read=2",
            "--flood-rate=100",
            "--flood-pad=10",
            "--flood-leave-wait=0.1",
        ],
    );
    let f = h.flood.expect("flood reported");
    assert_eq!((f.slow_readers, f.never_readers, f.rate), (3, 2, 100));
    assert_eq!(f.chats_sent, 100, "100 chats/s for the 1 s run");
    assert!(!f.sender_disconnected);
    // About 2,000 B/s each for the run (about 1 s, drain included): far less than
    // the ~4,000 B each chat stream is, and never more than the budget allows.
    assert!(f.slow_bytes_read > 0 && f.slow_chats_read > 0, "{f:?}");
    assert!(f.slow_bytes_read <= 3 * 2000 * 4, "{f:?}");
    assert_eq!(f.slow_readers_cut, 0, "{f:?}");
    assert_eq!(
        f.never_readers_cut, 2,
        "the fake cut both never-readers: {f:?}"
    );
    let cut = f.never_readers_cut_after_s.expect("cut times");
    assert!(cut.count == 2 && cut.max < 1.0, "{cut:?}");
    assert!(h.kernel_tcp_mem_kb.after_leave.is_some());
}

#[test]
fn slowloris_connections_trickle_and_cuts_are_timed() {
    // A server without protection keeps them open to the end.
    let server = FakeServer::start(Faults::default(), 0);
    let h = hostile_run(
        &server,
        "json",
        &["--slowloris=3", "--slowloris-interval-ms=50"],
    );
    let s = h.slowloris.expect("slowloris reported");
    assert_eq!((s.connections, s.cut, s.open_at_end), (3, 0, 3));
    assert!(s.cut_after_s.is_none());
    // 2 header bytes each, then about one byte per 50 ms for the 1 s run.
    assert!(s.bytes_sent >= 3 * (2 + 10), "{s:?}");

    // One that cuts a frame incomplete for 200 ms.
    let server = FakeServer::start(
        Faults {
            cut_incomplete_after: Some(std::time::Duration::from_millis(200)),
            ..Faults::default()
        },
        0,
    );
    let h = hostile_run(
        &server,
        "json",
        &["--slowloris=3", "--slowloris-interval-ms=50"],
    );
    let s = h.slowloris.expect("slowloris reported");
    assert_eq!((s.cut, s.open_at_end), (3, 0), "{s:?}");
    let after = s.cut_after_s.expect("cut times");
    assert!(after.p50 >= 0.2 && after.max < 1.0, "{after:?}");
}

#[test]
fn dropped_chats_are_lost() {
    let server = FakeServer::start(
        Faults {
            drop_every: Some(10),
            ..Faults::default()
        },
        0,
    );
    let r = result(&server, "json", &[]);
    assert_eq!(r.expected_deliveries, 600);
    assert_eq!(r.lost, 60);
    assert_eq!(r.deliveries, 540);
    assert_eq!(r.duplicated, 0);
}

#[test]
fn duplicated_chats_are_counted_and_not_delivered_twice() {
    let server = FakeServer::start(
        Faults {
            duplicate_every: Some(10),
            ..Faults::default()
        },
        0,
    );
    let r = result(&server, "protobuf", &[]);
    assert_eq!(r.deliveries, 600);
    assert_eq!(r.duplicated, 60);
    assert_eq!(r.lost, 0);
}

#[test]
fn echoes_to_the_sender_are_misdelivered() {
    let server = FakeServer::start(
        Faults {
            echo: true,
            ..Faults::default()
        },
        0,
    );
    let r = result(&server, "json", &[]);
    assert_eq!(r.deliveries, 600);
    assert_eq!(r.misdelivered, 200);
}

#[test]
fn a_connection_cut_mid_run_is_reported_not_fatal() {
    let server = FakeServer::start(
        Faults {
            kick_at: Some(100),
            ..Faults::default()
        },
        0,
    );
    let report = run(&args(&server, "json", &["--drain=0.5"])).unwrap();
    let r = report.result.unwrap();
    assert_eq!(report.errors.closed_by_server, 1);
    assert_eq!(r.connections_alive_at_end, 11);
    assert!(r.lost > 0, "the cut-off member's chats are lost");
    assert!(r.chats_skipped > 0, "the cut-off member sends no more");
    assert_eq!(r.chats_sent + r.chats_skipped, 200);
    assert!(
        report
            .errors
            .samples
            .iter()
            .any(|s| s.contains("closed the connection")),
        "{:?}",
        report.errors.samples
    );
}

#[test]
fn undecodable_messages_are_counted() {
    let server = FakeServer::start(
        Faults {
            garbage_every: Some(100),
            ..Faults::default()
        },
        0,
    );
    let report = run(&args(&server, "json", &[])).unwrap();
    assert_eq!(report.errors.decode_errors, 6);
    let r = report.result.unwrap();
    assert_eq!((r.deliveries, r.lost), (600, 0));
}

#[test]
fn find_max_climbs_to_the_cap_on_an_easy_server() {
    let server = FakeServer::start(Faults::default(), 0);
    let extra = [
        "--find-max",
        "--duration=0.3",
        "--max-rate=800",
        // Generous: this checks the search, not the fake server's latency.
        "--p99-max-ms=1000",
    ];
    let report = run(&args(&server, "json", &extra)).unwrap();
    let rates: Vec<u64> = report.steps.iter().map(|s| s.rate).collect();
    assert_eq!(rates, vec![200, 400, 800]);
    assert!(report.steps.iter().all(|s| s.passed == Some(true)));
    assert_eq!(report.find_max.unwrap().best_rate, Some(800));
    let best = report.result.unwrap();
    assert_eq!(best.rate, 800);
    assert_eq!(best.stale, 0, "steps must not leak into each other");
}

#[test]
fn a_refused_connection_is_a_clear_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let args =
        Args::try_parse_from(["chat-bench", &format!("--port={port}"), "--rooms=2"]).unwrap();
    match run(&args) {
        Err(BenchError::Setup(why)) => assert!(why.contains("cannot connect"), "{why}"),
        other => panic!("expected a setup error, got {other:?}"),
    }
}
