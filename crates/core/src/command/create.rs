//! `/create T`: create a room and enter it.

use crate::broker::{BrokerError, Reply, RoomId};
use crate::fanout::ChatEvent;
use crate::mailbox::Mailbox;
use crate::state::{Awaiting, ClientState, Outcome, Turn};
use crate::{texts, validate};

pub(super) fn apply<M: Mailbox>(
    client: &mut ClientState,
    title: &str,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    if client.room.is_some() {
        client.system(turn, texts::CREATE_WHILE_IN_ROOM);
        return Outcome::Continue;
    }
    let title = match validate::check_title(title) {
        Ok(title) => title,
        Err(refusal) => {
            client.system(turn, refusal);
            return Outcome::Continue;
        }
    };
    match turn
        .broker
        .create_room(client.member(turn.mailbox), &title, turn.out)
    {
        Reply::Done(outcome) => finish(client, title, outcome, turn),
        Reply::Pending => client.wait(Awaiting::Create { title }),
    }
}

pub(super) fn finish<M: Mailbox>(
    client: &mut ClientState,
    title: String,
    outcome: Result<RoomId, BrokerError>,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    match outcome {
        Ok(room) => {
            client.room = Some(room);
            // The broker registered it to the account (MessageBroker::create_room).
            if client.account.is_some() {
                client.system(turn, &texts::room_registered(room));
            }
            turn.out.events.push(ChatEvent::RoomCreated { room, title });
        }
        Err(BrokerError::RoomIdsExhausted) => client.system(turn, texts::ROOM_IDS_EXHAUSTED),
        // A new room cannot be missing, a name taken or a password wrong; say what is
        // most likely true.
        Err(
            BrokerError::NoSuchRoom
            | BrokerError::NameTaken
            | BrokerError::NameRegistered
            | BrokerError::Unavailable
            | BrokerError::BadCredentials
            | BrokerError::Throttled
            | BrokerError::NotOwner
            | BrokerError::NoSuchMember
            | BrokerError::Ignored
            | BrokerError::TooMany
            | BrokerError::Banned { .. },
        ) => {
            client.system(turn, texts::UNAVAILABLE);
        }
    }
    Outcome::Continue
}
