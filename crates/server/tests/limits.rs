//! Connection limits and the idle timeout.
//!
//! * `max_connections: 5`: five clients are served; a sixth is accepted and closed at
//!   once (it reads end of stream, nothing else), and counted as
//!   `chat_connections_refused_total{reason="limit"}`; the five are unaffected; once
//!   one of them leaves, a new client is accepted and served.
//! * `idle_timeout: 1 s`: a client that sends nothing is disconnected (it reads end of
//!   stream, its room is told `[NAME] 님이 퇴장했습니다.`, `chat_idle_disconnects_total`
//!   moves), while a client that keeps talking stays connected well past the timeout.
//!   The reactor checks about once a second, so the silent client goes between 1 and
//!   about 2 s after its last message; the test takes about 3 s.

mod support;

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use chat_proto::WireFormat;
use chat_server::ServerConfig;
use support::*;

/// Reads from a connection the server should close without a word: it must end
/// (EOF, or a reset) before [`TIMEOUT`], with no byte before the end.
#[track_caller]
fn expect_closed_at_once(mut stream: TcpStream) {
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("a refused connection got {n} bytes: {:?}", &buf[..n]),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("a refused connection was not closed: {e}"),
    }
}

#[test]
fn the_connection_past_the_limit_is_closed_and_a_freed_slot_is_reused() {
    let server = TestServer::with_config(ServerConfig {
        max_connections: 5,
        ..config_with_metrics(2)
    });
    let m = server.metrics_addr();
    let mut five: Vec<Client> = (0..5)
        .map(|i| server.client(WireFormat::ALL[i % 2]))
        .collect();
    for client in &mut five {
        client.expect_silence(); // accepted and served
    }

    let sixth = TcpStream::connect(server.addr).expect("the kernel still completes the handshake");
    expect_closed_at_once(sixth);
    metric_eventually(m, "chat_connections_refused_total{reason=\"limit\"}", 1);
    metric_eventually(m, "chat_connections", 5);

    // The five are unaffected.
    five[0].create("full");
    five[1].join(1, "full");
    let second = five[1].default_name();
    five[0].expect_system(&entered(&second));

    // One leaves; once the server has noticed, a newcomer is served.
    let gone = five.remove(4);
    gone.disconnect();
    metric_eventually(m, "chat_connections", 4);
    let mut newcomer = server.client(WireFormat::Json);
    newcomer.set_name("newcomer");
    newcomer.join(1, "full");
    five[0].expect_system(&entered("newcomer"));
    five[1].expect_system(&entered("newcomer"));
    metric_eventually(m, "chat_connections", 5);
    metric_eventually(m, "chat_connections_refused_total{reason=\"limit\"}", 1);
}

#[test]
fn a_silent_client_is_cut_off_and_a_talking_one_is_not() {
    let timeout = Duration::from_secs(1);
    let server = TestServer::with_config(ServerConfig {
        idle_timeout: Some(timeout),
        ..config_with_metrics(2)
    });
    let m = server.metrics_addr();
    let mut talker = server.client(WireFormat::Json);
    let mut silent = server.client(WireFormat::Protobuf);
    talker.set_name("talker");
    silent.set_name("silent");
    talker.create("quiet");
    // Taken before the silent client's last message, so never later than the server's
    // own idea of when it last heard from it.
    let silent_since = Instant::now();
    silent.join(1, "quiet");
    talker.expect_system(&entered("silent"));

    // The talker keeps talking (a `/rooms` round trip every 100 ms) until the silent
    // client's leave notice arrives, then for two more timeouts.
    let mut left_at = None;
    let deadline = silent_since + TIMEOUT;
    loop {
        let now = Instant::now();
        assert!(now < deadline, "the silent client was never cut off");
        if left_at.is_some_and(|at| now >= at + 2 * timeout) {
            break;
        }
        talker.send(&chat_proto::Request::Rooms);
        match talker.recv() {
            chat_proto::Response::RoomsResult { .. } => {}
            chat_proto::Response::SystemMessage { text } if text == left("silent") => {
                assert!(left_at.is_none(), "two leave notices");
                left_at = Some(now);
                talker.expect_rooms();
            }
            other => panic!("talker: unexpected {other:?}"),
        }
        thread::sleep(Duration::from_millis(100)); // pacing, not synchronisation
    }
    let idle = left_at.unwrap() - silent_since;
    assert!(
        idle >= timeout,
        "cut off after {idle:?} of silence, before the {timeout:?} timeout"
    );

    assert!(
        silent.expect_eof().is_empty(),
        "the silent client got messages"
    );
    metric_eventually(m, "chat_idle_disconnects_total", 1);
    // Still connected, still served, after more than three timeouts of activity.
    assert!(silent_since.elapsed() > 3 * timeout);
    assert_eq!(talker.rooms(), vec![room(1, "quiet", &["talker"])]);
    metric_eventually(m, "chat_connections", 1);
}
