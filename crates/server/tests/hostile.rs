//! Hostile and slow clients: every limit the server sets, from the client's side.
//!
//! * **Fair service**: a client pipelining `/rooms` faster than it reads is slowed
//!   down (held until its output drains), not cut off, and gets every answer — even
//!   with an outbound cap smaller than what it asked for in one write.
//! * **Slow consumers**: a member that never reads is cut off with a *reset* (an
//!   abortive close, so the kernel frees its buffers at once): by the cap, or, below
//!   the cap, by the write timeout. Either way the room sees it leave.
//! * **Memory budget**: once the server-wide budget is spent, the members with large
//!   queues are cut and a member that keeps up loses nothing; the budget is back to 0
//!   once everyone has left.
//! * **Deadlines**: a frame must be finished within the frame timeout of its first
//!   byte (slowloris); the idle timeout counts complete messages only.
//! * **Accepting**: a thousand connects while the server is stopped all complete (the
//!   listen backlog is ≥ 1,024), and are all served once it runs again; a client over
//!   the per-address limit is told why in its own format and closed, and one that says
//!   nothing is closed after a few seconds.
//! * **Metrics**: silent connections to the metrics endpoint do not hold up a scrape.
//! * **Shutdown**: every chat the server has read is delivered before it closes.
//!
//! Waiting is by deadline ([`TIMEOUT`]), never by sleeping.

mod support;

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use chat_core::texts;
use chat_proto::{Request, Response, WireFormat};
use chat_server::ServerConfig;
use support::*;

/// Bytes of each flood chat's text.
const CHAT_BYTES: usize = 16 * 1024;

fn big_text(n: usize) -> String {
    let mut text = format!("{n} ");
    text.extend(std::iter::repeat_n('x', CHAT_BYTES - text.len()));
    text
}

/// Reads `stream` (which never read before) until the server ends it; asserts the
/// end is a reset, not an orderly FIN: the server cut it off abortively.
#[track_caller]
fn expect_reset(stream: &mut TcpStream) {
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        assert!(Instant::now() < deadline, "never cut off");
        match stream.read(&mut buf) {
            Ok(0) => panic!("closed with a FIN: the unsent data would pin kernel memory"),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("read failed with {e}, not a reset"),
        }
    }
}

/// Reads until the server ends the connection (FIN or reset); fails on any byte.
#[track_caller]
fn expect_closed_without_a_word(stream: &mut TcpStream) {
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("got {n} bytes: {:?}", &buf[..n]),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("not closed: {e}"),
    }
}

fn a_client_pipelining_room_lists_is_slowed_down_not_cut(format: WireFormat) {
    // A cap below what the client asks for in one write: 30 listings of ~13 KB.
    let server = TestServer::with_config(ServerConfig {
        outbound_cap: 200 * 1024,
        ..config_with_metrics(2)
    });
    let mut members = Vec::new();
    for i in 0..100 {
        let mut member = server.client(WireFormat::Json);
        member.set_name(&format!("{i:032}"));
        member.create(&format!("{i:064}"));
        members.push(member);
    }
    let mut asker = server.client(format);
    let batch: Vec<u8> = (0..30)
        .flat_map(|_| encode(format, &Request::Rooms))
        .collect();
    asker.send_raw(&batch);
    for n in 0..30 {
        let rooms = asker.expect_rooms();
        assert_eq!(rooms.len(), 100, "listing {n}");
    }
    asker.expect_silence();
    let page = scrape(server.metrics_addr());
    assert_eq!(metric(&page, "chat_slow_consumer_disconnects_total"), 0);
}

/// Room 1 `flood` with a member `stalled` that will never read (its socket is
/// returned, never read before the test means to) and a member that sends.
fn stalled_member_and_sender(server: &TestServer, format: WireFormat) -> (TcpStream, Client) {
    let mut stalled = server.client(format);
    stalled.set_name("stalled");
    stalled.create("flood");
    let mut sender = server.client(format);
    sender.join(1, "flood");
    (stalled.stream(), sender)
}

fn a_member_that_never_reads_is_cut_by_the_cap_with_a_reset(format: WireFormat) {
    let server = TestServer::with_config(ServerConfig {
        outbound_cap: 256 * 1024,
        ..config_with_metrics(2)
    });
    let (mut stalled_stream, mut sender) = stalled_member_and_sender(&server, format);
    for n in 0..200 {
        sender.chat(&big_text(n));
    }
    // The chats may still sit in the kernel's buffers when `chat` returns: reading
    // now could keep the queue under the cap while the server catches up. Wait for
    // the cut without touching the socket (as a member that never reads would).
    sender.expect_system(&left("stalled"));
    expect_reset(&mut stalled_stream);
    metric_eventually(
        server.metrics_addr(),
        "chat_slow_consumer_disconnects_total",
        1,
    );
}

fn a_member_that_stops_reading_below_the_cap_is_cut_by_the_write_timeout(format: WireFormat) {
    let server = TestServer::with_config(ServerConfig {
        write_timeout: Duration::from_secs(1),
        outbound_cap: 16 << 20,
        ..config_with_metrics(2)
    });
    let (mut stalled_stream, mut sender) = stalled_member_and_sender(&server, format);
    // 4 MiB: more than the kernel's buffers for the connection take (about 1 MiB on
    // loopback), far below the 16 MiB cap.
    for n in 0..256 {
        sender.chat(&big_text(n));
    }
    // Reading would be progress: wait for the cut without touching the socket.
    sender.expect_system(&left("stalled"));
    let page = scrape(server.metrics_addr());
    assert_eq!(metric(&page, "chat_write_timeout_disconnects_total"), 1);
    assert_eq!(metric(&page, "chat_slow_consumer_disconnects_total"), 0);
    expect_reset(&mut stalled_stream);
}

#[test]
fn a_spent_memory_budget_cuts_the_largest_queues_and_spares_a_reader_that_keeps_up() {
    let server = TestServer::with_config(ServerConfig {
        memory_budget: 512 * 1024,
        write_timeout: Duration::from_secs(600),
        ..config_with_metrics(2)
    });
    let m = server.metrics_addr();
    let mut reader = server.client(WireFormat::Json);
    reader.set_name("reader");
    reader.create("flood");
    let mut stalled: Vec<TcpStream> = Vec::new();
    for name in ["s1", "s2"] {
        let mut client = server.client(WireFormat::Protobuf);
        client.set_name(name);
        client.join(1, "flood");
        reader.expect_system(&entered(name));
        stalled.push(client.stream());
    }
    let mut sender = server.client(WireFormat::Json);
    sender.set_name("sender");
    sender.join(1, "flood");
    reader.expect_system(&entered("sender"));

    // The reader is never more than two chats behind, so its queue stays small.
    let mut left_seen = 0;
    let mut next = 0;
    let mut expect_next = |reader: &mut Client, left_seen: &mut usize| loop {
        match reader.recv() {
            Response::Chat { member, text } => {
                assert_eq!(member, "sender");
                assert_eq!(text, big_text(next), "in order, nothing lost");
                next += 1;
                return;
            }
            Response::SystemMessage { text } => {
                assert!(text == left("s1") || text == left("s2"), "{text}");
                *left_seen += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    const CHATS: usize = 100;
    for n in 0..CHATS {
        sender.chat(&big_text(n));
        if n >= 1 {
            expect_next(&mut reader, &mut left_seen);
        }
    }
    expect_next(&mut reader, &mut left_seen);
    for stream in &mut stalled {
        expect_reset(stream);
    }
    while left_seen < 2 {
        let text = reader.recv_system();
        assert!(text == left("s1") || text == left("s2"), "{text}");
        left_seen += 1;
    }
    metric_eventually(m, "chat_slow_consumer_disconnects_total", 2);
    reader.disconnect();
    sender.disconnect();
    metric_eventually(m, "chat_connections", 0);
    metric_eventually(m, "chat_memory_budget_used_bytes", 0);
}

fn a_frame_that_never_finishes_is_cut_and_others_are_served(format: WireFormat) {
    let server = TestServer::with_config(ServerConfig {
        frame_timeout: Duration::from_secs(1),
        ..config_with_metrics(2)
    });
    let (mut a, mut b) = server.pair_in_room(format, "lobby");
    let mut dripper = server.client(format);
    // The header of a 16-byte frame, and 3 of its bytes.
    dripper.send_raw(&[0x00, 0x10, b'{', b'"', b't']);
    let mut stream = dripper.stream();
    expect_closed_without_a_word(&mut stream);
    a.chat("still here");
    b.expect_chat(&a.default_name(), "still here");
    // A frame sent in pieces, but finished in time, is served.
    let mut slow = server.client(format);
    let request = encode(format, &Request::Rooms);
    slow.send_byte_by_byte(&request);
    slow.expect_rooms();
    let page = scrape(server.metrics_addr());
    assert_eq!(metric(&page, "chat_frame_timeout_disconnects_total"), 1);
}

#[test]
fn the_idle_timeout_counts_complete_messages_only() {
    let server = TestServer::with_config(ServerConfig {
        idle_timeout: Some(Duration::from_secs(1)),
        frame_timeout: Duration::from_secs(600),
        ..config_with_metrics(2)
    });
    let mut dripper = server.client(WireFormat::Json);
    dripper.expect_silence();
    let mut stream = dripper.stream();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    // One byte of a never-ending frame every 200 ms: bytes keep coming, messages do not.
    std::io::Write::write_all(&mut stream, &[0xff, 0xff]).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let mut buf = [0u8; 64];
    loop {
        assert!(Instant::now() < deadline, "never cut off for idleness");
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => panic!("got {n} bytes"),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                // Still open: drip another byte (the server may have closed already).
                let _ = std::io::Write::write_all(&mut stream, b"x");
            }
            Err(e) => panic!("{e}"),
        }
    }
    let page = scrape(server.metrics_addr());
    assert_eq!(metric(&page, "chat_idle_disconnects_total"), 1);
    assert_eq!(metric(&page, "chat_frame_timeout_disconnects_total"), 0);
}

#[test]
fn a_thousand_connects_at_once_all_complete_and_are_served() {
    chat_server::limits::raise_open_file_limit().expect("raise RLIMIT_NOFILE");
    let server = BinaryServer::start(&[]);
    // Stopped, the server accepts nothing: every handshake must fit the backlog.
    // SAFETY: kill only sends a signal to our own child.
    assert_eq!(unsafe { libc::kill(server.pid(), libc::SIGSTOP) }, 0);
    let mut streams = Vec::new();
    let mut failed = None;
    for n in 0..1000 {
        // A handshake that fits the backlog completes at once; one that does not waits
        // for a SYN retry (a second or more).
        match TcpStream::connect_timeout(&server.addr, Duration::from_millis(500)) {
            Ok(stream) => streams.push(stream),
            Err(e) => {
                failed = Some((n, e));
                break;
            }
        }
    }
    // SAFETY: kill only sends a signal to our own child; no memory is involved.
    assert_eq!(unsafe { libc::kill(server.pid(), libc::SIGCONT) }, 0);
    if let Some((n, e)) = failed {
        panic!("connect {n} did not complete while the server was stopped: {e}");
    }
    let rooms = encode(WireFormat::Json, &Request::Rooms);
    for stream in &mut streams {
        std::io::Write::write_all(stream, &rooms).unwrap();
    }
    for (n, stream) in streams.iter_mut().enumerate() {
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut header = [0u8; 2];
        stream
            .read_exact(&mut header)
            .unwrap_or_else(|e| panic!("connection {n} was not served: {e}"));
    }
}

fn over_the_per_address_limit_a_client_is_told_why_in_its_format(format: WireFormat) {
    let server = TestServer::with_config(ServerConfig {
        max_connections_per_ip: 2,
        per_ip_exempt_loopback: false,
        ..config_with_metrics(2)
    });
    let m = server.metrics_addr();
    let mut first = server.client(format);
    let second = server.client(format);
    first.expect_silence();
    let mut third = server.client(format);
    third.send(&Request::Rooms);
    third.expect_system(texts::TOO_MANY_FROM_ADDRESS);
    assert_eq!(third.expect_eof(), vec![]);
    metric_eventually(m, "chat_connections_refused_total{reason=\"per_ip\"}", 1);

    // One that says nothing is closed after a few seconds, unheard.
    let mut silent = TcpStream::connect(server.addr).unwrap();
    expect_closed_without_a_word(&mut silent);

    // A freed place is taken again.
    second.disconnect();
    metric_eventually(m, "chat_connections", 1);
    let mut newcomer = server.client(format);
    newcomer.expect_silence();
    first.expect_silence();
}

#[test]
fn silent_connections_to_the_metrics_endpoint_do_not_hold_up_a_scrape() {
    let server = TestServer::with_config(config_with_metrics(2));
    let m = server.metrics_addr();
    let mut silent: Vec<TcpStream> = (0..10).map(|_| TcpStream::connect(m).unwrap()).collect();
    let page = scrape(m);
    assert_eq!(metric(&page, "chat_connections"), 0);
    // Served while all ten were still open: an endpoint that served one connection
    // at a time would have had to time each of them out first.
    for stream in &mut silent {
        stream.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 1];
        match stream.read(&mut buf) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            other => panic!("a silent scraper was already closed: {other:?}"),
        }
    }
}

#[test]
fn shutdown_delivers_every_chat_already_read() {
    for format in WireFormat::ALL {
        let server = TestServer::start();
        let (mut sender, mut receiver) = server.pair_in_room(format, "last words");
        let chats: Vec<u8> = (0..500)
            .flat_map(|n| {
                encode(
                    format,
                    &Request::Chat {
                        text: format!("chat {n}"),
                    },
                )
            })
            .collect();
        // On loopback the bytes are in the server's socket buffer when the write
        // returns, before the /shutdown below is even sent.
        sender.send_raw(&chats);
        let mut stopper = server.client(format);
        stopper.send(&Request::Shutdown);
        let got = receiver.expect_eof();
        let texts: Vec<String> = got
            .into_iter()
            .map(|r| match r {
                Response::Chat { text, .. } => text.into_owned(),
                Response::SystemMessage { text } => format!("notice: {text}"),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        // Every chat, then the shutdown notice, then the end of the stream.
        let mut want: Vec<String> = (0..500).map(|n| format!("chat {n}")).collect();
        want.push(format!("notice: {}", texts::SERVER_SHUTTING_DOWN));
        assert_eq!(texts, want, "{format}: every chat read before the shutdown");
        server.wait_for_exit().expect("the server stopped cleanly");
    }
}

in_both_formats!(
    a_client_pipelining_room_lists_is_slowed_down_not_cut,
    a_member_that_never_reads_is_cut_by_the_cap_with_a_reset,
    a_member_that_stops_reading_below_the_cap_is_cut_by_the_write_timeout,
    a_frame_that_never_finishes_is_cut_and_others_are_served,
    over_the_per_address_limit_a_client_is_told_why_in_its_format,
);
