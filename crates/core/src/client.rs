//! One client's chat state, and the entry points a transport drives.
//!
//! A [`Client`] is the state machine of one connection, without the connection: its
//! name, its room, its protocol decoder, its count of bad messages in a row. A
//! transport feeds it frame payloads ([`Client::handle_frame`]) or typed requests
//! ([`Client::handle_request`]) and, when the connection is gone,
//! [`Client::disconnect`]s it; everything the client causes is delivered to
//! mailboxes through the [`Turn`] it is given, and what the transport itself must do
//! (stop the server, close the connection) comes back as an [`Outcome`].
//!
//! # Invariants
//!
//! * A client has a single owner: the methods take `&mut self`, so one client's
//!   requests are applied one at a time, in the order they are fed.
//! * `room` is `Some(id)` exactly while the broker lists this client in room `id`.
//! * Once ended ([`Client::is_ended`]), a client is in no room and ignores further
//!   input.

use std::sync::Arc;

use chat_proto::{DecodeError, Request, RequestDecoder, Response, WireFormat};

use crate::broker::{ClientId, Leaving, Member, MessageBroker, RoomId};
use crate::command;
use crate::encoded::Encoded;
use crate::fanout::Fanout;
use crate::mailbox::Mailbox;
use crate::texts;

/// Invalid messages in a row after which a client is disconnected.
pub const MAX_ERROR_STREAK: u32 = 20;

/// What one call into a [`Client`] works with: its own mailbox (for replies), the
/// rooms, and the thread's deliveries in progress.
#[derive(Debug)]
pub struct Turn<'a, M> {
    /// This client's own mailbox.
    pub mailbox: &'a Arc<M>,
    /// The rooms.
    pub broker: &'a dyn MessageBroker<M>,
    /// Where deliveries are recorded; the transport flushes them after the turn.
    pub out: &'a mut Fanout<M>,
}

/// What the transport must do after a call into a [`Client`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing beyond flushing.
    Continue,
    /// The frame was invalid; the client was told why (returned for logs).
    Refused(DecodeError),
    /// The client asked to stop the server and may: the transport stops it.
    Shutdown,
    /// The client asked to stop the server and may not; it was told (for logs and
    /// metrics).
    ShutdownRefused,
    /// The client is finished (it left its room, and was told why): the transport
    /// closes the connection.
    Ended(EndReason),
}

/// Why the core ended a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// [`MAX_ERROR_STREAK`] invalid messages in a row.
    TooManyErrors,
}

/// One client's chat state; see the module doc.
#[derive(Debug)]
pub struct Client {
    pub(crate) id: ClientId,
    /// The display name; starts as `(IP, PORT)` of the client's side.
    pub(crate) name: String,
    /// The room the client is in.
    pub(crate) room: Option<RoomId>,
    /// Frames → requests; knows the connection's format once detected.
    decoder: RequestDecoder,
    /// Invalid messages in a row.
    error_streak: u32,
    /// The client has left for good; later input is ignored.
    ended: bool,
    /// Whether `/shutdown` from this client is obeyed (the transport's policy).
    pub(crate) may_shutdown: bool,
}

impl Client {
    /// A client called `name` (use [`texts::default_name`] for the reference's
    /// default), in no room. `format` forces a wire format (`None`: detect it from the
    /// first frame); `may_shutdown` says whether its `/shutdown` is obeyed.
    pub fn new(id: ClientId, name: String, format: Option<WireFormat>, may_shutdown: bool) -> Self {
        Client {
            id,
            name,
            room: None,
            decoder: RequestDecoder::new(format),
            error_streak: 0,
            ended: false,
            may_shutdown,
        }
    }

    /// The client's identity.
    pub fn id(&self) -> ClientId {
        self.id
    }

    /// The client's display name now.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The room the client is in.
    pub fn room(&self) -> Option<RoomId> {
        self.room
    }

    /// Whether the client has ended (disconnected, or cut off by the core).
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The format replies are written in: the connection's own once known, JSON before
    /// (a peer whose first frame is unreadable still gets a readable error).
    pub fn reply_format(&self) -> WireFormat {
        self.decoder.format().unwrap_or(WireFormat::Json)
    }

    /// Feeds one frame's payload. Protobuf messages take two frames: the first of a
    /// pair only advances the decoder.
    pub fn handle_frame<M: Mailbox>(&mut self, payload: &[u8], turn: &mut Turn<'_, M>) -> Outcome {
        if self.ended {
            return Outcome::Continue;
        }
        match self.decoder.feed(payload) {
            None => Outcome::Continue,
            Some(Ok(request)) => self.handle_request(request, turn),
            Some(Err(error)) => self.refuse(error, turn),
        }
    }

    /// Applies one request (already decoded) through its command.
    pub fn handle_request<M: Mailbox>(
        &mut self,
        request: Request,
        turn: &mut Turn<'_, M>,
    ) -> Outcome {
        if self.ended {
            return Outcome::Continue;
        }
        self.error_streak = 0;
        turn.out.tally.requests[request.kind() as usize][self.reply_format().index()] += 1;
        command::dispatch(self, request, turn)
    }

    /// The connection is gone: leave the room (the others are told) and end.
    pub fn disconnect<M: Mailbox>(&mut self, turn: &mut Turn<'_, M>) {
        if let Some(room) = self.room.take() {
            // Errors change nothing, and there is no one left to tell.
            let _ = turn.broker.leave_room(
                room,
                self.member(turn.mailbox),
                Leaving::Disconnected,
                turn.out,
            );
        }
        self.ended = true;
    }

    /// An invalid message: say why; too many in a row and the client is cut off.
    fn refuse<M: Mailbox>(&mut self, error: DecodeError, turn: &mut Turn<'_, M>) -> Outcome {
        self.error_streak += 1;
        turn.out.tally.protocol_errors += 1;
        self.system(turn, &error.to_string());
        if self.error_streak >= MAX_ERROR_STREAK {
            self.system(turn, texts::TOO_MANY_ERRORS);
            self.disconnect(turn);
            return Outcome::Ended(EndReason::TooManyErrors);
        }
        Outcome::Refused(error)
    }

    /// This client as the broker sees it.
    pub(crate) fn member<'a, M>(&'a self, mailbox: &'a Arc<M>) -> Member<'a, M> {
        Member {
            id: self.id,
            name: &self.name,
            format: self.reply_format(),
            mailbox,
        }
    }

    /// Queues `response` for this client alone, in its format. Returns `false` (and
    /// sends nothing) if it does not fit one frame.
    pub(crate) fn reply<M: Mailbox>(
        &self,
        turn: &mut Turn<'_, M>,
        response: &Response<'_>,
    ) -> bool {
        match Encoded::one(self.reply_format(), response) {
            Ok(encoded) => {
                turn.out.send(turn.mailbox, self.reply_format(), &encoded);
                true
            }
            Err(_) => false,
        }
    }

    /// Queues a system message for this client alone.
    pub(crate) fn system<M: Mailbox>(&self, turn: &mut Turn<'_, M>, text: &str) {
        let encoded = Encoded::notice_for(self.reply_format(), text);
        turn.out.send(turn.mailbox, self.reply_format(), &encoded);
    }
}
