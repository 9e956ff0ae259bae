//! One client's chat state, and the entry points a transport drives.
//!
//! A [`Client`] is the state machine of one connection, without the connection: its
//! name, its room, its protocol decoder, its count of bad messages in a row. A
//! transport feeds it frame payloads ([`Client::handle_frame`]) or typed requests
//! ([`Client::handle_request`]), tells it of control frames of its own that cost
//! flood control like a command ([`Client::handle_control`]: a WebSocket ping) and,
//! when the connection is gone,
//! [`Client::disconnect`]s it; everything the client causes is delivered to
//! mailboxes through the [`Turn`] it is given, and what the transport itself must do
//! (stop the server, close the connection) comes back as an [`Outcome`].
//!
//! # Invariants
//!
//! * A client has a single owner: the methods take `&mut self`, so one client's
//!   requests are applied one at a time, in the order they are fed.
//! * `room` is `Some(id)` exactly while the broker lists this client in room `id`,
//!   except while a create, join or leave waits for the broker (then the broker's
//!   answer, handed to [`Client::complete`], settles it).
//! * While an operation waits ([`Client::is_awaiting`]) the client is fed nothing
//!   else: the transport holds its later input, so requests take effect in order.
//! * Once ended ([`Client::is_ended`]), a client is in no room and ignores further
//!   input.

use chat_proto::{DecodeError, Request, RequestDecoder, WireFormat};

use crate::broker::{ClientId, Completion, Leaving, RoomId};
use crate::command;
use crate::flood::{Flood, FloodLimits};
use crate::mailbox::Mailbox;
use crate::state::{ClientState, EndReason, Outcome, Refusal, Turn};
use crate::texts;
use std::time::Instant;

/// Invalid messages in a row after which a client is disconnected.
pub const MAX_ERROR_STREAK: u32 = 20;

/// One client's chat state; see the module doc.
#[derive(Debug)]
pub struct Client {
    /// What commands see and change.
    state: ClientState,
    /// Frames → requests; knows the connection's format once detected.
    decoder: RequestDecoder,
    /// Invalid messages in a row.
    error_streak: u32,
    /// The client has left for good; later input is ignored.
    ended: bool,
    /// The client is refused: its first frame only tells its format for the refusal.
    refusal: Option<Refusal>,
    /// Flood control, when on.
    flood: Option<Flood>,
    /// What is over the flood limit, waiting for [`Client::resume`].
    waiting: Option<Costed>,
}

/// What flood control admits: a request, or a transport's control frame (which only
/// costs; nothing runs once it is admitted).
#[derive(Debug)]
enum Costed {
    Request(Request),
    Control,
}

impl Client {
    /// A client called `name` (use [`texts::default_name`] for the reference's
    /// default), in no room, without flood control. `format` forces a wire format
    /// (`None`: detect it from the first frame).
    pub fn new(id: ClientId, name: String, format: Option<WireFormat>) -> Self {
        Client {
            state: ClientState {
                id,
                default_name: name.clone(),
                name,
                room: None,
                format: format.unwrap_or(WireFormat::Json),
                unreachable: false,
                fanout: 0,
                awaiting: None,
                features: crate::features::Features::default(),
                account: None,
                token: None,
            },
            decoder: RequestDecoder::new(format),
            error_streak: 0,
            ended: false,
            refusal: None,
            flood: None,
            waiting: None,
        }
    }

    /// The same client, held to `limits` from `now` on.
    pub fn with_flood_limits(mut self, limits: FloodLimits, now: Instant) -> Self {
        self.flood = Some(Flood::new(limits, now));
        self
    }

    /// A client that is refused: its first frame gets `why`'s text in the client's
    /// format, and it ends ([`EndReason::Refused`]) without doing anything else.
    pub fn refused(id: ClientId, name: String, format: Option<WireFormat>, why: Refusal) -> Self {
        Client {
            refusal: Some(why),
            ..Client::new(id, name, format)
        }
    }

    /// The client's identity.
    pub fn id(&self) -> ClientId {
        self.state.id
    }

    /// The client's display name now.
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// The room the client is in.
    pub fn room(&self) -> Option<RoomId> {
        self.state.room
    }

    /// Whether the client has ended (disconnected, or cut off by the core).
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Says nothing can reach the client any more (the transport cut it off, or its
    /// connection failed). Requests it already sent still take effect for others, in
    /// order — chats reach the room — but nothing is computed for the client alone.
    pub fn set_unreachable(&mut self) {
        self.state.unreachable = true;
    }

    /// The connection's format, once known (fixed by the server's `--format`, or
    /// detected from the first message); `None` for a peer that has not spoken yet.
    pub fn known_format(&self) -> Option<WireFormat> {
        self.decoder.format()
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
        let fed = self.decoder.feed(payload);
        // The first frame may have just told the format.
        self.state.format = self.reply_format();
        if let Some(why) = self.refusal {
            return self.tell_refused(why, turn);
        }
        match fed {
            None => Outcome::Continue,
            Some(Ok(request)) => self.handle_request(request, turn),
            Some(Err(error)) => self.refuse(error, turn),
        }
    }

    /// Refuses input the transport could not pass on as a frame (a binary WebSocket
    /// message): told to the client like any bad message, and counted in its streak.
    pub fn refuse_input<M: Mailbox>(
        &mut self,
        error: DecodeError,
        turn: &mut Turn<'_, M>,
    ) -> Outcome {
        if self.ended {
            return Outcome::Continue;
        }
        self.refuse(error, turn)
    }

    /// Applies one request (already decoded) through its command — or, over the flood
    /// limit, keeps it for [`Client::resume`] and answers [`Outcome::Throttled`].
    pub fn handle_request<M: Mailbox>(
        &mut self,
        request: Request,
        turn: &mut Turn<'_, M>,
    ) -> Outcome {
        if self.ended {
            return Outcome::Continue;
        }
        if let Some(why) = self.refusal {
            return self.tell_refused(why, turn);
        }
        debug_assert!(self.waiting.is_none(), "fed while a request waits");
        debug_assert!(
            self.state.awaiting.is_none(),
            "fed while awaiting the broker"
        );
        self.error_streak = 0;
        let transport = turn.mailbox.connection_kind().index();
        turn.out.tally.requests[request.kind() as usize][transport][self.state.format.index()] += 1;
        self.admit(Costed::Request(request), turn, true)
    }

    /// A control frame of the transport's own (a WebSocket ping, pong or empty
    /// continuation frame): nothing for the chat, but the client chose to send it and
    /// the server did work for it, so it costs a command's token of flood control.
    /// Over the limit it waits like a request ([`Outcome::Throttled`]: the transport
    /// reads more slowly), and a client that stays over it is cut off
    /// ([`EndReason::Flooding`]) with the same texts. Not a bad message: the error
    /// streak is untouched.
    pub fn handle_control<M: Mailbox>(&mut self, turn: &mut Turn<'_, M>) -> Outcome {
        if self.ended {
            return Outcome::Continue;
        }
        debug_assert!(self.waiting.is_none(), "fed while a request waits");
        self.admit(Costed::Control, turn, true)
    }

    /// Turns flood control off for good (at shutdown, when every frame already read
    /// is to be handled at once).
    pub fn disable_flood_control(&mut self) {
        self.flood = None;
    }

    /// Whether a request over the flood limit waits (the transport then calls
    /// [`Client::resume`] before feeding more).
    pub fn is_waiting(&self) -> bool {
        self.waiting.is_some()
    }

    /// Whether an operation waits for the broker's outcome ([`Outcome::Waiting`]):
    /// the transport feeds nothing else until it hands the outcome to
    /// [`Client::complete`].
    pub fn is_awaiting(&self) -> bool {
        self.state.awaiting.is_some()
    }

    /// The broker's outcome for the operation that waited: the command finishes (it
    /// may wait again, for a second step).
    pub fn complete<M: Mailbox>(&mut self, outcome: Completion, turn: &mut Turn<'_, M>) -> Outcome {
        let Some(waited) = self.state.awaiting.take() else {
            return Outcome::Continue;
        };
        if self.ended {
            return Outcome::Continue;
        }
        command::finish(&mut self.state, waited, outcome, turn)
    }

    /// Tries the waiting request again (see [`Outcome::Throttled`]).
    pub fn resume<M: Mailbox>(&mut self, turn: &mut Turn<'_, M>) -> Outcome {
        match self.waiting.take() {
            Some(request) if !self.ended => self.admit(request, turn, false),
            _ => Outcome::Continue,
        }
    }

    /// Runs `costed` if flood control lets it go now. `fresh`: it was just sent (not
    /// a waiting one tried again), so an earlier throttled stretch has ended if it
    /// goes through.
    fn admit<M: Mailbox>(
        &mut self,
        costed: Costed,
        turn: &mut Turn<'_, M>,
        fresh: bool,
    ) -> Outcome {
        if let Some(flood) = &mut self.flood {
            let taken = match &costed {
                Costed::Request(request) => flood.admit(request, turn.now),
                Costed::Control => flood.admit_control(turn.now),
            };
            match taken {
                Ok(()) if fresh => flood.throttled_since = None,
                Ok(()) => {}
                Err(until) => {
                    if flood.throttled_since.is_none() {
                        flood.throttled_since = Some(turn.now);
                        self.state.system(turn, texts::FLOOD_SLOW_DOWN);
                    } else if flood.out_of_grace(turn.now) {
                        self.state.system(turn, texts::FLOOD_DISCONNECT);
                        self.disconnect(turn);
                        return Outcome::Ended(EndReason::Flooding);
                    }
                    self.waiting = Some(costed);
                    return Outcome::Throttled(until);
                }
            }
        }
        let Costed::Request(request) = costed else {
            // A control frame was only to be paid for.
            return Outcome::Continue;
        };
        self.state.fanout = 0;
        let outcome = command::dispatch(&mut self.state, request, turn);
        if let Some(flood) = &mut self.flood {
            flood.charge_fanout(std::mem::take(&mut self.state.fanout));
        }
        outcome
    }

    /// The transport's policy does not let this client stop the server: tell it so.
    pub fn refuse_shutdown<M: Mailbox>(&self, turn: &mut Turn<'_, M>) {
        self.state.system(turn, texts::SHUTDOWN_REFUSED);
    }

    /// The connection is gone: leave the room (the others are told), give up the
    /// name, and end.
    pub fn disconnect<M: Mailbox>(&mut self, turn: &mut Turn<'_, M>) {
        if self.state.awaiting.take().is_some() {
            // Nobody will take the outcome: what the operation did is undone.
            turn.broker.abandon(self.state.id);
        }
        turn.broker.release_name(self.state.id);
        turn.broker.forget(self.state.id);
        if self.state.features.has(crate::features::ROOMS)
            && let Some(watch) = turn.broker.listing_watch()
        {
            watch.unwatch(self.state.id);
        }
        if let Some(room) = self.state.room.take() {
            // Errors change nothing, and there is no one left to tell.
            let member = self.state.member(turn.mailbox);
            let _ = turn
                .broker
                .leave_room(room, member, Leaving::Disconnected, turn.out);
        }
        self.ended = true;
    }

    /// A refused client said something: tell it why it is refused, and end.
    fn tell_refused<M: Mailbox>(&mut self, why: Refusal, turn: &mut Turn<'_, M>) -> Outcome {
        self.state.system(turn, why.text());
        self.ended = true;
        Outcome::Ended(EndReason::Refused)
    }

    /// An invalid message: say why; too many in a row and the client is cut off.
    fn refuse<M: Mailbox>(&mut self, error: DecodeError, turn: &mut Turn<'_, M>) -> Outcome {
        self.error_streak += 1;
        turn.out.tally.protocol_errors += 1;
        self.state.system(turn, &error.to_string());
        if self.error_streak >= MAX_ERROR_STREAK {
            self.state.system(turn, texts::TOO_MANY_ERRORS);
            self.disconnect(turn);
            return Outcome::Ended(EndReason::TooManyErrors);
        }
        Outcome::Refused(error)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use bytes::Bytes;
    use chat_proto::frame::Frames;
    use chat_proto::{Response, ResponseDecoder};

    use super::*;
    use crate::fanout::Fanout;
    use crate::flood::Rate;
    use crate::local::LocalBroker;
    use crate::mailbox::Delivered;

    /// A mailbox that keeps the system messages it gets.
    #[derive(Debug, Default)]
    struct Inbox(Mutex<Vec<String>>);

    impl Mailbox for Inbox {
        fn deliver(&self, frames: &Bytes) -> Delivered {
            let mut decoder = ResponseDecoder::new(WireFormat::Json);
            for frame in Frames::new(frames) {
                if let Some(Ok(Response::SystemMessage { text })) = decoder.feed(frame) {
                    self.0.lock().unwrap().push(text.into_owned());
                }
            }
            Delivered::Queued
        }
    }

    impl Inbox {
        fn take(&self) -> Vec<String> {
            std::mem::take(&mut *self.0.lock().unwrap())
        }
    }

    const LIMITS: FloodLimits = FloodLimits {
        chat: Rate {
            per_second: 100.0,
            burst: 100.0,
        },
        command: Rate {
            per_second: 1.0,
            burst: 2.0,
        },
        grace: Duration::from_secs(5),
    };

    struct Setup {
        broker: LocalBroker<Inbox>,
        out: Fanout<Inbox>,
        inbox: Arc<Inbox>,
        client: Client,
    }

    impl Setup {
        fn new(t0: Instant) -> Setup {
            Setup {
                broker: LocalBroker::new(),
                out: Fanout::new(),
                inbox: Arc::new(Inbox::default()),
                client: Client::new(1, "c".into(), Some(WireFormat::Json))
                    .with_flood_limits(LIMITS, t0),
            }
        }

        fn call(
            &mut self,
            now: Instant,
            f: impl FnOnce(&mut Client, &mut Turn<'_, Inbox>) -> Outcome,
        ) -> Outcome {
            let mut turn = Turn {
                mailbox: &self.inbox,
                broker: &self.broker,
                out: &mut self.out,
                now,
            };
            f(&mut self.client, &mut turn)
        }

        fn control(&mut self, now: Instant) -> Outcome {
            self.call(now, |client, turn| client.handle_control(turn))
        }

        fn resume(&mut self, now: Instant) -> Outcome {
            self.call(now, |client, turn| client.resume(turn))
        }
    }

    /// Control frames cost the command bucket: over it they wait (the transport reads
    /// more slowly) and the client is told once; staying over it for the grace ends
    /// the client, with the texts a flooding command gets.
    #[test]
    fn control_frames_are_throttled_then_cut_like_commands() {
        let t0 = Instant::now();
        let mut s = Setup::new(t0);
        assert_eq!(s.control(t0), Outcome::Continue);
        assert_eq!(s.control(t0), Outcome::Continue);
        let Outcome::Throttled(until) = s.control(t0) else {
            panic!("the third at once is over the command burst");
        };
        assert_eq!(until, t0 + Duration::from_secs(1));
        assert!(s.client.is_waiting());
        assert_eq!(s.inbox.take(), [texts::FLOOD_SLOW_DOWN]);
        assert_eq!(s.resume(until), Outcome::Continue);
        assert!(!s.client.is_waiting());
        // The command bucket is the one spent: a command now waits too.
        let rooms = s.call(until, |client, turn| {
            client.handle_request(Request::Rooms, turn)
        });
        assert!(matches!(rooms, Outcome::Throttled(_)), "{rooms:?}");
        assert!(s.inbox.take().is_empty(), "told once per stretch");
        let mut now = until;
        loop {
            now += Duration::from_secs(1);
            match s.resume(now) {
                Outcome::Continue => {}
                Outcome::Throttled(_) => continue,
                other => panic!("{other:?}"),
            }
            // Keeps sending pings, never a break in the stretch.
            match s.control(now) {
                Outcome::Throttled(_) => {}
                Outcome::Ended(EndReason::Flooding) => break,
                other => panic!("{other:?}"),
            }
            assert!(now < t0 + Duration::from_secs(60), "never cut");
        }
        assert!(now >= t0 + LIMITS.grace, "not before the grace");
        assert!(s.client.is_ended());
        let told = s.inbox.take();
        assert!(
            told.ends_with(&[texts::FLOOD_DISCONNECT.to_owned()]),
            "{told:?}"
        );
        assert_eq!(
            s.control(now),
            Outcome::Continue,
            "an ended client ignores input"
        );
    }

    /// A control frame is not a bad message, and does not end a streak of them.
    #[test]
    fn control_frames_leave_the_error_streak_alone() {
        let t0 = Instant::now();
        let mut s = Setup::new(t0);
        for _ in 0..MAX_ERROR_STREAK - 1 {
            let refused = s.call(t0, |client, turn| client.handle_frame(b"nope", turn));
            assert!(matches!(refused, Outcome::Refused(_)));
        }
        assert_eq!(s.control(t0), Outcome::Continue);
        let last = s.call(t0, |client, turn| client.handle_frame(b"nope", turn));
        assert_eq!(last, Outcome::Ended(EndReason::TooManyErrors));
        // Without flood control a control frame costs nothing at all.
        let mut free = Client::new(2, "f".into(), Some(WireFormat::Json));
        let mut turn = Turn {
            mailbox: &s.inbox,
            broker: &s.broker,
            out: &mut s.out,
            now: t0,
        };
        for _ in 0..1000 {
            assert_eq!(free.handle_control(&mut turn), Outcome::Continue);
        }
    }
}
