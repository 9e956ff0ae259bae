//! `/op`, `/deop`, `/owner`, `/kick`, `/ban`, `/unban`, `/topic` (the `moderation`
//! extension, docs/PROTOCOL.md §7.6): a registered room's owner and operators keep
//! it civil. Each acts on the room the client is in.
//!
//! Here: the opt-in, validation of what was typed (a name, a reason, a number of
//! minutes, a topic), and finding the accounts named (the accounts backend knows
//! them). The rules — who may do what to whom — are the room's
//! (`moderation.rs`, `Room::moderate`), applied by the broker under the room's
//! serialisation, which answers the text the client is told.

use crate::broker::{BrokerError, Reply, RoomId};
use crate::features::MODERATION;
use crate::mailbox::Mailbox;
use crate::moderation::{self, Action, MAX_REASON_CHARS};
use crate::state::{Awaiting, ClientState, Outcome, Turn};
use crate::{texts, validate};

/// The room the client moderates, if it opted in and is in one; tells it why not.
fn room<M: Mailbox>(client: &ClientState, turn: &mut Turn<'_, M>) -> Option<RoomId> {
    if !client.features.has(MODERATION) {
        client.system(turn, texts::MODERATION_NOT_ENABLED);
        return None;
    }
    let room = client.room;
    if room.is_none() {
        client.system(turn, texts::NOT_IN_ROOM);
    }
    room
}

/// The key and registered name of the account called `raw`, if there is one.
fn account<M: Mailbox>(raw: &str, turn: &Turn<'_, M>) -> Option<(String, String)> {
    let key = validate::name_key(&validate::check_name(raw).ok()?);
    let name = turn.broker.accounts()?.registered_name(&key)?;
    Some((key, name))
}

/// A member's name as typed, to find it in the room: a name as `/name` keeps it,
/// or else a default name (`(IP, PORT)`, which no `/name` could take: a guest that
/// never chose one, the reference client's usual case, can be put out too); `None`
/// for nothing at all.
fn member_name(raw: &str) -> Option<String> {
    match validate::check_name(raw) {
        Ok(name) => Some(name),
        Err(_) => Some(raw.trim().to_owned()).filter(|name| !name.is_empty()),
    }
}

/// Asks the broker for `action` in room `room` (the broker tells the client what
/// came of it).
fn act<M: Mailbox>(
    client: &mut ClientState,
    room: RoomId,
    action: Action,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    let member = client.member(turn.mailbox);
    match turn.broker.moderate(room, member, action, turn.out) {
        Reply::Done(outcome) => {
            finish(client, outcome, turn);
            Outcome::Continue
        }
        Reply::Pending => client.wait(Awaiting::Moderate),
    }
}

/// What the client is told when the broker could not ask the room (it was told by
/// the broker otherwise).
pub(super) fn finish<M: Mailbox>(
    client: &mut ClientState,
    outcome: Result<(), BrokerError>,
    turn: &mut Turn<'_, M>,
) {
    match outcome {
        Ok(()) => {}
        Err(BrokerError::NoSuchRoom) => {
            client.room = None;
            client.system(turn, texts::NOT_IN_ROOM);
        }
        Err(_) => client.system(turn, texts::UNAVAILABLE),
    }
}

/// `/op NAME` (`op`) and `/deop NAME`.
pub(super) fn op<M: Mailbox>(
    client: &mut ClientState,
    name: &str,
    op: bool,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    let Some(room) = room(client, turn) else {
        return Outcome::Continue;
    };
    let Some((key, name)) = account(name, turn) else {
        return refuse(client, texts::NO_SUCH_ACCOUNT, turn);
    };
    act(client, room, Action::Op { key, name, op }, turn)
}

/// `/owner NAME`.
pub(super) fn owner<M: Mailbox>(
    client: &mut ClientState,
    name: &str,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    let Some(room) = room(client, turn) else {
        return Outcome::Continue;
    };
    let Some((key, name)) = account(name, turn) else {
        return refuse(client, texts::NO_SUCH_ACCOUNT, turn);
    };
    act(client, room, Action::Owner { key, name }, turn)
}

/// `/kick NAME [REASON]`.
pub(super) fn kick<M: Mailbox>(
    client: &mut ClientState,
    name: &str,
    reason: &str,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    let Some(room) = room(client, turn) else {
        return Outcome::Continue;
    };
    let Some(name) = member_name(name) else {
        return refuse(client, texts::NO_SUCH_MEMBER_HERE, turn);
    };
    let reason = validate::sanitize_chat(reason);
    let reason = reason.trim();
    if reason.chars().count() > MAX_REASON_CHARS {
        return refuse(client, texts::REASON_TOO_LONG, turn);
    }
    let action = Action::Kick {
        key: validate::name_key(&name),
        reason: reason.to_owned(),
    };
    act(client, room, action, turn)
}

/// `/ban NAME [MINUTES]` (`ban`) and `/unban NAME`.
pub(super) fn ban<M: Mailbox>(
    client: &mut ClientState,
    name: &str,
    minutes: Option<i64>,
    ban: bool,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    let Some(room) = room(client, turn) else {
        return Outcome::Continue;
    };
    let Some(typed) = member_name(name) else {
        let text = if ban {
            texts::NO_SUCH_ACCOUNT
        } else {
            texts::NOT_BANNED
        };
        return refuse(client, text, turn);
    };
    let key = validate::name_key(&typed);
    if !ban {
        return act(client, room, Action::Unban { key, name: typed }, turn);
    }
    if let Err(text) = moderation::check_minutes(minutes) {
        return refuse(client, text, turn);
    }
    // An account is banned as one (whatever name it takes later); anyone else by
    // the address of the member so named (the room finds it).
    let (account, name) = match account(&typed, turn) {
        Some((key, name)) => (Some(key), name),
        None => (None, typed),
    };
    let action = Action::Ban {
        key,
        name,
        account,
        minutes,
    };
    act(client, room, action, turn)
}

/// `/topic TEXT` (empty: clears it).
pub(super) fn topic<M: Mailbox>(
    client: &mut ClientState,
    text: &str,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    let Some(room) = room(client, turn) else {
        return Outcome::Continue;
    };
    match validate::check_topic(text) {
        Ok(topic) => act(client, room, Action::Topic { topic }, turn),
        Err(text) => refuse(client, text, turn),
    }
}

/// Tells the client `text` (a refusal before the room was asked).
fn refuse<M: Mailbox>(client: &ClientState, text: &str, turn: &mut Turn<'_, M>) -> Outcome {
    client.system(turn, text);
    Outcome::Continue
}
