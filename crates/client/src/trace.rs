//! The `--verbosity` lines, in the reference client's exact words.
//!
//! Level 1 prints one line per frame, each direction:
//!
//! ```text
//! [C->S:총길이=38바이트] 0x0024(메시지크기) + {"type": "CSName", "name": "a"}
//! [S->C:총길이=4바이트] 0x0002(메시지크기) + type: SC_SYSTEM_MESSAGE
//! ```
//!
//! The text after `+` is the JSON payload as received, or for protobuf what Python's
//! `str(message).strip()` gives: protobuf text format, one field per line, nested
//! messages in `name { … }` with two-space indents, and strings C-escaped byte by byte
//! (non-ASCII as `\ooo` octal), as `google.protobuf.text_format` does by default.
//! An empty text drops the `+ ` (the reference does this for frames it sends and for
//! protobuf bodies it receives; JSON and `Type` frames it receives always get `+`).
//! Level 2 adds `  - send() 시도 #N: M바이트 전송 완료` after each write and
//! `  - recv(): N바이트 읽음` after each read.
//!
//! Formatting only: [`crate::connection`] decides when a line is due.

use std::fmt::Write as _;

use chat_proto::{Request, Response};

use crate::render::escape;

/// Which way a frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sent by the client (`C->S`).
    ClientToServer,
    /// Received from the server (`S->C`).
    ServerToClient,
}

/// Whether a frame line shows `+ ` when its text is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plus {
    /// Always, as the reference does for every frame it receives but a protobuf body.
    Always,
    /// Only when there is text, as for frames sent and protobuf bodies received.
    IfText,
}

/// The lines for one frame of `payload_len` bytes whose content reads `text` (which
/// may span lines; the first gets the header).
pub fn frame_lines(
    direction: Direction,
    payload_len: usize,
    text: &str,
    plus: Plus,
) -> Vec<String> {
    let arrow = match direction {
        Direction::ClientToServer => "C->S",
        Direction::ServerToClient => "S->C",
    };
    let mut first = format!(
        "[{arrow}:총길이={}바이트] 0x{payload_len:04x}(메시지크기) ",
        payload_len + chat_proto::frame::HEADER_LEN
    );
    if !text.is_empty() || plus == Plus::Always {
        first.push_str("+ ");
    }
    let mut parts = text.split('\n');
    // `split` always yields at least one part.
    first.push_str(parts.next().unwrap_or(""));
    std::iter::once(first)
        .chain(parts.map(str::to_owned))
        .collect()
}

/// The level-2 line after one successful `send`.
pub fn send_line(attempt: usize, bytes: usize) -> String {
    format!("  - send() 시도 #{attempt}: {bytes}바이트 전송 완료")
}

/// The level-2 line after one successful `recv`.
pub fn recv_line(bytes: usize) -> String {
    format!("  - recv(): {bytes}바이트 읽음")
}

/// A JSON payload as text: lossy UTF-8, control characters escaped.
pub fn json_text(payload: &[u8]) -> String {
    escape(&String::from_utf8_lossy(payload)).into_owned()
}

/// A JSON request's payload as text, its passwords as [`HIDDEN`] (encoded again
/// from a copy with them replaced, so the rest reads as sent).
pub fn json_request_text(request: &Request, payload: &[u8]) -> String {
    let hidden = || HIDDEN.to_owned();
    let masked = match request {
        Request::Register { .. } => Request::Register { password: hidden() },
        Request::Login { name, .. } => Request::Login {
            name: name.clone(),
            password: hidden(),
        },
        Request::ChangePassword { .. } => Request::ChangePassword {
            old: hidden(),
            new: hidden(),
        },
        Request::Resume { name, .. } => Request::Resume {
            name: name.clone(),
            token: hidden(),
        },
        _ => return json_text(payload),
    };
    let mut wire = Vec::new();
    match chat_proto::codec::encode_request(chat_proto::WireFormat::Json, &masked, &mut wire) {
        Ok(()) => json_text(&wire[chat_proto::frame::HEADER_LEN..]),
        Err(_) => String::new(),
    }
}

/// Bytes that did not decode, for a frame line: `<08 63>`.
pub fn hex_text(payload: &[u8]) -> String {
    let mut out = String::from("<");
    for (i, byte) in payload.iter().enumerate() {
        let sep = if i == 0 { "" } else { " " };
        let _ = write!(out, "{sep}{byte:02x}");
    }
    out.push('>');
    out
}

/// What a password shows as in a trace.
const HIDDEN: &str = "(숨김)";

/// A repeated string field, one line per element (as protobuf's text format).
fn repeated_field(name: &str, values: &[String]) -> String {
    values
        .iter()
        .map(|value| string_field(name, value))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The texts of a request's two protobuf frames: its `Type`, then its body.
pub fn protobuf_request_texts(request: &Request) -> [String; 2] {
    let (kind, body) = match request {
        Request::Name { name } => ("CS_NAME", string_field("name", name)),
        Request::Rooms => ("CS_ROOMS", String::new()),
        Request::CreateRoom { title } => ("CS_CREATE_ROOM", string_field("title", title)),
        Request::JoinRoom { room_id } => (
            "CS_JOIN_ROOM",
            // The wire field is int32; the codec saturates, so show what it sends.
            format!("roomId: {}", saturate_i32(*room_id)),
        ),
        Request::LeaveRoom => ("CS_LEAVE_ROOM", String::new()),
        Request::Chat { text } => ("CS_CHAT", string_field("text", text)),
        Request::Shutdown => ("CS_SHUTDOWN", String::new()),
        Request::Hello { features } => ("CS_HELLO", repeated_field("features", features)),
        // Passwords are never shown, not even to their owner's terminal.
        Request::Register { .. } => ("CS_REGISTER", format!("password: {HIDDEN}")),
        Request::Login { name, .. } => (
            "CS_LOGIN",
            format!("{}\npassword: {HIDDEN}", string_field("name", name)),
        ),
        Request::Logout => ("CS_LOGOUT", String::new()),
        Request::ChangePassword { .. } => ("CS_PASSWORD", format!("old: {HIDDEN}\nnew: {HIDDEN}")),
        Request::History { count, before } => {
            let fields: Vec<String> = [("count", count), ("before", before)]
                .into_iter()
                .filter_map(|(name, value)| value.map(|v| format!("{name}: {v}")))
                .collect();
            ("CS_HISTORY", fields.join("\n"))
        }
        Request::Resume { name, .. } => (
            "CS_RESUME",
            format!("{}\ntoken: {HIDDEN}", string_field("name", name)),
        ),
        Request::DeleteRoom { room_id } => (
            "CS_DELETE_ROOM",
            format!("roomId: {}", saturate_i32(*room_id)),
        ),
        Request::Direct { name, text } => (
            "CS_DIRECT",
            format!(
                "{}\n{}",
                string_field("name", name),
                string_field("text", text)
            ),
        ),
        // The codec always sets `ignore` (false too), so it is always shown.
        Request::Ignore { name, ignore } => (
            "CS_IGNORE",
            format!("{}\nignore: {ignore}", string_field("name", name)),
        ),
        // The codec always sets `op`, `reason` and `ban` (false and empty too), so
        // they are always shown; `minutes` only when there are some.
        Request::Op { name, op } => ("CS_OP", format!("{}\nop: {op}", string_field("name", name))),
        Request::Owner { name } => ("CS_OWNER", string_field("name", name)),
        Request::Kick { name, reason } => (
            "CS_KICK",
            format!(
                "{}\n{}",
                string_field("name", name),
                string_field("reason", reason)
            ),
        ),
        Request::Ban { name, minutes, ban } => {
            let mut body = string_field("name", name);
            if let Some(minutes) = minutes {
                body.push_str(&format!("\nminutes: {minutes}"));
            }
            body.push_str(&format!("\nban: {ban}"));
            ("CS_BAN", body)
        }
        Request::Topic { text } => ("CS_TOPIC", string_field("text", text)),
    };
    [format!("type: {kind}"), body]
}

/// The texts of a response's two protobuf frames: its `Type`, then its body.
pub fn protobuf_response_texts(response: &Response<'_>) -> [String; 2] {
    let (kind, body) = match response {
        Response::Hello { features, server } => {
            let mut body = repeated_field("features", features);
            if !body.is_empty() {
                body.push('\n');
            }
            body.push_str(&string_field("server", server));
            ("SC_HELLO", body)
        }
        Response::SystemMessage { text } => ("SC_SYSTEM_MESSAGE", string_field("text", text)),
        Response::Session { expires, .. } => {
            ("SC_SESSION", format!("token: {HIDDEN}\nexpires: {expires}"))
        }
        Response::TimedChat {
            member,
            text,
            seq,
            time,
        } => (
            "SC_CHAT",
            format!(
                "{}\n{}\nseq: {seq}\ntime: {time}",
                string_field("member", member),
                string_field("text", text)
            ),
        ),
        Response::History {
            room_id,
            lines,
            more,
        } => {
            let mut body = format!("roomId: {room_id}");
            for line in lines {
                body.push_str(&format!(
                    "\nlines {{\n  seq: {}\n  time: {}\n  {}\n  {}\n}}",
                    line.seq,
                    line.time,
                    string_field("member", &line.member),
                    string_field("text", &line.text)
                ));
            }
            body.push_str(&format!("\nmore: {more}"));
            ("SC_HISTORY", body)
        }
        Response::Direct {
            member,
            text,
            time,
            outgoing,
        } => (
            "SC_DIRECT",
            format!(
                "{}\n{}\ntime: {time}\noutgoing: {outgoing}",
                string_field("member", member),
                string_field("text", text)
            ),
        ),
        // The server always sets `by` (empty on entry), so it is always shown.
        Response::Topic { room_id, topic, by } => (
            "SC_TOPIC",
            format!(
                "roomId: {room_id}\n{}\n{}",
                string_field("topic", topic),
                string_field("by", by)
            ),
        ),
        Response::Chat { member, text } => (
            "SC_CHAT",
            format!(
                "{}\n{}",
                string_field("member", member),
                string_field("text", text)
            ),
        ),
        Response::RoomsResult { rooms } => {
            let rooms: Vec<String> = rooms
                .iter()
                .map(|room| {
                    let mut out = format!("rooms {{\n  roomId: {}\n", room.room_id);
                    out.push_str("  ");
                    out.push_str(&string_field("title", &room.title));
                    out.push('\n');
                    for member in &room.members {
                        out.push_str("  ");
                        out.push_str(&string_field("members", member));
                        out.push('\n');
                    }
                    // Field 4, after the members; only on the wire when set.
                    if let Some(topic) = &room.topic {
                        out.push_str("  ");
                        out.push_str(&string_field("topic", topic));
                        out.push('\n');
                    }
                    out.push('}');
                    out
                })
                .collect();
            ("SC_ROOMS_RESULT", rooms.join("\n"))
        }
    };
    [format!("type: {kind}"), body]
}

/// `name: "value"` with the value escaped like protobuf's `text_encoding.CEscape`
/// on UTF-8 bytes: the usual backslash escapes, every other byte outside printable
/// ASCII as three octal digits. The result is pure printable ASCII.
fn string_field(name: &str, value: &str) -> String {
    let mut out = format!("{name}: \"");
    for &byte in value.as_bytes() {
        match byte {
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'"' => out.push_str("\\\""),
            b'\'' => out.push_str("\\'"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(byte)),
            _ => {
                let _ = write!(out, "\\{byte:03o}");
            }
        }
    }
    out.push('"');
    out
}

fn saturate_i32(value: i64) -> i64 {
    value.clamp(i64::from(i32::MIN), i64::from(i32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_proto::RoomInfo;

    #[test]
    fn client_frame_line_matches_the_reference() {
        let payload = r#"{"type": "CSName", "name": "a"}"#;
        assert_eq!(
            frame_lines(
                Direction::ClientToServer,
                payload.len(),
                payload,
                Plus::IfText
            ),
            [format!(
                "[C->S:총길이={}바이트] 0x{:04x}(메시지크기) + {payload}",
                payload.len() + 2,
                payload.len()
            )]
        );
        // A 36-byte payload: 38 bytes with the header, length `0x0024`
        // (`docs/PROTOCOL.md` §5.4).
        assert!(
            frame_lines(Direction::ClientToServer, 36, "x", Plus::IfText)[0]
                .starts_with("[C->S:총길이=38바이트] 0x0024(메시지크기) + ")
        );
    }

    #[test]
    fn empty_text_drops_the_plus_unless_always() {
        assert_eq!(
            frame_lines(Direction::ClientToServer, 0, "", Plus::IfText),
            ["[C->S:총길이=2바이트] 0x0000(메시지크기) "]
        );
        assert_eq!(
            frame_lines(Direction::ServerToClient, 0, "", Plus::Always),
            ["[S->C:총길이=2바이트] 0x0000(메시지크기) + "]
        );
    }

    #[test]
    fn multi_line_texts_continue_unprefixed() {
        assert_eq!(
            frame_lines(
                Direction::ServerToClient,
                300,
                "member: \"a\"\ntext: \"b\"",
                Plus::IfText
            ),
            [
                "[S->C:총길이=302바이트] 0x012c(메시지크기) + member: \"a\"",
                "text: \"b\""
            ]
        );
    }

    #[test]
    fn protobuf_requests_read_like_python_text_format() {
        assert_eq!(
            protobuf_request_texts(&Request::Name { name: "a".into() }),
            ["type: CS_NAME", "name: \"a\""]
        );
        assert_eq!(
            protobuf_request_texts(&Request::Rooms),
            ["type: CS_ROOMS", ""]
        );
        assert_eq!(
            protobuf_request_texts(&Request::JoinRoom { room_id: 1 << 40 }),
            ["type: CS_JOIN_ROOM", "roomId: 2147483647"]
        );
        assert_eq!(
            protobuf_request_texts(&Request::Chat {
                text: "안\"'\\\n\x1b~".into()
            })[1],
            "text: \"\\354\\225\\210\\\"\\'\\\\\\n\\033~\""
        );
        assert_eq!(
            protobuf_request_texts(&Request::Shutdown)[0],
            "type: CS_SHUTDOWN"
        );
    }

    #[test]
    fn protobuf_responses_read_like_python_text_format() {
        assert_eq!(
            protobuf_response_texts(&Response::Chat {
                member: "m".into(),
                text: "t".into()
            }),
            ["type: SC_CHAT", "member: \"m\"\ntext: \"t\""]
        );
        let rooms = vec![
            RoomInfo {
                room_id: 1,
                title: "r".into(),
                members: vec!["a".into(), "b".into()],
                topic: None,
            },
            RoomInfo {
                room_id: 2,
                title: "s".into(),
                members: vec![],
                topic: None,
            },
        ];
        assert_eq!(
            protobuf_response_texts(&Response::RoomsResult { rooms })[1],
            "rooms {\n  roomId: 1\n  title: \"r\"\n  members: \"a\"\n  members: \"b\"\n}\n\
             rooms {\n  roomId: 2\n  title: \"s\"\n}"
        );
        assert_eq!(
            protobuf_response_texts(&Response::RoomsResult { rooms: vec![] }),
            ["type: SC_ROOMS_RESULT", ""]
        );
    }

    #[test]
    fn direct_messages_read_like_python_text_format() {
        assert_eq!(
            protobuf_request_texts(&Request::Direct {
                name: "bob".into(),
                text: "안 \"hi\"".into()
            }),
            [
                "type: CS_DIRECT",
                "name: \"bob\"\ntext: \"\\354\\225\\210 \\\"hi\\\"\""
            ]
        );
        assert_eq!(
            protobuf_request_texts(&Request::Ignore {
                name: "bob".into(),
                ignore: true
            }),
            ["type: CS_IGNORE", "name: \"bob\"\nignore: true"]
        );
        assert_eq!(
            protobuf_request_texts(&Request::Ignore {
                name: "bob".into(),
                ignore: false
            })[1],
            "name: \"bob\"\nignore: false"
        );
        assert_eq!(
            protobuf_response_texts(&Response::Direct {
                member: "bob".into(),
                text: "hi".into(),
                time: 1_700_000_000_000,
                outgoing: false
            }),
            [
                "type: SC_DIRECT",
                "member: \"bob\"\ntext: \"hi\"\ntime: 1700000000000\noutgoing: false"
            ]
        );
        assert_eq!(
            protobuf_response_texts(&Response::Direct {
                member: "amy".into(),
                text: "yo".into(),
                time: 5,
                outgoing: true
            })[1],
            "member: \"amy\"\ntext: \"yo\"\ntime: 5\noutgoing: true"
        );
    }

    #[test]
    fn direct_requests_show_as_sent_in_json() {
        // Nothing in a direct message is hidden: the payload reads as sent.
        for request in [
            Request::Direct {
                name: "bob".into(),
                text: "hunter2".into(),
            },
            Request::Ignore {
                name: "bob".into(),
                ignore: true,
            },
        ] {
            let mut wire = Vec::new();
            chat_proto::codec::encode_request(chat_proto::WireFormat::Json, &request, &mut wire)
                .unwrap();
            let payload = &wire[chat_proto::frame::HEADER_LEN..];
            assert_eq!(json_request_text(&request, payload), json_text(payload));
        }
        let mut wire = Vec::new();
        let request = Request::Direct {
            name: "bob".into(),
            text: "hi".into(),
        };
        chat_proto::codec::encode_request(chat_proto::WireFormat::Json, &request, &mut wire)
            .unwrap();
        assert_eq!(
            json_request_text(&request, &wire[chat_proto::frame::HEADER_LEN..]),
            r#"{"type": "CSDirect", "name": "bob", "text": "hi"}"#
        );
    }

    #[test]
    fn moderation_messages_read_like_python_text_format() {
        assert_eq!(
            protobuf_request_texts(&Request::Op {
                name: "bob".into(),
                op: true
            }),
            ["type: CS_OP", "name: \"bob\"\nop: true"]
        );
        assert_eq!(
            protobuf_request_texts(&Request::Op {
                name: "bob".into(),
                op: false
            })[1],
            "name: \"bob\"\nop: false"
        );
        assert_eq!(
            protobuf_request_texts(&Request::Owner { name: "김".into() }),
            ["type: CS_OWNER", "name: \"\\352\\271\\200\""]
        );
        assert_eq!(
            protobuf_request_texts(&Request::Kick {
                name: "bob".into(),
                reason: "도".into()
            }),
            [
                "type: CS_KICK",
                "name: \"bob\"\nreason: \"\\353\\217\\204\""
            ]
        );
        // The codec sends an empty reason too.
        assert_eq!(
            protobuf_request_texts(&Request::Kick {
                name: "bob".into(),
                reason: String::new()
            })[1],
            "name: \"bob\"\nreason: \"\""
        );
        assert_eq!(
            protobuf_request_texts(&Request::Ban {
                name: "bob".into(),
                minutes: Some(30),
                ban: true
            }),
            ["type: CS_BAN", "name: \"bob\"\nminutes: 30\nban: true"]
        );
        // No minutes: not on the wire, so not shown.
        assert_eq!(
            protobuf_request_texts(&Request::Ban {
                name: "bob".into(),
                minutes: None,
                ban: false
            })[1],
            "name: \"bob\"\nban: false"
        );
        assert_eq!(
            protobuf_request_texts(&Request::Topic {
                text: "a \"b\"".into()
            }),
            ["type: CS_TOPIC", "text: \"a \\\"b\\\"\""]
        );
        assert_eq!(
            protobuf_request_texts(&Request::Topic {
                text: String::new()
            })[1],
            "text: \"\""
        );
        assert_eq!(
            protobuf_response_texts(&Response::Topic {
                room_id: 3,
                topic: "hi".into(),
                by: "alice".into()
            }),
            ["type: SC_TOPIC", "roomId: 3\ntopic: \"hi\"\nby: \"alice\""]
        );
        // The server always sets `by`, empty on entry.
        assert_eq!(
            protobuf_response_texts(&Response::Topic {
                room_id: 3,
                topic: "hi".into(),
                by: "".into()
            })[1],
            "roomId: 3\ntopic: \"hi\"\nby: \"\""
        );
        // A room's topic is field 4, after its members; absent when none.
        let rooms = vec![
            RoomInfo {
                room_id: 1,
                title: "r".into(),
                members: vec!["a".into()],
                topic: Some("주".into()),
            },
            RoomInfo {
                room_id: 2,
                title: "s".into(),
                members: vec![],
                topic: None,
            },
        ];
        assert_eq!(
            protobuf_response_texts(&Response::RoomsResult { rooms })[1],
            "rooms {\n  roomId: 1\n  title: \"r\"\n  members: \"a\"\n  \
             topic: \"\\354\\243\\274\"\n}\n\
             rooms {\n  roomId: 2\n  title: \"s\"\n}"
        );
    }

    #[test]
    fn moderation_requests_show_as_sent_in_json() {
        // Nothing in a moderation request is hidden: the payload reads as sent.
        for (request, json) in [
            (
                Request::Op {
                    name: "bob".into(),
                    op: true,
                },
                r#"{"type": "CSOp", "name": "bob", "op": true}"#,
            ),
            (
                Request::Owner { name: "bob".into() },
                r#"{"type": "CSOwner", "name": "bob"}"#,
            ),
            (
                Request::Kick {
                    name: "bob".into(),
                    reason: "spam".into(),
                },
                r#"{"type": "CSKick", "name": "bob", "reason": "spam"}"#,
            ),
            (
                Request::Ban {
                    name: "bob".into(),
                    minutes: Some(30),
                    ban: true,
                },
                r#"{"type": "CSBan", "name": "bob", "minutes": 30, "ban": true}"#,
            ),
            (
                Request::Ban {
                    name: "bob".into(),
                    minutes: None,
                    ban: false,
                },
                r#"{"type": "CSBan", "name": "bob", "ban": false}"#,
            ),
            (
                Request::Topic { text: "t".into() },
                r#"{"type": "CSTopic", "text": "t"}"#,
            ),
        ] {
            let mut wire = Vec::new();
            chat_proto::codec::encode_request(chat_proto::WireFormat::Json, &request, &mut wire)
                .unwrap();
            let payload = &wire[chat_proto::frame::HEADER_LEN..];
            assert_eq!(json_request_text(&request, payload), json);
        }
    }

    #[test]
    fn level_two_lines_and_raw_texts() {
        assert_eq!(send_line(1, 38), "  - send() 시도 #1: 38바이트 전송 완료");
        assert_eq!(recv_line(40), "  - recv(): 40바이트 읽음");
        assert_eq!(
            json_text(b"{\"a\": \"\x1b\"}\xff"),
            "{\"a\": \"\\x1b\"}\u{fffd}"
        );
        assert_eq!(hex_text(&[0x08, 0x63]), "<08 63>");
        assert_eq!(hex_text(&[]), "<>");
    }
}
