//! The worker's job: handle one scheduled session's pending frames, in order.
//!
//! A worker takes the session's whole inbox, decodes each frame (one decoder per
//! session, so protobuf's Type+body pairs and format detection stay per connection),
//! sends each request through the handler table (`cmd/`), answers bad input with a
//! system message, and ends the session when the client is gone. Then it gives the
//! session back: unscheduled, or requeued if more frames arrived meanwhile (so no
//! session hogs a worker, and none is ever handled by two workers at once).
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

use chat_proto::frame::Frames;
use chat_proto::{DecodeError, Request};

use crate::cmd::{self, Context};
use crate::delivery::Delivery;
use crate::metrics::bump;
use crate::pool::{JobHandler, lock};
use crate::reactor::Command;
use crate::server::Shared;
use crate::session::{Session, SessionState};
use crate::texts;

/// Invalid messages in a row after which a client is disconnected.
pub const MAX_ERROR_STREAK: u32 = 20;

/// How long queued output may wait for a worker's flush when the queue never runs
/// dry.
pub const MAX_FLUSH_DELAY: Duration = Duration::from_millis(1);

/// Inbox buffers larger than this are not kept for reuse.
const KEEP_INBOX_CAPACITY: usize = 64 * 1024;

/// One worker thread's handler and scratch.
pub struct SessionWorker {
    shared: Arc<Shared>,
    delivery: Delivery,
    spare: Vec<u8>,
    /// Sessions that ended since the last flush; the reactor is told to close them
    /// after the flush, so their last messages are already on their way.
    ended: Vec<Arc<Session>>,
    /// When the first turn since the last flush ended.
    batch_started: Option<Instant>,
}

impl SessionWorker {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            delivery: Delivery::default(),
            spare: Vec::new(),
            ended: Vec::new(),
            batch_started: None,
        }
    }

    /// Writes out everything queued since the last flush, then has the reactor close
    /// the sessions that ended.
    fn flush(&mut self) {
        self.batch_started = None;
        self.delivery.flush_all(&self.shared.metrics);
        for ended in self.ended.drain(..) {
            self.shared
                .reactor
                .send(Command::Close(ended.token, ended.id));
        }
    }

    fn handle_frame(&mut self, session: &Arc<Session>, state: &mut SessionState, frame: &[u8]) {
        match state.decoder.feed(frame) {
            None => {}
            Some(Ok(request)) => {
                state.error_streak = 0;
                self.delivery
                    .counts
                    .request(request.kind(), state.reply_format());
                self.apply(session, state, request);
            }
            Some(Err(error)) => self.refuse(session, state, &error),
        }
    }

    fn apply(&mut self, session: &Arc<Session>, state: &mut SessionState, request: Request) {
        let mut ctx = Context {
            session,
            state,
            shared: &self.shared,
            delivery: &mut self.delivery,
        };
        cmd::dispatch(&mut ctx, request);
    }

    fn refuse(&mut self, session: &Arc<Session>, state: &mut SessionState, error: &DecodeError) {
        state.error_streak += 1;
        self.delivery.counts.protocol_error();
        tracing::debug!(session = session.id, peer = %session.peer, "bad message: {error}");
        let mut ctx = Context {
            session,
            state,
            shared: &self.shared,
            delivery: &mut self.delivery,
        };
        ctx.system(&error.to_string());
        if ctx.state.error_streak >= MAX_ERROR_STREAK {
            tracing::info!(session = session.id, peer = %session.peer, "too many bad messages, disconnecting");
            ctx.system(texts::TOO_MANY_ERRORS);
            bump(&self.shared.metrics.error_disconnects);
            self.end(session, state);
        }
    }

    /// Ends the session: leaves its room (the others are told) and schedules the close.
    fn end(&mut self, session: &Arc<Session>, state: &mut SessionState) {
        if let Some(room) = state.room.take() {
            let member = crate::broker::Member {
                session,
                name: &state.name,
                format: state.reply_format(),
            };
            self.shared
                .broker
                .leave_room(room, &member, false, &mut self.delivery);
        }
        state.ended = true;
        self.ended.push(Arc::clone(session));
    }
}

impl JobHandler<Arc<Session>> for SessionWorker {
    fn handle(&mut self, session: &Arc<Session>) {
        let taken = session.take_inbox(std::mem::take(&mut self.spare));
        if taken.resume {
            self.shared
                .reactor
                .send(Command::Resume(session.token, session.id));
        }
        {
            let mut state = lock(&session.state);
            for frame in Frames::new(&taken.bytes) {
                if state.ended {
                    break;
                }
                self.handle_frame(session, &mut state, frame);
            }
            if taken.closed && !state.ended {
                tracing::debug!(session = session.id, peer = %session.peer, "client disconnected");
                self.end(session, &mut state);
            }
        }
        let mut bytes = taken.bytes;
        bytes.clear();
        if bytes.capacity() <= KEEP_INBOX_CAPACITY {
            self.spare = bytes;
        }

        let now = Instant::now();
        if now.duration_since(*self.batch_started.get_or_insert(now)) >= MAX_FLUSH_DELAY {
            self.flush();
        }
        let handled_close = taken.closed || lock(&session.state).ended;
        if session.finish_turn(handled_close) {
            // More arrived while we worked; back of the line, for fairness. A closed
            // queue means the server is stopping: the input is dropped with it.
            let _ = self.shared.queue.push(Arc::clone(session));
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
            let mut state = lock(&session.state);
            if !state.ended {
                self.end(&session, &mut state);
            }
        }
        self.flush();
    }
}
