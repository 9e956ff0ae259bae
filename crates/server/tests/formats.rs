//! The wire formats and framing, end to end: a JSON and a protobuf client in one room
//! (each served in its own format, protobuf replies byte-exact), the reference
//! client's JSON (`\uXXXX` escapes, surrogate pairs) and any other valid JSON,
//! messages split into single bytes, 3,000 chats pipelined in one write, zero-length
//! frames, and a server restricted to one format.

mod support;

use std::io::Write;
use std::thread;

use chat_proto::codec::encode_response;
use chat_proto::{Request, Response, ResponseDecoder, WireFormat};
use chat_server::{FormatPolicy, ServerConfig};
use support::*;

/// `response` as the server must write it in protobuf: its two frames' payloads.
fn protobuf_frames(response: &Response<'_>) -> (Vec<u8>, Vec<u8>) {
    let mut wire = Vec::new();
    encode_response(WireFormat::Protobuf, response, &mut wire).unwrap();
    let type_frame = wire[2..4].to_vec();
    let body = wire[6..].to_vec();
    assert_eq!(wire[..2], [0, 2]);
    assert_eq!(
        usize::from(u16::from_be_bytes([wire[4], wire[5]])),
        body.len()
    );
    (type_frame, body)
}

#[test]
fn json_and_protobuf_clients_share_a_room() {
    let server = TestServer::start();
    let mut j = server.client(WireFormat::Json);
    let mut p = server.client(WireFormat::Protobuf);
    let mut j2 = server.client(WireFormat::Json);
    j.set_name("제이슨");
    p.set_name("프로토");
    j.create("mixed 방");
    p.join(1, "mixed 방");
    j.expect_system(&entered("프로토"));
    j2.join(1, "mixed 방");
    j.expect_system(&entered(&j2.default_name()));
    p.expect_system(&entered(&j2.default_name()));

    // JSON → protobuf, checked byte for byte on the protobuf side.
    j.chat("hello 😀");
    let (type_frame, body) = protobuf_frames(&Response::Chat {
        member: "제이슨".into(),
        text: "hello 😀".into(),
    });
    assert_eq!(p.recv_frame(), type_frame);
    assert_eq!(p.recv_frame(), body);
    j2.expect_chat("제이슨", "hello 😀");

    // Protobuf → JSON: one frame, a JSON object.
    p.chat("안녕");
    let frame = j.recv_frame();
    assert_eq!(
        frame.first(),
        Some(&b'{'),
        "{:?}",
        String::from_utf8_lossy(&frame)
    );
    let decoded = ResponseDecoder::new(WireFormat::Json).feed(&frame);
    assert_eq!(
        decoded,
        Some(Ok(Response::Chat {
            member: "프로토".into(),
            text: "안녕".into()
        }))
    );
    j2.expect_chat("프로토", "안녕");

    // Notices and lists cross formats too.
    p.set_name("proto");
    j.expect_system("프로토 의 이름이 proto 으로 변경되었습니다.");
    j2.expect_system("프로토 의 이름이 proto 으로 변경되었습니다.");
    let listed = vec![room(
        1,
        "mixed 방",
        &["제이슨", "proto", &j2.default_name()],
    )];
    assert_eq!(p.rooms(), listed);
    assert_eq!(j.rooms(), listed);
    p.leave("mixed 방");
    j.expect_system(&left("proto"));
    j2.expect_system(&left("proto"));
    for client in [&mut j, &mut p, &mut j2] {
        client.expect_silence();
    }
}

#[test]
fn protobuf_replies_are_byte_exact() {
    let server = TestServer::start();
    let mut p = server.client(WireFormat::Protobuf);

    // An empty list: the Type frame, then a zero-length body frame.
    p.send(&Request::Rooms);
    assert_eq!(p.recv_frame(), [0x08, 7]);
    assert_eq!(p.recv_frame(), [0u8; 0]);

    p.send(&Request::LeaveRoom);
    let (type_frame, body) = protobuf_frames(&Response::system(NOT_IN_ROOM));
    assert_eq!(type_frame, [0x08, 9]);
    assert_eq!(p.recv_frame(), type_frame);
    assert_eq!(p.recv_frame(), body);

    p.create("t");
    p.send(&Request::Rooms);
    let (type_frame, body) = protobuf_frames(&Response::RoomsResult {
        rooms: vec![room(1, "t", &[&p.default_name()])],
    });
    assert_eq!(p.recv_frame(), type_frame);
    assert_eq!(p.recv_frame(), body);
}

#[test]
fn reference_client_json_escapes_are_decoded() {
    // What Python's json.dumps sends; our encoder must produce the same bytes, so the
    // other tests' JSON is the reference client's JSON.
    let chat = br#"{"type": "CSChat", "text": "\uc548\ub155 \ud83d\ude00"}"#;
    assert_eq!(
        encode(
            WireFormat::Json,
            &Request::Chat {
                text: "안녕 😀".into()
            }
        ),
        frame(chat)
    );

    let server = TestServer::start();
    let mut a = server.client(WireFormat::Json);
    let mut b = server.client(WireFormat::Protobuf);
    a.send_raw(&frame(
        br#"{"type": "CSName", "name": "\ud55c\uae00 \ud83c\udf89"}"#,
    ));
    a.expect_system("이름이 한글 🎉 으로 변경되었습니다.");
    a.send_raw(&frame(
        br#"{"type": "CSCreateRoom", "title": "\ubc29 \"q\" \\"}"#,
    ));
    a.expect_system(r#"방제[방 "q" \] 방에 입장했습니다."#);
    b.join(1, r#"방 "q" \"#);
    a.expect_system(&entered(&b.default_name()));

    a.send_raw(&frame(chat));
    b.expect_chat("한글 🎉", "안녕 😀");
}

#[test]
fn any_valid_json_is_accepted() {
    let server = TestServer::start();
    let mut a = server.client(WireFormat::Json);
    let mut b = server.client(WireFormat::Json);
    b.create("r");
    // Whitespace before the first `{` still means JSON; compact separators, any key
    // order, extra keys.
    a.send_raw(&frame(b" \t\r\n{\"name\":\"ws\",\"type\":\"CSName\"}"));
    a.expect_system("이름이 ws 으로 변경되었습니다.");
    a.send_raw(&frame(
        br#"{ "roomId" : 1 , "extra" : [1, {"a": null}], "type" : "CSJoinRoom" }"#,
    ));
    a.expect_system("방제[r] 방에 입장했습니다.");
    b.expect_system(&entered("ws"));
    a.send_raw(&frame(
        br#"{"text":"a\"b\\c\/d\u0009e","type":"CSChat","member":"not me"}"#,
    ));
    b.expect_chat("ws", "a\"b\\c/d\te");
    // Raw UTF-8 instead of escapes.
    a.send_raw(&frame(
        r#"{"type": "CSChat", "text": "날것 😀"}"#.as_bytes(),
    ));
    b.expect_chat("ws", "날것 😀");
}

in_both_formats!(
    messages_sent_one_byte_at_a_time,
    pipelined_chats_arrive_complete_and_in_order,
    empty_bodies_are_zero_length_frames_in_any_split,
);

fn messages_sent_one_byte_at_a_time(format: WireFormat) {
    let server = TestServer::start();
    let mut a = server.client(format);
    let mut b = server.client(format);
    a.create("r");

    // From the very first byte: format detection must wait for a whole frame.
    let mut wire = encode(
        format,
        &Request::Name {
            name: "바이트".into(),
        },
    );
    wire.extend(encode(format, &Request::JoinRoom { room_id: 1 }));
    wire.extend(encode(
        format,
        &Request::Chat {
            text: "조각 😀".into(),
        },
    ));
    wire.extend(encode(format, &Request::Rooms));
    b.send_byte_by_byte(&wire);

    b.expect_system("이름이 바이트 으로 변경되었습니다.");
    b.expect_system("방제[r] 방에 입장했습니다.");
    assert_eq!(
        b.expect_rooms(),
        vec![room(1, "r", &[&a.default_name(), "바이트"])]
    );
    a.expect_system(&entered("바이트"));
    a.expect_chat("바이트", "조각 😀");
    a.expect_silence();
}

fn pipelined_chats_arrive_complete_and_in_order(format: WireFormat) {
    const CHATS: usize = 3_000;
    let server = TestServer::start();
    let (mut a, mut b) = server.pair_in_room(format, "r");

    let texts: Vec<String> = (0..CHATS).map(|i| format!("chat #{i:04} 채팅")).collect();
    let wire: Vec<u8> = texts
        .iter()
        .flat_map(|text| encode(format, &Request::Chat { text: text.clone() }))
        .collect();
    // One write, from another thread: b must be reading while a's bytes go in, or a
    // server that pushes back on a slow reader would block the writer forever.
    let mut stream = a.stream();
    let writer = thread::spawn(move || stream.write_all(&wire));

    let sender = a.default_name();
    for text in &texts {
        b.expect_chat(&sender, text);
    }
    writer.join().unwrap().expect("write the pipelined chats");
    b.expect_silence();
    a.expect_silence();
}

fn empty_bodies_are_zero_length_frames_in_any_split(format: WireFormat) {
    let server = TestServer::start();
    let mut a = server.client(format);
    match format {
        WireFormat::Protobuf => {
            // CS_LEAVE_ROOM: Type frame and empty body in one write, then split.
            a.send_raw(&[0, 2, 8, 4, 0, 0]);
            a.expect_system(NOT_IN_ROOM);
            a.send_raw(&[0, 2, 8, 4]);
            a.send_raw(&[0, 0]);
            a.expect_system(NOT_IN_ROOM);
            a.send_raw(&[0, 2, 8, 1, 0]);
            a.send_raw(&[0]);
            assert_eq!(a.expect_rooms(), vec![]);
        }
        WireFormat::Json => {
            // A zero-length frame is a message (an invalid one), not end of stream.
            a.send(&Request::Rooms);
            a.expect_rooms();
            a.send_raw(&[0, 0]);
            let text = a.recv_system();
            assert!(text.starts_with("잘못된 메시지입니다: "), "{text:?}");
            a.send(&Request::LeaveRoom);
            a.expect_system(NOT_IN_ROOM);
        }
    }
}

#[test]
fn a_json_only_server_answers_other_input_in_json() {
    let server = TestServer::with_config(ServerConfig {
        format: FormatPolicy::Only(WireFormat::Json),
        ..ServerConfig::local(4)
    });
    let mut a = server.client(WireFormat::Json);
    a.send_raw(&[0, 2, 8, 1]); // a protobuf Type frame (CS_ROOMS) alone
    let text = a.recv_system();
    assert!(text.starts_with("잘못된 메시지입니다: "), "{text:?}");
    a.expect_silence();
    a.set_name("json");

    let mut b = server.client(WireFormat::Json);
    b.set_name("plain json");
}
