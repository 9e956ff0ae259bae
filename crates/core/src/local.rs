//! LocalBroker: rooms held in this process.
//!
//! The rules of a room (who is told what) are [`Room`]'s; this module keeps the table
//! of rooms, hands out ids and makes the rooms safe to share between worker threads.
//!
//! # Ordering and locking
//!
//! * Two kinds of lock: the room table and each room's own. The order is always
//!   table → room, never the reverse.
//! * Every notice about a room — joins, leaves, renames, chats — is delivered to the
//!   recipients' mailboxes *while holding that room's lock*. So all members see one
//!   room's events in the same order, a member who left gets nothing sent after its
//!   leave notice, and a member who joined gets everything sent after its entry notice
//!   (the [contract](crate::broker)).
//! * Chats are encoded before locking; under a room's lock only reference-counted
//!   handles are queued, and mailboxes never block. Membership notices are encoded
//!   under the lock (one small message per join, leave or rename, beside a broadcast
//!   that costs far more).
//! * Room ids start at 1 (after the registered rooms a store kept), grow by one and
//!   are never reused while the process runs; a room is deleted when its last member
//!   leaves, unless it is registered ([`Room::is_gone`]).
//! * A room created by a client logged in to an account is registered to it; with a
//!   [`RoomKeeper`] its registration and its chats are handed over to be kept, under
//!   the room's lock (so in the room's order), and it is given back at the next start
//!   ([`LocalBroker::with_kept_rooms`]).
//! * Every change (create, join, leave, rename) marks the [`ListingCache`] changed
//!   *after* it is made, under the lock that made it.
//!
//! Every operation is done at once ([`Reply::Done`]), and it never answers
//! [`BrokerError::Unavailable`]: everything it needs is here.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use chat_proto::RoomInfo;

use crate::broker::{
    AccountBackend, BrokerError, ClientId, KeptRoom, Leaving, MAX_ROOM_ID, Member, MessageBroker,
    Reply, RoomId, RoomKeeper, Unregistered,
};
use crate::direct::{self, Directory};
use crate::encoded::Encoded;
use crate::fanout::{ChatEvent, Fanout};
use crate::history::{ChatLine, History, HistoryLimit};
use crate::listing::{Listing, ListingCache};
use crate::listing_watch::ListingWatch;
use crate::mailbox::Mailbox;
use crate::room::{Recipient, Room, RoomMember, Stamp};
use crate::sync::lock;

/// This process's clock, in ms since the Unix epoch: it stamps chats and direct
/// messages (the chat core reads no clock: a broker gives messages their time).
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A room of this process: its state behind its own lock.
type SharedRoom<M> = Arc<Mutex<Room<ClientId, M>>>;

/// Rooms held in this process.
pub struct LocalBroker<M> {
    rooms: Mutex<RoomTable<M>>,
    listing: ListingCache,
    /// Who is pushed the room list when it changes.
    watch: ListingWatch<M>,
    /// The accounts, if the transport keeps any.
    accounts: Option<Arc<dyn AccountBackend<M>>>,
    /// How much of each room's chats is kept.
    history: HistoryLimit,
    /// Where registered rooms are kept for good, if anywhere.
    keeper: Option<Arc<dyn RoomKeeper>>,
    /// Names claimed, by key and by holder, and whom each client ignores (direct
    /// messages).
    names: Mutex<Directory<M>>,
}

struct RoomTable<M> {
    last_id: RoomId,
    by_id: BTreeMap<RoomId, SharedRoom<M>>,
}

impl<M> From<Member<'_, M>> for RoomMember<ClientId, M> {
    fn from(member: Member<'_, M>) -> Self {
        RoomMember {
            id: member.id,
            name: member.name.to_owned(),
            recipient: Some(Recipient {
                mailbox: Arc::clone(member.mailbox),
                format: member.format,
                history: member.history,
                topics: member.moderation,
            }),
            account: member.account.map(str::to_owned),
            address: member.address,
        }
    }
}

impl<M> Default for LocalBroker<M> {
    fn default() -> Self {
        LocalBroker {
            rooms: Mutex::new(RoomTable {
                last_id: 0,
                by_id: BTreeMap::new(),
            }),
            listing: ListingCache::default(),
            watch: ListingWatch::default(),
            accounts: None,
            history: HistoryLimit::default(),
            keeper: None,
            names: Mutex::new(Directory::default()),
        }
    }
}

impl<M> fmt::Debug for LocalBroker<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalBroker")
            .field("rooms", &lock(&self.rooms).by_id.len())
            .finish_non_exhaustive()
    }
}

impl<M: Mailbox> LocalBroker<M> {
    /// No rooms yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// No rooms yet, and the next room id `next` (for tests of the id space's end).
    pub fn with_next_room_id(next: RoomId) -> Self {
        let broker = Self::default();
        lock(&broker.rooms).last_id = next - 1;
        broker
    }

    /// The same broker, with `accounts` (the `accounts` extension is then offered).
    pub fn with_accounts(mut self, accounts: Arc<dyn AccountBackend<M>>) -> Self {
        self.accounts = Some(accounts);
        self
    }

    /// The same broker, keeping `limit` of each room's chats.
    pub fn with_history(mut self, limit: HistoryLimit) -> Self {
        self.history = limit;
        self
    }

    /// The same broker, handing registered rooms and their chats to `keeper`.
    pub fn with_keeper(mut self, keeper: Arc<dyn RoomKeeper>) -> Self {
        self.keeper = Some(keeper);
        self
    }

    /// The same broker, with the registered rooms a store kept (call after
    /// [`LocalBroker::with_history`]: their history is cut to its limit). New rooms
    /// are numbered after the highest of them.
    pub fn with_kept_rooms(self, rooms: Vec<KeptRoom>) -> Self {
        {
            let mut table = lock(&self.rooms);
            for kept in rooms {
                if !(1..=MAX_ROOM_ID).contains(&kept.id) {
                    continue;
                }
                table.last_id = table.last_id.max(kept.id);
                let history = History::restore(self.history, kept.history);
                let room = Room::registered(kept.title, kept.owner, history)
                    .with_moderation(kept.moderation);
                table.by_id.insert(kept.id, Arc::new(Mutex::new(room)));
            }
        }
        self.listing.changed();
        self
    }

    fn find(&self, room: RoomId) -> Option<SharedRoom<M>> {
        lock(&self.rooms).by_id.get(&room).cloned()
    }

    /// Every room now, each as it was at one moment.
    fn snapshot(&self) -> Vec<RoomInfo> {
        // The table lock only for the list of rooms; members are copied under each
        // room's own lock, so listing a crowded server does not hold up every create,
        // join and leave.
        let rooms: Vec<(RoomId, SharedRoom<M>)> = lock(&self.rooms)
            .by_id
            .iter()
            .map(|(&id, room)| (id, Arc::clone(room)))
            .collect();
        rooms
            .into_iter()
            .filter_map(|(room_id, room)| {
                let room = lock(&room);
                (!room.is_gone()).then(|| room.info(room_id))
            })
            .collect()
    }
}

impl<M: Mailbox> MessageBroker<M> for LocalBroker<M> {
    fn create_room(
        &self,
        creator: Member<'_, M>,
        title: &str,
        out: &mut Fanout<M>,
    ) -> Reply<RoomId> {
        let mut table = lock(&self.rooms);
        if table.last_id >= MAX_ROOM_ID {
            return Reply::Done(Err(BrokerError::RoomIdsExhausted));
        }
        table.last_id += 1;
        let id = table.last_id;
        // Under the table lock: nobody can join before the creator's notice is queued.
        let owner = creator.account;
        let mut room = Room::create(title.to_owned(), creator.into(), self.history, out);
        if let Some(owner) = owner {
            room.register(owner);
            if let Some(keeper) = &self.keeper {
                keeper.registered(id, title, owner);
            }
        }
        table.by_id.insert(id, Arc::new(Mutex::new(room)));
        self.listing.changed();
        Reply::Done(Ok(id))
    }

    fn join_room(&self, room: RoomId, member: Member<'_, M>, out: &mut Fanout<M>) -> Reply<()> {
        // Under the table lock, so the room cannot be deleted between finding it and
        // joining it.
        let table = lock(&self.rooms);
        let Some(found) = table.by_id.get(&room) else {
            return Reply::Done(Err(BrokerError::NoSuchRoom));
        };
        let mut state = lock(found);
        if let Some(minutes_left) = state.ban_on(member.account, member.address, now_ms()) {
            return Reply::Done(Err(BrokerError::Banned { minutes_left }));
        }
        state.join(member.into(), room, out);
        self.listing.changed();
        Reply::Done(Ok(()))
    }

    fn leave_room(
        &self,
        room: RoomId,
        member: Member<'_, M>,
        why: Leaving,
        out: &mut Fanout<M>,
    ) -> Reply<()> {
        let Some(found) = self.find(room) else {
            return Reply::Done(Err(BrokerError::NoSuchRoom));
        };
        let now_empty = {
            let mut state = lock(&found);
            if state.leave(member.id, why, out).is_none() {
                // Not a member: nothing to tell anyone (errors change nothing).
                return Reply::Done(Err(BrokerError::NoSuchRoom));
            }
            self.listing.changed();
            state.is_gone()
        };
        if now_empty {
            // Lock order is table → room: re-check under both, someone may have joined.
            let mut table = lock(&self.rooms);
            if lock(&found).is_gone() {
                table.by_id.remove(&room);
                self.listing.changed();
                out.events.push(ChatEvent::RoomDeleted { room });
            }
        }
        Reply::Done(Ok(()))
    }

    fn rename(
        &self,
        room: RoomId,
        member: Member<'_, M>,
        _old: &str,
        out: &mut Fanout<M>,
    ) -> Reply<()> {
        let Some(found) = self.find(room) else {
            return Reply::Done(Err(BrokerError::NoSuchRoom));
        };
        let renamed = lock(&found).rename(member.id, member.name, out);
        if renamed.is_none() {
            return Reply::Done(Err(BrokerError::NoSuchRoom));
        }
        self.listing.changed();
        Reply::Done(Ok(()))
    }

    fn chat(
        &self,
        room: RoomId,
        sender: Member<'_, M>,
        text: &str,
        chat: &Encoded,
        out: &mut Fanout<M>,
    ) -> Result<usize, BrokerError> {
        let found = self.find(room).ok_or(BrokerError::NoSuchRoom)?;
        let at = Stamp {
            time_ms: now_ms(),
            seq: None,
        };
        let mut state = lock(&found);
        let chatted = state
            .chat(sender.id, text, at, |_| Some(chat.clone()), out)
            .ok_or(BrokerError::NoSuchRoom)?;
        // A registered room's chat is kept for good, as its history keeps it (none
        // with `--history=0`).
        if let (Some(keeper), Some(line), Some(_)) = (&self.keeper, chatted.line, state.owner())
            && self.history.lines > 0
        {
            keeper.chat(room, line);
        }
        Ok(chatted.recipients)
    }

    fn history(
        &self,
        room: RoomId,
        count: usize,
        before: Option<u64>,
    ) -> Result<(Vec<ChatLine>, bool), BrokerError> {
        let found = self.find(room).ok_or(BrokerError::NoSuchRoom)?;
        let page = lock(&found).history(count, before);
        Ok(page)
    }

    fn listing(&self) -> Result<Arc<Listing>, BrokerError> {
        Ok(self.listing.get(|| self.snapshot()))
    }

    fn listing_watch(&self) -> Option<&ListingWatch<M>> {
        Some(&self.watch)
    }

    fn accounts(&self) -> Option<&dyn AccountBackend<M>> {
        self.accounts.as_deref()
    }

    fn claim_name(&self, member: Member<'_, M>, key: &str) -> Reply<()> {
        Reply::Done(lock(&self.names).claim(member, key))
    }

    fn release_name(&self, id: ClientId) {
        lock(&self.names).release(id);
    }

    fn offers_direct(&self) -> bool {
        true
    }

    fn offers_moderation(&self) -> bool {
        true
    }

    fn moderate(
        &self,
        room: RoomId,
        actor: Member<'_, M>,
        action: crate::moderation::Action,
        out: &mut Fanout<M>,
    ) -> Reply<()> {
        let Some(found) = self.find(room) else {
            return Reply::Done(Err(BrokerError::NoSuchRoom));
        };
        let mut state = lock(&found);
        let done = state.moderate(room, actor.id, actor.account, action, now_ms(), out);
        if done.is_ok() {
            // Members (a kick, a ban) or a topic may have changed the listing.
            self.listing.changed();
            if let (Some(keeper), Some(owner)) = (&self.keeper, state.owner()) {
                keeper.moderated(room, owner, state.moderation());
            }
        }
        let text = done.unwrap_or_else(str::to_owned);
        out.send(
            actor.mailbox,
            actor.format,
            &Encoded::notice_for(actor.format, &text),
        );
        Reply::Done(Ok(()))
    }

    fn is_member(&self, room: RoomId, id: ClientId) -> bool {
        self.find(room)
            .is_some_and(|found| lock(&found).contains(id))
    }

    fn direct(&self, from: Member<'_, M>, to: &str, text: &str, out: &mut Fanout<M>) -> Reply<()> {
        let names = lock(&self.names);
        let from_key = crate::validate::name_key(from.name);
        let listed = match names.recipient(to, &from_key) {
            Ok(listed) => listed,
            Err(e) => return Reply::Done(Err(e)),
        };
        let time_ms = now_ms();
        // Too long for a frame in the recipient's form: the sender was told at its
        // own (the same text), so this only drops what the command let through.
        if let Some(message) =
            direct::encode(listed.format, listed.opted_in, from.name, text, time_ms)
        {
            out.send(&listed.mailbox, listed.format, &message);
        }
        Reply::Done(Ok(()))
    }

    fn set_ignored(&self, member: Member<'_, M>, key: &str, ignore: bool) -> Reply<bool> {
        Reply::Done(lock(&self.names).set_ignored(member.id, key, ignore))
    }

    fn refresh(&self, member: Member<'_, M>) {
        lock(&self.names).refresh(member);
    }

    fn forget(&self, id: ClientId) {
        lock(&self.names).forget(id);
    }

    fn delete_room(
        &self,
        room: RoomId,
        owner: &str,
        _to: &Arc<M>,
        out: &mut Fanout<M>,
    ) -> Reply<Unregistered> {
        Reply::Done(self.give_up(room, owner, out))
    }

    fn room_count(&self) -> usize {
        lock(&self.rooms).by_id.len()
    }
}

impl<M: Mailbox> LocalBroker<M> {
    /// [`MessageBroker::delete_room`], always done at once.
    fn give_up(
        &self,
        room: RoomId,
        owner: &str,
        out: &mut Fanout<M>,
    ) -> Result<Unregistered, BrokerError> {
        // Table → room, as everywhere: the room may be taken out of the table here.
        let mut table = lock(&self.rooms);
        let found = table.by_id.get(&room).ok_or(BrokerError::NoSuchRoom)?;
        let mut state = lock(found);
        if state.owner() != Some(owner) {
            return Err(BrokerError::NotOwner);
        }
        state.unregister();
        if let Some(keeper) = &self.keeper {
            keeper.unregistered(room);
        }
        if !state.is_gone() {
            return Ok(Unregistered::WhenEmpty);
        }
        drop(state);
        table.by_id.remove(&room);
        self.listing.changed();
        out.events.push(ChatEvent::RoomDeleted { room });
        Ok(Unregistered::Deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::Delivered;
    use bytes::Bytes;
    use chat_proto::WireFormat;

    #[derive(Debug)]
    struct Sink;
    impl Mailbox for Sink {
        fn deliver(&self, _: &Bytes) -> Delivered {
            Delivered::Queued
        }
    }

    fn member<'a>(id: ClientId, name: &'a str, mailbox: &'a Arc<Sink>) -> Member<'a, Sink> {
        Member {
            id,
            name,
            format: WireFormat::Json,
            mailbox,
            history: false,
            account: None,
            direct: false,
            moderation: false,
            address: None,
        }
    }

    /// The outcome of an operation the local broker always finishes at once.
    fn done<T: fmt::Debug>(reply: Reply<T>) -> Result<T, BrokerError> {
        match reply {
            Reply::Done(outcome) => outcome,
            Reply::Pending => panic!("the local broker never waits"),
        }
    }

    #[test]
    fn the_listing_is_shared_until_the_rooms_change() {
        let broker = LocalBroker::new();
        let mut out = Fanout::new();
        let sink = Arc::new(Sink);
        let room = done(broker.create_room(member(1, "a", &sink), "t", &mut out)).unwrap();
        let first = broker.listing().unwrap();
        assert!(Arc::ptr_eq(&first, &broker.listing().unwrap()), "reused");
        let json = first.messages(WireFormat::Json, false).to_vec();
        assert_eq!(json.len(), 1);

        done(broker.join_room(room, member(2, "b", &sink), &mut out)).unwrap();
        let second = broker.listing().unwrap();
        assert!(!Arc::ptr_eq(&first, &second), "a join makes a new listing");
        assert_eq!(second.rooms()[0].members, ["a", "b"]);

        done(broker.rename(room, member(2, "c", &sink), "b", &mut out)).unwrap();
        assert_eq!(broker.listing().unwrap().rooms()[0].members, ["a", "c"]);
        done(broker.leave_room(room, member(1, "a", &sink), Leaving::Asked, &mut out)).unwrap();
        assert_eq!(broker.listing().unwrap().rooms()[0].members, ["c"]);
        let last = member(2, "c", &sink);
        done(broker.leave_room(room, last, Leaving::Disconnected, &mut out)).unwrap();
        assert!(
            broker.listing().unwrap().rooms().is_empty(),
            "the room is gone"
        );
        assert_eq!(out.events, [ChatEvent::RoomDeleted { room }]);
    }

    #[test]
    fn room_ids_end_at_the_wire_limit_and_never_wrap() {
        let broker = LocalBroker::with_next_room_id(MAX_ROOM_ID);
        let mut out = Fanout::new();
        let sink = Arc::new(Sink);
        let last = done(broker.create_room(member(1, "a", &sink), "t", &mut out));
        assert_eq!(last, Ok(MAX_ROOM_ID), "the last id the wire can carry");
        let past = done(broker.create_room(member(2, "b", &sink), "u", &mut out));
        assert_eq!(past, Err(BrokerError::RoomIdsExhausted));
        // Nothing changed: the one room, and ids are not reused after it is gone.
        assert_eq!(broker.room_count(), 1);
        let a = member(1, "a", &sink);
        done(broker.leave_room(MAX_ROOM_ID, a, Leaving::Asked, &mut out)).unwrap();
        let again = done(broker.create_room(member(2, "b", &sink), "u", &mut out));
        assert_eq!(again, Err(BrokerError::RoomIdsExhausted));
        assert_eq!(broker.room_count(), 0);
    }

    /// A keeper that notes what it was handed.
    #[derive(Default)]
    struct Notes(Mutex<Vec<String>>);
    impl RoomKeeper for Notes {
        fn registered(&self, room: RoomId, title: &str, owner: &str) {
            lock(&self.0).push(format!("room {room} {title} of {owner}"));
        }
        fn unregistered(&self, room: RoomId) {
            lock(&self.0).push(format!("gone {room}"));
        }
        fn chat(&self, room: RoomId, line: ChatLine) {
            lock(&self.0).push(format!("chat {room} #{} {}", line.seq, line.text));
        }
    }

    /// A room made by a logged-in member lasts while empty, its chats are handed to
    /// the keeper (a guest room's are not), only its owner gives it up, and kept
    /// rooms come back with their history and ids.
    #[test]
    fn registered_rooms_last_and_are_kept() {
        let notes = Arc::new(Notes::default());
        let broker = LocalBroker::new().with_keeper(Arc::clone(&notes) as Arc<dyn RoomKeeper>);
        let mut out = Fanout::new();
        let sink = Arc::new(Sink);
        let owner = Member {
            account: Some("alice"),
            direct: false,
            moderation: false,
            address: None,
            ..member(1, "Alice", &sink)
        };
        let kept = done(broker.create_room(owner, "t", &mut out)).unwrap();
        let guest = done(broker.create_room(member(2, "g", &sink), "u", &mut out)).unwrap();
        let chat = Encoded::notice("x");
        broker.chat(kept, owner, "said", &chat, &mut out).unwrap();
        broker
            .chat(guest, member(2, "g", &sink), "not kept", &chat, &mut out)
            .unwrap();
        done(broker.leave_room(kept, owner, Leaving::Asked, &mut out)).unwrap();
        done(broker.leave_room(guest, member(2, "g", &sink), Leaving::Asked, &mut out)).unwrap();
        let rooms = broker.listing().unwrap();
        assert_eq!(rooms.rooms().len(), 1, "the guest room is gone");
        assert_eq!(
            (rooms.rooms()[0].room_id, rooms.rooms()[0].members.len()),
            (kept, 0)
        );
        assert_eq!(
            broker.give_up(kept, "bob", &mut out),
            Err(BrokerError::NotOwner)
        );
        assert_eq!(
            broker.give_up(guest, "alice", &mut out),
            Err(BrokerError::NoSuchRoom)
        );
        assert_eq!(
            broker.give_up(kept, "alice", &mut out),
            Ok(Unregistered::Deleted)
        );
        assert!(broker.listing().unwrap().rooms().is_empty());
        assert_eq!(
            *lock(&notes.0),
            ["room 1 t of alice", "chat 1 #1 said", "gone 1"]
        );

        let line = |seq, text: &str| ChatLine {
            seq,
            time_ms: 5,
            member: "Alice".into(),
            text: text.into(),
        };
        let back = LocalBroker::<Sink>::new().with_kept_rooms(vec![KeptRoom {
            id: 7,
            title: "t".into(),
            owner: "alice".into(),
            history: vec![line(3, "a"), line(4, "b")],
            moderation: Default::default(),
        }]);
        assert_eq!(
            back.history(7, 10, None).unwrap().0,
            [line(3, "a"), line(4, "b")]
        );
        let next = done(back.create_room(member(1, "a", &sink), "v", &mut out)).unwrap();
        assert_eq!(next, 8, "new rooms come after the kept ones");
        // A member with the room: given up, it lasts until that member leaves.
        let alice = Member {
            account: Some("alice"),
            direct: false,
            moderation: false,
            address: None,
            ..member(2, "Alice", &sink)
        };
        done(back.join_room(7, alice, &mut out)).unwrap();
        assert_eq!(
            back.give_up(7, "alice", &mut out),
            Ok(Unregistered::WhenEmpty)
        );
        assert_eq!(back.room_count(), 2);
        done(back.leave_room(7, alice, Leaving::Asked, &mut out)).unwrap();
        assert_eq!(back.room_count(), 1);
    }

    #[test]
    fn a_chat_from_a_non_member_is_refused() {
        let broker = LocalBroker::new();
        let mut out = Fanout::new();
        let sink = Arc::new(Sink);
        let room = done(broker.create_room(member(1, "a", &sink), "t", &mut out)).unwrap();
        let chat = Encoded::notice("x");
        let outsider = member(2, "b", &sink);
        assert_eq!(
            broker.chat(room, outsider, "x", &chat, &mut out),
            Err(BrokerError::NoSuchRoom)
        );
        assert_eq!(
            broker.chat(room, member(1, "a", &sink), "x", &chat, &mut out),
            Ok(0)
        );
    }
}
