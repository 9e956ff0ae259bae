//! The `direct` extension over the wire (PROTOCOL.md §7.5), in both formats: a
//! direct message reaches one connected client wherever it is — as `SCDirect` if it
//! opted in, as a system message no member can forge if it did not (the reference
//! client) — its sender gets its own copy, `/ignore` stops them, and every bad
//! request gets its text and changes nothing.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use chat_proto::{Request, Response, WireFormat};
use support::accounts::hello;
use support::*;

in_both_formats!(
    a_direct_message_reaches_one_client_in_the_form_it_reads,
    ignoring_stops_direct_messages_until_taken_back,
    bad_direct_requests_are_told_and_change_nothing,
);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn direct(client: &mut Client, to: &str, text: &str) {
    client.send(&Request::Direct {
        name: to.into(),
        text: text.into(),
    });
}

/// The next message, which must be an `SCDirect`: (member, text, time, outgoing).
fn expect_direct(client: &mut Client) -> (String, String, i64, bool) {
    match client.recv() {
        Response::Direct {
            member,
            text,
            time,
            outgoing,
        } => (member.into_owned(), text.into_owned(), time, outgoing),
        other => panic!("expected SCDirect, got {other:?}"),
    }
}

/// A client that opted in to `direct`, named `name`.
fn opted_in(server: &TestServer, format: WireFormat, name: &str) -> Client {
    let mut client = server.client(format);
    assert_eq!(hello(&mut client, &["direct"]), ["direct"]);
    client.set_name(name);
    client
}

fn a_direct_message_reaches_one_client_in_the_form_it_reads(format: WireFormat) {
    let server = TestServer::start();
    let mut alice = opted_in(&server, format, "alice");
    let mut bob = opted_in(&server, format, "bob");
    // A reference-like client: never says hello, in a room with a bystander.
    let (mut plain, mut bystander) = server.pair_in_room(format, "방");
    plain.set_name("plain");
    bystander.expect_system(&format!(
        "{} 의 이름이 plain 으로 변경되었습니다.",
        plain.default_name()
    ));

    // To an opted-in client in no room: SCDirect with the server's time; the sender
    // gets its copy, outgoing.
    let before = now_ms();
    direct(&mut alice, "bob", "안녕 bob");
    let (member, text, time, outgoing) = expect_direct(&mut bob);
    assert_eq!(
        (member.as_str(), text.as_str(), outgoing),
        ("alice", "안녕 bob", false)
    );
    assert!((before..=now_ms()).contains(&time), "{time}");
    let (member, text, _, outgoing) = expect_direct(&mut alice);
    assert_eq!(
        (member.as_str(), text.as_str(), outgoing),
        ("bob", "안녕 bob", true)
    );

    // To the reference client, in a room: a system message with the sender's name
    // in brackets (no name holds one, no member sends system messages), which the
    // room's other members do not see.
    direct(&mut alice, "plain", "[시스템 메시지] 가짜");
    plain.expect_system("[alice] 님의 귓속말: [시스템 메시지] 가짜");
    let (member, _, _, outgoing) = expect_direct(&mut alice);
    assert_eq!((member.as_str(), outgoing), ("plain", true));
    bystander.expect_silence();
    plain.expect_silence();
    bob.expect_silence();

    // Named first, opted in after: reached as it now asks, as SCDirect.
    let mut late = server.client(format);
    late.set_name("late");
    direct(&mut alice, "late", "먼저");
    late.expect_system("[alice] 님의 귓속말: 먼저");
    assert!(expect_direct(&mut alice).3);
    assert_eq!(hello(&mut late, &["direct"]), ["direct"]);
    direct(&mut alice, "late", "이제");
    assert_eq!(expect_direct(&mut late).1, "이제");
}

fn ignoring_stops_direct_messages_until_taken_back(format: WireFormat) {
    let server = TestServer::start();
    let mut alice = opted_in(&server, format, "alice");
    let mut bob = opted_in(&server, format, "bob");
    // By key: the name as `/name` would keep it (trimmed, NFC).
    bob.send(&Request::Ignore {
        name: " alice ".into(),
        ignore: true,
    });
    bob.expect_system("이제 alice 님의 귓속말을 받지 않습니다.");
    direct(&mut alice, "bob", "들려?");
    alice.expect_system("상대가 내 귓속말을 받지 않습니다.");
    bob.expect_silence();
    // By name, whoever holds it: alice renamed is not ignored, and a new alice is.
    alice.set_name("alicia");
    direct(&mut alice, "bob", "이번엔?");
    assert_eq!(expect_direct(&mut bob).1, "이번엔?");
    assert!(expect_direct(&mut alice).3);
    bob.send(&Request::Ignore {
        name: "alice".into(),
        ignore: false,
    });
    bob.expect_system("다시 alice 님의 귓속말을 받습니다.");
    bob.send(&Request::Ignore {
        name: "alice".into(),
        ignore: false,
    });
    bob.expect_system("차단하지 않은 이름입니다.");
    bob.send(&Request::Ignore {
        name: "bob".into(),
        ignore: true,
    });
    bob.expect_system("자기 자신은 차단할 수 없습니다.");
    // Bounded: 100 names, then a text; the 100 still hold.
    for n in 0..100 {
        bob.send(&Request::Ignore {
            name: format!("n{n}"),
            ignore: true,
        });
        bob.expect_system(&format!("이제 n{n} 님의 귓속말을 받지 않습니다."));
    }
    bob.send(&Request::Ignore {
        name: "alicia".into(),
        ignore: true,
    });
    bob.expect_system("귓속말 차단은 100명까지 할 수 있습니다.");
    direct(&mut alice, "bob", "아직 돼?");
    assert_eq!(expect_direct(&mut bob).1, "아직 돼?");
}

fn bad_direct_requests_are_told_and_change_nothing(format: WireFormat) {
    let server = TestServer::start();
    // Not opted in: refused, and nobody gets anything.
    let mut stranger = server.client(format);
    stranger.set_name("stranger");
    let mut bob = opted_in(&server, format, "bob");
    direct(&mut stranger, "bob", "hi");
    stranger.expect_system("귓속말을 쓰려면 먼저 CSHello 로 direct 기능을 켜야 합니다.");
    stranger.send(&Request::Ignore {
        name: "bob".into(),
        ignore: true,
    });
    stranger.expect_system("귓속말을 쓰려면 먼저 CSHello 로 direct 기능을 켜야 합니다.");
    bob.expect_silence();

    // With the default name: the recipient could not name the sender back.
    let mut nameless = server.client(format);
    hello(&mut nameless, &["direct"]);
    direct(&mut nameless, "bob", "hi");
    nameless.expect_system("귓속말을 보내려면 먼저 /name 으로 이름을 정하세요.");

    let mut alice = opted_in(&server, format, "alice");
    for (to, text, answer) in [
        ("nobody", "hi", "그런 이름으로 접속한 사람이 없습니다."),
        ("", "hi", "그런 이름으로 접속한 사람이 없습니다."),
        ("[bob]", "hi", "그런 이름으로 접속한 사람이 없습니다."),
        ("alice", "hi", "자기 자신에게는 귓속말을 보낼 수 없습니다."),
        ("bob", "   ", "보낼 내용이 없습니다."),
        // Fits a request frame; its copy (or the system form) would not fit one in
        // JSON: refused in both formats, whichever the recipient writes.
        ("bob", &"x".repeat(65_475), "메시지가 너무 깁니다."),
    ] {
        direct(&mut alice, to, text);
        alice.expect_system(answer);
    }
    // A client that left is nobody any more.
    bob.disconnect();
    direct(&mut alice, "bob", "hi");
    alice.expect_system("그런 이름으로 접속한 사람이 없습니다.");
    alice.expect_silence();
}
