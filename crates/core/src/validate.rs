//! Rules for what clients may choose: names, room titles, chat text.
//!
//! The reference server took anything. We refuse what would let one client pass for
//! another or for the server: the reference client prints a chat as `[NAME] text` and
//! a notice as `[시스템 메시지] text`, so a name must not be able to look like either.
//!
//! # Names
//!
//! A requested name is first normalised — NFC (so a decomposed Hangul spelling is the
//! same name), surrounding whitespace removed — then refused, first rule first, if it:
//!
//! 1. is empty;
//! 2. has more than [`MAX_NAME_CHARS`] characters;
//! 3. holds a control, format (bidi controls, zero-width characters, BOM), separator,
//!    private-use or unassigned character;
//! 4. holds a bracket — any opening or closing punctuation (`[`, `(`, `［`, `「`, …), or
//!    anything whose TR39 skeleton has one — which could forge `[시스템 메시지] [bob`,
//!    and keeps chosen names apart from the `(IP, PORT)` default names;
//! 5. has nothing visible once whitespace, default-ignorable characters and
//!    combining marks are set aside (Hangul fillers, lone accents);
//! 6. is the reserved `시스템 메시지` under any confusable spelling: names are compared
//!    by [`name_key`], the TR39 skeleton with whitespace runs made one space, and for
//!    this rule with whitespace removed altogether (no space, two spaces, NBSP,
//!    U+3000 all count).
//!
//! Uniqueness (no two clients whose names have the same key) is the broker's: it is
//! shared state (see [`crate::MessageBroker::claim_name`]).
//!
//! # Titles and chat text
//!
//! A title is normalised the same way and refused when empty, too long, or holding
//! the characters of rule 3. Chat text is never refused for its characters (that
//! would lose the message): control characters other than tab and the bidi and
//! separator characters that move the cursor or reorder a line become U+FFFD, and any
//! run of more than [`MAX_SPACE_RUN`] whitespace characters becomes one space, so that
//! padding cannot push a forged `[시스템 메시지] …` to the start of a fresh terminal line.

use std::borrow::Cow;

use chat_proto::message::is_disruptive;
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
use unicode_security::skeleton;

use crate::texts;

/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 32;
/// Longest room title, in characters.
pub const MAX_TITLE_CHARS: usize = 64;
/// Longest run of whitespace kept as it is in chat text.
pub const MAX_SPACE_RUN: usize = 3;

/// The name no client may take, in any confusable spelling.
const RESERVED_NAME: &str = "시스템 메시지";

/// What a chat's disruptive characters become.
const REPLACEMENT: char = '\u{FFFD}';

/// Characters no name or title may hold (rule 3): what [`is_disruptive`] covers, and
/// every other format, separator, private-use, surrogate or unassigned code point.
fn is_forbidden(c: char) -> bool {
    is_disruptive(c)
        || matches!(
            c.general_category(),
            GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
                | GeneralCategory::PrivateUse
                | GeneralCategory::Surrogate
                | GeneralCategory::Unassigned
        )
}

/// Opening or closing punctuation: brackets, parentheses, corner brackets, ….
fn is_bracket(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::OpenPunctuation | GeneralCategory::ClosePunctuation
    ) || matches!(c, '[' | ']' | '(' | ')' | '{' | '}')
}

/// NFC, surrounding whitespace removed.
fn normalize(raw: &str) -> String {
    let nfc: String = raw.nfc().collect();
    nfc.trim().to_owned()
}

/// The key names are compared by: the TR39 skeleton (which also drops default-ignorable
/// characters), whitespace runs made one space. Two names with the same key look alike.
pub fn name_key(name: &str) -> String {
    let mut key = String::with_capacity(name.len());
    let mut in_space = false;
    for c in skeleton(name) {
        if c.is_whitespace() {
            in_space = true;
            continue;
        }
        if in_space && !key.is_empty() {
            key.push(' ');
        }
        in_space = false;
        key.push(c);
    }
    key
}

/// Checks a requested name; answers the name as it will be kept (normalised) or the
/// text to send back.
pub fn check_name(raw: &str) -> Result<String, &'static str> {
    let name = normalize(raw);
    if name.is_empty() {
        return Err(texts::NAME_EMPTY);
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(texts::NAME_TOO_LONG);
    }
    if name.chars().any(is_forbidden) {
        return Err(texts::NAME_CONTROL);
    }
    let skeleton: Vec<char> = skeleton(&name).collect();
    if name.chars().any(is_bracket) || skeleton.iter().copied().any(is_bracket) {
        return Err(texts::NAME_BRACKETS);
    }
    let visible = skeleton.iter().any(|&c| {
        !c.is_whitespace()
            && !matches!(
                c.general_category(),
                GeneralCategory::NonspacingMark
                    | GeneralCategory::EnclosingMark
                    | GeneralCategory::SpacingMark
            )
    });
    if !visible {
        return Err(texts::NAME_INVISIBLE);
    }
    let squashed = |s: &str| -> String { name_key(s).chars().filter(|c| *c != ' ').collect() };
    if squashed(&name) == squashed(RESERVED_NAME) {
        return Err(texts::NAME_RESERVED);
    }
    Ok(name)
}

/// Checks a requested room title; answers the title as it will be kept (normalised) or
/// the text to send back.
pub fn check_title(raw: &str) -> Result<String, &'static str> {
    let title = normalize(raw);
    if title.is_empty() {
        Err(texts::TITLE_EMPTY)
    } else if title.chars().count() > MAX_TITLE_CHARS {
        Err(texts::TITLE_TOO_LONG)
    } else if title.chars().any(is_forbidden) {
        Err(texts::TITLE_CONTROL)
    } else {
        Ok(title)
    }
}

/// The longest room topic, in characters (the `moderation` extension).
pub const MAX_TOPIC_CHARS: usize = 200;

/// Checks a requested room topic as a title is checked (normalised, no control or
/// format characters) but up to [`MAX_TOPIC_CHARS`]; an empty one clears the topic
/// (`None`).
pub fn check_topic(raw: &str) -> Result<Option<String>, &'static str> {
    let topic = normalize(raw);
    if topic.is_empty() {
        Ok(None)
    } else if topic.chars().count() > MAX_TOPIC_CHARS {
        Err(texts::TOPIC_TOO_LONG)
    } else if topic.chars().any(is_forbidden) {
        Err(texts::TOPIC_CONTROL)
    } else {
        Ok(Some(topic))
    }
}

/// Chat text as it is forwarded (see the module doc). Borrows when nothing changes
/// (the common case).
pub fn sanitize_chat(text: &str) -> Cow<'_, str> {
    let bad = |c: char| c != '\t' && is_disruptive(c);
    let long_run = {
        let mut run = 0;
        text.chars().any(|c| {
            run = if c.is_whitespace() { run + 1 } else { 0 };
            run > MAX_SPACE_RUN
        })
    };
    if !long_run && !text.chars().any(bad) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() > MAX_SPACE_RUN {
            out.push(' ');
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() && !bad(c) {
            run.push(c);
            continue;
        }
        flush(&mut run, &mut out);
        out.push(if bad(c) { REPLACEMENT } else { c });
    }
    flush(&mut run, &mut out);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn topics_are_checked_like_titles_but_longer() {
        assert_eq!(check_topic("  "), Ok(None));
        assert_eq!(check_topic(" 숙제 "), Ok(Some("숙제".into())));
        assert_eq!(
            check_topic(&"가".repeat(MAX_TOPIC_CHARS)),
            Ok(Some("가".repeat(MAX_TOPIC_CHARS)))
        );
        assert_eq!(
            check_topic(&"가".repeat(MAX_TOPIC_CHARS + 1)),
            Err(texts::TOPIC_TOO_LONG)
        );
        assert_eq!(check_topic("a\u{202e}b"), Err(texts::TOPIC_CONTROL));
    }

    use super::*;

    #[test]
    fn names() {
        assert_eq!(check_name("홍길동"), Ok("홍길동".to_owned()));
        assert_eq!(check_name(" a b "), Ok("a b".to_owned()), "trimmed");
        assert_eq!(check_name(""), Err(texts::NAME_EMPTY));
        assert_eq!(check_name(" \t "), Err(texts::NAME_EMPTY));
        assert!(check_name(&"가".repeat(32)).is_ok());
        assert_eq!(check_name(&"가".repeat(33)), Err(texts::NAME_TOO_LONG));
        assert_eq!(check_name("a\nb"), Err(texts::NAME_CONTROL));
        assert_eq!(check_name("a\u{1b}[31m"), Err(texts::NAME_CONTROL));
        assert_eq!(check_name("a\u{202E}b"), Err(texts::NAME_CONTROL));
        assert_eq!(check_name("시스템 메시지"), Err(texts::NAME_RESERVED));
    }

    #[test]
    fn decomposed_hangul_is_the_same_name() {
        let decomposed: String = "앨리스".nfd().collect();
        assert_ne!(decomposed, "앨리스");
        assert_eq!(check_name(&decomposed), Ok("앨리스".to_owned()));
        let reserved: String = RESERVED_NAME.nfd().collect();
        assert_eq!(check_name(&reserved), Err(texts::NAME_RESERVED));
    }

    #[test]
    fn keys_make_look_alikes_equal() {
        // Cyrillic а and о for Latin a and o.
        assert_eq!(name_key("\u{430}lice"), name_key("alice"));
        assert_eq!(name_key("b\u{43e}b"), name_key("bob"));
        assert_eq!(name_key("a  b"), name_key("a b"));
        assert_eq!(name_key("a\u{3000}b"), name_key("a b"));
        assert_ne!(name_key("alice"), name_key("alicia"));
        // TR39's table (as docs/PROTOCOL.md §6.3 says): 1, l and I alike; 0 and O.
        assert_eq!(name_key("1"), name_key("l"));
        assert_eq!(name_key("I"), name_key("l"));
        assert_eq!(name_key("0"), name_key("O"));
        assert_ne!(name_key("bob"), name_key("Bob"), "case matters otherwise");
    }

    #[test]
    fn titles() {
        assert_eq!(check_title("hello world"), Ok("hello world".to_owned()));
        assert_eq!(check_title(""), Err(texts::TITLE_EMPTY));
        assert_eq!(check_title(&"x".repeat(65)), Err(texts::TITLE_TOO_LONG));
        assert_eq!(check_title("a\rb"), Err(texts::TITLE_CONTROL));
        assert_eq!(check_title("a\u{200B}b"), Err(texts::TITLE_CONTROL));
    }

    #[test]
    fn chat_text() {
        assert!(matches!(
            sanitize_chat("안녕\t😀   x"),
            Cow::Borrowed("안녕\t😀   x")
        ));
        assert_eq!(
            sanitize_chat("a\nb\u{7}c\u{1b}"),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}"
        );
        assert_eq!(sanitize_chat("hi    there"), "hi there");
        assert_eq!(
            sanitize_chat(&format!("x{}[시스템 메시지] fake", " ".repeat(200))),
            "x [시스템 메시지] fake"
        );
        assert_eq!(
            sanitize_chat("a\u{3000}\u{a0} \t b"),
            "a b",
            "any whitespace"
        );
    }
}
