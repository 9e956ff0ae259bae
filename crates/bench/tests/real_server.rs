//! The bench against the real chat server, started in-process on an ephemeral port:
//! a small scenario must come out clean (nothing lost, duplicated or reordered, and
//! every chat delivered to the other K − 1 members), through the library API and
//! through the binary's `--json` output, in both formats.

use std::net::SocketAddr;
use std::process::Command;

use chat_bench::cli::Args;
use chat_server::{Server, ServerConfig};
use clap::Parser;

/// Runs `f` against a fresh server, then shuts the server down and checks it exits
/// cleanly.
fn with_server<T>(f: impl FnOnce(SocketAddr) -> T) -> T {
    let server = Server::bind(ServerConfig::local(2)).expect("bind");
    let addr = server.local_addr();
    let stop = server.shutdown_handle();
    let thread = std::thread::spawn(move || server.run());
    let out = f(addr);
    stop.shutdown();
    thread
        .join()
        .expect("server thread panicked")
        .expect("server run failed");
    out
}

const SCENARIO: [&str; 5] = [
    "--rooms=3",
    "--per-room=4",
    "--rate=200",
    "--duration=1",
    "--drain=3",
];

#[test]
fn small_scenario_is_clean_in_both_formats() {
    for format in ["json", "protobuf"] {
        let report = with_server(|addr| {
            let port = format!("--port={}", addr.port());
            let format = format!("--format={format}");
            let argv = ["chat-bench", "--host=127.0.0.1", &port, &format, "--pad=20"];
            let args = Args::try_parse_from(argv.iter().chain(&SCENARIO)).unwrap();
            chat_bench::run(&args).expect("bench run")
        });
        let r = report.result.expect("fixed runs have a result");
        assert_eq!(report.setup.connections, 12);
        assert_eq!(r.chats_sent, 200, "{format}");
        assert_eq!(r.expected_deliveries, 200 * 3);
        assert_eq!(r.deliveries, 200 * 3, "{format}: {r:?}");
        assert_eq!(
            (r.lost, r.duplicated, r.out_of_order),
            (0, 0, 0),
            "{format}"
        );
        assert_eq!((r.misdelivered, r.unexpected_messages), (0, 0), "{format}");
        assert_eq!(report.errors.closed_by_server, 0);
        assert!(r.latency_ms.is_some());
    }
}

#[test]
fn the_binary_reports_json() {
    let output = with_server(|addr| {
        Command::new(env!("CARGO_BIN_EXE_chat-bench"))
            .arg(format!("--port={}", addr.port()))
            .arg("--format=protobuf")
            .arg("--json")
            .args(SCENARIO)
            .output()
            .expect("run chat-bench")
    });
    assert!(
        output.status.success(),
        "chat-bench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("stdout is one JSON document");
    let r = &report["result"];
    assert_eq!(report["setup"]["connections"], 12);
    assert_eq!(r["chats_sent"], 200);
    assert_eq!(r["deliveries"], 600);
    assert_eq!(r["lost"], 0);
    assert_eq!(r["duplicated"], 0);
    assert_eq!(r["out_of_order"], 0);
    assert!(r["latency_ms"]["p99"].as_f64().is_some());
}
