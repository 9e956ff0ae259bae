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
