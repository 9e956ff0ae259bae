//! The message-handler table and the context every handler gets.
//!
//! Decoding turns JSON or protobuf into one [`Request`] type; [`HANDLERS`] maps each
//! [`RequestKind`] to the function that applies it — one module per command. A handler
//! checks what the client may do (the refusals and their exact texts live here), then
//! asks the broker to change rooms and notify members. Handlers never touch sockets:
//! replies go through the context into the session's outbound queue, and the worker
//! flushes after its turn.

mod chat;
mod create;
mod join;
mod leave;
mod name;
mod rooms;
mod shutdown;

use std::sync::Arc;

use chat_proto::{EncodeError, Request, RequestKind, Response};

use crate::broker::Member;
use crate::delivery::Delivery;
use crate::server::Shared;
use crate::session::{Session, SessionState};

/// What a handler works with: the client, its state, the server, and the worker's
/// delivery scratch.
pub struct Context<'a> {
    pub session: &'a Arc<Session>,
    pub state: &'a mut SessionState,
    pub shared: &'a Shared,
    pub delivery: &'a mut Delivery,
}

impl Context<'_> {
    /// Queues `response` for this client, in its format.
    pub fn reply(&mut self, response: &Response<'_>) -> Result<(), EncodeError> {
        self.delivery
            .encode_single(self.state.reply_format(), response)?;
        self.delivery.send_single(self.session);
        Ok(())
    }

    /// Queues a system message for this client.
    pub fn system(&mut self, text: &str) {
        // Server texts are short and client-chosen parts are length-checked, so they
        // always fit a frame.
        if let Err(e) = self.reply(&Response::system(text)) {
            tracing::error!(session = self.session.id, "system message not sent: {e}");
        }
    }

    /// This client as the broker sees it, plus the delivery scratch (both borrowed
    /// from the context at once).
    pub fn member_and_delivery(&mut self) -> (Member<'_>, &mut Delivery) {
        let member = Member {
            session: self.session,
            name: &self.state.name,
            format: self.state.reply_format(),
        };
        (member, self.delivery)
    }
}

/// A command handler. The table only routes a request to the handler of its kind
/// (a misordered table would make commands do nothing, which every end-to-end command
/// test in `tests/commands.rs` would catch).
pub type Handler = fn(&mut Context<'_>, Request);

/// The handler table, indexed by `RequestKind as usize`.
pub static HANDLERS: [Handler; RequestKind::COUNT] = [
    name::handle,
    rooms::handle,
    create::handle,
    join::handle,
    leave::handle,
    chat::handle,
    shutdown::handle,
];

/// Applies one request through the table.
pub fn dispatch(ctx: &mut Context<'_>, request: Request) {
    HANDLERS[request.kind() as usize](ctx, request);
}
