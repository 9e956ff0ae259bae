//! The worker's job: run one scheduled session's pending input through its chat
//! state, in order, and write out what that produced.
//!
//! A worker takes the session's whole inbox and goes through its items in arrival
//! order ([`InboxItem`]): each frame is fed to the session's [`chat_core::Client`]
//! (one decoder per session, so protobuf's Type+body pairs and format detection stay
//! per connection); a binary WebSocket message is refused to the client
//! ([`Client::refuse_input`]) exactly where it arrived among them, and a WebSocket
//! control frame (ping, pong, empty continuation) is charged to the client's flood
//! control ([`Client::handle_control`]), so that over the limit it is throttled and
//! then cut like any command. The core decides
//! everything about the chat and delivers to mailboxes; this module does what only a
//! transport can: log, count, stop the server when a client may and asks, close a
//! connection the core ended or the client left. Then it gives the session back:
//! unscheduled, or requeued if more input arrived meanwhile (so none is ever handled
//! by two workers at once).
//!
//! # Fair service
//!
//! One turn handles at most [`MAX_TURN_FRAMES`] items; the rest is given back and
//! the session goes to the back of the queue, so a client pipelining thousands of
//! requests cannot keep a worker from everyone else. A client whose own output
//! backlog is over the high-water mark (it asks for more than it reads — `/rooms` in
//! a loop) is *held*: its remaining input waits until its output drains. Nothing is
//! computed for a connection that was cut off or failed beyond what others see: its
//! chats already read still reach its room, in order, but it gets no replies and no
//! room lists ([`Client::set_unreachable`]).
//!
//! # Waiting for the broker
//!
//! A request whose broker operation must wait (a cluster's round trip to Redis)
//! never blocks the worker: the client answers [`Outcome::Waiting`], the turn stops
//! and the session is *parked* with its later input still in its inbox. When the
//! broker's outcome arrives ([`chat_core::Transport::complete`]) the session is queued
//! again, and its next turn hands the outcome to the client before any newer input,
//! so one client's requests still take effect in the order it sent them while a Redis
//! stall delays only what needs Redis.
//!
//! Writing is batched across turns: a worker flushes the sockets it queued bytes for
//! when the work queue runs dry, or once the oldest unflushed turn is
//! [`MAX_FLUSH_DELAY`] old. Under light load that is right after each turn (lowest
//! latency); under heavy load, when the queue never empties, many chats for one
//! recipient leave in one `write`. That matters because a loopback `write` costs
//! several microseconds (the sender's thread also runs the receiver's TCP stack), so
//! one write per delivered message would cap throughput far below what the rest of
//! the server can do. The delay bound keeps the added latency small and known.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::{ChatEvent, Client, Completion, EndReason, Fanout, MessageBroker, Outcome, Turn};
use chat_proto::DecodeError;

use crate::config::ShutdownPolicy;
use crate::delivery::flush_sessions;
use crate::log_limit::Verdict;
use crate::metrics::{Metrics, bump};
use crate::pool::{Consumer, WorkQueue};
use crate::reactor::{ReactorCommand, ReactorHandle};
use crate::session::{InboxItem, Items, Mark, Session};
use crate::shutdown::Shutdown;

/// How long queued output may wait for a worker's flush when the queue never runs
/// dry.
pub(crate) const MAX_FLUSH_DELAY: Duration = Duration::from_millis(1);

/// Inbox buffers larger than this are not kept for reuse.
const KEEP_INBOX_CAPACITY: usize = 64 * 1024;

/// Items (frames and binary messages) one turn handles for one session before others
/// get a turn.
pub(crate) const MAX_TURN_FRAMES: usize = 64;

/// How a turn ended.
#[derive(Debug, Clone, Copy)]
enum TurnEnd {
    /// Every item taken was handled (or dropped: the session ended).
    Done {
        /// The connection's end was seen and handled.
        handled_close: bool,
    },
    /// The turn stopped at `handled`, the rest of what it took unhandled.
    Stopped { handled: Mark, stop: Stop },
}

/// Why a turn stopped before the end of the session's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The turn's share is used up: back of the queue.
    Yield,
    /// The client's output backlog is too large: wait for it to drain.
    Hold,
    /// The client is over its flood limit: wait until then.
    Throttle(Instant),
    /// The client awaits the broker's outcome: park until it comes.
    Park,
}

/// What a worker reaches beyond the session in hand: exactly these handles.
#[derive(Debug, Clone)]
pub(crate) struct WorkerHandles {
    /// The rooms.
    pub(crate) broker: Arc<dyn MessageBroker<Session>>,
    /// Counters.
    pub(crate) metrics: Arc<Metrics>,
    /// To requeue a session that got more input while it was handled.
    pub(crate) queue: Arc<WorkQueue<Arc<Session>>>,
    /// To have the reactor resume reading or close a connection.
    pub(crate) reactor: Arc<ReactorHandle>,
    /// For `/shutdown` from a client that may.
    pub(crate) shutdown: Arc<Shutdown>,
    /// Who may.
    pub(crate) shutdown_from: ShutdownPolicy,
}

/// One worker thread's job and scratch.
#[derive(Debug)]
pub(crate) struct SessionWorker {
    handles: WorkerHandles,
    fanout: Fanout<Session>,
    spare: Vec<u8>,
    /// Sessions that ended since the last flush; the reactor is told to close them
    /// after the flush, so their last messages are already on their way.
    ended: Vec<Arc<Session>>,
    /// When the first turn since the last flush ended.
    batch_started: Option<Instant>,
}

impl SessionWorker {
    /// A worker's job with its own scratch.
    pub(crate) fn new(handles: WorkerHandles) -> Self {
        Self {
            handles,
            fanout: Fanout::new(),
            spare: Vec::new(),
            ended: Vec::new(),
            batch_started: None,
        }
    }

    /// Writes out everything queued since the last flush, then has the reactor close
    /// the sessions that ended. Also folds this batch's counts into the metrics.
    fn flush(&mut self) {
        self.batch_started = None;
        flush_sessions(&mut self.fanout, &self.handles.queue, &self.handles.metrics);
        for ended in self.ended.drain(..) {
            self.handles
                .reactor
                .send(ReactorCommand::Close(ended.token, ended.id));
        }
    }

    /// Logs what the turn did to rooms and names (at the default level, limited per
    /// connection like every line a client can cause at will).
    fn log_events(&mut self, session: &Session) {
        for event in self.fanout.events.drain(..) {
            let Verdict::Log { suppressed } = session.may_log() else {
                continue;
            };
            let (id, peer) = (session.id, session.shown_peer());
            match event {
                ChatEvent::RoomCreated { room, title } => {
                    tracing::info!(session = id, %peer, room, title, suppressed = crate::log_limit::shown(suppressed), "room created");
                }
                ChatEvent::RoomDeleted { room } => {
                    tracing::info!(session = id, %peer, room, suppressed = crate::log_limit::shown(suppressed), "room deleted");
                }
                ChatEvent::Renamed { old, new, .. } => {
                    tracing::info!(session = id, %peer, old, new, suppressed = crate::log_limit::shown(suppressed), "renamed");
                }
            }
        }
    }

    /// Runs the items `taken` through the session's client until they are done or the
    /// turn must stop, and ends the session if the connection is gone.
    fn run_items(
        &mut self,
        session: &Arc<Session>,
        client: &mut Client,
        completion: Option<Completion>,
        taken: &Items,
        closed: bool,
    ) -> TurnEnd {
        let handles = &self.handles;
        // While shutting down, every item already read is handled, at once.
        let draining = handles.shutdown.is_requested();
        if draining {
            client.disable_flood_control();
        }
        let mut turn = Turn {
            mailbox: session,
            broker: handles.broker.as_ref(),
            out: &mut self.fanout,
            now: Instant::now(),
        };
        let ended = &mut self.ended;
        let mut items = taken.iter();
        let mut handled = 0;
        // An outcome the client awaited, or a request that waited for flood control,
        // goes before anything newer.
        let mut stop = if let Some(outcome) = completion {
            let outcome = client.complete(outcome, &mut turn);
            act_on(handles, ended, session, client, &mut turn, outcome)
        } else if client.is_waiting() {
            let outcome = client.resume(&mut turn);
            act_on(handles, ended, session, client, &mut turn, outcome)
        } else {
            None
        };
        while stop.is_none() && !client.is_ended() {
            if session.is_cut() {
                client.set_unreachable();
            }
            if draining && handles.shutdown.drain_expired() {
                // Out of time: what is left goes unhandled, and is counted.
                let rest = items.len();
                handles
                    .metrics
                    .dropped_at_shutdown
                    .fetch_add(rest as u64, std::sync::atomic::Ordering::Relaxed);
                if rest > 0 {
                    tracing::warn!(
                        session = session.id,
                        frames = rest,
                        "shutdown drain out of time; input dropped"
                    );
                }
                return TurnEnd::Done {
                    handled_close: true,
                };
            }
            if !draining && handled >= MAX_TURN_FRAMES {
                stop = Some(Stop::Yield);
                break;
            }
            if !draining && session.output_backlogged() {
                stop = Some(Stop::Hold);
                break;
            }
            let Some(item) = items.next() else {
                break;
            };
            handled += 1;
            let outcome = match item {
                InboxItem::Frame(frame) => client.handle_frame(frame, &mut turn),
                InboxItem::BinaryMessage => {
                    client.refuse_input(DecodeError::BinaryMessage, &mut turn)
                }
                // A ping, pong or empty continuation: the core charges it to flood
                // control like a command, so a ping flood is throttled and cut by the
                // same rule (and log lines, and counters) as a command flood.
                InboxItem::Control => client.handle_control(&mut turn),
            };
            stop = act_on(handles, ended, session, client, &mut turn, outcome);
        }
        if let Some(stop) = stop {
            return TurnEnd::Stopped {
                handled: items.mark(),
                stop,
            };
        }
        if closed && !client.is_ended() {
            session.note_end(if session.is_cut() {
                "connection failed"
            } else {
                "client closed"
            });
            tracing::debug!(session = session.id, peer = %session.peer, "client disconnected");
            client.disconnect(&mut turn);
            ended.push(Arc::clone(session));
        }
        TurnEnd::Done {
            handled_close: closed,
        }
    }
}

/// Does what only the transport can after one call into the client: logs (limited
/// per connection for what a client can cause at will), counts, stops the server,
/// schedules the close. Answers whether the turn must stop.
fn act_on(
    handles: &WorkerHandles,
    ended: &mut Vec<Arc<Session>>,
    session: &Arc<Session>,
    client: &mut Client,
    turn: &mut Turn<'_, Session>,
    outcome: Outcome,
) -> Option<Stop> {
    let (id, peer, shown) = (session.id, session.peer, session.shown_peer());
    match outcome {
        Outcome::Continue => {}
        Outcome::Refused(error) => {
            if let Verdict::Log { suppressed } = session.may_log() {
                tracing::debug!(session = id, peer = %shown, suppressed = crate::log_limit::shown(suppressed), "bad message: {error}");
            }
        }
        Outcome::ShutdownRequested => {
            // A web page is any site's script away from the user: only `any` lets it.
            let allowed = if session.is_web() {
                handles.shutdown_from == ShutdownPolicy::Any
            } else {
                session.socket().local_addr().is_ok_and(|local| {
                    handles
                        .shutdown_from
                        .allows(peer, local, |_, _| session.owner())
                })
            };
            if allowed {
                tracing::info!(session = id, peer = %shown, "shutdown requested by a client");
                handles.shutdown.request();
            } else {
                client.refuse_shutdown(turn);
                bump(&handles.metrics.shutdown_refused);
                if let Verdict::Log { suppressed } = session.may_log() {
                    tracing::warn!(session = id, peer = %shown, suppressed = crate::log_limit::shown(suppressed), "shutdown refused by policy");
                }
            }
        }
        Outcome::Waiting => return Some(Stop::Park),
        Outcome::Throttled(until) => {
            if let Verdict::Log { suppressed } = session.may_log() {
                tracing::info!(session = id, peer = %shown, suppressed = crate::log_limit::shown(suppressed), "over the flood limit; slowed down");
            }
            return Some(Stop::Throttle(until));
        }
        Outcome::Ended(reason) => {
            match reason {
                EndReason::TooManyErrors => {
                    session.note_end("too many bad messages");
                    tracing::info!(session = id, peer = %shown, "too many bad messages, disconnecting");
                    bump(&handles.metrics.error_disconnects);
                }
                EndReason::Flooding => {
                    session.note_end("flooding");
                    tracing::warn!(session = id, peer = %shown, "stayed over the flood limit, disconnecting");
                    bump(&handles.metrics.flood_disconnects);
                }
                EndReason::Refused => {
                    tracing::debug!(session = id, peer = %shown, "refused connection told why; closing");
                }
            }
            ended.push(Arc::clone(session));
        }
    }
    None
}

impl Consumer<Arc<Session>> for SessionWorker {
    fn consume(&mut self, session: &Arc<Session>) {
        let taken = session.take_inbox(std::mem::take(&mut self.spare));
        let (end, ended) = {
            let mut client = session.client();
            let end = self.run_items(
                session,
                &mut client,
                taken.completion,
                &taken.items,
                taken.closed,
            );
            (end, client.is_ended())
        };
        self.log_events(session);
        let (mut spare, handled_close) = match end {
            TurnEnd::Done { handled_close } => (taken.items.into_buffer(), handled_close),
            TurnEnd::Stopped { handled, stop } => {
                let spare = session.unread(taken.items, handled, stop == Stop::Hold);
                match stop {
                    Stop::Throttle(until) => {
                        session.throttle();
                        self.handles.reactor.send(ReactorCommand::WakeAt(
                            session.token,
                            session.id,
                            until,
                        ));
                    }
                    Stop::Park => {
                        // Counted away first, so a finishing pool waits for it; not
                        // counted if the outcome is already here.
                        self.handles.queue.park();
                        if !session.park() {
                            self.handles.queue.unpark();
                        }
                    }
                    Stop::Yield | Stop::Hold => {}
                }
                (spare, false)
            }
        };
        spare.clear();
        if spare.capacity() <= KEEP_INBOX_CAPACITY {
            self.spare = spare;
        }

        let now = Instant::now();
        if now.duration_since(*self.batch_started.get_or_insert(now)) >= MAX_FLUSH_DELAY {
            self.flush();
        }
        let done = session.finish_turn(handled_close || ended);
        if done.resume {
            self.handles
                .reactor
                .send(ReactorCommand::Resume(session.token, session.id));
        }
        if done.requeue {
            // More arrived while we worked; back of the line, for fairness. A closed
            // queue means the server is stopping: the input is dropped with it.
            let _ = self.handles.queue.push(Arc::clone(session));
        }
    }

    fn idle(&mut self) {
        self.flush();
    }

    /// A bug made this session's turn panic: cut the client off and end the session
    /// (leave its room, close), so one bad connection costs only itself.
    fn panicked(&mut self, session: Arc<Session>) {
        tracing::error!(session = session.id, peer = %session.peer, "handling this session panicked; disconnecting it");
        session.abort();
        {
            let mut client = session.client();
            if !client.is_ended() {
                let mut turn = Turn {
                    mailbox: &session,
                    broker: self.handles.broker.as_ref(),
                    out: &mut self.fanout,
                    now: Instant::now(),
                };
                client.disconnect(&mut turn);
                self.ended.push(Arc::clone(&session));
            }
        }
        self.log_events(&session);
        self.flush();
    }
}
