//! The shared log's entries: how each room event is written as one stream field, and
//! read back.
//!
//! Every entry of `{P}:log` has one field, `e`, whose value is the event's parts
//! joined by U+001F (unit separator):
//!
//! ```text
//! kind ␟ writer ␟ seq ␟ member-node ␟ member-client ␟ room ␟ rest
//! ```
//!
//! * `kind`: `n` created, `j` joined, `l` left, `r` renamed, `c` chat, `x` node gone.
//! * `writer` and `seq`: the node that wrote it and that node's number for the
//!   operation (0 for entries written on another node's behalf, by the reaper). A
//!   node's operations travel in order on one connection, so its numbers only grow
//!   along the log; a number at or below the last one seen from that writer is a
//!   resend after a lost connection and is skipped (exactly once, not at least once).
//! * `rest`: `n` name ␟ title; `j` name; `l` `1` if the member gets its own notice;
//!   `r` the new name; `c` the text; `x` nothing.
//!
//! The free text (title, chat text) is always last, so a separator inside it is
//! harmless; names are validated and never contain one. One field rather than seven
//! keeps Redis's per-chat cost down (fewer strings to parse and store).
//!
//! This module only encodes and decodes; it never touches Redis.

use chat_core::{ClientId, RoomId};

/// The separator between parts.
pub(crate) const SEP: char = '\u{1f}';

/// A member of a room, cluster-wide: the node it is connected to, and its client id
/// there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct MemberId {
    pub(crate) node: u64,
    pub(crate) client: ClientId,
}

/// One room event as the log carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event<'a> {
    Created { name: &'a str, title: &'a str },
    Joined { name: &'a str },
    Left { notify_self: bool },
    Renamed { name: &'a str },
    Chat { text: &'a str },
    NodeGone,
}

/// One entry: who wrote it, about which member and room, and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry<'a> {
    pub(crate) writer: u64,
    pub(crate) seq: u64,
    pub(crate) member: MemberId,
    pub(crate) room: RoomId,
    pub(crate) event: Event<'a>,
}

impl<'a> Entry<'a> {
    /// Reads an entry's `e` field; `None` for anything malformed (logged and skipped
    /// by the reader: a foreign writer must not crash the cluster).
    pub(crate) fn parse(field: &'a str) -> Option<Entry<'a>> {
        let mut parts = field.splitn(7, SEP);
        let kind = parts.next()?;
        let writer = parts.next()?.parse().ok()?;
        let seq = parts.next()?.parse().ok()?;
        let node = parts.next()?.parse().ok()?;
        let client = parts.next()?.parse().ok()?;
        let room = parts.next()?.parse().ok()?;
        let rest = parts.next().unwrap_or("");
        let event = match kind {
            "n" => {
                let (name, title) = rest.split_once(SEP)?;
                Event::Created { name, title }
            }
            "j" => Event::Joined { name: rest },
            "l" => Event::Left {
                notify_self: rest == "1",
            },
            "r" => Event::Renamed { name: rest },
            "c" => Event::Chat { text: rest },
            "x" => Event::NodeGone,
            _ => return None,
        };
        Some(Entry {
            writer,
            seq,
            member: MemberId { node, client },
            room,
            event,
        })
    }
}

/// The `e` field of a chat entry (the only entry written from Rust: the others are
/// written by the Lua scripts, in the same layout).
pub(crate) fn chat(writer: u64, seq: u64, client: ClientId, room: RoomId, text: &str) -> String {
    format!("c{SEP}{writer}{SEP}{seq}{SEP}{writer}{SEP}{client}{SEP}{room}{SEP}{text}")
}

/// A stream entry id, `ms-seq`, ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct StreamId {
    pub(crate) ms: u64,
    pub(crate) seq: u64,
}

impl StreamId {
    /// Parses `ms-seq`.
    pub(crate) fn parse(text: &str) -> Option<StreamId> {
        let (ms, seq) = text.split_once('-')?;
        Some(StreamId {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chat_reads_back_with_separators_in_its_text() {
        let field = chat(7, 42, 3, 9, "a\u{1f}b|c");
        let entry = Entry::parse(&field).unwrap();
        assert_eq!(
            entry,
            Entry {
                writer: 7,
                seq: 42,
                member: MemberId { node: 7, client: 3 },
                room: 9,
                event: Event::Chat { text: "a\u{1f}b|c" },
            }
        );
    }

    #[test]
    fn script_entries_read_back() {
        let created =
            Entry::parse("n\u{1f}1\u{1f}2\u{1f}1\u{1f}5\u{1f}3\u{1f}bob\u{1f}my room").unwrap();
        assert_eq!(
            created.event,
            Event::Created {
                name: "bob",
                title: "my room"
            }
        );
        let left = Entry::parse("l\u{1f}9\u{1f}0\u{1f}1\u{1f}5\u{1f}3\u{1f}0").unwrap();
        assert_eq!(left.event, Event::Left { notify_self: false });
        assert_eq!(left.member, MemberId { node: 1, client: 5 });
    }

    #[test]
    fn malformed_entries_are_refused() {
        for bad in [
            "",
            "c",
            "q\u{1f}1\u{1f}1\u{1f}1\u{1f}1\u{1f}1\u{1f}x",
            "c\u{1f}x\u{1f}1\u{1f}1\u{1f}1\u{1f}1\u{1f}t",
            "n\u{1f}1\u{1f}1\u{1f}1\u{1f}1\u{1f}1\u{1f}no-title",
        ] {
            assert_eq!(Entry::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn stream_ids_order_as_redis_does() {
        let a = StreamId::parse("10-5").unwrap();
        let b = StreamId::parse("10-12").unwrap();
        let c = StreamId::parse("11-0").unwrap();
        assert!(a < b && b < c);
        assert_eq!(b.to_string(), "10-12");
        assert_eq!(StreamId::parse("10"), None);
    }
}
