//! Stopping the server: `/shutdown` (JSON, and the protobuf bytes the reference client
//! sends: `Type{CS_SHUTDOWN}` + an empty `CSLeaveRoom` body), the library's
//! `ShutdownHandle`, and SIGTERM/SIGINT to the binary. In every case `run()` returns
//! `Ok` / the process exits with status 0 within a deadline, every connected client
//! (in a room, idle, or one that never sent a byte) sees end of stream, and the port
//! stops accepting. Also a smoke test of the `chat-server` binary itself.

mod support;

use std::net::{SocketAddr, TcpStream};

use chat_proto::{Request, WireFormat};
use support::*;

/// A few clients in various states: two in a room, one idle, one that never spoke.
struct Bystanders {
    clients: Vec<Client>,
}

impl Bystanders {
    fn connect(addr: SocketAddr) -> Bystanders {
        let mut a = Client::connect(addr, WireFormat::Json);
        let mut b = Client::connect(addr, WireFormat::Protobuf);
        let mut idle = Client::connect(addr, WireFormat::Protobuf);
        let silent = Client::connect(addr, WireFormat::Json);
        a.create("r");
        b.join(1, "r");
        a.expect_system(&entered(&b.default_name()));
        idle.set_name("idle");
        Bystanders {
            clients: vec![a, b, idle, silent],
        }
    }

    /// Every client's connection must end (whatever arrives before the end).
    fn expect_eof(&mut self) {
        for client in &mut self.clients {
            client.expect_eof();
        }
    }
}

#[track_caller]
fn assert_not_accepting(addr: SocketAddr) {
    assert!(
        TcpStream::connect(addr).is_err(),
        "{addr} still accepts connections after shutdown"
    );
}

#[test]
fn json_shutdown_stops_the_library_server() {
    let server = TestServer::start();
    let mut bystanders = Bystanders::connect(server.addr);
    let mut c = server.client(WireFormat::Json);
    c.send(&Request::Shutdown);
    server
        .wait_for_exit()
        .expect("run() returns Ok after /shutdown");
    c.expect_eof();
    bystanders.expect_eof();
    assert_not_accepting(server.addr);
}

#[test]
fn protobuf_shutdown_with_a_leave_room_body_stops_the_library_server() {
    let server = TestServer::start();
    let mut bystanders = Bystanders::connect(server.addr);
    let mut c = server.client(WireFormat::Protobuf);
    c.send_raw(&[0x00, 0x02, 0x08, 0x06, 0x00, 0x00]);
    server
        .wait_for_exit()
        .expect("run() returns Ok after /shutdown");
    c.expect_eof();
    bystanders.expect_eof();
    assert_not_accepting(server.addr);
}

#[test]
fn shutdown_handle_stops_the_library_server() {
    let server = TestServer::start();
    let mut bystanders = Bystanders::connect(server.addr);
    server
        .stop()
        .expect("run() returns Ok after ShutdownHandle::shutdown");
    bystanders.expect_eof();
    assert_not_accepting(server.addr);
}

#[test]
fn binary_smoke_test() {
    let mut server = BinaryServer::start(&[]);
    let mut j = server.client(WireFormat::Json);
    let mut p = server.client(WireFormat::Protobuf);
    j.set_name("json");
    p.set_name("proto");
    j.create("smoke");
    p.join(1, "smoke");
    j.expect_system(&entered("proto"));
    p.chat("안녕 😀");
    j.expect_chat("proto", "안녕 😀");
    j.chat("hi");
    p.expect_chat("json", "hi");
    assert_eq!(j.rooms(), vec![room(1, "smoke", &["json", "proto"])]);

    j.send(&Request::Shutdown);
    let status = server.wait_for_exit();
    assert_eq!(status.code(), Some(0), "exit status {status}");
    j.expect_eof();
    p.expect_eof();
}

#[test]
fn binary_exits_zero_on_protobuf_shutdown_and_closes_every_connection() {
    let mut server = BinaryServer::start(&["--format=auto"]);
    let mut bystanders = Bystanders::connect(server.addr);
    let mut c = server.client(WireFormat::Protobuf);
    c.send_raw(&[0x00, 0x02, 0x08, 0x06, 0x00, 0x00]);
    let status = server.wait_for_exit();
    assert_eq!(status.code(), Some(0), "exit status {status}");
    c.expect_eof();
    bystanders.expect_eof();
    assert_not_accepting(server.addr);
}

fn exits_zero_on_signal(signal: libc::c_int) {
    let mut server = BinaryServer::start(&[]);
    let mut bystanders = Bystanders::connect(server.addr);
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    let rc = unsafe { libc::kill(server.pid(), signal) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    let status = server.wait_for_exit();
    assert_eq!(status.code(), Some(0), "exit status {status}");
    bystanders.expect_eof();
}

#[test]
fn binary_exits_zero_on_sigterm() {
    exits_zero_on_signal(libc::SIGTERM);
}

#[test]
fn binary_exits_zero_on_sigint() {
    exits_zero_on_signal(libc::SIGINT);
}

#[test]
fn binary_help_lists_the_flags() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .arg("--help")
        .output()
        .expect("run chat-server --help");
    assert!(
        output.status.success(),
        "--help exit status {}",
        output.status
    );
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in ["--port", "--workers", "--format", "--bind"] {
        assert!(
            help.contains(flag),
            "--help does not mention {flag}:\n{help}"
        );
    }
}

/// Everything `stream` receives until the server closes it (bounded by the client's
/// read timeout).
fn read_to_eof(mut stream: TcpStream) -> Vec<u8> {
    use std::io::Read;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .expect("set a read timeout");
    let mut got = Vec::new();
    stream
        .read_to_end(&mut got)
        .expect("read until the server closes");
    got
}

/// SIGTERM: each connected client's last message, in its own format, is the
/// shutdown notice (`texts::SERVER_SHUTTING_DOWN`), and then the stream ends.
#[test]
fn binary_tells_each_client_it_is_shutting_down_in_its_format() {
    let mut server = BinaryServer::start(&[]);
    let mut json = server.client(WireFormat::Json);
    let mut protobuf = server.client(WireFormat::Protobuf);
    // Each speaks once, so the server knows its format.
    json.set_name("j");
    protobuf.set_name("p");
    let (json, protobuf) = (json.stream(), protobuf.stream());
    // SAFETY: `kill` on our own child's pid.
    assert_eq!(unsafe { libc::kill(server.pid(), libc::SIGTERM) }, 0);

    let text = "서버가 종료됩니다.";
    assert_eq!(text, chat_core::texts::SERVER_SHUTTING_DOWN);
    let json_payload = format!(r#"{{"type": "SCSystemMessage", "text": "{text}"}}"#);
    assert_eq!(
        String::from_utf8_lossy(&read_to_eof(json)),
        String::from_utf8_lossy(&frame(json_payload.as_bytes()))
    );
    let mut body = vec![0x0a, u8::try_from(text.len()).expect("a short text")];
    body.extend_from_slice(text.as_bytes());
    assert_eq!(read_to_eof(protobuf), pb_message(9, &body));
    assert!(server.wait_for_exit().success());
}
