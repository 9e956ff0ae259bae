//! Codec tests: exact bytes, round trips, and every kind of bad input. No sockets.

use std::borrow::Cow;

use proptest::prelude::*;

use super::protobuf::{self as pb, MessageType};
use super::*;
use crate::frame::Frames;
use crate::message::RoomInfo;
use prost::Message;

fn decode_all_requests(
    format: Option<WireFormat>,
    wire: &[u8],
) -> Vec<Result<Request, DecodeError>> {
    let mut decoder = RequestDecoder::new(format);
    Frames::new(wire).filter_map(|f| decoder.feed(f)).collect()
}

fn decode_all_responses(format: WireFormat, wire: &[u8]) -> Vec<Result<Response<'_>, DecodeError>> {
    let mut decoder = ResponseDecoder::new(format);
    Frames::new(wire).filter_map(|f| decoder.feed(f)).collect()
}

fn frame_of(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    crate::frame::write_frame(&mut out, payload).unwrap();
    out
}

fn every_request() -> Vec<Request> {
    vec![
        Request::Name {
            name: "홍길동".into(),
        },
        Request::Name {
            name: String::new(),
        },
        Request::Rooms,
        Request::CreateRoom {
            title: "hello world".into(),
        },
        Request::JoinRoom { room_id: 3 },
        Request::JoinRoom { room_id: -1 },
        Request::LeaveRoom,
        Request::Chat {
            text: "안녕 😀 \"quoted\" \\ \t".into(),
        },
        Request::Shutdown,
        Request::Hello {
            features: vec!["time".into(), "기능".into()],
        },
        Request::Hello { features: vec![] },
        Request::Register {
            password: "비밀 \"번호\"".into(),
        },
        Request::Login {
            name: "홍길동".into(),
            password: "pw".into(),
        },
        Request::Logout,
        Request::ChangePassword {
            old: "a".into(),
            new: "b".into(),
        },
        Request::History {
            count: None,
            before: None,
        },
        Request::History {
            count: Some(200),
            before: Some(12),
        },
        Request::Direct {
            name: "홍길동".into(),
            text: "안녕 😀 \"quoted\" \\ \t".into(),
        },
        Request::Ignore {
            name: "홍길동".into(),
            ignore: true,
        },
        Request::Ignore {
            name: String::new(),
            ignore: false,
        },
        Request::Op {
            name: "홍길동".into(),
            op: true,
        },
        Request::Op {
            name: "bob".into(),
            op: false,
        },
        Request::Owner {
            name: "홍길동".into(),
        },
        Request::Kick {
            name: "홍길동".into(),
            reason: "도배 😀 \"x\"".into(),
        },
        Request::Kick {
            name: "bob".into(),
            reason: String::new(),
        },
        Request::Ban {
            name: "홍길동".into(),
            minutes: Some(30),
            ban: true,
        },
        Request::Ban {
            name: "bob".into(),
            minutes: None,
            ban: true,
        },
        Request::Ban {
            name: "bob".into(),
            minutes: Some(i64::MIN),
            ban: false,
        },
        Request::Ban {
            name: "bob".into(),
            minutes: None,
            ban: false,
        },
        Request::Topic {
            text: "주제 😀 \"quoted\" \\ \t".into(),
        },
        Request::Topic {
            text: String::new(),
        },
    ]
}

#[test]
fn json_requests_match_python_json_dumps() {
    let mut out = Vec::new();
    encode_request(
        WireFormat::Json,
        &Request::Chat {
            text: "안녕 😀\n\u{7f}".into(),
        },
        &mut out,
    )
    .unwrap();
    let expected = br#"{"type": "CSChat", "text": "\uc548\ub155 \ud83d\ude00\n\u007f"}"#;
    assert_eq!(&out[2..], &expected[..]);
    assert_eq!(
        usize::from(u16::from_be_bytes([out[0], out[1]])),
        expected.len()
    );

    out.clear();
    encode_request(
        WireFormat::Json,
        &Request::JoinRoom { room_id: -7 },
        &mut out,
    )
    .unwrap();
    assert_eq!(&out[2..], br#"{"type": "CSJoinRoom", "roomId": -7}"#);
    out.clear();
    encode_request(WireFormat::Json, &Request::Rooms, &mut out).unwrap();
    assert_eq!(&out[2..], br#"{"type": "CSRooms"}"#);
}

#[test]
fn json_responses_are_raw_utf8() {
    let mut out = Vec::new();
    let response = Response::Chat {
        member: "a\"b".into(),
        text: "안녕\u{1}".into(),
    };
    encode_response(WireFormat::Json, &response, &mut out).unwrap();
    assert_eq!(
        std::str::from_utf8(&out[2..]).unwrap(),
        r#"{"type": "SCChat", "member": "a\"b", "text": "안녕\u0001"}"#
    );
    out.clear();
    let rooms = Response::RoomsResult {
        rooms: vec![
            RoomInfo {
                room_id: 1,
                title: "t".into(),
                members: vec!["a".into(), "b".into()],
                topic: None,
            },
            RoomInfo {
                room_id: 2,
                title: "u".into(),
                members: vec![],
                topic: None,
            },
        ],
    };
    encode_response(WireFormat::Json, &rooms, &mut out).unwrap();
    assert_eq!(
        std::str::from_utf8(&out[2..]).unwrap(),
        r#"{"type": "SCRoomsResult", "rooms": [{"roomId": 1, "title": "t", "members": ["a", "b"]}, {"roomId": 2, "title": "u", "members": []}]}"#
    );
}

#[test]
fn json_escapes_from_the_reference_client_decode() {
    let wire = frame_of(br#"{"type": "CSChat", "text": "\uc548\ub155 \ud83d\ude00"}"#);
    assert_eq!(
        decode_all_requests(None, &wire),
        vec![Ok(Request::Chat {
            text: "안녕 😀".into()
        })]
    );
}

#[test]
fn json_accepts_any_valid_json() {
    let wire = frame_of(
        b" \n{ \"roomId\" : 12345678901234567890123, \"extra\": [1, {}], \"type\":\"CSJoinRoom\"}",
    );
    assert_eq!(
        decode_all_requests(Some(WireFormat::Json), &wire),
        vec![Ok(Request::JoinRoom { room_id: i64::MAX })]
    );
    let wire = frame_of(br#"{"type": "CSJoinRoom", "roomId": -99999999999999999999}"#);
    assert_eq!(
        decode_all_requests(Some(WireFormat::Json), &wire),
        vec![Ok(Request::JoinRoom { room_id: i64::MIN })]
    );
}

#[test]
fn json_bad_input_is_explained() {
    let cases: Vec<(&[u8], DecodeError)> = vec![
        (b"{\"type\": ", DecodeError::InvalidJson(String::new())),
        (b"[1, 2]", DecodeError::NotAnObject),
        (
            b"[\"CSChat\", null, null, null, \"hi\", null, null]",
            DecodeError::NotAnObject,
        ),
        (b" \"text\"", DecodeError::NotAnObject),
        (b"", DecodeError::InvalidJson(String::new())),
        (b"{\"text\": \"x\"}", DecodeError::MissingType),
        (b"{\"type\": 5}", DecodeError::MissingType),
        (b"{\"type\": \"\"}", DecodeError::MissingType),
        (
            b"{\"type\": \"CSFly\"}",
            DecodeError::UnknownType("CSFly".into()),
        ),
        (
            b"{\"type\": \"SCChat\"}",
            DecodeError::UnknownType("SCChat".into()),
        ),
        (
            b"{\"type\": \"CSChat\"}",
            DecodeError::MissingField {
                message: "CSChat",
                field: "text",
            },
        ),
        (
            b"{\"type\": \"CSName\", \"name\": 3}",
            DecodeError::WrongFieldType {
                message: "CSName",
                field: "name",
                expected: "문자열",
            },
        ),
        (
            b"{\"type\": \"CSJoinRoom\", \"roomId\": 1.5}",
            DecodeError::WrongFieldType {
                message: "CSJoinRoom",
                field: "roomId",
                expected: "정수",
            },
        ),
        (
            b"{\"type\": \"CSJoinRoom\", \"roomId\": \"1\"}",
            DecodeError::WrongFieldType {
                message: "CSJoinRoom",
                field: "roomId",
                expected: "정수",
            },
        ),
        (
            b"{\"type\": \"CSChat\", \"text\": \"\xff\"}",
            DecodeError::InvalidJson(String::new()),
        ),
    ];
    for (payload, expected) in cases {
        let got = decode_all_requests(Some(WireFormat::Json), &frame_of(payload));
        assert_eq!(got.len(), 1);
        let err = got[0].clone().unwrap_err();
        match (&err, &expected) {
            (DecodeError::InvalidJson(detail), DecodeError::InvalidJson(_)) => {
                assert!(!detail.is_empty());
                assert!(
                    err.to_string()
                        .starts_with("잘못된 메시지입니다: JSON 으로 해석할 수 없습니다 (")
                );
            }
            _ => assert_eq!(err, expected, "for {:?}", String::from_utf8_lossy(payload)),
        }
    }
    assert_eq!(
        DecodeError::MissingField {
            message: "CSChat",
            field: "text"
        }
        .to_string(),
        "잘못된 메시지입니다: CSChat 에 text 필드가 없습니다."
    );
}

#[test]
fn protobuf_type_frames_are_exact() {
    let cases = [
        (Request::Name { name: "a".into() }, 0u8),
        (Request::Rooms, 1),
        (Request::CreateRoom { title: "t".into() }, 2),
        (Request::JoinRoom { room_id: 1 }, 3),
        (Request::LeaveRoom, 4),
        (Request::Chat { text: "x".into() }, 5),
        (Request::Shutdown, 6),
    ];
    for (request, n) in cases {
        let mut out = Vec::new();
        encode_request(WireFormat::Protobuf, &request, &mut out).unwrap();
        assert_eq!(&out[..4], &[0, 2, 8, n]);
    }
    let mut out = Vec::new();
    encode_request(WireFormat::Protobuf, &Request::Rooms, &mut out).unwrap();
    assert_eq!(out, vec![0, 2, 8, 1, 0, 0], "empty body is the frame 00 00");
    out.clear();
    encode_response(WireFormat::Protobuf, &Response::system("hi"), &mut out).unwrap();
    assert_eq!(out, vec![0, 2, 8, 9, 0, 4, 0x0a, 2, b'h', b'i']);
}

#[test]
fn protobuf_hand_encoding_matches_prost() {
    let mut ours = Vec::new();
    let response = Response::Chat {
        member: "m".repeat(200).into(),
        text: "안녕".into(),
    };
    encode_response(WireFormat::Protobuf, &response, &mut ours).unwrap();
    let theirs = pb::ScChat {
        member: Some("m".repeat(200)),
        text: Some("안녕".into()),
        seq: None,
        time: None,
    }
    .encode_to_vec();
    assert_eq!(&ours[4..], &frame_of(&theirs)[..]);

    // With its number and time (negative numbers too: ten-byte varints).
    for (seq, time) in [(5, 1_700_000_000_123), (-1, i64::MIN)] {
        ours.clear();
        let timed = Response::TimedChat {
            member: "m".into(),
            text: "안녕".into(),
            seq,
            time,
        };
        encode_response(WireFormat::Protobuf, &timed, &mut ours).unwrap();
        let theirs = pb::ScChat {
            member: Some("m".into()),
            text: Some("안녕".into()),
            seq: Some(seq),
            time: Some(time),
        }
        .encode_to_vec();
        assert_eq!(&ours[4..], &frame_of(&theirs)[..]);
        assert_eq!(
            decode_all_responses(WireFormat::Protobuf, &ours),
            [Ok(timed.clone())]
        );
    }

    ours.clear();
    encode_response(WireFormat::Protobuf, &Response::system(""), &mut ours).unwrap();
    let theirs = pb::ScSystemMessage {
        text: Some(String::new()),
    }
    .encode_to_vec();
    assert_eq!(&ours[4..], &frame_of(&theirs)[..]);
}

#[test]
fn protobuf_negative_room_id_is_a_ten_byte_varint() {
    let mut out = Vec::new();
    encode_request(
        WireFormat::Protobuf,
        &Request::JoinRoom { room_id: -1 },
        &mut out,
    )
    .unwrap();
    assert_eq!(&out[4..6], &[0, 11], "tag + 10-byte varint");
    assert_eq!(
        decode_all_requests(None, &out),
        vec![Ok(Request::JoinRoom { room_id: -1 })]
    );
}

#[test]
fn protobuf_shutdown_with_leave_room_body() {
    // The reference client sends Type{CS_SHUTDOWN} then an empty CSLeaveRoom body.
    let wire = [0, 2, 8, 6, 0, 0];
    assert_eq!(
        decode_all_requests(None, &wire),
        vec![Ok(Request::Shutdown)]
    );
}

#[test]
fn protobuf_bad_type_skips_its_body() {
    let mut wire = Vec::new();
    wire.extend_from_slice(&frame_of(&[0x08, 42])); // unknown type
    wire.extend_from_slice(&frame_of(
        &pb::CsChat {
            text: Some("lost".into()),
        }
        .encode_to_vec(),
    ));
    wire.extend_from_slice(&frame_of(&[0x08, 0x80])); // truncated varint: bad Type frame
    wire.extend_from_slice(&frame_of(b"anything"));
    wire.extend_from_slice(&frame_of(&[0x08, 9])); // a server-to-client type
    wire.extend_from_slice(&frame_of(&[]));
    encode_request(WireFormat::Protobuf, &Request::Rooms, &mut wire).unwrap();
    let got = decode_all_requests(Some(WireFormat::Protobuf), &wire);
    assert_eq!(got.len(), 4);
    assert_eq!(got[0], Err(DecodeError::UnknownType("42".into())));
    assert!(matches!(got[1], Err(DecodeError::InvalidTypeFrame(_))));
    assert_eq!(
        got[2],
        Err(DecodeError::UnknownType("9 (SCSystemMessage)".into()))
    );
    assert_eq!(got[3], Ok(Request::Rooms));
}

#[test]
fn protobuf_missing_fields_and_bad_bodies() {
    let mut wire = Vec::new();
    wire.extend_from_slice(&[0, 2, 8, 5, 0, 0]); // CSChat without text
    wire.extend_from_slice(&[0, 2, 8, 3, 0, 0]); // CSJoinRoom without roomId
    wire.extend_from_slice(&[0, 2, 8, 0]);
    wire.extend_from_slice(&frame_of(&[0x0a, 1, 0xff])); // CSName with a non-UTF-8 name
    wire.extend_from_slice(&[0, 2, 8, 5]);
    wire.extend_from_slice(&frame_of(&[0x0a, 5, b'x'])); // length past the end
    wire.extend_from_slice(&[0, 2, 8, 2, 0, 0]); // CSCreateRoom without title: empty title
    let got = decode_all_requests(None, &wire);
    assert_eq!(
        got[0],
        Err(DecodeError::MissingField {
            message: "CSChat",
            field: "text"
        })
    );
    assert_eq!(
        got[1],
        Err(DecodeError::MissingField {
            message: "CSJoinRoom",
            field: "roomId"
        })
    );
    assert!(
        matches!(&got[2], Err(DecodeError::InvalidBody { message: "CSName", detail }) if detail.contains("UTF-8"))
    );
    assert!(matches!(
        &got[3],
        Err(DecodeError::InvalidBody {
            message: "CSChat",
            ..
        })
    ));
    assert_eq!(
        got[4],
        Ok(Request::CreateRoom {
            title: String::new()
        })
    );
    assert_eq!(got.len(), 5);
}

#[test]
fn detection() {
    assert_eq!(detect_format(b"{}"), Some(WireFormat::Json));
    assert_eq!(detect_format(b" \r\n\t{"), Some(WireFormat::Json));
    assert_eq!(detect_format(&[8, 0]), Some(WireFormat::Protobuf));
    assert_eq!(detect_format(b""), None);
    assert_eq!(detect_format(b"hello"), None);
    let got = decode_all_requests(None, &frame_of(b"hello"));
    assert_eq!(got, vec![Err(DecodeError::UnknownFormat)]);
}

#[test]
fn every_request_round_trips_in_both_formats() {
    for format in WireFormat::ALL {
        let mut wire = Vec::new();
        for request in every_request() {
            encode_request(format, &request, &mut wire).unwrap();
        }
        let got: Vec<Request> = decode_all_requests(None, &wire)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, every_request(), "{format}");
    }
}

#[test]
fn responses_round_trip_in_both_formats() {
    let responses = vec![
        Response::system("이름이 X 으로 변경되었습니다."),
        Response::Chat {
            member: Cow::Borrowed("(127.0.0.1, 9001)"),
            text: "😀\t".into(),
        },
        Response::RoomsResult { rooms: vec![] },
        Response::RoomsResult {
            rooms: vec![RoomInfo {
                room_id: 7,
                title: "방".into(),
                members: vec!["a".into(), "b c".into()],
                topic: None,
            }],
        },
        Response::RoomsResult {
            rooms: vec![
                RoomInfo {
                    room_id: 7,
                    title: "방".into(),
                    members: vec!["a".into()],
                    topic: Some("주제 😀 \"x\"\t".into()),
                },
                RoomInfo {
                    room_id: 8,
                    title: String::new(),
                    members: vec![],
                    topic: Some(String::new()),
                },
                RoomInfo {
                    room_id: 9,
                    title: "없음".into(),
                    members: vec![],
                    topic: None,
                },
            ],
        },
        Response::Direct {
            member: "홍길동".into(),
            text: "😀 \"x\"\t".into(),
            time: 1_700_000_000_000,
            outgoing: false,
        },
        Response::Direct {
            member: "(127.0.0.1, 9001)".into(),
            text: String::new().into(),
            time: -1,
            outgoing: true,
        },
        Response::Topic {
            room_id: 7,
            topic: "주제 😀 \"x\"\t".into(),
            by: "홍길동".into(),
        },
        Response::Topic {
            room_id: i64::MIN,
            topic: String::new().into(),
            by: String::new().into(),
        },
    ];
    for format in WireFormat::ALL {
        let mut wire = Vec::new();
        for response in &responses {
            encode_response(format, response, &mut wire).unwrap();
        }
        let got: Vec<_> = decode_all_responses(format, &wire)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, responses, "{format}");
    }
    assert!(matches!(
        decode_all_responses(WireFormat::Protobuf, &[0, 2, 8, 9, 0, 0])[0],
        Err(DecodeError::MissingField {
            message: "SCSystemMessage",
            field: "text"
        })
    ));
    assert!(matches!(
        decode_all_responses(
            WireFormat::Json,
            &frame_of(br#"{"type": "SCRoomsResult", "rooms": [{"roomId": 1, "title": "t"}]}"#)
        )[0],
        Err(DecodeError::MissingField {
            message: "SCRoomsResult",
            field: "members"
        })
    ));
    // The reference client reads `message.get('rooms', [])`.
    for lenient in [
        &br#"{"type": "SCRoomsResult"}"#[..],
        br#"{"type": "SCRoomsResult", "rooms": null}"#,
    ] {
        assert_eq!(
            decode_all_responses(WireFormat::Json, &frame_of(lenient)),
            vec![Ok(Response::RoomsResult { rooms: vec![] })]
        );
    }
}

#[test]
fn oversized_messages_are_refused_cleanly() {
    for format in WireFormat::ALL {
        let mut out = vec![1, 2, 3];
        let text = "x".repeat(70_000);
        let result = encode_response(
            format,
            &Response::Chat {
                member: "m".into(),
                text: text.into(),
            },
            &mut out,
        );
        assert!(matches!(result, Err(EncodeError::TooLarge(_))));
        assert_eq!(out, vec![1, 2, 3], "{format}: nothing half-written");
    }
}

fn arb_request() -> impl Strategy<Value = Request> {
    prop_oneof![
        ".{0,40}".prop_map(|name| Request::Name { name }),
        Just(Request::Rooms),
        ".{0,40}".prop_map(|title| Request::CreateRoom { title }),
        (i32::MIN..=i32::MAX).prop_map(|id| Request::JoinRoom { room_id: id.into() }),
        Just(Request::LeaveRoom),
        any::<String>().prop_map(|text| Request::Chat { text }),
        Just(Request::Shutdown),
    ]
}

#[test]
fn json_plain_chats_decode_as_the_general_parser_decodes_them() {
    let cases: &[&[u8]] = &[
        br#"{"type": "SCChat", "member": "kim", "text": "hello"}"#,
        br#"{"type": "SCChat", "member": "", "text": ""}"#,
        "{\"type\": \"SCChat\", \"member\": \"김\", \"text\": \"안녕 😀\"}".as_bytes(),
        // Escapes, control characters, bad UTF-8, other shapes: the general parser.
        br#"{"type": "SCChat", "member": "k", "text": "a\"b"}"#,
        br#"{"type": "SCChat", "member": "k\u00e9", "text": "x"}"#,
        b"{\"type\": \"SCChat\", \"member\": \"k\", \"text\": \"a\tb\"}",
        b"{\"type\": \"SCChat\", \"member\": \"k\xff\", \"text\": \"x\"}",
        br#"{"type": "SCChat", "member": "k", "text": "x"} "#,
        br#"{"type": "SCChat", "member": "k", "text": "x"}}"#,
        br#"{"type": "SCChat", "member": "k", "text": "x", "seq": 1, "time": 2}"#,
        br#"{"type": "SCChat", "member": "k", "text": "x""#,
        br#"{"type": "SCChat", "member": "k"}"#,
        br#"{"type":"SCChat","member":"k","text":"x"}"#,
        br#"{"type": "SCChat", "member": "k", "text": "x", "text": "y"}"#,
    ];
    for &case in cases {
        assert_eq!(
            json::decode_response(case),
            json::decode_parsed_response(case),
            "{}",
            String::from_utf8_lossy(case)
        );
    }
    // The fast path takes what it should (the result borrows without the parser's
    // help, so this is only visible through equality above and the borrow here).
    let Ok(Response::Chat { text, .. }) = json::decode_response(cases[2]) else {
        panic!("a plain chat decodes");
    };
    assert!(matches!(text, Cow::Borrowed("안녕 😀")));
}

proptest! {
    #[test]
    fn json_chats_decode_alike_on_both_paths(member in ".{0,12}", text in ".{0,40}") {
        let mut wire = Vec::new();
        json::encode_response(
            &Response::Chat { member: member.as_str().into(), text: text.as_str().into() },
            &mut wire,
        );
        let fast = json::decode_response(&wire);
        prop_assert_eq!(&fast, &json::decode_parsed_response(&wire));
        prop_assert_eq!(fast, Ok(Response::Chat { member: member.into(), text: text.into() }));
    }

    #[test]
    fn arbitrary_requests_round_trip(requests in proptest::collection::vec(arb_request(), 1..20), protobuf in any::<bool>()) {
        let format = if protobuf { WireFormat::Protobuf } else { WireFormat::Json };
        let mut wire = Vec::new();
        for request in &requests {
            encode_request(format, request, &mut wire).unwrap();
        }
        let got: Vec<_> = decode_all_requests(None, &wire).into_iter().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(got, requests);
    }

    #[test]
    fn decoders_never_panic(frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..10)) {
        for format in [None, Some(WireFormat::Json), Some(WireFormat::Protobuf)] {
            let mut decoder = RequestDecoder::new(format);
            for frame in &frames {
                let _ = decoder.feed(frame);
            }
        }
        for format in WireFormat::ALL {
            let mut decoder = ResponseDecoder::new(format);
            for frame in &frames {
                let _ = decoder.feed(frame);
            }
        }
    }
}

#[test]
fn message_type_numbers_match_the_schema() {
    assert_eq!(MessageType::CsName as i32, 0);
    assert_eq!(MessageType::ScSystemMessage as i32, 9);
    assert_eq!(MessageType::CsOp as i32, 24);
    assert_eq!(MessageType::ScTopic as i32, 29);
}

#[test]
fn an_unknown_type_is_echoed_sanitised_and_short() {
    let long = format!("{{\"type\": \"\\u001b[31m{}\"}}", "x".repeat(65_000));
    let error = crate::codec::json::decode_request(long.as_bytes()).unwrap_err();
    let text = error.to_string();
    assert!(
        !text.contains('\u{1b}'),
        "no escape sequence goes back: {text:?}"
    );
    assert!(
        text.contains("\u{FFFD}[31mxxxxxxxxxxxxxxxxxxxxxxxxxxx…"),
        "{text}"
    );
    assert!(text.chars().count() < 100, "{}", text.chars().count());
}

#[test]
fn json_strings_borrow_from_the_frame_unless_escaped() {
    // A load generator decodes every delivery: a string without escapes must not be
    // copied, and one with escapes must still come out unescaped.
    let plain = br#"{"type": "SCChat", "member": "kim", "text": "hello"}"#;
    let Ok(Response::Chat { member, text }) = json::decode_response(plain) else {
        panic!("a chat decodes");
    };
    assert!(matches!(member, Cow::Borrowed("kim")), "{member:?}");
    assert!(matches!(text, Cow::Borrowed("hello")), "{text:?}");

    let escaped = br#"{"type": "SCChat", "member": "\uae40", "text": "a\"b"}"#;
    let Ok(Response::Chat { member, text }) = json::decode_response(escaped) else {
        panic!("a chat with escapes decodes");
    };
    assert_eq!((&*member, &*text), ("김", "a\"b"));
    assert!(matches!(member, Cow::Owned(_)));
}

#[test]
fn json_keys_given_twice_are_refused_and_rare_keys_on_any_message_are_ignored() {
    // A key twice is an error wherever it is kept (inline or among the rare keys),
    // even when the first was `null`; the error names the key.
    for (frame, key) in [
        (r#"{"type": "CSChat", "text": "a", "text": "b"}"#, "text"),
        (
            r#"{"type": "CSChat", "type": "CSChat", "text": "a"}"#,
            "type",
        ),
        (r#"{"type": "CSChat", "text": null, "text": "b"}"#, "text"),
        (
            r#"{"type": "CSLogin", "name": "a", "password": "x", "password": "y"}"#,
            "password",
        ),
        (
            r#"{"type": "CSJoinRoom", "roomId": 1, "roomId": 2}"#,
            "roomId",
        ),
    ] {
        match json::decode_request(frame.as_bytes()) {
            Err(DecodeError::InvalidJson(e)) => {
                assert!(
                    e.contains(&format!("duplicate field `{key}`")),
                    "{frame}: {e}"
                )
            }
            other => panic!("{frame}: {other:?}"),
        }
    }
    // Keys another message uses are ignored like unknown ones, in any order.
    assert_eq!(
        json::decode_request(
            br#"{"password": "x", "rooms": [1], "text": "hi", "by": 3, "type": "CSChat", "zz": {}}"#
        ),
        Ok(Request::Chat { text: "hi".into() })
    );
    assert_eq!(
        json::decode_response(
            br#"{"topic": 1, "type": "SCChat", "member": "m", "text": "t", "ban": "x"}"#
        ),
        Ok(Response::Chat {
            member: "m".into(),
            text: "t".into()
        })
    );
}

#[test]
fn json_fields_of_any_other_type_are_wrong_types() {
    for value in ["true", "[\"x\"]", "{\"a\": [1, {\"b\": 2}]}", "7", "-1.5e3"] {
        let payload = format!(r#"{{"type": "SCChat", "member": "m", "text": {value}}}"#);
        assert_eq!(
            json::decode_response(payload.as_bytes()),
            Err(DecodeError::WrongFieldType {
                message: "SCChat",
                field: "text",
                expected: "문자열",
            }),
            "{value}"
        );
    }
    // `null` at the top level is an absent key; inside `rooms` it is a wrong type.
    assert_eq!(
        json::decode_response(br#"{"type": "SCChat", "member": "m", "text": null}"#),
        Err(DecodeError::MissingField {
            message: "SCChat",
            field: "text",
        })
    );
    assert_eq!(
        json::decode_response(
            br#"{"type": "SCRoomsResult", "rooms": [{"roomId": null, "title": "t", "members": []}]}"#
        ),
        Err(DecodeError::WrongFieldType {
            message: "SCRoomsResult",
            field: "roomId",
            expected: "정수",
        })
    );
    // Unknown keys of any shape are skipped, and a huge integer saturates.
    assert_eq!(
        decode_all_requests(
            Some(WireFormat::Json),
            &frame_of(
                br#"{"x": {"y": [1, 2, {"z": null}]}, "type": "CSJoinRoom", "roomId": 1e30}"#
            )
        ),
        vec![Ok(Request::JoinRoom { room_id: i64::MAX })]
    );
}

#[test]
fn hello_exact_bytes_in_both_formats() {
    let hello = Request::Hello {
        features: vec!["time".into(), "기능".into()],
    };
    let mut out = Vec::new();
    encode_request(WireFormat::Json, &hello, &mut out).unwrap();
    assert_eq!(
        &out[2..],
        br#"{"type": "CSHello", "features": ["time", "\uae30\ub2a5"]}"#
    );
    out.clear();
    encode_request(WireFormat::Protobuf, &hello, &mut out).unwrap();
    let mut want = vec![0, 2, 0x08, 10, 0, 14, 0x0a, 4];
    want.extend_from_slice(b"time");
    want.extend_from_slice(&[0x0a, 6]);
    want.extend_from_slice("기능".as_bytes());
    assert_eq!(out, want);

    let answer = Response::Hello {
        features: vec!["time".into()],
        server: "chat-server/1.0".into(),
    };
    out.clear();
    encode_response(WireFormat::Json, &answer, &mut out).unwrap();
    assert_eq!(
        &out[2..],
        br#"{"type": "SCHello", "features": ["time"], "server": "chat-server/1.0"}"#
    );
    assert_eq!(
        decode_all_responses(WireFormat::Json, &out),
        [Ok(answer.clone())]
    );
    out.clear();
    encode_response(WireFormat::Protobuf, &answer, &mut out).unwrap();
    let mut want = vec![0, 2, 0x08, 11, 0, 23, 0x0a, 4];
    want.extend_from_slice(b"time");
    want.extend_from_slice(&[0x12, 15]);
    want.extend_from_slice(b"chat-server/1.0");
    assert_eq!(out, want);
    assert_eq!(
        decode_all_responses(WireFormat::Protobuf, &out),
        [Ok(answer)]
    );
}

#[test]
fn hello_features_must_be_a_list_of_strings() {
    let decode =
        |json: &str| decode_all_requests(Some(WireFormat::Json), &frame_of(json.as_bytes()));
    assert_eq!(
        decode(r#"{"type": "CSHello"}"#),
        [Ok(Request::Hello { features: vec![] })],
        "absent: none, as an empty repeated field"
    );
    assert_eq!(
        decode(r#"{"type": "CSHello", "features": ["a", "b"], "extra": 1}"#),
        [Ok(Request::Hello {
            features: vec!["a".into(), "b".into()]
        })]
    );
    for bad in [
        r#"{"type": "CSHello", "features": "time"}"#,
        r#"{"type": "CSHello", "features": [1]}"#,
        r#"{"type": "CSHello", "features": [["time"]]}"#,
    ] {
        assert_eq!(
            decode(bad),
            [Err(DecodeError::WrongFieldType {
                message: "CSHello",
                field: "features",
                expected: "문자열의 배열",
            })],
            "{bad}"
        );
    }
}

#[test]
fn history_exact_json() {
    let mut out = Vec::new();
    let request = Request::History {
        count: Some(20),
        before: Some(41),
    };
    encode_request(WireFormat::Json, &request, &mut out).unwrap();
    assert_eq!(
        &out[2..],
        br#"{"type": "CSHistory", "count": 20, "before": 41}"#
    );
    out.clear();
    let page = Response::History {
        room_id: 3,
        lines: vec![crate::HistoryLine {
            seq: 40,
            time: 1_700_000_000_000,
            member: "가".into(),
            text: "\"안녕\"".into(),
        }],
        more: true,
    };
    encode_response(WireFormat::Json, &page, &mut out).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out[2..]),
        r#"{"type": "SCHistory", "roomId": 3, "lines": [{"seq": 40, "time": 1700000000000, "member": "가", "text": "\"안녕\""}], "more": true}"#
    );
    assert_eq!(decode_all_responses(WireFormat::Json, &out), [Ok(page)]);
    out.clear();
    let timed = Response::TimedChat {
        member: "a".into(),
        text: "hi".into(),
        seq: 7,
        time: 1_700_000_000_001,
    };
    encode_response(WireFormat::Json, &timed, &mut out).unwrap();
    assert_eq!(
        &out[2..],
        br#"{"type": "SCChat", "member": "a", "text": "hi", "seq": 7, "time": 1700000000001}"#
    );
    assert_eq!(decode_all_responses(WireFormat::Json, &out), [Ok(timed)]);
    // CSHistory with nothing: both absent; a wrong type is a bad message.
    let decode =
        |json: &str| decode_all_requests(Some(WireFormat::Json), &frame_of(json.as_bytes()));
    assert_eq!(
        decode(r#"{"type": "CSHistory"}"#),
        [Ok(Request::History {
            count: None,
            before: None
        })]
    );
    assert!(decode(r#"{"type": "CSHistory", "count": "ten"}"#)[0].is_err());
}

#[test]
fn direct_exact_bytes_in_both_formats() {
    let direct = Request::Direct {
        name: "김".into(),
        text: "안녕 \"hi\"".into(),
    };
    let mut out = Vec::new();
    encode_request(WireFormat::Json, &direct, &mut out).unwrap();
    assert_eq!(
        &out[2..],
        br#"{"type": "CSDirect", "name": "\uae40", "text": "\uc548\ub155 \"hi\""}"#
    );
    assert_eq!(decode_all_requests(None, &out), [Ok(direct.clone())]);
    out.clear();
    encode_request(WireFormat::Protobuf, &direct, &mut out).unwrap();
    let mut want = vec![0, 2, 0x08, 21, 0, 18, 0x0a, 3];
    want.extend_from_slice("김".as_bytes());
    want.extend_from_slice(&[0x12, 11]);
    want.extend_from_slice("안녕 \"hi\"".as_bytes());
    assert_eq!(out, want);
    assert_eq!(decode_all_requests(None, &out), [Ok(direct)]);

    for (ignore, json, flag) in [
        (
            true,
            &br#"{"type": "CSIgnore", "name": "bob", "ignore": true}"#[..],
            1,
        ),
        (
            false,
            br#"{"type": "CSIgnore", "name": "bob", "ignore": false}"#,
            0,
        ),
    ] {
        let request = Request::Ignore {
            name: "bob".into(),
            ignore,
        };
        out.clear();
        encode_request(WireFormat::Json, &request, &mut out).unwrap();
        assert_eq!(&out[2..], json);
        assert_eq!(decode_all_requests(None, &out), [Ok(request.clone())]);
        out.clear();
        encode_request(WireFormat::Protobuf, &request, &mut out).unwrap();
        let mut want = vec![0, 2, 0x08, 22, 0, 7, 0x0a, 3];
        want.extend_from_slice(b"bob");
        // An optional bool set either way is written (0x10 = field 2, varint).
        want.extend_from_slice(&[0x10, flag]);
        assert_eq!(out, want);
        assert_eq!(decode_all_requests(None, &out), [Ok(request)]);
    }

    let answer = Response::Direct {
        member: "가".into(),
        text: "\"안녕\"".into(),
        time: 1_700_000_000_000,
        outgoing: false,
    };
    out.clear();
    encode_response(WireFormat::Json, &answer, &mut out).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out[2..]),
        r#"{"type": "SCDirect", "member": "가", "text": "\"안녕\"", "time": 1700000000000, "outgoing": false}"#
    );
    assert_eq!(
        decode_all_responses(WireFormat::Json, &out),
        [Ok(answer.clone())]
    );

    let own_copy = Response::Direct {
        member: "bob".into(),
        text: "hi".into(),
        time: 1_700_000_000_000,
        outgoing: true,
    };
    out.clear();
    encode_response(WireFormat::Json, &own_copy, &mut out).unwrap();
    assert_eq!(
        &out[2..],
        br#"{"type": "SCDirect", "member": "bob", "text": "hi", "time": 1700000000000, "outgoing": true}"#
    );
    out.clear();
    encode_response(WireFormat::Protobuf, &own_copy, &mut out).unwrap();
    let mut want = vec![0, 2, 0x08, 23, 0, 18, 0x0a, 3];
    want.extend_from_slice(b"bob");
    want.extend_from_slice(&[0x12, 2, b'h', b'i']);
    // time = 3, varint 1,700,000,000,000; outgoing = 4, varint 1.
    want.extend_from_slice(&[0x18, 0x80, 0xd0, 0x95, 0xff, 0xbc, 0x31, 0x20, 1]);
    assert_eq!(out, want);
    assert_eq!(
        decode_all_responses(WireFormat::Protobuf, &out),
        [Ok(own_copy)]
    );
    let theirs = pb::ScDirect {
        member: Some("가".into()),
        text: Some("\"안녕\"".into()),
        time: Some(1_700_000_000_000),
        outgoing: Some(false),
    }
    .encode_to_vec();
    out.clear();
    encode_response(WireFormat::Protobuf, &answer, &mut out).unwrap();
    assert_eq!(&out[..4], &[0, 2, 0x08, 23]);
    assert_eq!(&out[4..], &frame_of(&theirs)[..]);
    assert_eq!(
        decode_all_responses(WireFormat::Protobuf, &out),
        [Ok(answer)]
    );

    // A JSON SCDirect's strings borrow from the frame, as an SCChat's do.
    let Ok(Response::Direct { member, text, .. }) = json::decode_response(
        br#"{"type": "SCDirect", "member": "kim", "text": "hello", "time": 1}"#,
    ) else {
        panic!("a direct message decodes");
    };
    assert!(matches!(member, Cow::Borrowed("kim")), "{member:?}");
    assert!(matches!(text, Cow::Borrowed("hello")), "{text:?}");
}

#[test]
fn direct_json_bad_fields_are_explained() {
    let request =
        |json: &str| decode_all_requests(Some(WireFormat::Json), &frame_of(json.as_bytes()));
    let missing = |message, field| DecodeError::MissingField { message, field };
    let wrong = |message, field, expected| DecodeError::WrongFieldType {
        message,
        field,
        expected,
    };
    let cases = [
        (
            r#"{"type": "CSDirect", "text": "hi"}"#,
            missing("CSDirect", "name"),
        ),
        (
            r#"{"type": "CSDirect", "name": null, "text": "hi"}"#,
            missing("CSDirect", "name"),
        ),
        (
            r#"{"type": "CSDirect", "name": "bob"}"#,
            missing("CSDirect", "text"),
        ),
        (
            r#"{"type": "CSDirect", "name": 7, "text": "hi"}"#,
            wrong("CSDirect", "name", "문자열"),
        ),
        (
            r#"{"type": "CSDirect", "name": "bob", "text": ["hi"]}"#,
            wrong("CSDirect", "text", "문자열"),
        ),
        (
            r#"{"type": "CSIgnore", "ignore": true}"#,
            missing("CSIgnore", "name"),
        ),
        (
            r#"{"type": "CSIgnore", "name": false, "ignore": true}"#,
            wrong("CSIgnore", "name", "문자열"),
        ),
        (
            r#"{"type": "CSIgnore", "name": "bob", "ignore": "true"}"#,
            wrong("CSIgnore", "ignore", "true 또는 false"),
        ),
        (
            r#"{"type": "CSIgnore", "name": "bob", "ignore": 1}"#,
            wrong("CSIgnore", "ignore", "true 또는 false"),
        ),
        (
            r#"{"type": "CSIgnore", "name": "bob", "ignore": {}}"#,
            wrong("CSIgnore", "ignore", "true 또는 false"),
        ),
    ];
    for (json, expected) in cases {
        assert_eq!(request(json), [Err(expected)], "{json}");
    }
    assert_eq!(
        wrong("CSIgnore", "ignore", "true 또는 false").to_string(),
        "잘못된 메시지입니다: CSIgnore 의 ignore 필드는 true 또는 false 이어야 합니다."
    );
    // `ignore` absent or null: false, as protobuf's default for the optional field.
    for json in [
        r#"{"type": "CSIgnore", "name": "bob"}"#,
        r#"{"type": "CSIgnore", "name": "bob", "ignore": null}"#,
    ] {
        assert_eq!(
            request(json),
            [Ok(Request::Ignore {
                name: "bob".into(),
                ignore: false
            })],
            "{json}"
        );
    }
    assert_eq!(
        request(r#"{"type": "SCDirect", "member": "a", "text": "b", "time": 1}"#),
        [Err(DecodeError::UnknownType("SCDirect".into()))]
    );

    let response = |json: &str| json::decode_response(json.as_bytes()).map(Response::into_owned);
    let cases = [
        (
            r#"{"type": "SCDirect", "text": "hi", "time": 1}"#,
            missing("SCDirect", "member"),
        ),
        (
            r#"{"type": "SCDirect", "member": "a", "time": 1}"#,
            missing("SCDirect", "text"),
        ),
        (
            r#"{"type": "SCDirect", "member": "a", "text": "hi"}"#,
            missing("SCDirect", "time"),
        ),
        (
            r#"{"type": "SCDirect", "member": "a", "text": "hi", "time": null}"#,
            missing("SCDirect", "time"),
        ),
        (
            r#"{"type": "SCDirect", "member": 1, "text": "hi", "time": 1}"#,
            wrong("SCDirect", "member", "문자열"),
        ),
        (
            r#"{"type": "SCDirect", "member": "a", "text": "hi", "time": "1"}"#,
            wrong("SCDirect", "time", "정수"),
        ),
        (
            r#"{"type": "SCDirect", "member": "a", "text": "hi", "time": 1.5}"#,
            wrong("SCDirect", "time", "정수"),
        ),
        (
            r#"{"type": "SCDirect", "member": "a", "text": "hi", "time": 1, "outgoing": "yes"}"#,
            wrong("SCDirect", "outgoing", "true 또는 false"),
        ),
        (
            r#"{"type": "SCDirect", "member": "a", "text": "hi", "time": 1, "outgoing": 0}"#,
            wrong("SCDirect", "outgoing", "true 또는 false"),
        ),
    ];
    for (json, expected) in cases {
        assert_eq!(response(json), Err(expected), "{json}");
    }
    for json in [
        r#"{"type": "SCDirect", "member": "a", "text": "hi", "time": 1}"#,
        r#"{"type": "SCDirect", "member": "a", "text": "hi", "time": 1, "outgoing": null}"#,
    ] {
        assert_eq!(
            response(json),
            Ok(Response::Direct {
                member: "a".into(),
                text: "hi".into(),
                time: 1,
                outgoing: false,
            }),
            "{json}"
        );
    }
}

#[test]
fn direct_protobuf_missing_fields_and_bad_bodies() {
    let mut wire = Vec::new();
    wire.extend_from_slice(&[0, 2, 8, 21, 0, 0]); // CSDirect without name
    wire.extend_from_slice(&[0, 2, 8, 21]);
    wire.extend_from_slice(&frame_of(&[0x0a, 1, b'b'])); // CSDirect without text
    wire.extend_from_slice(&[0, 2, 8, 22]);
    wire.extend_from_slice(&frame_of(&[0x10, 1])); // CSIgnore without name
    wire.extend_from_slice(&[0, 2, 8, 22]);
    wire.extend_from_slice(&frame_of(&[0x0a, 1, b'b'])); // CSIgnore without ignore: false
    wire.extend_from_slice(&[0, 2, 8, 21]);
    wire.extend_from_slice(&frame_of(&[0x0a, 1, 0xff, 0x12, 0])); // a non-UTF-8 name
    wire.extend_from_slice(&[0, 2, 8, 23, 0, 0]); // a server-to-client type
    let got = decode_all_requests(None, &wire);
    assert_eq!(got.len(), 6);
    assert_eq!(
        got[0],
        Err(DecodeError::MissingField {
            message: "CSDirect",
            field: "name"
        })
    );
    assert_eq!(
        got[1],
        Err(DecodeError::MissingField {
            message: "CSDirect",
            field: "text"
        })
    );
    assert_eq!(
        got[2],
        Err(DecodeError::MissingField {
            message: "CSIgnore",
            field: "name"
        })
    );
    assert_eq!(
        got[3],
        Ok(Request::Ignore {
            name: "b".into(),
            ignore: false
        })
    );
    assert!(
        matches!(&got[4], Err(DecodeError::InvalidBody { message: "CSDirect", detail }) if detail.contains("UTF-8"))
    );
    assert_eq!(
        got[5],
        Err(DecodeError::UnknownType("23 (SCDirect)".into()))
    );

    let mut wire = Vec::new();
    wire.extend_from_slice(&[0, 2, 8, 23]);
    wire.extend_from_slice(&frame_of(&[0x0a, 1, b'a', 0x12, 1, b'b'])); // no time
    wire.extend_from_slice(&[0, 2, 8, 23]);
    wire.extend_from_slice(&frame_of(&[0x12, 1, b'b', 0x18, 1])); // no member
    wire.extend_from_slice(&[0, 2, 8, 23]);
    wire.extend_from_slice(&frame_of(&[0x0a, 1, b'a', 0x18, 1])); // no text
    wire.extend_from_slice(&[0, 2, 8, 23]);
    wire.extend_from_slice(&frame_of(&[0x0a, 1, b'a', 0x12, 1, b'b', 0x18, 1])); // no outgoing
    let got = decode_all_responses(WireFormat::Protobuf, &wire);
    assert_eq!(
        got,
        [
            Err(DecodeError::MissingField {
                message: "SCDirect",
                field: "time"
            }),
            Err(DecodeError::MissingField {
                message: "SCDirect",
                field: "member"
            }),
            Err(DecodeError::MissingField {
                message: "SCDirect",
                field: "text"
            }),
            Ok(Response::Direct {
                member: "a".into(),
                text: "b".into(),
                time: 1,
                outgoing: false,
            }),
        ]
    );
}

/// Encodes `request` in both formats: the JSON bytes must be `json`, the protobuf ones
/// the `Type` frame of `type_number` then a body frame of `body`; both decode back.
fn assert_request_bytes(request: &Request, json: &str, type_number: u8, body: &[u8]) {
    let mut out = Vec::new();
    encode_request(WireFormat::Json, request, &mut out).unwrap();
    assert_eq!(String::from_utf8_lossy(&out[2..]), json, "{request:?}");
    assert_eq!(
        decode_all_requests(None, &out),
        [Ok(request.clone())],
        "{json}"
    );
    out.clear();
    encode_request(WireFormat::Protobuf, request, &mut out).unwrap();
    let mut want = vec![0, 2, 0x08, type_number];
    want.extend_from_slice(&frame_of(body));
    assert_eq!(out, want, "{request:?}");
    assert_eq!(
        decode_all_requests(None, &out),
        [Ok(request.clone())],
        "{request:?}"
    );
}

/// `tag`, then a length-delimited string field's length and bytes.
fn pb_string(tag: u8, value: &str) -> Vec<u8> {
    let mut out = vec![tag, u8::try_from(value.len()).unwrap()];
    out.extend_from_slice(value.as_bytes());
    out
}

#[test]
fn moderation_requests_exact_bytes_in_both_formats() {
    for (op, flag) in [(true, 1), (false, 0)] {
        let mut body = pb_string(0x0a, "bob");
        // An optional bool set either way is written (0x10 = field 2, varint).
        body.extend_from_slice(&[0x10, flag]);
        assert_request_bytes(
            &Request::Op {
                name: "bob".into(),
                op,
            },
            &format!(r#"{{"type": "CSOp", "name": "bob", "op": {op}}}"#),
            24,
            &body,
        );
    }

    assert_request_bytes(
        &Request::Owner { name: "김".into() },
        r#"{"type": "CSOwner", "name": "\uae40"}"#,
        25,
        &pb_string(0x0a, "김"),
    );

    // A reason is always written, an empty one too (as CSCreateRoom's title).
    for (reason, json) in [
        (
            "도배 \"x\"",
            r#"{"type": "CSKick", "name": "bob", "reason": "\ub3c4\ubc30 \"x\""}"#,
        ),
        ("", r#"{"type": "CSKick", "name": "bob", "reason": ""}"#),
    ] {
        let mut body = pb_string(0x0a, "bob");
        body.extend_from_slice(&pb_string(0x12, reason));
        assert_request_bytes(
            &Request::Kick {
                name: "bob".into(),
                reason: reason.into(),
            },
            json,
            26,
            &body,
        );
    }

    // `minutes` only when given (as CSHistory's count); `ban` always. Field 2 is a
    // varint (0x10), field 3 too (0x18); -1 is a ten-byte varint.
    let cases: [(Option<i64>, bool, &str, &[u8]); 4] = [
        (
            Some(30),
            true,
            r#"{"type": "CSBan", "name": "bob", "minutes": 30, "ban": true}"#,
            &[0x10, 30, 0x18, 1],
        ),
        (
            None,
            true,
            r#"{"type": "CSBan", "name": "bob", "ban": true}"#,
            &[0x18, 1],
        ),
        (
            None,
            false,
            r#"{"type": "CSBan", "name": "bob", "ban": false}"#,
            &[0x18, 0],
        ),
        (
            Some(-1),
            true,
            r#"{"type": "CSBan", "name": "bob", "minutes": -1, "ban": true}"#,
            &[
                0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x18, 1,
            ],
        ),
    ];
    for (minutes, ban, json, tail) in cases {
        let mut body = pb_string(0x0a, "bob");
        body.extend_from_slice(tail);
        assert_request_bytes(
            &Request::Ban {
                name: "bob".into(),
                minutes,
                ban,
            },
            json,
            27,
            &body,
        );
    }

    assert_request_bytes(
        &Request::Topic {
            text: "주제".into(),
        },
        r#"{"type": "CSTopic", "text": "\uc8fc\uc81c"}"#,
        28,
        &pb_string(0x0a, "주제"),
    );
}

#[test]
fn topic_exact_bytes_in_both_formats() {
    for (by, json) in [
        (
            "가",
            r#"{"type": "SCTopic", "roomId": 3, "topic": "\"주제\"", "by": "가"}"#,
        ),
        // On entry: nobody set it just now; `by` is still written, empty.
        (
            "",
            r#"{"type": "SCTopic", "roomId": 3, "topic": "\"주제\"", "by": ""}"#,
        ),
    ] {
        let answer = Response::Topic {
            room_id: 3,
            topic: "\"주제\"".into(),
            by: by.into(),
        };
        let mut out = Vec::new();
        encode_response(WireFormat::Json, &answer, &mut out).unwrap();
        assert_eq!(String::from_utf8_lossy(&out[2..]), json);
        assert_eq!(
            decode_all_responses(WireFormat::Json, &out),
            [Ok(answer.clone())]
        );

        out.clear();
        encode_response(WireFormat::Protobuf, &answer, &mut out).unwrap();
        let mut body = vec![0x08, 3];
        body.extend_from_slice(&pb_string(0x12, "\"주제\""));
        body.extend_from_slice(&pb_string(0x1a, by));
        let mut want = vec![0, 2, 0x08, 29];
        want.extend_from_slice(&frame_of(&body));
        assert_eq!(out, want);
        let theirs = pb::ScTopic {
            room_id: Some(3),
            topic: Some("\"주제\"".into()),
            by: Some(by.into()),
        }
        .encode_to_vec();
        assert_eq!(&out[4..], &frame_of(&theirs)[..]);
        assert_eq!(
            decode_all_responses(WireFormat::Protobuf, &out),
            [Ok(answer)]
        );
    }

    // roomId is an int64 on the wire: no saturation, negative ids are ten-byte varints.
    let far = Response::Topic {
        room_id: -9_000_000_000,
        topic: "t".into(),
        by: "b".into(),
    };
    for format in WireFormat::ALL {
        let mut out = Vec::new();
        encode_response(format, &far, &mut out).unwrap();
        assert_eq!(decode_all_responses(format, &out), [Ok(far.clone())]);
    }

    // A JSON SCTopic's strings borrow from the frame, as an SCChat's do.
    let Ok(Response::Topic { topic, by, .. }) = json::decode_response(
        br#"{"type": "SCTopic", "roomId": 1, "topic": "hello", "by": "kim"}"#,
    ) else {
        panic!("a topic decodes");
    };
    assert!(matches!(topic, Cow::Borrowed("hello")), "{topic:?}");
    assert!(matches!(by, Cow::Borrowed("kim")), "{by:?}");
}

#[test]
fn rooms_without_topics_keep_their_bytes_and_topics_are_added_only_when_set() {
    let room = |room_id, title: &str, members: &[&str], topic: Option<&str>| RoomInfo {
        room_id,
        title: title.into(),
        members: members.iter().map(|m| (*m).to_owned()).collect(),
        topic: topic.map(str::to_owned),
    };
    // The listing's bytes before the `moderation` extension, in both formats.
    let plain = Response::RoomsResult {
        rooms: vec![room(1, "t", &["a", "b"], None), room(2, "u", &[], None)],
    };
    let mut out = Vec::new();
    encode_response(WireFormat::Json, &plain, &mut out).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out[2..]),
        r#"{"type": "SCRoomsResult", "rooms": [{"roomId": 1, "title": "t", "members": ["a", "b"]}, {"roomId": 2, "title": "u", "members": []}]}"#
    );
    assert_eq!(
        decode_all_responses(WireFormat::Json, &out),
        [Ok(plain.clone())]
    );
    out.clear();
    encode_response(WireFormat::Protobuf, &plain, &mut out).unwrap();
    #[rustfmt::skip]
    let want = [
        0, 2, 0x08, 7, // Type frame: SC_ROOMS_RESULT
        0, 20, // body frame
        0x0a, 11, 0x08, 1, 0x12, 1, b't', 0x1a, 1, b'a', 0x1a, 1, b'b', // rooms[0]
        0x0a, 5, 0x08, 2, 0x12, 1, b'u', // rooms[1]
    ];
    assert_eq!(out, want);
    assert_eq!(
        decode_all_responses(WireFormat::Protobuf, &out),
        [Ok(plain)]
    );

    // With a topic: the key (field 4) after the members, on that room only.
    let topical = Response::RoomsResult {
        rooms: vec![
            room(1, "t", &["a", "b"], Some("주제")),
            room(2, "u", &[], None),
        ],
    };
    out.clear();
    encode_response(WireFormat::Json, &topical, &mut out).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out[2..]),
        r#"{"type": "SCRoomsResult", "rooms": [{"roomId": 1, "title": "t", "members": ["a", "b"], "topic": "주제"}, {"roomId": 2, "title": "u", "members": []}]}"#
    );
    assert_eq!(
        decode_all_responses(WireFormat::Json, &out),
        [Ok(topical.clone())]
    );
    out.clear();
    encode_response(WireFormat::Protobuf, &topical, &mut out).unwrap();
    let mut want = vec![0, 2, 0x08, 7, 0, 28, 0x0a, 19];
    want.extend_from_slice(&[0x08, 1, 0x12, 1, b't', 0x1a, 1, b'a', 0x1a, 1, b'b']);
    want.extend_from_slice(&pb_string(0x22, "주제"));
    want.extend_from_slice(&[0x0a, 5, 0x08, 2, 0x12, 1, b'u']);
    assert_eq!(out, want);
    assert_eq!(
        decode_all_responses(WireFormat::Protobuf, &out),
        [Ok(topical)]
    );

    // An empty topic that is set is still set: written, and read back as Some("").
    let empty = Response::RoomsResult {
        rooms: vec![room(3, "v", &[], Some(""))],
    };
    for format in WireFormat::ALL {
        out.clear();
        encode_response(format, &empty, &mut out).unwrap();
        assert_eq!(decode_all_responses(format, &out), [Ok(empty.clone())]);
    }
    out.clear();
    encode_response(WireFormat::Json, &empty, &mut out).unwrap();
    assert_eq!(
        &out[2..],
        br#"{"type": "SCRoomsResult", "rooms": [{"roomId": 3, "title": "v", "members": [], "topic": ""}]}"#
    );

    // A topic of another type is refused; inside `rooms` a `null` is one too.
    for value in ["7", "null", "[\"x\"]", "true"] {
        let payload = format!(
            r#"{{"type": "SCRoomsResult", "rooms": [{{"roomId": 1, "title": "t", "members": [], "topic": {value}}}]}}"#
        );
        assert_eq!(
            json::decode_response(payload.as_bytes()),
            Err(DecodeError::WrongFieldType {
                message: "SCRoomsResult",
                field: "topic",
                expected: "문자열",
            }),
            "{value}"
        );
    }
}

#[test]
fn moderation_json_bad_fields_are_explained() {
    let request =
        |json: &str| decode_all_requests(Some(WireFormat::Json), &frame_of(json.as_bytes()));
    let missing = |message, field| DecodeError::MissingField { message, field };
    let wrong = |message, field, expected| DecodeError::WrongFieldType {
        message,
        field,
        expected,
    };
    let bool_text = "true 또는 false";
    let cases = [
        (r#"{"type": "CSOp", "op": true}"#, missing("CSOp", "name")),
        (
            r#"{"type": "CSOp", "name": null, "op": true}"#,
            missing("CSOp", "name"),
        ),
        (
            r#"{"type": "CSOp", "name": 1, "op": true}"#,
            wrong("CSOp", "name", "문자열"),
        ),
        (
            r#"{"type": "CSOp", "name": "bob", "op": "true"}"#,
            wrong("CSOp", "op", bool_text),
        ),
        (
            r#"{"type": "CSOp", "name": "bob", "op": 1}"#,
            wrong("CSOp", "op", bool_text),
        ),
        (r#"{"type": "CSOwner"}"#, missing("CSOwner", "name")),
        (
            r#"{"type": "CSOwner", "name": null}"#,
            missing("CSOwner", "name"),
        ),
        (
            r#"{"type": "CSOwner", "name": ["bob"]}"#,
            wrong("CSOwner", "name", "문자열"),
        ),
        (
            r#"{"type": "CSKick", "reason": "x"}"#,
            missing("CSKick", "name"),
        ),
        (
            r#"{"type": "CSKick", "name": {}, "reason": "x"}"#,
            wrong("CSKick", "name", "문자열"),
        ),
        (
            r#"{"type": "CSKick", "name": "bob", "reason": 5}"#,
            wrong("CSKick", "reason", "문자열"),
        ),
        (
            r#"{"type": "CSKick", "name": "bob", "reason": false}"#,
            wrong("CSKick", "reason", "문자열"),
        ),
        (
            r#"{"type": "CSBan", "minutes": 5, "ban": true}"#,
            missing("CSBan", "name"),
        ),
        (
            r#"{"type": "CSBan", "name": 5, "ban": true}"#,
            wrong("CSBan", "name", "문자열"),
        ),
        (
            r#"{"type": "CSBan", "name": "bob", "minutes": "30", "ban": true}"#,
            wrong("CSBan", "minutes", "정수"),
        ),
        (
            r#"{"type": "CSBan", "name": "bob", "minutes": 1.5, "ban": true}"#,
            wrong("CSBan", "minutes", "정수"),
        ),
        (
            r#"{"type": "CSBan", "name": "bob", "minutes": true, "ban": true}"#,
            wrong("CSBan", "minutes", "정수"),
        ),
        (
            r#"{"type": "CSBan", "name": "bob", "minutes": [30], "ban": true}"#,
            wrong("CSBan", "minutes", "정수"),
        ),
        (
            r#"{"type": "CSBan", "name": "bob", "ban": "yes"}"#,
            wrong("CSBan", "ban", bool_text),
        ),
        (
            r#"{"type": "CSBan", "name": "bob", "ban": 0}"#,
            wrong("CSBan", "ban", bool_text),
        ),
        (r#"{"type": "CSTopic"}"#, missing("CSTopic", "text")),
        (
            r#"{"type": "CSTopic", "text": null}"#,
            missing("CSTopic", "text"),
        ),
        (
            r#"{"type": "CSTopic", "text": 3}"#,
            wrong("CSTopic", "text", "문자열"),
        ),
        // Another message's key does not stand in: CSTopic's line is `text`.
        (
            r#"{"type": "CSTopic", "topic": "x"}"#,
            missing("CSTopic", "text"),
        ),
    ];
    for (json, expected) in cases {
        assert_eq!(request(json), [Err(expected)], "{json}");
    }
    assert_eq!(
        wrong("CSBan", "minutes", "정수").to_string(),
        "잘못된 메시지입니다: CSBan 의 minutes 필드는 정수 이어야 합니다."
    );
    assert_eq!(
        wrong("CSOp", "op", bool_text).to_string(),
        "잘못된 메시지입니다: CSOp 의 op 필드는 true 또는 false 이어야 합니다."
    );

    // Optional fields absent or null: protobuf's defaults.
    let lenient = [
        (
            r#"{"type": "CSOp", "name": "bob"}"#,
            Request::Op {
                name: "bob".into(),
                op: false,
            },
        ),
        (
            r#"{"type": "CSOp", "name": "bob", "op": null}"#,
            Request::Op {
                name: "bob".into(),
                op: false,
            },
        ),
        (
            r#"{"type": "CSKick", "name": "bob"}"#,
            Request::Kick {
                name: "bob".into(),
                reason: String::new(),
            },
        ),
        (
            r#"{"type": "CSKick", "name": "bob", "reason": null}"#,
            Request::Kick {
                name: "bob".into(),
                reason: String::new(),
            },
        ),
        (
            r#"{"type": "CSBan", "name": "bob"}"#,
            Request::Ban {
                name: "bob".into(),
                minutes: None,
                ban: false,
            },
        ),
        (
            r#"{"type": "CSBan", "name": "bob", "minutes": null, "ban": null}"#,
            Request::Ban {
                name: "bob".into(),
                minutes: None,
                ban: false,
            },
        ),
        // Any integer, as for the other integers: 30.0 is 30, a huge one saturates.
        (
            r#"{"type": "CSBan", "name": "bob", "minutes": 30.0, "ban": true}"#,
            Request::Ban {
                name: "bob".into(),
                minutes: Some(30),
                ban: true,
            },
        ),
        (
            r#"{"type": "CSBan", "name": "bob", "minutes": 1e30, "ban": true}"#,
            Request::Ban {
                name: "bob".into(),
                minutes: Some(i64::MAX),
                ban: true,
            },
        ),
        (
            r#"{"ban": true, "minutes": 0, "name": "", "type": "CSBan", "x": [1]}"#,
            Request::Ban {
                name: String::new(),
                minutes: Some(0),
                ban: true,
            },
        ),
    ];
    for (json, expected) in lenient {
        assert_eq!(request(json), [Ok(expected)], "{json}");
    }
    assert_eq!(
        request(r#"{"type": "SCTopic", "roomId": 1, "topic": "t"}"#),
        [Err(DecodeError::UnknownType("SCTopic".into()))]
    );

    let response = |json: &str| json::decode_response(json.as_bytes()).map(Response::into_owned);
    let cases = [
        (
            r#"{"type": "SCTopic", "topic": "t"}"#,
            missing("SCTopic", "roomId"),
        ),
        (
            r#"{"type": "SCTopic", "roomId": null, "topic": "t"}"#,
            missing("SCTopic", "roomId"),
        ),
        (
            r#"{"type": "SCTopic", "roomId": "1", "topic": "t"}"#,
            wrong("SCTopic", "roomId", "정수"),
        ),
        (
            r#"{"type": "SCTopic", "roomId": 1.5, "topic": "t"}"#,
            wrong("SCTopic", "roomId", "정수"),
        ),
        (
            r#"{"type": "SCTopic", "roomId": 1}"#,
            missing("SCTopic", "topic"),
        ),
        (
            r#"{"type": "SCTopic", "roomId": 1, "topic": 2}"#,
            wrong("SCTopic", "topic", "문자열"),
        ),
        (
            r#"{"type": "SCTopic", "roomId": 1, "topic": "t", "by": 3}"#,
            wrong("SCTopic", "by", "문자열"),
        ),
        (
            r#"{"type": "SCTopic", "roomId": 1, "topic": "t", "by": true}"#,
            wrong("SCTopic", "by", "문자열"),
        ),
    ];
    for (json, expected) in cases {
        assert_eq!(response(json), Err(expected), "{json}");
    }
    for json in [
        r#"{"type": "SCTopic", "roomId": 1, "topic": "t"}"#,
        r#"{"type": "SCTopic", "roomId": 1, "topic": "t", "by": null}"#,
    ] {
        assert_eq!(
            response(json),
            Ok(Response::Topic {
                room_id: 1,
                topic: "t".into(),
                by: "".into(),
            }),
            "{json}"
        );
    }
}

#[test]
fn moderation_protobuf_missing_fields_and_bad_bodies() {
    let mut wire = Vec::new();
    wire.extend_from_slice(&[0, 2, 8, 24, 0, 0]); // CSOp without name
    wire.extend_from_slice(&[0, 2, 8, 24]);
    wire.extend_from_slice(&frame_of(&[0x0a, 1, b'b'])); // CSOp without op: false
    wire.extend_from_slice(&[0, 2, 8, 25, 0, 0]); // CSOwner without name
    wire.extend_from_slice(&[0, 2, 8, 26]);
    wire.extend_from_slice(&frame_of(&[0x12, 1, b'r'])); // CSKick without name
    wire.extend_from_slice(&[0, 2, 8, 26]);
    wire.extend_from_slice(&frame_of(&[0x0a, 1, b'b'])); // CSKick without reason: empty
    wire.extend_from_slice(&[0, 2, 8, 27]);
    wire.extend_from_slice(&frame_of(&[0x10, 5, 0x18, 1])); // CSBan without name
    wire.extend_from_slice(&[0, 2, 8, 27]);
    wire.extend_from_slice(&frame_of(&[0x0a, 1, b'b'])); // CSBan, name only
    wire.extend_from_slice(&[0, 2, 8, 28, 0, 0]); // CSTopic without text
    wire.extend_from_slice(&[0, 2, 8, 26]);
    wire.extend_from_slice(&frame_of(&[0x0a, 1, b'b', 0x12, 1, 0xff])); // a non-UTF-8 reason
    wire.extend_from_slice(&[0, 2, 8, 27]);
    wire.extend_from_slice(&frame_of(&[0x0a, 1, b'b', 0x12, 1, b'x'])); // minutes as LEN
    wire.extend_from_slice(&[0, 2, 8, 29, 0, 0]); // a server-to-client type
    let got = decode_all_requests(None, &wire);
    let missing = |message, field| Err(DecodeError::MissingField { message, field });
    assert_eq!(got.len(), 11);
    assert_eq!(got[0], missing("CSOp", "name"));
    assert_eq!(
        got[1],
        Ok(Request::Op {
            name: "b".into(),
            op: false
        })
    );
    assert_eq!(got[2], missing("CSOwner", "name"));
    assert_eq!(got[3], missing("CSKick", "name"));
    assert_eq!(
        got[4],
        Ok(Request::Kick {
            name: "b".into(),
            reason: String::new()
        })
    );
    assert_eq!(got[5], missing("CSBan", "name"));
    assert_eq!(
        got[6],
        Ok(Request::Ban {
            name: "b".into(),
            minutes: None,
            ban: false
        })
    );
    assert_eq!(got[7], missing("CSTopic", "text"));
    assert!(
        matches!(&got[8], Err(DecodeError::InvalidBody { message: "CSKick", detail }) if detail.contains("UTF-8")),
        "{:?}",
        got[8]
    );
    assert!(
        matches!(
            &got[9],
            Err(DecodeError::InvalidBody {
                message: "CSBan",
                ..
            })
        ),
        "{:?}",
        got[9]
    );
    assert_eq!(
        got[10],
        Err(DecodeError::UnknownType("29 (SCTopic)".into()))
    );

    let mut wire = Vec::new();
    wire.extend_from_slice(&[0, 2, 8, 29]);
    wire.extend_from_slice(&frame_of(&[0x12, 1, b't', 0x1a, 1, b'b'])); // no roomId
    wire.extend_from_slice(&[0, 2, 8, 29]);
    wire.extend_from_slice(&frame_of(&[0x08, 1, 0x1a, 1, b'b'])); // no topic
    wire.extend_from_slice(&[0, 2, 8, 29]);
    wire.extend_from_slice(&frame_of(&[0x08, 1, 0x12, 1, b't'])); // no by: empty
    let got = decode_all_responses(WireFormat::Protobuf, &wire);
    assert_eq!(
        got,
        [
            Err(DecodeError::MissingField {
                message: "SCTopic",
                field: "roomId"
            }),
            Err(DecodeError::MissingField {
                message: "SCTopic",
                field: "topic"
            }),
            Ok(Response::Topic {
                room_id: 1,
                topic: "t".into(),
                by: "".into(),
            }),
        ]
    );
    // Every new type number reaches the request decoder as a request, and SC_TOPIC
    // reaches the response decoder as a response: none is left unmatched.
    for n in 24..=28u8 {
        let mut wire = vec![0, 2, 8, n];
        wire.extend_from_slice(&frame_of(&[0x0a, 1, b'x']));
        assert!(
            decode_all_requests(None, &wire)[0].is_ok(),
            "type {n}: {:?}",
            decode_all_requests(None, &wire)
        );
        assert_eq!(
            decode_all_responses(WireFormat::Protobuf, &wire),
            [Err(DecodeError::UnknownType(n.to_string()))]
        );
    }
}

/// A line's frames fit the room reserved for them: encoding one allocates once and
/// never regrows (the longest fixed parts: numbers at their widest, the longest type
/// names), in both formats.
#[test]
fn a_lines_frames_fit_the_room_reserved_for_them() {
    let text = "안녕하세요 world".repeat(3);
    let responses = [
        Response::system(text.as_str()),
        Response::Chat {
            member: "someone".into(),
            text: text.as_str().into(),
        },
        Response::TimedChat {
            member: "someone".into(),
            text: text.as_str().into(),
            seq: i64::MAX,
            time: i64::MIN,
        },
        Response::Direct {
            member: "someone".into(),
            text: text.as_str().into(),
            time: i64::MIN,
            outgoing: false,
        },
        Response::Topic {
            room_id: i64::MIN,
            topic: text.as_str().into(),
            by: "someone".into(),
        },
        Response::Session {
            token: "t".repeat(43).into(),
            expires: i64::MIN,
        },
    ];
    for format in [WireFormat::Json, WireFormat::Protobuf] {
        for response in &responses {
            let mut out = Vec::new();
            encode_response(format, response, &mut out).unwrap();
            assert_eq!(
                out.capacity(),
                size_hint(response),
                "{format:?} {} ({} bytes) regrew",
                response.type_name(),
                out.len()
            );
        }
    }
}
