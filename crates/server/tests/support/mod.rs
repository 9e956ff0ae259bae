//! Test support shared by the integration tests: a server to talk to, a blocking
//! [`Client`] that speaks raw frames, and byte builders for hand-made input.
//!
//! * [`TestServer`] runs the library server in-process on `127.0.0.1:0` with 4
//!   workers; dropping it shuts the server down (bounded in time).
//! * [`BinaryServer`] runs the real `chat-server` binary on an ephemeral port and
//!   parses the port from its `listening on <ip>:<port>` log line.
//! * [`Client`] is a `TcpStream` plus a frame buffer and a response decoder. Every
//!   read has a deadline ([`TIMEOUT`]): a test that waits for something that never
//!   comes fails instead of hanging.
//!
//! # Checking that nothing arrives
//!
//! Never by sleeping. [`Client::expect_silence`] sends a `/rooms` probe and asserts
//! that the next message is its `SCRoomsResult`: the server handles one connection's
//! messages in order, so anything sent to this client before the probe was handled
//! would arrive before the probe's reply. The same call on the *sender* of a request
//! that gets no reply (a chat) is a barrier: once it returns, the server has handled
//! the request, and everything it sent to others because of it is already queued in
//! front of any later reply to them.
//!
//! Two parts are modules of their own: [`redis`] (a real `redis-server` and cluster
//! nodes on it) and [`accounts`] (the account, history and resume extensions' helpers
//! and texts), used as `support::redis::…` and `support::accounts::…`.

#![allow(dead_code)] // each test file uses a different part of this module

pub(crate) mod accounts;
pub(crate) mod redis;

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use chat_proto::codec::{encode_request, encode_response};
use chat_proto::frame::{FrameBuf, write_frame};
use chat_proto::{Request, Response, ResponseDecoder, RoomInfo, WireFormat};
use chat_server::{FormatPolicy, Server, ServerConfig, ShutdownHandle};

/// How long any single wait may take before the test fails. Generous: the machine is
/// shared, and a passing test never waits this long.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `$test(format)` once per wire format, as `json::$test` and `protobuf::$test`.
#[allow(unused_macros)] // not every test file has per-format tests
macro_rules! in_both_formats {
    ($($test:ident),+ $(,)?) => {
        mod json {
            $(#[test] fn $test() { super::$test(chat_proto::WireFormat::Json); })+
        }
        mod protobuf {
            $(#[test] fn $test() { super::$test(chat_proto::WireFormat::Protobuf); })+
        }
    };
}
#[allow(unused_imports)]
pub(crate) use in_both_formats;

// ---------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------

/// The library server, running on its own thread.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    /// The metrics endpoint, when the config asked for one (`metrics: Some(..)`).
    pub(crate) metrics: Option<SocketAddr>,
    /// The web client's address, when the config asked for one (`web: Some(..)`).
    pub(crate) web: Option<SocketAddr>,
    handle: ShutdownHandle,
    /// Receives `run()`'s result when the server thread ends.
    done: mpsc::Receiver<io::Result<()>>,
}

impl TestServer {
    /// A server on `127.0.0.1:0` with 4 workers, detecting each client's format.
    pub(crate) fn start() -> TestServer {
        TestServer::with_config(ServerConfig::local(4))
    }

    /// A server that accepts only `format`.
    pub(crate) fn only(format: WireFormat) -> TestServer {
        TestServer::with_config(ServerConfig {
            format: FormatPolicy::Only(format),
            ..ServerConfig::local(4)
        })
    }

    pub(crate) fn with_config(config: ServerConfig) -> TestServer {
        let server = Server::bind(config).expect("bind the test server");
        let addr = server.local_addr();
        let metrics = server.metrics_addr();
        let web = server.web_addr();
        let handle = server.shutdown_handle();
        let (tx, done) = mpsc::channel();
        thread::Builder::new()
            .name("test-server".into())
            .spawn(move || {
                let _ = tx.send(server.run());
            })
            .expect("spawn the server thread");
        TestServer {
            addr,
            metrics,
            web,
            handle,
            done,
        }
    }

    /// A new client of this server speaking `format`.
    pub(crate) fn client(&self, format: WireFormat) -> Client {
        Client::connect(self.addr, format)
    }

    /// Two clients in a new room titled `title`, which must be room 1 (the first one
    /// created on this server): the first created it, the second joined, and the
    /// first has seen the join notice.
    #[track_caller]
    pub(crate) fn pair_in_room(&self, format: WireFormat, title: &str) -> (Client, Client) {
        let mut first = self.client(format);
        let mut second = self.client(format);
        first.create(title);
        second.join(1, title);
        first.expect_system(&entered(&second.default_name()));
        (first, second)
    }

    /// Waits (bounded) for `run()` to return without being asked to stop, e.g. after a
    /// client's `/shutdown`, and returns its result.
    pub(crate) fn wait_for_exit(&self) -> io::Result<()> {
        self.done
            .recv_timeout(TIMEOUT)
            .expect("the server's run() did not return in time")
    }

    /// Asks the server to stop through its handle and waits (bounded) for `run()`.
    pub(crate) fn stop(&self) -> io::Result<()> {
        self.handle.shutdown();
        self.wait_for_exit()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Lenient on purpose: tests that care about shutdown call `stop()` and assert.
        self.handle.shutdown();
        let _ = self.done.recv_timeout(TIMEOUT);
    }
}

/// The `chat-server` binary, started on an ephemeral port. Killed on drop if it is
/// still running.
pub(crate) struct BinaryServer {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    /// Everything the process wrote to stderr so far (drained by a thread, so the
    /// server never blocks on a full pipe).
    pub(crate) stderr: Arc<Mutex<String>>,
    /// Set by that thread once the pipe is closed: the log is complete.
    log_complete: Arc<std::sync::atomic::AtomicBool>,
}

impl BinaryServer {
    /// Starts `chat-server --port=0 [--workers=4] [--flood-control=off] [--no-store]
    /// <extra>` (four workers, flood control off and no store unless `extra` says
    /// otherwise) and waits for its
    /// `listening on <ip>:<port>` line.
    pub(crate) fn start(extra: &[&str]) -> BinaryServer {
        Self::start_with(extra, |_| {})
    }

    /// Like [`BinaryServer::start`], letting `configure` adjust the command first
    /// (e.g. resource limits for the child).
    pub(crate) fn start_with(extra: &[&str], configure: impl FnOnce(&mut Command)) -> BinaryServer {
        let mut command = Command::new(env!("CARGO_BIN_EXE_chat-server"));
        command.arg("--port=0");
        if !extra.iter().any(|arg| arg.starts_with("--workers")) {
            command.arg("--workers=4");
        }
        // Tests of everything else send far faster than people type.
        if !extra.iter().any(|arg| arg.starts_with("--flood-control")) {
            command.arg("--flood-control=off");
        }
        // Servers in parallel cannot share the default data directory; the store's
        // tests give one of their own.
        let stored = ["--data-dir", "--no-store", "--cluster"];
        if !extra
            .iter()
            .any(|arg| stored.iter().any(|flag| arg.starts_with(flag)))
        {
            command.arg("--no-store");
        }
        command
            .args(extra)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        configure(&mut command);
        let mut child = command.spawn().expect("spawn chat-server");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        let log = Arc::clone(&stderr);
        let log_complete = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let complete = Arc::clone(&log_complete);
        thread::spawn(move || {
            let mut addr_tx = Some(addr_tx);
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let line = strip_ansi(&line);
                if let Some(addr) = parse_listening(&line)
                    && let Some(tx) = addr_tx.take()
                {
                    let _ = tx.send(addr);
                }
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
            complete.store(true, std::sync::atomic::Ordering::Release);
        });
        let addr = match addr_rx.recv_timeout(TIMEOUT) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "chat-server logged no `listening on <ip>:<port>` line; stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        BinaryServer {
            child,
            addr,
            stderr,
            log_complete,
        }
    }

    pub(crate) fn client(&self, format: WireFormat) -> Client {
        Client::connect(self.addr, format)
    }

    /// Kills the process with SIGKILL (nothing of it runs after) and reaps it.
    pub(crate) fn kill_9(&mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }

    pub(crate) fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits an i32")
    }

    /// The first line of the server's log that contains `needle`, waiting (bounded)
    /// for it to be written.
    #[track_caller]
    pub(crate) fn log_line(&self, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(line) = self
                .stderr
                .lock()
                .unwrap()
                .lines()
                .find(|line| line.contains(needle))
            {
                return line.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "the server never logged {needle:?}"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// How many lines of the server's log contain `needle` so far.
    pub(crate) fn log_count(&self, needle: &str) -> usize {
        self.stderr
            .lock()
            .unwrap()
            .lines()
            .filter(|line| line.contains(needle))
            .count()
    }

    /// Waits (bounded) for the process to exit and returns its status, once
    /// everything it logged is in [`BinaryServer::stderr`]. Polls `try_wait`: std
    /// offers no blocking wait with a timeout.
    pub(crate) fn wait_for_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // The log thread may still be reading the last lines from the pipe.
                while !self.log_complete.load(std::sync::atomic::Ordering::Acquire) {
                    assert!(Instant::now() < deadline, "the log pipe never closed");
                    thread::sleep(Duration::from_millis(5));
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "chat-server did not exit within {TIMEOUT:?}; stderr:\n{}",
                self.stderr.lock().unwrap()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for BinaryServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if thread::panicking() {
            eprintln!(
                "--- chat-server stderr ---\n{}--- end of chat-server stderr ---",
                self.stderr.lock().unwrap()
            );
        }
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ ... final byte in @..~
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) && c != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `... listening on 127.0.0.1:4242 ...` → the address to connect to (an unspecified
/// bind address is reached through the loopback).
fn parse_listening(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    let token: String = rest
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '[' | ']'))
        .collect();
    let mut addr: SocketAddr = token.parse().ok()?;
    if addr.ip().is_unspecified() {
        addr.set_ip(Ipv4Addr::LOCALHOST.into());
    }
    Some(addr)
}

// ---------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------

/// A blocking test client speaking one wire format over raw frames.
pub(crate) struct Client {
    stream: TcpStream,
    format: WireFormat,
    frames: FrameBuf,
    decoder: ResponseDecoder,
    /// `(IP, PORT)` of this side: the name the server gives on connect.
    default_name: String,
}

impl Client {
    pub(crate) fn connect(addr: SocketAddr, format: WireFormat) -> Client {
        let stream = TcpStream::connect(addr)
            .unwrap_or_else(|e| panic!("connect to the server at {addr}: {e}"));
        stream.set_nodelay(true).unwrap();
        stream.set_write_timeout(Some(TIMEOUT)).unwrap();
        let local = stream.local_addr().unwrap();
        Client {
            stream,
            format,
            frames: FrameBuf::new(),
            decoder: ResponseDecoder::new(format),
            default_name: format!("({}, {})", local.ip(), local.port()),
        }
    }

    pub(crate) fn format(&self) -> WireFormat {
        self.format
    }

    /// The name the server must give this client on connect: `(127.0.0.1, PORT)`.
    pub(crate) fn default_name(&self) -> String {
        self.default_name.clone()
    }

    /// A clone of the socket, e.g. to write from another thread.
    pub(crate) fn stream(&self) -> TcpStream {
        self.stream.try_clone().unwrap()
    }

    // -- sending ----------------------------------------------------------------

    pub(crate) fn send(&mut self, request: &Request) {
        let bytes = encode(self.format, request);
        self.send_raw(&bytes);
    }

    pub(crate) fn send_raw(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write {} bytes: {e}", bytes.len()));
    }

    /// Sends `bytes` one byte per `write` call (with Nagle off, mostly one segment
    /// each).
    pub(crate) fn send_byte_by_byte(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.send_raw(std::slice::from_ref(byte));
        }
    }

    // -- receiving --------------------------------------------------------------

    /// The next frame's payload, raw. Panics on EOF or after [`TIMEOUT`].
    pub(crate) fn recv_frame(&mut self) -> Vec<u8> {
        match self.try_recv_frame() {
            Some(frame) => frame,
            None => panic!("the server closed the connection while a message was expected"),
        }
    }

    /// The next frame's payload, or `None` at a clean end of stream.
    fn try_recv_frame(&mut self) -> Option<Vec<u8>> {
        self.next_frame_or_end(false)
    }

    /// The next frame's payload, or `None` at the end of the stream; with
    /// `reset_ends`, a connection reset counts as an end too.
    fn next_frame_or_end(&mut self, reset_ends: bool) -> Option<Vec<u8>> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(frame) = self.frames.next_frame() {
                return Some(frame.to_vec());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "nothing (more) received within {TIMEOUT:?} ({} bytes of a partial frame pending)",
                self.frames.pending()
            );
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.frames.read_from(&mut self.stream) {
                Ok(0) => {
                    assert_eq!(
                        self.frames.pending(),
                        0,
                        "the connection ended in the middle of a frame"
                    );
                    return None;
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) if reset_ends && e.kind() == io::ErrorKind::ConnectionReset => {
                    return None;
                }
                Err(e) => panic!("read from the server: {e}"),
            }
        }
    }

    /// The next message. Panics on EOF, on a frame that does not decode in this
    /// client's format, or after [`TIMEOUT`].
    pub(crate) fn recv(&mut self) -> Response<'static> {
        match self.try_recv() {
            Some(response) => response,
            None => panic!("the server closed the connection while a message was expected"),
        }
    }

    fn try_recv(&mut self) -> Option<Response<'static>> {
        loop {
            let frame = self.try_recv_frame()?;
            if let Some(decoded) = self.decoder.feed(&frame) {
                return Some(
                    decoded
                        .unwrap_or_else(|e| {
                            panic!(
                                "the server sent a frame that is not a valid {} response ({e}): {:?}",
                                self.format,
                                String::from_utf8_lossy(&frame)
                            )
                        })
                        .into_owned(),
                );
            }
        }
    }

    /// The next message, or `None` if the server ends the connection instead (by EOF
    /// or a reset, as when it closes a connection it refuses).
    pub(crate) fn recv_or_eof(&mut self) -> Option<Response<'static>> {
        loop {
            let frame = self.next_frame_or_end(true)?;
            if let Some(decoded) = self.decoder.feed(&frame) {
                return Some(decoded.expect("a valid response").into_owned());
            }
        }
    }

    /// Asserts that the next message is `SCSystemMessage { text }`.
    #[track_caller]
    pub(crate) fn expect_system(&mut self, text: &str) {
        let got = self.recv();
        assert_eq!(
            got,
            Response::system(text.to_owned()),
            "expected a system message"
        );
    }

    /// Asserts that the next message is a system message and returns its text.
    #[track_caller]
    pub(crate) fn recv_system(&mut self) -> String {
        match self.recv() {
            Response::SystemMessage { text } => text.into_owned(),
            other => panic!("expected a system message, got {other:?}"),
        }
    }

    /// Asserts that the next message is `SCChat { member, text }`.
    #[track_caller]
    pub(crate) fn expect_chat(&mut self, member: &str, text: &str) {
        let got = self.recv();
        let want = Response::Chat {
            member: member.to_owned().into(),
            text: text.to_owned().into(),
        };
        assert_eq!(got, want, "expected a chat message");
    }

    /// Asserts that the next message is an `SCRoomsResult` and returns its rooms.
    #[track_caller]
    pub(crate) fn expect_rooms(&mut self) -> Vec<RoomInfo> {
        match self.recv() {
            Response::RoomsResult { rooms } => rooms,
            other => panic!("expected SCRoomsResult, got {other:?}"),
        }
    }

    /// Sends `/rooms` and returns the list (one `SCRoomsResult`: fine below ~65 KB).
    #[track_caller]
    pub(crate) fn rooms(&mut self) -> Vec<RoomInfo> {
        self.send(&Request::Rooms);
        self.expect_rooms()
    }

    /// Asserts that nothing is waiting for this client: sends a `/rooms` probe and
    /// requires its reply to be the next message (see the module docs). Also a
    /// barrier for this client's earlier requests.
    #[track_caller]
    pub(crate) fn expect_silence(&mut self) {
        self.send(&Request::Rooms);
        match self.recv() {
            Response::RoomsResult { .. } => {}
            other => panic!("expected nothing before the /rooms probe's reply, got {other:?}"),
        }
    }

    /// Reads until the server closes the connection; returns what arrived before.
    #[track_caller]
    pub(crate) fn expect_eof(&mut self) -> Vec<Response<'static>> {
        let mut got = Vec::new();
        while let Some(response) = self.try_recv() {
            got.push(response);
        }
        got
    }

    /// Closes both directions: the server sees EOF.
    pub(crate) fn disconnect(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    // -- commands that must succeed ------------------------------------------------

    /// `/name X`, expecting the self notice.
    #[track_caller]
    pub(crate) fn set_name(&mut self, name: &str) {
        self.send(&Request::Name { name: name.into() });
        self.expect_system(&format!("이름이 {name} 으로 변경되었습니다."));
    }

    /// `/create T`, expecting the entry notice.
    #[track_caller]
    pub(crate) fn create(&mut self, title: &str) {
        self.send(&Request::CreateRoom {
            title: title.into(),
        });
        self.expect_system(&format!("방제[{title}] 방에 입장했습니다."));
    }

    /// `/join N` of a room titled `title`, expecting the entry notice.
    #[track_caller]
    pub(crate) fn join(&mut self, room_id: i64, title: &str) {
        self.send(&Request::JoinRoom { room_id });
        self.expect_system(&format!("방제[{title}] 방에 입장했습니다."));
    }

    /// `/leave` from a room titled `title`, expecting the self notice.
    #[track_caller]
    pub(crate) fn leave(&mut self, title: &str) {
        self.send(&Request::LeaveRoom);
        self.expect_system(&format!("방제[{title}] 대화 방에서 퇴장했습니다."));
    }

    /// Sends a chat line (no reply is expected).
    pub(crate) fn chat(&mut self, text: &str) {
        self.send(&Request::Chat { text: text.into() });
    }
}

// ---------------------------------------------------------------------------------
// Texts and bytes
// ---------------------------------------------------------------------------------

/// `[NAME] 님이 입장했습니다.`
pub(crate) fn entered(name: &str) -> String {
    format!("[{name}] 님이 입장했습니다.")
}

/// `[NAME] 님이 퇴장했습니다.`
pub(crate) fn left(name: &str) -> String {
    format!("[{name}] 님이 퇴장했습니다.")
}

pub(crate) const NOT_IN_ROOM: &str = "현재 대화방에 들어가 있지 않습니다.";
pub(crate) const NO_SUCH_ROOM: &str = "대화방이 존재하지 않습니다.";
pub(crate) const CREATE_IN_ROOM: &str = "대화 방에 있을 때는 방을 개설 할 수 없습니다.";
pub(crate) const JOIN_IN_ROOM: &str = "대화 방에 있을 때는 다른 방에 들어갈 수 없습니다.";

/// A room as `/rooms` must list it.
pub(crate) fn room(room_id: i64, title: &str, members: &[&str]) -> RoomInfo {
    RoomInfo {
        room_id,
        title: title.into(),
        members: members.iter().map(|m| m.to_string()).collect(),
        topic: None,
    }
}

/// `request` as whole frames in `format`.
pub(crate) fn encode(format: WireFormat, request: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    encode_request(format, request, &mut out).expect("encode a test request");
    out
}

/// Whether `response` fits the frame limit in `format`.
pub(crate) fn response_fits(format: WireFormat, response: &Response<'_>) -> bool {
    encode_response(format, response, &mut Vec::new()).is_ok()
}

/// One frame carrying `payload`.
pub(crate) fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_frame(&mut out, payload).expect("test payloads fit a frame");
    out
}

/// A protobuf message: the `Type` frame for type number `kind`, then `body` as a frame.
pub(crate) fn pb_message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = frame(&[0x08, kind]);
    out.extend_from_slice(&frame(body));
    out
}

/// Polls `/rooms` from `client` until it answers `want` (for effects of a disconnect,
/// which no reply marks); fails after [`TIMEOUT`]. Each poll is a full round trip.
#[track_caller]
pub(crate) fn rooms_eventually(client: &mut Client, want: &[RoomInfo]) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let got = client.rooms();
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/rooms still answers {got:?}, expected {want:?}"
        );
    }
}

// ---------------------------------------------------------------------------------
// Hardening helpers: metrics, descriptors, memory, abrupt endings
// ---------------------------------------------------------------------------------

/// How often the `*_eventually` helpers poll. A poll interval, not a synchronisation:
/// each helper retries until its condition holds or [`TIMEOUT`] passes.
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(10);

/// A config for the hardening tests: loopback, `workers` workers, and a metrics
/// endpoint on an ephemeral loopback port (see [`TestServer::metrics`]).
pub(crate) fn config_with_metrics(workers: usize) -> ServerConfig {
    ServerConfig {
        metrics: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
        ..ServerConfig::local(workers)
    }
}

impl TestServer {
    /// The metrics endpoint's address; panics if the config asked for none.
    pub(crate) fn metrics_addr(&self) -> SocketAddr {
        self.metrics
            .expect("this test server was started without a metrics endpoint")
    }
}

/// A plain HTTP/1.1 `GET path` to `addr` over a std `TcpStream`; answers the status
/// code and the body. The endpoint closes the connection after one response.
pub(crate) fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use std::io::Read;
    let mut stream = TcpStream::connect(addr).expect("connect to the metrics endpoint");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send the HTTP request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the HTTP response");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {response:?}"));
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP/1.1 status line: {head:?}"));
    (status, body.to_owned())
}

/// The metrics page (asserting a 200).
pub(crate) fn scrape(addr: SocketAddr) -> String {
    let (status, body) = http_get(addr, "/metrics");
    assert_eq!(status, 200, "GET /metrics: {body}");
    body
}

/// The value of one series on a metrics page: `series` is the name plus labels
/// exactly as rendered, e.g. `chat_connections` or
/// `chat_messages_in_total{type="CSChat",format="json",transport="tcp"}`. Panics if
/// it is missing.
#[track_caller]
pub(crate) fn metric(page: &str, series: &str) -> u64 {
    page.lines()
        .find_map(|line| {
            let value = line.strip_prefix(series)?.strip_prefix(' ')?;
            Some(value.trim().parse::<u64>().unwrap_or_else(|e| {
                panic!("series {series}: value {value:?} is not an integer: {e}")
            }))
        })
        .unwrap_or_else(|| panic!("no series {series} on the metrics page:\n{page}"))
}

/// Scrapes until `series` reads `want` (counters are folded in at the end of a
/// worker's turn, gauges follow the reactor's closing); fails after [`TIMEOUT`].
#[track_caller]
pub(crate) fn metric_eventually(addr: SocketAddr, series: &str, want: u64) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let page = scrape(addr);
        let got = metric(&page, series);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{series} is still {got} after {TIMEOUT:?}, expected {want}; page:\n{page}"
        );
        thread::sleep(POLL_EVERY);
    }
}

/// Descriptors this process has open now (entries of `/proc/self/fd`; the directory
/// handle used to list it is counted every time, so counts compare).
pub(crate) fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("list /proc/self/fd")
        .count()
}

/// The descriptors this process holds with `server` running and no client: counted
/// while one probe client is connected and served (so the server's lazily opened
/// descriptors, e.g. the reactor's reserve, are open), minus the probe's two ends.
pub(crate) fn baseline_fds(server: &TestServer) -> usize {
    let mut probe = server.client(WireFormat::Json);
    probe.expect_silence();
    let with_probe = open_fds();
    probe.disconnect();
    with_probe - 2
}

/// What each open descriptor is (`/proc/self/fd/N` link targets), for messages.
pub(crate) fn describe_fds() -> String {
    let mut fds: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .expect("list /proc/self/fd")
        .flatten()
        .map(|entry| {
            let target = std::fs::read_link(entry.path())
                .map_or_else(|e| format!("({e})"), |t| t.display().to_string());
            format!("{}→{target}", entry.file_name().to_string_lossy())
        })
        .collect();
    fds.sort();
    fds.join(", ")
}

/// Polls until this process has exactly `want` descriptors open; fails after
/// [`TIMEOUT`].
#[track_caller]
pub(crate) fn fds_eventually(want: usize) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let got = open_fds();
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{got} descriptors still open after {TIMEOUT:?}, expected {want} (a leak?): {}",
            describe_fds()
        );
        thread::sleep(POLL_EVERY);
    }
}

/// This process's resident set size in bytes (`VmRSS` of `/proc/self/status`).
pub(crate) fn vm_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse().ok())
        .expect("a VmRSS line in /proc/self/status");
    kib * 1024
}

fn set_socket_option<T>(stream: &TcpStream, level: i32, name: i32, value: &T) {
    use std::os::fd::AsRawFd;
    let len = libc::socklen_t::try_from(std::mem::size_of::<T>()).unwrap();
    // SAFETY: setsockopt reads `len` bytes from `value`, which points to a live `T`;
    // the descriptor belongs to `stream` for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            len,
        )
    };
    assert_eq!(rc, 0, "setsockopt: {}", io::Error::last_os_error());
}

/// `SO_LINGER` with a zero timeout: closing the socket then sends a reset (RST)
/// instead of a FIN, like a process that is killed or a host that drops off.
pub(crate) fn set_linger_zero(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    set_socket_option(stream, libc::SOL_SOCKET, libc::SO_LINGER, &linger);
}

/// What a client got before its connection ended: see [`Client::drain_until_closed`].
#[derive(Debug)]
pub(crate) struct Drained {
    /// Every complete message, in order.
    pub(crate) responses: Vec<Response<'static>>,
    /// The end was a reset (or another error) rather than a clean end of stream.
    pub(crate) reset: bool,
    /// Bytes of an incomplete frame at the end (a cut-off connection may end
    /// mid-frame: what the server had queued is dropped with it).
    pub(crate) partial: usize,
}

impl Client {
    /// Reads until the connection ends, by EOF or by an error such as a reset, and
    /// returns what arrived (bounded by [`TIMEOUT`] overall). For clients the server
    /// cuts off, where [`Client::expect_eof`]'s strictness does not apply.
    #[track_caller]
    pub(crate) fn drain_until_closed(&mut self) -> Drained {
        let deadline = Instant::now() + TIMEOUT;
        let mut responses = Vec::new();
        let reset = loop {
            while let Some(frame) = self.frames.next_frame() {
                let frame = frame.to_vec();
                if let Some(decoded) = self.decoder.feed(&frame) {
                    responses.push(
                        decoded
                            .unwrap_or_else(|e| {
                                panic!("the server sent an invalid {} frame: {e}", self.format)
                            })
                            .into_owned(),
                    );
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the connection did not end within {TIMEOUT:?} ({} messages read)",
                responses.len()
            );
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.frames.read_from(&mut self.stream) {
                Ok(0) => break false,
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => break true,
            }
        };
        Drained {
            responses,
            reset,
            partial: self.frames.pending(),
        }
    }

    /// Dies in the middle of a message: writes the header and half the payload of a
    /// chat frame, then closes the socket — with a reset (`SO_LINGER` 0) if `reset`,
    /// else however the kernel closes it (a FIN, or a reset if unread data is
    /// waiting).
    pub(crate) fn kill_mid_frame(mut self, reset: bool) {
        let whole = encode(
            self.format,
            &Request::Chat {
                text: "never finished".into(),
            },
        );
        // Protobuf: the Type frame and half the body; JSON: half the only frame.
        let cut = whole.len() - (whole.len() - 2) / 2;
        self.send_raw(&whole[..cut]);
        if reset {
            set_linger_zero(&self.stream);
        }
        drop(self);
    }
}
