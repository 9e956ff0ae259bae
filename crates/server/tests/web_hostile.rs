//! Hostile clients of the web port (`--web`), each finding tried as an attacker
//! would, on loopback, against the real server:
//!
//! * **An unfinished WebSocket message** (one large fragment, then silence) is held
//!   to the frame timeout like a TCP frame — cut with a reset — and what it makes the
//!   server hold (tungstenite's buffers included) is charged to the memory budget
//!   while it waits, bounded per connection, and given back after.
//! * **Control-frame floods** (pings, empty continuation frames) cost flood control
//!   like commands: the flooder is told to slow down, read more slowly, then cut;
//!   another room's chat flows on, complete and in order.
//! * **The Host header** must name this server (DNS rebinding): a foreign name is
//!   `421`, a missing, blank, repeated or malformed Host `400`, for the page too; the
//!   Origin is judged by the allowed hosts, never by the request's own Host.
//! * **A connection that never finishes its request** is closed at the frame timeout
//!   and stops counting against `--max-connections`.
//!
//! Waiting is by deadline, never by sleeping.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use chat_core::{FloodLimits, Rate, texts};
use chat_proto::WireFormat;
use chat_server::{ServerConfig, WebPolicy};
use support::*;
use tungstenite::Message;
use tungstenite::protocol::{Role, WebSocket};

/// The most one open WebSocket may make the server hold (`web::MAX_HELD`): a frame not
/// yet complete plus the message being assembled, and tungstenite's read buffer.
const MAX_HELD_PER_CONNECTION: u64 = 2 * (14 + 65_535);

/// A config with the web port (and metrics) on loopback.
fn web_config() -> ServerConfig {
    ServerConfig {
        web: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..config_with_metrics(2)
    }
}

/// A masked client frame.
fn client_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![opcode | if fin { 0x80 } else { 0 }];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// A raw connection upgraded to a WebSocket, as the page's own origin opens it; the
/// 101 response has been read, nothing more.
fn upgrade(web: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(web).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    write!(
        stream,
        "GET /ws HTTP/1.1\r\nHost: {web}\r\nOrigin: http://{web}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        stream
            .read_exact(&mut byte)
            .expect("the handshake's answer");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    stream
}

/// Reads `stream` until the server ends it, which must be a reset (the frame
/// deadline's abortive close), no later than `limit` after `since`; fails on any byte.
#[track_caller]
fn expect_reset_by(stream: &mut TcpStream, since: Instant, limit: Duration) {
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Ok(0) => panic!("closed with a FIN, not a reset"),
        Ok(n) => panic!("got {n} bytes: {:?}", &buf[..n]),
        Err(e) => panic!("not cut off: {e}"),
    }
    let took = since.elapsed();
    assert!(took <= limit, "cut after {took:?}, allowed {limit:?}");
}

/// The current value of `series`.
fn gauge(m: SocketAddr, series: &str) -> u64 {
    metric(&scrape(m), series)
}

/// Finding 1: a half-received WebSocket message escaped the frame timeout and the
/// memory budget. Many connections each send one large fragment of an unfinished
/// message (half of them: a complete fragment that is not the last; the others: part
/// of a fragment's frame), then nothing.
#[test]
fn unfinished_websocket_messages_are_cut_at_the_frame_timeout_and_charged_meanwhile() {
    const CONNECTIONS: usize = 200;
    let frame_timeout = Duration::from_secs(4);
    let server = TestServer::with_config(ServerConfig {
        frame_timeout,
        ..web_config()
    });
    let (m, web) = (server.metrics_addr(), server.web.unwrap());
    let budget = "chat_memory_budget_used_bytes";
    let baseline = gauge(m, budget);

    // Open first (an open, idle WebSocket is not unfinished), then attack.
    let mut streams: Vec<TcpStream> = (0..CONNECTIONS).map(|_| upgrade(web)).collect();
    let fragment = client_frame(0x1, false, &[b'a'; 65_000]);
    let whole = client_frame(0x1, true, &[b'a'; 65_000]);
    let mut sent_at = Vec::with_capacity(CONNECTIONS);
    for (i, stream) in streams.iter_mut().enumerate() {
        sent_at.push(Instant::now());
        if i % 2 == 0 {
            stream.write_all(&fragment).unwrap();
        } else {
            // Its header and 30,000 of its 65,000 bytes.
            stream.write_all(&whole[..8 + 30_000]).unwrap();
        }
    }

    // While they wait, what they make the server hold is counted — and no more than
    // the per-connection bound.
    let want = CONNECTIONS as u64 * 30_000;
    let deadline = sent_at[0] + frame_timeout;
    let held = loop {
        let held = gauge(m, budget).saturating_sub(baseline);
        if held >= want {
            break held;
        }
        assert!(
            Instant::now() < deadline,
            "only {held} bytes charged while {CONNECTIONS} messages wait (want ≥ {want})"
        );
        thread::sleep(POLL_EVERY);
    };
    assert!(
        held <= CONNECTIONS as u64 * MAX_HELD_PER_CONNECTION,
        "{held} bytes charged: over the per-connection bound"
    );
    assert_eq!(gauge(m, "chat_frame_timeout_disconnects_total"), 0);

    // Each is cut at the frame timeout (checked about once a second), with a reset,
    // as a TCP frame is.
    let limit = frame_timeout + Duration::from_secs(4);
    for (stream, since) in streams.iter_mut().zip(&sent_at) {
        expect_reset_by(stream, *since, limit);
    }
    metric_eventually(
        m,
        "chat_frame_timeout_disconnects_total",
        CONNECTIONS as u64,
    );
    metric_eventually(m, "chat_connections", 0);
    metric_eventually(m, budget, baseline);

    // The port still serves: a message in fragments, finished in time, goes through.
    let mut ok = upgrade(web);
    ok.write_all(&client_frame(0x1, false, br#"{"type":"#))
        .unwrap();
    ok.write_all(&client_frame(0x0, true, br#""CSRooms"}"#))
        .unwrap();
    let mut ws = WebSocket::from_raw_socket(ok, Role::Client, None);
    match ws.read().unwrap() {
        Message::Text(text) => assert!(text.as_str().contains("SCRoomsResult"), "{text}"),
        other => panic!("{other:?}"),
    }
}

/// What a control-frame flooder saw.
struct Flooded {
    /// Pongs received.
    pongs: usize,
    /// System messages received.
    told: Vec<String>,
    /// Control frames written before the server cut it off.
    sent: usize,
}

/// Starts a flooder on `web`: it creates a room of its own (so the flood happens
/// beside, not in, the others' room), then writes `unit` (control frames, `per_unit`
/// of them) as fast as the socket takes them, after `prefix`, while a reader counts
/// what comes back. Reports on `slowed` once told to slow down.
fn flooder(
    web: SocketAddr,
    title: &str,
    prefix: Vec<u8>,
    unit: Vec<u8>,
    per_unit: usize,
    slowed: mpsc::Sender<()>,
) -> thread::JoinHandle<Flooded> {
    let mut stream = upgrade(web);
    stream
        .write_all(&client_frame(
            0x1,
            true,
            format!(r#"{{"type":"CSCreateRoom","title":"{title}"}}"#).as_bytes(),
        ))
        .unwrap();
    let reader = stream.try_clone().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let done = Arc::clone(&done);
        thread::spawn(move || {
            stream.write_all(&prefix).unwrap();
            let batch: Vec<u8> = unit.repeat(64);
            let mut sent = 0;
            // Ends when the server cuts the connection (or, failing, after the
            // reader gave up).
            while !done.load(Ordering::Relaxed) && stream.write_all(&batch).is_ok() {
                sent += 64 * per_unit;
            }
            sent
        })
    };
    thread::spawn(move || {
        let mut ws = WebSocket::from_raw_socket(reader, Role::Client, None);
        let (mut pongs, mut told) = (0, Vec::new());
        // Until the cut (an error: a reset, or the end without a close).
        while let Ok(message) = ws.read() {
            match message {
                Message::Pong(_) => pongs += 1,
                Message::Text(text) => {
                    let v: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
                    let text = v["text"].as_str().unwrap_or_default().to_owned();
                    if text == texts::FLOOD_SLOW_DOWN {
                        let _ = slowed.send(());
                    }
                    told.push(text);
                }
                _ => {}
            }
        }
        done.store(true, Ordering::Relaxed);
        let sent = writer.join().unwrap();
        Flooded { pongs, told, sent }
    })
}

/// Finding 2: pings bypassed flood control (one client kept most of a core busy and
/// was never cut), and empty continuation frames were never counted. Each now costs a
/// command token: the flooder is told to slow down, its input is read only as fast as
/// the limit admits, and staying over it for the grace cuts it — while another room's
/// members chat on, every chat delivered, in order.
#[test]
fn ping_and_empty_continuation_floods_are_throttled_then_cut_and_others_chat_on() {
    let grace = Duration::from_secs(2);
    let server = TestServer::with_config(ServerConfig {
        flood_control: Some(FloodLimits {
            // Chats are not what is tested: the calm pair may chat freely.
            chat: Rate {
                per_second: 10_000.0,
                burst: 10_000.0,
            },
            ..FloodLimits {
                grace,
                ..FloodLimits::default()
            }
        }),
        ..web_config()
    });
    let (m, web) = (server.metrics_addr(), server.web.unwrap());
    let (mut a, mut b) = server.pair_in_room(WireFormat::Json, "calm");

    let (slowed, slowed_seen) = mpsc::channel();
    let ping = client_frame(0x9, true, &[b'p'; 125]);
    let pings = flooder(web, "pings", Vec::new(), ping, 1, slowed.clone());
    // An unfinished message, then empty continuation frames without end.
    let empties = flooder(
        web,
        "empties",
        client_frame(0x1, false, b"{"),
        client_frame(0x0, false, b""),
        1,
        slowed,
    );
    for _ in 0..2 {
        slowed_seen
            .recv_timeout(TIMEOUT)
            .expect("a flooder was never told to slow down");
    }

    // The other room, meanwhile: everything arrives, in order.
    let mut n = 0;
    let mut chat_some = |a: &mut Client, b: &mut Client, count: usize| {
        for _ in 0..count {
            a.chat(&format!("calm {n}"));
            b.expect_chat(&a.default_name(), &format!("calm {n}"));
            n += 1;
        }
    };
    chat_some(&mut a, &mut b, 300);

    metric_eventually(m, "chat_flood_disconnects_total", 2);
    // (title, bytes of one control frame)
    for (what, flooder, size) in [("pings", pings, 131), ("empties", empties, 6)] {
        let flooded = flooder.join().unwrap();
        assert_eq!(
            flooded.told.first(),
            Some(&texts::entered_self(what)),
            "{what}: its room first"
        );
        assert!(
            flooded.told.iter().any(|t| t == texts::FLOOD_SLOW_DOWN),
            "{what}: {:?}",
            flooded.told
        );
        // Read more slowly: the burst (20), 5 a second over the grace, and what the
        // inbox (1,024 items) and one read (64 KiB) hold — twice, as a worker may hold
        // one inbox's worth while the reactor fills the next — not what was sent.
        let read_at_most = 20 + 5 * 4 + 2 * (1_024 + 64 * 1024 / size) + 64;
        assert!(
            flooded.pongs <= read_at_most,
            "{what}: {} pongs",
            flooded.pongs
        );
        assert!(
            flooded.sent > flooded.pongs,
            "{what}: sent {} but {} answered: not throttled",
            flooded.sent,
            flooded.pongs
        );
    }
    assert_eq!(gauge(m, "chat_frame_timeout_disconnects_total"), 0);
    chat_some(&mut a, &mut b, 50);
    a.expect_silence();
    b.expect_silence();
}

/// A raw HTTP request; answers the response's status line (read alone: an upgraded
/// connection stays open).
fn status_line(web: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(web).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8];
    while !line.ends_with(b"\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
        line.push(byte[0]);
    }
    String::from_utf8_lossy(&line).trim_end().to_owned()
}

/// The handshake's headers besides Host and Origin.
const HANDSHAKE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/// Finding 3: the Origin check trusted the Host header (DNS rebinding). Every variant
/// found, then what stays allowed, over raw HTTP.
#[test]
fn the_host_must_name_this_server_and_the_origin_is_never_judged_by_it() {
    let server = TestServer::with_config(ServerConfig {
        web_policy: WebPolicy {
            allowed_hosts: vec!["chat.example.org".into()],
            ..WebPolicy::default()
        },
        ..web_config()
    });
    let web = server.web.unwrap();
    let port = web.port();
    let ws = |headers: &str| format!("GET /ws HTTP/1.1\r\n{headers}{HANDSHAKE}\r\n");
    for (request, want) in [
        // What was accepted.
        (
            ws("Host: evil.example\r\nOrigin: http://evil.example\r\n"),
            "HTTP/1.1 421 Misdirected Request",
        ),
        (
            ws(&format!(
                "Host: evil.example:{port}\r\nOrigin: http://evil.example:{port}\r\n"
            )),
            "HTTP/1.1 421 Misdirected Request",
        ),
        (ws("Origin: http://\r\n"), "HTTP/1.1 400 Bad Request"),
        (
            ws("Host:\r\nOrigin: http://\r\n"),
            "HTTP/1.1 400 Bad Request",
        ),
        (
            ws("Host: \r\nOrigin: http://\r\n"),
            "HTTP/1.1 400 Bad Request",
        ),
        (
            ws(&format!(
                "Host: {web}\r\nHost: evil.example\r\nOrigin: http://evil.example\r\n"
            )),
            "HTTP/1.1 400 Bad Request",
        ),
        (
            ws(&format!(
                "Host: {web}\r\nHost: {web}\r\nOrigin: http://{web}\r\n"
            )),
            "HTTP/1.1 400 Bad Request",
        ),
        // A Host with a path is no host at all (RFC 9112 §3.2: an invalid Host is 400).
        (
            ws(&format!(
                "Host: {web}/evil\r\nOrigin: http://{web}/evil\r\n"
            )),
            "HTTP/1.1 400 Bad Request",
        ),
        (
            "GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n".to_owned(),
            "HTTP/1.1 421 Misdirected Request",
        ),
        (
            format!("GET /app.js HTTP/1.1\r\nHost: evil.example:{port}\r\n\r\n"),
            "HTTP/1.1 421 Misdirected Request",
        ),
        (
            "GET / HTTP/1.1\r\n\r\n".to_owned(),
            "HTTP/1.1 400 Bad Request",
        ),
        // A foreign Origin with an allowed Host: 403, as before.
        (
            ws(&format!("Host: {web}\r\nOrigin: http://evil.example\r\n")),
            "HTTP/1.1 403 Forbidden",
        ),
        (
            ws(&format!("Host: {web}\r\nOrigin: http://127.0.0.1:1\r\n")),
            "HTTP/1.1 403 Forbidden",
        ),
        (ws(&format!("Host: {web}\r\n")), "HTTP/1.1 403 Forbidden"),
        // What is allowed: this server's address, localhost, loopback, the names
        // given; with or without the port; pages of http:// and https://.
        (
            ws(&format!("Host: {web}\r\nOrigin: http://{web}\r\n")),
            "HTTP/1.1 101 Switching Protocols",
        ),
        (
            ws(&format!(
                "Host: localhost:{port}\r\nOrigin: https://localhost:{port}\r\n"
            )),
            "HTTP/1.1 101 Switching Protocols",
        ),
        (
            ws(&format!(
                "Host: [::1]:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n"
            )),
            "HTTP/1.1 101 Switching Protocols",
        ),
        (
            ws(&format!(
                "Host: 127.0.0.2\r\nOrigin: http://localhost:{port}\r\n"
            )),
            "HTTP/1.1 101 Switching Protocols",
        ),
        (
            ws("Host: chat.example.org\r\nOrigin: https://chat.example.org\r\n"),
            "HTTP/1.1 101 Switching Protocols",
        ),
        (
            "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_owned(),
            "HTTP/1.1 200 OK",
        ),
        (
            "GET / HTTP/1.1\r\nHost: Chat.Example.Org:443\r\n\r\n".to_owned(),
            "HTTP/1.1 200 OK",
        ),
    ] {
        assert_eq!(status_line(web, &request), want, "{request:?}");
    }
}

/// `--web-host` reaches the config: the binary answers to the name given, and to no
/// other.
#[test]
fn web_host_names_a_host_the_binary_answers_to() {
    let server = BinaryServer::start(&["--web=127.0.0.1:0", "--web-host=chat.example.org"]);
    let line = server.log_line("web client on http://");
    let rest = &line[line.find("http://").unwrap() + "http://".len()..];
    let web: SocketAddr = rest.split('/').next().unwrap().parse().unwrap();
    let get = |host: &str| status_line(web, &format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n"));
    assert_eq!(get("chat.example.org"), "HTTP/1.1 200 OK");
    assert_eq!(get("other.example.org"), "HTTP/1.1 421 Misdirected Request");
    assert_eq!(get(&web.to_string()), "HTTP/1.1 200 OK");
}

/// Finding 4: a web connection that never sent its request line was kept forever and
/// held a slot of `--max-connections`. Now an unfinished request — nothing at all,
/// or a part — is cut at the frame timeout, and its slot is free again.
#[test]
fn a_request_never_finished_is_cut_at_the_frame_timeout_and_frees_its_slot() {
    let frame_timeout = Duration::from_secs(2);
    let server = TestServer::with_config(ServerConfig {
        frame_timeout,
        max_connections: 2,
        ..web_config()
    });
    let (m, web) = (server.metrics_addr(), server.web.unwrap());
    let opened = Instant::now();
    let mut silent = TcpStream::connect(web).unwrap();
    let mut partial = TcpStream::connect(web).unwrap();
    partial.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
    metric_eventually(m, "chat_connections", 2);
    // They hold both slots: a third is closed at once, unanswered.
    let mut third = TcpStream::connect(web).unwrap();
    third.set_read_timeout(Some(TIMEOUT)).unwrap();
    let _ = third.write_all(format!("GET / HTTP/1.1\r\nHost: {web}\r\n\r\n").as_bytes());
    let mut buf = Vec::new();
    let _ = third.read_to_end(&mut buf);
    assert!(
        buf.is_empty(),
        "served past the limit: {:?}",
        String::from_utf8_lossy(&buf)
    );

    let limit = frame_timeout + Duration::from_secs(4);
    expect_reset_by(&mut silent, opened, limit);
    expect_reset_by(&mut partial, opened, limit);
    metric_eventually(m, "chat_frame_timeout_disconnects_total", 2);
    metric_eventually(m, "chat_connections", 0);
    // The slots are free again.
    assert_eq!(
        status_line(web, &format!("GET / HTTP/1.1\r\nHost: {web}\r\n\r\n")),
        "HTTP/1.1 200 OK"
    );
}

/// Pings are not messages: a web client that only pings is idle, like a TCP client
/// that only drips bytes.
#[test]
fn pings_alone_do_not_keep_a_connection_from_the_idle_timeout() {
    let server = TestServer::with_config(ServerConfig {
        idle_timeout: Some(Duration::from_secs(1)),
        ..web_config()
    });
    let (m, web) = (server.metrics_addr(), server.web.unwrap());
    let mut stream = upgrade(web);
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let ping = client_frame(0x9, true, b"still here");
    let deadline = Instant::now() + TIMEOUT;
    let mut buf = [0u8; 256];
    loop {
        assert!(Instant::now() < deadline, "never cut off for idleness");
        // The server may have closed already.
        let _ = stream.write_all(&ping);
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {} // the pong
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("{e}"),
        }
    }
    metric_eventually(m, "chat_idle_disconnects_total", 1);
}
