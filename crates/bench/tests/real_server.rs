//! The bench against the real chat server, started in-process on an ephemeral port:
//! a small scenario must come out clean (nothing lost, duplicated or reordered, and
//! every chat delivered to the other K − 1 members), through the library API and
//! through the binary's `--json` output, in both formats, over plain TCP and over TLS
//! (a self-signed pair made with rcgen, trusted with `--tls-ca`); and with
//! `--registered-rooms` against a server with its store in a temporary directory,
//! whose rooms' history a restarted server still has.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use chat_bench::cli::Args;
use chat_server::config::StoreSettings;
use chat_server::{Server, ServerConfig, TlsAcceptor, TlsFiles};
use clap::Parser;

/// Runs `f` against a fresh server, then shuts the server down and checks it exits
/// cleanly.
fn with_server<T>(f: impl FnOnce(SocketAddr) -> T) -> T {
    with_config(ServerConfig::local(2), f)
}

/// [`with_server`] with the server configured by `config`.
fn with_config<T>(config: ServerConfig, f: impl FnOnce(SocketAddr) -> T) -> T {
    let server = Server::bind(config).expect("bind");
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

/// A directory with a self-signed pair for `localhost` (`cert.pem`, `key.pem`),
/// removed on drop.
struct Pair {
    dir: PathBuf,
}

impl Pair {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("chat-bench-tls-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        std::fs::write(dir.join("cert.pem"), made.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), made.signing_key.serialize_pem()).unwrap();
        Pair { dir }
    }

    fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    fn files(&self) -> TlsFiles {
        TlsFiles {
            cert: self.cert(),
            key: self.dir.join("key.pem"),
        }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `f` against a fresh server with a TLS listener for `files`, handing it the
/// TLS address.
fn with_tls_server<T>(files: TlsFiles, f: impl FnOnce(SocketAddr) -> T) -> T {
    let acceptor = TlsAcceptor::load(files).expect("the pair loads");
    let config = ServerConfig {
        tls: Some(Arc::new(acceptor)),
        tls_bind: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..ServerConfig::local(2)
    };
    let server = Server::bind(config).expect("bind");
    let addr = server.tls_addr().expect("a TLS listener");
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

fn tls_args(addr: SocketAddr, format: &str, ca: &Path) -> Args {
    let port = format!("--port={}", addr.port());
    let format = format!("--format={format}");
    let ca = format!("--tls-ca={}", ca.display());
    let argv = [
        "chat-bench",
        "--host=127.0.0.1",
        &port,
        &format,
        "--pad=20",
        "--tls",
        &ca,
    ];
    Args::try_parse_from(argv.iter().chain(&SCENARIO)).unwrap()
}

#[test]
fn a_tls_run_delivers_everything_in_order_in_both_formats() {
    let pair = Pair::new("formats");
    for format in ["json", "protobuf"] {
        let report = with_tls_server(pair.files(), |addr| {
            chat_bench::run(&tls_args(addr, format, &pair.cert())).expect("bench run")
        });
        let r = report.result.expect("fixed runs have a result");
        assert_eq!(report.setup.connections, 12);
        assert!(report.target.ends_with("(TLS)"), "{}", report.target);
        let tls = report.tls.expect("a TLS report");
        assert_eq!(tls.trust, "ca-file");
        assert!(
            tls.version.is_some() && tls.cipher_suite.is_some(),
            "{tls:?}"
        );
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
        assert_eq!(report.errors.io_errors, 0);
        assert!(r.latency_ms.is_some());
    }
}

#[test]
fn a_tls_find_max_keeps_its_connections_between_steps() {
    // Several steps over the same TLS connections: records that span reads, steps
    // that settle, nothing lost or reordered at the low rates.
    let pair = Pair::new("findmax");
    let report = with_tls_server(pair.files(), |addr| {
        let port = format!("--port={}", addr.port());
        let ca = format!("--tls-ca={}", pair.cert().display());
        let args = Args::try_parse_from([
            "chat-bench",
            &port,
            "--tls",
            &ca,
            "--rooms=2",
            "--per-room=5",
            "--find-max",
            "--rate=100",
            "--max-rate=400",
            "--duration=0.5",
            "--drain=2",
            "--p99-max-ms=1000",
            "--pad=3000",
        ])
        .unwrap();
        chat_bench::run(&args).expect("bench run")
    });
    assert!(report.steps.len() >= 2, "{:?}", report.steps);
    for step in &report.steps {
        assert_eq!(step.deliveries, step.expected_deliveries, "{step:?}");
        assert_eq!((step.lost, step.duplicated, step.out_of_order), (0, 0, 0));
    }
    assert_eq!(report.errors.io_errors + report.errors.closed_by_server, 0);
}

#[test]
fn web_clients_over_tls_speak_wss() {
    // The web port serves only https:// and wss:// once the server has a pair.
    let pair = Pair::new("web");
    let acceptor = TlsAcceptor::load(pair.files()).expect("the pair loads");
    let config = ServerConfig {
        tls: Some(Arc::new(acceptor)),
        web: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..ServerConfig::local(2)
    };
    let server = Server::bind(config).expect("bind");
    let web = server.web_addr().expect("a web listener");
    let stop = server.shutdown_handle();
    let thread = std::thread::spawn(move || server.run());
    let port = format!("--ports={}", web.port());
    let ca = format!("--tls-ca={}", pair.cert().display());
    let args = Args::try_parse_from(
        ["chat-bench", &port, "--web", "--tls", &ca]
            .iter()
            .chain(&SCENARIO),
    )
    .unwrap();
    let report = chat_bench::run(&args);
    stop.shutdown();
    thread.join().expect("server thread").expect("server run");
    let report = report.expect("bench run");
    assert!(report.target.ends_with("(WebSocket over TLS)"));
    let r = report.result.expect("a result");
    assert_eq!(r.deliveries, 600, "{r:?}");
    assert_eq!((r.lost, r.duplicated, r.out_of_order), (0, 0, 0));
}

#[test]
fn the_certificate_is_checked() {
    // Trusting another pair's certificate: the handshake fails, setup says so.
    let pair = Pair::new("served");
    let other = Pair::new("other");
    let outcome = with_tls_server(pair.files(), |addr| {
        chat_bench::run(&tls_args(addr, "json", &other.cert()))
    });
    let why = outcome.expect_err("an untrusted certificate").to_string();
    assert!(why.contains("setup failed"), "{why}");
    // And a name the certificate does not carry.
    let outcome = with_tls_server(pair.files(), |addr| {
        let mut args = tls_args(addr, "json", &pair.cert());
        args.tls_server_name = "chat.example.org".into();
        chat_bench::run(&args)
    });
    assert!(outcome.is_err());
}

#[test]
fn the_binary_refuses_tls_without_a_trust_decision_and_runs_insecure_when_asked() {
    let output = Command::new(env!("CARGO_BIN_EXE_chat-bench"))
        .args(["--port=1", "--tls"])
        .output()
        .expect("run chat-bench");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--tls-insecure"), "{stderr}");

    let pair = Pair::new("binary");
    let output = with_tls_server(pair.files(), |addr| {
        Command::new(env!("CARGO_BIN_EXE_chat-bench"))
            .arg(format!("--port={}", addr.port()))
            .args(["--tls", "--tls-insecure", "--json"])
            .args(SCENARIO)
            .output()
            .expect("run chat-bench")
    });
    assert!(
        output.status.success(),
        "chat-bench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["tls"]["trust"], "insecure");
    assert_eq!(report["result"]["deliveries"], 600);
    assert_eq!(report["result"]["lost"], 0);
    assert_eq!(report["result"]["out_of_order"], 0);
}

/// A fresh data directory for a server's store, removed on drop.
struct DataDir {
    dir: PathBuf,
}

impl DataDir {
    fn new(tag: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("chat-bench-store-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        DataDir { dir }
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `f` against a fresh server keeping its store in `dir` (default store
/// options: a 100 ms commit window, 1,000 chats a room), then shuts it down, which
/// commits what the store still holds.
fn with_store_server<T>(dir: &Path, f: impl FnOnce(SocketAddr) -> T) -> T {
    let config = ServerConfig {
        store: Some(StoreSettings {
            dir: dir.to_owned(),
            options: Default::default(),
        }),
        ..ServerConfig::local(2)
    };
    with_config(config, f)
}

/// A blocking JSON client, enough to read back a room's history.
struct RawClient {
    stream: std::net::TcpStream,
    buf: chat_proto::frame::FrameBuf,
}

impl RawClient {
    fn connect(addr: SocketAddr) -> Self {
        let stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        RawClient {
            stream,
            buf: chat_proto::frame::FrameBuf::new(),
        }
    }

    fn send(&mut self, request: &chat_proto::Request) {
        use std::io::Write;
        let mut out = Vec::new();
        chat_proto::codec::encode_request(chat_proto::WireFormat::Json, request, &mut out).unwrap();
        self.stream.write_all(&out).unwrap();
    }

    /// The next message, owned.
    fn receive(&mut self) -> chat_proto::Response<'static> {
        loop {
            if let Some(payload) = self.buf.next_frame() {
                let mut decoder =
                    chat_proto::codec::ResponseDecoder::new(chat_proto::WireFormat::Json);
                let message = decoder.feed(payload).expect("a JSON message is one frame");
                return message.expect("decodes").into_owned();
            }
            let n = self.buf.read_from(&mut self.stream).expect("read");
            assert!(n > 0, "the server closed the connection");
        }
    }
}

/// The history a client that opted in is given on joining room `id`.
fn history_of(addr: SocketAddr, id: i64) -> (Vec<chat_proto::HistoryLine>, bool) {
    let mut client = RawClient::connect(addr);
    client.send(&chat_proto::Request::Hello {
        features: vec!["history".into()],
    });
    client.send(&chat_proto::Request::JoinRoom { room_id: id });
    loop {
        if let chat_proto::Response::History { lines, more, .. } = client.receive() {
            return (lines, more);
        }
    }
}

#[test]
fn registered_rooms_are_joined_by_every_member_and_their_history_outlives_the_server() {
    let data = DataDir::new("registered");
    let mut rooms = Vec::new();
    // Two invocations on one data directory: two owners (names from the process id
    // and a per-invocation nonce), the second's rooms numbered after the first's.
    for format in ["json", "protobuf"] {
        let report = with_store_server(&data.dir, |addr| {
            let port = format!("--port={}", addr.port());
            let format = format!("--format={format}");
            let argv = ["chat-bench", &port, &format, "--registered-rooms"];
            let args = Args::try_parse_from(argv.iter().chain(&SCENARIO)).unwrap();
            chat_bench::run(&args).expect("bench run")
        });
        let registered = report.registered_rooms.expect("a registered-rooms report");
        assert_eq!(registered.rooms, 3, "{registered:?}");
        assert!(
            registered.owner.starts_with("bench-owner-"),
            "{registered:?}"
        );
        assert!(registered.register_account_s <= registered.seconds);
        let (first, last) = (
            registered.first_room_id.unwrap(),
            registered.last_room_id.unwrap(),
        );
        assert_eq!(last - first, 2, "{registered:?}");
        rooms.push(first);
        let r = report.result.expect("fixed runs have a result");
        assert_eq!(report.setup.connections, 12);
        assert_eq!(r.chats_sent, 200, "{format}");
        assert_eq!(r.deliveries, 200 * 3, "{format}: {r:?}");
        assert_eq!((r.lost, r.duplicated, r.out_of_order), (0, 0, 0));
        assert_eq!((r.misdelivered, r.unexpected_messages), (0, 0), "{format}");
        assert_eq!(report.errors.unexpected_messages, 0, "{:?}", report.errors);
        assert_eq!(report.errors.closed_by_server, 0);
    }
    assert!(rooms[1] > rooms[0] + 2, "{rooms:?}");
    // A server started again on the directory has every room, with its chats: a
    // client that opts in to history is given the last 50 on joining.
    with_store_server(&data.dir, |addr| {
        for &id in &rooms {
            let (lines, more) = history_of(addr, id);
            assert_eq!(lines.len(), 50, "room {id}");
            assert!(more, "room {id}: about 67 chats were sent to it");
            assert!(
                lines.iter().all(|l| l.text.starts_with('b')),
                "room {id}: {lines:?}"
            );
        }
    });
}

#[test]
fn registered_rooms_need_a_server_with_accounts() {
    // ServerConfig::local has no store (as `chat-server --no-store`).
    let outcome = with_server(|addr| {
        let port = format!("--port={}", addr.port());
        let args =
            Args::try_parse_from(["chat-bench", &port, "--registered-rooms", "--duration=1"])
                .unwrap();
        chat_bench::run(&args)
    });
    let why = outcome
        .expect_err("no accounts, no registered rooms")
        .to_string();
    assert!(
        why.contains("setup failed")
            && why.contains("bench-owner-")
            && why.contains("does not offer accounts"),
        "{why}"
    );
}
