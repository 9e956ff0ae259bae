//! LocalBroker: rooms held in this process.
//!
//! # Ordering and locking
//!
//! * Two kinds of lock: the room table and each room's member list. The order is
//!   always table → room, never the reverse.
//! * Every notice about a room — joins, leaves, renames, chats — is delivered to the
//!   recipients' mailboxes *while holding that room's lock*. So all members see one
//!   room's events in the same order, a member who left gets nothing sent after its
//!   leave notice, and a member who joined gets everything sent after its entry notice
//!   (the [contract](crate::broker)).
//! * Nothing is encoded under a lock: messages are encoded before locking, and under
//!   the lock only reference-counted handles are queued. Mailboxes never block.
//! * Room ids start at 1, grow by one and are never reused; a room is deleted when its
//!   last member leaves.
//! * Every change (create, join, leave, rename) bumps `version` *after* it is made;
//!   the last [`Listing`] is kept with the version it was computed at and handed out
//!   again while the version is unchanged. A listing is only kept if no change
//!   happened while it was computed, so a kept listing is never stale.
//!
//! It never returns [`BrokerError::Unavailable`]: everything it needs is here.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chat_proto::{RoomInfo, WireFormat};

use crate::broker::{BrokerError, ClientId, Leaving, MAX_ROOM_ID, Member, MessageBroker, RoomId};
use crate::encoded::Encoded;
use crate::fanout::{ChatEvent, Fanout};
use crate::listing::Listing;
use crate::mailbox::Mailbox;
use crate::texts;

/// Rooms held in this process.
pub struct LocalBroker<M> {
    rooms: Mutex<RoomTable<M>>,
    /// Bumped after every change to rooms or members.
    version: AtomicU64,
    /// The last listing and the version it shows.
    listing: Mutex<Option<(u64, Arc<Listing>)>>,
    /// Names claimed, by key and by holder.
    names: Mutex<NameTable>,
}

#[derive(Debug, Default)]
struct NameTable {
    by_key: HashMap<String, ClientId>,
    by_client: HashMap<ClientId, String>,
}

struct RoomTable<M> {
    last_id: RoomId,
    by_id: BTreeMap<RoomId, Arc<Room<M>>>,
}

struct Room<M> {
    title: String,
    /// In join order.
    members: Mutex<Vec<RoomMember<M>>>,
}

/// A member as a room stores it.
struct RoomMember<M> {
    id: ClientId,
    name: String,
    format: WireFormat,
    mailbox: Arc<M>,
}

impl<M> From<Member<'_, M>> for RoomMember<M> {
    fn from(member: Member<'_, M>) -> Self {
        RoomMember {
            id: member.id,
            name: member.name.to_owned(),
            format: member.format,
            mailbox: Arc::clone(member.mailbox),
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
            version: AtomicU64::new(0),
            listing: Mutex::new(None),
            names: Mutex::new(NameTable::default()),
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

/// Locks a mutex, ignoring poisoning: every critical section here leaves the data
/// consistent at each step, and a transport catches a panicking turn, so refusing to
/// go on would turn one bug into a dead server.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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

    fn find(&self, room: RoomId) -> Option<Arc<Room<M>>> {
        lock(&self.rooms).by_id.get(&room).cloned()
    }

    /// Marks the listing out of date; called after each change, under the lock that
    /// made it.
    fn changed(&self) {
        self.version.fetch_add(1, Ordering::Release);
    }

    /// Every room now, each as it was at one moment.
    fn snapshot(&self) -> Vec<RoomInfo> {
        // The table lock only for the list of rooms; names are copied under each
        // room's own lock, so listing a crowded server does not hold up every create,
        // join and leave.
        let rooms: Vec<(RoomId, Arc<Room<M>>)> = lock(&self.rooms)
            .by_id
            .iter()
            .map(|(&id, room)| (id, Arc::clone(room)))
            .collect();
        rooms
            .into_iter()
            .filter_map(|(room_id, room)| {
                let members: Vec<String> =
                    lock(&room.members).iter().map(|m| m.name.clone()).collect();
                (!members.is_empty()).then(|| RoomInfo {
                    room_id,
                    title: room.title.clone(),
                    members,
                })
            })
            .collect()
    }
}

/// Delivers `message` to every member except `except`. Called under the room's lock.
fn broadcast<M: Mailbox>(
    members: &[RoomMember<M>],
    except: ClientId,
    message: &Encoded,
    out: &mut Fanout<M>,
) {
    for member in members.iter().filter(|m| m.id != except) {
        out.send(&member.mailbox, member.format, message);
    }
}

impl<M: Mailbox> MessageBroker<M> for LocalBroker<M> {
    fn create_room(
        &self,
        creator: Member<'_, M>,
        title: &str,
        out: &mut Fanout<M>,
    ) -> Result<RoomId, BrokerError> {
        let entered = Encoded::notice_for(creator.format, &texts::entered_self(title));
        let mut table = lock(&self.rooms);
        if table.last_id >= MAX_ROOM_ID {
            return Err(BrokerError::RoomIdsExhausted);
        }
        table.last_id += 1;
        let id = table.last_id;
        let room = Room {
            title: title.to_owned(),
            members: Mutex::new(vec![RoomMember::from(creator)]),
        };
        table.by_id.insert(id, Arc::new(room));
        self.changed();
        // Under the table lock: nobody can join before the creator's notice is queued.
        out.send(creator.mailbox, creator.format, &entered);
        Ok(id)
    }

    fn join_room(
        &self,
        room: RoomId,
        member: Member<'_, M>,
        out: &mut Fanout<M>,
    ) -> Result<(), BrokerError> {
        // Encode first (needs the title), then lock and check the room still exists.
        let found = self.find(room).ok_or(BrokerError::NoSuchRoom)?;
        let entered = Encoded::notice_for(member.format, &texts::entered_self(&found.title));
        let arrived = Encoded::notice(&texts::entered_others(member.name));

        let table = lock(&self.rooms);
        let current = table.by_id.get(&room).ok_or(BrokerError::NoSuchRoom)?;
        if !Arc::ptr_eq(current, &found) {
            return Err(BrokerError::NoSuchRoom);
        }
        let mut members = lock(&current.members);
        broadcast(&members, member.id, &arrived, out);
        members.push(RoomMember::from(member));
        self.changed();
        out.send(member.mailbox, member.format, &entered);
        Ok(())
    }

    fn leave_room(
        &self,
        room: RoomId,
        member: Member<'_, M>,
        why: Leaving,
        out: &mut Fanout<M>,
    ) -> Result<(), BrokerError> {
        let found = self.find(room).ok_or(BrokerError::NoSuchRoom)?;
        let left = (why == Leaving::Asked)
            .then(|| Encoded::notice_for(member.format, &texts::left_self(&found.title)));
        let departed = Encoded::notice(&texts::left_others(member.name));

        let now_empty = {
            let mut members = lock(&found.members);
            let before = members.len();
            members.retain(|m| m.id != member.id);
            if members.len() == before {
                // Not a member: nothing to tell anyone (errors change nothing).
                return Err(BrokerError::NoSuchRoom);
            }
            self.changed();
            broadcast(&members, member.id, &departed, out);
            if let Some(left) = &left {
                out.send(member.mailbox, member.format, left);
            }
            members.is_empty()
        };
        if now_empty {
            // Lock order is table → room: re-check under both, someone may have joined.
            let mut table = lock(&self.rooms);
            if lock(&found.members).is_empty() {
                table.by_id.remove(&room);
                self.changed();
                out.events.push(ChatEvent::RoomDeleted { room });
            }
        }
        Ok(())
    }

    fn rename(
        &self,
        room: RoomId,
        member: Member<'_, M>,
        old: &str,
        out: &mut Fanout<M>,
    ) -> Result<(), BrokerError> {
        let found = self.find(room).ok_or(BrokerError::NoSuchRoom)?;
        let renamed = Encoded::notice_for(member.format, &texts::renamed_self(member.name));
        let others = Encoded::notice(&texts::renamed_others(old, member.name));
        let mut members = lock(&found.members);
        let own = members
            .iter_mut()
            .find(|m| m.id == member.id)
            .ok_or(BrokerError::NoSuchRoom)?;
        member.name.clone_into(&mut own.name);
        self.changed();
        broadcast(&members, member.id, &others, out);
        out.send(member.mailbox, member.format, &renamed);
        Ok(())
    }

    fn chat(
        &self,
        room: RoomId,
        sender: Member<'_, M>,
        _text: &str,
        chat: &Encoded,
        out: &mut Fanout<M>,
    ) -> Result<usize, BrokerError> {
        let found = self.find(room).ok_or(BrokerError::NoSuchRoom)?;
        let members = lock(&found.members);
        broadcast(&members, sender.id, chat, out);
        Ok(members.len().saturating_sub(1))
    }

    fn listing(&self) -> Result<Arc<Listing>, BrokerError> {
        let version = self.version.load(Ordering::Acquire);
        if let Some((shown, listing)) = &*lock(&self.listing)
            && *shown == version
        {
            return Ok(Arc::clone(listing));
        }
        // Computed outside every lock; kept only if nothing changed meanwhile (else it
        // may miss a change, which is fine for this caller, whose request came first,
        // but not for a later one).
        let listing = Arc::new(Listing::new(self.snapshot()));
        let mut kept = lock(&self.listing);
        if self.version.load(Ordering::Acquire) == version {
            *kept = Some((version, Arc::clone(&listing)));
        }
        Ok(listing)
    }

    fn claim_name(&self, id: ClientId, key: &str) -> Result<(), BrokerError> {
        let mut names = lock(&self.names);
        match names.by_key.get(key) {
            Some(&holder) if holder != id => return Err(BrokerError::NameTaken),
            Some(_) => return Ok(()),
            None => {}
        }
        if let Some(old) = names.by_client.insert(id, key.to_owned()) {
            names.by_key.remove(&old);
        }
        names.by_key.insert(key.to_owned(), id);
        Ok(())
    }

    fn release_name(&self, id: ClientId) {
        let mut names = lock(&self.names);
        if let Some(key) = names.by_client.remove(&id) {
            names.by_key.remove(&key);
        }
    }

    fn room_count(&self) -> usize {
        lock(&self.rooms).by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::Delivered;
    use bytes::Bytes;

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
        }
    }

    #[test]
    fn the_listing_is_shared_until_the_rooms_change() {
        let broker = LocalBroker::new();
        let mut out = Fanout::new();
        let sink = Arc::new(Sink);
        let room = broker
            .create_room(member(1, "a", &sink), "t", &mut out)
            .unwrap();
        let first = broker.listing().unwrap();
        assert!(Arc::ptr_eq(&first, &broker.listing().unwrap()), "reused");
        let json = first.messages(WireFormat::Json).to_vec();
        assert_eq!(json.len(), 1);

        broker
            .join_room(room, member(2, "b", &sink), &mut out)
            .unwrap();
        let second = broker.listing().unwrap();
        assert!(!Arc::ptr_eq(&first, &second), "a join makes a new listing");
        assert_eq!(second.rooms()[0].members, ["a", "b"]);

        broker
            .rename(room, member(2, "c", &sink), "b", &mut out)
            .unwrap();
        assert_eq!(broker.listing().unwrap().rooms()[0].members, ["a", "c"]);
        broker
            .leave_room(room, member(1, "a", &sink), Leaving::Asked, &mut out)
            .unwrap();
        assert_eq!(broker.listing().unwrap().rooms()[0].members, ["c"]);
        broker
            .leave_room(room, member(2, "c", &sink), Leaving::Disconnected, &mut out)
            .unwrap();
        assert!(
            broker.listing().unwrap().rooms().is_empty(),
            "the room is gone"
        );
    }
}
