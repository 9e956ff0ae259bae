//! The ordering guarantees, checked on what clients received — whatever broker or
//! cluster of brokers delivered it.
//!
//! Given, for each receiver, its decoded stream and the entries into rooms it made,
//! [`check_guarantees`] checks: all members of a room see its events in one order; a
//! member gets nothing from a room after its own leave notice and misses nothing sent
//! after its entry notice; each sender's chats arrive in order; nobody receives their
//! own chat.
//!
//! It relies on the tests' conventions, which make every event recognisable in a
//! stream: room titles are unique (`t{n}`), every name is used once (`p{index}`, then
//! `p{index}n{k}`: a client takes a fresh name before each join), and a chat's text is
//! `{name}#{seq}` with a per-client sequence number.
//!
//! Shared by `tests/ordering.rs` (the single node's broker) and the cluster crate's
//! `log_props` (several replicas fed one in-memory log), which includes this file.

#![allow(dead_code)] // each includer uses a different part of this module

use std::collections::BTreeMap;

use chat_proto::Response;

/// The `k`-th fresh name of client `index` (the conventions above): `p{index}n{k}`.
pub(crate) fn fresh_name(index: usize, k: u32) -> String {
    format!("p{index}n{k}")
}

/// The `seq`-th chat of the client called `name`: `{name}#{seq}`.
pub(crate) fn chat_text(name: &str, seq: u32) -> String {
    format!("{name}#{seq}")
}

/// One entry into a room.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The name it entered under.
    pub(crate) name: String,
    /// Whether it created the room (rather than joined it).
    pub(crate) created: bool,
}

/// The peer a name belongs to: every name is `p{index}` or `p{index}n{k}`.
pub(crate) fn owner(name: &str) -> usize {
    let digits = name.strip_prefix('p').expect("a test name");
    let index = digits.split('n').next().expect("split yields one part");
    index.parse().expect("a test name")
}

/// A room event as a receiver sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    Chat { member: String, text: String },
    Joined(String),
    Left(String),
    Renamed { old: String, new: String },
}

impl Event {
    /// The peer the event is about (the sender, the one who came, went or renamed).
    pub(crate) fn subject(&self) -> usize {
        match self {
            Event::Chat { member, .. } => owner(member),
            Event::Joined(name) | Event::Left(name) => owner(name),
            Event::Renamed { new, .. } => owner(new),
        }
    }
}

/// One received message, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seen {
    /// `방제[T] 방에 입장했습니다.`: this receiver entered room T.
    Entered(String),
    /// `방제[T] 대화 방에서 퇴장했습니다.`: this receiver left room T.
    LeftRoom(String),
    /// Something that happened in the receiver's room.
    Event(Event),
    /// Its own rename, a refusal, a room list: nothing about a room's order.
    Reply,
}

pub(crate) fn classify(response: &Response<'_>) -> Seen {
    let text = match response {
        Response::Chat { member, text } | Response::TimedChat { member, text, .. } => {
            return Seen::Event(Event::Chat {
                member: member.to_string(),
                text: text.to_string(),
            });
        }
        Response::RoomsResult { .. }
        | Response::Hello { .. }
        | Response::History { .. }
        | Response::Session { .. }
        | Response::Direct { .. }
        | Response::Topic { .. } => {
            return Seen::Reply;
        }
        Response::SystemMessage { text } => text.as_ref(),
    };
    let between = |prefix: &str, suffix: &str| {
        text.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
            .map(str::to_owned)
    };
    if let Some(title) = between("방제[", "] 방에 입장했습니다.") {
        Seen::Entered(title)
    } else if let Some(title) = between("방제[", "] 대화 방에서 퇴장했습니다.") {
        Seen::LeftRoom(title)
    } else if let Some(name) = between("[", "] 님이 입장했습니다.") {
        Seen::Event(Event::Joined(name))
    } else if let Some(name) = between("[", "] 님이 퇴장했습니다.") {
        Seen::Event(Event::Left(name))
    } else if let Some((old, new)) = text
        .split_once(" 의 이름이 ")
        .and_then(|(old, rest)| Some((old, rest.strip_suffix(" 으로 변경되었습니다.")?)))
    {
        Seen::Event(Event::Renamed {
            old: old.to_owned(),
            new: new.to_owned(),
        })
    } else {
        Seen::Reply
    }
}

/// One stay of a receiver in a room: the events it got there, in order.
#[derive(Debug)]
pub(crate) struct Stay {
    pub(crate) title: String,
    pub(crate) entry: Entry,
    pub(crate) events: Vec<Event>,
}

/// Splits `receiver`'s stream into stays, checking on the way that no room event
/// arrives outside a stay (nothing after one's own leave notice, nothing before one's
/// entry notice), that nobody gets their own chat, and that each sender's chats arrive
/// in order.
pub(crate) fn stays(receiver: usize, stream: &[Response<'_>], entries: &[Entry]) -> Vec<Stay> {
    let mut stays: Vec<Stay> = Vec::new();
    let mut open = false;
    let mut last_seq: BTreeMap<usize, u32> = BTreeMap::new();
    for (at, response) in stream.iter().enumerate() {
        match classify(response) {
            Seen::Entered(title) => {
                assert!(
                    !open,
                    "receiver {receiver}: entered {title} while in a room"
                );
                let entry = entries
                    .get(stays.len())
                    .unwrap_or_else(|| panic!("receiver {receiver}: an entry it never made"))
                    .clone();
                stays.push(Stay {
                    title,
                    entry,
                    events: Vec::new(),
                });
                open = true;
            }
            Seen::LeftRoom(title) => {
                let stay = stays.last().filter(|_| open);
                assert_eq!(
                    stay.map(|s| s.title.as_str()),
                    Some(title.as_str()),
                    "receiver {receiver}: left a room it was not in"
                );
                open = false;
            }
            Seen::Event(event) => {
                assert!(
                    open,
                    "receiver {receiver}, message {at}: {event:?} while in no room"
                );
                if let Event::Chat { member, text } = &event {
                    assert_ne!(
                        owner(member),
                        receiver,
                        "receiver {receiver}: own chat {text}"
                    );
                    let (name, seq) = text.rsplit_once('#').expect("a test chat");
                    assert_eq!(name, member, "a chat is sent under its sender's name");
                    let seq: u32 = seq.parse().expect("a test chat");
                    let last = last_seq.insert(owner(member), seq);
                    assert!(
                        last.is_none_or(|last| last < seq),
                        "receiver {receiver}: {text} after #{last:?} of the same sender"
                    );
                }
                stays.last_mut().expect("open").events.push(event);
            }
            Seen::Reply => {}
        }
    }
    assert_eq!(
        stays.len(),
        entries.len(),
        "receiver {receiver}: one entry notice per entry"
    );
    stays
}

/// For every two receivers that were in a room together: from the later one's entry
/// until one of them left, both got the same events in the same order (leaving out
/// events about the two themselves). That is "one order per room" and "nothing missed
/// after one's entry notice" at once. `stays` pairs each receiver's index with its
/// stays.
pub(crate) fn check_shared_stays(stays: &[(usize, Vec<Stay>)]) {
    let first_about = |events: &[Event], peer: usize, from: usize| {
        events[from..]
            .iter()
            .position(|e| matches!(e, Event::Left(name) if owner(name) == peer))
            .map_or(events.len(), |at| from + at)
    };
    for (late, late_stays) in stays {
        let late = *late;
        for late_stay in late_stays.iter().filter(|s| !s.entry.created) {
            let joined = Event::Joined(late_stay.entry.name.clone());
            for (early, early_stays) in stays {
                let early = *early;
                if early == late {
                    continue;
                }
                for early_stay in early_stays.iter().filter(|s| s.title == late_stay.title) {
                    let Some(at) = early_stay.events.iter().position(|e| *e == joined) else {
                        continue;
                    };
                    let not_about_the_two =
                        |e: &&Event| e.subject() != early && e.subject() != late;
                    let until = first_about(&early_stay.events, late, at + 1);
                    let early_view: Vec<&Event> = early_stay.events[at + 1..until]
                        .iter()
                        .filter(not_about_the_two)
                        .collect();
                    let until = first_about(&late_stay.events, early, 0);
                    let late_view: Vec<&Event> = late_stay.events[..until]
                        .iter()
                        .filter(not_about_the_two)
                        .collect();
                    assert_eq!(
                        early_view, late_view,
                        "room {}: receivers {early} and {late} disagree while both were in it",
                        late_stay.title
                    );
                }
            }
        }
    }
}

/// Every guarantee, on what the receivers got: for each, its index (the `p{index}`
/// of its names), its whole stream decoded, and its entries into rooms in order.
pub(crate) fn check_guarantees(receivers: &[(usize, Vec<Response<'_>>, &[Entry])]) {
    let stays: Vec<(usize, Vec<Stay>)> = receivers
        .iter()
        .map(|(index, stream, entries)| (*index, stays(*index, stream, entries)))
        .collect();
    check_shared_stays(&stays);
}
