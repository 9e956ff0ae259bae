//! The JSON format: one UTF-8 JSON object per frame, with a `"type"` key.
//!
//! Decoding accepts any valid JSON (escapes, surrogate pairs, extra keys, any key
//! order). Encoding is hand-written for our few fixed shapes: it is faster than a
//! generic serializer and lets requests match Python's `json.dumps` byte for byte.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::DecodeError;
use crate::message::{HistoryLine, Request, RequestKind, Response, RoomInfo};

/// Every key any message uses. Unknown keys are ignored; `null` counts as absent.
///
/// Decoding is one pass with no allocation for a string without escapes: scalar
/// fields borrow from the frame ([`Field`]). That matters to a client: a load
/// generator decodes every delivery of a thousand-member room. Only `rooms`, a
/// nested list in a rare message, is read into a [`Value`].
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Field<'a>>,
    #[serde(borrow)]
    name: Option<Field<'a>>,
    #[serde(borrow)]
    title: Option<Field<'a>>,
    #[serde(rename = "roomId", borrow)]
    room_id: Option<Field<'a>>,
    #[serde(borrow)]
    text: Option<Field<'a>>,
    #[serde(borrow)]
    member: Option<Field<'a>>,
    rooms: Option<Value>,
    features: Option<Value>,
    #[serde(borrow)]
    server: Option<Field<'a>>,
    #[serde(borrow)]
    password: Option<Field<'a>>,
    #[serde(borrow)]
    old: Option<Field<'a>>,
    #[serde(borrow)]
    new: Option<Field<'a>>,
    #[serde(borrow)]
    count: Option<Field<'a>>,
    #[serde(borrow)]
    before: Option<Field<'a>>,
    #[serde(borrow)]
    seq: Option<Field<'a>>,
    #[serde(borrow)]
    time: Option<Field<'a>>,
    lines: Option<Value>,
    more: Option<Value>,
    #[serde(borrow)]
    token: Option<Field<'a>>,
    #[serde(borrow)]
    expires: Option<Field<'a>>,
    ignore: Option<Value>,
    outgoing: Option<Value>,
    op: Option<Value>,
    #[serde(borrow)]
    reason: Option<Field<'a>>,
    #[serde(borrow)]
    minutes: Option<Field<'a>>,
    ban: Option<Value>,
    #[serde(borrow)]
    topic: Option<Field<'a>>,
    #[serde(borrow)]
    by: Option<Field<'a>>,
}

/// One key's value, kept only as far as a message needs it: a string (borrowed from
/// the frame unless it had escapes), a number as JSON gave it, or the note that it
/// was something else, so that a wrong type gets its own error.
enum Field<'a> {
    Str(Cow<'a, str>),
    Number(serde_json::Number),
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for Field<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FieldVisitor(std::marker::PhantomData))
    }
}

struct FieldVisitor<'a>(std::marker::PhantomData<Field<'a>>);

impl<'de: 'a, 'a> Visitor<'de> for FieldVisitor<'a> {
    type Value = Field<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Field::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Field::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Field::Str(Cow::Owned(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Field::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Field::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // JSON has no NaN or infinity, so `from_f64` only fails for what cannot occur.
        Ok(serde_json::Number::from_f64(v).map_or(Field::Other, Field::Number))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Field::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Field::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Field::Other)
    }
}

fn parse_envelope(payload: &[u8]) -> Result<(Envelope<'_>, Cow<'_, str>), DecodeError> {
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
    let mut envelope: Envelope<'_> =
        serde_json::from_slice(payload).map_err(|e| DecodeError::InvalidJson(e.to_string()))?;
    // An empty type counts as none, as in the reference client (`if not msg_type`).
    let kind = match envelope.kind.take() {
        Some(Field::Str(kind)) if !kind.is_empty() => kind,
        _ => return Err(DecodeError::MissingType),
    };
    Ok((envelope, kind))
}

fn string_field<'a>(
    value: Option<Field<'a>>,
    message: &'static str,
    field: &'static str,
) -> Result<Cow<'a, str>, DecodeError> {
    match value {
        Some(Field::Str(s)) => Ok(s),
        None => Err(DecodeError::MissingField { message, field }),
        Some(_) => Err(DecodeError::WrongFieldType {
            message,
            field,
            expected: "문자열",
        }),
    }
}

/// An optional string: absent (or `null`) is empty, as protobuf's default.
fn optional_string_field<'a>(
    value: Option<Field<'a>>,
    message: &'static str,
    field: &'static str,
) -> Result<Cow<'a, str>, DecodeError> {
    match value {
        None => Ok(Cow::Borrowed("")),
        value => string_field(value, message, field),
    }
}

/// An optional boolean: absent (or `null`) is false, as protobuf's default.
fn bool_field(
    value: Option<Value>,
    message: &'static str,
    field: &'static str,
) -> Result<bool, DecodeError> {
    match value {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(b),
        Some(_) => Err(DecodeError::WrongFieldType {
            message,
            field,
            expected: "true 또는 false",
        }),
    }
}

/// An integer of any size, saturated to `i64`.
fn integer_field(
    value: Option<Field<'_>>,
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
        Some(Field::Number(n)) => number_to_integer(&n).ok_or_else(wrong),
        Some(_) => Err(wrong()),
    }
}

/// A JSON number as an integer saturated to `i64`; `None` when it has a fraction.
fn number_to_integer(n: &serde_json::Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        Some(i)
    } else if n.as_u64().is_some() {
        Some(i64::MAX)
    } else {
        // Integers beyond u64 arrive as floats; `as` saturates, which is what we want
        // (no room has such an id). Non-integral numbers are refused.
        let f = n.as_f64()?;
        (f.is_finite() && f.fract() == 0.0).then_some(f as i64)
    }
}

pub(super) fn decode_request(payload: &[u8]) -> Result<Request, DecodeError> {
    let (envelope, kind) = parse_envelope(payload)?;
    let kind = RequestKind::ALL
        .into_iter()
        .find(|k| k.name() == kind)
        .ok_or_else(|| DecodeError::UnknownType(kind.into_owned()))?;
    let message = kind.name();
    Ok(match kind {
        RequestKind::Name => Request::Name {
            name: string_field(envelope.name, message, "name")?.into_owned(),
        },
        RequestKind::Rooms => Request::Rooms,
        RequestKind::CreateRoom => Request::CreateRoom {
            title: string_field(envelope.title, message, "title")?.into_owned(),
        },
        RequestKind::JoinRoom => Request::JoinRoom {
            room_id: integer_field(envelope.room_id, message, "roomId")?,
        },
        RequestKind::LeaveRoom => Request::LeaveRoom,
        RequestKind::Chat => Request::Chat {
            text: string_field(envelope.text, message, "text")?.into_owned(),
        },
        RequestKind::Shutdown => Request::Shutdown,
        RequestKind::Hello => Request::Hello {
            features: string_list(envelope.features, message, "features")?,
        },
        RequestKind::Register => Request::Register {
            password: string_field(envelope.password, message, "password")?.into_owned(),
        },
        RequestKind::Login => Request::Login {
            name: string_field(envelope.name, message, "name")?.into_owned(),
            password: string_field(envelope.password, message, "password")?.into_owned(),
        },
        RequestKind::Logout => Request::Logout,
        RequestKind::ChangePassword => Request::ChangePassword {
            old: string_field(envelope.old, message, "old")?.into_owned(),
            new: string_field(envelope.new, message, "new")?.into_owned(),
        },
        RequestKind::History => Request::History {
            count: envelope
                .count
                .map(|c| integer_field(Some(c), message, "count"))
                .transpose()?,
            before: envelope
                .before
                .map(|b| integer_field(Some(b), message, "before"))
                .transpose()?,
        },
        RequestKind::DeleteRoom => Request::DeleteRoom {
            room_id: integer_field(envelope.room_id, message, "roomId")?,
        },
        RequestKind::Resume => Request::Resume {
            name: string_field(envelope.name, message, "name")?.into_owned(),
            token: string_field(envelope.token, message, "token")?.into_owned(),
        },
        RequestKind::Direct => Request::Direct {
            name: string_field(envelope.name, message, "name")?.into_owned(),
            text: string_field(envelope.text, message, "text")?.into_owned(),
        },
        RequestKind::Ignore => Request::Ignore {
            name: string_field(envelope.name, message, "name")?.into_owned(),
            ignore: bool_field(envelope.ignore, message, "ignore")?,
        },
        RequestKind::Op => Request::Op {
            name: string_field(envelope.name, message, "name")?.into_owned(),
            op: bool_field(envelope.op, message, "op")?,
        },
        RequestKind::Owner => Request::Owner {
            name: string_field(envelope.name, message, "name")?.into_owned(),
        },
        RequestKind::Kick => Request::Kick {
            name: string_field(envelope.name, message, "name")?.into_owned(),
            reason: optional_string_field(envelope.reason, message, "reason")?.into_owned(),
        },
        RequestKind::Ban => Request::Ban {
            name: string_field(envelope.name, message, "name")?.into_owned(),
            minutes: envelope
                .minutes
                .map(|m| integer_field(Some(m), message, "minutes"))
                .transpose()?,
            ban: bool_field(envelope.ban, message, "ban")?,
        },
        RequestKind::Topic => Request::Topic {
            text: string_field(envelope.text, message, "text")?.into_owned(),
        },
    })
}

/// A list of strings (absent or `null`: empty, as for a repeated protobuf field).
fn string_list(
    value: Option<Value>,
    message: &'static str,
    field: &'static str,
) -> Result<Vec<String>, DecodeError> {
    let wrong = || DecodeError::WrongFieldType {
        message,
        field,
        expected: "문자열의 배열",
    };
    match value {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                _ => Err(wrong()),
            })
            .collect(),
        Some(_) => Err(wrong()),
    }
}

/// Decodes a server's message; its strings borrow from `payload` where they can.
pub(super) fn decode_response(payload: &[u8]) -> Result<Response<'_>, DecodeError> {
    let (envelope, kind) = parse_envelope(payload)?;
    Ok(match &*kind {
        "SCSystemMessage" => Response::SystemMessage {
            text: string_field(envelope.text, "SCSystemMessage", "text")?,
        },
        "SCChat" => {
            let member = string_field(envelope.member, "SCChat", "member")?;
            let text = string_field(envelope.text, "SCChat", "text")?;
            match (envelope.seq, envelope.time) {
                (Some(seq), Some(time)) => Response::TimedChat {
                    member,
                    text,
                    seq: integer_field(Some(seq), "SCChat", "seq")?,
                    time: integer_field(Some(time), "SCChat", "time")?,
                },
                _ => Response::Chat { member, text },
            }
        }
        "SCHistory" => Response::History {
            room_id: integer_field(envelope.room_id, "SCHistory", "roomId")?,
            lines: decode_history_lines(envelope.lines)?,
            more: matches!(envelope.more, Some(Value::Bool(true))),
        },
        "SCRoomsResult" => Response::RoomsResult {
            rooms: decode_rooms(envelope.rooms)?,
        },
        "SCHello" => Response::Hello {
            features: string_list(envelope.features, "SCHello", "features")?,
            server: string_field(envelope.server, "SCHello", "server")?,
        },
        "SCSession" => Response::Session {
            token: string_field(envelope.token, "SCSession", "token")?,
            expires: integer_field(envelope.expires, "SCSession", "expires")?,
        },
        "SCDirect" => Response::Direct {
            member: string_field(envelope.member, "SCDirect", "member")?,
            text: string_field(envelope.text, "SCDirect", "text")?,
            time: integer_field(envelope.time, "SCDirect", "time")?,
            outgoing: bool_field(envelope.outgoing, "SCDirect", "outgoing")?,
        },
        "SCTopic" => Response::Topic {
            room_id: integer_field(envelope.room_id, "SCTopic", "roomId")?,
            topic: string_field(envelope.topic, "SCTopic", "topic")?,
            by: optional_string_field(envelope.by, "SCTopic", "by")?,
        },
        _ => return Err(DecodeError::UnknownType(kind.into_owned())),
    })
}

fn decode_history_lines(value: Option<Value>) -> Result<Vec<HistoryLine>, DecodeError> {
    const MESSAGE: &str = "SCHistory";
    let wrong = || DecodeError::WrongFieldType {
        message: MESSAGE,
        field: "lines",
        expected: "객체의 배열",
    };
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Value::Array(lines) = value else {
        return Err(wrong());
    };
    lines
        .into_iter()
        .map(|line| {
            let Value::Object(mut line) = line else {
                return Err(wrong());
            };
            Ok(HistoryLine {
                seq: integer_field(nested_field(line.remove("seq")), MESSAGE, "seq")?,
                time: integer_field(nested_field(line.remove("time")), MESSAGE, "time")?,
                member: string_field(nested_field(line.remove("member")), MESSAGE, "member")?
                    .into_owned(),
                text: string_field(nested_field(line.remove("text")), MESSAGE, "text")?
                    .into_owned(),
            })
        })
        .collect()
}

/// A nested value as a [`Field`]: inside `rooms` a `null` is a wrong type, not an
/// absent key (only top-level keys may be `null`).
fn nested_field(value: Option<Value>) -> Option<Field<'static>> {
    value.map(|value| match value {
        Value::String(s) => Field::Str(Cow::Owned(s)),
        Value::Number(n) => Field::Number(n),
        _ => Field::Other,
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
            let room_id = integer_field(nested_field(room.remove("roomId")), MESSAGE, "roomId")?;
            let title =
                string_field(nested_field(room.remove("title")), MESSAGE, "title")?.into_owned();
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
            // Optional (the `moderation` extension): absent is none, but a `null` here
            // is a wrong type like any other nested one.
            let topic = room
                .remove("topic")
                .map(|topic| string_field(nested_field(Some(topic)), MESSAGE, "topic"))
                .transpose()?
                .map(Cow::into_owned);
            Ok(RoomInfo {
                room_id,
                title,
                members,
                topic,
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

fn string_list_member(out: &mut Vec<u8>, key: &str, values: &[String], escape: Escape) {
    out.extend_from_slice(b", \"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\": [");
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        write_string(out, value, escape);
    }
    out.push(b']');
}

pub(super) fn encode_request(request: &Request, out: &mut Vec<u8>) {
    open(out, request.kind().name());
    match request {
        Request::Name { name } => string_member(out, "name", name, Escape::Ascii),
        Request::CreateRoom { title } => string_member(out, "title", title, Escape::Ascii),
        Request::JoinRoom { room_id } | Request::DeleteRoom { room_id } => {
            out.extend_from_slice(b", \"roomId\": ");
            out.extend_from_slice(room_id.to_string().as_bytes());
        }
        Request::Chat { text } => string_member(out, "text", text, Escape::Ascii),
        Request::Hello { features } => string_list_member(out, "features", features, Escape::Ascii),
        Request::Register { password } => string_member(out, "password", password, Escape::Ascii),
        Request::Login { name, password } => {
            string_member(out, "name", name, Escape::Ascii);
            string_member(out, "password", password, Escape::Ascii);
        }
        Request::Resume { name, token } => {
            string_member(out, "name", name, Escape::Ascii);
            string_member(out, "token", token, Escape::Ascii);
        }
        Request::Direct { name, text } => {
            string_member(out, "name", name, Escape::Ascii);
            string_member(out, "text", text, Escape::Ascii);
        }
        Request::Ignore { name, ignore } => {
            string_member(out, "name", name, Escape::Ascii);
            out.extend_from_slice(format!(", \"ignore\": {ignore}").as_bytes());
        }
        Request::Op { name, op } => {
            string_member(out, "name", name, Escape::Ascii);
            out.extend_from_slice(format!(", \"op\": {op}").as_bytes());
        }
        Request::Owner { name } => string_member(out, "name", name, Escape::Ascii),
        Request::Kick { name, reason } => {
            string_member(out, "name", name, Escape::Ascii);
            string_member(out, "reason", reason, Escape::Ascii);
        }
        Request::Ban { name, minutes, ban } => {
            string_member(out, "name", name, Escape::Ascii);
            if let Some(minutes) = minutes {
                out.extend_from_slice(format!(", \"minutes\": {minutes}").as_bytes());
            }
            out.extend_from_slice(format!(", \"ban\": {ban}").as_bytes());
        }
        Request::Topic { text } => string_member(out, "text", text, Escape::Ascii),
        Request::ChangePassword { old, new } => {
            string_member(out, "old", old, Escape::Ascii);
            string_member(out, "new", new, Escape::Ascii);
        }
        Request::History { count, before } => {
            for (key, value) in [("count", count), ("before", before)] {
                if let Some(value) = value {
                    out.extend_from_slice(format!(", \"{key}\": {value}").as_bytes());
                }
            }
        }
        Request::Rooms | Request::LeaveRoom | Request::Shutdown | Request::Logout => {}
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
                out.push(b']');
                // Only when set, so a listing without topics keeps its old bytes.
                if let Some(topic) = &room.topic {
                    string_member(out, "topic", topic, Escape::Utf8);
                }
                out.push(b'}');
            }
            out.push(b']');
        }
        Response::Hello { features, server } => {
            string_list_member(out, "features", features, Escape::Utf8);
            string_member(out, "server", server, Escape::Utf8);
        }
        Response::Session { token, expires } => {
            string_member(out, "token", token, Escape::Utf8);
            out.extend_from_slice(format!(", \"expires\": {expires}").as_bytes());
        }
        Response::Direct {
            member,
            text,
            time,
            outgoing,
        } => {
            string_member(out, "member", member, Escape::Utf8);
            string_member(out, "text", text, Escape::Utf8);
            out.extend_from_slice(
                format!(", \"time\": {time}, \"outgoing\": {outgoing}").as_bytes(),
            );
        }
        Response::Topic { room_id, topic, by } => {
            out.extend_from_slice(format!(", \"roomId\": {room_id}").as_bytes());
            string_member(out, "topic", topic, Escape::Utf8);
            string_member(out, "by", by, Escape::Utf8);
        }
        Response::TimedChat {
            member,
            text,
            seq,
            time,
        } => {
            string_member(out, "member", member, Escape::Utf8);
            string_member(out, "text", text, Escape::Utf8);
            out.extend_from_slice(format!(", \"seq\": {seq}, \"time\": {time}").as_bytes());
        }
        Response::History {
            room_id,
            lines,
            more,
        } => {
            out.extend_from_slice(format!(", \"roomId\": {room_id}, \"lines\": [").as_bytes());
            for (i, line) in lines.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                out.extend_from_slice(
                    format!("{{\"seq\": {}, \"time\": {}", line.seq, line.time).as_bytes(),
                );
                string_member(out, "member", &line.member, Escape::Utf8);
                string_member(out, "text", &line.text, Escape::Utf8);
                out.push(b'}');
            }
            out.extend_from_slice(format!("], \"more\": {more}").as_bytes());
        }
    }
    out.push(b'}');
}
