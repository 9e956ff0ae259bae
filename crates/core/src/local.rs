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
//!
//! It never returns [`BrokerError::Unavailable`]: everything it needs is here.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use chat_proto::{RoomInfo, WireFormat};

use crate::broker::{BrokerError, ClientId, Leaving, Member, MessageBroker, RoomId};
use crate::encoded::Encoded;
use crate::fanout::Fanout;
use crate::mailbox::Mailbox;
use crate::texts;

/// Rooms held in this process.
pub struct LocalBroker<M> {
    rooms: Mutex<RoomTable<M>>,
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

    fn find(&self, room: RoomId) -> Option<Arc<Room<M>>> {
        lock(&self.rooms).by_id.get(&room).cloned()
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
        table.last_id += 1;
        let id = table.last_id;
        let room = Room {
            title: title.to_owned(),
            members: Mutex::new(vec![RoomMember::from(creator)]),
        };
        table.by_id.insert(id, Arc::new(room));
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
        broadcast(&members, member.id, &others, out);
        out.send(member.mailbox, member.format, &renamed);
        Ok(())
    }

    fn chat(
        &self,
        room: RoomId,
        sender: Member<'_, M>,
        chat: &Encoded,
        out: &mut Fanout<M>,
    ) -> Result<(), BrokerError> {
        let found = self.find(room).ok_or(BrokerError::NoSuchRoom)?;
        broadcast(&lock(&found.members), sender.id, chat, out);
        Ok(())
    }

    fn rooms(&self) -> Result<Vec<RoomInfo>, BrokerError> {
        // The table lock only for the list of rooms; names are copied under each
        // room's own lock, so a client asking for /rooms in a loop on a crowded server
        // does not hold up every create, join and leave.
        let rooms: Vec<(RoomId, Arc<Room<M>>)> = lock(&self.rooms)
            .by_id
            .iter()
            .map(|(&id, room)| (id, Arc::clone(room)))
            .collect();
        Ok(rooms
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
            .collect())
    }

    fn room_count(&self) -> usize {
        lock(&self.rooms).by_id.len()
    }
}
