//! `/name X`: change the client's display name.

use crate::broker::BrokerError;
use crate::mailbox::Mailbox;
use crate::state::{ClientState, Turn};
use crate::{texts, validate};

pub(super) fn apply<M: Mailbox>(client: &mut ClientState, name: String, turn: &mut Turn<'_, M>) {
    if let Err(refusal) = validate::check_name(&name) {
        return client.system(turn, refusal);
    }
    let Some(room) = client.room else {
        client.name = name;
        return client.system(turn, &texts::renamed_self(&client.name));
    };
    // In a room the broker sends both notices under the room's lock, so every member
    // sees the rename at the same point among the room's messages.
    let old = std::mem::replace(&mut client.name, name);
    match turn
        .broker
        .rename(room, client.member(turn.mailbox), &old, turn.out)
    {
        Ok(()) => {}
        Err(BrokerError::NoSuchRoom) => {
            client.room = None;
            client.system(turn, &texts::renamed_self(&client.name));
        }
        Err(BrokerError::Unavailable) => {
            // Nothing changed anywhere, so nothing changes here either.
            client.name = old;
            client.system(turn, texts::UNAVAILABLE);
        }
    }
}
