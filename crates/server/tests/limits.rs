//! Connection limits and the idle timeout.
//!
//! * `max_connections: 5`: five clients are served; a sixth is accepted, and once it
//!   says something (so that its format is known) it is told
//!   `서버에 접속한 사람이 너무 많습니다. …` in that format and closed, in both formats;
//!   refusals are counted as `chat_connections_refused_total{reason="limit"}`; the
//!   five are unaffected; once one of them leaves, a new client is accepted and
//!   served.
//! * `idle_timeout: 1 s`: a client that sends nothing is disconnected (it reads end of
//!   stream, its room is told `[NAME] 님이 퇴장했습니다.`, `chat_idle_disconnects_total`
//!   moves), while a client that keeps talking stays connected well past the timeout.
//!   The reactor checks about once a second, so the silent client goes between 1 and
//!   about 2 s after its last message; the test takes about 3 s.
//! * Out of descriptors (the binary under a hard `RLIMIT_NOFILE` of 48): connections
//!   that do not fit are closed at once, the server does not spin, and it serves new
//!   clients again once others leave.

mod support;

use std::io;
use std::thread;
use std::time::{Duration, Instant};

use chat_proto::{Request, Response, WireFormat};
use chat_server::ServerConfig;
use support::*;

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

    for (refused, format) in WireFormat::ALL.into_iter().enumerate() {
        let mut sixth = server.client(format);
        sixth.send(&Request::Rooms);
        sixth.expect_system(chat_core::texts::SERVER_FULL);
        assert_eq!(
            sixth.expect_eof(),
            vec![],
            "{format}: nothing after the refusal"
        );
        metric_eventually(
            m,
            "chat_connections_refused_total{reason=\"limit\"}",
            refused as u64 + 1,
        );
    }
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
    metric_eventually(m, "chat_connections_refused_total{reason=\"limit\"}", 2);
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

/// The process runs out of descriptors (a hard `RLIMIT_NOFILE` of 48 it cannot raise,
/// far below `--max-connections`): connections past what fits are accepted and closed
/// at once — the reserve descriptor makes room to take them off the backlog — the
/// server keeps serving the others, does not spin, and takes new clients again once
/// some leave.
#[test]
fn out_of_descriptors_refuses_cleanly_and_recovers() {
    use std::os::unix::process::CommandExt;

    const NOFILE: libc::rlim_t = 48;
    let server = BinaryServer::start_with(&["--max-connections=1000"], |cmd| {
        // SAFETY: runs in the child between fork and exec; setrlimit is
        // async-signal-safe and touches only the struct on this stack.
        unsafe {
            cmd.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: NOFILE,
                    rlim_max: NOFILE,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });

    // Connect one client at a time; each is either served (answers /rooms) or closed
    // without a word. With 48 descriptors, some of 60 must be refused.
    let mut served = Vec::new();
    let mut refused = 0;
    for i in 0..60 {
        let mut client = server.client(WireFormat::ALL[i % 2]);
        client.send(&Request::Rooms);
        match client.recv_or_eof() {
            Some(Response::RoomsResult { .. }) => served.push(client),
            Some(other) => panic!("client {i} got {other:?}"),
            None => refused += 1,
        }
    }
    assert!(refused > 0, "48 descriptors cannot hold 60 clients");
    assert!(served.len() >= 30, "only {} served", served.len());
    assert_eq!(served.len() + refused, 60);

    // The refusals were logged, and the process is idle now: no accept loop spinning.
    server.log_line("NoDescriptors");
    let before = cpu_ticks(server.pid());
    let idle = Instant::now();
    for client in &mut served {
        client.expect_silence();
    }
    while idle.elapsed() < Duration::from_secs(1) {
        thread::sleep(Duration::from_millis(100)); // measuring an idle period, not syncing
    }
    let spent = cpu_ticks(server.pid()) - before;
    assert!(
        spent < 30,
        "server used {spent} ticks (10 ms each) of CPU while idle"
    );

    // Some leave; newcomers are served again.
    for client in served.drain(..10) {
        client.disconnect();
    }
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut client = server.client(WireFormat::Json);
        client.send(&Request::Rooms);
        if let Some(Response::RoomsResult { .. }) = client.recv_or_eof() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no new client served after others left"
        );
    }
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the parenthesised command name; utime and stime are the 14th and
    // 15th fields of the whole line.
    let rest = &stat[stat.rfind(')').expect("comm field") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}
