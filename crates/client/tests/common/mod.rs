//! Test support: the `chat-client` binary as a child process, a real server in-process,
//! a raw-frame peer, and a fake server for hand-made (bad) input.
//!
//! * [`ChatClient`] runs `chat-client` with piped stdin/stdout/stderr. Its stdout is
//!   read line by line on a thread; [`ChatClient::expect`] waits for the next line
//!   with a deadline ([`TIMEOUT`]) and compares it exactly. Nothing sleeps to
//!   synchronise: every wait is for a line, a message or an exit, bounded in time.
//! * [`TestServer`] is `chat_server::Server` on `127.0.0.1:0`, stopped on drop (with
//!   a store in a fresh data directory if asked: accounts and moderation).
//! * [`Peer`] is a second client speaking raw frames through `chat-proto`'s codecs.
//! * [`FakeServer`] is a `TcpListener` the test drives by hand.

#![allow(dead_code)] // each test file uses a different part of this module

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use chat_proto::codec::{encode_request, encode_response};
use chat_proto::frame::{FrameBuf, write_frame};
use chat_proto::{Request, Response, ResponseDecoder, WireFormat};
use chat_server::config::StoreSettings;
use chat_server::{Server, ServerConfig, ShutdownHandle};

/// The longest any single wait may take before the test fails. Generous because the
/// machine is shared; a passing test never waits this long.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

/// The line printed at end of input.
pub(crate) const EOF_LINE: &str = "=== EOF 에 따라 프로그램을 종료합니다. ===";

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
// The client under test
// ---------------------------------------------------------------------------------

/// `chat-client` as a child process.
pub(crate) struct ChatClient {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl ChatClient {
    /// Starts `chat-client --port=<port> --format=<format> <extra>`.
    pub(crate) fn spawn(addr: SocketAddr, format: WireFormat, extra: &[&str]) -> ChatClient {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chat-client"))
            .arg(format!("--ip={}", addr.ip()))
            .arg(format!("--port={}", addr.port()))
            .arg(format!("--format={}", format.name()))
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn chat-client");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line);
                        let text = text.strip_suffix('\n').unwrap_or(&text);
                        if tx.send(text.to_owned()).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("piped stderr");
        let log = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            log.lock().unwrap().push_str(&text);
        });
        let stdin = child.stdin.take();
        ChatClient {
            child,
            stdin,
            lines,
            stderr,
        }
    }

    /// Starts a client and checks its `Connected to` line.
    pub(crate) fn connect(addr: SocketAddr, format: WireFormat, extra: &[&str]) -> ChatClient {
        let client = ChatClient::spawn(addr, format, extra);
        client.expect(&format!("Connected to {}:{}", addr.ip(), addr.port()));
        client
    }

    /// Types one line.
    pub(crate) fn type_line(&mut self, line: &str) {
        self.type_raw(format!("{line}\n").as_bytes());
    }

    /// Writes raw bytes to the client's stdin.
    pub(crate) fn type_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is still open");
        stdin.write_all(bytes).expect("write to chat-client");
        stdin.flush().expect("flush chat-client's stdin");
    }

    /// Closes stdin (end of input).
    pub(crate) fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The next stdout line, or a panic after [`TIMEOUT`].
    pub(crate) fn next_line(&self) -> String {
        match self.lines.recv_timeout(TIMEOUT) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => panic!(
                "no output line within {TIMEOUT:?}; stderr: {}",
                self.stderr()
            ),
            Err(RecvTimeoutError::Disconnected) => panic!(
                "chat-client closed stdout while a line was expected; stderr: {}",
                self.stderr()
            ),
        }
    }

    /// Checks that the next stdout line is exactly `expected`.
    pub(crate) fn expect(&self, expected: &str) {
        let line = self.next_line();
        assert_eq!(line, expected, "stderr: {}", self.stderr());
    }

    /// Checks the next lines, in order.
    pub(crate) fn expect_lines(&self, expected: &[&str]) {
        for line in expected {
            self.expect(line);
        }
    }

    /// Closes stdin, then collects every remaining stdout line and the exit status.
    pub(crate) fn finish(&mut self) -> (Vec<String>, ExitStatus) {
        self.close_stdin();
        self.wait()
    }

    /// Collects every remaining stdout line (until the client closes stdout) and waits
    /// for the exit status, bounded by [`TIMEOUT`] in all.
    pub(crate) fn wait(&mut self) -> (Vec<String>, ExitStatus) {
        let deadline = Instant::now() + TIMEOUT;
        let mut rest = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => rest.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("chat-client did not exit in time; output so far: {rest:?}")
                }
            }
        }
        // Stdout is closed, so the process is exiting; std has no wait with a
        // timeout, so poll `try_wait` until the deadline.
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return (rest, status);
            }
            assert!(
                Instant::now() < deadline,
                "chat-client closed stdout but did not exit"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Everything written to stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The stderr text once the process has exited (the reader thread may still be
    /// copying it; bounded wait for the pipe to drain).
    pub(crate) fn stderr_after_exit(&self) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if Arc::strong_count(&self.stderr) == 1 || Instant::now() > deadline {
                return self.stderr();
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for ChatClient {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------
// The real server
// ---------------------------------------------------------------------------------

/// `chat_server::Server` on `127.0.0.1:0` with 4 workers, on its own thread.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    handle: ShutdownHandle,
    done: Receiver<io::Result<()>>,
    /// The store's data directory ([`TestServer::start_with_store`]), removed on drop.
    data: Option<PathBuf>,
}

impl TestServer {
    pub(crate) fn start() -> TestServer {
        Self::start_with(ServerConfig::local(4), None)
    }

    /// As [`TestServer::start`], keeping accounts and registered rooms in a fresh
    /// data directory: a server that offers `accounts` and `moderation`.
    pub(crate) fn start_with_store() -> TestServer {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "chat-client-store-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the data directory");
        let config = ServerConfig {
            store: Some(StoreSettings {
                dir: dir.clone(),
                options: Default::default(),
            }),
            ..ServerConfig::local(4)
        };
        Self::start_with(config, Some(dir))
    }

    fn start_with(config: ServerConfig, data: Option<PathBuf>) -> TestServer {
        let server = Server::bind(config).expect("bind the test server");
        let addr = server.local_addr();
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
            handle,
            done,
            data,
        }
    }

    /// Waits (bounded) for `run()` to return on its own (after `/shutdown`).
    pub(crate) fn wait_for_exit(&self) -> io::Result<()> {
        self.done
            .recv_timeout(TIMEOUT)
            .expect("the server's run() did not return in time")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        let _ = self.done.recv_timeout(TIMEOUT);
        if let Some(dir) = &self.data {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

// ---------------------------------------------------------------------------------
// A second client, raw frames
// ---------------------------------------------------------------------------------

/// A blocking client speaking raw frames; every read has a deadline.
pub(crate) struct Peer {
    stream: TcpStream,
    format: WireFormat,
    inbox: FrameBuf,
    decoder: ResponseDecoder,
}

impl Peer {
    pub(crate) fn connect(addr: SocketAddr, format: WireFormat) -> Peer {
        let stream = TcpStream::connect(addr).expect("peer connects");
        stream
            .set_read_timeout(Some(TIMEOUT))
            .expect("read timeout");
        Peer {
            stream,
            format,
            inbox: FrameBuf::new(),
            decoder: ResponseDecoder::new(format),
        }
    }

    pub(crate) fn send(&mut self, request: Request) {
        let mut wire = Vec::new();
        encode_request(self.format, &request, &mut wire).expect("encode");
        self.stream.write_all(&wire).expect("peer writes");
    }

    /// The next message, or a panic after [`TIMEOUT`].
    pub(crate) fn recv(&mut self) -> Response<'static> {
        loop {
            while let Some(frame) = self.inbox.next_frame() {
                if let Some(decoded) = self.decoder.feed(frame) {
                    return decoded
                        .expect("the server sends valid messages")
                        .into_owned();
                }
            }
            match self.inbox.read_from(&mut self.stream) {
                Ok(0) => panic!("the server closed the peer's connection"),
                Ok(_) => {}
                Err(e) => panic!("peer read failed (or timed out): {e}"),
            }
        }
    }

    /// Checks the next message is the system message `text`.
    pub(crate) fn expect_system(&mut self, text: &str) {
        assert_eq!(self.recv(), Response::system(text.to_owned()));
    }

    /// Sets the peer's name and consumes the confirmation.
    pub(crate) fn name(&mut self, name: &str) {
        self.send(Request::Name { name: name.into() });
        self.expect_system(&format!("이름이 {name} 으로 변경되었습니다."));
    }
}

// ---------------------------------------------------------------------------------
// A fake server
// ---------------------------------------------------------------------------------

/// A listener on `127.0.0.1:0` that the test drives by hand.
pub(crate) struct FakeServer {
    pub(crate) addr: SocketAddr,
    accepted: Receiver<TcpStream>,
}

impl FakeServer {
    /// Listens; the first connection is handed out by [`FakeServer::accept`].
    pub(crate) fn start() -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake server");
        let addr = listener.local_addr().expect("local addr");
        let (tx, accepted) = mpsc::channel();
        // Accepting on a thread lets the test bound the wait.
        thread::spawn(move || {
            if let Ok((stream, _)) = listener.accept() {
                let _ = tx.send(stream);
            }
        });
        FakeServer { addr, accepted }
    }

    /// The client's connection (bounded wait).
    pub(crate) fn accept(&self) -> FakeConnection {
        let stream = self
            .accepted
            .recv_timeout(TIMEOUT)
            .expect("the client connected");
        stream
            .set_read_timeout(Some(TIMEOUT))
            .expect("read timeout");
        stream.set_nodelay(true).expect("nodelay");
        FakeConnection {
            stream,
            inbox: FrameBuf::new(),
        }
    }
}

/// The server side of one fake connection.
pub(crate) struct FakeConnection {
    pub(crate) stream: TcpStream,
    inbox: FrameBuf,
}

impl FakeConnection {
    /// Sends one frame with this payload.
    pub(crate) fn send_frame(&mut self, payload: &[u8]) {
        let mut wire = Vec::new();
        write_frame(&mut wire, payload).expect("frame fits");
        self.stream.write_all(&wire).expect("fake server writes");
    }

    /// Sends a well-formed response.
    pub(crate) fn send_response(&mut self, format: WireFormat, response: &Response<'_>) {
        let mut wire = Vec::new();
        encode_response(format, response, &mut wire).expect("encode");
        self.stream.write_all(&wire).expect("fake server writes");
    }

    /// The next frame's payload the client sent; `None` once it half-closed.
    pub(crate) fn recv_frame(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(frame) = self.inbox.next_frame() {
                return Some(frame.to_vec());
            }
            match self.inbox.read_from(&mut self.stream) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => panic!("fake server read failed (or timed out): {e}"),
            }
        }
    }
}
