//! Replica: this node's copy of every room, kept by applying the shared log in order,
//! and the deliveries each entry causes to this node's members.
//!
//! This is the cluster's version of the single node's "deliver under the room lock":
//! every node applies the same entries in the same order through the same room state
//! machine ([`chat_core::Room`], which holds every rule of who is told what), and an
//! entry's deliveries are computed from the membership *at that entry*. So every
//! member, whichever node it is on, sees a room's events in the log's order; a member
//! gets nothing after its leave entry and misses nothing after its join entry; and a
//! chat from someone who is not a member at that point (a member reaped while its
//! node stalled) is dropped by every node alike. Members on other nodes have no
//! [`Recipient`] here: their own node tells them.
//!
//! What is the cluster's own here: which entries to skip (resends), whose mailbox a
//! member of this node has, and what an entry means for this node's bookkeeping
//! ([`Applied`]: orphans, evictions). Entries about accounts change no room: the
//! reader hands them to the accounts (`accounts.rs`).
//!
//! Invariants:
//! * Rooms are in id order and members in join order (the `/rooms` listing's order).
//! * A room with no members does not exist, unless it is registered to an account
//!   (`Room::is_gone`, the same rule as a single node's).
//! * The listing cache is marked changed with every change to rooms, titles, members
//!   or names.
//! * An entry at or below the last sequence number seen from its writer is a resend
//!   and changes nothing.
//! * `position` is the log entry the rooms are true at: entries are applied in log
//!   order, each once, whoever read them (the reader thread, or the command thread in
//!   its pipelines).
//!
//! No I/O: the reader thread feeds entries in and flushes what the [`Fanout`] lists.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chat_core::room::Stamp;
use std::net::IpAddr;

use chat_core::moderation::Moderation;
use chat_core::{ChatLine, History, HistoryLimit, Recipient, Room, RoomMember};
use chat_core::{Encoded, Fanout, Leaving, Listing, ListingCache, Mailbox, RoomId};
use chat_proto::Response;

use crate::entry::{Entry, Event, MemberId, StreamId, Who};

/// One room as a snapshot lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotRoom {
    pub(crate) id: RoomId,
    pub(crate) title: String,
    /// In join order, with who each is (account key, address) as it joined.
    pub(crate) members: Vec<(MemberId, String, Option<String>, Option<IpAddr>)>,
    /// The account it is registered to, if any.
    pub(crate) owner: Option<String>,
    /// A registered room's kept chats, oldest first (empty for a guest room: a node
    /// keeps only what it saw of those).
    pub(crate) history: Vec<ChatLine>,
    /// A registered room's operators, bans and topic.
    pub(crate) moderation: Moderation,
}

/// What applying one entry did that the broker must follow up.
#[derive(Debug)]
pub(crate) struct Applied<M> {
    /// A local member joined whose mailbox is gone (its request timed out): the
    /// broker takes it out again.
    pub(crate) orphan: bool,
    /// A local member left (its mailbox is no longer the room's).
    pub(crate) local_left: bool,
    /// A local member was taken out by another node (this node was declared dead):
    /// its client still believes it is in the room, so it must be disconnected.
    pub(crate) evicted: Option<Recipient<M>>,
    /// A moderation request: what its actor is told (what was done, or why not).
    pub(crate) moderated: Option<Result<String, &'static str>>,
    /// Members a moderation request put out of the room (a kick, a ban).
    pub(crate) put_out: Vec<MemberId>,
    /// A join the room's bans refused (minutes left, or until lifted): the member
    /// is not in the room here, on any node; Redis lists it until its leave.
    pub(crate) banned: Option<Option<u64>>,
}

impl<M> Default for Applied<M> {
    fn default() -> Self {
        Applied {
            orphan: false,
            local_left: false,
            evicted: None,
            moderated: None,
            put_out: Vec::new(),
            banned: None,
        }
    }
}

/// The rooms as of the last applied entry; see the module doc.
#[derive(Debug)]
pub(crate) struct Replica<M> {
    rooms: BTreeMap<RoomId, Room<MemberId, M>>,
    /// The last operation number applied from each writer node.
    last_seq: HashMap<u64, u64>,
    /// The highest room id ever seen (ids continue above it if Redis loses its data).
    highest_room: RoomId,
    listing: ListingCache,
    /// The last log entry applied (or the snapshot's position).
    position: StreamId,
    /// How much of each room's chats is kept (from the log, since this node began
    /// reading it).
    history: HistoryLimit,
}

impl<M> Default for Replica<M> {
    fn default() -> Self {
        Replica::new(HistoryLimit::default())
    }
}

impl<M> Replica<M> {
    /// No rooms yet; each room keeps `history` of its chats.
    pub(crate) fn new(history: HistoryLimit) -> Self {
        Replica {
            rooms: BTreeMap::new(),
            last_seq: HashMap::new(),
            highest_room: 0,
            listing: ListingCache::default(),
            position: StreamId::default(),
            history,
        }
    }
}

impl<M: Mailbox> Replica<M> {
    /// Replaces everything with `rooms` (a snapshot true at log entry `at`),
    /// resolving this node's members through `local`. The highest room id seen is
    /// kept.
    pub(crate) fn load(
        &mut self,
        rooms: Vec<SnapshotRoom>,
        room_seq: RoomId,
        at: StreamId,
        local: impl Fn(MemberId) -> Option<Recipient<M>>,
    ) {
        self.position = at;
        self.rooms = rooms
            .into_iter()
            .filter(|room| !room.members.is_empty() || room.owner.is_some())
            .map(|room| {
                let members = room
                    .members
                    .into_iter()
                    .map(|(id, name, account, address)| RoomMember {
                        id,
                        name,
                        recipient: local(id),
                        account,
                        address,
                    })
                    .collect();
                let history = History::restore(self.history, room.history);
                let room_state = Room::restore(room.title, room.owner, members, history)
                    .with_moderation(room.moderation);
                (room.id, room_state)
            })
            .collect();
        self.last_seq.clear();
        let top = self.rooms.keys().next_back().copied().unwrap_or(0);
        self.highest_room = self.highest_room.max(room_seq).max(top);
        self.listing.changed();
    }

    /// The last log entry applied: reading goes on after it.
    pub(crate) fn position(&self) -> StreamId {
        self.position
    }

    /// Whether the entry at `id` is after the position, and so to be applied next
    /// (entries come in log order; one at or before it was applied already, read
    /// twice by two readers). Moves the position to it if so.
    pub(crate) fn advance(&mut self, id: StreamId) -> bool {
        if id <= self.position {
            return false;
        }
        self.position = id;
        true
    }

    /// The highest room id this node has seen.
    pub(crate) fn highest_room(&self) -> RoomId {
        self.highest_room
    }

    /// How many rooms exist.
    pub(crate) fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Whether room `room` is registered to an account (its chats are kept in Redis).
    pub(crate) fn is_registered(&self, room: RoomId) -> bool {
        self.rooms.get(&room).is_some_and(|r| r.owner().is_some())
    }

    /// A registered room's owner and moderation as text, to be saved.
    pub(crate) fn moderation_of(&self, room: RoomId) -> Option<(String, String)> {
        let room = self.rooms.get(&room)?;
        Some((room.owner()?.to_owned(), room.moderation().to_text()))
    }

    /// How many members room `room` has, if `member` is one of them.
    pub(crate) fn members_if_in(&self, room: RoomId, member: MemberId) -> Option<usize> {
        let room = self.rooms.get(&room)?;
        room.contains(member).then(|| room.members().len())
    }

    /// The rooms `member` is in (at most one, unless something went wrong).
    pub(crate) fn rooms_of(&self, member: MemberId) -> Vec<RoomId> {
        self.rooms
            .iter()
            .filter(|(_, room)| room.contains(member))
            .map(|(&id, _)| id)
            .collect()
    }

    /// Members of node `node` with no mailbox here: clients that stopped waiting for
    /// their create or join (they were told it failed) but whose entry was applied.
    pub(crate) fn orphans(&self, node: u64) -> Vec<(RoomId, MemberId)> {
        self.rooms
            .iter()
            .flat_map(|(&id, room)| {
                room.members()
                    .iter()
                    .filter(|m| m.id.node == node && m.recipient.is_none())
                    .map(move |m| (id, m.id))
            })
            .collect()
    }

    /// Every local member that is in a room, with its mailbox (for a reset).
    pub(crate) fn local_members(&self) -> Vec<Recipient<M>> {
        self.rooms
            .values()
            .flat_map(|room| room.members().iter().filter_map(|m| m.recipient.clone()))
            .collect()
    }

    /// The `/rooms` listing as of now, shared until the rooms change.
    pub(crate) fn listing(&self) -> Arc<Listing> {
        self.listing.get(|| {
            self.rooms
                .iter()
                .map(|(&room_id, room)| room.info(room_id))
                .collect()
        })
    }

    /// Up to `count` chats of room `room` before line `before`, and whether older
    /// ones are kept; `None` if the room does not exist here.
    pub(crate) fn history(
        &self,
        room: RoomId,
        count: usize,
        before: Option<u64>,
    ) -> Option<(Vec<ChatLine>, bool)> {
        self.rooms.get(&room).map(|r| r.history(count, before))
    }

    /// Applies one entry, delivering what it means to this node's members through
    /// `out`; `local` finds the mailbox of a member of this node that is joining. A
    /// chat is stamped `at` (from its place in the log: the same on every node).
    pub(crate) fn apply(
        &mut self,
        entry: &Entry<'_>,
        at: Stamp,
        local: impl Fn(MemberId) -> Option<Recipient<M>>,
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
        let entrant = |name: &str, who: Who<'_>, applied: &mut Applied<M>| {
            let recipient = local(entry.member);
            applied.orphan = recipient.is_none() && is_local(entry.member);
            RoomMember {
                id: entry.member,
                name: name.to_owned(),
                recipient,
                account: who.account.map(str::to_owned),
                address: who.address,
            }
        };
        match entry.event {
            Event::Created { name, title, owner } => {
                self.highest_room = self.highest_room.max(entry.room);
                // A registered room's creator is its owner, logged in as it.
                let who = Who {
                    account: owner,
                    address: None,
                };
                let creator = entrant(name, who, &mut applied);
                let mut room = Room::create(title.to_owned(), creator, self.history, out);
                if let Some(owner) = owner {
                    room.register(owner);
                }
                self.rooms.insert(entry.room, room);
            }
            Event::GivenUp { .. } => {
                // The same rule as the script's: empty, it goes; else it lasts until
                // its last member leaves.
                let Some(room) = self.rooms.get_mut(&entry.room) else {
                    return applied;
                };
                room.unregister();
                if room.is_gone() {
                    self.rooms.remove(&entry.room);
                }
            }
            Event::Joined { name, who } => {
                let Some(room) = self.rooms.get_mut(&entry.room) else {
                    return applied;
                };
                // The joining node checked the bans it knew; a ban it had not heard
                // of yet is checked here, at the same place on every node.
                if let Some(left) = room.ban_on(who.account, who.address, at.time_ms) {
                    applied.banned = Some(left);
                    return applied;
                }
                room.join(entrant(name, who, &mut applied), entry.room, out);
            }
            Event::Moderate {
                account,
                ref action,
            } => {
                let Some(room) = self.rooms.get_mut(&entry.room) else {
                    applied.moderated = Some(Err(chat_core::texts::NOT_IN_ROOM));
                    return applied;
                };
                let before: Vec<MemberId> = room.members().iter().map(|m| m.id).collect();
                // The entry's time, the same on every node: a ban ends alike.
                let done = room.moderate(
                    entry.room,
                    entry.member,
                    account,
                    action.clone(),
                    at.time_ms,
                    out,
                );
                applied.put_out = before
                    .into_iter()
                    .filter(|id| !room.contains(*id))
                    .collect();
                let changed = done.is_ok();
                applied.moderated = Some(done);
                if !changed {
                    return applied;
                }
            }
            Event::Left { notify_self } => {
                let Some(room) = self.rooms.get_mut(&entry.room) else {
                    return applied;
                };
                let why = if notify_self {
                    Leaving::Asked
                } else {
                    Leaving::Disconnected
                };
                let Some(gone) = room.leave(entry.member, why, out) else {
                    return applied;
                };
                if let Some(to) = gone.recipient {
                    applied.local_left = true;
                    if entry.writer != entry.member.node {
                        applied.evicted = Some(to);
                    }
                }
                if room.is_gone() {
                    self.rooms.remove(&entry.room);
                }
            }
            Event::Renamed { name } => {
                let Some(room) = self.rooms.get_mut(&entry.room) else {
                    return applied;
                };
                if room.rename(entry.member, name, out).is_none() {
                    return applied;
                }
            }
            Event::Chat { text } => {
                if let Some(room) = self.rooms.get_mut(&entry.room) {
                    // Not a member at this point of the log (reaped, or left): dropped
                    // by every node alike. The sender's node checked that it fits one
                    // frame; a foreign writer's oversized chat is dropped.
                    let chat = |sender: &str| {
                        let chat = Response::Chat {
                            member: sender.into(),
                            text: text.into(),
                        };
                        Encoded::both(&chat).ok()
                    };
                    room.chat(entry.member, text, at, chat, out);
                }
                // A chat changes no state: the listing stays valid.
                return applied;
            }
            Event::NodeGone
            | Event::Direct { .. }
            | Event::Account(_)
            | Event::Password { .. }
            | Event::Token(_)
            | Event::TokenGone { .. } => return applied,
        }
        self.listing.changed();
        applied
    }
}

#[cfg(test)]
mod tests {
    use chat_proto::WireFormat;

    use super::*;
    use crate::test_support::Recorder as Inbox;

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
                Stamp {
                    time_ms: 0,
                    seq: None,
                },
                |m| {
                    (m.node == HERE)
                        .then(|| inboxes.get(m.client as usize))
                        .flatten()
                        .map(|mailbox| Recipient {
                            mailbox: Arc::clone(mailbox),
                            format: WireFormat::Json,
                            history: false,
                            topics: false,
                        })
                },
                |m| m.node == HERE,
                &mut self.out,
            )
        }

        /// What `client` got since last asked, as lines.
        fn got(&self, client: usize) -> Vec<String> {
            self.inboxes[client].lines(WireFormat::Json)
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
                owner: None,
            },
        ));
        node.apply(entry(
            HERE,
            1,
            member(HERE, 0),
            Event::Joined {
                name: "a",
                who: Who::default(),
            },
        ));
        node.apply(entry(
            THERE,
            2,
            member(THERE, 7),
            Event::Chat { text: "one" },
        ));
        node.apply(entry(
            HERE,
            2,
            member(HERE, 1),
            Event::Joined {
                name: "b",
                who: Who::default(),
            },
        ));
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
                owner: None,
            },
        ));
        node.apply(entry(
            THERE,
            1,
            member(THERE, 5),
            Event::Joined {
                name: "far",
                who: Who::default(),
            },
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
        assert!(!resent.local_left && !resent.orphan);
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
                owner: None,
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
                owner: None,
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
                owner: None,
            },
        ));
        let applied = node.apply(entry(
            HERE,
            1,
            member(HERE, 9),
            Event::Joined {
                name: "gone",
                who: Who::default(),
            },
        ));
        assert!(applied.orphan);
        assert_eq!(node.replica.highest_room(), 1);
    }

    #[test]
    fn a_registered_room_lasts_empty_until_its_owner_gives_it_up() {
        let mut node = Node::new(1);
        node.apply(entry(
            HERE,
            1,
            member(HERE, 0),
            Event::Created {
                name: "alice",
                title: "kept",
                owner: Some("alice"),
            },
        ));
        assert!(node.replica.is_registered(1));
        node.apply(entry(
            HERE,
            2,
            member(HERE, 0),
            Event::Left { notify_self: true },
        ));
        assert_eq!(node.replica.room_count(), 1, "registered: it lasts empty");
        let listing = node.replica.listing();
        assert_eq!(listing.rooms()[0].title, "kept");
        node.apply(entry(
            HERE,
            3,
            member(HERE, 0),
            Event::GivenUp { deleted: true },
        ));
        assert_eq!(node.replica.room_count(), 0, "given up empty: gone");
    }

    #[test]
    fn a_room_given_up_with_members_goes_with_its_last_member() {
        let mut node = Node::new(1);
        node.apply(entry(
            THERE,
            1,
            member(THERE, 0),
            Event::Created {
                name: "alice",
                title: "kept",
                owner: Some("alice"),
            },
        ));
        node.apply(entry(
            THERE,
            2,
            member(THERE, 0),
            Event::GivenUp { deleted: false },
        ));
        assert!(!node.replica.is_registered(1));
        assert_eq!(node.replica.room_count(), 1, "a member is still in it");
        node.apply(entry(
            THERE,
            3,
            member(THERE, 0),
            Event::Left { notify_self: true },
        ));
        assert_eq!(node.replica.room_count(), 0);
    }

    #[test]
    fn a_snapshot_keeps_registered_empty_rooms_with_their_history() {
        let mut node = Node::new(0);
        let line = ChatLine {
            seq: 5,
            time_ms: 7,
            member: "alice".into(),
            text: "hello".into(),
        };
        let room = |id, owner: Option<&str>| SnapshotRoom {
            id,
            title: format!("room {id}"),
            members: Vec::new(),
            owner: owner.map(str::to_owned),
            history: vec![line.clone()],
            moderation: Default::default(),
        };
        node.replica.load(
            vec![room(1, None), room(2, Some("alice"))],
            2,
            StreamId::default(),
            |_| None,
        );
        assert_eq!(node.replica.room_count(), 1, "an empty guest room is gone");
        assert!(node.replica.is_registered(2));
        assert_eq!(node.replica.history(2, 10, None), Some((vec![line], false)));
    }
}
