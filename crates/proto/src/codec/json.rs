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

/// Every key any message uses. Unknown keys are ignored; `null` counts as absent; a
/// key given twice is an error (as serde's derive would have it).
///
/// Decoding is one pass with no allocation for a string without escapes: scalar
/// fields borrow from the frame ([`Field`]). That matters to a client: a load
/// generator decodes every delivery of a thousand-member room. Only nested values
/// (`rooms`, `lines`, `features`) are read into a [`Value`].
///
/// The keys of the messages sent most (chats, names, rooms, system messages) are
/// kept inline and the rest in [`Rare`], allocated only when a rare key appears:
/// the envelope is built and returned by value for every frame, and with every key
/// inline it was a kilobyte copied several times per frame — a third of a load
/// generator's time in a room of 200.
#[derive(Default)]
struct Envelope<'a> {
    kind: Option<Field<'a>>,
    name: Option<Field<'a>>,
    title: Option<Field<'a>>,
    room_id: Option<Field<'a>>,
    text: Option<Field<'a>>,
    member: Option<Field<'a>>,
    seq: Option<Field<'a>>,
    time: Option<Field<'a>>,
    rare: Option<Box<Rare<'a>>>,
}

/// The keys of the less frequent messages (see [`Envelope`]).
#[derive(Default)]
struct Rare<'a> {
    rooms: Option<Value>,
    features: Option<Value>,
    server: Option<Field<'a>>,
    password: Option<Field<'a>>,
    old: Option<Field<'a>>,
    new: Option<Field<'a>>,
    count: Option<Field<'a>>,
    before: Option<Field<'a>>,
    lines: Option<Value>,
    more: Option<Value>,
    token: Option<Field<'a>>,
    expires: Option<Field<'a>>,
    ignore: Option<Value>,
    outgoing: Option<Value>,
    op: Option<Value>,
    reason: Option<Field<'a>>,
    minutes: Option<Field<'a>>,
    ban: Option<Value>,
    topic: Option<Field<'a>>,
    by: Option<Field<'a>>,
}

impl<'a> Envelope<'a> {
    /// The rare keys (empty ones if none came).
    fn rare(&mut self) -> &mut Rare<'a> {
        self.rare.get_or_insert_with(Box::default)
    }
}

/// A top-level key, matched without allocating.
#[derive(Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum Key {
    #[serde(rename = "type")]
    Kind,
    Name,
    Title,
    RoomId,
    Text,
    Member,
    Seq,
    Time,
    Rooms,
    Features,
    Server,
    Password,
    Old,
    New,
    Count,
    Before,
    Lines,
    More,
    Token,
    Expires,
    Ignore,
    Outgoing,
    Op,
    Reason,
    Minutes,
    Ban,
    Topic,
    By,
    #[serde(other)]
    Unknown,
}

impl Key {
    /// The key as it is written, for the duplicate-key error.
    fn name(self) -> &'static str {
        match self {
            Key::Kind => "type",
            Key::Name => "name",
            Key::Title => "title",
            Key::RoomId => "roomId",
            Key::Text => "text",
            Key::Member => "member",
            Key::Seq => "seq",
            Key::Time => "time",
            Key::Rooms => "rooms",
            Key::Features => "features",
            Key::Server => "server",
            Key::Password => "password",
            Key::Old => "old",
            Key::New => "new",
            Key::Count => "count",
            Key::Before => "before",
            Key::Lines => "lines",
            Key::More => "more",
            Key::Token => "token",
            Key::Expires => "expires",
            Key::Ignore => "ignore",
            Key::Outgoing => "outgoing",
            Key::Op => "op",
            Key::Reason => "reason",
            Key::Minutes => "minutes",
            Key::Ban => "ban",
            Key::Topic => "topic",
            Key::By => "by",
            Key::Unknown => "",
        }
    }
}

/// Fills an [`Envelope`] in place: built where it is used and never moved, as its
/// size would make every move a copy.
struct EnvelopeVisitor<'e, 'a>(&'e mut Envelope<'a>);

impl<'de: 'a, 'a> Visitor<'de> for EnvelopeVisitor<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let envelope = self.0;
        let mut seen = 0u64;
        while let Some(key) = map.next_key::<Key>()? {
            if key == Key::Unknown {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let bit = 1u64 << (key as u32);
            if seen & bit != 0 {
                return Err(de::Error::duplicate_field(key.name()));
            }
            seen |= bit;
            match key {
                Key::Kind => envelope.kind = map.next_value()?,
                Key::Name => envelope.name = map.next_value()?,
                Key::Title => envelope.title = map.next_value()?,
                Key::RoomId => envelope.room_id = map.next_value()?,
                Key::Text => envelope.text = map.next_value()?,
                Key::Member => envelope.member = map.next_value()?,
                Key::Seq => envelope.seq = map.next_value()?,
                Key::Time => envelope.time = map.next_value()?,
                Key::Rooms => envelope.rare().rooms = map.next_value()?,
                Key::Features => envelope.rare().features = map.next_value()?,
                Key::Server => envelope.rare().server = map.next_value()?,
                Key::Password => envelope.rare().password = map.next_value()?,
                Key::Old => envelope.rare().old = map.next_value()?,
                Key::New => envelope.rare().new = map.next_value()?,
                Key::Count => envelope.rare().count = map.next_value()?,
                Key::Before => envelope.rare().before = map.next_value()?,
                Key::Lines => envelope.rare().lines = map.next_value()?,
                Key::More => envelope.rare().more = map.next_value()?,
                Key::Token => envelope.rare().token = map.next_value()?,
                Key::Expires => envelope.rare().expires = map.next_value()?,
                Key::Ignore => envelope.rare().ignore = map.next_value()?,
                Key::Outgoing => envelope.rare().outgoing = map.next_value()?,
                Key::Op => envelope.rare().op = map.next_value()?,
                Key::Reason => envelope.rare().reason = map.next_value()?,
                Key::Minutes => envelope.rare().minutes = map.next_value()?,
                Key::Ban => envelope.rare().ban = map.next_value()?,
                Key::Topic => envelope.rare().topic = map.next_value()?,
                Key::By => envelope.rare().by = map.next_value()?,
                Key::Unknown => {}
            }
        }
        Ok(())
    }
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

/// Reads `payload` into `envelope` (a default one) and returns the message's type.
fn parse_envelope<'a>(
    payload: &'a [u8],
    envelope: &mut Envelope<'a>,
) -> Result<Cow<'a, str>, DecodeError> {
    // Only objects are messages; anything else gets its own error (after checking
    // that it is JSON at all).
    let first = payload.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(payload) {
                Ok(_) => DecodeError::NotAnObject,
                Err(e) => DecodeError::InvalidJson(e.to_string()),
            },
        );
    }
    let mut deserializer = serde_json::Deserializer::from_slice(payload);
    deserializer
        .deserialize_map(EnvelopeVisitor(envelope))
        .and_then(|()| deserializer.end())
        .map_err(|e| DecodeError::InvalidJson(e.to_string()))?;
    // An empty type counts as none, as in the reference client (`if not msg_type`).
    match envelope.kind.take() {
        Some(Field::Str(kind)) if !kind.is_empty() => Ok(kind),
        _ => Err(DecodeError::MissingType),
    }
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
    let mut envelope = Envelope::default();
    let kind = parse_envelope(payload, &mut envelope)?;
    let kind = RequestKind::ALL
        .into_iter()
        .find(|k| k.name() == kind)
        .ok_or_else(|| DecodeError::UnknownType(kind.into_owned()))?;
    let message = kind.name();
    Ok(match kind {
        RequestKind::Name => Request::Name {
            name: string_field(envelope.name.take(), message, "name")?.into_owned(),
        },
        RequestKind::Rooms => Request::Rooms,
        RequestKind::CreateRoom => Request::CreateRoom {
            title: string_field(envelope.title.take(), message, "title")?.into_owned(),
        },
        RequestKind::JoinRoom => Request::JoinRoom {
            room_id: integer_field(envelope.room_id.take(), message, "roomId")?,
        },
        RequestKind::LeaveRoom => Request::LeaveRoom,
        RequestKind::Chat => Request::Chat {
            text: string_field(envelope.text.take(), message, "text")?.into_owned(),
        },
        RequestKind::Shutdown => Request::Shutdown,
        RequestKind::Hello => Request::Hello {
            features: string_list(envelope.rare().features.take(), message, "features")?,
        },
        RequestKind::Register => Request::Register {
            password: string_field(envelope.rare().password.take(), message, "password")?
                .into_owned(),
        },
        RequestKind::Login => Request::Login {
            name: string_field(envelope.name.take(), message, "name")?.into_owned(),
            password: string_field(envelope.rare().password.take(), message, "password")?
                .into_owned(),
        },
        RequestKind::Logout => Request::Logout,
        RequestKind::ChangePassword => Request::ChangePassword {
            old: string_field(envelope.rare().old.take(), message, "old")?.into_owned(),
            new: string_field(envelope.rare().new.take(), message, "new")?.into_owned(),
        },
        RequestKind::History => Request::History {
            count: envelope
                .rare()
                .count
                .take()
                .map(|c| integer_field(Some(c), message, "count"))
                .transpose()?,
            before: envelope
                .rare()
                .before
                .take()
                .map(|b| integer_field(Some(b), message, "before"))
                .transpose()?,
        },
        RequestKind::DeleteRoom => Request::DeleteRoom {
            room_id: integer_field(envelope.room_id.take(), message, "roomId")?,
        },
        RequestKind::Resume => Request::Resume {
            name: string_field(envelope.name.take(), message, "name")?.into_owned(),
            token: string_field(envelope.rare().token.take(), message, "token")?.into_owned(),
        },
        RequestKind::Direct => Request::Direct {
            name: string_field(envelope.name.take(), message, "name")?.into_owned(),
            text: string_field(envelope.text.take(), message, "text")?.into_owned(),
        },
        RequestKind::Ignore => Request::Ignore {
            name: string_field(envelope.name.take(), message, "name")?.into_owned(),
            ignore: bool_field(envelope.rare().ignore.take(), message, "ignore")?,
        },
        RequestKind::Op => Request::Op {
            name: string_field(envelope.name.take(), message, "name")?.into_owned(),
            op: bool_field(envelope.rare().op.take(), message, "op")?,
        },
        RequestKind::Owner => Request::Owner {
            name: string_field(envelope.name.take(), message, "name")?.into_owned(),
        },
        RequestKind::Kick => Request::Kick {
            name: string_field(envelope.name.take(), message, "name")?.into_owned(),
            reason: optional_string_field(envelope.rare().reason.take(), message, "reason")?
                .into_owned(),
        },
        RequestKind::Ban => Request::Ban {
            name: string_field(envelope.name.take(), message, "name")?.into_owned(),
            minutes: envelope
                .rare()
                .minutes
                .take()
                .map(|m| integer_field(Some(m), message, "minutes"))
                .transpose()?,
            ban: bool_field(envelope.rare().ban.take(), message, "ban")?,
        },
        RequestKind::Topic => Request::Topic {
            text: string_field(envelope.text.take(), message, "text")?.into_owned(),
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

/// A chat delivery exactly as our server writes it (and Python's `json.dumps` with
/// `ensure_ascii=False`), when neither string holds an escape or a control
/// character: then each string's bytes are its value, and the general parser would
/// return the same [`Response::Chat`]. Anything else — other spacing, key order,
/// extra keys, escapes — is `None` and goes through the general parser.
///
/// Why: a client in a room of 200 decodes 200 times the room's chat rate, and this
/// shape is nearly all of it; the general parser spent four times as long on it,
/// enough to make the load generator, not the server, the bottleneck.
fn plain_chat(payload: &[u8]) -> Option<Response<'_>> {
    let rest = payload.strip_prefix(br#"{"type": "SCChat", "member": ""#)?;
    let (member, rest) = plain_string(rest)?;
    let rest = rest.strip_prefix(br#", "text": ""#)?;
    let (text, rest) = plain_string(rest)?;
    (rest == b"}").then_some(Response::Chat {
        member: Cow::Borrowed(member),
        text: Cow::Borrowed(text),
    })
}

/// The body of a JSON string up to its closing quote, and what follows the quote —
/// if it has no escape and no control character (so its bytes are its value) and is
/// UTF-8.
fn plain_string(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let end = bytes
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    if bytes[end] != b'"' {
        return None;
    }
    let value = std::str::from_utf8(&bytes[..end]).ok()?;
    Some((value, &bytes[end + 1..]))
}

/// Decodes a server's message; its strings borrow from `payload` where they can.
pub(super) fn decode_response(payload: &[u8]) -> Result<Response<'_>, DecodeError> {
    match plain_chat(payload) {
        Some(chat) => Ok(chat),
        None => decode_parsed_response(payload),
    }
}

/// [`decode_response`] through the general parser only.
pub(super) fn decode_parsed_response(payload: &[u8]) -> Result<Response<'_>, DecodeError> {
    let mut envelope = Envelope::default();
    let kind = parse_envelope(payload, &mut envelope)?;
    Ok(match &*kind {
        "SCSystemMessage" => Response::SystemMessage {
            text: string_field(envelope.text.take(), "SCSystemMessage", "text")?,
        },
        "SCChat" => {
            let member = string_field(envelope.member.take(), "SCChat", "member")?;
            let text = string_field(envelope.text.take(), "SCChat", "text")?;
            match (envelope.seq.take(), envelope.time.take()) {
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
            room_id: integer_field(envelope.room_id.take(), "SCHistory", "roomId")?,
            lines: decode_history_lines(envelope.rare().lines.take())?,
            more: matches!(envelope.rare().more.take(), Some(Value::Bool(true))),
        },
        "SCRoomsResult" => Response::RoomsResult {
            rooms: decode_rooms(envelope.rare().rooms.take())?,
        },
        "SCHello" => Response::Hello {
            features: string_list(envelope.rare().features.take(), "SCHello", "features")?,
            server: string_field(envelope.rare().server.take(), "SCHello", "server")?,
        },
        "SCSession" => Response::Session {
            token: string_field(envelope.rare().token.take(), "SCSession", "token")?,
            expires: integer_field(envelope.rare().expires.take(), "SCSession", "expires")?,
        },
        "SCDirect" => Response::Direct {
            member: string_field(envelope.member.take(), "SCDirect", "member")?,
            text: string_field(envelope.text.take(), "SCDirect", "text")?,
            time: integer_field(envelope.time.take(), "SCDirect", "time")?,
            outgoing: bool_field(envelope.rare().outgoing.take(), "SCDirect", "outgoing")?,
        },
        "SCTopic" => Response::Topic {
            room_id: integer_field(envelope.room_id.take(), "SCTopic", "roomId")?,
            topic: string_field(envelope.rare().topic.take(), "SCTopic", "topic")?,
            by: optional_string_field(envelope.rare().by.take(), "SCTopic", "by")?,
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
