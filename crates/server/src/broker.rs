//! MessageBroker: rooms, membership and fan-out.
//!
//! [`MessageBroker`] is the seam between commands and room state: the commands in
//! `cmd/` decide *whether* something may happen and the broker makes it happen and
//! tells everyone concerned. [`LocalBroker`] keeps rooms in this process; a cluster
//! broker (rooms shared through Redis, members on many servers) would implement the
//! same trait.
//!
//! # Ordering and locking (LocalBroker)
//!
//! * Two kinds of lock: the room table (`rooms`) and each room's member list. The
//!   order is always table → room, never the reverse.
//! * Every notice about a room — joins, leaves, renames, chats — is appended to the
//!   recipients' outbound queues *while holding that room's lock*. So all members see
//!   one room's events in the same order, a member who left gets nothing sent after
//!   their leave notice, and a member who joined gets everything sent after their join
//!   notice.
//! * Nothing is encoded and nothing is written to a socket under a lock: messages are
//!   encoded before locking (`Delivery`), and under the lock they are only copied into
//!   queues; the worker writes them out after.
//! * Room ids start at 1, grow by one and are never reused; a room is deleted when its
//!   last member leaves.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chat_proto::{EncodeError, Response, RoomInfo, WireFormat};

use crate::delivery::Delivery;
use crate::pool::lock;
use crate::session::Session;
use crate::texts;

/// A room's number, as clients see it.
pub type RoomId = i64;

/// A client, as the broker's callers describe it (borrowed: no copy per chat).
#[derive(Clone, Copy)]
pub struct Member<'a> {
    pub session: &'a Arc<Session>,
    /// The member's display name (after a rename, the new one).
    pub name: &'a str,
    /// The format the member's messages are written in.
    pub format: WireFormat,
}

/// A member as a room stores it.
struct RoomMember {
    session: Arc<Session>,
    name: String,
    format: WireFormat,
}

impl From<&Member<'_>> for RoomMember {
    fn from(member: &Member<'_>) -> Self {
        RoomMember {
            session: Arc::clone(member.session),
            name: member.name.to_owned(),
            format: member.format,
        }
    }
}

/// `join_room` found no such room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoSuchRoom;

/// Rooms and fan-out. Every method delivers its notices through `delivery`; the
/// caller flushes after.
pub trait MessageBroker: Send + Sync {
    /// Creates a room titled `title` with `creator` as its only member and sends the
    /// creator its entry notice. Returns the new room's id.
    fn create_room(&self, creator: &Member<'_>, title: &str, delivery: &mut Delivery) -> RoomId;

    /// Adds `member` to room `room`: the member gets its entry notice, the earlier
    /// members `[NAME] 님이 입장했습니다.`.
    fn join_room(
        &self,
        room: RoomId,
        member: &Member<'_>,
        delivery: &mut Delivery,
    ) -> Result<(), NoSuchRoom>;

    /// Removes `member` from room `room`; the others get `[NAME] 님이 퇴장했습니다.`, and
    /// the member its own leave notice if `notify_self` (not on disconnect). Deletes
    /// the room if it is now empty.
    fn leave_room(
        &self,
        room: RoomId,
        member: &Member<'_>,
        notify_self: bool,
        delivery: &mut Delivery,
    );

    /// Renames `member` (whose `name` is the new name) from `old` inside room `room`:
    /// the member gets its rename notice, the others `OLD 의 이름이 X 으로 변경되었습니다.`.
    fn rename(&self, room: RoomId, member: &Member<'_>, old: &str, delivery: &mut Delivery);

    /// Sends a chat line from `sender` to every other member of room `room`.
    fn chat(
        &self,
        room: RoomId,
        sender: &Member<'_>,
        text: &str,
        delivery: &mut Delivery,
    ) -> Result<(), EncodeError>;

    /// Every room, ordered by id, members in join order.
    fn rooms(&self) -> Vec<RoomInfo>;

    /// How many rooms exist (for logs and metrics).
    fn room_count(&self) -> usize;
}

/// Rooms held in this process.
#[derive(Default)]
pub struct LocalBroker {
    rooms: Mutex<RoomTable>,
}

#[derive(Default)]
struct RoomTable {
    last_id: RoomId,
    by_id: BTreeMap<RoomId, Arc<Room>>,
}

struct Room {
    title: String,
    /// In join order.
    members: Mutex<Vec<RoomMember>>,
}

impl LocalBroker {
    /// An empty broker.
    pub fn new() -> Self {
        Self::default()
    }

    fn find(&self, room: RoomId) -> Option<Arc<Room>> {
        lock(&self.rooms).by_id.get(&room).cloned()
    }
}

/// Encodes a notice for one member as the current single message. Notices embed
/// names and titles, which are length-checked, so they always fit a frame; should one
/// not, `Delivery` sends nothing for it rather than half a message.
fn encode_own_notice(delivery: &mut Delivery, format: WireFormat, text: &str) {
    if let Err(e) = delivery.encode_single(format, &Response::system(text)) {
        tracing::error!("notice not encoded: {e}");
    }
}

/// Encodes a notice for the other members as the current broadcast (see
/// [`encode_own_notice`] on errors).
fn encode_others_notice(delivery: &mut Delivery, text: &str) {
    if let Err(e) = delivery.encode_broadcast(&Response::system(text)) {
        tracing::error!("notice not encoded: {e}");
    }
}

/// Queues the current broadcast for every member except the one with session id
/// `except`. Called under the room's lock.
fn broadcast(members: &[RoomMember], except: u64, delivery: &mut Delivery) {
    for member in members.iter().filter(|m| m.session.id != except) {
        delivery.send_broadcast(&member.session, member.format);
    }
}

impl MessageBroker for LocalBroker {
    fn create_room(&self, creator: &Member<'_>, title: &str, delivery: &mut Delivery) -> RoomId {
        encode_own_notice(delivery, creator.format, &texts::entered_self(title));
        let mut table = lock(&self.rooms);
        table.last_id += 1;
        let id = table.last_id;
        let room = Room {
            title: title.to_owned(),
            members: Mutex::new(vec![RoomMember::from(creator)]),
        };
        table.by_id.insert(id, Arc::new(room));
        // Under the table lock: nobody can join before the creator's notice is queued.
        delivery.send_single(creator.session);
        id
    }

    fn join_room(
        &self,
        room: RoomId,
        member: &Member<'_>,
        delivery: &mut Delivery,
    ) -> Result<(), NoSuchRoom> {
        // Encode first (needs the title), then lock and check the room still exists.
        let found = self.find(room).ok_or(NoSuchRoom)?;
        encode_own_notice(delivery, member.format, &texts::entered_self(&found.title));
        encode_others_notice(delivery, &texts::entered_others(member.name));

        let table = lock(&self.rooms);
        let current = table.by_id.get(&room).ok_or(NoSuchRoom)?;
        if !Arc::ptr_eq(current, &found) {
            return Err(NoSuchRoom);
        }
        let mut members = lock(&current.members);
        broadcast(&members, member.session.id, delivery);
        members.push(RoomMember::from(member));
        delivery.send_single(member.session);
        Ok(())
    }

    fn leave_room(
        &self,
        room: RoomId,
        member: &Member<'_>,
        notify_self: bool,
        delivery: &mut Delivery,
    ) {
        let Some(found) = self.find(room) else {
            tracing::error!(
                session = member.session.id,
                room,
                "leaving a room that does not exist"
            );
            return;
        };
        if notify_self {
            encode_own_notice(delivery, member.format, &texts::left_self(&found.title));
        }
        encode_others_notice(delivery, &texts::left_others(member.name));

        let now_empty = {
            let mut members = lock(&found.members);
            members.retain(|m| m.session.id != member.session.id);
            broadcast(&members, member.session.id, delivery);
            if notify_self {
                delivery.send_single(member.session);
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
    }

    fn rename(&self, room: RoomId, member: &Member<'_>, old: &str, delivery: &mut Delivery) {
        let Some(found) = self.find(room) else {
            return;
        };
        encode_own_notice(delivery, member.format, &texts::renamed_self(member.name));
        encode_others_notice(delivery, &texts::renamed_others(old, member.name));
        let mut members = lock(&found.members);
        if let Some(own) = members
            .iter_mut()
            .find(|m| m.session.id == member.session.id)
        {
            member.name.clone_into(&mut own.name);
        }
        broadcast(&members, member.session.id, delivery);
        delivery.send_single(member.session);
    }

    fn chat(
        &self,
        room: RoomId,
        sender: &Member<'_>,
        text: &str,
        delivery: &mut Delivery,
    ) -> Result<(), EncodeError> {
        let Some(found) = self.find(room) else {
            return Ok(());
        };
        delivery.encode_broadcast(&Response::Chat {
            member: sender.name.into(),
            text: text.into(),
        })?;
        broadcast(&lock(&found.members), sender.session.id, delivery);
        Ok(())
    }

    fn rooms(&self) -> Vec<RoomInfo> {
        // The table lock only for the list of rooms; names are copied under each
        // room's own lock, so a client asking for /rooms in a loop on a crowded server
        // does not hold up every create, join and leave. Each room is listed as it
        // was at one moment; a room emptied meanwhile is left out.
        let rooms: Vec<(RoomId, Arc<Room>)> = lock(&self.rooms)
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

    fn room_count(&self) -> usize {
        lock(&self.rooms).by_id.len()
    }
}
