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
/// With `--no-store`: one that gets as far as opening the store must not write into
/// the source tree (the default data directory is relative to where it runs).
fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .arg("--no-store")
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
    // Waits for the line: the log is read by a thread of its own.
    server.log_line("max connections: 7");
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

/// A config file for one test, in a directory of its own (removed on drop).
struct ConfigFile {
    dir: std::path::PathBuf,
    path: std::path::PathBuf,
}

impl ConfigFile {
    fn new(tag: &str, text: &str) -> ConfigFile {
        let dir = std::env::temp_dir().join(format!("chat-config-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let path = dir.join("chat-server.toml");
        std::fs::write(&path, text).expect("write the config file");
        ConfigFile { dir, path }
    }

    fn flag(&self) -> String {
        format!("--config={}", self.path.display())
    }

    fn shown(&self) -> String {
        self.path.display().to_string()
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The status of `GET /` on the web port with `Host: host` (421 for a name that is
/// not allowed, 200 for one that is).
fn status_for_host(web: std::net::SocketAddr, host: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(web).expect("connect to the web port");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {response:?}"))
}

/// A server started with `args` and `env`: its `max connections: N` from the start
/// line, and its web port.
fn started(args: &[&str], env: &[(&str, &str)]) -> (BinaryServer, String, std::net::SocketAddr) {
    let server = BinaryServer::start_with(args, |command| {
        for (name, value) in env {
            command.env(name, value);
        }
    });
    let line = server.log_line("listening on ");
    let max = line
        .split("max connections: ")
        .nth(1)
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    let web = server.log_line("web client on http://");
    let web = web
        .split("web client on http://")
        .nth(1)
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_else(|| panic!("{web}"))
        .parse()
        .expect("the web port's address");
    (server, max, web)
}

/// Precedence: the command line beats the environment, which beats the config file,
/// which beats the defaults. A repeatable flag (`web-host`) takes all its values from
/// one source: the first that gives any (the file's names are not added to the
/// environment's, nor those to the command line's).
#[test]
fn flags_come_from_the_command_line_then_the_environment_then_the_config_file() {
    let file = ConfigFile::new(
        "precedence",
        "# chat-server settings\nmax-connections = 7\nweb-host = [\"file-a.example\", \"file-b.example\"]\nbind = \"127.0.0.1\"\n",
    );
    let config = file.flag();
    let web = "--web=127.0.0.1:0";

    // The defaults: nothing else says anything.
    let (_server, max, port) = started(&["--bind=127.0.0.1", web], &[]);
    assert_eq!(max, "10000");
    assert_eq!(status_for_host(port, "file-a.example"), 421);

    // The file over the defaults.
    let (server, max, port) = started(&[&config, web], &[]);
    assert_eq!(max, "7");
    assert!(server.addr.ip().is_loopback(), "{}", server.addr);
    assert_eq!(status_for_host(port, "file-a.example"), 200);
    assert_eq!(status_for_host(port, "file-b.example"), 200);
    assert_eq!(status_for_host(port, "other.example"), 421);

    // The file named by the environment, the same.
    let (_server, max, _) = started(&[web], &[("CHAT_SERVER_CONFIG", &file.shown())]);
    assert_eq!(max, "7");

    // The environment over the file.
    let env = [
        ("CHAT_SERVER_MAX_CONNECTIONS", "8"),
        ("CHAT_SERVER_WEB_HOST", "env-a.example,env-b.example"),
    ];
    let (_server, max, port) = started(&[&config, web], &env);
    assert_eq!(max, "8");
    assert_eq!(status_for_host(port, "env-a.example"), 200);
    assert_eq!(status_for_host(port, "env-b.example"), 200);
    assert_eq!(status_for_host(port, "file-a.example"), 421);

    // The command line over both.
    let (_server, max, port) = started(
        &[
            &config,
            web,
            "--max-connections=9",
            "--web-host=cli.example",
        ],
        &env,
    );
    assert_eq!(max, "9");
    assert_eq!(status_for_host(port, "cli.example"), 200);
    assert_eq!(status_for_host(port, "env-a.example"), 421);
    assert_eq!(status_for_host(port, "file-a.example"), 421);
}

/// A variable that looks like a setting but names no flag is not ignored in silence.
#[test]
fn a_variable_that_names_no_flag_is_warned_about() {
    let server = BinaryServer::start_with(&["--bind=127.0.0.1"], |command| {
        command.env("CHAT_SERVER_PROT", "9001");
    });
    let line = server.log_line("CHAT_SERVER_PROT");
    assert!(
        line.ends_with(
            "WARN chat_server: CHAT_SERVER_PROT is set but sets no flag (CHAT_SERVER_<FLAG>, e.g. CHAT_SERVER_PORT); ignored"
        ),
        "{line}"
    );
}

/// Runs the binary with `args` and `env`; it must fail at start with status 2 and
/// exactly `says` (one line) on stderr, no panic.
#[track_caller]
fn refused_exactly(args: &[&str], env: &[(&str, &str)], says: &str) {
    let output = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(args)
        .envs(env.iter().copied())
        .env("NO_COLOR", "1")
        .output()
        .expect("run chat-server");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr, format!("{says}\n"), "{args:?}");
}

/// A config file that cannot be read, is not TOML, names a key that is no flag, gives
/// a value of the wrong type or one the flag refuses: the start stops with status 2
/// and a message naming the file, the key and its line. A bad variable is named too.
#[test]
fn a_bad_config_file_is_refused_naming_the_file_the_key_and_the_line() {
    let cases = [
        (
            "max-connections = 7\nmax_connections = 8\n",
            "line 2: unknown key \"max_connections\": chat-server has no flag --max_connections (did you mean \"max-connections\"?)",
        ),
        (
            "\n\nprot = 9001\n",
            "line 3: unknown key \"prot\": chat-server has no flag --prot",
        ),
        (
            "port = true\n",
            "line 1: \"port\" must be a string or a number, not a boolean",
        ),
        (
            "web = [\"127.0.0.1:8080\"]\n",
            "line 1: \"web\" must be a string or a number, not an array",
        ),
        (
            "no-store = \"yes\"\n",
            "line 1: \"no-store\" must be true or false, not a string",
        ),
        (
            "web-host = [\"a\", { b = 1 }]\n",
            "line 1: \"web-host\" must be a string or a number, or an array of them, not an array",
        ),
        (
            "# the port\nport = 70000\n",
            "line 2: \"port\": invalid value '70000' for '--port <PORT>': 70000 is not in 0..=65535",
        ),
        (
            "format = \"xml\"\n",
            "line 1: \"format\": invalid value 'xml' for '--format <FORMAT>' [possible values: auto, json, protobuf]",
        ),
        (
            "config = \"other.toml\"\n",
            "line 1: unknown key \"config\": chat-server has no flag --config",
        ),
    ];
    for (i, (text, says)) in cases.iter().enumerate() {
        let file = ConfigFile::new(&format!("bad-{i}"), text);
        refused_exactly(
            &["--port=0", &file.flag()],
            &[],
            &format!("chat-server: config file {}, {says}", file.shown()),
        );
    }

    // Not TOML: the parser's own report, with the line and a caret.
    let file = ConfigFile::new("syntax", "port = 9000\nport = 9001\n");
    let output = run(&[&file.flag()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "chat-server: config file {}: TOML parse error at line 2, column 1\n  |\n2 | port = 9001\n  | ^^^^\nduplicate key\n",
            file.shown()
        )
    );

    // Unreadable.
    let missing =
        std::env::temp_dir().join(format!("chat-no-such-config-{}.toml", std::process::id()));
    refused_exactly(
        &[&format!("--config={}", missing.display())],
        &[],
        &format!(
            "chat-server: cannot read config file {}: No such file or directory (os error 2)",
            missing.display()
        ),
    );

    // Good alone, refused together: where from is said.
    let file = ConfigFile::new("conflict", "data-dir = \"somewhere\"\n");
    refused_exactly(
        &["--port=0", "--no-store", &file.flag()],
        &[],
        &format!(
            "chat-server: with the settings of config file {}: the argument '--data-dir <DIR>' cannot be used with '--no-store'",
            file.shown()
        ),
    );

    let file = ConfigFile::new("requires", "tls-port = 9443\n");
    refused_exactly(
        &["--port=0", &file.flag()],
        &[],
        &format!(
            "chat-server: with the settings of config file {}: the following required arguments were not provided: --tls-key <PATH> --tls-cert <PATH>",
            file.shown()
        ),
    );

    // A bad variable names itself (clap alone would name only the flag).
    refused_exactly(
        &["--port=0"],
        &[("CHAT_SERVER_MAX_CONNECTIONS", "many")],
        "chat-server: CHAT_SERVER_MAX_CONNECTIONS: invalid value 'many' for '--max-connections <MAX_CONNECTIONS>': invalid digit found in string",
    );
}

/// A log reader that went away (`chat-server 2>&1 | head`) costs the log lines, not
/// the server: it serves, and stops cleanly on SIGTERM (logging used to panic the
/// thread that wrote the line).
#[test]
fn a_closed_log_pipe_costs_the_lines_not_the_server() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["--bind=127.0.0.1", "--no-store", "--workers=2"])
        .arg(format!("--port={port}"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn chat-server");
    drop(child.stderr.take());
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = std::time::Instant::now() + TIMEOUT;
    let mut client = loop {
        if let Ok(stream) = std::net::TcpStream::connect(addr) {
            drop(stream);
            break Client::connect(addr, chat_proto::WireFormat::Json);
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("chat-server exited at start: {status:?}");
        }
        assert!(std::time::Instant::now() < deadline, "never listened");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    client.create("logged-to-nobody");
    client.expect_silence();
    let pid = i32::try_from(child.id()).expect("pid fits an i32");
    // SAFETY: kill(2) on our own child, which has not been reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = std::time::Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("chat-server did not stop on SIGTERM with its log pipe closed");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}
