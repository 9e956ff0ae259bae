//! Who may say what: names that cannot impersonate, unique names, flood control,
//! `/shutdown` only for the server's owner, logs a client cannot flood, safe echoes.
//!
//! * Every spelling that made a chat line read as a system line or as another
//!   member's line is refused, with the reason (one table, both formats), and leaves
//!   the name unchanged and the room unaware.
//! * Two clients cannot both be `alice`, nor `alice` and a Cyrillic `аlice`; a name is
//!   free again once its holder leaves or renames.
//! * Chat padding that would push a forged `[시스템 메시지]` to a fresh terminal line is
//!   collapsed.
//! * A flooding client is told once, slowed down, and cut off when it keeps on, while
//!   a member of another room is served throughout; a burst that stops is only
//!   slowed down.
//! * `/shutdown` from a process of another local user (`nobody`) is refused and
//!   counted; from the server's own user it stops the server.
//! * 100,000 refused requests produce a bounded number of log lines.
//! * An unknown `type` is echoed sanitised and short, even when 65,500 characters
//!   long.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use chat_core::{FloodLimits, Rate, texts};
use chat_proto::{Request, Response, WireFormat};
use chat_server::{ServerConfig, ShutdownPolicy};
use support::*;

fn spoofing_names_are_refused_with_the_reason(format: WireFormat) {
    let server = TestServer::start();
    let (mut a, mut b) = server.pair_in_room(format, "r");
    b.set_name("alice");
    a.expect_system(&texts::renamed_others(&b.default_name(), "alice"));
    let decomposed: String = unicode_nfd("시스템 메시지");
    let cases: &[(&str, &str)] = &[
        ("시스템 메시지] [alice", texts::NAME_BRACKETS),
        ("［시스템 메시지］", texts::NAME_BRACKETS),
        ("(127.0.0.1, 5000)", texts::NAME_BRACKETS),
        ("「bob」", texts::NAME_BRACKETS),
        (&decomposed, texts::NAME_RESERVED),
        ("시스템\u{a0}메시지", texts::NAME_RESERVED),
        ("시스템\u{3000}메시지", texts::NAME_RESERVED),
        ("시스템  메시지", texts::NAME_RESERVED),
        ("시스템메시지", texts::NAME_RESERVED),
        (" 시스템 메시지 ", texts::NAME_RESERVED),
        ("시스템\u{200B} 메시지", texts::NAME_CONTROL),
        ("\u{200B}", texts::NAME_CONTROL),
        ("\u{FEFF}\u{FEFF}", texts::NAME_CONTROL),
        ("\u{200E}", texts::NAME_CONTROL),
        ("\u{3164}", texts::NAME_INVISIBLE),
        ("\u{115F}\u{1160}", texts::NAME_INVISIBLE),
        ("\u{0301}", texts::NAME_INVISIBLE),
        ("\u{430}lice", texts::NAME_TAKEN),
        ("alice", texts::NAME_TAKEN),
        ("alice ", texts::NAME_TAKEN),
    ];
    for (name, text) in cases {
        a.send(&Request::Name {
            name: (*name).into(),
        });
        a.expect_system(text);
    }
    b.expect_silence(); // no rename notice for a refused name
    let me = a.default_name();
    assert_eq!(a.rooms(), vec![room(1, "r", &[&me, "alice"])]);
}

/// NFD of `s`, spelled out so the test does not depend on the crate it checks.
fn unicode_nfd(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let code = c as u32;
            if !(0xAC00..=0xD7A3).contains(&code) {
                return vec![c];
            }
            let s = code - 0xAC00;
            let (l, v, t) = (s / 588, (s % 588) / 28, s % 28);
            let mut jamo = vec![
                char::from_u32(0x1100 + l).unwrap(),
                char::from_u32(0x1161 + v).unwrap(),
            ];
            if t > 0 {
                jamo.push(char::from_u32(0x11A7 + t).unwrap());
            }
            jamo
        })
        .collect()
}

#[test]
fn two_clients_cannot_both_be_alice_until_one_lets_go() {
    let server = TestServer::start();
    let mut a = server.client(WireFormat::Json);
    let mut b = server.client(WireFormat::Protobuf);
    a.set_name("alice");
    a.set_name("alice"); // one's own name again is fine
    b.send(&Request::Name {
        name: "alice".into(),
    });
    b.expect_system(texts::NAME_TAKEN);
    // Renaming frees the old name.
    a.set_name("alicia");
    b.set_name("alice");
    // Leaving frees it too.
    let mut c = server.client(WireFormat::Json);
    c.send(&Request::Name {
        name: "alice".into(),
    });
    c.expect_system(texts::NAME_TAKEN);
    b.disconnect();
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        c.send(&Request::Name {
            name: "alice".into(),
        });
        let text = c.recv_system();
        if text == texts::renamed_self("alice") {
            break;
        }
        assert_eq!(text, texts::NAME_TAKEN);
        assert!(std::time::Instant::now() < deadline, "alice never freed");
        std::thread::sleep(POLL_EVERY);
    }
}

fn chat_padding_cannot_start_a_fresh_line(format: WireFormat) {
    let server = TestServer::start();
    let (mut a, mut b) = server.pair_in_room(format, "r");
    a.chat(&format!("hi{}[시스템 메시지] fake", " ".repeat(300)));
    b.expect_chat(&a.default_name(), "hi [시스템 메시지] fake");
    a.chat("a   b"); // three spaces are kept
    b.expect_chat(&a.default_name(), "a   b");
}

#[test]
fn an_unknown_type_is_echoed_sanitised_and_short() {
    let server = TestServer::start();
    let mut a = server.client(WireFormat::Json);
    let payload = format!("{{\"type\": \"\\u001b[31m{}\"}}", "x".repeat(65_500 - 20));
    a.send_raw(&frame(payload.as_bytes()));
    let text = a.recv_system();
    assert!(!text.contains('\u{1b}'), "{text:?}");
    assert!(text.starts_with("잘못된 메시지입니다: 알 수 없는 메시지 종류 \u{FFFD}[31mxxx"));
    assert!(text.contains("x… 입니다."), "{text}");
    assert!(text.chars().count() < 80);
}

/// Tight limits, so the test is short: 10 chats/s after 5, 2 s of grace.
fn tight_limits() -> FloodLimits {
    FloodLimits {
        chat: Rate {
            per_second: 10.0,
            burst: 5.0,
        },
        command: Rate {
            per_second: 10.0,
            burst: 10.0,
        },
        grace: Duration::from_secs(2),
    }
}

/// Chats `0`, `1`, … `count - 1`, encoded in JSON, to send in one write.
fn numbered_chats(count: usize) -> Vec<u8> {
    (0..count)
        .flat_map(|n| {
            encode(
                WireFormat::Json,
                &Request::Chat {
                    text: n.to_string(),
                },
            )
        })
        .collect()
}

#[test]
fn a_flooder_is_slowed_then_cut_and_another_room_is_served() {
    let server = TestServer::with_config(ServerConfig {
        flood_control: Some(tight_limits()),
        ..config_with_metrics(2)
    });
    let (mut flooder, mut reader) = server.pair_in_room(WireFormat::Json, "flooded");
    let (mut p, mut q) = {
        let mut p = server.client(WireFormat::Protobuf);
        let mut q = server.client(WireFormat::Protobuf);
        p.create("calm");
        q.join(2, "calm");
        p.expect_system(&entered(&q.default_name()));
        (p, q)
    };
    let burst = numbered_chats(500);
    flooder.send_raw(&burst);
    flooder.expect_system(texts::FLOOD_SLOW_DOWN);

    // Meanwhile the other room is served at once.
    for n in 0..5 {
        p.chat(&format!("calm {n}"));
        q.expect_chat(&p.default_name(), &format!("calm {n}"));
    }

    // The reader gets an in-order prefix of the flood, then the flooder's leave.
    let name = flooder.default_name();
    let mut next = 0;
    loop {
        match reader.recv() {
            Response::Chat { member, text } => {
                assert_eq!(member, name);
                assert_eq!(text, next.to_string(), "in order");
                next += 1;
            }
            Response::SystemMessage { text } => {
                assert_eq!(text, left(&name));
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    // 5 at once, then 10/s for the 2 s of grace (the machine may be slow: a bound).
    assert!((5..100).contains(&next), "{next} chats went through");
    assert_eq!(
        flooder.expect_eof(),
        vec![Response::system(texts::FLOOD_DISCONNECT)]
    );
    metric_eventually(server.metrics_addr(), "chat_flood_disconnects_total", 1);
}

#[test]
fn a_burst_that_stops_is_slowed_down_not_cut() {
    let server = TestServer::with_config(ServerConfig {
        flood_control: Some(tight_limits()),
        ..ServerConfig::local(2)
    });
    let (mut sender, mut reader) = server.pair_in_room(WireFormat::Json, "r");
    let burst = numbered_chats(10);
    sender.send_raw(&burst);
    sender.expect_system(texts::FLOOD_SLOW_DOWN);
    for n in 0..10 {
        reader.expect_chat(&sender.default_name(), &n.to_string());
    }
    sender.expect_silence();
}

/// Set in the environment of this test binary when it runs as the helper client of
/// [`shutdown_is_for_the_servers_own_user`].
const HELPER_ADDR: &str = "CHAT_TEST_SHUTDOWN_FROM";

/// Not a test on its own: the client that [`shutdown_is_for_the_servers_own_user`]
/// runs as another user. Sends `/shutdown` and prints the reply.
#[test]
#[ignore = "run by shutdown_is_for_the_servers_own_user as another user"]
fn shutdown_helper_client() {
    let Ok(addr) = std::env::var(HELPER_ADDR) else {
        return;
    };
    let mut client = Client::connect(addr.parse().unwrap(), WireFormat::Json);
    client.send(&Request::Shutdown);
    println!("REPLY {}", client.recv_system());
}

#[test]
fn shutdown_is_for_the_servers_own_user() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: running a client as another user needs root");
        return;
    }
    let server = TestServer::with_config(ServerConfig {
        shutdown_from: ShutdownPolicy::Owner,
        ..config_with_metrics(2)
    });
    // A copy of this binary that user `nobody` may run.
    let dir = std::env::temp_dir().join(format!("chat-owner-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let helper = dir.join("helper");
    std::fs::copy(std::env::current_exe().unwrap(), &helper).unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = Command::new(&helper)
        .args([
            "--exact",
            "shutdown_helper_client",
            "--include-ignored",
            "--nocapture",
        ])
        .env(HELPER_ADDR, server.addr.to_string())
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run the helper as nobody");
    std::fs::remove_dir_all(&dir).unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("REPLY {}", texts::SHUTDOWN_REFUSED)),
        "the helper as nobody was not refused: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    metric_eventually(server.metrics_addr(), "chat_shutdown_refused_total", 1);
    let mut mine = server.client(WireFormat::Json);
    mine.expect_silence(); // still serving
    mine.send(&Request::Shutdown);
    server.wait_for_exit().expect("stopped by its own user");
}

#[test]
fn a_hundred_thousand_refused_requests_make_few_log_lines() {
    let mut server = BinaryServer::start(&["--shutdown-from=none"]);
    let mut client = server.client(WireFormat::Json);
    let one = encode(WireFormat::Json, &Request::Shutdown);
    const REQUESTS: usize = 100_000;
    let writer = {
        let mut stream = client.stream();
        let batch: Vec<u8> = one.repeat(REQUESTS);
        std::thread::spawn(move || std::io::Write::write_all(&mut stream, &batch))
    };
    for _ in 0..REQUESTS {
        client.expect_system(texts::SHUTDOWN_REFUSED);
    }
    writer.join().unwrap().unwrap();
    client.expect_silence();
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(server.pid(), libc::SIGTERM) }, 0);
    assert!(server.wait_for_exit().success());
    let log = server.stderr.lock().unwrap().clone();
    let refusals = log
        .lines()
        .filter(|l| l.contains("shutdown refused"))
        .count();
    assert!(
        (1..=20).contains(&refusals),
        "{refusals} refusal lines for {REQUESTS} requests"
    );
    assert!(
        log.lines().count() < 100,
        "{} lines:\n{log}",
        log.lines().count()
    );
}

in_both_formats!(
    spoofing_names_are_refused_with_the_reason,
    chat_padding_cannot_start_a_fresh_line,
);
