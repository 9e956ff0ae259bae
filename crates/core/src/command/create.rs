//! `/create T`: create a room and enter it.

use crate::broker::BrokerError;
use crate::mailbox::Mailbox;
use crate::state::{ClientState, Turn};
use crate::{texts, validate};

pub(super) fn apply<M: Mailbox>(client: &mut ClientState, title: &str, turn: &mut Turn<'_, M>) {
    if client.room.is_some() {
        return client.system(turn, texts::CREATE_WHILE_IN_ROOM);
    }
    if let Err(refusal) = validate::check_title(title) {
        return client.system(turn, refusal);
    }
    match turn
        .broker
        .create_room(client.member(turn.mailbox), title, turn.out)
    {
        Ok(room) => client.room = Some(room),
        // A new room cannot be missing; say what is most likely true.
        Err(BrokerError::NoSuchRoom | BrokerError::Unavailable) => {
            client.system(turn, texts::UNAVAILABLE);
        }
    }
}
