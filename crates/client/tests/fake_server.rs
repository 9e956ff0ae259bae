//! `chat-client` against a hand-driven fake server: garbage gets a clear one-line
//! message and a clean non-zero exit (never a panic), control and format characters
//! (bidi controls, separators, zero-width characters) are shown escaped, requests are the reference client's bytes, and end of input waits for
//! replies to what was already sent.

mod common;

use std::io::Write;
use std::net::Shutdown;
use std::time::{Duration, Instant};

use chat_proto::codec::encode_request;
use chat_proto::{Request, Response, ResponseDecoder, RoomInfo, WireFormat};
use common::{ChatClient, EOF_LINE, FakeServer, in_both_formats};

/// Asserts the client exits with `code` after printing exactly `lines`, and that
/// nothing on stderr looks like a panic.
fn assert_exit(client: &mut ChatClient, lines: &[&str], code: i32) {
    let (rest, status) = client.wait();
    assert_eq!(rest, lines);
    assert_eq!(status.code(), Some(code), "{status:?}");
    let stderr = client.stderr_after_exit();
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
}

/// The error text `chat-proto` gives for these frames.
fn decode_error(format: WireFormat, frames: &[&[u8]]) -> String {
    let mut decoder = ResponseDecoder::new(format);
    for frame in frames {
        if let Some(result) = decoder.feed(frame) {
            return result.expect_err("garbage").to_string();
        }
    }
    panic!("no message decoded");
}

/// Sends `frames` and expects the one-line `expected` and exit status 1, with the
/// connection still open (the client leaves on its own).
fn run_garbage(format: WireFormat, frames: &[&[u8]], expected: &str) {
    let fake = FakeServer::start();
    let mut client = ChatClient::connect(fake.addr, format, &[]);
    let mut conn = fake.accept();
    for frame in frames {
        conn.send_frame(frame);
    }
    assert_exit(&mut client, &[expected], 1);
    drop(conn);
}

#[test]
fn invalid_json_is_reported_and_exits_1() {
    let expected = format!(
        "서버가 잘못된 메시지를 보내옴: {}",
        decode_error(WireFormat::Json, &[b"not json"])
    );
    run_garbage(WireFormat::Json, &[b"not json"], &expected);
}

#[test]
fn json_without_type_is_reported() {
    run_garbage(
        WireFormat::Json,
        &[br#"{"text": "x"}"#],
        "서버가 보낸 메시지에 type 필드가 없음",
    );
}

#[test]
fn json_unknown_type_is_reported_escaped() {
    run_garbage(
        WireFormat::Json,
        &[br#"{"type": "SCFoo\u001b[2J"}"#],
        "서버가 핸들러에 등록되지 않은 메시지 타입을 보내옴: 타입=SCFoo\\x1b[2J",
    );
}

#[test]
fn json_wrong_field_type_is_reported() {
    let frame: &[u8] = br#"{"type": "SCChat", "member": 5, "text": "x"}"#;
    let expected = format!(
        "서버가 잘못된 메시지를 보내옴: {}",
        decode_error(WireFormat::Json, &[frame])
    );
    run_garbage(WireFormat::Json, &[frame], &expected);
}

#[test]
fn protobuf_unknown_type_is_reported() {
    run_garbage(
        WireFormat::Protobuf,
        &[&[0x08, 0x63], &[]],
        "서버가 핸들러에 등록되지 않은 메시지 타입을 보내옴: 타입=99",
    );
}

#[test]
fn protobuf_bad_body_is_reported() {
    let frames: [&[u8]; 2] = [&[0x08, 0x08], &[0xff, 0xff, 0xff]];
    let expected = format!(
        "서버가 잘못된 메시지를 보내옴: {}",
        decode_error(WireFormat::Protobuf, &frames)
    );
    run_garbage(WireFormat::Protobuf, &frames, &expected);
}

/// Control characters from the server never reach the terminal raw.
fn control_characters_are_escaped(format: WireFormat) {
    let fake = FakeServer::start();
    let mut client = ChatClient::connect(fake.addr, format, &[]);
    let mut conn = fake.accept();
    conn.send_response(
        format,
        &Response::Chat {
            member: "ev\x1b[31mil".into(),
            text: "line1\nline2\r\x07\x1b]0;pwned\x07 \u{9b}2J\ttab".into(),
        },
    );
    conn.send_response(format, &Response::system("\x1b[2J\x1b[H가짜\x00"));
    conn.send_response(
        format,
        &Response::RoomsResult {
            rooms: vec![RoomInfo {
                room_id: 7,
                title: "t\x1bitle".into(),
                members: vec!["a\nb".into(), "c".into()],
                topic: None,
            }],
        },
    );
    client.expect_lines(&[
        "[ev\\x1b[31mil] line1\\nline2\\r\\x07\\x1b]0;pwned\\x07 \\x9b2J\\ttab",
        "[시스템 메시지] \\x1b[2J\\x1b[H가짜\\x00",
        "---",
        "[방목록]",
        "방ID | 방제목 | 멤버들",
        "7 | t\\x1bitle | a\\nb,c",
        "---",
    ]);
    // The server closing is reported with the reference's words, exit 0.
    drop(conn);
    assert_exit(&mut client, &["서버가 소켓을 닫았음"], 0);
}

/// Bidi controls, the line and paragraph separators and the other format characters
/// (Unicode Cf) the security review named, each with how the client must show it.
const FORMAT_CHARS: &[(char, &str)] = &[
    ('\u{061c}', "\\u061c"),
    ('\u{200e}', "\\u200e"),
    ('\u{200f}', "\\u200f"),
    ('\u{202a}', "\\u202a"),
    ('\u{202b}', "\\u202b"),
    ('\u{202c}', "\\u202c"),
    ('\u{202d}', "\\u202d"),
    ('\u{202e}', "\\u202e"),
    ('\u{2066}', "\\u2066"),
    ('\u{2067}', "\\u2067"),
    ('\u{2068}', "\\u2068"),
    ('\u{2069}', "\\u2069"),
    ('\u{2028}', "\\u2028"),
    ('\u{2029}', "\\u2029"),
    ('\u{200b}', "\\u200b"),
    ('\u{200c}', "\\u200c"),
    ('\u{200d}', "\\u200d"),
    ('\u{2060}', "\\u2060"),
    ('\u{2061}', "\\u2061"),
    ('\u{2062}', "\\u2062"),
    ('\u{2063}', "\\u2063"),
    ('\u{2064}', "\\u2064"),
    ('\u{feff}', "\\ufeff"),
    ('\u{00ad}', "\\xad"),
    ('\u{e0001}', "\\U000e0001"),
];

/// Text that must come through byte for byte: Hangul, emoji (with a variation
/// selector, a skin tone, a flag), a combining mark, NBSP and U+3000, a backslash.
const UNTOUCHED: &str = "안녕하세요 😀 ❤\u{fe0f} 👍\u{1f3fd} 🇰🇷 e\u{301} a\u{a0}b\u{3000}c \\u202e";

/// Format characters and separators from the server are shown escaped in chat lines
/// (member and text), system messages and room lists (title and members); ordinary
/// Korean text and emoji are not touched.
fn format_characters_are_escaped(format: WireFormat) {
    let fake = FakeServer::start();
    let mut client = ChatClient::connect(fake.addr, format, &[]);
    let mut conn = fake.accept();
    for &(c, shown) in FORMAT_CHARS {
        conn.send_response(
            format,
            &Response::Chat {
                member: format!("ev{c}il").into(),
                text: format!("photo{c}gpj.exe 안녕").into(),
            },
        );
        conn.send_response(
            format,
            &Response::system(format!("[bob]{c} 님이 입장했습니다.")),
        );
        conn.send_response(
            format,
            &Response::RoomsResult {
                rooms: vec![RoomInfo {
                    room_id: 7,
                    title: format!("방{c}제목"),
                    members: vec![format!("a{c}"), "철수😀".into()],
                    topic: None,
                }],
            },
        );
        client.expect_lines(&[
            &format!("[ev{shown}il] photo{shown}gpj.exe 안녕"),
            &format!("[시스템 메시지] [bob]{shown} 님이 입장했습니다."),
            "---",
            "[방목록]",
            "방ID | 방제목 | 멤버들",
            &format!("7 | 방{shown}제목 | a{shown},철수😀"),
            "---",
        ]);
    }
    // A family emoji's joiners are format characters too.
    conn.send_response(
        format,
        &Response::Chat {
            member: "김".into(),
            text: "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}".into(),
        },
    );
    conn.send_response(
        format,
        &Response::Chat {
            member: "김".into(),
            text: UNTOUCHED.into(),
        },
    );
    conn.send_response(format, &Response::system(UNTOUCHED));
    client.expect_lines(&[
        "[김] \u{1f468}\\u200d\u{1f469}\\u200d\u{1f467}",
        &format!("[김] {UNTOUCHED}"),
        &format!("[시스템 메시지] {UNTOUCHED}"),
    ]);
    drop(conn);
    assert_exit(&mut client, &["서버가 소켓을 닫았음"], 0);
}

/// An unknown type name holding format characters is reported escaped.
#[test]
fn json_unknown_type_with_format_characters_is_reported_escaped() {
    let kind: String = FORMAT_CHARS.iter().map(|&(c, _)| c).collect();
    let shown: String = FORMAT_CHARS.iter().map(|&(_, shown)| shown).collect();
    let frame = format!(r#"{{"type": "SC{kind}Foo"}}"#);
    run_garbage(
        WireFormat::Json,
        &[frame.as_bytes()],
        &format!("서버가 핸들러에 등록되지 않은 메시지 타입을 보내옴: 타입=SC{shown}Foo"),
    );
}

/// `--verbosity=1` shows a JSON payload holding raw format characters escaped, then
/// the message itself escaped.
#[test]
fn json_verbosity_escapes_format_characters() {
    let fake = FakeServer::start();
    let mut client = ChatClient::connect(fake.addr, WireFormat::Json, &["--verbosity=1"]);
    let mut conn = fake.accept();
    let text: String = FORMAT_CHARS.iter().map(|&(c, _)| c).collect();
    let shown: String = FORMAT_CHARS.iter().map(|&(_, shown)| shown).collect();
    let frame = format!(r#"{{"type": "SCSystemMessage", "text": "가{text}나"}}"#);
    conn.send_frame(frame.as_bytes());
    client.expect_lines(&[
        &format!(
            "[S->C:총길이={}바이트] 0x{:04x}(메시지크기) + \
             {{\"type\": \"SCSystemMessage\", \"text\": \"가{shown}나\"}}",
            frame.len() + 2,
            frame.len()
        ),
        &format!("[시스템 메시지] 가{shown}나"),
    ]);
    drop(conn);
    assert_exit(&mut client, &["서버가 소켓을 닫았음"], 0);
}

/// The client's requests are the reference client's bytes.
fn requests_are_the_reference_bytes(format: WireFormat) {
    let fake = FakeServer::start();
    let mut client = ChatClient::connect(fake.addr, format, &[]);
    let mut conn = fake.accept();
    let script = [
        (
            "/name 철수  영희",
            Request::Name {
                name: "철수 영희".into(),
            },
        ),
        ("/name", Request::Name { name: "".into() }),
        ("/rooms", Request::Rooms),
        (
            "/create 😀 room",
            Request::CreateRoom {
                title: "😀 room".into(),
            },
        ),
        ("/join 12", Request::JoinRoom { room_id: 12 }),
        ("/leave", Request::LeaveRoom),
        (
            "  say \"hi\"\t",
            Request::Chat {
                text: "say \"hi\"".into(),
            },
        ),
        ("/shutdown", Request::Shutdown),
    ];
    for (line, request) in script {
        client.type_line(line);
        let mut expected = Vec::new();
        encode_request(format, &request, &mut expected).unwrap();
        let mut got = Vec::new();
        while got.len() < expected.len() {
            let frame = conn.recv_frame().expect("a request frame");
            got.extend_from_slice(&(frame.len() as u16).to_be_bytes());
            got.extend_from_slice(&frame);
        }
        assert_eq!(got, expected, "{line}");
    }
    if format == WireFormat::Json {
        // Spot-check the json.dumps shape itself.
        client.type_line("/name 철수");
        let frame = conn.recv_frame().unwrap();
        assert_eq!(frame, br#"{"type": "CSName", "name": "\ucca0\uc218"}"#);
    } else {
        // /shutdown is `Type{CS_SHUTDOWN}` then an empty body, as the reference sends.
        client.type_line("/shutdown");
        assert_eq!(conn.recv_frame().unwrap(), [0x08, 0x06]);
        assert_eq!(conn.recv_frame().unwrap(), Vec::<u8>::new());
    }
    let (rest, status) = client.finish();
    // The fake server never closes: the drain times out, then the EOF line.
    assert_eq!(rest, [EOF_LINE]);
    assert!(status.success());
}

/// At end of input the client half-closes and prints replies that arrive after that,
/// then the EOF line — as soon as the server closes, not after the drain timeout.
fn end_of_input_waits_for_replies(format: WireFormat) {
    let fake = FakeServer::start();
    let mut client = ChatClient::connect(fake.addr, format, &[]);
    let mut conn = fake.accept();
    client.type_raw(b"/rooms\n/name x\n");
    client.close_stdin();
    let start = Instant::now();
    // Read both requests, then see the half-close (end of stream).
    let mut frames = 0;
    while conn.recv_frame().is_some() {
        frames += 1;
    }
    assert_eq!(frames, if format == WireFormat::Json { 2 } else { 4 });
    conn.send_response(format, &Response::RoomsResult { rooms: vec![] });
    conn.send_response(format, &Response::system("이름이 x 으로 변경되었습니다."));
    conn.stream.flush().unwrap();
    conn.stream.shutdown(Shutdown::Both).unwrap();
    let (rest, status) = client.wait();
    assert_eq!(
        rest,
        [
            "---",
            "[방목록]",
            "방ID | 방제목 | 멤버들",
            "(없음)",
            "---",
            "[시스템 메시지] 이름이 x 으로 변경되었습니다.",
            EOF_LINE
        ]
    );
    assert!(status.success());
    assert!(
        start.elapsed() < Duration::from_millis(1900),
        "exited when the server closed, not at the drain timeout"
    );
}

/// Messages split into single bytes, or packed several to a write, decode the same.
fn split_and_packed_messages(format: WireFormat) {
    let fake = FakeServer::start();
    let client = ChatClient::connect(fake.addr, format, &[]);
    let mut conn = fake.accept();
    let mut wire = Vec::new();
    for text in ["하나", "둘"] {
        chat_proto::codec::encode_response(format, &Response::system(text), &mut wire).unwrap();
    }
    let (first, second) = wire.split_at(wire.len() / 2);
    for byte in first {
        conn.stream.write_all(std::slice::from_ref(byte)).unwrap();
    }
    conn.stream.write_all(second).unwrap();
    client.expect_lines(&["[시스템 메시지] 하나", "[시스템 메시지] 둘"]);
}

/// Direct messages show with their direction and the other party, escaped, apart
/// from chats (their time is not shown, as for timed chats).
fn direct_messages_are_shown(format: WireFormat) {
    let fake = FakeServer::start();
    let mut client = ChatClient::connect(fake.addr, format, &[]);
    let mut conn = fake.accept();
    conn.send_response(
        format,
        &Response::Direct {
            member: "bob".into(),
            text: "안녕  하세요 😀".into(),
            time: 1_700_000_000_000,
            outgoing: false,
        },
    );
    conn.send_response(
        format,
        &Response::Direct {
            member: "김 철수".into(),
            text: "a\nb\u{202e}c".into(),
            time: 1_700_000_000_001,
            outgoing: true,
        },
    );
    // What a client that never opted in reads instead: a system message.
    conn.send_response(format, &Response::system("[bob] 님의 귓속말: hi"));
    client.expect_lines(&[
        "[귓속말 ← bob] 안녕  하세요 😀",
        "[귓속말 → 김 철수] a\\nb\\u202ec",
        "[시스템 메시지] [bob] 님의 귓속말: hi",
    ]);
    drop(conn);
    assert_exit(&mut client, &["서버가 소켓을 닫았음"], 0);
}

/// A room's topic (the `moderation` extension) shows as a system-styled line: on
/// entry, when someone sets it, when someone clears it; escaped like every line. In
/// the rooms table it follows the title; a room without one keeps the reference's row.
fn topics_are_shown(format: WireFormat) {
    let fake = FakeServer::start();
    let mut client = ChatClient::connect(fake.addr, format, &[]);
    let mut conn = fake.accept();
    let topic = |topic: &'static str, by: &'static str| Response::Topic {
        room_id: 1,
        topic: topic.into(),
        by: by.into(),
    };
    conn.send_response(format, &Response::system("방제[lobby] 방에 입장했습니다."));
    conn.send_response(format, &topic("오늘은  Rust 😀", ""));
    conn.send_response(format, &topic("새\n주제\u{202e}", "alice"));
    conn.send_response(format, &topic("", "김 철수"));
    conn.send_response(
        format,
        &Response::RoomsResult {
            rooms: vec![
                RoomInfo {
                    room_id: 1,
                    title: "lobby".into(),
                    members: vec!["alice".into(), "bob".into()],
                    topic: Some("오늘은  Rust 😀".into()),
                },
                RoomInfo {
                    room_id: 2,
                    title: "둘".into(),
                    members: vec!["carol".into()],
                    topic: None,
                },
            ],
        },
    );
    client.expect_lines(&[
        "[시스템 메시지] 방제[lobby] 방에 입장했습니다.",
        "[주제] 오늘은  Rust 😀",
        "[주제] alice 님이 주제를 바꿨습니다: 새\\n주제\\u202e",
        "[주제] 김 철수 님이 주제를 지웠습니다.",
        "---",
        "[방목록]",
        "방ID | 방제목 | 멤버들",
        "1 | lobby (주제: 오늘은  Rust 😀) | alice,bob",
        "2 | 둘 | carol",
        "---",
    ]);
    drop(conn);
    assert_exit(&mut client, &["서버가 소켓을 닫았음"], 0);
}

in_both_formats!(
    topics_are_shown,
    direct_messages_are_shown,
    control_characters_are_escaped,
    format_characters_are_escaped,
    requests_are_the_reference_bytes,
    end_of_input_waits_for_replies,
    split_and_packed_messages,
);

/// `--verbosity=1` shows garbage as received (escaped) before the error line.
#[test]
fn json_verbosity_shows_garbage_escaped() {
    let fake = FakeServer::start();
    let mut client = ChatClient::connect(fake.addr, WireFormat::Json, &["--verbosity=1"]);
    let mut conn = fake.accept();
    conn.send_frame(b"{\"type\": \x1b[2J");
    let line = client.next_line();
    assert_eq!(
        line,
        "[S->C:총길이=15바이트] 0x000d(메시지크기) + {\"type\": \\x1b[2J"
    );
    let error = client.next_line();
    assert!(
        error.starts_with("서버가 잘못된 메시지를 보내옴: 잘못된 메시지입니다: JSON"),
        "{error}"
    );
    assert_exit(&mut client, &[], 1);
    drop(conn);
}

/// Protobuf trace of a received chat: text format, octal escapes, no raw controls.
#[test]
fn protobuf_verbosity_of_received_chat() {
    let fake = FakeServer::start();
    let mut client = ChatClient::connect(fake.addr, WireFormat::Protobuf, &["--verbosity=1"]);
    let mut conn = fake.accept();
    conn.send_response(
        WireFormat::Protobuf,
        &Response::Chat {
            member: "김".into(),
            text: "a\x1b\"".into(),
        },
    );
    client.expect_lines(&[
        "[S->C:총길이=4바이트] 0x0002(메시지크기) + type: SC_CHAT",
        r#"[S->C:총길이=12바이트] 0x000a(메시지크기) + member: "\352\271\200""#,
        r#"text: "a\033\"""#,
        "[김] a\\x1b\"",
    ]);
    drop(conn);
    assert_exit(&mut client, &["서버가 소켓을 닫았음"], 0);
}

/// Protobuf trace of a received direct message: `SC_DIRECT`, every field shown.
#[test]
fn protobuf_verbosity_of_received_direct() {
    let fake = FakeServer::start();
    let mut client = ChatClient::connect(fake.addr, WireFormat::Protobuf, &["--verbosity=1"]);
    let mut conn = fake.accept();
    conn.send_response(
        WireFormat::Protobuf,
        &Response::Direct {
            member: "김".into(),
            text: "hi".into(),
            time: 1_700_000_000_000,
            outgoing: false,
        },
    );
    client.expect_lines(&[
        "[S->C:총길이=4바이트] 0x0002(메시지크기) + type: SC_DIRECT",
        r#"[S->C:총길이=20바이트] 0x0012(메시지크기) + member: "\352\271\200""#,
        r#"text: "hi""#,
        "time: 1700000000000",
        "outgoing: false",
        "[귓속말 ← 김] hi",
    ]);
    drop(conn);
    assert_exit(&mut client, &["서버가 소켓을 닫았음"], 0);
}

/// JSON trace of a received direct message: the payload as received.
#[test]
fn json_verbosity_of_received_direct() {
    let fake = FakeServer::start();
    let mut client = ChatClient::connect(fake.addr, WireFormat::Json, &["--verbosity=1"]);
    let mut conn = fake.accept();
    let frame =
        r#"{"type": "SCDirect", "member": "bob", "text": "hi", "time": 5, "outgoing": true}"#;
    conn.send_frame(frame.as_bytes());
    client.expect_lines(&[
        &format!(
            "[S->C:총길이={}바이트] 0x{:04x}(메시지크기) + {frame}",
            frame.len() + 2,
            frame.len()
        ),
        "[귓속말 → bob] hi",
    ]);
    drop(conn);
    assert_exit(&mut client, &["서버가 소켓을 닫았음"], 0);
}

/// Protobuf trace of a received topic: `SC_TOPIC`, every field shown (the server
/// always sets `by`, empty on entry).
#[test]
fn protobuf_verbosity_of_received_topic() {
    let fake = FakeServer::start();
    let mut client = ChatClient::connect(fake.addr, WireFormat::Protobuf, &["--verbosity=1"]);
    let mut conn = fake.accept();
    conn.send_response(
        WireFormat::Protobuf,
        &Response::Topic {
            room_id: 3,
            topic: "주".into(),
            by: "".into(),
        },
    );
    client.expect_lines(&[
        "[S->C:총길이=4바이트] 0x0002(메시지크기) + type: SC_TOPIC",
        "[S->C:총길이=11바이트] 0x0009(메시지크기) + roomId: 3",
        r#"topic: "\354\243\274""#,
        r#"by: """#,
        "[주제] 주",
    ]);
    drop(conn);
    assert_exit(&mut client, &["서버가 소켓을 닫았음"], 0);
}

/// JSON trace of a received topic: the payload as received.
#[test]
fn json_verbosity_of_received_topic() {
    let fake = FakeServer::start();
    let mut client = ChatClient::connect(fake.addr, WireFormat::Json, &["--verbosity=1"]);
    let mut conn = fake.accept();
    let frame = r#"{"type": "SCTopic", "roomId": 3, "topic": "", "by": "bob"}"#;
    conn.send_frame(frame.as_bytes());
    client.expect_lines(&[
        &format!(
            "[S->C:총길이={}바이트] 0x{:04x}(메시지크기) + {frame}",
            frame.len() + 2,
            frame.len()
        ),
        "[주제] bob 님이 주제를 지웠습니다.",
    ]);
    drop(conn);
    assert_exit(&mut client, &["서버가 소켓을 닫았음"], 0);
}

#[test]
fn garbage_json_then_more_never_panics() {
    // Invalid UTF-8 inside a frame.
    let expected = format!(
        "서버가 잘못된 메시지를 보내옴: {}",
        decode_error(WireFormat::Json, &[b"{\"type\": \"SCChat\xff\"}"])
    );
    run_garbage(
        WireFormat::Json,
        &[b"{\"type\": \"SCChat\xff\"}"],
        &expected,
    );
}
