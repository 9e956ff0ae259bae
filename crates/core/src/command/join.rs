//! `/join N`: enter an existing room.

use crate::broker::{BrokerError, Reply, RoomId};
use crate::mailbox::Mailbox;
use crate::state::{Awaiting, ClientState, Outcome, Turn};
use crate::texts;

pub(super) fn apply<M: Mailbox>(
    client: &mut ClientState,
    room: RoomId,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    // The reference checks membership before existence.
    if client.room.is_some() {
        client.system(turn, texts::JOIN_WHILE_IN_ROOM);
        return Outcome::Continue;
    }
    match turn
        .broker
        .join_room(room, client.member(turn.mailbox), turn.out)
    {
        Reply::Done(outcome) => finish(client, room, outcome, turn),
        Reply::Pending => client.wait(Awaiting::Join { room }),
    }
}

pub(super) fn finish<M: Mailbox>(
    client: &mut ClientState,
    room: RoomId,
    outcome: Result<(), BrokerError>,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    match outcome {
        Ok(()) => client.room = Some(room),
        Err(BrokerError::NoSuchRoom) => client.system(turn, texts::NO_SUCH_ROOM),
        Err(BrokerError::Banned { minutes_left }) => {
            client.system(turn, &texts::join_banned(minutes_left));
        }
        Err(_) => client.system(turn, texts::UNAVAILABLE),
    }
    Outcome::Continue
}
