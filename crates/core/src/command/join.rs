//! `/join N`: enter an existing room.

use crate::broker::{BrokerError, RoomId};
use crate::mailbox::Mailbox;
use crate::state::{ClientState, Turn};
use crate::texts;

pub(super) fn apply<M: Mailbox>(client: &mut ClientState, room: RoomId, turn: &mut Turn<'_, M>) {
    // The reference checks membership before existence.
    if client.room.is_some() {
        return client.system(turn, texts::JOIN_WHILE_IN_ROOM);
    }
    match turn
        .broker
        .join_room(room, client.member(turn.mailbox), turn.out)
    {
        Ok(()) => client.room = Some(room),
        Err(BrokerError::NoSuchRoom) => client.system(turn, texts::NO_SUCH_ROOM),
        Err(_) => client.system(turn, texts::UNAVAILABLE),
    }
}
