//! `ResponseDecoder` on arbitrary frames, in both formats.
//!
//! # Input layout
//!
//! The input is a byte stream; its complete frames (see [`crate::frames_of`]) are fed
//! one by one to a JSON and a protobuf decoder. Any wire bytes a server could send are
//! a valid seed.
//!
//! # Properties
//!
//! * Nothing panics, and every error's `Display` works.
//! * JSON answers once per frame, protobuf once per two frames.
//! * Every response that decodes re-encodes, in its own format and in the other one
//!   when it fits (protobuf's room ids are `int32`), to whole frames that decode to the
//!   same response. Re-encoding may only fail as too large, leaving the output
//!   untouched (it can grow: a protobuf room without a title is re-encoded with an
//!   empty one, JSON gains `", "` separators).

use chat_proto::codec::{EncodeError, encode_response};
use chat_proto::frame::Frames;
use chat_proto::{DecodeError, Response, ResponseDecoder, WireFormat};

/// Runs every check on one fuzz input.
pub fn check(data: &[u8]) {
    let frames = crate::frames_of(data);
    for format in WireFormat::ALL {
        let answers = decode(format, &frames);
        let expected = match format {
            WireFormat::Json => frames.len(),
            WireFormat::Protobuf => frames.len() / 2,
        };
        assert_eq!(answers.len(), expected, "{format}: answers per frame");
        for answer in &answers {
            match answer {
                Ok(response) => round_trip(format, response),
                Err(e) => assert!(!e.to_string().is_empty()),
            }
        }
    }
}

fn decode(format: WireFormat, frames: &[&[u8]]) -> Vec<Result<Response<'static>, DecodeError>> {
    let mut decoder = ResponseDecoder::new(format);
    frames
        .iter()
        .filter_map(|f| decoder.feed(f))
        .map(|r| r.map(Response::into_owned))
        .collect()
}

/// Whether `target` can carry `response` unchanged.
fn fits(target: WireFormat, response: &Response<'_>) -> bool {
    match (target, response) {
        (WireFormat::Protobuf, Response::RoomsResult { rooms }) => {
            rooms.iter().all(|room| i32::try_from(room.room_id).is_ok())
        }
        _ => true,
    }
}

fn round_trip(format: WireFormat, response: &Response<'static>) {
    for target in WireFormat::ALL {
        if target != format && !fits(target, response) {
            continue;
        }
        const MARK: u8 = 0xa5;
        let mut out = vec![MARK];
        match encode_response(target, response, &mut out) {
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
                assert_eq!(
                    decode(target, &payloads),
                    vec![Ok(response.clone())],
                    "{format} -> {target} round trip"
                );
            }
            Err(EncodeError::TooLarge(_)) => {
                assert_eq!(out, [MARK], "{target}: a failed encode leaves nothing");
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
            b"\x00\x02\x08\x07\x00\x04\x0a\x02\x08\x01",
            b"\x00\x02{}",
        ] {
            check(data);
        }
    }
}
