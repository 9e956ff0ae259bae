//! Who and where the user is, as far as the client can tell, and the prompt that
//! shows it on a terminal: `NAME@ROOM> `. No I/O.
//!
//! The protocol has no "who am I" message, so [`Identity`] follows the server's own
//! notices to this client (`docs/PROTOCOL.md` §4): `이름이 X 으로 변경되었습니다.`
//! sets the name, `방제[T] 방에 입장했습니다.` sets the room and
//! `방제[T] 대화 방에서 퇴장했습니다.` clears it, as does being kicked (the `moderation`
//! extension: `[BY] 님이 나를 방에서 내보냈습니다.`, perhaps with ` 이유: …`). The default name the server gives on
//! connect is never sent, so until a name is confirmed it shows as `(you)` — or, with
//! neither name nor room known, the prompt is the plain `> `. Notices about others
//! (`OLD 의 이름이 …`, `[NAME] 님이 입장했습니다.`) do not match and change nothing.

use chat_proto::Response;

use crate::editor::{char_width, str_width};
use crate::render::escape;

/// Shown for the name before the server has confirmed one.
const UNNAMED: &str = "(you)";

/// What ends every prompt.
const PROMPT_END: &str = "> ";

/// The user's name and room, learnt from the server's notices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    name: Option<String>,
    room: Option<String>,
}

impl Identity {
    /// Nothing known yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The confirmed name, if any (as the server sent it, unescaped).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The current room's title, if in one (as the server sent it, unescaped).
    pub fn room(&self) -> Option<&str> {
        self.room.as_deref()
    }

    /// Updates from one response; returns whether anything changed.
    pub fn observe(&mut self, response: &Response<'_>) -> bool {
        let Response::SystemMessage { text } = response else {
            return false;
        };
        let before = self.clone();
        if let Some(name) = text
            .strip_prefix("이름이 ")
            .and_then(|rest| rest.strip_suffix(" 으로 변경되었습니다."))
        {
            self.name = Some(name.to_owned());
        } else if let Some(title) = text
            .strip_prefix("방제[")
            .and_then(|rest| rest.strip_suffix("] 방에 입장했습니다."))
        {
            self.room = Some(title.to_owned());
        } else if (text.starts_with("방제[") && text.ends_with("] 대화 방에서 퇴장했습니다."))
            || is_kicked_notice(text)
        {
            self.room = None;
        }
        *self != before
    }

    /// The prompt text (escaped, no colour) for a terminal `width` columns wide, and
    /// its width in columns. The name and room are cut (ending in `~`) so the prompt
    /// takes at most half the row: a long title must not leave no room to type.
    pub fn prompt(&self, width: usize) -> (String, usize) {
        if self.name.is_none() && self.room.is_none() {
            return (PROMPT_END.to_owned(), str_width(PROMPT_END));
        }
        let mut who = escape(self.name.as_deref().unwrap_or(UNNAMED)).into_owned();
        if let Some(room) = &self.room {
            who.push('@');
            who.push_str(&escape(room));
        }
        let limit = (width / 2).saturating_sub(str_width(PROMPT_END)).max(1);
        if str_width(&who) > limit {
            let mut cut = String::new();
            let mut used = 0;
            for c in who.chars() {
                // One column is kept for the `~`.
                if used + char_width(c) + 1 > limit {
                    break;
                }
                used += char_width(c);
                cut.push(c);
            }
            cut.push('~');
            who = cut;
        }
        who.push_str(PROMPT_END);
        let width = str_width(&who);
        (who, width)
    }
}

/// Whether a system message tells this client it was kicked from its room:
/// `[BY] 님이 나를 방에서 내보냈습니다.`, alone or followed by ` 이유: REASON`. BY holds
/// no brackets (no name does), so the notice to the others,
/// `[NAME] 님이 [BY] 님에 의해 방에서 내보내졌습니다. 이유: …`, cannot be taken for it
/// whatever its reason says.
fn is_kicked_notice(text: &str) -> bool {
    const KICKED: &str = "] 님이 나를 방에서 내보냈습니다.";
    let Some(rest) = text.strip_prefix('[') else {
        return false;
    };
    let Some(end) = rest.find(']') else {
        return false;
    };
    if rest[..end].contains('[') {
        return false;
    }
    rest[end..]
        .strip_prefix(KICKED)
        .is_some_and(|tail| tail.is_empty() || tail.starts_with(" 이유: "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system(identity: &mut Identity, text: &str) -> bool {
        identity.observe(&Response::system(text.to_owned()))
    }

    #[test]
    fn follows_name_and_room_notices() {
        let mut id = Identity::new();
        assert_eq!(id.prompt(80), ("> ".to_owned(), 2));
        assert!(system(&mut id, "방제[lobby] 방에 입장했습니다."));
        assert_eq!(id.prompt(80).0, "(you)@lobby> ");
        assert!(system(&mut id, "이름이 alice 으로 변경되었습니다."));
        assert_eq!(id.prompt(80).0, "alice@lobby> ");
        assert!(system(&mut id, "방제[lobby] 대화 방에서 퇴장했습니다."));
        assert_eq!(id.prompt(80).0, "alice> ");
        assert_eq!(id.name(), Some("alice"));
        assert_eq!(id.room(), None);
    }

    #[test]
    fn being_kicked_leaves_the_room() {
        let mut id = Identity::new();
        system(&mut id, "이름이 alice 으로 변경되었습니다.");
        system(&mut id, "방제[lobby] 방에 입장했습니다.");
        assert!(system(&mut id, "[bob] 님이 나를 방에서 내보냈습니다."));
        assert_eq!(id.prompt(80).0, "alice> ");
        system(&mut id, "방제[lobby] 방에 입장했습니다.");
        assert!(system(
            &mut id,
            "[bob] 님이 나를 방에서 내보냈습니다. 이유: 도배 [x] 님이 나를"
        ));
        assert_eq!(id.room(), None);
        // Someone else kicked, whatever the reason says; other texts alike.
        system(&mut id, "방제[lobby] 방에 입장했습니다.");
        for text in [
            "[carol] 님이 [bob] 님에 의해 방에서 내보내졌습니다.",
            "[carol] 님이 [bob] 님에 의해 방에서 내보내졌습니다. 이유: [x] 님이 나를 방에서 내보냈습니다.",
            "[bob] 님이 나를 방에서 내보냈습니다.!",
            "bob 님이 나를 방에서 내보냈습니다.",
            "[[bob] 님이 나를 방에서 내보냈습니다.",
        ] {
            assert!(!system(&mut id, text), "{text}");
        }
        assert!(!id.observe(&Response::Chat {
            member: "bob".into(),
            text: "[bob] 님이 나를 방에서 내보냈습니다.".into(),
        }));
        assert_eq!(id.prompt(80).0, "alice@lobby> ");
    }

    #[test]
    fn notices_about_others_change_nothing() {
        let mut id = Identity::new();
        assert!(!system(&mut id, "bob 의 이름이 carol 으로 변경되었습니다."));
        assert!(!system(&mut id, "[bob] 님이 입장했습니다."));
        assert!(!system(&mut id, "[bob] 님이 퇴장했습니다."));
        assert!(!id.observe(&Response::Chat {
            member: "bob".into(),
            text: "이름이 x 으로 변경되었습니다.".into(),
        }));
        assert_eq!(id, Identity::new());
    }

    #[test]
    fn prompt_is_escaped_and_cut_to_half_the_row() {
        let mut id = Identity::new();
        system(&mut id, "이름이 a\x1bb 으로 변경되었습니다.");
        assert_eq!(id.prompt(80).0, "a\\x1bb> ");
        system(&mut id, "방제[아주 긴 방 제목입니다] 방에 입장했습니다.");
        let (prompt, width) = id.prompt(20);
        assert_eq!(prompt, "a\\x1bb@~> ");
        assert_eq!(width, 10);
    }

    #[test]
    fn prompt_escapes_format_characters_and_separators() {
        for (c, shown) in [
            ('\u{061c}', "\\u061c"),
            ('\u{200e}', "\\u200e"),
            ('\u{200f}', "\\u200f"),
            ('\u{202a}', "\\u202a"),
            ('\u{202b}', "\\u202b"),
            ('\u{202c}', "\\u202c"),
            ('\u{202d}', "\\u202d"),
            ('\u{202e}', "\\u202e"),
            ('\u{2066}', "\\u2066"),
            ('\u{2067}', "\\u2067"),
            ('\u{2068}', "\\u2068"),
            ('\u{2069}', "\\u2069"),
            ('\u{2028}', "\\u2028"),
            ('\u{2029}', "\\u2029"),
            ('\u{200b}', "\\u200b"),
            ('\u{200c}', "\\u200c"),
            ('\u{200d}', "\\u200d"),
            ('\u{2060}', "\\u2060"),
            ('\u{2061}', "\\u2061"),
            ('\u{2062}', "\\u2062"),
            ('\u{2063}', "\\u2063"),
            ('\u{2064}', "\\u2064"),
            ('\u{feff}', "\\ufeff"),
            ('\u{00ad}', "\\xad"),
            ('\u{e0001}', "\\U000e0001"),
        ] {
            let mut id = Identity::new();
            system(&mut id, &format!("이름이 철{c}수 으로 변경되었습니다."));
            system(&mut id, &format!("방제[방{c}😀] 방에 입장했습니다."));
            let expected = format!("철{shown}수@방{shown}😀> ");
            // Escapes are ASCII, one column each; 철, 수, 방 and 😀 take two.
            let width = expected.chars().count() + 4;
            assert_eq!(id.prompt(80), (expected, width));
        }
    }
}
