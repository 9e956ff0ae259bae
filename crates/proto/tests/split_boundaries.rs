//! Split-boundary tests: a byte stream cut anywhere still yields the same messages.
//!
//! TCP hands a reader arbitrary pieces of the peer's stream: a frame header split in two,
//! a payload split anywhere, several frames in one read. These tests encode sequences of
//! valid messages (requests in both wire formats, responses in both) into one stream,
//! then feed it to a [`FrameBuf`] in pieces and decode the frames it hands out:
//!
//! * cut once at **every** byte boundary (`stream[..i]`, then `stream[i..]`);
//! * cut into random chunkings (proptest picks the chunk sizes);
//! * one byte at a time (deterministic, no proptest).
//!
//! Each time the messages must come out equal to what was encoded and in order, the
//! buffer must account for every byte (`pending()` is exactly the bytes after the last
//! whole frame seen so far, and zero at the end), and after every piece it must have
//! handed out exactly the frames that [`Frames`] finds in the prefix received so far
//! (which is how the server splits its input in `event_handler.rs`).
//!
//! Requests are decoded with `RequestDecoder::new(None)`, like the server, so format
//! detection is exercised at every cut too. Sizes are bounded so the whole file runs in
//! well under five seconds in a debug build.

use std::borrow::Cow;

use chat_proto::codec::{encode_request, encode_response};
use chat_proto::frame::{FrameBuf, Frames, MAX_PAYLOAD};
use chat_proto::{Request, RequestDecoder, Response, ResponseDecoder, RoomInfo, WireFormat};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------
// Feeding a stream in pieces
// ---------------------------------------------------------------------------------

/// Feeds `stream` to a fresh [`FrameBuf`] in the pieces `cuts` delimits (strictly
/// increasing positions inside the stream) and returns every frame payload handed out.
///
/// After each piece it checks the buffer's accounting against [`Frames`] run on the
/// prefix received so far: same number of frames handed out in total, and `pending()`
/// equal to the bytes of the incomplete frame at the end of that prefix.
fn frames_fed_in_pieces(stream: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut buf = FrameBuf::new();
    let mut frames = Vec::new();
    let mut fed = 0;
    for end in cuts.iter().copied().chain([stream.len()]) {
        assert!(fed <= end && end <= stream.len(), "cut {end} out of order");
        buf.extend(&stream[fed..end]);
        fed = end;
        // Bounded: every frame handed out consumes at least its two header bytes.
        while let Some(frame) = buf.next_frame() {
            frames.push(frame.to_vec());
        }
        let mut reference = Frames::new(&stream[..fed]);
        let complete = reference.by_ref().count();
        assert_eq!(
            frames.len(),
            complete,
            "frames handed out after {fed} bytes"
        );
        assert_eq!(
            buf.pending(),
            fed - reference.consumed(),
            "pending bytes after {fed} bytes"
        );
    }
    assert_eq!(
        buf.pending(),
        0,
        "a stream of whole frames leaves nothing pending"
    );
    frames
}

/// Decodes frame payloads as requests, detecting the format like the server does.
fn decode_requests(frames: &[Vec<u8>]) -> Vec<Request> {
    let mut decoder = RequestDecoder::new(None);
    frames
        .iter()
        .filter_map(|f| decoder.feed(f))
        .map(|r| r.expect("a valid request decodes"))
        .collect()
}

/// Decodes frame payloads as responses in `format`.
fn decode_responses(format: WireFormat, frames: &[Vec<u8>]) -> Vec<Response<'static>> {
    let mut decoder = ResponseDecoder::new(format);
    frames
        .iter()
        .filter_map(|f| decoder.feed(f))
        .map(|r| r.expect("a valid response decodes").into_owned())
        .collect()
}

fn request_stream(format: WireFormat, requests: &[Request]) -> Vec<u8> {
    let mut wire = Vec::new();
    for request in requests {
        encode_request(format, request, &mut wire).expect("small requests fit a frame");
    }
    wire
}

fn response_stream(format: WireFormat, responses: &[Response<'_>]) -> Vec<u8> {
    let mut wire = Vec::new();
    for response in responses {
        encode_response(format, response, &mut wire).expect("small responses fit a frame");
    }
    wire
}

/// Turns chunk sizes (each at least 1) into cut positions inside a stream of `len`
/// bytes, cycling through the sizes until the stream is covered.
fn cuts_from_sizes(len: usize, sizes: &[usize]) -> Vec<usize> {
    assert!(
        sizes.iter().all(|&s| s > 0),
        "a zero size would never advance"
    );
    let mut cuts = Vec::new();
    let mut at = 0;
    // Bounded: `at` grows by at least one each turn.
    for size in sizes.iter().cycle() {
        at += size;
        if at >= len {
            break;
        }
        cuts.push(at);
    }
    cuts
}

/// Asserts that `stream` yields `expected` requests whatever single cut is made, when
/// fed in the chunk `sizes`, and when fed one byte at a time.
fn check_requests(stream: &[u8], expected: &[Request], sizes: &[usize]) {
    for cut in 0..=stream.len() {
        let got = decode_requests(&frames_fed_in_pieces(stream, &[cut]));
        assert_eq!(got, expected, "split at byte {cut}");
    }
    let got = decode_requests(&frames_fed_in_pieces(
        stream,
        &cuts_from_sizes(stream.len(), sizes),
    ));
    assert_eq!(got, expected, "chunk sizes {sizes:?}");
}

/// [`check_requests`] for responses.
fn check_responses(format: WireFormat, stream: &[u8], expected: &[Response<'_>], sizes: &[usize]) {
    for cut in 0..=stream.len() {
        let got = decode_responses(format, &frames_fed_in_pieces(stream, &[cut]));
        assert_eq!(got, expected, "{format}: split at byte {cut}");
    }
    let got = decode_responses(
        format,
        &frames_fed_in_pieces(stream, &cuts_from_sizes(stream.len(), sizes)),
    );
    assert_eq!(got, expected, "{format}: chunk sizes {sizes:?}");
}

/// Every byte boundary as a cut: one byte per piece.
fn every_byte(stream: &[u8]) -> Vec<usize> {
    (1..stream.len()).collect()
}

// ---------------------------------------------------------------------------------
// Strategies (sizes bounded to keep the every-cut loop cheap)
// ---------------------------------------------------------------------------------

/// Short strings that stress the encoders: ASCII, Hangul, emoji (surrogate pairs in
/// JSON), quotes, backslashes and control characters (escaped in JSON), or anything.
fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z ]{0,12}",
        "[가-힣😀\"\\\\\u{0}-\u{1f}\u{7f}a ]{0,10}",
        any::<String>().prop_map(|s| s.chars().take(8).collect()),
    ]
}

/// A room id the format can carry unchanged: protobuf's field is an `int32`, JSON
/// carries any `i64`.
fn arb_room_id(format: WireFormat) -> BoxedStrategy<i64> {
    match format {
        WireFormat::Json => prop_oneof![-3i64..10, any::<i64>()].boxed(),
        WireFormat::Protobuf => prop_oneof![-3i64..10, any::<i32>().prop_map(i64::from)].boxed(),
    }
}

fn arb_request(format: WireFormat) -> impl Strategy<Value = Request> {
    prop_oneof![
        arb_text().prop_map(|name| Request::Name { name }),
        Just(Request::Rooms),
        arb_text().prop_map(|title| Request::CreateRoom { title }),
        arb_room_id(format).prop_map(|room_id| Request::JoinRoom { room_id }),
        Just(Request::LeaveRoom),
        arb_text().prop_map(|text| Request::Chat { text }),
        Just(Request::Shutdown),
    ]
}

fn arb_response(format: WireFormat) -> impl Strategy<Value = Response<'static>> {
    let room = (
        arb_room_id(format),
        arb_text(),
        proptest::collection::vec(arb_text(), 0..3),
        proptest::option::of(arb_text()),
    )
        .prop_map(|(room_id, title, members, topic)| RoomInfo {
            room_id,
            title,
            members,
            topic,
        });
    prop_oneof![
        arb_text().prop_map(|text| Response::SystemMessage { text: text.into() }),
        (arb_text(), arb_text()).prop_map(|(member, text)| Response::Chat {
            member: member.into(),
            text: text.into(),
        }),
        proptest::collection::vec(room, 0..3).prop_map(|rooms| Response::RoomsResult { rooms }),
    ]
}

fn arb_format() -> impl Strategy<Value = WireFormat> {
    prop_oneof![Just(WireFormat::Json), Just(WireFormat::Protobuf)]
}

/// Chunk sizes: mostly small (splits inside headers), sometimes a few frames' worth.
fn arb_sizes() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(prop_oneof![1usize..4, 1usize..80], 1..8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn requests_survive_every_split(
        (format, requests) in arb_format().prop_flat_map(|format| {
            (Just(format), proptest::collection::vec(arb_request(format), 1..6))
        }),
        sizes in arb_sizes(),
    ) {
        let stream = request_stream(format, &requests);
        check_requests(&stream, &requests, &sizes);
    }

    #[test]
    fn responses_survive_every_split(
        (format, responses) in arb_format().prop_flat_map(|format| {
            (Just(format), proptest::collection::vec(arb_response(format), 1..5))
        }),
        sizes in arb_sizes(),
    ) {
        let stream = response_stream(format, &responses);
        check_responses(format, &stream, &responses, &sizes);
    }
}

// ---------------------------------------------------------------------------------
// Deterministic cases
// ---------------------------------------------------------------------------------

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
            title: "방 😀 \"q\" \\".into(),
        },
        Request::JoinRoom { room_id: 1 },
        Request::JoinRoom { room_id: -1 },
        Request::LeaveRoom,
        Request::Chat {
            text: "안녕\n\t\u{0}".into(),
        },
        Request::Chat {
            text: String::new(),
        },
        Request::Shutdown,
    ]
}

fn every_response() -> Vec<Response<'static>> {
    vec![
        Response::system("방제[T] 방에 입장했습니다."),
        Response::system(""),
        Response::Chat {
            member: Cow::Borrowed("(127.0.0.1, 9001)"),
            text: Cow::Borrowed("😀 \"x\""),
        },
        Response::RoomsResult { rooms: Vec::new() },
        Response::RoomsResult {
            rooms: vec![
                RoomInfo {
                    room_id: 1,
                    title: "하나".into(),
                    members: vec!["a".into(), "b".into()],
                    topic: Some("주제 😀 \"q\"".into()),
                },
                RoomInfo {
                    room_id: 2,
                    title: String::new(),
                    members: Vec::new(),
                    topic: None,
                },
            ],
        },
    ]
}

#[test]
fn requests_byte_at_a_time() {
    for format in WireFormat::ALL {
        let requests = every_request();
        let stream = request_stream(format, &requests);
        let got = decode_requests(&frames_fed_in_pieces(&stream, &every_byte(&stream)));
        assert_eq!(got, requests, "{format}");
    }
}

#[test]
fn responses_byte_at_a_time() {
    for format in WireFormat::ALL {
        let responses = every_response();
        let stream = response_stream(format, &responses);
        let got = decode_responses(format, &frames_fed_in_pieces(&stream, &every_byte(&stream)));
        assert_eq!(got, responses, "{format}");
    }
}

#[test]
fn fixed_messages_survive_every_split() {
    for format in WireFormat::ALL {
        let requests = every_request();
        check_requests(&request_stream(format, &requests), &requests, &[1, 2, 3]);
        let responses = every_response();
        check_responses(
            format,
            &response_stream(format, &responses),
            &responses,
            &[5, 1],
        );
    }
}

/// A frame at the size limit (header `ff ff`) between two small ones, cut around each
/// frame's header and payload ends: the largest frame must be waited for, not
/// mistaken for a short one. Every cut of a 64 KiB stream would be slow in debug, so
/// only the boundaries that matter, plus a byte-at-a-time feed.
#[test]
fn largest_frame_survives_splits_near_its_edges() {
    for format in WireFormat::ALL {
        let small = Request::Chat { text: "a".into() };
        let mut big = None;
        // The largest ASCII chat that still fits one frame in this format.
        for len in (MAX_PAYLOAD - 64..=MAX_PAYLOAD).rev() {
            let request = Request::Chat {
                text: "x".repeat(len),
            };
            let mut out = Vec::new();
            if encode_request(format, &request, &mut out).is_ok() {
                big = Some(request);
                break;
            }
        }
        let big = big.expect("some chat near the limit fits");
        let requests = vec![small.clone(), big, small];
        let stream = request_stream(format, &requests);
        let boundaries: Vec<usize> = {
            let mut frames = Frames::new(&stream);
            let mut ends = vec![0];
            while frames.next().is_some() {
                ends.push(frames.consumed());
            }
            ends
        };
        assert!(
            stream.windows(2).any(|w| w == [0xff, 0xff]),
            "{format}: a frame of the maximal length"
        );
        for &end in &boundaries {
            for cut in end.saturating_sub(3)..=(end + 3).min(stream.len()) {
                let got = decode_requests(&frames_fed_in_pieces(&stream, &[cut]));
                assert_eq!(got, requests, "{format}: split at byte {cut}");
            }
        }
        let got = decode_requests(&frames_fed_in_pieces(&stream, &every_byte(&stream)));
        assert_eq!(got, requests, "{format}: byte at a time");
    }
}
