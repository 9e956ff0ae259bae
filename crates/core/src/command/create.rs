//! `/create T`: create a room and enter it.

use crate::broker::BrokerError;
use crate::fanout::ChatEvent;
use crate::mailbox::Mailbox;
use crate::state::{ClientState, Turn};
use crate::{texts, validate};

pub(super) fn apply<M: Mailbox>(client: &mut ClientState, title: &str, turn: &mut Turn<'_, M>) {
    if client.room.is_some() {
        return client.system(turn, texts::CREATE_WHILE_IN_ROOM);
    }
    let title = match validate::check_title(title) {
        Ok(title) => title,
        Err(refusal) => return client.system(turn, refusal),
    };
    match turn
        .broker
        .create_room(client.member(turn.mailbox), &title, turn.out)
    {
        Ok(room) => {
            client.room = Some(room);
            turn.out.events.push(ChatEvent::RoomCreated { room, title });
        }
        Err(BrokerError::RoomIdsExhausted) => client.system(turn, texts::ROOM_IDS_EXHAUSTED),
        // A new room cannot be missing or a name taken; say what is most likely true.
        Err(BrokerError::NoSuchRoom | BrokerError::NameTaken | BrokerError::Unavailable) => {
            client.system(turn, texts::UNAVAILABLE);
        }
    }
}
