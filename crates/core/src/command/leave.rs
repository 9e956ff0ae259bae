//! `/leave`: leave the current room.

use crate::broker::{BrokerError, Leaving, Reply};
use crate::mailbox::Mailbox;
use crate::state::{Awaiting, ClientState, Outcome, Turn};
use crate::texts;

pub(super) fn apply<M: Mailbox>(client: &mut ClientState, turn: &mut Turn<'_, M>) -> Outcome {
    let Some(room) = client.room else {
        client.system(turn, texts::NOT_IN_ROOM);
        return Outcome::Continue;
    };
    match turn
        .broker
        .leave_room(room, client.member(turn.mailbox), Leaving::Asked, turn.out)
    {
        Reply::Done(outcome) => finish(client, outcome, turn),
        Reply::Pending => client.wait(Awaiting::Leave),
    }
}

pub(super) fn finish<M: Mailbox>(
    client: &mut ClientState,
    outcome: Result<(), BrokerError>,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    match outcome {
        Ok(()) => client.room = None,
        // The broker no longer has us in that room: we are in none, as it says.
        Err(BrokerError::NoSuchRoom) => {
            client.room = None;
            client.system(turn, texts::NOT_IN_ROOM);
        }
        Err(_) => client.system(turn, texts::UNAVAILABLE),
    }
    Outcome::Continue
}
