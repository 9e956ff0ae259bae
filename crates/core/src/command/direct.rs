//! `/msg NAME TEXT` and `/ignore NAME`, `/unignore NAME` (the `direct` extension,
//! docs/PROTOCOL.md §7.5): a line for one connected client, wherever it is, and
//! a way not to receive them from someone.
//!
//! A direct message costs flood control like a chat to one member. Its sender must
//! have opted in (its copy comes back as `SCDirect`, `outgoing`) and chosen a name
//! (the recipient must be able to name it, to answer or to ignore it). Its recipient
//! need not have opted in: it reads a system message instead (`direct.rs`).

use chat_proto::{Response, WireFormat};

use crate::broker::{BrokerError, Reply};
use crate::direct;
use crate::encoded::Encoded;
use crate::features::DIRECT;
use crate::mailbox::Mailbox;
use crate::state::{Awaiting, ClientState, Outcome, Turn};
use crate::{texts, validate};

/// Whether `client` may use the extension; tells it why not.
fn enabled<M: Mailbox>(client: &ClientState, turn: &mut Turn<'_, M>) -> bool {
    if client.features.has(DIRECT) {
        return true;
    }
    client.system(turn, texts::DIRECT_NOT_ENABLED);
    false
}

/// The key of the name `raw` (as `/name` would keep it), or `None` if no client
/// could hold such a name.
fn key_of(raw: &str) -> Option<(String, String)> {
    let name = validate::check_name(raw).ok()?;
    let key = validate::name_key(&name);
    Some((name, key))
}

pub(super) fn send<M: Mailbox>(
    client: &mut ClientState,
    to: &str,
    text: &str,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    if !enabled(client, turn) {
        return Outcome::Continue;
    }
    if client.name == client.default_name {
        client.system(turn, texts::DIRECT_NEEDS_NAME);
        return Outcome::Continue;
    }
    let Some((to_name, to_key)) = key_of(to) else {
        client.system(turn, texts::NO_SUCH_MEMBER);
        return Outcome::Continue;
    };
    if to_key == validate::name_key(&client.name) {
        client.system(turn, texts::DIRECT_TO_SELF);
        return Outcome::Continue;
    }
    let text = validate::sanitize_chat(text);
    if text.trim().is_empty() {
        client.system(turn, texts::DIRECT_EMPTY);
        return Outcome::Continue;
    }
    // Both forms must fit a frame in either format (the recipient's may differ):
    // the sender's copy, and the system message a recipient that did not opt in
    // reads (names are at most 32 characters, so one check with the sender's name
    // stands for every recipient).
    let fits = |format| {
        outgoing(format, &to_name, &text).is_some()
            && direct::encode(format, false, &client.name, &text, 0).is_some()
    };
    if !fits(WireFormat::Json) || !fits(WireFormat::Protobuf) {
        client.system(turn, texts::MESSAGE_TOO_LONG);
        return Outcome::Continue;
    }
    let member = client.member(turn.mailbox);
    match turn.broker.direct(member, &to_key, &text, turn.out) {
        Reply::Done(outcome) => {
            finish(client, &to_name, &text, outcome, turn);
            Outcome::Continue
        }
        Reply::Pending => client.wait(Awaiting::Direct {
            to: to_name,
            text: text.into_owned(),
        }),
    }
}

/// The sender's own copy of a direct message to `to`, in `format`.
fn outgoing(format: WireFormat, to: &str, text: &str) -> Option<Encoded> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let copy = Response::Direct {
        member: to.into(),
        text: text.into(),
        time: now,
        outgoing: true,
    };
    Encoded::one(format, &copy).ok()
}

/// Tells the sender how its direct message went: its copy, or why not.
pub(super) fn finish<M: Mailbox>(
    client: &mut ClientState,
    to: &str,
    text: &str,
    outcome: Result<(), BrokerError>,
    turn: &mut Turn<'_, M>,
) {
    match outcome {
        Ok(()) => {
            // Flood control counts it as a chat to one member.
            client.fanout = 1;
            if !client.unreachable
                && let Some(copy) = outgoing(client.format, to, text)
            {
                turn.out.send(turn.mailbox, client.format, &copy);
            }
        }
        Err(BrokerError::NoSuchMember) => client.system(turn, texts::NO_SUCH_MEMBER),
        Err(BrokerError::Ignored) => client.system(turn, texts::DIRECT_IGNORED),
        Err(_) => client.system(turn, texts::UNAVAILABLE),
    }
}

pub(super) fn ignore<M: Mailbox>(
    client: &mut ClientState,
    name: &str,
    on: bool,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    if !enabled(client, turn) {
        return Outcome::Continue;
    }
    let Some((name, key)) = key_of(name) else {
        // No client can have such a name: nothing to ignore, nothing ignored.
        let text = if on {
            texts::NO_SUCH_MEMBER
        } else {
            texts::NOT_IGNORED
        };
        client.system(turn, text);
        return Outcome::Continue;
    };
    if on && key == validate::name_key(&client.name) {
        client.system(turn, texts::IGNORE_SELF);
        return Outcome::Continue;
    }
    match turn
        .broker
        .set_ignored(client.member(turn.mailbox), &key, on)
    {
        Reply::Done(outcome) => {
            ignored(client, &name, on, outcome, turn);
            Outcome::Continue
        }
        Reply::Pending => client.wait(Awaiting::Ignore { name, on }),
    }
}

/// Tells the client what its `/ignore` (`on`) or `/unignore` of `name` did.
pub(super) fn ignored<M: Mailbox>(
    client: &mut ClientState,
    name: &str,
    on: bool,
    outcome: Result<bool, BrokerError>,
    turn: &mut Turn<'_, M>,
) {
    let text = match outcome {
        Ok(_) if on => texts::ignoring(name),
        Ok(true) => texts::not_ignoring(name),
        Ok(false) => texts::NOT_IGNORED.to_owned(),
        Err(BrokerError::TooMany) => texts::IGNORE_LIMIT.to_owned(),
        Err(_) => texts::UNAVAILABLE.to_owned(),
    };
    client.system(turn, &text);
}
