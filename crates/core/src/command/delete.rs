//! `/delete N` (the `accounts` extension, docs/PROTOCOL.md §7.2): the owner of a
//! registered room gives it up. An empty room is deleted at once with its history; a
//! room with members becomes an ordinary room, gone when its last member leaves. The
//! members are told nothing: nothing changes for them until then.
//!
//! Only a client that opted in to `accounts` and is logged in may ask; the broker
//! checks that the room is registered to that account.

use crate::broker::{BrokerError, Reply, RoomId, Unregistered};
use crate::mailbox::Mailbox;
use crate::state::{Awaiting, ClientState, Outcome, Turn};
use crate::texts;

use super::account::backend;

pub(super) fn apply<M: Mailbox>(
    client: &mut ClientState,
    room: RoomId,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    if backend(client, turn).is_none() {
        return Outcome::Continue;
    }
    let Some(owner) = client.account.as_deref() else {
        client.system(turn, texts::DELETE_NEEDS_LOGIN);
        return Outcome::Continue;
    };
    match turn.broker.delete_room(room, owner, turn.mailbox, turn.out) {
        Reply::Done(outcome) => {
            finish(client, room, outcome, turn);
            Outcome::Continue
        }
        Reply::Pending => client.wait(Awaiting::Delete { room }),
    }
}

/// Tells the owner what became of room `room`.
pub(super) fn finish<M: Mailbox>(
    client: &mut ClientState,
    room: RoomId,
    outcome: Result<Unregistered, BrokerError>,
    turn: &mut Turn<'_, M>,
) {
    let text = match outcome {
        Ok(Unregistered::Deleted) => texts::room_deleted(room),
        Ok(Unregistered::WhenEmpty) => texts::room_unregistered(room),
        Err(BrokerError::NoSuchRoom) => texts::NO_SUCH_ROOM.to_owned(),
        Err(BrokerError::NotOwner) => texts::NOT_ROOM_OWNER.to_owned(),
        Err(_) => texts::UNAVAILABLE.to_owned(),
    };
    client.system(turn, &text);
}
