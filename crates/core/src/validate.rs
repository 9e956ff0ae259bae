//! Rules for what clients may choose: names, room titles, chat text.
//!
//! The reference server took anything. We refuse what would let one client confuse
//! others: a name or title that is empty, too long, or holds control characters
//! (a newline in a name could forge a whole `[시스템 메시지]` line in someone's
//! terminal), and the name `시스템 메시지` itself, which would make a chat line print
//! exactly like a system line. Chat text is never refused for its characters (that
//! would lose the message); control characters other than tab are replaced.

use std::borrow::Cow;

use crate::texts;

/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 32;
/// Longest room title, in characters.
pub const MAX_TITLE_CHARS: usize = 64;

/// What a chat's control characters become.
const REPLACEMENT: char = '\u{FFFD}';

/// Characters that move the cursor or change how the rest of a line is shown:
/// C0/C1 controls, DEL, line/paragraph separators and bidi overrides/isolates.
fn is_disruptive(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Checks a requested name; the error is the text to send back.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    if name.trim().is_empty() {
        Err(texts::NAME_EMPTY)
    } else if name.chars().count() > MAX_NAME_CHARS {
        Err(texts::NAME_TOO_LONG)
    } else if name.chars().any(is_disruptive) {
        Err(texts::NAME_CONTROL)
    } else if name.trim() == "시스템 메시지" {
        Err(texts::NAME_RESERVED)
    } else {
        Ok(())
    }
}

/// Checks a requested room title; the error is the text to send back.
pub fn check_title(title: &str) -> Result<(), &'static str> {
    if title.trim().is_empty() {
        Err(texts::TITLE_EMPTY)
    } else if title.chars().count() > MAX_TITLE_CHARS {
        Err(texts::TITLE_TOO_LONG)
    } else if title.chars().any(is_disruptive) {
        Err(texts::TITLE_CONTROL)
    } else {
        Ok(())
    }
}

/// Chat text as it is forwarded: control characters other than tab become U+FFFD.
/// Borrows when there is nothing to replace (the common case).
pub fn sanitize_chat(text: &str) -> Cow<'_, str> {
    let bad = |c: char| c != '\t' && is_disruptive(c);
    if !text.chars().any(bad) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| if bad(c) { REPLACEMENT } else { c })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(check_name("홍길동"), Ok(()));
        assert_eq!(check_name("a b"), Ok(()));
        assert_eq!(check_name(""), Err(texts::NAME_EMPTY));
        assert_eq!(check_name(" \t "), Err(texts::NAME_EMPTY));
        assert_eq!(check_name(&"가".repeat(32)), Ok(()));
        assert_eq!(check_name(&"가".repeat(33)), Err(texts::NAME_TOO_LONG));
        assert_eq!(check_name("a\nb"), Err(texts::NAME_CONTROL));
        assert_eq!(check_name("a\u{1b}[31m"), Err(texts::NAME_CONTROL));
        assert_eq!(check_name("a\u{202E}b"), Err(texts::NAME_CONTROL));
        assert_eq!(check_name("시스템 메시지"), Err(texts::NAME_RESERVED));
    }

    #[test]
    fn titles() {
        assert_eq!(check_title("hello world"), Ok(()));
        assert_eq!(check_title(""), Err(texts::TITLE_EMPTY));
        assert_eq!(check_title(&"x".repeat(65)), Err(texts::TITLE_TOO_LONG));
        assert_eq!(check_title("a\rb"), Err(texts::TITLE_CONTROL));
    }

    #[test]
    fn chat_text() {
        assert!(matches!(
            sanitize_chat("안녕\t😀"),
            Cow::Borrowed("안녕\t😀")
        ));
        assert_eq!(
            sanitize_chat("a\nb\u{7}c\u{1b}"),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}"
        );
    }
}
