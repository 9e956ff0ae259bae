//! `RequestDecoder` on arbitrary frames.
//!
//! # Input layout
//!
//! The input is a byte stream; its complete frames (see [`crate::frames_of`]) are fed
//! one by one to three decoders: detecting (`None`), JSON and protobuf. Any wire bytes a
//! client could send are a valid seed.
//!
//! # Properties
//!
//! * Nothing panics, and every error's `Display` (sent back to users) works.
//! * JSON answers once per frame, protobuf once per two frames (a `Type` frame and its
//!   body, even a bad one).
//! * The detecting decoder answers `UnknownFormat` for each frame before the first that
//!   [`detect_format`] recognises, and from that frame on exactly what a decoder fixed to
//!   the detected format answers.
//! * Every request that decodes re-encodes, in its own format and in the other one when
//!   it fits (protobuf's room id is an `int32`), to whole frames that decode — with or
//!   without detection — to the same request. Re-encoding may only fail as too large,
//!   leaving the output untouched, and never for protobuf to protobuf (re-encoding
//!   never grows a protobuf request past its frame).

use chat_proto::codec::{EncodeError, detect_format, encode_request};
use chat_proto::frame::Frames;
use chat_proto::{DecodeError, Request, RequestDecoder, WireFormat};

/// Runs every check on one fuzz input.
pub fn check(data: &[u8]) {
    let frames = crate::frames_of(data);
    for format in WireFormat::ALL {
        let answers = decode(Some(format), &frames);
        let expected = match format {
            WireFormat::Json => frames.len(),
            WireFormat::Protobuf => frames.len() / 2,
        };
        assert_eq!(answers.len(), expected, "{format}: answers per frame");
        for answer in &answers {
            match answer {
                Ok(request) => round_trip(format, request),
                Err(e) => assert!(!e.to_string().is_empty()),
            }
        }
    }
    check_detection(&frames);
}

fn decode(format: Option<WireFormat>, frames: &[&[u8]]) -> Vec<Result<Request, DecodeError>> {
    let mut decoder = RequestDecoder::new(format);
    let answers = frames.iter().filter_map(|f| decoder.feed(f)).collect();
    if format.is_some() {
        assert_eq!(decoder.format(), format, "a fixed format never changes");
    }
    answers
}

fn check_detection(frames: &[&[u8]]) {
    let mut detecting = RequestDecoder::new(None);
    let first = frames.iter().position(|f| detect_format(f).is_some());
    let (undetected, rest) = frames.split_at(first.unwrap_or(frames.len()));
    for frame in undetected {
        assert_eq!(detecting.feed(frame), Some(Err(DecodeError::UnknownFormat)));
        assert_eq!(detecting.format(), None);
    }
    let Some(head) = rest.first() else {
        return;
    };
    let format = detect_format(head).expect("found by position");
    let answers: Vec<_> = rest.iter().filter_map(|f| detecting.feed(f)).collect();
    assert_eq!(detecting.format(), Some(format), "detected once, kept");
    assert_eq!(
        answers,
        decode(Some(format), rest),
        "detected = fixed {format}"
    );
}

/// Whether `target` can carry `request` unchanged.
fn fits(target: WireFormat, request: &Request) -> bool {
    match (target, request) {
        (WireFormat::Protobuf, Request::JoinRoom { room_id }) => i32::try_from(*room_id).is_ok(),
        _ => true,
    }
}

fn round_trip(format: WireFormat, request: &Request) {
    for target in WireFormat::ALL {
        if target != format && !fits(target, request) {
            continue;
        }
        const MARK: u8 = 0xa5;
        let mut out = vec![MARK];
        match encode_request(target, request, &mut out) {
            Ok(()) => {
                let wire = &out[1..];
                let mut frames = Frames::new(wire);
                let payloads: Vec<&[u8]> = frames.by_ref().collect();
                assert_eq!(frames.consumed(), wire.len(), "{target}: whole frames");
                let per_message = match target {
                    WireFormat::Json => 1,
                    WireFormat::Protobuf => 2,
                };
                assert_eq!(payloads.len(), per_message, "{target}: frames per message");
                for detect in [None, Some(target)] {
                    assert_eq!(
                        decode(detect, &payloads),
                        vec![Ok(request.clone())],
                        "{format} -> {target} (detect: {detect:?}) round trip"
                    );
                }
            }
            Err(EncodeError::TooLarge(_)) => {
                assert_eq!(out, [MARK], "{target}: a failed encode leaves nothing");
                assert!(
                    !(format == WireFormat::Protobuf && target == WireFormat::Protobuf),
                    "a decoded protobuf request always fits a frame again: {request:?}"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_inputs() {
        for data in [
            &b""[..],
            b"\x00\x00",
            b"\x00\x02\x08\x03\x00\x02\x08\xff",
            b"\x00\x02{}",
            b"\x00\x01x\x00\x02[]",
        ] {
            check(data);
        }
    }
}
