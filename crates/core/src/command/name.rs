//! `/name X`: change the client's display name.
//!
//! Two broker steps, each of which may wait: the name is claimed (unique by look,
//! shared state), then, inside a room, the rename is announced there. Should the
//! second fail for want of the shared state, the old name is claimed back, so that
//! nothing changed anywhere.

use crate::broker::{BrokerError, Reply};
use crate::fanout::ChatEvent;
use crate::mailbox::Mailbox;
use crate::state::{Awaiting, ClientState, Outcome, Turn};
use crate::{texts, validate};

pub(super) fn apply<M: Mailbox>(
    client: &mut ClientState,
    raw: String,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    let name = match validate::check_name(&raw) {
        Ok(name) => name,
        Err(refusal) => {
            client.system(turn, refusal);
            return Outcome::Continue;
        }
    };
    let key = validate::name_key(&name);
    // A registered name (or a look-alike: the same key) is its account's.
    let registered = turn
        .broker
        .accounts()
        .is_some_and(|accounts| accounts.is_registered(&key));
    if registered && client.account.as_deref() != Some(key.as_str()) {
        client.system(turn, texts::NAME_REGISTERED);
        return Outcome::Continue;
    }
    match turn.broker.claim_name(client.member(turn.mailbox), &key) {
        Reply::Done(outcome) => claimed(client, name, outcome, turn),
        Reply::Pending => client.wait(Awaiting::Claim { name }),
    }
}

/// The claim of `name` came back.
pub(super) fn claimed<M: Mailbox>(
    client: &mut ClientState,
    name: String,
    outcome: Result<(), BrokerError>,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    match outcome {
        Ok(()) => {}
        Err(BrokerError::NameTaken) => {
            client.system(turn, texts::NAME_TAKEN);
            return Outcome::Continue;
        }
        Err(BrokerError::NameRegistered) => {
            client.system(turn, texts::NAME_REGISTERED);
            return Outcome::Continue;
        }
        Err(_) => {
            client.system(turn, texts::UNAVAILABLE);
            return Outcome::Continue;
        }
    }
    let old = std::mem::replace(&mut client.name, name);
    let Some(room) = client.room else {
        renamed(client, turn, old);
        client.system(turn, &texts::renamed_self(&client.name));
        return Outcome::Continue;
    };
    // In a room the broker sends both notices in the room's order, so every member
    // sees the rename at the same point among the room's messages.
    match turn
        .broker
        .rename(room, client.member(turn.mailbox), &old, turn.out)
    {
        Reply::Done(outcome) => renamed_in_room(client, old, outcome, turn),
        Reply::Pending => client.wait(Awaiting::Rename { old }),
    }
}

/// The rename inside the client's room came back (the client has the new name).
pub(super) fn renamed_in_room<M: Mailbox>(
    client: &mut ClientState,
    old: String,
    outcome: Result<(), BrokerError>,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    match outcome {
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
            let key = validate::name_key(&client.name);
            return match turn.broker.claim_name(client.member(turn.mailbox), &key) {
                Reply::Done(outcome) => reclaimed(client, outcome, turn),
                Reply::Pending => client.wait(Awaiting::Reclaim),
            };
        }
    }
    Outcome::Continue
}

/// Taking the old name back came back; either way the rename failed.
pub(super) fn reclaimed<M: Mailbox>(
    client: &mut ClientState,
    outcome: Result<(), BrokerError>,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    if outcome.is_err() {
        turn.broker.release_name(client.id);
    }
    client.system(turn, texts::UNAVAILABLE);
    Outcome::Continue
}

/// Records the rename for the transport's log.
fn renamed<M: Mailbox>(client: &ClientState, turn: &mut Turn<'_, M>, old: String) {
    turn.out.events.push(ChatEvent::Renamed {
        client: client.id,
        old,
        new: client.name.clone(),
    });
}
