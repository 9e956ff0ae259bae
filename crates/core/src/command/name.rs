//! `/name X`: change the client's display name.

use crate::broker::BrokerError;
use crate::fanout::ChatEvent;
use crate::mailbox::Mailbox;
use crate::state::{ClientState, Turn};
use crate::{texts, validate};

pub(super) fn apply<M: Mailbox>(client: &mut ClientState, raw: String, turn: &mut Turn<'_, M>) {
    let name = match validate::check_name(&raw) {
        Ok(name) => name,
        Err(refusal) => return client.system(turn, refusal),
    };
    // Unique by look: the claim is shared state, so the broker's.
    match turn
        .broker
        .claim_name(client.id, &validate::name_key(&name))
    {
        Ok(()) => {}
        Err(BrokerError::NameTaken) => return client.system(turn, texts::NAME_TAKEN),
        Err(_) => return client.system(turn, texts::UNAVAILABLE),
    }
    let Some(room) = client.room else {
        let old = std::mem::replace(&mut client.name, name);
        renamed(client, turn, old);
        return client.system(turn, &texts::renamed_self(&client.name));
    };
    // In a room the broker sends both notices under the room's lock, so every member
    // sees the rename at the same point among the room's messages.
    let old = std::mem::replace(&mut client.name, name);
    match turn
        .broker
        .rename(room, client.member(turn.mailbox), &old, turn.out)
    {
        Ok(()) => renamed(client, turn, old),
        Err(BrokerError::NoSuchRoom) => {
            client.room = None;
            client.system(turn, &texts::renamed_self(&client.name));
            renamed(client, turn, old);
        }
        Err(_) => {
            // Nothing changed anywhere, so nothing changes here either: the old name
            // is taken back (it was ours a moment ago, or a default name nobody can
            // take).
            client.name = old;
            match turn
                .broker
                .claim_name(client.id, &validate::name_key(&client.name))
            {
                Ok(()) => {}
                Err(_) => turn.broker.release_name(client.id),
            }
            client.system(turn, texts::UNAVAILABLE);
        }
    }
}

/// Records the rename for the transport's log.
fn renamed<M: Mailbox>(client: &ClientState, turn: &mut Turn<'_, M>, old: String) {
    turn.out.events.push(ChatEvent::Renamed {
        client: client.id,
        old,
        new: client.name.clone(),
    });
}
