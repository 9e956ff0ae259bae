//! The command line: settings that would serve nobody are refused at start with a
//! clear message and exit status 2; a bind failure names the address that failed
//! (chat port or metrics endpoint); the reference server's single-dash flags
//! (`-port=N`) work too; the default log, as JSON, has a line per connection opened
//! and closed (with the reason), per room created and deleted, and per rename.

mod support;

use std::net::TcpListener;
use std::process::{Command, Output};

use support::*;

/// Runs the binary with `args`; it must exit by itself (these all fail at start).
fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run chat-server")
}

#[track_caller]
fn refused(args: &[&str], says: &str) {
    let output = run(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(stderr.contains(says), "{args:?}: {stderr}");
}

#[test]
fn settings_that_serve_nobody_are_refused() {
    refused(&["--port=0", "--max-connections=0"], "--max-connections=0");
    refused(&["--port=0", "--outbound-cap=1000"], "--outbound-cap=1000");
    refused(
        &[
            "--port=0",
            "--outbound-cap=200000",
            "--memory-budget=100000",
        ],
        "--memory-budget=100000",
    );
    refused(&["--port=0", "--chat-rate=0"], "--chat-rate");
    refused(&["--port=0", "--command-burst=0.5"], "--command-burst");
    refused(&["--port=0", "--workers=0"], "--workers");
}

#[test]
fn a_bind_failure_names_the_address_that_failed() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let chat = run(&["--bind=127.0.0.1", &format!("--port={port}")]);
    let stderr = String::from_utf8_lossy(&chat.stderr);
    assert!(!chat.status.success());
    assert!(
        stderr.contains(&format!("127.0.0.1:{port} (chat)")),
        "{stderr}"
    );
    let metrics = run(&[
        "--bind=127.0.0.1",
        "--port=0",
        &format!("--metrics=127.0.0.1:{port}"),
    ]);
    let stderr = String::from_utf8_lossy(&metrics.stderr);
    assert!(!metrics.status.success());
    assert!(
        stderr.contains(&format!("127.0.0.1:{port} (metrics)")),
        "{stderr}"
    );
}

#[test]
fn single_dash_long_flags_work_as_with_the_reference_server() {
    let server = BinaryServer::start(&["-max-connections=7", "-shutdown-from=any"]);
    let log = server.stderr.lock().unwrap().clone();
    assert!(log.contains("max connections: 7"), "{log}");
    let mut client = server.client(chat_proto::WireFormat::Json);
    client.expect_silence();
}

#[test]
fn the_default_log_has_a_line_per_connection_room_and_rename() {
    let mut server = BinaryServer::start(&["--log-format=json"]);
    let mut client = server.client(chat_proto::WireFormat::Json);
    client.set_name("logged");
    client.create("lobby");
    client.leave("lobby");
    client.disconnect();
    let mut probe = server.client(chat_proto::WireFormat::Json);
    probe.expect_silence();
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(server.pid(), libc::SIGTERM) }, 0);
    assert!(server.wait_for_exit().success());
    let log = server.stderr.lock().unwrap().clone();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let with = |message: &str| {
        lines
            .iter()
            .filter(|l| l["fields"]["message"] == message)
            .collect::<Vec<_>>()
    };
    assert_eq!(with("connection opened").len(), 2, "{log}");
    let closed = with("connection closed");
    assert_eq!(closed.len(), 2, "{log}");
    assert!(
        closed
            .iter()
            .any(|l| l["fields"]["name"] == "logged" && l["fields"]["reason"] == "client closed"),
        "{log}"
    );
    assert!(
        closed
            .iter()
            .any(|l| l["fields"]["reason"] == "server shutting down"),
        "{log}"
    );
    let renamed = with("renamed");
    assert_eq!(renamed.len(), 1, "{log}");
    assert_eq!(renamed[0]["fields"]["new"], "logged");
    let created = with("room created");
    assert_eq!(created.len(), 1, "{log}");
    assert_eq!(created[0]["fields"]["title"], "lobby");
    assert_eq!(created[0]["fields"]["room"], 1);
    assert_eq!(with("room deleted").len(), 1, "{log}");
    // Nothing was left out, so no line says `suppressed` (it appears only when > 0).
    assert!(
        lines
            .iter()
            .all(|l| l["fields"].get("suppressed").is_none()),
        "{log}"
    );
}

/// A connection flood costs a bounded number of log lines: the whole server logs at
/// most 1,000 "connection opened/closed" lines per 10 s (each connection's own lines
/// are limited separately).
#[test]
fn a_connection_flood_makes_a_bounded_log() {
    let server = BinaryServer::start_with(&["--log-format=json"], |command| {
        command.env("RUST_LOG", "info");
    });
    const FLOOD: usize = 1500;
    for _ in 0..FLOOD {
        let client = std::net::TcpStream::connect(server.addr).expect("connect");
        drop(client);
    }
    // Every connection was served and closed: the metric would say so; here, a probe
    // that gets its reply was accepted after all of them.
    let mut probe = server.client(chat_proto::WireFormat::Json);
    probe.expect_silence();
    let count = |message: &str| {
        server
            .stderr
            .lock()
            .unwrap()
            .lines()
            .filter(|l| l.contains(&format!("\"message\":\"{message}\"")))
            .count()
    };
    let lines = count("connection opened") + count("connection closed");
    assert!(
        lines <= 1000,
        "{lines} connection lines for {FLOOD} connections"
    );
    assert!(
        count("connection opened") >= 400,
        "the first ones are logged"
    );
}

/// `--bind=localhost` is looked up at start (like the client's `--ip`): the server
/// listens on the loopback and a client reaches it there.
#[test]
fn a_host_name_is_accepted_as_the_bind_address() {
    let server = BinaryServer::start(&["--bind=localhost"]);
    assert!(server.addr.ip().is_loopback(), "{}", server.addr);
    let mut client = server.client(chat_proto::WireFormat::Json);
    client.create("by-name");
    let line = server.log_line("connect with: ");
    assert!(
        line.ends_with(&format!(
            "connect with: chat-client --ip={} --port={}",
            server.addr.ip(),
            server.addr.port()
        )),
        "{line}"
    );
}

/// `--web=localhost:0` and `--metrics=localhost:0` resolve too; the log names the
/// page's URL after the chat port's command line.
#[test]
fn host_names_are_accepted_for_the_web_and_metrics_ports() {
    let server = BinaryServer::start(&[
        "--bind=127.0.0.1",
        "--web=localhost:0",
        "--metrics=localhost:0",
    ]);
    let line = server.log_line("open in a browser: ");
    let url = &line[line.find("http://").expect("a URL")..];
    assert!(
        url.starts_with("http://127.0.0.1:") || url.starts_with("http://[::1]:"),
        "{line}"
    );
    assert!(url.ends_with('/'), "{line}");
    server.log_line("metrics on http://");
}

/// A name that does not resolve is a usage error naming it, before anything binds.
#[test]
fn a_name_that_does_not_resolve_is_refused() {
    refused(
        &["--port=0", "--bind=no-such-host.invalid"],
        "no-such-host.invalid",
    );
    refused(
        &["--port=0", "--web=no-such-host.invalid:8080"],
        "no-such-host.invalid",
    );
    refused(&["--port=0", "--metrics=localhost"], "has no port");
}

/// Plain text on every interface is worth one warning naming the ways out; on the
/// loopback there is none.
#[test]
fn plain_text_on_every_interface_is_warned_about() {
    let open = BinaryServer::start(&["--bind=0.0.0.0"]);
    let line = open.log_line("in clear text");
    assert!(line.contains("WARN"), "{line}");
    assert!(
        line.contains("--tls-cert") && line.contains("--tls-port"),
        "{line}"
    );
    assert!(line.contains("--bind=127.0.0.1"), "{line}");
    let connect = open.log_line("connect with: ");
    assert!(connect.contains("--ip=127.0.0.1 "), "{connect}");

    let local = BinaryServer::start(&["--bind=127.0.0.1"]);
    local.log_line("connect with: ");
    assert_eq!(local.log_count("in clear text"), 0);
}

/// systemd's `Type=notify`: with NOTIFY_SOCKET set, `READY=1` arrives once the
/// server listens (the chat port answers by then), and `STOPPING=1` on SIGTERM.
#[test]
fn readiness_and_stopping_are_told_to_notify_socket() {
    use std::os::unix::net::UnixDatagram;
    let dir = std::env::temp_dir().join(format!("chat-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&path);
    let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
    socket
        .set_read_timeout(Some(TIMEOUT))
        .expect("a read timeout");
    let mut server = BinaryServer::start_with(&["--bind=127.0.0.1"], |command| {
        command.env("NOTIFY_SOCKET", &path);
    });
    let mut buf = [0; 256];
    let n = socket.recv(&mut buf).expect("READY=1 within the timeout");
    assert_eq!(
        String::from_utf8_lossy(&buf[..n]),
        format!("READY=1\nSTATUS=listening on {}", server.addr)
    );
    let mut client = server.client(chat_proto::WireFormat::Json);
    client.expect_silence();
    // SAFETY: `kill` on our own child's pid.
    assert_eq!(unsafe { libc::kill(server.pid(), libc::SIGTERM) }, 0);
    let n = socket
        .recv(&mut buf)
        .expect("STOPPING=1 within the timeout");
    assert_eq!(&buf[..n], b"STOPPING=1\nSTATUS=shutting down");
    assert!(server.wait_for_exit().success());
    let _ = std::fs::remove_dir_all(&dir);
}
