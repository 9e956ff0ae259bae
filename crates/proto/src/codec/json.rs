//! The JSON format: one UTF-8 JSON object per frame, with a `"type"` key.
//!
//! Decoding accepts any valid JSON (escapes, surrogate pairs, extra keys, any key
//! order). Encoding is hand-written for our few fixed shapes: it is faster than a
//! generic serializer and lets requests match Python's `json.dumps` byte for byte.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::DecodeError;
use crate::message::{Request, RequestKind, Response, RoomInfo};

/// Every key any message uses. Unknown keys are ignored; `null` counts as absent.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: Option<Value>,
    name: Option<Value>,
    title: Option<Value>,
    #[serde(rename = "roomId")]
    room_id: Option<Value>,
    text: Option<Value>,
    member: Option<Value>,
    rooms: Option<Value>,
}

fn parse_envelope(payload: &[u8]) -> Result<(Envelope, String), DecodeError> {
    // serde's derive would also read a struct from a JSON array (fields by position);
    // only objects are messages.
    let first = payload.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(payload) {
                Ok(_) => DecodeError::NotAnObject,
                Err(e) => DecodeError::InvalidJson(e.to_string()),
            },
        );
    }
    let envelope: Envelope =
        serde_json::from_slice(payload).map_err(|e| DecodeError::InvalidJson(e.to_string()))?;
    // An empty type counts as none, as in the reference client (`if not msg_type`).
    let kind = match &envelope.kind {
        Some(Value::String(kind)) if !kind.is_empty() => kind.clone(),
        _ => return Err(DecodeError::MissingType),
    };
    Ok((envelope, kind))
}

fn string_field(
    value: Option<Value>,
    message: &'static str,
    field: &'static str,
) -> Result<String, DecodeError> {
    match value {
        Some(Value::String(s)) => Ok(s),
        None => Err(DecodeError::MissingField { message, field }),
        Some(_) => Err(DecodeError::WrongFieldType {
            message,
            field,
            expected: "문자열",
        }),
    }
}

/// An integer of any size, saturated to `i64`.
fn integer_field(
    value: Option<Value>,
    message: &'static str,
    field: &'static str,
) -> Result<i64, DecodeError> {
    let wrong = || DecodeError::WrongFieldType {
        message,
        field,
        expected: "정수",
    };
    match value {
        None => Err(DecodeError::MissingField { message, field }),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Ok(i)
            } else if n.as_u64().is_some() {
                Ok(i64::MAX)
            } else {
                // Integers beyond u64 arrive as floats; `as` saturates, which is what
                // we want (no room has such an id). Non-integral numbers are refused.
                let f = n.as_f64().ok_or_else(wrong)?;
                if f.is_finite() && f.fract() == 0.0 {
                    Ok(f as i64)
                } else {
                    Err(wrong())
                }
            }
        }
        Some(_) => Err(wrong()),
    }
}

pub(super) fn decode_request(payload: &[u8]) -> Result<Request, DecodeError> {
    let (envelope, kind) = parse_envelope(payload)?;
    let kind = RequestKind::ALL
        .into_iter()
        .find(|k| k.name() == kind)
        .ok_or(DecodeError::UnknownType(kind))?;
    let message = kind.name();
    Ok(match kind {
        RequestKind::Name => Request::Name {
            name: string_field(envelope.name, message, "name")?,
        },
        RequestKind::Rooms => Request::Rooms,
        RequestKind::CreateRoom => Request::CreateRoom {
            title: string_field(envelope.title, message, "title")?,
        },
        RequestKind::JoinRoom => Request::JoinRoom {
            room_id: integer_field(envelope.room_id, message, "roomId")?,
        },
        RequestKind::LeaveRoom => Request::LeaveRoom,
        RequestKind::Chat => Request::Chat {
            text: string_field(envelope.text, message, "text")?,
        },
        RequestKind::Shutdown => Request::Shutdown,
    })
}

pub(super) fn decode_response(payload: &[u8]) -> Result<Response<'static>, DecodeError> {
    let (envelope, kind) = parse_envelope(payload)?;
    Ok(match kind.as_str() {
        "SCSystemMessage" => Response::SystemMessage {
            text: Cow::Owned(string_field(envelope.text, "SCSystemMessage", "text")?),
        },
        "SCChat" => Response::Chat {
            member: Cow::Owned(string_field(envelope.member, "SCChat", "member")?),
            text: Cow::Owned(string_field(envelope.text, "SCChat", "text")?),
        },
        "SCRoomsResult" => Response::RoomsResult {
            rooms: decode_rooms(envelope.rooms)?,
        },
        _ => return Err(DecodeError::UnknownType(kind)),
    })
}

fn decode_rooms(value: Option<Value>) -> Result<Vec<RoomInfo>, DecodeError> {
    const MESSAGE: &str = "SCRoomsResult";
    let wrong = |field, expected| DecodeError::WrongFieldType {
        message: MESSAGE,
        field,
        expected,
    };
    // The reference client reads `message.get('rooms', [])`: absent (or null) is an
    // empty list, not an error.
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Value::Array(rooms) = value else {
        return Err(wrong("rooms", "배열"));
    };
    rooms
        .into_iter()
        .map(|room| {
            let Value::Object(mut room) = room else {
                return Err(wrong("rooms", "객체의 배열"));
            };
            let room_id = integer_field(room.remove("roomId"), MESSAGE, "roomId")?;
            let title = string_field(room.remove("title"), MESSAGE, "title")?;
            let members = match room.remove("members") {
                Some(Value::Array(members)) => members
                    .into_iter()
                    .map(|m| match m {
                        Value::String(m) => Ok(m),
                        _ => Err(wrong("members", "문자열의 배열")),
                    })
                    .collect::<Result<_, _>>()?,
                None => {
                    return Err(DecodeError::MissingField {
                        message: MESSAGE,
                        field: "members",
                    });
                }
                Some(_) => return Err(wrong("members", "문자열의 배열")),
            };
            Ok(RoomInfo {
                room_id,
                title,
                members,
            })
        })
        .collect()
}

/// How strings are escaped.
#[derive(Clone, Copy)]
enum Escape {
    /// Like Python's `json.dumps` default: everything outside printable ASCII as
    /// `\uXXXX` (lower-case hex, surrogate pairs above U+FFFF).
    Ascii,
    /// Raw UTF-8; only `"`, `\` and control characters are escaped.
    Utf8,
}

fn write_string(out: &mut Vec<u8>, s: &str, escape: Escape) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let unit = |out: &mut Vec<u8>, u: u16| {
        out.extend_from_slice(b"\\u");
        for shift in [12, 8, 4, 0] {
            out.push(HEX[usize::from((u >> shift) & 0xf)]);
        }
    };
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut clean_from = 0;
    for (i, c) in s.char_indices() {
        let needs_escape = match c {
            '"' | '\\' => true,
            ' '..='~' => false,
            c if (c as u32) < 0x20 => true,
            _ => matches!(escape, Escape::Ascii),
        };
        if !needs_escape {
            continue;
        }
        out.extend_from_slice(&bytes[clean_from..i]);
        clean_from = i + c.len_utf8();
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            c => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    unit(out, *u);
                }
            }
        }
    }
    out.extend_from_slice(&bytes[clean_from..]);
    out.push(b'"');
}

/// Writes `{"type": "<kind>"` — the opening every message shares.
fn open(out: &mut Vec<u8>, kind: &str) {
    out.extend_from_slice(b"{\"type\": \"");
    out.extend_from_slice(kind.as_bytes());
    out.push(b'"');
}

fn string_member(out: &mut Vec<u8>, key: &str, value: &str, escape: Escape) {
    out.extend_from_slice(b", \"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\": ");
    write_string(out, value, escape);
}

pub(super) fn encode_request(request: &Request, out: &mut Vec<u8>) {
    open(out, request.kind().name());
    match request {
        Request::Name { name } => string_member(out, "name", name, Escape::Ascii),
        Request::CreateRoom { title } => string_member(out, "title", title, Escape::Ascii),
        Request::JoinRoom { room_id } => {
            out.extend_from_slice(b", \"roomId\": ");
            out.extend_from_slice(room_id.to_string().as_bytes());
        }
        Request::Chat { text } => string_member(out, "text", text, Escape::Ascii),
        Request::Rooms | Request::LeaveRoom | Request::Shutdown => {}
    }
    out.push(b'}');
}

pub(super) fn encode_response(response: &Response<'_>, out: &mut Vec<u8>) {
    open(out, response.type_name());
    match response {
        Response::SystemMessage { text } => string_member(out, "text", text, Escape::Utf8),
        Response::Chat { member, text } => {
            string_member(out, "member", member, Escape::Utf8);
            string_member(out, "text", text, Escape::Utf8);
        }
        Response::RoomsResult { rooms } => {
            out.extend_from_slice(b", \"rooms\": [");
            for (i, room) in rooms.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                out.extend_from_slice(b"{\"roomId\": ");
                out.extend_from_slice(room.room_id.to_string().as_bytes());
                string_member(out, "title", &room.title, Escape::Utf8);
                out.extend_from_slice(b", \"members\": [");
                for (j, member) in room.members.iter().enumerate() {
                    if j > 0 {
                        out.extend_from_slice(b", ");
                    }
                    write_string(out, member, Escape::Utf8);
                }
                out.extend_from_slice(b"]}");
            }
            out.push(b']');
        }
    }
    out.push(b'}');
}
