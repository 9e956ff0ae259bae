//! The commands: what each request means, one module per command.
//!
//! [`dispatch`] routes a typed [`Request`] to its command by an exhaustive `match`, so
//! each command gets its own payload and a new request kind cannot be forgotten. A
//! command checks what the client may do — its own state, validation; the refusals
//! and their exact texts are here — then asks the broker to change rooms and notify
//! members. Commands never touch sockets: everything goes to mailboxes.
//!
//! Words used in this crate: a *request* is what a client sends, a *command* is its
//! meaning here, *dispatch* is the routing between them.

mod chat;
mod create;
mod join;
mod leave;
mod name;
mod rooms;
mod shutdown;

use chat_proto::Request;

use crate::mailbox::Mailbox;
use crate::state::{ClientState, Outcome, Turn};

/// Applies `request` from `client` through its command.
pub(crate) fn dispatch<M: Mailbox>(
    client: &mut ClientState,
    request: Request,
    turn: &mut Turn<'_, M>,
) -> Outcome {
    match request {
        Request::Name { name } => name::apply(client, name, turn),
        Request::Rooms => rooms::apply(client, turn),
        Request::CreateRoom { title } => create::apply(client, &title, turn),
        Request::JoinRoom { room_id } => join::apply(client, room_id, turn),
        Request::LeaveRoom => leave::apply(client, turn),
        Request::Chat { text } => chat::apply(client, &text, turn),
        Request::Shutdown => return shutdown::apply(client, turn),
    }
    Outcome::Continue
}
