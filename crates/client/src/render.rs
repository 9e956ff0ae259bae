//! Responses → the lines the user sees, exactly as the reference client prints them
//! (`docs/PROTOCOL.md` §5), with every server-controlled string escaped.
//!
//! Escaping is the one deliberate difference from the reference: a name or text
//! holding `ESC` could otherwise move the cursor, recolour or clear the user's
//! terminal, or fake a line from someone else with an embedded newline. Control
//! characters are shown as `\n`, `\r`, `\t` or `\xNN`; everything else (Hangul, emoji,
//! backslashes) is printed as sent, so ordinary text matches the reference byte for
//! byte. No I/O here; [`crate::console`] decides colours and where lines go.

use std::borrow::Cow;
use std::fmt::Write as _;

use chat_proto::Response;

/// What kind of line this is; the console may colour kinds differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Ordinary output: the rooms table, help, `Connected to …`.
    Plain,
    /// `[시스템 메시지] …`.
    System,
    /// `[member] text`.
    Chat,
    /// `[나] text`: a chat line this user sent, shown on a terminal only (the server
    /// never echoes it back).
    Own,
    /// `--verbosity` output.
    Trace,
    /// Something went wrong (locally or with the server).
    Error,
}

/// One line of output, without its line ending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// What kind of line it is, which picks its colour.
    pub style: Style,
    /// The text as printed; anything the server sent in it is already escaped.
    pub text: String,
}

impl Line {
    /// A line of the given style.
    pub fn new(style: Style, text: impl Into<String>) -> Self {
        Self {
            style,
            text: text.into(),
        }
    }
}

/// The lines printed for one response from the server.
pub fn response_lines(response: &Response<'_>) -> Vec<Line> {
    match response {
        Response::SystemMessage { text } => vec![Line::new(
            Style::System,
            format!("[시스템 메시지] {}", escape(text)),
        )],
        Response::Chat { member, text } => vec![Line::new(
            Style::Chat,
            format!("[{}] {}", escape(member), escape(text)),
        )],
        Response::RoomsResult { rooms } => {
            let mut lines = vec![
                Line::new(Style::Plain, "---"),
                Line::new(Style::Plain, "[방목록]"),
                Line::new(Style::Plain, "방ID | 방제목 | 멤버들"),
            ];
            if rooms.is_empty() {
                lines.push(Line::new(Style::Plain, "(없음)"));
            }
            for room in rooms {
                let members: Vec<Cow<'_, str>> = room.members.iter().map(|m| escape(m)).collect();
                lines.push(Line::new(
                    Style::Plain,
                    format!(
                        "{} | {} | {}",
                        room.room_id,
                        escape(&room.title),
                        members.join(",")
                    ),
                ));
            }
            lines.push(Line::new(Style::Plain, "---"));
            lines
        }
    }
}

/// What marks the user's own chat lines on a terminal: `[나]` ("me") rather than the
/// name, which may not be known yet and would read like someone else's line.
pub const OWN_MARK: &str = "[나]";

/// The line shown on a terminal for a chat line the user sent.
pub fn own_chat_line(text: &str) -> Line {
    Line::new(Style::Own, format!("{OWN_MARK} {}", escape(text)))
}

/// `text` with control characters made visible: `\n`, `\r`, `\t`, else `\xNN` for the
/// C0 controls, DEL and the C1 controls (U+0080–U+009F, which some terminals also
/// obey as escape sequences). Borrows when there is nothing to escape.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_control(c) => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn is_control(c: char) -> bool {
    c.is_control() && u32::from(c) <= 0x9f
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_proto::RoomInfo;

    fn texts(response: Response<'_>) -> Vec<String> {
        response_lines(&response)
            .into_iter()
            .map(|l| l.text)
            .collect()
    }

    #[test]
    fn system_and_chat_lines() {
        assert_eq!(
            texts(Response::system("이름이 a 으로 변경되었습니다.")),
            ["[시스템 메시지] 이름이 a 으로 변경되었습니다."]
        );
        assert_eq!(
            texts(Response::Chat {
                member: "(127.0.0.1, 9001)".into(),
                text: "hi 😀".into()
            }),
            ["[(127.0.0.1, 9001)] hi 😀"]
        );
    }

    #[test]
    fn empty_rooms_table() {
        assert_eq!(
            texts(Response::RoomsResult { rooms: vec![] }),
            ["---", "[방목록]", "방ID | 방제목 | 멤버들", "(없음)", "---"]
        );
    }

    #[test]
    fn rooms_table_rows() {
        let rooms = vec![
            RoomInfo {
                room_id: 1,
                title: "first room".into(),
                members: vec!["a".into(), "b c".into()],
            },
            RoomInfo {
                room_id: 3,
                title: "셋".into(),
                members: vec![],
            },
        ];
        assert_eq!(
            texts(Response::RoomsResult { rooms }),
            [
                "---",
                "[방목록]",
                "방ID | 방제목 | 멤버들",
                "1 | first room | a,b c",
                "3 | 셋 | ",
                "---"
            ]
        );
    }

    #[test]
    fn control_characters_are_escaped_everywhere() {
        assert_eq!(
            texts(Response::Chat {
                member: "ev\x1b[31mil".into(),
                text: "a\nb\r\t\x07\x7f\u{9b}c\\d".into()
            }),
            ["[ev\\x1b[31mil] a\\nb\\r\\t\\x07\\x7f\\x9bc\\d"]
        );
        assert_eq!(
            texts(Response::system("\x1b]0;pwned\x07")),
            ["[시스템 메시지] \\x1b]0;pwned\\x07"]
        );
        let rooms = vec![RoomInfo {
            room_id: 2,
            title: "t\x1bx".into(),
            members: vec!["m\n".into(), "n".into()],
        }];
        assert_eq!(
            texts(Response::RoomsResult { rooms })[3],
            "2 | t\\x1bx | m\\n,n"
        );
    }

    #[test]
    fn escape_borrows_clean_text() {
        assert!(matches!(escape("평범한 text"), Cow::Borrowed(_)));
        assert_eq!(escape("\u{a0}\u{200b}"), "\u{a0}\u{200b}");
    }
}
