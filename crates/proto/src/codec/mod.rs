//! Codecs: frames ↔ typed messages, in either wire format.
//!
//! * [`WireFormat`] names the two formats and [`detect_format`] tells them apart from a
//!   connection's first frame (JSON starts with `{`, protobuf with a `Type` frame whose
//!   first byte is `0x08`).
//! * [`encode_request`] / [`encode_response`] append whole frames to a buffer: one frame
//!   in JSON, a `Type` frame plus a body frame in protobuf.
//! * [`RequestDecoder`] / [`ResponseDecoder`] are fed one frame payload at a time and
//!   answer a message when one is complete. They carry the only state a format needs:
//!   protobuf's "a `Type` frame was seen, its body comes next".
//!
//! Decoding never panics on any input; every problem is a [`DecodeError`] whose
//! `Display` is a sentence a user can read (in Korean, like the rest of the protocol),
//! suitable for an `SCSystemMessage`.

mod json;
pub mod protobuf;

use std::fmt;

use crate::frame::{self, FrameTooLarge};
use crate::message::{Request, Response, is_disruptive};

/// The two wire formats of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireFormat {
    /// One frame per message holding a UTF-8 JSON object with a `"type"` key.
    Json,
    /// Two frames per message: a `Type` frame, then the body.
    Protobuf,
}

impl WireFormat {
    /// Both formats, for tables indexed by format.
    pub const ALL: [WireFormat; 2] = [WireFormat::Json, WireFormat::Protobuf];

    /// The lower-case name used by command-line flags (`json`, `protobuf`).
    pub const fn name(self) -> &'static str {
        match self {
            WireFormat::Json => "json",
            WireFormat::Protobuf => "protobuf",
        }
    }

    /// A dense index (0 for JSON, 1 for protobuf).
    pub const fn index(self) -> usize {
        match self {
            WireFormat::Json => 0,
            WireFormat::Protobuf => 1,
        }
    }
}

impl fmt::Display for WireFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Guesses the format of a connection from its first frame's payload.
///
/// JSON: the first non-whitespace byte is `{`. Protobuf: the first frame is always a
/// `Type` message, whose only field is tag 1 as a varint, i.e. the byte `0x08`.
pub fn detect_format(first_payload: &[u8]) -> Option<WireFormat> {
    match first_payload
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    {
        Some(b'{') => Some(WireFormat::Json),
        _ if first_payload.first() == Some(&0x08) => Some(WireFormat::Protobuf),
        _ => None,
    }
}

/// Why a frame could not be turned into a message.
///
/// `Display` gives the text to send back to the peer in an `SCSystemMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The first frame is neither JSON nor a protobuf `Type` frame.
    UnknownFormat,
    /// A binary WebSocket message: the web side carries JSON text messages only.
    BinaryMessage,
    /// The payload is not valid JSON (or not UTF-8); carries the parser's words.
    InvalidJson(String),
    /// Valid JSON, but not an object.
    NotAnObject,
    /// A JSON object without a string `"type"`.
    MissingType,
    /// A message type this side does not accept (a JSON `type` string, or a protobuf
    /// type number). Shown through [`echo`]: sanitised and cut to
    /// [`MAX_ECHO_CHARS`].
    UnknownType(String),
    /// A protobuf `Type` frame that does not decode. Its body frame is skipped.
    InvalidTypeFrame(String),
    /// A message body that does not decode (includes strings that are not UTF-8).
    InvalidBody {
        /// The message type, as named on the wire (`CSChat`).
        message: &'static str,
        /// The decoder's own words.
        detail: String,
    },
    /// A required field is absent.
    MissingField {
        /// The message type, as named on the wire (`CSJoinRoom`).
        message: &'static str,
        /// The field, as named on the wire (`roomId`).
        field: &'static str,
    },
    /// A field is present with the wrong JSON type.
    WrongFieldType {
        /// The message type, as named on the wire (`CSJoinRoom`).
        message: &'static str,
        /// The field, as named on the wire (`roomId`).
        field: &'static str,
        /// The JSON type the field must have, in the user's words (`정수`).
        expected: &'static str,
    },
}

/// The most characters of a client's own text (an unknown `type`) echoed back in an
/// error reply.
pub const MAX_ECHO_CHARS: usize = 32;
/// The most characters of a decoder's description echoed back in an error reply.
const MAX_DETAIL_CHARS: usize = 120;

/// `text` made safe to send back to the client that sent it: control and bidi
/// characters become U+FFFD (an echo must not drive the client's terminal), and
/// anything past `max` characters becomes `…` (an echo must fit a frame, and cannot be
/// made to cost more than a short reply).
pub fn echo(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if is_disruptive(c) { '\u{FFFD}' } else { c })
        .collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Everything of the client's that goes back is passed through `echo`.
        match self {
            DecodeError::UnknownFormat => {
                f.write_str("잘못된 메시지입니다: JSON 도 protobuf 도 아닌 형식입니다.")
            }
            DecodeError::BinaryMessage => f.write_str(
                "잘못된 메시지입니다: 바이너리 메시지는 받지 않습니다. JSON 텍스트 메시지로 보내 주세요.",
            ),
            DecodeError::InvalidJson(detail) => {
                let detail = echo(detail, MAX_DETAIL_CHARS);
                write!(
                    f,
                    "잘못된 메시지입니다: JSON 으로 해석할 수 없습니다 ({detail})."
                )
            }
            DecodeError::NotAnObject => f.write_str("잘못된 메시지입니다: JSON 객체가 아닙니다."),
            DecodeError::MissingType => {
                f.write_str("잘못된 메시지입니다: 문자열 type 필드가 없습니다.")
            }
            DecodeError::UnknownType(kind) => {
                let kind = echo(kind, MAX_ECHO_CHARS);
                write!(
                    f,
                    "잘못된 메시지입니다: 알 수 없는 메시지 종류 {kind} 입니다."
                )
            }
            DecodeError::InvalidTypeFrame(detail) => write!(
                f,
                "잘못된 메시지입니다: Type 프레임을 해석할 수 없습니다 ({}).",
                echo(detail, MAX_DETAIL_CHARS)
            ),
            DecodeError::InvalidBody { message, detail } => write!(
                f,
                "잘못된 메시지입니다: {message} 본문을 해석할 수 없습니다 ({}).",
                echo(detail, MAX_DETAIL_CHARS)
            ),
            DecodeError::MissingField { message, field } => {
                write!(
                    f,
                    "잘못된 메시지입니다: {message} 에 {field} 필드가 없습니다."
                )
            }
            DecodeError::WrongFieldType {
                message,
                field,
                expected,
            } => write!(
                f,
                "잘못된 메시지입니다: {message} 의 {field} 필드는 {expected} 이어야 합니다."
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Why a message could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The encoded message does not fit in one frame.
    TooLarge(FrameTooLarge),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::TooLarge(e) => write!(f, "message too large to send: {e}"),
        }
    }
}

impl std::error::Error for EncodeError {}

impl From<FrameTooLarge> for EncodeError {
    fn from(e: FrameTooLarge) -> Self {
        EncodeError::TooLarge(e)
    }
}

/// Appends `request` to `out` as whole frames.
///
/// JSON is written the way the reference client's `json.dumps` writes it (`", "` and
/// `": "` separators, every non-ASCII character as a `\uXXXX` escape), so that a Rust
/// client's bytes match the reference client's. On error `out` is left as it was.
pub fn encode_request(
    format: WireFormat,
    request: &Request,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let mark = out.len();
    let result = match format {
        WireFormat::Json => json_frame(out, |out| json::encode_request(request, out)),
        WireFormat::Protobuf => protobuf::encode_request(request, out),
    };
    if result.is_err() {
        out.truncate(mark);
    }
    result
}

/// Appends `response` to `out` as whole frames. JSON strings are raw UTF-8.
///
/// On error `out` is left as it was.
pub fn encode_response(
    format: WireFormat,
    response: &Response<'_>,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    out.reserve(size_hint(response));
    let mark = out.len();
    let result = match format {
        WireFormat::Json => json_frame(out, |out| json::encode_response(response, out)),
        WireFormat::Protobuf => protobuf::encode_response(response, out),
    };
    if result.is_err() {
        out.truncate(mark);
    }
    result
}

/// Room for the frames of `response` in either format, for the common case: a line
/// or a notice (one allocation instead of a vector doubling from 8 bytes up to the
/// frame's size, twice per chat). Its strings plus [`FIXED_HINT`] bytes of keys, type
/// and headers; text that JSON escapes still fits after a regrowth. Lists (rooms,
/// history pages) are not counted: rare, and their strings are many.
fn size_hint(response: &Response<'_>) -> usize {
    let strings = match response {
        Response::SystemMessage { text } => text.len(),
        Response::Chat { member, text }
        | Response::TimedChat { member, text, .. }
        | Response::Direct { member, text, .. } => member.len() + text.len(),
        Response::Topic { topic, by, .. } => topic.len() + by.len(),
        Response::Session { token, .. } => token.len(),
        Response::RoomsResult { .. } | Response::Hello { .. } | Response::History { .. } => 0,
    };
    FIXED_HINT + strings
}

/// The bytes of a line's frames besides its strings: JSON's
/// `{"type": "SCChat", "member": "", "text": "", "seq": …, "time": …}` with its
/// header is at most 103 (both numbers at their widest); protobuf's type frame and
/// fields are under 40.
const FIXED_HINT: usize = 112;

fn json_frame(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) -> Result<(), EncodeError> {
    let start = frame::begin_frame(out);
    write(out);
    Ok(frame::finish_frame(out, start)?)
}

/// Protobuf's pairing of a `Type` frame with the body frame that follows it.
#[derive(Debug, Default)]
struct TypeThenBody {
    /// The decoded `Type` frame, once seen; the next frame is its body.
    pending: Option<Result<i32, DecodeError>>,
}

impl TypeThenBody {
    /// Takes one frame; answers the type and the body once both have arrived.
    fn feed<'f>(&mut self, frame: &'f [u8]) -> Option<(Result<i32, DecodeError>, &'f [u8])> {
        match self.pending.take() {
            None => {
                self.pending = Some(protobuf::decode_type(frame));
                None
            }
            Some(kind) => Some((kind, frame)),
        }
    }
}

/// Turns a client's frames into [`Request`]s (the server's side).
#[derive(Debug)]
pub struct RequestDecoder {
    format: Option<WireFormat>,
    pairing: TypeThenBody,
}

impl RequestDecoder {
    /// A decoder for `format`, or one that detects the format from the first frame
    /// (`None`).
    pub fn new(format: Option<WireFormat>) -> Self {
        Self {
            format,
            pairing: TypeThenBody::default(),
        }
    }

    /// The connection's format, once known.
    pub fn format(&self) -> Option<WireFormat> {
        self.format
    }

    /// Feeds one frame payload. Answers `None` while a protobuf message is half
    /// received, else the request or why it is invalid. After a bad protobuf `Type`
    /// frame the next frame is consumed as its body, keeping the stream in step.
    pub fn feed(&mut self, payload: &[u8]) -> Option<Result<Request, DecodeError>> {
        let format = match self.format {
            Some(format) => format,
            None => match detect_format(payload) {
                Some(format) => *self.format.insert(format),
                None => return Some(Err(DecodeError::UnknownFormat)),
            },
        };
        match format {
            WireFormat::Json => Some(json::decode_request(payload)),
            WireFormat::Protobuf => {
                let (kind, body) = self.pairing.feed(payload)?;
                Some(kind.and_then(|kind| protobuf::decode_request(kind, body)))
            }
        }
    }
}

/// Turns a server's frames into [`Response`]s (a client's side).
#[derive(Debug)]
pub struct ResponseDecoder {
    format: WireFormat,
    pairing: TypeThenBody,
}

impl ResponseDecoder {
    /// A decoder for a server speaking `format`.
    pub fn new(format: WireFormat) -> Self {
        Self {
            format,
            pairing: TypeThenBody::default(),
        }
    }

    /// Feeds one frame payload; answers `None` while a protobuf message is half
    /// received. A JSON message's strings borrow from `payload` where they can (call
    /// [`Response::into_owned`] to keep it).
    pub fn feed<'p>(&mut self, payload: &'p [u8]) -> Option<Result<Response<'p>, DecodeError>> {
        match self.format {
            WireFormat::Json => Some(json::decode_response(payload)),
            WireFormat::Protobuf => {
                let (kind, body) = self.pairing.feed(payload)?;
                Some(kind.and_then(|kind| protobuf::decode_response(kind, body)))
            }
        }
    }
}

#[cfg(test)]
mod tests;
