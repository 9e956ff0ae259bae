//! Input the server must refuse without losing the connection or its place in the
//! stream: every `chat_proto::DecodeError` case in JSON and in protobuf, answered with
//! that error's `Display` as an `SCSystemMessage` in the client's own format.
//!
//! Exact texts are built from `DecodeError` values; where the detail comes from a
//! parser (serde_json, prost) only the text up to the detail is asserted. After every
//! bad message a `/rooms` probe must be answered next: exactly one error per bad
//! message, and (protobuf) the body frame after a bad `Type` frame skipped so the
//! stream stays in step. Also: a first frame that is neither format, and the
//! disconnect after 20 bad messages in a row (a good message resets the count).

mod support;

use chat_proto::{DecodeError, Request, Response, WireFormat};
use support::*;

const TOO_MANY: &str = "잘못된 메시지가 너무 많아 연결을 끊습니다.";

/// What the error reply must say.
enum Want {
    Exact(DecodeError),
    /// The error's text up to its parser-supplied detail.
    Prefix(DecodeError),
}

impl Want {
    #[track_caller]
    fn check(&self, got: &str, sent: &[u8]) {
        match self {
            Want::Exact(error) => assert_eq!(got, error.to_string(), "reply to {sent:02x?}"),
            Want::Prefix(error) => {
                // Display with an empty detail ends in "()."; keep what precedes it.
                let shown = error.to_string();
                let prefix = &shown[..shown.find("().").expect("a detail slot")];
                assert!(
                    got.starts_with(prefix) && got.ends_with(")."),
                    "reply to {sent:02x?}: {got:?} should read {prefix:?}<detail>)."
                );
                assert!(got.len() > prefix.len() + 2, "empty detail in {got:?}");
            }
        }
    }
}

fn invalid_json() -> Want {
    Want::Prefix(DecodeError::InvalidJson(String::new()))
}

fn missing(message: &'static str, field: &'static str) -> Want {
    Want::Exact(DecodeError::MissingField { message, field })
}

fn wrong_type(message: &'static str, field: &'static str, expected: &'static str) -> Want {
    Want::Exact(DecodeError::WrongFieldType {
        message,
        field,
        expected,
    })
}

fn unknown_type(kind: &str) -> Want {
    Want::Exact(DecodeError::UnknownType(kind.into()))
}

fn bad_body(message: &'static str) -> Want {
    Want::Prefix(DecodeError::InvalidBody {
        message,
        detail: String::new(),
    })
}

fn bad_type_frame() -> Want {
    Want::Prefix(DecodeError::InvalidTypeFrame(String::new()))
}

/// Sends each case on one connection (after a good message fixed its format) and
/// checks the reply, then that the connection is still in step and usable.
fn refuse_all(format: WireFormat, cases: Vec<(Vec<u8>, Want)>) {
    let server = TestServer::start();
    let (mut a, mut b) = server.pair_in_room(format, "r");

    for (bytes, want) in &cases {
        b.send_raw(bytes);
        let got = b.recv_system();
        want.check(&got, bytes);
        b.expect_silence();
    }
    // Nothing leaked to the other member; the connection still works, in its room.
    a.expect_silence();
    b.chat("still here");
    a.expect_chat(&b.default_name(), "still here");
}

#[test]
fn json_bad_input_is_explained() {
    let json = |text: &str| frame(text.as_bytes());
    let cases = vec![
        // Not JSON at all, or not UTF-8.
        (json(r#"{"type": "#), invalid_json()),
        (json(r#"{"type": "CSRooms"} trailing"#), invalid_json()),
        (json(r#"{"type": 'CSRooms'}"#), invalid_json()),
        (
            frame(b"{\"type\": \"CSChat\", \"text\": \"\xff\"}"),
            invalid_json(),
        ),
        (frame(b""), invalid_json()), // zero-length: an error, not EOF
        // JSON, but not an object.
        (json("[1, 2]"), Want::Exact(DecodeError::NotAnObject)),
        (json(r#""CSRooms""#), Want::Exact(DecodeError::NotAnObject)),
        (json("42"), Want::Exact(DecodeError::NotAnObject)),
        (json("null"), Want::Exact(DecodeError::NotAnObject)),
        // No string type.
        (
            json(r#"{"text": "x"}"#),
            Want::Exact(DecodeError::MissingType),
        ),
        (
            json(r#"{"type": 5}"#),
            Want::Exact(DecodeError::MissingType),
        ),
        (
            json(r#"{"type": null}"#),
            Want::Exact(DecodeError::MissingType),
        ),
        (json("{}"), Want::Exact(DecodeError::MissingType)),
        // Unknown types, including server-to-client ones.
        (json(r#"{"type": "CSFly"}"#), unknown_type("CSFly")),
        (json(r#"{"type": "csrooms"}"#), unknown_type("csrooms")),
        (
            json(r#"{"type": "SCChat", "member": "a", "text": "b"}"#),
            unknown_type("SCChat"),
        ),
        // Missing required fields (null counts as missing).
        (json(r#"{"type": "CSChat"}"#), missing("CSChat", "text")),
        (
            json(r#"{"type": "CSChat", "text": null}"#),
            missing("CSChat", "text"),
        ),
        (json(r#"{"type": "CSName"}"#), missing("CSName", "name")),
        (
            json(r#"{"type": "CSCreateRoom"}"#),
            missing("CSCreateRoom", "title"),
        ),
        (
            json(r#"{"type": "CSJoinRoom"}"#),
            missing("CSJoinRoom", "roomId"),
        ),
        // Fields of the wrong JSON type.
        (
            json(r#"{"type": "CSName", "name": 3}"#),
            wrong_type("CSName", "name", "문자열"),
        ),
        (
            json(r#"{"type": "CSChat", "text": ["x"]}"#),
            wrong_type("CSChat", "text", "문자열"),
        ),
        (
            json(r#"{"type": "CSJoinRoom", "roomId": 1.5}"#),
            wrong_type("CSJoinRoom", "roomId", "정수"),
        ),
        (
            json(r#"{"type": "CSJoinRoom", "roomId": "1"}"#),
            wrong_type("CSJoinRoom", "roomId", "정수"),
        ),
    ];
    refuse_all(WireFormat::Json, cases);
}

#[test]
fn protobuf_bad_input_is_explained() {
    let cases = vec![
        // Unknown type numbers: the body is skipped even when it looks like a Type
        // frame (08 05 = CS_CHAT), and even when it is empty.
        (pb_message(42, &[0x08, 0x05]), unknown_type("42")),
        (pb_message(99, &[]), unknown_type("99")),
        // A server-to-client extension type, sent by a client.
        (pb_message(11, &[]), unknown_type("11 (SCHello)")),
        (
            pb_message(9, &[0x0a, 1, b'x']),
            unknown_type("9 (SCSystemMessage)"),
        ),
        (pb_message(7, &[]), unknown_type("7 (SCRoomsResult)")),
        // Type frames that do not decode, or lack the type: their body is skipped too.
        (
            [frame(&[0x08, 0x80]), frame(&[0x08, 0x01])].concat(),
            bad_type_frame(),
        ),
        (
            [frame(&[0x10, 0x01]), frame(&[])].concat(),
            bad_type_frame(),
        ),
        // Bodies that do not decode.
        (pb_message(5, &[0x0a, 5, b'x']), bad_body("CSChat")),
        (pb_message(5, &[0xff, 0xff]), bad_body("CSChat")),
        (pb_message(3, &[0x0a, 1, b'1']), bad_body("CSJoinRoom")),
        (pb_message(1, &[0xff]), bad_body("CSRooms")),
        // Strings that are not UTF-8.
        (pb_message(0, &[0x0a, 1, 0xff]), bad_body("CSName")),
        (pb_message(5, &[0x0a, 2, 0xc3, 0x28]), bad_body("CSChat")),
        (pb_message(2, &[0x0a, 1, 0x80]), bad_body("CSCreateRoom")),
        // Missing required fields (empty bodies).
        (pb_message(5, &[]), missing("CSChat", "text")),
        (pb_message(0, &[]), missing("CSName", "name")),
        (pb_message(3, &[]), missing("CSJoinRoom", "roomId")),
    ];
    refuse_all(WireFormat::Protobuf, cases);
}

/// A JSON array is not a message, even one whose elements line up with the fields of
/// a message (a derived serde struct also accepts a sequence).
#[test]
fn json_arrays_are_not_messages() {
    let cases = [
        r#"["CSRooms", null, null, null, null, null, null]"#,
        r#"["CSChat", null, null, null, "hi", null, null]"#,
        "[1, 2, 3, 4, 5, 6, 7]",
        "[]",
    ];
    let cases = cases
        .into_iter()
        .map(|json| {
            (
                frame(json.as_bytes()),
                Want::Exact(DecodeError::NotAnObject),
            )
        })
        .collect();
    refuse_all(WireFormat::Json, cases);
}

/// The missing `title` of a protobuf `CSCreateRoom` is optional in the schema: it
/// reads as the empty title, refused as such.
#[test]
fn protobuf_create_without_title_is_an_empty_title() {
    let server = TestServer::start();
    let mut a = server.client(WireFormat::Protobuf);
    a.send_raw(&pb_message(2, &[]));
    a.expect_system("방 제목은 비어 있을 수 없습니다.");
    assert_eq!(a.rooms(), vec![]);
}

/// A first frame that is neither JSON (`{`) nor protobuf (`0x08`) is answered in JSON;
/// the connection stays open and its format is decided by the next frame.
#[test]
fn first_frame_of_unknown_format_is_answered_in_json() {
    let unknown = DecodeError::UnknownFormat.to_string();
    assert_eq!(
        unknown,
        "잘못된 메시지입니다: JSON 도 protobuf 도 아닌 형식입니다."
    );
    let server = TestServer::start();

    for first in [frame(b"hello"), frame(b""), frame(&[0x0a, 0x01, b'x'])] {
        // ... then JSON.
        let mut a = server.client(WireFormat::Json);
        a.send_raw(&first);
        a.expect_system(&unknown);
        a.expect_silence();
        a.set_name("json after all");

        // ... then protobuf: read raw, the JSON decoder cannot read protobuf.
        let mut b = server.client(WireFormat::Json);
        b.send_raw(&first);
        b.expect_system(&unknown);
        b.send_raw(&encode(WireFormat::Protobuf, &Request::Rooms));
        assert_eq!(b.recv_frame(), [0x08, 7], "SCRoomsResult's Type frame");
        assert_eq!(b.recv_frame(), [0u8; 0], "an empty SCRoomsResult body");
    }
}

in_both_formats!(
    twenty_bad_messages_in_a_row_close_the_connection,
    good_messages_reset_the_bad_message_count,
);

/// One bad message in `format`, and the error it gets.
fn bad_message(format: WireFormat) -> (Vec<u8>, String) {
    match format {
        WireFormat::Json => (
            frame(br#"{"type": "CSFly"}"#),
            DecodeError::UnknownType("CSFly".into()).to_string(),
        ),
        WireFormat::Protobuf => (
            pb_message(42, &[]),
            DecodeError::UnknownType("42".into()).to_string(),
        ),
    }
}

fn twenty_bad_messages_in_a_row_close_the_connection(format: WireFormat) {
    let server = TestServer::start();
    let (mut a, mut b) = server.pair_in_room(format, "r");

    let (bad, error) = bad_message(format);
    for _ in 0..19 {
        b.send_raw(&bad);
        b.expect_system(&error);
    }
    b.send_raw(&bad);
    let last = b.expect_eof();
    let notice = Response::system(TOO_MANY);
    let with_error = [Response::system(error.clone()), notice.clone()];
    assert!(
        last == [notice] || last == with_error,
        "after the 20th bad message expected {TOO_MANY:?} (optionally after its error) \
         and then EOF, got {last:?}"
    );

    // A disconnect like any other: the room is told, the server carries on.
    a.expect_system(&left(&b.default_name()));
    assert_eq!(a.rooms(), vec![room(1, "r", &[&a.default_name()])]);
}

fn good_messages_reset_the_bad_message_count(format: WireFormat) {
    let server = TestServer::start();
    let mut a = server.client(format);
    let (bad, error) = bad_message(format);
    for _ in 0..3 {
        for _ in 0..19 {
            a.send_raw(&bad);
            a.expect_system(&error);
        }
        assert_eq!(a.rooms(), vec![]);
    }
    // A refused request is still a good message.
    for _ in 0..19 {
        a.send_raw(&bad);
        a.expect_system(&error);
    }
    a.send(&Request::LeaveRoom);
    a.expect_system(NOT_IN_ROOM);
    a.send_raw(&bad);
    a.expect_system(&error);
    a.set_name("still connected");
}
