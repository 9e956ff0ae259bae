//! The commands: what each request means, one module per command.
//!
//! [`dispatch`] routes a typed [`Request`] to its command by an exhaustive `match`, so
//! each command gets its own payload and a new request kind cannot be forgotten. A
//! command checks what the client may do — its own state, validation; the refusals
//! and their exact texts are here — then asks the broker to change rooms and notify
//! members. Commands never touch sockets: everything goes to mailboxes.
//!
//! A broker operation may have to wait for shared state ([`crate::Reply::Pending`]):
//! the command then records what it needs to finish ([`Awaiting`]) and answers
//! [`Outcome::Waiting`]; [`finish`] completes it when the outcome arrives. Each such
//! command is an `apply` and a `finish` (the name command has three steps), and the
//! same `finish` runs whether the broker answered at once or later.
//!
//! Words used in this crate: a *request* is what a client sends, a *command* is its
//! meaning here, *dispatch* is the routing between them.

mod account;
mod chat;
mod create;
mod delete;
mod direct;
mod hello;
mod history;
mod join;
mod leave;
mod moderate;
mod name;
mod rooms;
mod shutdown;

use chat_proto::Request;

use crate::broker::{Completion, Unregistered};
use crate::mailbox::Mailbox;
use crate::state::{Awaiting, ClientState, Outcome, Turn};

/// Applies `request` from `client` through its command.
pub(crate) fn dispatch<M: Mailbox>(
    client: &mut ClientState,
    request: Request,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    // A member can be put out of its room by someone else (a kick, a ban): the
    // broker is the truth, asked before anything that depends on the room. (A chat
    // asks by itself: the broker refuses a non-member's chat.)
    if let Some(room) = client.room
        && !matches!(request, Request::Chat { .. })
        && !turn.broker.is_member(room, client.id)
    {
        client.room = None;
    }
    match request {
        Request::Name { name } => return name::apply(client, name, turn),
        Request::Rooms => rooms::apply(client, turn),
        Request::CreateRoom { title } => return create::apply(client, &title, turn),
        Request::JoinRoom { room_id } => return join::apply(client, room_id, turn),
        Request::LeaveRoom => return leave::apply(client, turn),
        Request::Chat { text } => chat::apply(client, &text, turn),
        Request::Shutdown => return shutdown::apply(client, turn),
        Request::Hello { features } => hello::apply(client, &features, turn),
        Request::Register { password } => return account::register(client, &password, turn),
        Request::Login { name, password } => {
            return account::login(client, &name, &password, turn);
        }
        Request::Logout => return account::logout(client, turn),
        Request::ChangePassword { old, new } => {
            return account::change_password(client, &old, &new, turn);
        }
        Request::History { count, before } => history::apply(client, count, before, turn),
        Request::DeleteRoom { room_id } => return delete::apply(client, room_id, turn),
        Request::Resume { name, token } => return account::resume(client, &name, &token, turn),
        Request::Direct { name, text } => return direct::send(client, &name, &text, turn),
        Request::Ignore { name, ignore } => return direct::ignore(client, &name, ignore, turn),
        Request::Op { name, op } => return moderate::op(client, &name, op, turn),
        Request::Owner { name } => return moderate::owner(client, &name, turn),
        Request::Kick { name, reason } => return moderate::kick(client, &name, &reason, turn),
        Request::Ban { name, minutes, ban } => {
            return moderate::ban(client, &name, minutes, ban, turn);
        }
        Request::Topic { text } => return moderate::topic(client, &text, turn),
    }
    Outcome::Continue
}

/// Finishes the command that `waited` for the broker, with the broker's `outcome`.
pub(crate) fn finish<M: Mailbox>(
    client: &mut ClientState,
    waited: Awaiting,
    outcome: Completion,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    let done = outcome.map(|_| ());
    match waited {
        Awaiting::Create { title } => create::finish(client, title, outcome, turn),
        Awaiting::Join { room } => join::finish(client, room, done, turn),
        Awaiting::Leave => leave::finish(client, done, turn),
        Awaiting::Claim { name } => name::claimed(client, name, done, turn),
        Awaiting::Rename { old } => name::renamed_in_room(client, old, done, turn),
        Awaiting::Reclaim => name::reclaimed(client, done, turn),
        Awaiting::Register { key } => account::registered(client, key, done, turn),
        Awaiting::Login { key } => account::logged_in(client, key, done, turn),
        Awaiting::Resume { key, token } => account::resumed(client, key, token, done, turn),
        Awaiting::ChangePassword => account::password_changed(client, done, turn),
        Awaiting::Logout => account::logged_out(client, turn),
        Awaiting::Moderate => {
            moderate::finish(client, done, turn);
            Outcome::Continue
        }
        Awaiting::Ignore { name, on } => {
            direct::ignored(client, &name, on, outcome.map(|changed| changed == 1), turn);
            Outcome::Continue
        }
        Awaiting::Direct { to, text } => {
            direct::finish(client, &to, &text, done, turn);
            Outcome::Continue
        }
        Awaiting::Delete { room } => {
            delete::finish(
                client,
                room,
                outcome.map(Unregistered::from_completion),
                turn,
            );
            Outcome::Continue
        }
    }
}
