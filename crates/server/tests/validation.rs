//! The lead's rules beyond PROTOCOL.md for what a client may set or say, in both
//! formats: refused names (`/name`) and titles (`/create`) with their exact texts and
//! no side effect; chat text with control characters (all but tab) replaced by
//! U+FFFD; a chat whose `SCChat` would not fit one frame (in either format, after
//! sanitising) refused with `메시지가 너무 깁니다.` at the exact boundary; and a `/rooms` answer too large for
//! one frame split into several `SCRoomsResult` messages, ordered, nothing lost.

mod support;

use chat_proto::{Request, Response, WireFormat};
use support::*;

const NAME_EMPTY: &str = "이름은 비어 있을 수 없습니다.";
const NAME_TOO_LONG: &str = "이름은 32자를 넘을 수 없습니다.";
const NAME_CONTROL: &str = "이름에 제어 문자를 쓸 수 없습니다.";
const NAME_RESERVED: &str = "시스템 메시지 는 이름으로 쓸 수 없습니다.";
const TITLE_EMPTY: &str = "방 제목은 비어 있을 수 없습니다.";
const TITLE_TOO_LONG: &str = "방 제목은 64자를 넘을 수 없습니다.";
const TITLE_CONTROL: &str = "방 제목에 제어 문자를 쓸 수 없습니다.";
const TOO_LONG: &str = "메시지가 너무 깁니다.";

in_both_formats!(
    refused_names_leave_the_name_unchanged,
    names_are_limited_in_chars_not_bytes,
    refused_titles_create_no_room,
    titles_are_limited_in_chars_not_bytes,
    chat_control_characters_become_replacement_characters,
    chat_too_long_for_one_frame_is_refused_at_the_exact_boundary,
    chat_that_outgrows_a_frame_when_sanitised_is_refused,
    rooms_too_large_for_one_frame_are_split,
);

fn refused_names_leave_the_name_unchanged(format: WireFormat) {
    let server = TestServer::start();
    let (mut a, mut b) = server.pair_in_room(format, "r");

    let cases = [
        ("", NAME_EMPTY),
        ("   ", NAME_EMPTY),
        (" \u{3000} ", NAME_EMPTY),
        (&"가".repeat(33), NAME_TOO_LONG),
        (&"x".repeat(33), NAME_TOO_LONG),
        ("a\nb", NAME_CONTROL),
        ("a\tb", NAME_CONTROL),
        ("nul\u{0}", NAME_CONTROL),
        ("\u{1b}[31mred", NAME_CONTROL),
        ("del\u{7f}", NAME_CONTROL),
        ("시스템 메시지", NAME_RESERVED),
    ];
    for (name, text) in cases {
        a.send(&Request::Name { name: name.into() });
        a.expect_system(text);
    }
    b.expect_silence(); // no rename notice for a refused name
    assert_eq!(
        a.rooms(),
        vec![room(1, "r", &[&a.default_name(), &b.default_name()])]
    );
    a.chat("still me");
    b.expect_chat(&a.default_name(), "still me");
}

fn names_are_limited_in_chars_not_bytes(format: WireFormat) {
    let server = TestServer::start();
    let mut a = server.client(format);
    a.set_name(&"가".repeat(32)); // 96 bytes, 32 chars
    a.set_name(&"😀".repeat(32)); // 128 bytes
    a.send(&Request::Name {
        name: "😀".repeat(33),
    });
    a.expect_system(NAME_TOO_LONG);
    a.create("r");
    assert_eq!(a.rooms(), vec![room(1, "r", &[&"😀".repeat(32)])]);
}

fn refused_titles_create_no_room(format: WireFormat) {
    let server = TestServer::start();
    let mut a = server.client(format);
    let cases = [
        ("", TITLE_EMPTY),
        ("  ", TITLE_EMPTY),
        (&"방".repeat(65), TITLE_TOO_LONG),
        (&"t".repeat(65), TITLE_TOO_LONG),
        ("two\nlines", TITLE_CONTROL),
        ("tab\there", TITLE_CONTROL),
        ("bell\u{7}", TITLE_CONTROL),
    ];
    for (title, text) in cases {
        a.send(&Request::CreateRoom {
            title: title.into(),
        });
        a.expect_system(text);
    }
    assert_eq!(a.rooms(), vec![]);
    // Not in a room either, and no id was used up.
    a.send(&Request::LeaveRoom);
    a.expect_system(NOT_IN_ROOM);
    a.create("ok");
    assert_eq!(a.rooms(), vec![room(1, "ok", &[&a.default_name()])]);
}

fn titles_are_limited_in_chars_not_bytes(format: WireFormat) {
    let server = TestServer::start();
    let mut a = server.client(format);
    let mut b = server.client(format);
    let long = "방".repeat(64); // 192 bytes
    a.create(&long);
    b.send(&Request::CreateRoom {
        title: "😀".repeat(65),
    });
    b.expect_system(TITLE_TOO_LONG);
    b.create(&"😀".repeat(64));
    assert_eq!(
        a.rooms(),
        vec![
            room(1, &long, &[&a.default_name()]),
            room(2, &"😀".repeat(64), &[&b.default_name()]),
        ]
    );
}

fn chat_control_characters_become_replacement_characters(format: WireFormat) {
    let server = TestServer::start();
    let (mut a, mut b) = server.pair_in_room(format, "r");

    let cases = [
        ("plain 안녕 😀", "plain 안녕 😀"),
        ("tab\tkept", "tab\tkept"),
        ("new\nline", "new\u{fffd}line"),
        ("crlf\r\n", "crlf\u{fffd}\u{fffd}"),
        ("\u{0}nul", "\u{fffd}nul"),
        ("\u{1b}[31mred\u{1b}[0m", "\u{fffd}[31mred\u{fffd}[0m"),
        ("del\u{7f} c1\u{85}\u{9f}", "del\u{fffd} c1\u{fffd}\u{fffd}"),
        (
            "bell\u{7}\u{8}\u{c}\u{1f}",
            "bell\u{fffd}\u{fffd}\u{fffd}\u{fffd}",
        ),
    ];
    for (sent, delivered) in cases {
        b.chat(sent);
        a.expect_chat(&b.default_name(), delivered);
    }
    a.expect_silence();
    b.expect_silence();
}

fn chat_too_long_for_one_frame_is_refused_at_the_exact_boundary(format: WireFormat) {
    let server = TestServer::start();
    let mut a = server.client(format);
    let mut b = server.client(format);
    a.set_name("m");
    a.create("r");
    b.join(1, "r");
    a.expect_system(&entered(&b.default_name()));

    // The longest ASCII text whose SCChat from "m" still fits one frame. A broadcast
    // must fit in every format (members may use either; JSON is the larger), so the
    // limit is the same whatever the sender's and the members' formats.
    let fits = |len: usize| {
        let chat = Response::Chat {
            member: "m".into(),
            text: "x".repeat(len).into(),
        };
        WireFormat::ALL.iter().all(|&f| response_fits(f, &chat))
    };
    let longest = (0..=u16::MAX as usize)
        .rev()
        .find(|&len| fits(len))
        .unwrap();
    assert!(longest > 60_000);

    let too_long = "x".repeat(longest + 1);
    a.chat(&too_long);
    a.expect_system(TOO_LONG);
    b.expect_silence(); // nothing forwarded

    let just_fits = "x".repeat(longest);
    a.chat(&just_fits);
    a.expect_silence();
    b.expect_chat("m", &just_fits);
    b.expect_silence();
}

/// Sanitising happens before the size check: each 2-byte U+0085 (a C1 control
/// character) becomes a 3-byte U+FFFD, pushing a request that fits one frame past it.
fn chat_that_outgrows_a_frame_when_sanitised_is_refused(format: WireFormat) {
    let server = TestServer::start();
    let (mut a, mut b) = server.pair_in_room(format, "r");

    let text = "\u{85}".repeat(32_000); // 64,000 bytes; 96,000 once sanitised
    let request = match format {
        // Raw UTF-8: the reference client's \u0085 escapes would not fit a frame.
        WireFormat::Json => frame(format!(r#"{{"type": "CSChat", "text": "{text}"}}"#).as_bytes()),
        WireFormat::Protobuf => encode(format, &Request::Chat { text }),
    };
    a.send_raw(&request);
    a.expect_system(TOO_LONG);
    b.expect_silence();
}

fn rooms_too_large_for_one_frame_are_split(format: WireFormat) {
    // 260 rooms, each with a 64-char title (186 bytes) and one 32-char member name
    // (90 bytes): over 70 KB of strings alone, so more than one frame.
    const ROOMS: usize = 260;
    let server = TestServer::start();
    let mut expected = Vec::new();
    let mut owners = Vec::new();
    for i in 0..ROOMS {
        let mut owner = server.client(format);
        let name = format!("{i:03}{}", "이".repeat(29));
        let title = format!("{i:03}{}", "방".repeat(61));
        owner.set_name(&name);
        owner.create(&title);
        expected.push(room(i as i64 + 1, &title, &[&name]));
        owners.push(owner);
    }
    let whole = Response::RoomsResult {
        rooms: expected.clone(),
    };
    assert!(!response_fits(format, &whole), "the test needs more rooms");

    // The reply to /rooms is every SCRoomsResult before the reply to the /leave that
    // follows it.
    let mut observer = server.client(format);
    observer.send(&Request::Rooms);
    observer.send(&Request::LeaveRoom);
    let mut parts = Vec::new();
    loop {
        match observer.recv() {
            Response::RoomsResult { rooms } => parts.push(rooms),
            Response::SystemMessage { text } if text == NOT_IN_ROOM => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(parts.len() > 1, "one SCRoomsResult cannot hold all rooms");
    assert!(parts.iter().all(|part| !part.is_empty()), "an empty part");
    assert_eq!(parts.concat(), expected);
}
