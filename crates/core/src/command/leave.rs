//! `/leave`: leave the current room.

use crate::broker::{BrokerError, Leaving};
use crate::mailbox::Mailbox;
use crate::state::{ClientState, Turn};
use crate::texts;

pub(super) fn apply<M: Mailbox>(client: &mut ClientState, turn: &mut Turn<'_, M>) {
    let Some(room) = client.room else {
        return client.system(turn, texts::NOT_IN_ROOM);
    };
    match turn
        .broker
        .leave_room(room, client.member(turn.mailbox), Leaving::Asked, turn.out)
    {
        Ok(()) => client.room = None,
        // The broker no longer has us in that room: we are in none, as it says.
        Err(BrokerError::NoSuchRoom) => {
            client.room = None;
            client.system(turn, texts::NOT_IN_ROOM);
        }
        Err(_) => client.system(turn, texts::UNAVAILABLE),
    }
}
