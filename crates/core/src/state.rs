//! A client's chat state as the commands see it, and what one call works with.
//!
//! [`ClientState`] is the part of a [`crate::Client`] that commands read and change:
//! who it is, its name, its room, its format, whether it may stop the server. A
//! [`Turn`] is what one call works with (the client's own mailbox, the rooms, the
//! deliveries in progress); an [`Outcome`] is what the transport must do after it.
//! This module sits below both `command/` (which changes the state) and `client`
//! (which decodes input and dispatches it), so neither depends on the other's
//! internals.

use std::sync::Arc;
use std::time::Instant;

use chat_proto::{DecodeError, WireFormat};

use crate::broker::{ClientId, Member, MessageBroker, RoomId};
use crate::encoded::Encoded;
use crate::fanout::Fanout;
use crate::mailbox::Mailbox;

/// What one call into a [`crate::Client`] works with: its own mailbox (for replies), the
/// rooms, and the thread's deliveries in progress.
#[derive(Debug)]
pub struct Turn<'a, M> {
    /// This client's own mailbox.
    pub mailbox: &'a Arc<M>,
    /// The rooms.
    pub broker: &'a dyn MessageBroker<M>,
    /// Where deliveries are recorded; the transport flushes them after the turn.
    pub out: &'a mut Fanout<M>,
    /// The time now, for flood control (the core reads no clock of its own).
    pub now: Instant,
}

/// What the transport must do after a call into a [`crate::Client`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing beyond flushing.
    Continue,
    /// The frame was invalid; the client was told why (returned for logs).
    Refused(DecodeError),
    /// The client asked to stop the server. Whether it may is the transport's policy:
    /// it stops the server, or calls [`crate::Client::refuse_shutdown`].
    ShutdownRequested,
    /// The client is over its flood limit: its request (or control frame,
    /// [`crate::Client::handle_control`]) waits, kept by the client, until this
    /// instant; the transport reads no more of its input until then and calls
    /// [`crate::Client::resume`].
    Throttled(Instant),
    /// The request waits for the shared room state (the broker answered
    /// [`Reply::Pending`](crate::Reply::Pending)): the transport handles no more of
    /// the client's input until the broker's [`Completion`](crate::Completion)
    /// arrives, and hands it to [`crate::Client::complete`].
    Waiting,
    /// The client is finished (it left its room, and was told why): the transport
    /// closes the connection.
    Ended(EndReason),
}

/// Why the core ended a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// [`crate::MAX_ERROR_STREAK`] invalid messages in a row.
    TooManyErrors,
    /// The client was [refused](crate::Refusal) and has now been told why.
    Refused,
    /// The client stayed over its flood limit for the whole grace period.
    Flooding,
}

/// Why a transport refuses a connection it accepted. A refused client is told why
/// in its own format (known from its first frame) and then ended; it never enters a
/// room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The server serves as many connections as it may.
    ServerFull,
    /// The client's address has as many connections as it may.
    TooManyFromAddress,
}

impl Refusal {
    /// The text the client is told.
    pub fn text(self) -> &'static str {
        match self {
            Refusal::ServerFull => crate::texts::SERVER_FULL,
            Refusal::TooManyFromAddress => crate::texts::TOO_MANY_FROM_ADDRESS,
        }
    }
}

/// What commands see of a client.
#[derive(Debug)]
pub(crate) struct ClientState {
    /// Who it is.
    pub(crate) id: ClientId,
    /// The display name; starts as `(IP, PORT)` of the client's side.
    pub(crate) name: String,
    /// The room the client is in.
    pub(crate) room: Option<RoomId>,
    /// The format its replies are written in.
    pub(crate) format: WireFormat,
    /// Nothing can reach the client any more (it was cut off, or its connection
    /// failed): what it sent still takes effect for others, but nothing is computed
    /// for it alone (no replies, no room lists).
    pub(crate) unreachable: bool,
    /// How many members the last command's broadcast reached (flood control charges
    /// large fan-outs more).
    pub(crate) fanout: usize,
    /// The command waiting for the broker's outcome, if one is.
    pub(crate) awaiting: Option<Awaiting>,
    /// The protocol extensions in force (none until the client says hello).
    pub(crate) features: crate::features::Features,
    /// The name it had at the start (`(IP, PORT)`), given back at `/logout`.
    pub(crate) default_name: String,
    /// The key of the account it is logged in as.
    pub(crate) account: Option<String>,
    /// The token it was handed or logged in with (the `resume` extension): what
    /// `/logout` makes useless.
    pub(crate) token: Option<String>,
}

/// A command whose broker operation was [pending](crate::Reply::Pending): what it
/// needs to finish when the outcome arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Awaiting {
    /// `/create`, of a room titled so.
    Create { title: String },
    /// `/join`, of that room.
    Join { room: RoomId },
    /// `/leave`.
    Leave,
    /// `/name`: the claim of the new name (not taken yet).
    Claim { name: String },
    /// `/name` inside a room: the rename there (the client has the new name; `old`
    /// is the one before).
    Rename { old: String },
    /// `/name` failed after the claim: taking the old name back (`old` it is again).
    Reclaim,
    /// `/register` of the client's name, whose key is `key`.
    Register { key: String },
    /// `/login` as the account whose key is `key`.
    Login { key: String },
    /// `CSResume` as the account whose key is `key`, with `token`.
    Resume { key: String, token: String },
    /// `/password`.
    ChangePassword,
    /// `/logout`, until its token stops working everywhere.
    Logout,
    /// `/delete` of that room.
    Delete { room: RoomId },
    /// `/msg` to `to` (the name as the recipient holds it) saying `text`: the
    /// sender's copy is sent once the message is delivered.
    Direct { to: String, text: String },
    /// A moderation command (the broker tells the client what came of it).
    Moderate,
    /// `/ignore` (`on`) or `/unignore` of `name`.
    Ignore { name: String, on: bool },
}

impl ClientState {
    /// This client as the broker sees it.
    pub(crate) fn member<'a, M: Mailbox>(&'a self, mailbox: &'a Arc<M>) -> Member<'a, M> {
        Member {
            id: self.id,
            name: &self.name,
            format: self.format,
            mailbox,
            history: self.features.has(crate::features::HISTORY),
            account: self.account.as_deref(),
            direct: self.features.has(crate::features::DIRECT),
            moderation: self.features.has(crate::features::MODERATION),
            address: mailbox.address(),
        }
    }

    /// Records that `what` waits for the broker's outcome.
    pub(crate) fn wait(&mut self, what: Awaiting) -> Outcome {
        debug_assert!(self.awaiting.is_none(), "one operation at a time");
        self.awaiting = Some(what);
        Outcome::Waiting
    }

    /// Queues a system message for this client alone.
    pub(crate) fn system<M: Mailbox>(&self, turn: &mut Turn<'_, M>, text: &str) {
        if self.unreachable {
            return;
        }
        let encoded = Encoded::notice_for(self.format, text);
        turn.out.send(turn.mailbox, self.format, &encoded);
    }
}
