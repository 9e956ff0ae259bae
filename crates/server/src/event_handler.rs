//! EventHandler: what the reactor does when one connection's socket is ready.
//!
//! * **Readable**: read until `WouldBlock` (the reactor's rule for edge-triggered
//!   polling), split the bytes into frames — reads may split a frame or carry many —
//!   and hand the complete frames to the session's inbox, queueing the session for a
//!   worker if it was idle. (A web connection's bytes go through `web.rs` first: its
//!   text messages become frames, its binary messages typed items among them.) An
//!   incomplete frame waits here in `partial`, which can never exceed one maximum
//!   frame plus one read: a frame's length is a `u16`, so a peer cannot make it grow.
//!   If the inbox is full the handler stops reading (the session is *paused*) until a
//!   worker drains it and the reactor is told to resume.
//! * **Writable**: let the outbound queue resume its flush; a session held for its
//!   output backlog is queued again once that drains.
//! * **End of input** (EOF or a read error): tell the session, so its worker ends it
//!   after the frames already read (ordering is kept even for the goodbye).
//! * **Closing**: once a worker has ended the session, the handler flushes what is
//!   left, half-closes, discards further input, and reports when the connection can be
//!   dropped.
//! * **Deadlines** ([`EventHandler::expired`], asked by the reactor about once a
//!   second): a frame must be complete within the frame timeout of its first byte
//!   (slowloris); a client with output waiting must take some of it within the write
//!   timeout (a stopped reader); with an idle timeout, a complete message must arrive
//!   that often. Only complete messages count as activity.
//!
//! The two ports share these rules rather than each having its own: whatever a client
//! has started and not finished — a TCP frame; on the web port an HTTP request (from
//! the accept on: a connection that never sends its request line must not keep a
//! slot), a WebSocket frame or a fragmented message — is tracked by the one
//! `partial_since` ([`EventHandler::track_partial`]) and cut by the one frame
//! deadline, with the same reset, counter and log line. Likewise everything buffered
//! for an unfinished input — the TCP partial frame, or what `web.rs` and tungstenite
//! hold (bounded per connection by `web::MAX_HELD`) — charges the server's memory
//! budget ([`EventHandler::recharge`]). A partial-frame buffer that grew for one large
//! frame is freed once the frame is complete, so an idle connection holds no more than
//! a few bytes.
//!
//! Nothing here blocks or decodes messages; decoding is the worker's job.

use std::io::{self, Read};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_proto::frame::Frames;

use crate::admission::Refusal;
use crate::budget::MemoryBudget;
use crate::metrics::Metrics;
use crate::outbound::Flush;
use crate::pool::Staged;
use crate::session::{Delivery, Session};
use crate::web::WebSide;

/// A partial-frame buffer larger than this is freed once empty.
const KEEP_PARTIAL_CAPACITY: usize = 4 * 1024;
/// Reads whose bytes are dropped, at most, per readiness event of a closing
/// connection (a megabyte with the reactor's 64 KiB scratch buffer). Draining lets
/// the close be a FIN, but a peer that keeps sending must not hold the reactor in the
/// loop: past this, its input stays unread (its close becomes a reset, its own doing)
/// and the closing deadline ends it.
const DISCARD_READS_PER_EVENT: usize = 16;

/// Where an [`EventHandler`] hands what it reads: the work queue (sessions with
/// input for a worker) and the byte counter. The reactor's two narrow handles.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Handoff<'a> {
    /// Sessions with input to handle (staged: pushed to the workers together at the
    /// end of the reactor's poll round).
    pub(crate) queue: &'a Staged<Arc<Session>>,
    /// For `bytes_in`.
    pub(crate) metrics: &'a Metrics,
}

/// The time limits a connection is held to (see the module doc).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadlines {
    /// From a frame's first byte to its last.
    pub(crate) frame: Duration,
    /// Without any byte written while output waits.
    pub(crate) write: Duration,
    /// Without a complete message, if set.
    pub(crate) idle: Option<Duration>,
}

/// Which deadline a connection missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expired {
    /// A frame was started and not finished in time.
    Frame,
    /// Output waited and the client took none of it in time.
    Write,
    /// No complete message in time.
    Idle,
    /// A refused connection said nothing to be answered in its format, in time.
    Refusal,
}

/// How long a refused connection may take to send its first frame (so that it can be
/// told why in its own format) before it is closed unheard.
pub(crate) const REFUSAL_WAIT: Duration = Duration::from_secs(5);

/// The reactor's side of one connection (the seed plan's EventHandler).
#[derive(Debug)]
pub(crate) struct EventHandler {
    pub(crate) session: Arc<Session>,
    /// The connection was refused (it is only to be told why): not counted as served.
    pub(crate) refused: bool,
    /// When it was refused.
    refused_at: Option<Instant>,
    /// The start of a frame not yet complete.
    partial: Vec<u8>,
    /// When `partial` got its first byte.
    partial_since: Option<Instant>,
    /// Charged for `partial`.
    budget: Arc<MemoryBudget>,
    /// Reading stopped because the inbox is full.
    paused: bool,
    /// EOF or a read error was seen; nothing more will be read.
    input_done: bool,
    /// The session ended; the connection goes once flushed (or at this deadline).
    closing: Option<Instant>,
    /// The write side was shut down after the final flush.
    write_shut: bool,
    /// When the last complete message arrived (for the idle timeout).
    last_message: Instant,
    /// When the connection was accepted (for the TLS handshake's deadline).
    opened: Instant,
    /// Bytes written as of the last deadline check with output waiting, and since
    /// when that number has not moved.
    stalled: Option<(u64, Instant)>,
    /// For a connection on the web port: its HTTP/WebSocket state (`web.rs`), which
    /// turns what is read into chat frames.
    web: Option<WebSide>,
}

/// What the reactor should do with a connection after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Keep it.
    Keep,
    /// Drop it: closing is complete.
    Drop,
}

impl EventHandler {
    /// Queues the shutdown notice (`texts::SERVER_SHUTTING_DOWN`, a system message in
    /// the client's own format; a WebSocket text frame for a web client) for a client
    /// that can still read it. Called only once the workers are joined, so the
    /// client's lock is free. Skipped: a peer that never spoke under --format=auto
    /// (its format is unknown), connections accepted only to be refused (they
    /// have their own last word), clients already ended or cut off, and web
    /// connections not in a plain open WebSocket (still HTTP, mid-message, or
    /// closed), where a frame would not be understood.
    pub(crate) fn queue_shutdown_notice(&self) {
        if self.refused || self.session.is_cut() {
            return;
        }
        if self.web.as_ref().is_some_and(WebSide::is_partial) {
            return;
        }
        // A peer that never spoke has no known format (under --format=auto): a
        // notice in a guessed one could read as garbage to it, so it gets none.
        let format = {
            let client = self.session.client();
            if client.is_ended() {
                return;
            }
            match client.known_format() {
                Some(format) => format,
                None => return,
            }
        };
        let notice = chat_core::Encoded::notice_for(format, chat_core::texts::SERVER_SHUTTING_DOWN);
        if let Some(frames) = notice.frames(format) {
            let _ = chat_core::Mailbox::deliver(&*self.session, frames);
        }
    }

    /// The handler of a newly accepted connection; buffered input charges `budget`.
    /// `refused_at` is set for a connection accepted only to be told it is refused.
    pub(crate) fn new(
        session: Arc<Session>,
        budget: Arc<MemoryBudget>,
        refused_at: Option<Instant>,
        web: Option<WebSide>,
    ) -> Self {
        // The Host of a web request may name the address the connection came to.
        let web = web.map(|web| web.arrived_at(session.peer, session.socket().local_addr().ok()));
        // A web connection owes its HTTP request from the start: the frame deadline
        // runs from the accept.
        let partial_since = web
            .as_ref()
            .is_some_and(WebSide::is_partial)
            .then(Instant::now);
        Self {
            web,
            session,
            refused: refused_at.is_some(),
            refused_at,
            partial: Vec::new(),
            partial_since,
            budget,
            paused: false,
            input_done: false,
            closing: None,
            write_shut: false,
            last_message: Instant::now(),
            opened: Instant::now(),
            stalled: None,
        }
    }

    /// The socket is readable (or hung up, or in error).
    ///
    /// `until_would_block: false` allows stopping after a short read (fewer bytes than
    /// asked for): the socket's buffer was empty at that moment, and on Linux any data
    /// or FIN arriving later raises a new edge, so the extra `read` that would only
    /// answer `WouldBlock` is saved — one syscall per event. The caller must pass
    /// `true` when the event already reported the peer's FIN or an error (no new edge
    /// will come for those) and when no event prompted the read (resume, close).
    pub(crate) fn on_readable(
        &mut self,
        scratch: &mut [u8],
        to: Handoff<'_>,
        until_would_block: bool,
    ) -> Next {
        // Through TLS a short read says nothing about the socket (rustls reads a
        // record at a time): read until `WouldBlock`, or an edge could be lost.
        let until_would_block = until_would_block || self.session.is_tls();
        let mut discarded = 0;
        while !self.input_done && !self.paused {
            match self.session.read(scratch) {
                Ok(0) => self.end_input(to),
                // The session is over; input is discarded while we finish sending.
                Ok(_) if self.closing.is_some() => {
                    discarded += 1;
                    if discarded >= DISCARD_READS_PER_EVENT {
                        break;
                    }
                }
                Ok(n) => {
                    to.metrics
                        .bytes_in
                        .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    self.take_bytes(&scratch[..n], to);
                    if n < scratch.len() && !until_would_block {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::debug!(session = self.session.id, "read failed: {e}");
                    self.end_input(to);
                }
            }
        }
        self.progress_close()
    }

    /// The socket is writable.
    pub(crate) fn on_writable(&mut self, to: Handoff<'_>) -> Next {
        if self.session.writable() == Flush::Closed {
            // The peer is gone; reading will report it and the session will end.
            self.session.abort();
        }
        self.wake_if_released(to);
        self.progress_close()
    }

    /// A worker drained the inbox: read again (the edge that paused us is gone).
    pub(crate) fn resume(&mut self, scratch: &mut [u8], to: Handoff<'_>) -> Next {
        self.paused = false;
        self.on_readable(scratch, to, true)
    }

    /// The worker ended the session: finish sending, then go. Input that is still
    /// unread (even while paused) is drained and discarded.
    pub(crate) fn start_closing(
        &mut self,
        deadline: Instant,
        scratch: &mut [u8],
        to: Handoff<'_>,
    ) -> Next {
        if self.closing.is_none() {
            self.session.say_goodbye();
        }
        self.closing.get_or_insert(deadline);
        self.resume(scratch, to)
    }

    /// Reads and drops whatever input is waiting (a bounded number of reads), so that
    /// closing the socket sends a FIN rather than a reset: a reset could make the
    /// peer's kernel discard our last bytes before the peer reads them. For the final
    /// close at shutdown, when no worker will handle input any more.
    pub(crate) fn discard_input(&mut self, scratch: &mut [u8]) {
        for _ in 0..16 {
            match self.session.socket().read(scratch) {
                Ok(n) if n > 0 => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                _ => return,
            }
        }
    }

    /// Whether the connection is closing and past its deadline.
    pub(crate) fn overdue(&self, now: Instant) -> bool {
        self.closing.is_some_and(|deadline| now >= deadline)
    }

    /// Which deadline, if any, the connection has missed at `now` (closing connections
    /// never count: they are already going, under their own deadline).
    pub(crate) fn expired(&mut self, now: Instant, deadlines: &Deadlines) -> Option<Expired> {
        if self.closing.is_some() {
            return None;
        }
        if self
            .refused_at
            .is_some_and(|at| now.duration_since(at) >= REFUSAL_WAIT)
        {
            return Some(Expired::Refusal);
        }
        if self
            .partial_since
            .is_some_and(|since| now.duration_since(since) >= deadlines.frame)
        {
            return Some(Expired::Frame);
        }
        // A TLS handshake is held to the frame timeout like a frame (a client that
        // starts one and stalls must not keep a slot).
        if now.duration_since(self.opened) >= deadlines.frame && self.session.tls_handshaking() {
            return Some(Expired::Frame);
        }
        let progress = self.session.output_progress();
        if progress.pending == 0 {
            self.stalled = None;
        } else {
            match self.stalled {
                Some((written, since)) if written == progress.written => {
                    if now.duration_since(since) >= deadlines.write {
                        return Some(Expired::Write);
                    }
                }
                _ => self.stalled = Some((progress.written, now)),
            }
        }
        let idle = deadlines.idle.is_some_and(|timeout| {
            !self.input_done && now.duration_since(self.last_message) >= timeout
        });
        idle.then_some(Expired::Idle)
    }

    /// Whether the connection is closing.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.is_some()
    }

    /// Queues the session if it was held for its output and no longer needs to be.
    pub(crate) fn wake_if_released(&self, to: Handoff<'_>) {
        if self.session.release_if_drained() {
            self.schedule(to);
        }
    }

    fn take_bytes(&mut self, data: &[u8], to: Handoff<'_>) {
        if self.web.is_some() {
            return self.take_web_bytes(data, to);
        }
        let before = self.partial.len();
        let completed = if self.partial.is_empty() {
            let (consumed, count) = count_frames(data);
            self.deliver(&data[..consumed], count, to);
            self.partial.extend_from_slice(&data[consumed..]);
            count
        } else {
            self.partial.extend_from_slice(data);
            let (consumed, count) = count_frames(&self.partial);
            let frames = std::mem::take(&mut self.partial);
            self.deliver(&frames[..consumed], count, to);
            self.partial = frames;
            self.partial.drain(..consumed);
            count
        };
        let after = self.partial.len();
        self.recharge(before, after);
        self.track_partial(after > 0, completed > 0);
        if after == 0 && self.partial.capacity() > KEEP_PARTIAL_CAPACITY {
            self.partial = Vec::new();
        }
    }

    /// Charges the memory budget for buffered input that went from `before` bytes to
    /// `after` (either port's).
    fn recharge(&self, before: usize, after: usize) {
        self.budget.charge(after.saturating_sub(before));
        self.budget.release(before.saturating_sub(after));
    }

    /// The frame deadline's clock, one rule for both ports: it runs while the client
    /// has something `partial` (a TCP frame; an HTTP request, a WebSocket frame or
    /// fragmented message), from the moment that thing started — restarted when a
    /// new one starts, i.e. when something was `completed` and more is partial.
    fn track_partial(&mut self, partial: bool, completed: bool) {
        if !partial {
            self.partial_since = None;
        } else if self.partial_since.is_none() || completed {
            self.partial_since = Some(Instant::now());
        }
    }

    /// `take_bytes` for a web connection: HTTP, then WebSocket messages as frames.
    fn take_web_bytes(&mut self, data: &[u8], to: Handoff<'_>) {
        let Some(web) = self.web.as_mut() else {
            return;
        };
        let before = web.buffered();
        let mut input = web.take(data);
        let after = web.buffered();
        let partial = web.is_partial();
        self.recharge(before, after);
        // The request, once upgraded, and each message completed end what the clock
        // was running for. (A ping completes nothing: it does not buy a fragmented
        // message more time.)
        self.track_partial(partial, input.upgraded || input.messages() > 0);
        if input.upgraded {
            self.last_message = Instant::now();
            if let Some(client) = input.forwarded_for {
                self.session.forwarded_for(client);
                tracing::info!(session = self.session.id, peer = %self.session.peer, %client, "web client behind a trusted proxy");
            }
        }
        if let Some(client) = input.refused_forwarded {
            to.metrics.refused(Refusal::PerAddress);
            tracing::debug!(session = self.session.id, peer = %self.session.peer, %client, "web client refused: too many connections from its address");
        }
        if !input.reply.is_empty()
            && self
                .session
                .send_raw(std::mem::take(&mut input.reply).into())
        {
            // The reactor writes this one itself (a worker may never run for an HTTP
            // request); a blocked socket is finished on writable.
            if self.session.flush() == Flush::Closed {
                self.session.abort();
            }
        }
        // Text messages as frames; binary ones and control frames as their places
        // among them (typed items in the inbox: the worker refuses the first, charges
        // the others to flood control, in order).
        if input.items() > 0 {
            let delivery = self
                .session
                .deliver_items(&input.frames, input.count, &input.placed);
            // Control frames alone are no activity for the idle timeout: it counts
            // messages.
            self.delivered(delivery, input.messages() > 0, to);
        }
        if input.close {
            self.end_input(to);
        }
    }

    fn deliver(&mut self, frames: &[u8], count: usize, to: Handoff<'_>) {
        if count == 0 {
            return;
        }
        let delivery = self.session.deliver_frames(frames, count);
        self.delivered(delivery, true, to);
    }

    /// After items went to the inbox: note the activity if complete messages were
    /// among them, pause if it is full, queue the session if it was idle.
    fn delivered(&mut self, delivery: Delivery, messages: bool, to: Handoff<'_>) {
        if messages {
            self.last_message = Instant::now();
        }
        self.paused = delivery.full;
        if delivery.schedule {
            self.schedule(to);
        }
    }

    fn end_input(&mut self, to: Handoff<'_>) {
        self.input_done = true;
        if !self.partial.is_empty() {
            tracing::debug!(
                session = self.session.id,
                bytes = self.partial.len(),
                "connection ended mid-frame"
            );
            self.drop_partial();
        }
        if self.session.deliver_close() {
            self.schedule(to);
        }
        self.wake_if_released(to);
    }

    fn drop_partial(&mut self) {
        self.budget.release(self.partial.len());
        self.partial = Vec::new();
        self.partial_since = None;
    }

    fn schedule(&self, to: Handoff<'_>) {
        // Dropped only while the server shuts down, when input no longer matters.
        to.queue.push(Arc::clone(&self.session));
    }

    /// For a closing connection: flush, half-close once flushed, and decide whether it
    /// can go (everything sent and the peer done, or nothing more can be sent).
    fn progress_close(&mut self) -> Next {
        if self.closing.is_none() {
            return Next::Keep;
        }
        match self.session.flush() {
            Flush::Closed => Next::Drop,
            Flush::Blocked | Flush::Busy => Next::Keep,
            Flush::Done => {
                if !self.write_shut {
                    // FIN after the last byte; the peer reads everything, then EOF.
                    let _ = self.session.socket().shutdown(std::net::Shutdown::Write);
                    self.write_shut = true;
                }
                // Waiting for the peer's EOF before closing avoids a reset that could
                // destroy our last message in the peer's receive buffer.
                if self.input_done {
                    Next::Drop
                } else {
                    Next::Keep
                }
            }
        }
    }
}

impl Drop for EventHandler {
    fn drop(&mut self) {
        let web = self.web.as_ref().map_or(0, WebSide::buffered);
        self.budget.release(self.partial.len() + web);
    }
}

/// How many complete frames `data` starts with, and how many bytes they take.
fn count_frames(data: &[u8]) -> (usize, usize) {
    let mut frames = Frames::new(data);
    let count = frames.by_ref().count();
    (frames.consumed(), count)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use chat_core::Client;
    use mio::Token;
    use mio::net::TcpStream;

    use super::*;
    use crate::pool::WorkQueue;
    use crate::session::Link;

    /// A closing connection whose peer never stops sending: each readiness event
    /// drops a bounded number of reads and returns, so the reactor goes on serving
    /// the others (before the bound, one event read until the socket was empty, and
    /// a peer sending as fast as the reactor reads kept it there).
    #[test]
    fn a_closing_connection_that_keeps_sending_does_not_hold_the_reactor() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut sender = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (socket, peer) = listener.accept().unwrap();
        socket.set_nonblocking(true).unwrap();
        let budget = Arc::new(MemoryBudget::new(1 << 30));
        let client = Client::new(1, "t".into(), Some(chat_proto::WireFormat::Json));
        let session = Session::new(
            Token(0),
            TcpStream::from_std(socket),
            peer,
            client,
            1 << 20,
            Arc::clone(&budget),
            Link {
                web: false,
                tls: None,
            },
        );
        let mut handler = EventHandler::new(Arc::new(session), budget, None, None);
        // The peer sends until its side cannot take more: the server's receive
        // buffer is full (far more than the bound's reads of this small scratch).
        sender.set_nonblocking(true).unwrap();
        let chunk = vec![0u8; 16 * 1024];
        let mut sent = 0;
        loop {
            match sender.write(&chunk) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        let mut scratch = [0u8; 1024];
        assert!(sent > 4 * DISCARD_READS_PER_EVENT * scratch.len(), "{sent}");
        let queue = Staged::new(Arc::new(WorkQueue::new()));
        let metrics = Metrics::default();
        let to = Handoff {
            queue: &queue,
            metrics: &metrics,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        handler.start_closing(deadline, &mut scratch, to);
        assert!(handler.is_closing());
        // What the event left unread is still there.
        let mut left = 0;
        loop {
            match handler.session.socket().read(&mut scratch) {
                Ok(0) => break,
                Ok(n) => left += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(
            left > 0,
            "one event read everything there was ({sent} bytes)"
        );
    }
}
