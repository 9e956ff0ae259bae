//! Every command of PROTOCOL.md §4, with its exact texts and exact recipients.
//!
//! Each test runs once per wire format (`json::<test>`, `protobuf::<test>`) against a
//! fresh in-process server, so room ids start at 1 in every test. Covered: the default
//! name `(IP, PORT)`, `/name` (self text; `OLD 의 이름이 …` to the other members only),
//! `/rooms` (empty, ordered by id, members in join order), `/create`, `/join` (the
//! in-room check first, missing/negative/huge ids), `/leave`, chat (to every other
//! member exactly once, never echoed, never to another room), leaving by disconnect,
//! and room ids (from 1, by one, never reused; empty rooms deleted).
//!
//! "Nobody else got anything" is checked with `expect_silence` (a `/rooms` probe whose
//! reply must come next), never by sleeping; see `support`.

mod support;

use chat_proto::{Request, WireFormat};
use support::*;

in_both_formats!(
    server_speaks_only_in_reply,
    default_name_is_own_ip_and_port,
    name_outside_a_room_is_told_only_to_self,
    name_in_a_room_is_told_to_the_other_members,
    rooms_is_empty_at_start,
    rooms_are_ordered_by_id_with_members_in_join_order,
    create_enters_the_new_room,
    create_in_a_room_is_refused,
    join_checks_being_in_a_room_first,
    join_of_a_missing_room_is_refused,
    join_tells_every_earlier_member_only,
    leave_outside_a_room_is_refused,
    leave_tells_the_others_and_self,
    chat_outside_a_room_is_refused,
    chat_goes_to_every_other_member_exactly_once,
    chats_from_one_member_arrive_in_order,
    disconnect_leaves_the_room,
    disconnect_in_the_middle_of_a_message_leaves_the_room,
    empty_rooms_are_deleted,
    room_ids_start_at_one_and_are_never_reused,
);

fn server_speaks_only_in_reply(format: WireFormat) {
    let server = TestServer::start();
    let mut a = server.client(format);
    // The first thing to arrive must be the reply to the probe.
    a.expect_silence();
}

fn default_name_is_own_ip_and_port(format: WireFormat) {
    let server = TestServer::start();
    let mut a = server.client(format);
    let mut b = server.client(format);
    let (name_a, name_b) = (a.default_name(), b.default_name());
    assert_ne!(name_a, name_b);
    assert!(name_a.starts_with("(127.0.0.1, "), "{name_a}");

    a.create("r");
    b.join(1, "r");
    a.expect_system(&entered(&name_b));
    assert_eq!(a.rooms(), vec![room(1, "r", &[&name_a, &name_b])]);
    b.chat("hi");
    a.expect_chat(&name_b, "hi");
}

fn name_outside_a_room_is_told_only_to_self(format: WireFormat) {
    let server = TestServer::start();
    let mut a = server.client(format);
    let mut other = server.client(format);
    other.create("lobby");

    a.set_name("앨리스 smith");
    a.expect_silence();
    other.expect_silence();

    // The new name is the one used afterwards.
    a.join(1, "lobby");
    other.expect_system(&entered("앨리스 smith"));
    assert_eq!(
        a.rooms(),
        vec![room(1, "lobby", &[&other.default_name(), "앨리스 smith"])]
    );
}

fn name_in_a_room_is_told_to_the_other_members(format: WireFormat) {
    let server = TestServer::start();
    let (mut a, mut b, mut c) = (
        server.client(format),
        server.client(format),
        server.client(format),
    );
    let mut elsewhere = server.client(format);
    let mut lobby = server.client(format);
    a.create("r");
    b.join(1, "r");
    a.expect_system(&entered(&b.default_name()));
    c.join(1, "r");
    a.expect_system(&entered(&c.default_name()));
    b.expect_system(&entered(&c.default_name()));
    elsewhere.create("s");

    let old = a.default_name();
    a.set_name("alice");
    for member in [&mut b, &mut c] {
        member.expect_system(&format!("{old} 의 이름이 alice 으로 변경되었습니다."));
    }
    a.expect_silence();

    // OLD is the previous name, not the connect-time one.
    a.set_name("앨리스");
    for member in [&mut b, &mut c] {
        member.expect_system("alice 의 이름이 앨리스 으로 변경되었습니다.");
    }
    for client in [&mut a, &mut b, &mut c, &mut elsewhere, &mut lobby] {
        client.expect_silence();
    }

    // The new name is shown everywhere afterwards.
    a.chat("hi");
    b.expect_chat("앨리스", "hi");
    c.expect_chat("앨리스", "hi");
    assert_eq!(
        lobby.rooms(),
        vec![
            room(1, "r", &["앨리스", &b.default_name(), &c.default_name()]),
            room(2, "s", &[&elsewhere.default_name()]),
        ]
    );
    a.leave("r");
    b.expect_system(&left("앨리스"));
    c.expect_system(&left("앨리스"));
}

fn rooms_is_empty_at_start(format: WireFormat) {
    let server = TestServer::start();
    let mut a = server.client(format);
    assert_eq!(a.rooms(), vec![]);
}

fn rooms_are_ordered_by_id_with_members_in_join_order(format: WireFormat) {
    let server = TestServer::start();
    let mut c: Vec<Client> = (0..6).map(|_| server.client(format)).collect();
    let names: Vec<String> = c.iter().map(Client::default_name).collect();
    c[0].create("first");
    c[1].create("second");
    c[2].create("third");
    c[3].join(3, "third");
    c[2].expect_system(&entered(&names[3]));
    c[4].join(1, "first");
    c[0].expect_system(&entered(&names[4]));
    c[5].join(1, "first");
    c[0].expect_system(&entered(&names[5]));
    c[4].expect_system(&entered(&names[5]));

    let expected = vec![
        room(1, "first", &[&names[0], &names[4], &names[5]]),
        room(2, "second", &[&names[1]]),
        room(3, "third", &[&names[2], &names[3]]),
    ];
    assert_eq!(c[5].rooms(), expected);

    // Leaving and coming back puts a member last.
    c[4].leave("first");
    c[4].join(1, "first");
    let listed = c[1].rooms();
    assert_eq!(
        listed[0],
        room(1, "first", &[&names[0], &names[5], &names[4]])
    );
}

fn create_enters_the_new_room(format: WireFormat) {
    let server = TestServer::start();
    let mut a = server.client(format);
    let mut b = server.client(format);
    a.create("hello world");
    b.create("안녕 방 😀 [x]");
    assert_eq!(
        a.rooms(),
        vec![
            room(1, "hello world", &[&a.default_name()]),
            room(2, "안녕 방 😀 [x]", &[&b.default_name()]),
        ]
    );
}

fn create_in_a_room_is_refused(format: WireFormat) {
    let server = TestServer::start();
    let mut a = server.client(format);
    let mut b = server.client(format);
    a.create("one");
    a.send(&Request::CreateRoom {
        title: "two".into(),
    });
    a.expect_system(CREATE_IN_ROOM);
    assert_eq!(a.rooms(), vec![room(1, "one", &[&a.default_name()])]);
    // Still in room 1.
    b.join(1, "one");
    a.expect_system(&entered(&b.default_name()));
}

fn join_checks_being_in_a_room_first(format: WireFormat) {
    let server = TestServer::start();
    let mut a = server.client(format);
    let mut b = server.client(format);
    a.create("a-room");
    b.create("b-room");
    for room_id in [2, 1, 99, -1] {
        a.send(&Request::JoinRoom { room_id });
        a.expect_system(JOIN_IN_ROOM);
    }
    b.expect_silence();
    assert_eq!(
        a.rooms(),
        vec![
            room(1, "a-room", &[&a.default_name()]),
            room(2, "b-room", &[&b.default_name()]),
        ]
    );
}

fn join_of_a_missing_room_is_refused(format: WireFormat) {
    let server = TestServer::start();
    let mut a = server.client(format);
    let mut c = server.client(format);
    a.create("r");
    let ids = [
        2,
        0,
        -1,
        1 - (1 << 32),
        i64::from(i32::MIN),
        i64::from(i32::MAX),
    ];
    for room_id in ids {
        c.send(&Request::JoinRoom { room_id });
        c.expect_system(NO_SUCH_ROOM);
    }
    a.expect_silence();
    assert_eq!(c.rooms(), vec![room(1, "r", &[&a.default_name()])]);
    c.chat("still outside");
    c.expect_system(NOT_IN_ROOM);
}

fn join_tells_every_earlier_member_only(format: WireFormat) {
    let server = TestServer::start();
    let (mut a, mut b, mut c) = (
        server.client(format),
        server.client(format),
        server.client(format),
    );
    let mut elsewhere = server.client(format);
    let mut lobby = server.client(format);
    elsewhere.create("other");
    a.create("r");
    b.join(2, "r");
    a.expect_system(&entered(&b.default_name()));
    b.expect_silence();
    c.join(2, "r");
    a.expect_system(&entered(&c.default_name()));
    b.expect_system(&entered(&c.default_name()));
    for client in [&mut a, &mut b, &mut c, &mut elsewhere, &mut lobby] {
        client.expect_silence();
    }
}

fn leave_outside_a_room_is_refused(format: WireFormat) {
    let server = TestServer::start();
    let mut a = server.client(format);
    a.send(&Request::LeaveRoom);
    a.expect_system(NOT_IN_ROOM);
    a.create("r");
    a.leave("r");
    a.send(&Request::LeaveRoom);
    a.expect_system(NOT_IN_ROOM);
}

fn leave_tells_the_others_and_self(format: WireFormat) {
    let server = TestServer::start();
    let (mut a, mut b, mut c) = (
        server.client(format),
        server.client(format),
        server.client(format),
    );
    let mut elsewhere = server.client(format);
    elsewhere.create("other");
    a.create("방 r");
    b.join(2, "방 r");
    a.expect_system(&entered(&b.default_name()));
    c.join(2, "방 r");
    a.expect_system(&entered(&c.default_name()));
    b.expect_system(&entered(&c.default_name()));

    b.leave("방 r");
    a.expect_system(&left(&b.default_name()));
    c.expect_system(&left(&b.default_name()));
    for client in [&mut a, &mut b, &mut c, &mut elsewhere] {
        client.expect_silence();
    }
    assert_eq!(
        b.rooms(),
        vec![
            room(1, "other", &[&elsewhere.default_name()]),
            room(2, "방 r", &[&a.default_name(), &c.default_name()]),
        ]
    );

    // Outside again: chats are refused, and the room's chats no longer reach b.
    b.chat("hello?");
    b.expect_system(NOT_IN_ROOM);
    a.chat("bye b");
    a.expect_silence();
    c.expect_chat(&a.default_name(), "bye b");
    b.expect_silence();
}

fn chat_outside_a_room_is_refused(format: WireFormat) {
    let server = TestServer::start();
    let mut a = server.client(format);
    let mut other = server.client(format);
    other.create("r");
    a.chat("hello");
    a.expect_system(NOT_IN_ROOM);
    other.expect_silence();
}

fn chat_goes_to_every_other_member_exactly_once(format: WireFormat) {
    let server = TestServer::start();
    let mut room1: Vec<Client> = (0..3).map(|_| server.client(format)).collect();
    let mut room2: Vec<Client> = (0..2).map(|_| server.client(format)).collect();
    let mut lobby = server.client(format);
    room1[0].create("one");
    for i in 1..3 {
        room1[i].join(1, "one");
        let name = room1[i].default_name();
        for earlier in &mut room1[..i] {
            earlier.expect_system(&entered(&name));
        }
    }
    room2[0].create("two");
    room2[1].join(2, "two");
    let joined = room2[1].default_name();
    room2[0].expect_system(&entered(&joined));

    let sender = room1[0].default_name();
    room1[0].chat("안녕하세요 😀 hi");
    room1[0].expect_silence(); // never echoed (and a barrier)
    for member in &mut room1[1..] {
        member.expect_chat(&sender, "안녕하세요 😀 hi");
        member.expect_silence(); // exactly once
    }
    for client in room2.iter_mut().chain([&mut lobby]) {
        client.expect_silence();
    }

    let sender = room2[1].default_name();
    room2[1].chat("room two only");
    room2[1].expect_silence();
    room2[0].expect_chat(&sender, "room two only");
    for client in room1.iter_mut().chain([&mut lobby]) {
        client.expect_silence();
    }
}

fn chats_from_one_member_arrive_in_order(format: WireFormat) {
    let server = TestServer::start();
    let mut a = server.client(format);
    let mut b = server.client(format);
    let mut c = server.client(format);
    a.create("r");
    b.join(1, "r");
    a.expect_system(&entered(&b.default_name()));
    c.join(1, "r");
    a.expect_system(&entered(&c.default_name()));
    b.expect_system(&entered(&c.default_name()));

    let texts: Vec<String> = (0..50).map(|i| format!("message {i}")).collect();
    for text in &texts {
        b.chat(text);
    }
    for receiver in [&mut a, &mut c] {
        for text in &texts {
            receiver.expect_chat(&b.default_name(), text);
        }
        receiver.expect_silence();
    }
    b.expect_silence();
}

fn disconnect_leaves_the_room(format: WireFormat) {
    let server = TestServer::start();
    let (mut a, mut b, mut c) = (
        server.client(format),
        server.client(format),
        server.client(format),
    );
    let mut elsewhere = server.client(format);
    elsewhere.create("other");
    a.create("r");
    b.join(2, "r");
    a.expect_system(&entered(&b.default_name()));
    c.join(2, "r");
    a.expect_system(&entered(&c.default_name()));
    b.expect_system(&entered(&c.default_name()));

    let gone = b.default_name();
    b.disconnect();
    a.expect_system(&left(&gone));
    c.expect_system(&left(&gone));
    a.expect_silence();
    c.expect_silence();
    elsewhere.expect_silence();
    assert_eq!(
        a.rooms(),
        vec![
            room(1, "other", &[&elsewhere.default_name()]),
            room(2, "r", &[&a.default_name(), &c.default_name()]),
        ]
    );
}

fn disconnect_in_the_middle_of_a_message_leaves_the_room(format: WireFormat) {
    let server = TestServer::start();
    let (mut a, mut b) = server.pair_in_room(format, "r");

    // Half of a chat: its frame(s) cut short. Nothing is delivered; b just leaves.
    let wire = encode(
        format,
        &Request::Chat {
            text: "never finished".into(),
        },
    );
    b.send_raw(&wire[..wire.len() - 3]);
    let gone = b.default_name();
    b.disconnect();
    a.expect_system(&left(&gone));
    a.expect_silence();
    assert_eq!(a.rooms(), vec![room(1, "r", &[&a.default_name()])]);
}

fn empty_rooms_are_deleted(format: WireFormat) {
    let server = TestServer::start();
    let mut a = server.client(format);
    let mut b = server.client(format);

    // Deleted when the last member leaves...
    a.create("one");
    a.leave("one");
    assert_eq!(a.rooms(), vec![]);
    a.send(&Request::JoinRoom { room_id: 1 });
    a.expect_system(NO_SUCH_ROOM);

    // ...or disconnects (no reply marks that, so poll /rooms, bounded).
    b.create("two");
    assert_eq!(a.rooms(), vec![room(2, "two", &[&b.default_name()])]);
    b.disconnect();
    rooms_eventually(&mut a, &[]);
    a.send(&Request::JoinRoom { room_id: 2 });
    a.expect_system(NO_SUCH_ROOM);
}

fn room_ids_start_at_one_and_are_never_reused(format: WireFormat) {
    let server = TestServer::start();
    let mut c: Vec<Client> = (0..4).map(|_| server.client(format)).collect();
    c[0].create("x");
    c[1].create("y");
    c[2].create("z");
    let names: Vec<String> = c.iter().map(Client::default_name).collect();
    assert_eq!(
        c[3].rooms(),
        vec![
            room(1, "x", &[&names[0]]),
            room(2, "y", &[&names[1]]),
            room(3, "z", &[&names[2]]),
        ]
    );

    // Delete the highest id and the lowest: neither comes back.
    c[2].leave("z");
    c[0].leave("x");
    c[3].create("w");
    assert_eq!(
        c[3].rooms(),
        vec![room(2, "y", &[&names[1]]), room(4, "w", &[&names[3]])]
    );
    for room_id in [1, 3] {
        c[0].send(&Request::JoinRoom { room_id });
        c[0].expect_system(NO_SUCH_ROOM);
    }
    c[0].create("v");
    assert_eq!(c[0].rooms().last(), Some(&room(5, "v", &[&names[0]])));
}

/// JSON allows any integer: ids past `i32`/`i64`/`u64` must not wrap onto room 1.
#[test]
fn json_join_with_huge_ids_is_refused() {
    let server = TestServer::start();
    let mut a = server.client(WireFormat::Json);
    let mut c = server.client(WireFormat::Json);
    a.create("r");
    let ids = [
        "4294967297",              // 2^32 + 1: 1 if truncated to 32 bits
        "-4294967295",             // 1 if truncated to 32 bits
        "18446744073709551617",    // 2^64 + 1
        "9223372036854775808",     // 2^63
        "12345678901234567890123", // beyond u64
        "-99999999999999999999",   // beyond i64
    ];
    for id in ids {
        let json = format!(r#"{{"type": "CSJoinRoom", "roomId": {id}}}"#);
        c.send_raw(&frame(json.as_bytes()));
        c.expect_system(NO_SUCH_ROOM);
    }
    a.expect_silence();
    assert_eq!(c.rooms(), vec![room(1, "r", &[&a.default_name()])]);
}
