//! ClientSession: everything the server keeps about one connection, shared between
//! the reactor and the workers behind an `Arc`.
//!
//! A session has three parts, each with its own owner and lock:
//!
//! * the **inbox** ([`Inbox`]): complete frames the reactor has read and no worker has
//!   taken yet, plus the *scheduled* flag. The reactor appends and, if the session was
//!   not scheduled, pushes it onto the work queue; a worker takes the whole inbox at
//!   once. While a session is scheduled (queued or being handled) it is never queued
//!   again, so **one session is handled by one worker at a time, in arrival order** —
//!   the assignment's ordering rule. The inbox is bounded (frames and bytes): past the
//!   bound the reactor pauses reading the socket until a worker drains it
//!   (backpressure; nothing is dropped, the reactor never blocks). A worker also
//!   stops early — [`Session::unread`] gives back what it did not handle — when its
//!   turn's budget is used up, and *holds* the session when the client's own output
//!   backlog is over [`OUTPUT_HIGH_WATER`]: a held session is not scheduled again
//!   until its output drains ([`Session::release_if_drained`]), so a client that asks
//!   for more than it reads slows itself down instead of growing the server. A
//!   session whose client awaits a broker's outcome (a cluster round trip) is
//!   *parked* ([`Session::park`]) the same way: its later input waits in the inbox,
//!   no worker is tied up, and [`Session::complete`] schedules it again with the
//!   outcome, which its worker hands to the client before any newer input.
//! * the **chat state** (a [`chat_core::Client`]): name, room, protocol decoder. Only
//!   the worker handling the session touches it; the mutex is uncontended and only
//!   satisfies the compiler.
//! * the **outbound queue** (`outbound.rs`): any thread delivers replies and
//!   broadcasts, through the [`Mailbox`] implementation below — the only face of a
//!   session that rooms ever see.
//!
//! The socket itself is only *read* by the reactor; writes go through the outbound
//! queue's flush protocol. Sessions are identified by a never-reused `id`, so a new
//! connection that reuses a file descriptor or reactor slot is a different session.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use chat_core::{Client, ClientId, Completion, Delivered, Mailbox};
use mio::Token;
use mio::net::TcpStream;

use crate::budget::MemoryBudget;
use crate::log_limit::{LogLimit, Verdict};
use crate::outbound::{Append, Flush, Outbound, Overflow, Progress};
use crate::pool::lock;

/// Frames an inbox may hold before the reactor stops reading the socket.
pub(crate) const MAX_INBOX_FRAMES: usize = 1024;
/// Bytes an inbox may hold before the reactor stops reading the socket.
pub(crate) const MAX_INBOX_BYTES: usize = 256 * 1024;
/// A client whose own output backlog is over this (or a quarter of its outbound cap,
/// if smaller) is not served more input until it drains below [`OUTPUT_LOW_WATER`] (or
/// a quarter of its high-water mark, if smaller).
pub(crate) const OUTPUT_HIGH_WATER: usize = 256 * 1024;
/// See [`OUTPUT_HIGH_WATER`].
pub(crate) const OUTPUT_LOW_WATER: usize = 64 * 1024;

/// One client connection: the server's [`Mailbox`] type.
///
/// Opaque outside this crate; it is public only so that a broker handed to
/// [`crate::Server::with_broker`] can name it (`MessageBroker<Session>`).
pub struct Session {
    pub(crate) id: ClientId,
    /// The reactor's handle for this connection (slots are reused; `id` is not).
    pub(crate) token: Token,
    /// The client's address.
    pub(crate) peer: SocketAddr,
    socket: TcpStream,
    inbox: Mutex<Inbox>,
    outbound: Outbound,
    client: Mutex<Client>,
    /// Charged for the inbox's bytes.
    budget: Arc<MemoryBudget>,
    /// The close will be a reset ([`Session::cut`]): never send a FIN first.
    abortive: AtomicBool,
    /// For the log lines this client can cause at will.
    log_limit: LogLimit,
    /// Why the connection ended, first reason given (for the log line at close).
    end_reason: OnceLock<&'static str>,
    /// The local user owning the other end, once looked up (a socket's owner never
    /// changes, and the lookup reads the kernel's whole TCP table).
    owner: OnceLock<Option<u32>>,
    /// This session's output high-water mark: [`OUTPUT_HIGH_WATER`], or a quarter of
    /// its outbound cap if that is smaller (a hold must come well before a cut).
    high_water: usize,
    /// A web (WebSocket) connection: messages leave as WebSocket text frames.
    web: bool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

/// Frames read but not yet handled.
#[derive(Debug, Default)]
struct Inbox {
    /// Complete frames, headers included, in arrival order, from `start` on (what is
    /// before `start` was handled: a buffer given back is kept as it is, not copied).
    bytes: Vec<u8>,
    /// Where the unhandled frames in `bytes` begin.
    start: usize,
    /// How many frames `bytes[start..]` holds.
    frames: usize,
    /// The session is in the work queue or being handled.
    scheduled: bool,
    /// The reactor stopped reading because the inbox is full.
    paused: bool,
    /// The peer closed or the socket failed: no more bytes will come. Set by the
    /// reactor after the last bytes were appended.
    closed: bool,
    /// A worker stopped because the client's output backlog is too large; the session
    /// is not scheduled until it drains (or the connection is cut).
    held: bool,
    /// The client is over its flood limit; the session is not scheduled until the
    /// reactor's timer wakes it.
    throttled: bool,
    /// The client's chat state keeps a request waiting (throttled): there is work even
    /// with no frames.
    client_waiting: bool,
    /// The client awaits a broker's outcome: the session is not scheduled until
    /// [`Session::complete`] brings it.
    parked: bool,
    /// The broker's outcome, for the next turn (it goes before any input).
    completion: Option<Completion>,
}

/// What a worker takes out of an inbox in one go.
#[derive(Debug)]
pub(crate) struct Taken {
    /// The frames, from `start` on (swapped with the worker's empty buffer, no copy).
    pub(crate) bytes: Vec<u8>,
    /// Where the frames begin in `bytes`.
    pub(crate) start: usize,
    /// How many frames there are.
    pub(crate) frames: usize,
    /// The connection is gone: after these frames, the session ends.
    pub(crate) closed: bool,
    /// The broker's outcome the client awaited, to hand over before the frames.
    pub(crate) completion: Option<Completion>,
}

/// What a worker must do after a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TurnDone {
    /// More input waits: put the session back on the queue.
    pub(crate) requeue: bool,
    /// Tell the reactor to read the socket again.
    pub(crate) resume: bool,
}

/// What [`Session::complete`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Completed {
    /// The session was parked (the work queue counted it away).
    pub(crate) was_parked: bool,
    /// Push it on the work queue.
    pub(crate) schedule: bool,
}

/// What the reactor must do after handing frames to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Delivery {
    /// The session was idle: push it on the work queue.
    pub(crate) schedule: bool,
    /// The inbox is full: stop reading until a worker drains it.
    pub(crate) full: bool,
}

impl Session {
    /// A new session for an accepted socket, with `client` as its chat state; its
    /// buffers charge `budget`.
    pub(crate) fn new(
        token: Token,
        socket: TcpStream,
        peer: SocketAddr,
        client: Client,
        outbound_cap: usize,
        budget: Arc<MemoryBudget>,
        web: bool,
    ) -> Self {
        Session {
            web,
            id: client.id(),
            token,
            peer,
            socket,
            inbox: Mutex::new(Inbox::default()),
            outbound: Outbound::new(outbound_cap, Arc::clone(&budget)),
            client: Mutex::new(client),
            budget,
            high_water: OUTPUT_HIGH_WATER.min(outbound_cap / 4),
            abortive: AtomicBool::new(false),
            log_limit: LogLimit::default(),
            owner: OnceLock::new(),
            end_reason: OnceLock::new(),
        }
    }

    /// Whether this is a web (WebSocket) connection.
    pub(crate) fn is_web(&self) -> bool {
        self.web
    }

    /// Queues bytes exactly as given (a web connection's HTTP response or WebSocket
    /// control frame), ahead of anything queued later; answers whether they were
    /// queued (not if the connection is closed or was just cut for its backlog).
    pub(crate) fn send_raw(&self, bytes: Bytes) -> bool {
        matches!(
            self.outbound.append(&bytes),
            Append::NewlyDirty | Append::Queued
        )
    }

    /// The socket, for the reactor's reads and registration.
    pub(crate) fn socket(&self) -> &TcpStream {
        &self.socket
    }

    /// The chat state, for the worker handling this session.
    pub(crate) fn client(&self) -> MutexGuard<'_, Client> {
        lock(&self.client)
    }

    /// Appends `frames` complete frames read by the reactor.
    ///
    /// The inbox also counts as full while the server's memory budget is spent and it
    /// holds anything: reading pauses until a worker has taken what waits.
    pub(crate) fn deliver_frames(&self, bytes: &[u8], frames: usize) -> Delivery {
        self.budget.charge(bytes.len());
        let mut inbox = lock(&self.inbox);
        inbox.bytes.extend_from_slice(bytes);
        inbox.frames += frames;
        let full = inbox.is_full(&self.budget);
        inbox.paused |= full;
        Delivery {
            schedule: inbox.try_schedule(),
            full,
        }
    }

    /// Marks the input side finished (EOF or error); answers whether the session must
    /// now be queued.
    pub(crate) fn deliver_close(&self) -> bool {
        let mut inbox = lock(&self.inbox);
        inbox.closed = true;
        inbox.try_schedule()
    }

    /// Takes everything in the inbox, leaving `spare` (an empty buffer) in its place.
    pub(crate) fn take_inbox(&self, spare: Vec<u8>) -> Taken {
        let mut inbox = lock(&self.inbox);
        let bytes = std::mem::replace(&mut inbox.bytes, spare);
        let start = std::mem::take(&mut inbox.start);
        self.budget.release(bytes.len() - start);
        inbox.client_waiting = false;
        Taken {
            bytes,
            start,
            frames: std::mem::take(&mut inbox.frames),
            closed: inbox.closed,
            completion: inbox.completion.take(),
        }
    }

    /// Gives back the buffer a worker took, of which the `frames` frames from `from`
    /// on were not handled: they go before anything that arrived meanwhile, which is
    /// appended behind them (usually nothing, so nothing is copied). With `hold`, the
    /// session waits for its output to drain before it is scheduled again. Answers an
    /// empty buffer for the worker to reuse.
    pub(crate) fn unread(
        &self,
        mut taken: Vec<u8>,
        from: usize,
        frames: usize,
        hold: bool,
    ) -> Vec<u8> {
        self.budget.charge(taken.len() - from);
        let mut inbox = lock(&self.inbox);
        let arrived_from = inbox.start;
        taken.extend_from_slice(&inbox.bytes[arrived_from..]);
        let mut arrived = std::mem::replace(&mut inbox.bytes, taken);
        inbox.start = from;
        inbox.frames += frames;
        inbox.held |= hold;
        arrived.clear();
        arrived
    }

    /// Called by the worker when done: unschedules the session unless more input
    /// arrived meanwhile (or was given back), in which case it stays scheduled and the
    /// caller requeues it. A held session is unscheduled whatever waits. Also answers
    /// whether the reactor, which paused reading for a full inbox, may read again:
    /// only once there is room (input given back still counts), so a client whose
    /// input waits cannot make the inbox grow a read at a time.
    pub(crate) fn finish_turn(&self, handled_close: bool) -> TurnDone {
        let mut inbox = lock(&self.inbox);
        let more =
            !inbox.held && !inbox.throttled && !inbox.parked && inbox.has_work(handled_close);
        inbox.scheduled = more;
        let resume = inbox.paused && !inbox.is_full(&self.budget);
        if resume {
            inbox.paused = false;
        }
        TurnDone {
            requeue: more,
            resume,
        }
    }

    /// The client is over its flood limit (its request waits in its chat state): the
    /// session is not scheduled until [`Session::wake`].
    pub(crate) fn throttle(&self) {
        let mut inbox = lock(&self.inbox);
        inbox.throttled = true;
        inbox.client_waiting = true;
    }

    /// The client awaits a broker's outcome: the session is not scheduled until
    /// [`Session::complete`]. Answers false if the outcome is already here (the turn
    /// that parks it then requeues it).
    pub(crate) fn park(&self) -> bool {
        let mut inbox = lock(&self.inbox);
        inbox.parked = inbox.completion.is_none();
        inbox.parked
    }

    /// The broker's outcome for the client that awaits it. Answers whether the
    /// session was parked (it is not any more), and whether it must now be queued
    /// (not if a worker still has it: that turn requeues it).
    pub(crate) fn complete(&self, outcome: Completion) -> Completed {
        let mut inbox = lock(&self.inbox);
        inbox.completion = Some(outcome);
        let was_parked = std::mem::take(&mut inbox.parked);
        Completed {
            was_parked,
            schedule: was_parked && inbox.try_schedule(),
        }
    }

    /// The flood-control wait is over; answers whether the session must now be queued.
    pub(crate) fn wake(&self) -> bool {
        let mut inbox = lock(&self.inbox);
        if !std::mem::take(&mut inbox.throttled) {
            return false;
        }
        inbox.has_work(false) && inbox.try_schedule()
    }

    /// If the session is held and its output has drained (or it was cut off), stops
    /// holding it; answers whether it must now be queued.
    pub(crate) fn release_if_drained(&self) -> bool {
        let mut inbox = lock(&self.inbox);
        if !inbox.held {
            return false;
        }
        let progress = self.outbound.progress();
        let low_water = OUTPUT_LOW_WATER.min(self.high_water / 4);
        if progress.pending > low_water && !self.outbound.is_closed() {
            return false;
        }
        inbox.held = false;
        inbox.has_work(false) && inbox.try_schedule()
    }

    /// Stops holding or throttling the session (at shutdown, when every frame already
    /// read is handled); answers whether it must now be queued.
    pub(crate) fn force_release(&self) -> bool {
        let mut inbox = lock(&self.inbox);
        let was_held = std::mem::take(&mut inbox.held) | std::mem::take(&mut inbox.throttled);
        was_held && inbox.has_work(false) && inbox.try_schedule()
    }

    /// Whether the client's own output backlog is over its high-water mark.
    pub(crate) fn output_backlogged(&self) -> bool {
        self.outbound.progress().pending > self.high_water
    }

    /// What waits to be written, and how much was ever written.
    pub(crate) fn output_progress(&self) -> Progress {
        self.outbound.progress()
    }

    /// Whether the connection was cut off (or its socket failed): nothing more is
    /// computed for it but its departure.
    pub(crate) fn is_cut(&self) -> bool {
        self.outbound.is_closed()
    }

    /// Whether a log line about something this client did may be written now (see
    /// `log_limit.rs`), and how many were left out before it.
    pub(crate) fn may_log(&self) -> Verdict {
        self.log_limit.check(std::time::Instant::now())
    }

    /// The client's name, if nobody holds its chat state right now (the reactor never
    /// waits for a worker: at close the session has ended, so this is the usual case).
    pub(crate) fn try_name(&self) -> Option<String> {
        self.client
            .try_lock()
            .ok()
            .map(|client| client.name().to_owned())
    }

    /// Records why the connection ends (only the first reason counts).
    pub(crate) fn note_end(&self, why: &'static str) {
        let _ = self.end_reason.set(why);
    }

    /// Why the connection ended, as first noted.
    pub(crate) fn end_reason(&self) -> &'static str {
        self.end_reason.get().copied().unwrap_or("closed")
    }

    /// The uid of the local process at the other end (see `peer_owner.rs`), looked
    /// up once per connection; `None` for a peer on another host or a failed lookup.
    pub(crate) fn owner(&self) -> Option<u32> {
        *self.owner.get_or_init(|| {
            let local = self.socket.local_addr().ok()?;
            crate::peer_owner::owner_of(self.peer, local).ok().flatten()
        })
    }

    /// Writes what is queued, without blocking.
    pub(crate) fn flush(&self) -> Flush {
        self.outbound.flush(&self.socket)
    }

    /// Records a writable event and resumes a flush.
    pub(crate) fn writable(&self) -> Flush {
        self.outbound.writable(&self.socket)
    }

    /// Cuts the connection off now. The reactor then sees end-of-stream and the session
    /// ends through the usual path (leaving its room, notices to the others).
    pub(crate) fn abort(&self) {
        self.outbound.close();
        // A cut connection gets no FIN (see `cut`), only its reading shut down, which
        // still wakes the reactor. Errors mean the socket is already shut down or
        // gone: nothing to do.
        let how = if self.abortive.load(Ordering::Acquire) {
            std::net::Shutdown::Read
        } else {
            std::net::Shutdown::Both
        };
        let _ = self.socket.shutdown(how);
    }

    /// Cuts the connection off *abortively*: when the descriptor is closed the peer
    /// gets a reset and the kernel frees the socket's buffers at once, instead of
    /// keeping unsent data (megabytes, for a slow consumer) in FIN-WAIT for as long as
    /// the peer keeps its end open. No FIN is sent before: it would let the peer read
    /// everything already sent and see an orderly end.
    pub(crate) fn cut(&self) {
        self.set_abortive_close();
        self.abort();
    }

    /// Makes the eventual close a reset (`SO_LINGER` 0), with no FIN before it.
    pub(crate) fn set_abortive_close(&self) {
        self.abortive.store(true, Ordering::Release);
        if let Err(e) = socket2::SockRef::from(&self.socket).set_linger(Some(Duration::ZERO)) {
            tracing::debug!(session = self.id, "could not set SO_LINGER: {e}");
        }
    }
}

impl Inbox {
    /// Whether the reactor must stop reading: the frame or byte bound is reached, or
    /// the server's memory budget is spent and something waits.
    fn is_full(&self, budget: &MemoryBudget) -> bool {
        let bytes = self.bytes.len() - self.start;
        self.frames >= MAX_INBOX_FRAMES
            || bytes >= MAX_INBOX_BYTES
            || (bytes > 0 && budget.is_spent())
    }

    /// Whether a worker has something to do: frames, an outcome to hand over, or a
    /// close not yet handled.
    fn has_work(&self, handled_close: bool) -> bool {
        self.bytes.len() > self.start
            || self.client_waiting
            || self.completion.is_some()
            || (self.closed && !handled_close)
    }

    /// Marks the session scheduled; answers whether it was not (the caller queues it).
    /// A held, throttled or parked session is never scheduled from here.
    fn try_schedule(&mut self) -> bool {
        if self.held || self.throttled || self.parked || self.scheduled {
            return false;
        }
        self.scheduled = true;
        true
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let inbox = self.inbox.get_mut().unwrap_or_else(|e| e.into_inner());
        self.budget.release(inbox.bytes.len() - inbox.start);
    }
}

impl Mailbox for Session {
    fn deliver(&self, frames: &Bytes) -> Delivered {
        let appended = if self.web {
            // One JSON message (a web client's format is JSON): its payload, without
            // the 2-byte length, as a WebSocket text frame. The payload stays shared
            // with every other recipient; only the header is this connection's.
            let payload = frames.slice(2.min(frames.len())..);
            let header = crate::web::text_frame_header(payload.len());
            self.outbound.append_parts(&[header, payload])
        } else {
            self.outbound.append(frames)
        };
        match appended {
            Append::Queued => Delivered::Queued,
            Append::NewlyDirty => Delivered::FlushDue,
            Append::Closed => Delivered::Closed,
            Append::Overflow(why) => {
                let why = match why {
                    Overflow::Cap => "outbound queue over its cap",
                    Overflow::Budget => "server memory budget spent and this queue is large",
                };
                tracing::warn!(session = self.id, peer = %self.peer, "slow consumer: {why}, disconnecting");
                self.note_end("slow consumer");
                self.cut();
                Delivered::Overflow
            }
        }
    }
}
