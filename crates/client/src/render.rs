//! Responses → the lines the user sees, exactly as the reference client prints them
//! (`docs/PROTOCOL.md` §5), with every server-controlled string escaped.
//!
//! Escaping is the one deliberate difference from the reference: a name or text
//! holding `ESC` could otherwise move the cursor, recolour or clear the user's
//! terminal, or fake a line from someone else with an embedded newline; a bidi
//! override (U+202E) or a line separator (U+2028) could reorder or break what is shown.
//! One rule, [`escape`], covers every such character: controls (C0, DEL, C1), format
//! characters (Unicode category Cf: bidi controls, zero-width spaces and joiners, BOM,
//! soft hyphen, …) and the line and paragraph separators (Zl, Zp). They are shown as
//! `\n`, `\r`, `\t`, `\xNN`, `\uNNNN` or `\UNNNNNNNN` (as Python's `repr` writes them);
//! everything else (Hangul, emoji, combining marks, backslashes) is printed as sent, so
//! ordinary text matches the reference byte for byte. No I/O here; [`crate::console`]
//! decides colours and where lines go.

use std::borrow::Cow;
use std::fmt::Write as _;

use chat_proto::Response;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// What kind of line this is; the console may colour kinds differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Ordinary output: the rooms table, help, `Connected to …`.
    Plain,
    /// `[시스템 메시지] …`, and a room's topic, `[주제] …`.
    System,
    /// `[member] text`.
    Chat,
    /// `[나] text`: a chat line this user sent, shown on a terminal only (the server
    /// never echoes it back).
    Own,
    /// `[귓속말 ← member] text` and `[귓속말 → member] text`: a direct message, to
    /// this user or the server's copy of one it sent.
    Direct,
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
        Response::Chat { member, text } | Response::TimedChat { member, text, .. } => {
            vec![Line::new(
                Style::Chat,
                format!("[{}] {}", escape(member), escape(text)),
            )]
        }
        // Shown without its time, as timed chats and history lines are.
        Response::Direct {
            member,
            text,
            outgoing,
            ..
        } => vec![direct_line(member, text, *outgoing)],
        Response::Topic { topic, by, .. } => topic_line(topic, by).into_iter().collect(),
        // A token for a client that keeps logins (this one never asks for `resume`).
        Response::Session { .. } => Vec::new(),
        Response::History { lines, more, .. } => {
            let mut out = vec![Line::new(
                Style::Plain,
                format!(
                    "--- 대화 기록 {}줄{} ---",
                    lines.len(),
                    if *more { " (더 있음)" } else { "" }
                ),
            )];
            out.extend(lines.iter().map(|line| {
                Line::new(
                    Style::Chat,
                    format!("[{}] {}", escape(&line.member), escape(&line.text)),
                )
            }));
            out.push(Line::new(Style::Plain, "---"));
            out
        }
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
                // A topic (the `moderation` extension) follows the title; without
                // one the row is the reference's, byte for byte.
                let topic = match &room.topic {
                    Some(topic) => format!(" ({TOPIC_IN_TABLE} {})", escape(topic)),
                    None => String::new(),
                };
                lines.push(Line::new(
                    Style::Plain,
                    format!(
                        "{} | {}{topic} | {}",
                        room.room_id,
                        escape(&room.title),
                        members.join(",")
                    ),
                ));
            }
            lines.push(Line::new(Style::Plain, "---"));
            lines
        }
        // The answer to our own opt-in: nothing for the user to read.
        Response::Hello { .. } => Vec::new(),
    }
}

/// What marks a direct message to this user: `[귓속말 ← NAME]`, NAME its sender.
pub const DIRECT_IN_MARK: &str = "귓속말 ←";

/// What marks the server's copy of a direct message this user sent:
/// `[귓속말 → NAME]`, NAME its recipient.
pub const DIRECT_OUT_MARK: &str = "귓속말 →";

/// The line for a direct message: from `member` (`outgoing` false) or, the sender's
/// own copy, to `member` (`outgoing` true). Both start with `[귓속말`, which a
/// chat's `[member]` cannot (names hold no brackets), and differ from it in colour.
fn direct_line(member: &str, text: &str, outgoing: bool) -> Line {
    let mark = if outgoing {
        DIRECT_OUT_MARK
    } else {
        DIRECT_IN_MARK
    };
    Line::new(
        Style::Direct,
        format!("[{mark} {}] {}", escape(member), escape(text)),
    )
}

/// What marks a room's topic (`SCTopic`, the `moderation` extension): `[주제] …`.
pub const TOPIC_MARK: &str = "[주제]";

/// What precedes a room's topic after its title in the rooms table:
/// `1 | lobby (주제: TEXT) | members`.
pub const TOPIC_IN_TABLE: &str = "주제:";

/// The line for a room's topic, styled as a system message (it is the server's
/// news, not anyone's chat): `[주제] TEXT` when told on entry (`by` empty),
/// `[주제] BY 님이 주제를 바꿨습니다: TEXT` when someone set it, and
/// `[주제] BY 님이 주제를 지웠습니다.` when someone cleared it. An empty topic told on
/// entry (which the server does not send: a room without one has nothing to tell)
/// shows nothing.
fn topic_line(topic: &str, by: &str) -> Option<Line> {
    let text = match (by.is_empty(), topic.is_empty()) {
        (true, true) => return None,
        (true, false) => format!("{TOPIC_MARK} {}", escape(topic)),
        (false, false) => format!(
            "{TOPIC_MARK} {} 님이 주제를 바꿨습니다: {}",
            escape(by),
            escape(topic)
        ),
        (false, true) => format!("{TOPIC_MARK} {} 님이 주제를 지웠습니다.", escape(by)),
    };
    Some(Line::new(Style::System, text))
}

/// What marks the user's own chat lines on a terminal: `[나]` ("me") rather than the
/// name, which may not be known yet and would read like someone else's line.
pub const OWN_MARK: &str = "[나]";

/// The line shown on a terminal for a chat line the user sent.
pub fn own_chat_line(text: &str) -> Line {
    Line::new(Style::Own, format!("{OWN_MARK} {}", escape(text)))
}

/// `text` with every character `is_escaped` picks made visible: `\n`, `\r`, `\t`; else
/// the code point in hex, as Python's `repr` writes it — `\xNN` up to U+00FF (C0
/// controls, DEL, C1 controls, soft hyphen), `\uNNNN` in the rest of the BMP (`\u202e`),
/// `\UNNNNNNNN` above (`\U000e0001`). Borrows when there is nothing to escape.
///
/// This is the only escaping of server text: every line that shows something the
/// server sent (chats, system messages, room lists, the prompt, error and trace lines)
/// goes through here.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_escaped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        // Writing to a String cannot fail.
        let _ = match c {
            '\n' => out.write_str("\\n"),
            '\r' => out.write_str("\\r"),
            '\t' => out.write_str("\\t"),
            c if !is_escaped(c) => out.write_char(c),
            c if u32::from(c) <= 0xff => write!(out, "\\x{:02x}", u32::from(c)),
            c if u32::from(c) <= 0xffff => write!(out, "\\u{:04x}", u32::from(c)),
            c => write!(out, "\\U{:08x}", u32::from(c)),
        };
    }
    Cow::Owned(out)
}

/// Whether a character from the server is shown escaped rather than sent to the
/// terminal: a control character (C0, DEL, C1 — which some terminals obey as escape
/// sequences), a format character (category Cf: the bidi controls U+061C, U+200E,
/// U+200F, U+202A–U+202E and U+2066–U+2069, zero-width space and joiners, word joiner,
/// BOM, soft hyphen, tag characters, …) or a line or paragraph separator (U+2028,
/// U+2029). Format characters are invisible or rearrange what follows them, so a
/// server could use them to make a line read differently from what it holds.
///
/// That includes the zero-width joiner (U+200D) inside emoji sequences, so a family
/// emoji shows as its members joined by `\u200d`, and the tag characters of flags such
/// as England's: the rule has no exceptions a server could hide behind. Emoji
/// themselves, their variation selectors and skin tones, regional-indicator flags,
/// combining marks, Hangul and spaces (NBSP, U+3000) are not format characters and
/// pass unchanged; tab, a control, stays `\t`.
fn is_escaped(c: char) -> bool {
    c.is_control()
        || matches!(
            c.general_category(),
            GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
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
    fn direct_lines_show_the_other_party_and_direction() {
        let direct = |member: &str, text: &str, outgoing| {
            response_lines(&Response::Direct {
                member: member.into(),
                text: text.into(),
                time: 1_700_000_000_000,
                outgoing,
            })
        };
        assert_eq!(
            direct("bob", "안녕  하세요 😀", false),
            [Line::new(Style::Direct, "[귓속말 ← bob] 안녕  하세요 😀")]
        );
        assert_eq!(
            direct("김 철수", "hi", true),
            [Line::new(Style::Direct, "[귓속말 → 김 철수] hi")]
        );
        // Escaped like every other line: no fake second line, no terminal codes.
        assert_eq!(
            direct("ev\x1bil", "a\nb\u{202e}c", false)[0].text,
            "[귓속말 ← ev\\x1bil] a\\nb\\u202ec"
        );
        // A direct message to a client that never opted in is a system message.
        assert_eq!(
            response_lines(&Response::system("[bob] 님의 귓속말: hi")),
            [Line::new(
                Style::System,
                "[시스템 메시지] [bob] 님의 귓속말: hi"
            )]
        );
    }

    #[test]
    fn topic_lines_on_entry_change_and_clear() {
        let topic = |topic: &str, by: &str| {
            response_lines(&Response::Topic {
                room_id: 3,
                topic: topic.into(),
                by: by.into(),
            })
        };
        assert_eq!(
            topic("오늘은  Rust 😀", ""),
            [Line::new(Style::System, "[주제] 오늘은  Rust 😀")]
        );
        assert_eq!(
            topic("새 주제", "alice"),
            [Line::new(
                Style::System,
                "[주제] alice 님이 주제를 바꿨습니다: 새 주제"
            )]
        );
        assert_eq!(
            topic("", "김 철수"),
            [Line::new(
                Style::System,
                "[주제] 김 철수 님이 주제를 지웠습니다."
            )]
        );
        // Nothing to tell: no topic, told by no one.
        assert_eq!(topic("", ""), []);
        // Escaped like every other line: no fake second line, no terminal codes.
        assert_eq!(topic("a\nb\u{202e}c", "")[0].text, "[주제] a\\nb\\u202ec");
        assert_eq!(
            topic("t\x1b[2J", "ev\x1bil")[0].text,
            "[주제] ev\\x1bil 님이 주제를 바꿨습니다: t\\x1b[2J"
        );
        assert_eq!(
            topic("", "ev\u{2028}il")[0].text,
            "[주제] ev\\u2028il 님이 주제를 지웠습니다."
        );
    }

    #[test]
    fn rooms_table_shows_a_topic_after_the_title() {
        let rooms = vec![
            RoomInfo {
                room_id: 1,
                title: "lobby".into(),
                members: vec!["a".into(), "b c".into()],
                topic: Some("오늘은  Rust 😀".into()),
            },
            RoomInfo {
                room_id: 2,
                title: "셋".into(),
                members: vec![],
                topic: None,
            },
            RoomInfo {
                room_id: 3,
                title: "t".into(),
                members: vec!["m".into()],
                topic: Some("a\n| b\u{202e}".into()),
            },
        ];
        assert_eq!(
            texts(Response::RoomsResult { rooms }),
            [
                "---",
                "[방목록]",
                "방ID | 방제목 | 멤버들",
                "1 | lobby (주제: 오늘은  Rust 😀) | a,b c",
                // No topic: the reference's row, byte for byte.
                "2 | 셋 | ",
                "3 | t (주제: a\\n| b\\u202e) | m",
                "---"
            ]
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
                topic: None,
            },
            RoomInfo {
                room_id: 3,
                title: "셋".into(),
                members: vec![],
                topic: None,
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
            topic: None,
        }];
        assert_eq!(
            texts(Response::RoomsResult { rooms })[3],
            "2 | t\\x1bx | m\\n,n"
        );
    }

    #[test]
    fn escape_borrows_clean_text() {
        assert!(matches!(escape("평범한 text"), Cow::Borrowed(_)));
        assert!(matches!(escape(UNTOUCHED), Cow::Borrowed(_)));
        assert_eq!(escape("\u{a0}\u{3000}"), "\u{a0}\u{3000}");
    }

    /// The characters the review named, each with how it must be shown: bidi
    /// controls, separators, zero-width and other format characters (Cf), one from
    /// above the BMP.
    const FORMAT_CHARS: &[(char, &str)] = &[
        ('\u{061c}', "\\u061c"),      // ARABIC LETTER MARK
        ('\u{200e}', "\\u200e"),      // LRM
        ('\u{200f}', "\\u200f"),      // RLM
        ('\u{202a}', "\\u202a"),      // LRE
        ('\u{202b}', "\\u202b"),      // RLE
        ('\u{202c}', "\\u202c"),      // PDF
        ('\u{202d}', "\\u202d"),      // LRO
        ('\u{202e}', "\\u202e"),      // RLO
        ('\u{2066}', "\\u2066"),      // LRI
        ('\u{2067}', "\\u2067"),      // RLI
        ('\u{2068}', "\\u2068"),      // FSI
        ('\u{2069}', "\\u2069"),      // PDI
        ('\u{2028}', "\\u2028"),      // LINE SEPARATOR (Zl)
        ('\u{2029}', "\\u2029"),      // PARAGRAPH SEPARATOR (Zp)
        ('\u{200b}', "\\u200b"),      // ZERO WIDTH SPACE
        ('\u{200c}', "\\u200c"),      // ZWNJ
        ('\u{200d}', "\\u200d"),      // ZWJ
        ('\u{2060}', "\\u2060"),      // WORD JOINER
        ('\u{2061}', "\\u2061"),      // FUNCTION APPLICATION
        ('\u{2062}', "\\u2062"),      // INVISIBLE TIMES
        ('\u{2063}', "\\u2063"),      // INVISIBLE SEPARATOR
        ('\u{2064}', "\\u2064"),      // INVISIBLE PLUS
        ('\u{feff}', "\\ufeff"),      // BOM / ZWNBSP
        ('\u{00ad}', "\\xad"),        // SOFT HYPHEN
        ('\u{e0001}', "\\U000e0001"), // LANGUAGE TAG
    ];

    /// Ordinary text that must pass byte for byte: Hangul (syllables and conjoining
    /// jamo), emoji with a variation selector, a skin tone and a regional-indicator
    /// flag, a combining mark, NBSP and U+3000, a backslash.
    const UNTOUCHED: &str =
        "안녕하세요 \u{1100}\u{1161} 😀 ❤\u{fe0f} 👍\u{1f3fd} 🇰🇷 e\u{301} a\u{a0}b\u{3000}c \\x1b";

    #[test]
    fn format_characters_and_separators_are_escaped() {
        for &(c, shown) in FORMAT_CHARS {
            assert!(is_escaped(c), "U+{:04X}", u32::from(c));
            assert_eq!(escape(&format!("a{c}b")), format!("a{shown}b"));
        }
        // A ZWJ emoji sequence is escaped too: its joiners are format characters.
        assert_eq!(
            escape("\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}"),
            "\u{1f468}\\u200d\u{1f469}\\u200d\u{1f467}"
        );
        // A spoofed line: an override that would show "exe.txt" as "txt.exe".
        assert_eq!(escape("photo\u{202e}txt.exe"), "photo\\u202etxt.exe");
        assert_eq!(escape(UNTOUCHED), UNTOUCHED);
    }

    #[test]
    fn format_characters_are_escaped_on_every_path() {
        for &(c, shown) in FORMAT_CHARS {
            let room = RoomInfo {
                room_id: 5,
                title: format!("방{c}제목"),
                members: vec![format!("m{c}"), "한글 😀".into()],
                topic: None,
            };
            assert_eq!(
                texts(Response::Chat {
                    member: format!("ev{c}il").into(),
                    text: format!("안녕{c}😀").into(),
                }),
                [format!("[ev{shown}il] 안녕{shown}😀")]
            );
            assert_eq!(
                texts(Response::system(format!("[bob]{c} 님이 입장했습니다."))),
                [format!("[시스템 메시지] [bob]{shown} 님이 입장했습니다.")]
            );
            assert_eq!(
                texts(Response::RoomsResult { rooms: vec![room] })[3],
                format!("5 | 방{shown}제목 | m{shown},한글 😀")
            );
            assert_eq!(
                own_chat_line(&format!("x{c}y")).text,
                format!("[나] x{shown}y")
            );
            assert_eq!(
                texts(Response::Topic {
                    room_id: 5,
                    topic: format!("주{c}제").into(),
                    by: format!("b{c}y").into(),
                }),
                [format!(
                    "[주제] b{shown}y 님이 주제를 바꿨습니다: 주{shown}제"
                )]
            );
            let room = RoomInfo {
                room_id: 6,
                title: "t".into(),
                members: vec![],
                topic: Some(format!("주{c}제")),
            };
            assert_eq!(
                texts(Response::RoomsResult { rooms: vec![room] })[3],
                format!("6 | t (주제: 주{shown}제) | ")
            );
        }
        assert_eq!(
            texts(Response::Chat {
                member: "김".into(),
                text: UNTOUCHED.into(),
            }),
            [format!("[김] {UNTOUCHED}")]
        );
    }
}
