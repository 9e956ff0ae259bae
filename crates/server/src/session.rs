//! ClientSession: everything the server keeps about one connection, shared between
//! the reactor and the workers behind an `Arc`.
//!
//! A session has three parts, each with its own owner and lock:
//!
//! * the **inbox** ([`Inbox`]): the input the reactor has read and no worker has taken
//!   yet, plus the *scheduled* flag. Input is a sequence of typed items ([`Items`],
//!   read back as [`InboxItem`]s): complete frames, kept in one byte buffer exactly as
//!   they were read (the TCP path appends the socket's bytes, headers included), and,
//!   from a web connection, binary WebSocket messages and control frames (pings,
//!   pongs, empty continuations: they cost flood control), which have no bytes here —
//!   only their places among the frames ([`Placed`]), so a worker meets each exactly
//!   where it arrived.
//!   The reactor appends and, if the session was not scheduled, pushes it onto the
//!   work queue; a worker takes the whole inbox at once. While a session is scheduled
//!   (queued or being handled) it is never queued again, so **one session is handled
//!   by one worker at a time, in arrival order** — the assignment's ordering rule. The
//!   inbox is bounded (items, each frame or placed item counting one, and bytes):
//!   past the bound the reactor pauses reading the socket until a worker drains it
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

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use chat_core::{Client, ClientId, Completion, ConnectionKind, Delivered, Mailbox};
use chat_proto::frame::Frames;
use mio::Token;
use mio::net::TcpStream;

use crate::budget::MemoryBudget;
use crate::log_limit::{LogLimit, Verdict};
use crate::outbound::{Append, Flush, Outbound, Overflow, Progress};
use crate::pool::lock;
use crate::tls::TlsSession;
use crate::web::Placed;

/// Items (frames and placed items: binary messages, control frames) an inbox may hold
/// before the reactor stops reading the socket.
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
    /// The address the connection came from (for a web client behind a trusted
    /// proxy, the proxy's: see `forwarded_for`).
    pub(crate) peer: SocketAddr,
    /// A web client's own address, as the trusted proxy it came through named it.
    forwarded_for: OnceLock<IpAddr>,
    socket: TcpStream,
    /// The connection's TLS state, for a connection on a TLS listener: what is read
    /// and written goes through it (`tls.rs`).
    tls: Option<TlsSession>,
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

/// [`Session::shown_peer`].
pub(crate) struct ShownPeer<'a>(&'a Session);

impl fmt::Display for ShownPeer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.forwarded_for.get() {
            Some(client) => write!(f, "{client} via {}", self.0.peer),
            None => write!(f, "{}", self.0.peer),
        }
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

/// Input read but not yet handled.
#[derive(Debug, Default)]
struct Inbox {
    /// What waits, in arrival order.
    items: Items,
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

/// One piece of a session's input, as a worker meets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InboxItem<'a> {
    /// A complete frame's payload (from TCP, or a WebSocket text message).
    Frame(&'a [u8]),
    /// A binary WebSocket message: not for the chat; the client is told so.
    BinaryMessage,
    /// A WebSocket control frame (ping, pong, empty continuation): nothing for the
    /// chat, but it costs the client's flood control like a command.
    Control,
}

/// What one placed item is charged to the memory budget: its entry in
/// [`Items::placed`].
const PLACED_ITEM_COST: usize = std::mem::size_of::<(usize, Placed)>();

/// Input in arrival order: complete frames in one byte buffer and, among them, binary
/// messages and control frames, kept as their places (they carry nothing the chat
/// reads).
#[derive(Debug, Default)]
pub(crate) struct Items {
    /// Complete frames, headers included, from `start` on (what is before `start` was
    /// handled: a buffer given back is kept as it is, not copied).
    bytes: Vec<u8>,
    /// Where the unhandled frames in `bytes` begin.
    start: usize,
    /// How many frames `bytes[start..]` holds.
    frames: usize,
    /// Where each placed item stands, and what it is: its index among these items
    /// (frames and placed items, the first unhandled one being 0), ascending.
    placed: VecDeque<(usize, Placed)>,
}

/// How far a worker got through [`Items`] ([`ItemIter::mark`]): what
/// [`Session::unread`] leaves out of what it gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    /// Items yielded.
    items: usize,
    /// Of those, placed items (not frames).
    placed: usize,
    /// Frame bytes they took.
    bytes: usize,
}

/// The [`InboxItem`]s of [`Items`], in arrival order.
#[derive(Debug, Clone)]
pub(crate) struct ItemIter<'a> {
    frames: Frames<'a>,
    placed: &'a VecDeque<(usize, Placed)>,
    /// Items yielded so far.
    items: usize,
    /// Placed items yielded so far.
    yielded_placed: usize,
    /// Where the next placed item stands (`usize::MAX`: none left).
    next_placed: usize,
    /// How many items there are in all.
    len: usize,
}

impl Items {
    /// No items, in `buffer` (cleared) for the frames to come.
    fn in_buffer(mut buffer: Vec<u8>) -> Self {
        buffer.clear();
        Items {
            bytes: buffer,
            ..Items::default()
        }
    }

    /// How many items there are (frames and placed items).
    fn len(&self) -> usize {
        self.frames + self.placed.len()
    }

    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frames' bytes, headers included.
    fn frame_bytes(&self) -> usize {
        self.bytes.len() - self.start
    }

    /// What these items are charged to the memory budget.
    fn cost(&self) -> usize {
        self.frame_bytes() + self.placed.len() * PLACED_ITEM_COST
    }

    /// Appends `frames` complete frames (`bytes`, headers included, as read).
    fn push_frames(&mut self, bytes: &[u8], frames: usize) {
        self.bytes.extend_from_slice(bytes);
        self.frames += frames;
    }

    /// Appends `frames` complete frames (`bytes`) and, among them, placed items where
    /// `placed` says (ascending indices among the appended items).
    fn push(
        &mut self,
        bytes: &[u8],
        frames: usize,
        placed: impl IntoIterator<Item = (usize, Placed)>,
    ) {
        let base = self.len();
        self.push_frames(bytes, frames);
        self.placed
            .extend(placed.into_iter().map(|(at, what)| (base + at, what)));
    }

    /// Appends `other`'s items behind these.
    fn append(&mut self, other: &Items) {
        self.push(
            &other.bytes[other.start..],
            other.frames,
            other.placed.iter().copied(),
        );
    }

    /// Drops the items before `mark` (handled): the rest begins at index 0.
    fn skip(&mut self, mark: Mark) {
        self.start += mark.bytes;
        self.frames -= mark.items - mark.placed;
        self.placed.drain(..mark.placed);
        for (at, _) in &mut self.placed {
            *at -= mark.items;
        }
    }

    /// The items, in arrival order.
    pub(crate) fn iter(&self) -> ItemIter<'_> {
        ItemIter {
            frames: Frames::new(&self.bytes[self.start..]),
            placed: &self.placed,
            items: 0,
            yielded_placed: 0,
            next_placed: self.placed.front().map_or(usize::MAX, |&(at, _)| at),
            len: self.len(),
        }
    }

    /// The frames' buffer, emptied, for reuse.
    pub(crate) fn into_buffer(self) -> Vec<u8> {
        let mut bytes = self.bytes;
        bytes.clear();
        bytes
    }
}

impl ItemIter<'_> {
    /// How far the iteration got.
    pub(crate) fn mark(&self) -> Mark {
        Mark {
            items: self.items,
            placed: self.yielded_placed,
            bytes: self.frames.consumed(),
        }
    }
}

impl<'a> Iterator for ItemIter<'a> {
    type Item = InboxItem<'a>;

    #[inline]
    fn next(&mut self) -> Option<InboxItem<'a>> {
        if self.items == self.next_placed {
            let (_, what) = self.placed[self.yielded_placed];
            self.items += 1;
            self.yielded_placed += 1;
            self.next_placed = self
                .placed
                .get(self.yielded_placed)
                .map_or(usize::MAX, |&(at, _)| at);
            return Some(match what {
                Placed::BinaryMessage => InboxItem::BinaryMessage,
                Placed::Control => InboxItem::Control,
            });
        }
        let frame = self.frames.next()?;
        self.items += 1;
        Some(InboxItem::Frame(frame))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.len - self.items;
        (left, Some(left))
    }
}

impl ExactSizeIterator for ItemIter<'_> {}

/// What a worker takes out of an inbox in one go.
#[derive(Debug)]
pub(crate) struct Taken {
    /// The input (its frames' buffer swapped with the worker's empty one, no copy).
    pub(crate) items: Items,
    /// The connection is gone: after these items, the session ends.
    pub(crate) closed: bool,
    /// The broker's outcome the client awaited, to hand over before the items.
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

/// How a connection reaches the server: the web port's HTTP and WebSocket or the chat
/// protocol's frames, in the clear or through TLS.
#[derive(Debug)]
pub(crate) struct Link {
    /// A connection on the web port.
    pub(crate) web: bool,
    /// Its TLS state, on a TLS listener.
    pub(crate) tls: Option<TlsSession>,
}

/// What [`Session::complete`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Completed {
    /// The session was parked (the work queue counted it away).
    pub(crate) was_parked: bool,
    /// Push it on the work queue.
    pub(crate) schedule: bool,
}

/// What the reactor must do after handing input to a session.
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
        link: Link,
    ) -> Self {
        let Link { web, tls } = link;
        Session {
            web,
            tls,
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
            forwarded_for: OnceLock::new(),
        }
    }

    /// Notes the client's own address, as a trusted proxy named it (once: the
    /// WebSocket opens once).
    pub(crate) fn forwarded_for(&self, client: IpAddr) {
        let _ = self.forwarded_for.set(client);
    }

    /// The client's own address: the one a trusted proxy named, or the peer's.
    pub(crate) fn client_ip(&self) -> IpAddr {
        self.forwarded_for
            .get()
            .copied()
            .unwrap_or_else(|| self.peer.ip().to_canonical())
    }

    /// The client's address for the logs: the peer's, or the address a trusted proxy
    /// named and the proxy's (`203.0.113.7 via 127.0.0.1:41000`).
    pub(crate) fn shown_peer(&self) -> ShownPeer<'_> {
        ShownPeer(self)
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

    /// Reads what the client sent: plaintext, through TLS on a TLS connection (see
    /// [`TlsSession::read`]: `InvalidData` is a TLS error, its alert already sent).
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.tls {
            Some(tls) => tls.read(&self.socket, buf),
            None => (&self.socket).read(buf),
        }
    }

    /// Whether the connection is TLS (a read may leave bytes inside rustls, so it
    /// must read until the socket says `WouldBlock`).
    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Whether a TLS handshake is still under way (it must finish within the frame
    /// timeout, like a frame).
    pub(crate) fn tls_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(TlsSession::is_handshaking)
    }

    /// Before the final flush of an orderly close: a TLS connection says it ends with
    /// a close_notify, so the peer can tell our end from a cut.
    pub(crate) fn say_goodbye(&self) {
        if let Some(tls) = &self.tls {
            tls.close_notify();
        }
    }

    /// The chat state, for the worker handling this session.
    pub(crate) fn client(&self) -> MutexGuard<'_, Client> {
        lock(&self.client)
    }

    /// Appends `frames` complete frames read by the reactor (`bytes`, headers
    /// included, as read).
    ///
    /// The inbox also counts as full while the server's memory budget is spent and it
    /// holds anything: reading pauses until a worker has taken what waits.
    pub(crate) fn deliver_frames(&self, bytes: &[u8], frames: usize) -> Delivery {
        self.budget.charge(bytes.len());
        let mut inbox = lock(&self.inbox);
        inbox.items.push_frames(bytes, frames);
        inbox.delivered(&self.budget)
    }

    /// Appends a web connection's input: `frames` complete frames (`bytes`) and, among
    /// them, binary messages and control frames at `placed` (ascending indices among
    /// the `frames + placed.len()` items delivered, in arrival order). Each placed
    /// item counts as one item against the inbox's bound, like a frame: a client that
    /// sends pings faster than its flood control admits them fills its inbox and is
    /// read no further until a worker catches up.
    pub(crate) fn deliver_items(
        &self,
        bytes: &[u8],
        frames: usize,
        placed: &[(usize, Placed)],
    ) -> Delivery {
        self.budget
            .charge(bytes.len() + placed.len() * PLACED_ITEM_COST);
        let mut inbox = lock(&self.inbox);
        inbox.items.push(bytes, frames, placed.iter().copied());
        inbox.delivered(&self.budget)
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
        let items = std::mem::replace(&mut inbox.items, Items::in_buffer(spare));
        self.budget.release(items.cost());
        inbox.client_waiting = false;
        Taken {
            items,
            closed: inbox.closed,
            completion: inbox.completion.take(),
        }
    }

    /// Gives back the items a worker took, of which those from `handled` on (where
    /// its [`ItemIter`] stopped) were not handled: they go before anything that
    /// arrived meanwhile, which is appended behind them (usually nothing, so nothing
    /// is copied), placed items' places rebased for both. With `hold`, the session
    /// waits for its output to drain before it is scheduled again. Answers an empty
    /// buffer for the worker to reuse.
    pub(crate) fn unread(&self, mut taken: Items, handled: Mark, hold: bool) -> Vec<u8> {
        taken.skip(handled);
        self.budget.charge(taken.cost());
        let mut inbox = lock(&self.inbox);
        taken.append(&inbox.items);
        let arrived = std::mem::replace(&mut inbox.items, taken);
        inbox.held |= hold;
        arrived.into_buffer()
    }

    /// Called by the worker when done: unschedules the session unless more input
    /// arrived meanwhile (or was given back), in which case it stays scheduled and the
    /// caller requeues it. A held session is unscheduled whatever waits. Also answers
    /// whether the reactor, which paused reading for a full inbox, may read again:
    /// only once there is room (input given back still counts), so a client whose
    /// input waits cannot make the inbox grow a read at a time — and never once the
    /// session is over (`handled_close`: it ended or its connection did). An ended
    /// client's input is dropped unhandled, so reading it again would free the inbox
    /// as fast as the client can fill it (a flooder just cut off, still sending):
    /// until the reactor starts closing, the reactor would read and answer (a web
    /// client's pings) for nothing. Closing reads and discards what is left.
    pub(crate) fn finish_turn(&self, handled_close: bool) -> TurnDone {
        let mut inbox = lock(&self.inbox);
        let more =
            !inbox.held && !inbox.throttled && !inbox.parked && inbox.has_work(handled_close);
        inbox.scheduled = more;
        let resume = !handled_close && inbox.paused && !inbox.is_full(&self.budget);
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

    /// Stops holding or throttling the session (at shutdown, when every item already
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
        let mut progress = self.outbound.progress();
        if let Some(tls) = &self.tls {
            // Records rustls holds wait like queued bytes, and what it wrote is
            // progress: a reader that stops taking them is still a stopped reader.
            let (waiting, written) = tls.progress();
            progress.pending += usize::from(waiting);
            progress.written += written;
        }
        progress
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
        match &self.tls {
            None => self.outbound.flush(&self.socket),
            Some(tls) => {
                let flushed = self.outbound.flush(tls.writer(&self.socket));
                self.with_tls_records(tls, flushed)
            }
        }
    }

    /// Records a writable event and resumes a flush.
    pub(crate) fn writable(&self) -> Flush {
        match &self.tls {
            None => self.outbound.writable(&self.socket),
            Some(tls) => {
                let flushed = self.outbound.writable(tls.writer(&self.socket));
                self.with_tls_records(tls, flushed)
            }
        }
    }

    /// A flush of a TLS connection is done only once rustls's records are sent too
    /// (a handshake message, a close_notify, the tail of the last write).
    fn with_tls_records(&self, tls: &TlsSession, flushed: Flush) -> Flush {
        if flushed == Flush::Closed {
            return flushed;
        }
        match tls.flush_pending(&self.socket) {
            Ok(true) => Flush::Blocked,
            Ok(false) => flushed,
            Err(_) => Flush::Closed,
        }
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
    /// After input was appended: pauses reading if the inbox is now full, schedules
    /// the session if it was idle.
    fn delivered(&mut self, budget: &MemoryBudget) -> Delivery {
        let full = self.is_full(budget);
        self.paused |= full;
        Delivery {
            schedule: self.try_schedule(),
            full,
        }
    }

    /// Whether the reactor must stop reading: the item or byte bound is reached, or
    /// the server's memory budget is spent and something waits.
    fn is_full(&self, budget: &MemoryBudget) -> bool {
        self.items.len() >= MAX_INBOX_FRAMES
            || self.items.frame_bytes() >= MAX_INBOX_BYTES
            || (!self.items.is_empty() && budget.is_spent())
    }

    /// Whether a worker has something to do: items, an outcome to hand over, or a
    /// close not yet handled.
    fn has_work(&self, handled_close: bool) -> bool {
        !self.items.is_empty()
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
        self.budget.release(inbox.items.cost());
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

    fn connection_kind(&self) -> ConnectionKind {
        if self.web {
            ConnectionKind::Web
        } else if self.tls.is_some() {
            ConnectionKind::Tls
        } else {
            ConnectionKind::Tcp
        }
    }

    fn address(&self) -> Option<std::net::IpAddr> {
        Some(self.client_ip())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `payloads` as frames, headers included.
    fn frames(payloads: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for payload in payloads {
            chat_proto::frame::write_frame(&mut out, payload.as_bytes()).unwrap();
        }
        out
    }

    /// What an iteration yields, frames as their text, binary messages as `#` and
    /// control frames as `~`.
    fn seen(iter: ItemIter<'_>) -> Vec<String> {
        iter.map(|item| match item {
            InboxItem::Frame(frame) => String::from_utf8(frame.to_vec()).unwrap(),
            InboxItem::BinaryMessage => "#".to_owned(),
            InboxItem::Control => "~".to_owned(),
        })
        .collect()
    }

    /// Items from a sequence in which `#` stands for a binary message and `~` for a
    /// control frame.
    fn items(sequence: &[&str]) -> Items {
        let mut items = Items::default();
        push(&mut items, sequence);
        items
    }

    fn push(items: &mut Items, sequence: &[&str]) {
        let (bytes, frames, placed) = split(sequence);
        items.push(&bytes, frames, placed);
    }

    /// A sequence with `#` for binary messages and `~` for control frames, as a
    /// delivery: frame bytes, how many frames, where the placed items stand.
    fn split(sequence: &[&str]) -> (Vec<u8>, usize, Vec<(usize, Placed)>) {
        let placed_as = |s: &str| match s {
            "#" => Some(Placed::BinaryMessage),
            "~" => Some(Placed::Control),
            _ => None,
        };
        let texts: Vec<&str> = sequence
            .iter()
            .copied()
            .filter(|s| placed_as(s).is_none())
            .collect();
        let placed = (0..sequence.len())
            .filter_map(|i| placed_as(sequence[i]).map(|what| (i, what)))
            .collect();
        (frames(&texts), texts.len(), placed)
    }

    /// Iterates `n` items and answers where that stopped.
    fn handle(items: &Items, n: usize) -> Mark {
        let mut iter = items.iter();
        for _ in 0..n {
            iter.next().expect("an item");
        }
        iter.mark()
    }

    #[test]
    fn items_come_out_in_arrival_order() {
        let mut all = items(&["#", "a", "#", "#", "b"]);
        // A second delivery: its places count from its own start.
        push(&mut all, &["c", "#"]);
        push(&mut all, &["#"]);
        push(&mut all, &["d", "e"]);
        // Control frames are placed the same way, mixed with the others.
        push(&mut all, &["~", "f", "#", "~", "~"]);
        assert_eq!(all.len(), 15);
        let mut iter = all.iter();
        assert_eq!(iter.len(), 15);
        iter.next();
        assert_eq!(iter.len(), 14);
        assert_eq!(
            seen(all.iter()),
            [
                "#", "a", "#", "#", "b", "c", "#", "#", "d", "e", "~", "f", "#", "~", "~"
            ]
        );
        // Frames alone, as from TCP: no binary message anywhere.
        let tcp = items(&["x", "", "y"]);
        assert_eq!(seen(tcp.iter()), ["x", "", "y"]);
        assert!(Items::default().iter().next().is_none());
    }

    #[test]
    fn the_unhandled_rest_is_rebased_and_goes_before_what_arrived_meanwhile() {
        for stop in 0..=8 {
            let sequence = ["a", "#", "b", "~", "#", "#", "c", "~"];
            let mut taken = items(&sequence);
            let mark = handle(&taken, stop);
            taken.skip(mark);
            assert_eq!(seen(taken.iter()), sequence[stop..], "stopped after {stop}");
            // Arrived meanwhile, with binary messages of its own.
            let arrived = items(&["#", "d", "~", "#"]);
            taken.append(&arrived);
            let mut want: Vec<&str> = sequence[stop..].to_vec();
            want.extend(["#", "d", "~", "#"]);
            assert_eq!(seen(taken.iter()), want, "stopped after {stop}");
            assert_eq!(taken.len(), want.len());
            // And once more: the rebased places hold for a second stop.
            let again = want.len().min(2);
            let mark = handle(&taken, again);
            taken.skip(mark);
            assert_eq!(seen(taken.iter()), want[again..], "stopped after {stop}");
        }
    }

    /// A session on a real (connected) socket, web or not; the other end is returned
    /// to keep the connection open.
    fn session(budget: &Arc<MemoryBudget>) -> (Session, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let other_end = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (socket, peer) = listener.accept().unwrap();
        socket.set_nonblocking(true).unwrap();
        let client = Client::new(1, "t".into(), Some(chat_proto::WireFormat::Json));
        let session = Session::new(
            Token(0),
            TcpStream::from_std(socket),
            peer,
            client,
            1 << 20,
            Arc::clone(budget),
            Link {
                web: true,
                tls: None,
            },
        );
        (session, other_end)
    }

    fn deliver(session: &Session, sequence: &[&str]) -> Delivery {
        let (bytes, frames, placed) = split(sequence);
        session.deliver_items(&bytes, frames, &placed)
    }

    #[test]
    fn a_stopped_turn_gives_back_its_rest_before_newer_input() {
        let budget = Arc::new(MemoryBudget::new(1 << 30));
        let (session, _other_end) = session(&budget);
        assert_eq!(
            deliver(&session, &["a", "#", "b", "#"]),
            Delivery {
                schedule: true,
                full: false
            }
        );
        let taken = session.take_inbox(Vec::new());
        assert_eq!(budget.used(), 0, "taken input is not charged");
        assert_eq!(seen(taken.items.iter()), ["a", "#", "b", "#"]);
        // The worker handles `a` and the binary message; meanwhile more arrives.
        let mark = handle(&taken.items, 2);
        assert!(!deliver(&session, &["#", "c"]).schedule, "still scheduled");
        let spare = session.unread(taken.items, mark, false);
        assert!(spare.is_empty());
        let done = session.finish_turn(false);
        assert!(done.requeue);
        let again = session.take_inbox(spare);
        assert_eq!(seen(again.items.iter()), ["b", "#", "#", "c"]);
        assert_eq!(budget.used(), 0);
        // A rest that starts with binary messages.
        let mark = handle(&again.items, 1);
        let _ = session.unread(again.items, mark, false);
        assert!(session.finish_turn(false).requeue);
        let last = session.take_inbox(Vec::new());
        assert_eq!(seen(last.items.iter()), ["#", "#", "c"]);
        let mark = handle(&last.items, 2);
        let _ = session.unread(last.items, mark, false);
        let last = session.take_inbox(Vec::new());
        assert_eq!(seen(last.items.iter()), ["c"]);
        // Stopped before anything: all of it goes back, as it was.
        let mark = handle(&last.items, 0);
        let _ = session.unread(last.items, mark, false);
        assert!(session.finish_turn(false).requeue);
        let last = session.take_inbox(Vec::new());
        let mark = handle(&last.items, 1);
        let _ = session.unread(last.items, mark, false);
        assert!(!session.finish_turn(false).requeue, "nothing left");
        assert_eq!(budget.used(), 0);
        // A binary message alone is work: one that arrives during a turn requeues it.
        assert!(deliver(&session, &["#"]).schedule);
        let taken = session.take_inbox(Vec::new());
        assert!(!deliver(&session, &["#"]).schedule);
        assert_eq!(taken.items.iter().count(), 1);
        assert!(session.finish_turn(false).requeue);
        assert_eq!(seen(session.take_inbox(Vec::new()).items.iter()), ["#"]);
        assert!(!session.finish_turn(false).requeue);
    }

    #[test]
    fn binary_messages_count_against_the_inbox_bound_and_the_budget() {
        let budget = Arc::new(MemoryBudget::new(1 << 30));
        let (session, _other_end) = session(&budget);
        let binary = vec!["#"; MAX_INBOX_FRAMES - 1];
        assert!(!deliver(&session, &binary).full);
        assert_eq!(budget.used(), binary.len() * PLACED_ITEM_COST);
        // The last item that fits, whatever its kind, fills the inbox.
        assert!(deliver(&session, &["#"]).full);
        let taken = session.take_inbox(Vec::new());
        assert_eq!(taken.items.iter().len(), MAX_INBOX_FRAMES);
        assert!(
            taken
                .items
                .iter()
                .all(|item| item == InboxItem::BinaryMessage)
        );
        assert_eq!(budget.used(), 0);
        let done = session.finish_turn(false);
        assert!(done.resume && !done.requeue);
        // Mixed: frames and binary messages add up.
        let half: Vec<&str> = (0..MAX_INBOX_FRAMES)
            .map(|i| if i.is_multiple_of(2) { "#" } else { "{}" })
            .collect();
        assert!(!deliver(&session, &half[1..]).full);
        assert!(deliver(&session, &half[..1]).full);
        // A spent budget pauses reading as soon as anything waits, binary or not.
        let _ = session.take_inbox(Vec::new());
        let _ = session.finish_turn(false);
        let tight = Arc::new(MemoryBudget::new(1));
        let (session, _other_end) = self::session(&tight);
        tight.charge(1);
        assert!(deliver(&session, &["#"]).full);
        // Dropping a session releases what its inbox held.
        drop(session);
        assert_eq!(tight.used(), 1);
    }
}
