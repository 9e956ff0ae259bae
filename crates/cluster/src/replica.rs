//! Replica: this node's copy of every room, kept by applying the shared log in order,
//! and the deliveries each entry causes to this node's members.
//!
//! This is the cluster's version of the single node's "deliver under the room lock":
//! every node applies the same entries in the same order, and an entry's deliveries
//! are computed from the membership *at that entry*. So every member, whichever node
//! it is on, sees a room's events in the log's order; a member gets nothing after its
//! leave entry and misses nothing after its join entry; and a chat from someone who
//! is not a member at that point (a member reaped while its node stalled) is dropped
//! by every node alike.
//!
//! Invariants:
//! * Rooms are in id order and members in join order (the `/rooms` listing's order).
//! * A room with no members does not exist.
//! * `version` grows with every change to rooms, titles, members or names; a cached
//!   [`Listing`] is valid while the version it was made at is current.
//! * An entry at or below the last sequence number seen from its writer is a resend
//!   and changes nothing.
//!
//! No I/O: the reader thread feeds entries in and flushes what the [`Fanout`] lists.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chat_core::{Encoded, Fanout, Listing, Mailbox, RoomId, texts};
use chat_proto::{Response, RoomInfo, WireFormat};

use crate::entry::{Entry, Event, MemberId};

/// Where a member connected to this node gets its messages.
#[derive(Debug)]
pub(crate) struct LocalBox<M> {
    pub(crate) mailbox: Arc<M>,
    pub(crate) format: WireFormat,
}

impl<M> Clone for LocalBox<M> {
    fn clone(&self) -> Self {
        LocalBox {
            mailbox: Arc::clone(&self.mailbox),
            format: self.format,
        }
    }
}

#[derive(Debug)]
struct Member<M> {
    id: MemberId,
    name: String,
    /// Set for members connected to this node.
    local: Option<LocalBox<M>>,
}

#[derive(Debug)]
struct Room<M> {
    title: String,
    members: Vec<Member<M>>,
}

/// One room as a snapshot lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotRoom {
    pub(crate) id: RoomId,
    pub(crate) title: String,
    /// In join order.
    pub(crate) members: Vec<(MemberId, String)>,
}

/// What applying one entry did that the broker must follow up.
#[derive(Debug)]
pub(crate) struct Applied<M> {
    /// The entry was applied (not a resend, not about a missing room or member).
    pub(crate) changed: bool,
    /// A local member joined whose mailbox is gone (its request timed out): the
    /// broker takes it out again.
    pub(crate) orphan: bool,
    /// A local member left (its mailbox is no longer the room's).
    pub(crate) local_left: bool,
    /// A local member was taken out by another node (this node was declared dead):
    /// its client still believes it is in the room, so it must be disconnected.
    pub(crate) evicted: Option<LocalBox<M>>,
}

impl<M> Default for Applied<M> {
    fn default() -> Self {
        Applied {
            changed: false,
            orphan: false,
            local_left: false,
            evicted: None,
        }
    }
}

/// The rooms as of the last applied entry; see the module doc.
#[derive(Debug)]
pub(crate) struct Replica<M> {
    rooms: BTreeMap<RoomId, Room<M>>,
    /// The last operation number applied from each writer node.
    last_seq: HashMap<u64, u64>,
    /// The highest room id ever seen (ids continue above it if Redis loses its data).
    highest_room: RoomId,
    version: u64,
    listing: Option<(u64, Arc<Listing>)>,
}

impl<M> Default for Replica<M> {
    fn default() -> Self {
        Replica {
            rooms: BTreeMap::new(),
            last_seq: HashMap::new(),
            highest_room: 0,
            version: 0,
            listing: None,
        }
    }
}

impl<M: Mailbox> Replica<M> {
    /// Replaces everything with `rooms` (a snapshot), resolving this node's members
    /// through `local`. The highest room id seen is kept.
    pub(crate) fn load(
        &mut self,
        rooms: Vec<SnapshotRoom>,
        room_seq: RoomId,
        local: impl Fn(MemberId) -> Option<LocalBox<M>>,
    ) {
        self.rooms = rooms
            .into_iter()
            .filter(|room| !room.members.is_empty())
            .map(|room| {
                let members = room
                    .members
                    .into_iter()
                    .map(|(id, name)| Member {
                        id,
                        name,
                        local: local(id),
                    })
                    .collect();
                (
                    room.id,
                    Room {
                        title: room.title,
                        members,
                    },
                )
            })
            .collect();
        self.last_seq.clear();
        let top = self.rooms.keys().next_back().copied().unwrap_or(0);
        self.highest_room = self.highest_room.max(room_seq).max(top);
        self.version += 1;
    }

    /// The highest room id this node has seen.
    pub(crate) fn highest_room(&self) -> RoomId {
        self.highest_room
    }

    /// How many rooms exist.
    pub(crate) fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// How many members room `room` has, if `member` is one of them.
    pub(crate) fn members_if_in(&self, room: RoomId, member: MemberId) -> Option<usize> {
        let room = self.rooms.get(&room)?;
        room.members
            .iter()
            .any(|m| m.id == member)
            .then_some(room.members.len())
    }

    /// The rooms `member` is in (at most one, unless something went wrong).
    pub(crate) fn rooms_of(&self, member: MemberId) -> Vec<RoomId> {
        self.rooms
            .iter()
            .filter(|(_, room)| room.members.iter().any(|m| m.id == member))
            .map(|(&id, _)| id)
            .collect()
    }

    /// Members of node `node` with no mailbox here: clients that stopped waiting for
    /// their create or join (they were told it failed) but whose entry was applied.
    pub(crate) fn orphans(&self, node: u64) -> Vec<(RoomId, MemberId)> {
        self.rooms
            .iter()
            .flat_map(|(&id, room)| {
                room.members
                    .iter()
                    .filter(|m| m.id.node == node && m.local.is_none())
                    .map(move |m| (id, m.id))
            })
            .collect()
    }

    /// Every local member that is in a room, with its mailbox (for a reset).
    pub(crate) fn local_members(&self) -> Vec<LocalBox<M>> {
        self.rooms
            .values()
            .flat_map(|room| room.members.iter().filter_map(|m| m.local.clone()))
            .collect()
    }

    /// The `/rooms` listing as of now, shared until the rooms change.
    pub(crate) fn listing(&mut self) -> Arc<Listing> {
        if let Some((version, listing)) = &self.listing
            && *version == self.version
        {
            return Arc::clone(listing);
        }
        let rooms = self
            .rooms
            .iter()
            .map(|(&room_id, room)| RoomInfo {
                room_id,
                title: room.title.clone(),
                members: room.members.iter().map(|m| m.name.clone()).collect(),
            })
            .collect();
        let listing = Arc::new(Listing::new(rooms));
        self.listing = Some((self.version, Arc::clone(&listing)));
        listing
    }

    /// Applies one entry, delivering what it means to this node's members through
    /// `out`; `local` finds the mailbox of a member of this node that is joining.
    pub(crate) fn apply(
        &mut self,
        entry: &Entry<'_>,
        local: impl Fn(MemberId) -> Option<LocalBox<M>>,
        is_local: impl Fn(MemberId) -> bool,
        out: &mut Fanout<M>,
    ) -> Applied<M> {
        if entry.seq != 0 {
            let last = self.last_seq.entry(entry.writer).or_insert(0);
            if entry.seq <= *last {
                return Applied::default();
            }
            *last = entry.seq;
        }
        let mut applied = Applied::default();
        match entry.event {
            Event::Created { name, title } => {
                self.highest_room = self.highest_room.max(entry.room);
                let local = local(entry.member);
                applied.orphan = local.is_none() && is_local(entry.member);
                if let Some(to) = &local {
                    let notice = Encoded::notice_for(to.format, &texts::entered_self(title));
                    out.send(&to.mailbox, to.format, &notice);
                }
                self.rooms.insert(
                    entry.room,
                    Room {
                        title: title.to_owned(),
                        members: vec![Member {
                            id: entry.member,
                            name: name.to_owned(),
                            local,
                        }],
                    },
                );
                applied.changed = true;
            }
            Event::Joined { name } => {
                let Some(room) = self.rooms.get_mut(&entry.room) else {
                    return applied;
                };
                let arrived = Encoded::notice(&texts::entered_others(name));
                broadcast(&room.members, entry.member, &arrived, out);
                let local = local(entry.member);
                applied.orphan = local.is_none() && is_local(entry.member);
                if let Some(to) = &local {
                    let notice = Encoded::notice_for(to.format, &texts::entered_self(&room.title));
                    out.send(&to.mailbox, to.format, &notice);
                }
                room.members.push(Member {
                    id: entry.member,
                    name: name.to_owned(),
                    local,
                });
                applied.changed = true;
            }
            Event::Left { notify_self } => {
                let Some(room) = self.rooms.get_mut(&entry.room) else {
                    return applied;
                };
                let Some(at) = room.members.iter().position(|m| m.id == entry.member) else {
                    return applied;
                };
                let gone = room.members.remove(at);
                let departed = Encoded::notice(&texts::left_others(&gone.name));
                broadcast(&room.members, entry.member, &departed, out);
                if let Some(to) = &gone.local {
                    applied.local_left = true;
                    if entry.writer != entry.member.node {
                        applied.evicted = Some(to.clone());
                    }
                    if notify_self {
                        let notice = Encoded::notice_for(to.format, &texts::left_self(&room.title));
                        out.send(&to.mailbox, to.format, &notice);
                    }
                }
                if room.members.is_empty() {
                    self.rooms.remove(&entry.room);
                }
                applied.changed = true;
            }
            Event::Renamed { name } => {
                let Some(room) = self.rooms.get_mut(&entry.room) else {
                    return applied;
                };
                let Some(member) = room.members.iter_mut().find(|m| m.id == entry.member) else {
                    return applied;
                };
                let old = std::mem::replace(&mut member.name, name.to_owned());
                let own = member.local.clone();
                let others = Encoded::notice(&texts::renamed_others(&old, name));
                broadcast(&room.members, entry.member, &others, out);
                if let Some(to) = own {
                    let notice = Encoded::notice_for(to.format, &texts::renamed_self(name));
                    out.send(&to.mailbox, to.format, &notice);
                }
                applied.changed = true;
            }
            Event::Chat { text } => {
                let Some(room) = self.rooms.get(&entry.room) else {
                    return applied;
                };
                let Some(sender) = room.members.iter().find(|m| m.id == entry.member) else {
                    // Not a member at this point of the log (reaped, or left): dropped
                    // by every node alike.
                    return applied;
                };
                let anyone_here = room
                    .members
                    .iter()
                    .any(|m| m.local.is_some() && m.id != entry.member);
                if anyone_here {
                    let chat = Response::Chat {
                        member: sender.name.as_str().into(),
                        text: text.into(),
                    };
                    // The sender's node checked that it fits one frame; a foreign
                    // writer's oversized chat is dropped.
                    if let Ok(chat) = Encoded::both(&chat) {
                        broadcast(&room.members, entry.member, &chat, out);
                    }
                }
                // A chat changes no state: the listing stays valid.
                return applied;
            }
            Event::NodeGone => return applied,
        }
        self.version += 1;
        applied
    }
}

/// Delivers `message` to every local member except `except`.
fn broadcast<M: Mailbox>(
    members: &[Member<M>],
    except: MemberId,
    message: &Encoded,
    out: &mut Fanout<M>,
) {
    for member in members.iter().filter(|m| m.id != except) {
        if let Some(to) = &member.local {
            out.send(&to.mailbox, to.format, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use bytes::Bytes;
    use chat_core::Delivered;
    use chat_proto::{ResponseDecoder, frame::Frames};

    use super::*;

    /// A mailbox that decodes what it gets into texts (`[name] text` for chats).
    #[derive(Debug, Default)]
    struct Inbox(Mutex<Vec<String>>);
    impl Mailbox for Inbox {
        fn deliver(&self, frames: &Bytes) -> Delivered {
            let mut decoder = ResponseDecoder::new(WireFormat::Json);
            for frame in Frames::new(frames) {
                if let Some(Ok(response)) = decoder.feed(frame) {
                    self.0.lock().unwrap().push(match response {
                        Response::SystemMessage { text } => text.into_owned(),
                        Response::Chat { member, text } => format!("[{member}] {text}"),
                        other => format!("{other:?}"),
                    });
                }
            }
            Delivered::Queued
        }
    }

    const HERE: u64 = 1;
    const THERE: u64 = 2;

    fn member(node: u64, client: u64) -> MemberId {
        MemberId { node, client }
    }

    fn entry(writer: u64, seq: u64, member: MemberId, event: Event<'static>) -> Entry<'static> {
        Entry {
            writer,
            seq,
            member,
            room: 1,
            event,
        }
    }

    /// A replica whose local members (node `HERE`) have the given inboxes.
    struct Node {
        replica: Replica<Inbox>,
        inboxes: Vec<Arc<Inbox>>,
        out: Fanout<Inbox>,
    }

    impl Node {
        fn new(clients: usize) -> Self {
            Node {
                replica: Replica::default(),
                inboxes: (0..clients).map(|_| Arc::new(Inbox::default())).collect(),
                out: Fanout::new(),
            }
        }

        fn apply(&mut self, entry: Entry<'_>) -> Applied<Inbox> {
            let inboxes = &self.inboxes;
            self.replica.apply(
                &entry,
                |m| {
                    (m.node == HERE)
                        .then(|| inboxes.get(m.client as usize))
                        .flatten()
                        .map(|mailbox| LocalBox {
                            mailbox: Arc::clone(mailbox),
                            format: WireFormat::Json,
                        })
                },
                |m| m.node == HERE,
                &mut self.out,
            )
        }

        fn got(&self, client: usize) -> Vec<String> {
            self.inboxes[client].0.lock().unwrap().clone()
        }
    }

    #[test]
    fn deliveries_follow_the_log_and_membership_at_each_entry() {
        let mut node = Node::new(2);
        node.apply(entry(
            THERE,
            1,
            member(THERE, 7),
            Event::Created {
                name: "far",
                title: "t",
            },
        ));
        node.apply(entry(HERE, 1, member(HERE, 0), Event::Joined { name: "a" }));
        node.apply(entry(
            THERE,
            2,
            member(THERE, 7),
            Event::Chat { text: "one" },
        ));
        node.apply(entry(HERE, 2, member(HERE, 1), Event::Joined { name: "b" }));
        node.apply(entry(
            THERE,
            3,
            member(THERE, 7),
            Event::Chat { text: "two" },
        ));
        node.apply(entry(
            HERE,
            3,
            member(HERE, 0),
            Event::Left { notify_self: true },
        ));
        node.apply(entry(
            THERE,
            4,
            member(THERE, 7),
            Event::Chat { text: "three" },
        ));
        assert_eq!(
            node.got(0),
            [
                "방제[t] 방에 입장했습니다.",
                "[far] one",
                "[b] 님이 입장했습니다.",
                "[far] two",
                "방제[t] 대화 방에서 퇴장했습니다.",
            ]
        );
        assert_eq!(
            node.got(1),
            [
                "방제[t] 방에 입장했습니다.",
                "[far] two",
                "[a] 님이 퇴장했습니다.",
                "[far] three"
            ]
        );
        let listing = node.replica.listing();
        assert_eq!(listing.rooms()[0].members, ["far", "b"]);
    }

    #[test]
    fn resends_and_chats_from_non_members_change_nothing() {
        let mut node = Node::new(1);
        node.apply(entry(
            HERE,
            1,
            member(HERE, 0),
            Event::Created {
                name: "a",
                title: "t",
            },
        ));
        node.apply(entry(
            THERE,
            1,
            member(THERE, 5),
            Event::Joined { name: "far" },
        ));
        node.apply(entry(
            THERE,
            2,
            member(THERE, 5),
            Event::Chat { text: "once" },
        ));
        // The same operation again (a resend after a broken connection).
        let resent = node.apply(entry(
            THERE,
            2,
            member(THERE, 5),
            Event::Chat { text: "once" },
        ));
        assert!(!resent.changed);
        // Reaped (written by another node, seq 0), then a late chat: dropped.
        node.apply(entry(
            HERE,
            0,
            member(THERE, 5),
            Event::Left { notify_self: false },
        ));
        node.apply(entry(
            THERE,
            3,
            member(THERE, 5),
            Event::Chat { text: "zombie" },
        ));
        assert_eq!(
            node.got(0),
            [
                "방제[t] 방에 입장했습니다.",
                "[far] 님이 입장했습니다.",
                "[far] once",
                "[far] 님이 퇴장했습니다.",
            ]
        );
    }

    #[test]
    fn a_local_member_taken_out_by_another_node_is_evicted() {
        let mut node = Node::new(1);
        node.apply(entry(
            HERE,
            1,
            member(HERE, 0),
            Event::Created {
                name: "a",
                title: "t",
            },
        ));
        let own = node.apply(entry(
            HERE,
            2,
            member(HERE, 0),
            Event::Left { notify_self: false },
        ));
        assert!(own.local_left && own.evicted.is_none(), "its own leave");
        node.apply(entry(
            HERE,
            3,
            member(HERE, 0),
            Event::Created {
                name: "a",
                title: "t",
            },
        ));
        let reaped = node.apply(entry(
            THERE,
            0,
            member(HERE, 0),
            Event::Left { notify_self: false },
        ));
        assert!(
            reaped.local_left && reaped.evicted.is_some(),
            "reaped by another node"
        );
        assert_eq!(node.replica.room_count(), 0, "an empty room is gone");
    }

    #[test]
    fn a_join_of_a_local_client_nobody_waits_for_is_an_orphan() {
        let mut node = Node::new(0);
        node.apply(entry(
            THERE,
            1,
            member(THERE, 1),
            Event::Created {
                name: "far",
                title: "t",
            },
        ));
        let applied = node.apply(entry(
            HERE,
            1,
            member(HERE, 9),
            Event::Joined { name: "gone" },
        ));
        assert!(applied.orphan);
        assert_eq!(node.replica.highest_room(), 1);
    }
}
