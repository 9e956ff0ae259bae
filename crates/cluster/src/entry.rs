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
//! * `kind`: `n` created, `N` created registered, `j` joined, `l` left, `r`
//!   renamed, `c` chat, `d` given up by its owner, `x` node gone, `m` a direct
//!   message to the member (room 0); and about
//!   accounts (member and room 0): `a` registered, `p` new password, `t` token
//!   handed out, `u` token ended.
//! * `writer` and `seq`: the node that wrote it and that node's number for the
//!   operation (0 for entries written on another node's behalf, by the reaper). A
//!   node's operations travel in order on one connection, so its numbers only grow
//!   along the log; a number at or below the last one seen from that writer is a
//!   resend after a lost connection and is skipped (exactly once, not at least once).
//! * `rest`: `n` name ␟ title; `N` name ␟ owner's key ␟ title; `j` name [␟ the
//!   member's account key or nothing ␟ its address or nothing]; `l` `1` if
//!   the member gets its own notice; `r` the new name; `c` the text; `d` `1` if the
//!   room was deleted (`0`: it lasts until its last member leaves); `x` nothing;
//!   `m` the sender's name ␟ the text; `M` the member's account key (or nothing) ␟
//!   its moderation request (`moderation::Action`: its kind ␟ its fields, free text
//!   last);
//!   `a` key ␟ name ␟ password hash ␟ created ms; `p` key ␟ password hash; `t`
//!   token hash ␟ key ␟ expires ms; `u` token hash.
//!
//! The free text (title, chat text) is always last, so a separator inside it is
//! harmless; names are validated and never contain one. One field rather than seven
//! keeps Redis's per-chat cost down (fewer strings to parse and store).
//!
//! This module only encodes and decodes; it never touches Redis.

use std::net::IpAddr;

use chat_core::moderation::Action;
use chat_core::{AccountRecord, ClientId, RoomId, TokenRecord};

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
    Created {
        name: &'a str,
        title: &'a str,
        /// The account it is registered to, if any.
        owner: Option<&'a str>,
    },
    GivenUp {
        deleted: bool,
    },
    /// A direct message to the entry's member.
    Direct {
        from: &'a str,
        text: &'a str,
    },
    Account(AccountRecord),
    Password {
        key: &'a str,
        hash: &'a str,
    },
    Token(TokenRecord),
    TokenGone {
        hash: &'a str,
    },
    Joined {
        name: &'a str,
        /// Who the member is, for a registered room's moderation (ranks, bans).
        who: Who<'a>,
    },
    /// A moderation request of the entry's member, logged in as `account` (`Room::moderate`
    /// decides, on every node alike).
    Moderate {
        account: Option<&'a str>,
        action: Action,
    },
    Left {
        notify_self: bool,
    },
    Renamed {
        name: &'a str,
    },
    Chat {
        text: &'a str,
    },
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
                Event::Created {
                    name,
                    title,
                    owner: None,
                }
            }
            "N" => {
                let (name, rest) = rest.split_once(SEP)?;
                let (owner, title) = rest.split_once(SEP)?;
                Event::Created {
                    name,
                    title,
                    owner: Some(owner),
                }
            }
            "d" => Event::GivenUp {
                deleted: rest == "1",
            },
            "a" => {
                let mut parts = rest.splitn(4, SEP);
                Event::Account(AccountRecord {
                    key: parts.next()?.to_owned(),
                    name: parts.next()?.to_owned(),
                    password_hash: parts.next()?.to_owned(),
                    created_ms: parts.next()?.parse().ok()?,
                })
            }
            "p" => {
                let (key, hash) = rest.split_once(SEP)?;
                Event::Password { key, hash }
            }
            "t" => {
                let mut parts = rest.splitn(3, SEP);
                Event::Token(TokenRecord {
                    token_hash: parts.next()?.to_owned(),
                    key: parts.next()?.to_owned(),
                    expires_ms: parts.next()?.parse().ok()?,
                })
            }
            "u" => Event::TokenGone { hash: rest },
            "m" => {
                let (from, text) = rest.split_once(SEP)?;
                Event::Direct { from, text }
            }
            "j" => {
                let mut parts = rest.splitn(3, SEP);
                let name = parts.next().unwrap_or("");
                let account = parts.next().filter(|a| !a.is_empty());
                let address = parts.next().and_then(|a| a.parse().ok());
                Event::Joined {
                    name,
                    who: Who { account, address },
                }
            }
            "M" => {
                let (account, rest) = rest.split_once(SEP)?;
                Event::Moderate {
                    account: Some(account).filter(|a| !a.is_empty()),
                    action: action(rest)?,
                }
            }
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

/// A change to accounts, as the log tells it, for the accounts of this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AccountChange {
    Account(AccountRecord),
    Password { key: String, hash: String },
    Token(TokenRecord),
    TokenGone(String),
}

impl AccountChange {
    /// The change an entry tells, if it is about accounts.
    pub(crate) fn of(event: &Event<'_>) -> Option<Self> {
        Some(match event {
            Event::Account(account) => AccountChange::Account(account.clone()),
            Event::Password { key, hash } => AccountChange::Password {
                key: (*key).to_owned(),
                hash: (*hash).to_owned(),
            },
            Event::Token(token) => AccountChange::Token(token.clone()),
            Event::TokenGone { hash } => AccountChange::TokenGone((*hash).to_owned()),
            _ => return None,
        })
    }
}

/// Who a joining member is: the account it is logged in as, and its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Who<'a> {
    pub(crate) account: Option<&'a str>,
    pub(crate) address: Option<IpAddr>,
}

/// A moderation request as an `M` entry's rest: its kind, then its fields, free
/// text (a reason, a topic, a name) last.
fn action_text(action: &Action) -> String {
    let s = SEP;
    match action {
        Action::Op { key, name, op } => format!("op{s}{}{s}{key}{s}{name}", u8::from(*op)),
        Action::Owner { key, name } => format!("owner{s}{key}{s}{name}"),
        Action::Kick { key, reason } => format!("kick{s}{key}{s}{reason}"),
        Action::Ban {
            key,
            name,
            account,
            minutes,
        } => format!(
            "ban{s}{key}{s}{}{s}{}{s}{name}",
            account.as_deref().unwrap_or(""),
            minutes.map(|m| m.to_string()).unwrap_or_default()
        ),
        Action::Unban { key, name } => format!("unban{s}{key}{s}{name}"),
        Action::Topic { topic } => match topic {
            Some(topic) => format!("topic{s}1{s}{topic}"),
            None => format!("topic{s}0{s}"),
        },
    }
}

/// The inverse of [`action_text`].
fn action(rest: &str) -> Option<Action> {
    let (kind, rest) = rest.split_once(SEP)?;
    let owned = |s: &str| s.to_owned();
    Some(match kind {
        "op" => {
            let mut p = rest.splitn(3, SEP);
            let op = p.next()? == "1";
            let key = owned(p.next()?);
            Action::Op {
                key,
                name: owned(p.next()?),
                op,
            }
        }
        "owner" => {
            let (key, name) = rest.split_once(SEP)?;
            Action::Owner {
                key: owned(key),
                name: owned(name),
            }
        }
        "kick" => {
            let (key, reason) = rest.split_once(SEP)?;
            Action::Kick {
                key: owned(key),
                reason: owned(reason),
            }
        }
        "ban" => {
            let mut p = rest.splitn(4, SEP);
            let key = owned(p.next()?);
            let account = Some(p.next()?).filter(|a| !a.is_empty()).map(owned);
            let minutes = match p.next()? {
                "" => None,
                m => Some(m.parse().ok()?),
            };
            Action::Ban {
                key,
                name: owned(p.next()?),
                account,
                minutes,
            }
        }
        "unban" => {
            let (key, name) = rest.split_once(SEP)?;
            Action::Unban {
                key: owned(key),
                name: owned(name),
            }
        }
        "topic" => {
            let (has, topic) = rest.split_once(SEP)?;
            Action::Topic {
                topic: (has == "1").then(|| owned(topic)),
            }
        }
        _ => return None,
    })
}

/// The `e` field of a moderation request (written from Rust, like a chat).
pub(crate) fn moderation(
    writer: u64,
    seq: u64,
    client: ClientId,
    room: RoomId,
    account: Option<&str>,
    action: &Action,
) -> String {
    let body = action_text(action);
    let account = account.unwrap_or("");
    format!(
        "M{SEP}{writer}{SEP}{seq}{SEP}{writer}{SEP}{client}{SEP}{room}{SEP}{account}{SEP}{body}"
    )
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

impl StreamId {
    /// The stamp of the chat at this place in the log: its time, and a number the
    /// same on every node (milliseconds then sequence, packed), so a registered
    /// room's history read back from Redis numbers its lines as they were sent live.
    pub(crate) fn stamp(self) -> chat_core::room::Stamp {
        chat_core::room::Stamp {
            time_ms: self.ms,
            seq: Some((self.ms << 20) | self.seq.min((1 << 20) - 1)),
        }
    }
}

/// A registered room's history line as `scripts::CHAT_KEPT` keeps it (`stream id ␟
/// name ␟ text`), or `None` if malformed.
pub(crate) fn history_line(kept: &str) -> Option<chat_core::ChatLine> {
    let mut parts = kept.splitn(3, SEP);
    let stamp = StreamId::parse(parts.next()?)?.stamp();
    Some(chat_core::ChatLine {
        seq: stamp.seq?,
        time_ms: stamp.time_ms,
        member: parts.next()?.into(),
        text: parts.next()?.into(),
    })
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
                title: "my room",
                owner: None,
            }
        );
        let kept =
            Entry::parse("N\u{1f}1\u{1f}2\u{1f}1\u{1f}5\u{1f}3\u{1f}bob\u{1f}bob\u{1f}a\u{1f}b")
                .unwrap();
        assert_eq!(
            kept.event,
            Event::Created {
                name: "bob",
                title: "a\u{1f}b",
                owner: Some("bob"),
            }
        );
        let account = Entry::parse(
            "a\u{1f}1\u{1f}0\u{1f}0\u{1f}0\u{1f}0\u{1f}bob\u{1f}Bob\u{1f}$argon2id$v=19$x\u{1f}17",
        )
        .unwrap();
        assert_eq!(
            account.event,
            Event::Account(AccountRecord {
                key: "bob".into(),
                name: "Bob".into(),
                password_hash: "$argon2id$v=19$x".into(),
                created_ms: 17,
            })
        );
        let token = Entry::parse("t\u{1f}1\u{1f}0\u{1f}0\u{1f}0\u{1f}0\u{1f}ab12\u{1f}bob\u{1f}99")
            .unwrap();
        assert_eq!(
            token.event,
            Event::Token(TokenRecord {
                token_hash: "ab12".into(),
                key: "bob".into(),
                expires_ms: 99,
            })
        );
        let given_up = Entry::parse("d\u{1f}1\u{1f}4\u{1f}1\u{1f}0\u{1f}3\u{1f}1").unwrap();
        assert_eq!(given_up.event, Event::GivenUp { deleted: true });
        assert!(Entry::parse("a\u{1f}1\u{1f}0\u{1f}0\u{1f}0\u{1f}0\u{1f}bob\u{1f}Bob").is_none());
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

    #[test]
    fn moderation_requests_read_back() {
        let actions = [
            Action::Op {
                key: "bob".into(),
                name: "Bob".into(),
                op: true,
            },
            Action::Owner {
                key: "bob".into(),
                name: "Bob".into(),
            },
            Action::Kick {
                key: "bob".into(),
                reason: "a\u{1f}b".into(),
            },
            Action::Ban {
                key: "g".into(),
                name: "g".into(),
                account: None,
                minutes: Some(30),
            },
            Action::Ban {
                key: "bob".into(),
                name: "Bob".into(),
                account: Some("bob".into()),
                minutes: None,
            },
            Action::Unban {
                key: "bob".into(),
                name: "Bob".into(),
            },
            Action::Topic {
                topic: Some("숙제".into()),
            },
            Action::Topic { topic: None },
        ];
        for action in actions {
            let field = moderation(1, 2, 3, 4, Some("alice"), &action);
            let entry = Entry::parse(&field).unwrap();
            assert_eq!(
                entry.event,
                Event::Moderate {
                    account: Some("alice"),
                    action
                }
            );
        }
    }
}
