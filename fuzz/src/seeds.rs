//! Small valid streams to start the fuzzers from, written to `fuzz/seeds/<target>/` by
//! `cargo run --example make_seeds` (run in `fuzz/`). The files are committed; keep them
//! to a few KB in all.
//!
//! The `replay` test runs every target's checks on these files (and on anything under
//! `fuzz/artifacts/<target>/`), so a crash once found stays a test.

use chat_proto::codec::{encode_request, encode_response};
use chat_proto::frame::write_frame;
use chat_proto::{Request, Response, RoomInfo, WireFormat};

/// The fuzz targets, by name (the `[[bin]]` names in `fuzz/Cargo.toml`).
pub const TARGETS: [&str; 3] = ["frames", "request_decoder", "response_decoder"];

/// One request of each kind, with strings that need escaping.
pub fn requests() -> Vec<Request> {
    vec![
        Request::Name {
            name: "홍길동".into(),
        },
        Request::Name {
            name: String::new(),
        },
        Request::Rooms,
        Request::CreateRoom {
            title: "방 😀 \"q\"".into(),
        },
        Request::JoinRoom { room_id: 1 },
        Request::JoinRoom { room_id: -1 },
        Request::LeaveRoom,
        Request::Chat {
            text: "안녕\n\\".into(),
        },
        Request::Shutdown,
    ]
}

/// One response of each kind.
pub fn responses() -> Vec<Response<'static>> {
    vec![
        Response::system("방제[T] 방에 입장했습니다."),
        Response::Chat {
            member: "(127.0.0.1, 9001)".into(),
            text: "😀 \"x\"".into(),
        },
        Response::RoomsResult { rooms: Vec::new() },
        Response::RoomsResult {
            rooms: vec![RoomInfo {
                room_id: 1,
                title: "하나".into(),
                members: vec!["a".into(), "b".into()],
                topic: None,
            }],
        },
    ]
}

fn request_stream(format: WireFormat) -> Vec<u8> {
    let mut out = Vec::new();
    for request in requests() {
        encode_request(format, &request, &mut out).expect("seed requests are small");
    }
    out
}

fn response_stream(format: WireFormat) -> Vec<u8> {
    let mut out = Vec::new();
    for response in responses() {
        encode_response(format, &response, &mut out).expect("seed responses are small");
    }
    out
}

fn framed(payloads: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for payload in payloads {
        write_frame(&mut out, payload).expect("seed payloads are small");
    }
    out
}

/// Every seed: (target, file name, bytes).
pub fn all() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut seeds = Vec::new();
    for (format, name) in [
        (WireFormat::Json, "json"),
        (WireFormat::Protobuf, "protobuf"),
    ] {
        seeds.push(("request_decoder", name, request_stream(format)));
        seeds.push(("response_decoder", name, response_stream(format)));
    }
    // Hand-written JSON the encoder never produces: compact, raw UTF-8, odd numbers,
    // extra and null keys.
    seeds.push((
        "request_decoder",
        "json-odd",
        framed(&[
            br#"{"type":"CSJoinRoom","roomId":1e3}"#,
            br#"{"roomId":-0.0,"type":"CSJoinRoom","x":[1,{}]}"#,
            "{\"type\":\"CSChat\",\"text\":\"raw 안녕 \\ud83d\\ude00\"}".as_bytes(),
            br#"{"type":"CSName","name":null}"#,
        ]),
    ));
    // What the reference client sends for `/shutdown` and `/join -1`.
    seeds.push((
        "request_decoder",
        "protobuf-reference-client",
        [
            &[0, 2, 0x08, 6, 0, 0][..],
            &[0, 2, 0x08, 3, 0, 11, 0x08],
            &[0xff; 9],
            &[0x01],
        ]
        .concat(),
    ));
    // The splitter: `00` + a stream (one piece), or `0k` + k chunk sizes + a stream.
    let mut one_piece = vec![0];
    one_piece.extend(request_stream(WireFormat::Protobuf));
    seeds.push(("frames", "one-piece", one_piece));
    let mut chunked = vec![3, 1, 2, 5];
    chunked.extend(response_stream(WireFormat::Json));
    seeds.push(("frames", "chunked", chunked));
    let mut empties = vec![2, 0, 1];
    empties.extend([0, 0, 0, 0, 0, 1, b'x', 0, 3, b'a']);
    seeds.push(("frames", "empty-frames-and-tail", empties));
    seeds
}
