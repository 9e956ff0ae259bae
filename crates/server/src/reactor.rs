//! Reactor: the one thread that polls (the seed's Reactor).
//!
//! It runs a `mio::Poll` (epoll) over the listener, every client socket and a
//! [`Waker`], accepts connections, and passes each connection's readiness to its
//! [`EventHandler`] (`event_handler.rs`), which reads and splits frames and queues
//! sessions for the workers. Workers talk back through [`ReactorHandle`]:
//! *resume reading* a paused session, *close* an ended one ([`ReactorCommand`]).
//!
//! The reactor holds only what it uses: the poll and listener, its connections, the
//! work queue it feeds, the metrics it counts into, the shutdown flag it watches and
//! the handle workers reach it through. Whether a connection is served or refused,
//! and the counts that decide it, are [`Admission`]'s (`admission.rs`); the reactor
//! asks it at accept and tells it when a connection goes.
//!
//! # Rules (mio's contract, kept here)
//!
//! * Only this thread polls. Sockets are registered once, edge-triggered, for both
//!   readable and writable; after an event we read (or accept) until `WouldBlock`,
//!   because the next edge only comes with new data.
//! * `Interrupted` is retried; spurious events are harmless (a read that finds nothing
//!   gets `WouldBlock`), which is also why an event for a slot that was reused in the
//!   same batch does no harm. Reactor commands carry the session id, so a stale one
//!   for a reused slot is ignored.
//! * One [`Waker`] per `Poll`, token [`WAKER`]; the listener is [`LISTENER`].
//! * Nothing here blocks on a client, and no lock is held across I/O. The reactor
//!   waits for the workers in one place only, and boundedly: after a round, while
//!   more than [`Staged::BACKLOG_LOW`] sessions are queued (every worker busy), it
//!   waits up to [`Staged::BACKLOG_WAIT`] for them to be taken before polling again
//!   ([`Staged::wait_while_backlogged`]), since what it would read meanwhile could
//!   only queue behind.
//! * Sessions made ready in one poll round are handed to the workers together at the
//!   round's end (or 32 at a time: [`Staged`]), so that a round's chats are handled
//!   in one run and each recipient's share of them leaves in one `write`. When a
//!   worker sleeps with nothing queued, the reactor runs the round's sessions itself,
//!   with a worker's job of its own and for at most [`Staged::RUN_OWN_BUDGET`]
//!   ([`Staged::end_round`]): waking the worker would cost more than the work. It is
//!   the same job on the same queue discipline, so a session is still handled by one
//!   thread at a time, in arrival order.
//! * One connection failing (read error, reset, slow consumer) ends that connection
//!   only. Accept errors are logged and never end the loop.
//!
//! # Limits
//!
//! Past `--max-connections` (or `--max-connections-per-ip` for one address), a new
//! connection is accepted as *refused*: its first frame only tells its format, it is
//! told why in that format and closed; one that says nothing is closed after
//! [`crate::event_handler::REFUSAL_WAIT`], and past [`crate::admission::MAX_REFUSING`]
//! waiting, new ones are closed at once. Either way they neither wait in the backlog
//! nor make the listener spin, and they are counted. When the process is out of
//! descriptors (`EMFILE`), a descriptor kept in reserve (by [`Admission`]) is given up
//! to accept and close the connection cleanly; if even that fails, accepting waits
//! until a connection closes. The limits themselves are decided in `admission.rs`.
//!
//! About once a second ([`TICK`]) every connection's deadlines are checked (frame,
//! write and idle timeouts: `event_handler.rs`), a sixteenth of the connections every
//! sixteenth of a second ([`SCAN_SLICES`]): checking 19,000 at once held the reactor
//! for 1.4–3 ms, a stall every chat arriving then waited out. Freed heap is given
//! back to the system after a large drop. Throttled sessions (flood control) are
//! woken by a timer heap at the instant their wait ends.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chat_core::{Client, FloodLimits, texts};
use chat_proto::WireFormat;
use mio::event::Event;
use mio::net::TcpListener;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use socket2::SockRef;

use crate::admission::ForwardedClients;
use crate::admission::{Admission, Refusal, Ticket};
use crate::budget::MemoryBudget;
use crate::config::ServerConfig;
use crate::config::WebPolicy;
use crate::event_handler::{Deadlines, EventHandler, Expired, Handoff, Next};
use crate::log_limit::{SharedLimit, Verdict};
use crate::metrics::{Metrics, bump};
use crate::pool::{Consumer, Staged, lock};
use crate::session::{Link, Session};
use crate::shutdown::Shutdown;
use crate::tls::TlsAcceptor;
use crate::web::WebSide;

/// The listening socket's token.
pub(crate) const LISTENER: Token = Token(0);
/// The waker's token.
pub(crate) const WAKER: Token = Token(1);
/// The web listener's token (`--web`).
pub(crate) const WEB_LISTENER: Token = Token(2);
/// The chat protocol's TLS listener's token (`--tls-port`).
pub(crate) const TLS_LISTENER: Token = Token(3);
/// Connection slot `i` has token `FIRST_CONNECTION + i`.
const FIRST_CONNECTION: usize = 4;

/// The listening sockets, each registered under its token.
#[derive(Debug)]
pub(crate) struct Listeners {
    /// The chat protocol, plain ([`LISTENER`]).
    pub(crate) chat: TcpListener,
    /// The web client ([`WEB_LISTENER`]); over TLS when the server has a certificate.
    pub(crate) web: Option<TcpListener>,
    /// The chat protocol over TLS ([`TLS_LISTENER`]).
    pub(crate) tls: Option<TcpListener>,
}

/// Which listener a connection came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entrance {
    Chat,
    Web,
    ChatTls,
}

/// Bytes read from a socket at a time.
const READ_CHUNK: usize = 64 * 1024;
/// How long an ended session may take to flush its last messages and hear the
/// peer's EOF.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// How often closing connections are re-checked.
const CLOSE_TICK: Duration = Duration::from_millis(50);
/// How often each connection's deadlines are checked.
const TICK: Duration = Duration::from_secs(1);
/// The deadline scan is spread over this many steps of `TICK / SCAN_SLICES`, each
/// checking that share of the connections, so no step holds the reactor long.
const SCAN_SLICES: u32 = 16;
/// Heap given back to the system after client data dropped by this much.
const TRIM_STEP: usize = 32 << 20;

/// What workers ask of the reactor. Each names the slot and the session id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReactorCommand {
    /// The session's inbox was drained: read its socket again.
    Resume(Token, u64),
    /// The session ended: flush, then close the connection.
    Close(Token, u64),
    /// The session is over its flood limit: queue it again at this instant.
    WakeAt(Token, u64, Instant),
}

/// The workers' way to reach the reactor: a list of requests and the waker.
#[derive(Debug)]
pub(crate) struct ReactorHandle {
    commands: Mutex<Vec<ReactorCommand>>,
    waker: Arc<Waker>,
}

impl ReactorHandle {
    /// A handle that wakes the reactor's poll through `waker`.
    pub(crate) fn new(waker: Arc<Waker>) -> Self {
        Self {
            commands: Mutex::new(Vec::new()),
            waker,
        }
    }

    /// Queues a command. Wakes the reactor only if no command was already waiting
    /// (one wakeup serves them all).
    pub(crate) fn send(&self, command: ReactorCommand) {
        let mut commands = lock(&self.commands);
        let wake = commands.is_empty();
        commands.push(command);
        drop(commands);
        if wake && let Err(e) = self.waker.wake() {
            tracing::error!("could not wake the reactor: {e}");
        }
    }

    fn take(&self, into: &mut Vec<ReactorCommand>) {
        std::mem::swap(&mut *lock(&self.commands), into);
    }
}

/// What the reactor shares with other threads: the narrow handles it was given.
#[derive(Debug)]
pub(crate) struct ReactorHandles {
    /// The work queue it feeds, through a batch of sessions made ready in one poll
    /// round (see [`Staged`]).
    pub(crate) queue: Staged<Arc<Session>>,
    /// The counters it bumps.
    pub(crate) metrics: Arc<Metrics>,
    /// Where workers' requests arrive.
    pub(crate) inbox: Arc<ReactorHandle>,
    /// The flag that ends [`Reactor::run`].
    pub(crate) shutdown: Arc<Shutdown>,
    /// What client data the server holds.
    pub(crate) budget: Arc<MemoryBudget>,
    /// The reactor's own worker job, for a light round ([`Staged::end_round`]).
    pub(crate) own_worker: Box<dyn Consumer<Arc<Session>>>,
}

/// What the reactor holds a connection to, from the config.
#[derive(Debug, Clone)]
struct Limits {
    /// Format forced by the config, or `None` to detect per connection.
    format: Option<WireFormat>,
    outbound_cap: usize,
    flood_control: Option<FloodLimits>,
    send_buffer: usize,
    deadlines: Deadlines,
}

impl ReactorHandles {
    /// The handles an [`EventHandler`] hands what it reads to (borrowing only these
    /// fields, so the reactor's connections stay free to borrow).
    fn handoff(&self) -> Handoff<'_> {
        Handoff {
            queue: &self.queue,
            metrics: &self.metrics,
        }
    }
}

/// The reactor's state; see the module doc.
pub(crate) struct Reactor {
    poll: Poll,
    listener: Option<TcpListener>,
    /// The web port's listener (registered as [`WEB_LISTENER`]) and who may open its
    /// WebSocket.
    web_listener: Option<TcpListener>,
    web_policy: Arc<WebPolicy>,
    /// The web clients trusted proxies name, counted per address.
    forwarded_clients: Arc<ForwardedClients>,
    /// The chat protocol's TLS listener, and the certificate every TLS connection
    /// (there and on the web port) is offered.
    tls_listener: Option<TcpListener>,
    tls: Option<Arc<TlsAcceptor>>,
    handles: ReactorHandles,
    connections: Vec<Option<EventHandler>>,
    free_slots: Vec<usize>,
    /// Slots of connections that are closing.
    closing: Vec<Token>,
    next_session_id: u64,
    scratch: Vec<u8>,
    limits: Limits,
    /// Which connections are served or refused, and the counts that decide it.
    admission: Admission,
    /// Throttled sessions to wake: (when, token, session id), soonest first.
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    /// When the next slice of the deadline scan is due.
    next_tick: Instant,
    /// The first slot the next slice of the deadline scan checks.
    scan_cursor: usize,
    /// Budget use when memory was last returned to the system, or the peak since.
    trim_mark: usize,
    /// Accepting stopped on an error; retry when a connection closes.
    accept_stalled: bool,
    /// The budget for "connection opened/closed" lines (a connection flood must not
    /// flood the log).
    connection_lines: SharedLimit,
}

impl Reactor {
    /// A reactor over `poll`, with `listeners` already registered under their tokens.
    pub(crate) fn new(
        poll: Poll,
        listeners: Listeners,
        handles: ReactorHandles,
        config: &ServerConfig,
    ) -> Self {
        Self {
            poll,
            listener: Some(listeners.chat),
            web_listener: listeners.web,
            web_policy: Arc::new(config.web_policy.clone()),
            forwarded_clients: ForwardedClients::new(config),
            tls_listener: listeners.tls,
            tls: config.tls.clone(),
            handles,
            connections: Vec::new(),
            free_slots: Vec::new(),
            closing: Vec::new(),
            next_session_id: 1,
            scratch: vec![0; READ_CHUNK],
            limits: Limits {
                format: config.format.forced(),
                outbound_cap: config.outbound_cap,
                flood_control: config.flood_control,
                send_buffer: config.send_buffer,
                deadlines: Deadlines {
                    frame: config.frame_timeout,
                    write: config.write_timeout,
                    idle: config.idle_timeout,
                },
            },
            admission: Admission::new(config),
            timers: BinaryHeap::new(),
            next_tick: Instant::now() + TICK / SCAN_SLICES,
            scan_cursor: 0,
            trim_mark: 0,
            accept_stalled: false,
            connection_lines: SharedLimit::default(),
        }
    }

    /// Serves until a shutdown is requested.
    pub(crate) fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut commands = Vec::new();
        while !self.handles.shutdown.is_requested() {
            let now = Instant::now();
            let mut timeout = self.next_tick.saturating_duration_since(now);
            if !self.closing.is_empty() {
                timeout = timeout.min(CLOSE_TICK);
            }
            if let Some(Reverse((at, ..))) = self.timers.peek() {
                timeout = timeout.min(at.saturating_duration_since(now));
            }
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(Entrance::Chat),
                    WEB_LISTENER => self.accept(Entrance::Web),
                    TLS_LISTENER => self.accept(Entrance::ChatTls),
                    WAKER => {}
                    token => self.connection_event(token, event),
                }
            }
            self.handles.inbox.take(&mut commands);
            for command in commands.drain(..) {
                self.run_command(command);
            }
            self.tick_closing();
            self.wake_due();
            self.tick();
            // The round is over: hand the workers what it made ready, together, or
            // run it here if a worker would have to be woken for it.
            self.handles
                .queue
                .end_round(self.handles.own_worker.as_mut());
            // While the workers have a backlog, reading more now would only queue it
            // behind; let the events gather instead of waking for each few.
            if self.handles.queue.wait_while_backlogged() {
                bump(&self.handles.metrics.reactor_backlog_waits);
            }
        }
        Ok(())
    }

    /// Queues the throttled sessions whose wait is over.
    fn wake_due(&mut self) {
        let now = Instant::now();
        while let Some(&Reverse((at, token, id))) = self.timers.peek() {
            if at > now {
                return;
            }
            self.timers.pop();
            let Some(connection) = Self::slot_of(Token(token))
                .and_then(|slot| self.connections.get(slot))
                .and_then(Option::as_ref)
            else {
                continue;
            };
            if connection.session.id == id && connection.session.wake() {
                self.handles.queue.push(Arc::clone(&connection.session));
            }
        }
    }

    /// At shutdown, before the workers drain: sessions held for their output backlog
    /// are queued again, so that every frame already read is handled.
    pub(crate) fn release_held(&mut self) {
        for connection in self.connections.iter().flatten() {
            if connection.session.force_release() {
                self.handles.queue.push(Arc::clone(&connection.session));
            }
        }
        self.handles.queue.push_staged();
    }

    /// Stops accepting: the listening socket is closed.
    pub(crate) fn stop_accepting(&mut self) {
        for mut listener in [
            self.listener.take(),
            self.web_listener.take(),
            self.tls_listener.take(),
        ]
        .into_iter()
        .flatten()
        {
            let _ = self.poll.registry().deregister(&mut listener);
        }
    }

    /// The last step of a shutdown, after the workers are joined: flush what can be
    /// flushed within `grace`, then close every connection.
    pub(crate) fn close_all(&mut self, grace: Duration) {
        for connection in self.connections.iter().flatten() {
            // Said before the close, and flushed with the rest below.
            connection.queue_shutdown_notice();
            connection.session.note_end("server shutting down");
        }
        let deadline = Instant::now() + grace;
        let mut events = Events::with_capacity(1024);
        loop {
            let mut pending = 0;
            for connection in self.connections.iter().flatten() {
                if connection.session.flush() == crate::outbound::Flush::Blocked {
                    pending += 1;
                }
            }
            let now = Instant::now();
            if pending == 0 || now >= deadline {
                if pending > 0 {
                    tracing::warn!(connections = pending, "closing with output still unsent");
                }
                break;
            }
            // Only to sleep until some socket is writable again (or the deadline).
            let _ = self.poll.poll(&mut events, Some(deadline - now));
        }
        for slot in 0..self.connections.len() {
            if let Some(connection) = self.connections[slot].as_mut() {
                connection.discard_input(&mut self.scratch);
            }
            self.drop_connection(slot);
        }
    }

    /// Connections currently open (for logs and tests).
    pub(crate) fn connection_count(&self) -> usize {
        self.connections.iter().flatten().count()
    }

    /// The listener of `entrance`, if it is open.
    fn listener(&self, entrance: Entrance) -> Option<&TcpListener> {
        match entrance {
            Entrance::Chat => self.listener.as_ref(),
            Entrance::Web => self.web_listener.as_ref(),
            Entrance::ChatTls => self.tls_listener.as_ref(),
        }
    }

    /// Accepts what waits on the listener of `entrance`.
    fn accept(&mut self, entrance: Entrance) {
        let web = entrance == Entrance::Web;
        self.accept_stalled = false;
        loop {
            let Some(listener) = self.listener(entrance) else {
                return;
            };
            match listener.accept() {
                Ok((socket, peer)) => match self.admission.admit(peer.ip()) {
                    Ok(ticket) => self.add_connection(socket, peer, Ok(ticket), entrance),
                    Err(why) => {
                        self.refuse(why, peer);
                        // A browser is not told in the chat's words; it sees the
                        // connection closed at once.
                        if self.admission.may_hold_refused() && !web {
                            // Told why once its first frame shows its format.
                            self.add_connection(socket, peer, Err(why), entrance);
                        }
                        // Else closed at once, unheard: too many are waiting already.
                    }
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    // accept() fails this way whenever the descriptor table is full,
                    // whether or not a connection waits. Give up the reserve
                    // descriptor to find out: a waiting connection is taken off the
                    // backlog and closed (else it would sit there, and the listener
                    // would never report readiness again); none waiting ends the loop.
                    if !self.admission.spend_reserve() {
                        tracing::warn!("accept failed: {e}; waiting for a connection to close");
                        self.accept_stalled = true;
                        return;
                    }
                    let taken = match self.listener(entrance).map(TcpListener::accept) {
                        // Closed before the reserve is taken back: it needs the slot.
                        Some(Ok((socket, peer))) => {
                            drop(socket);
                            Ok(peer)
                        }
                        Some(Err(e)) => Err(Some(e)),
                        None => Err(None),
                    };
                    self.admission.restore_reserve();
                    match taken {
                        Ok(peer) => self.refuse(Refusal::NoDescriptors, peer),
                        Err(Some(e)) if e.kind() != io::ErrorKind::WouldBlock => {
                            tracing::warn!("accept failed: {e}; waiting for a connection to close");
                            self.accept_stalled = true;
                            return;
                        }
                        Err(_) => return,
                    }
                }
                Err(e) => {
                    // Out of memory or similar: retry when a connection closes.
                    tracing::warn!("accept failed: {e}");
                    self.accept_stalled = true;
                    return;
                }
            }
        }
    }

    /// Sets up an accepted connection: served with the `Ok` admission's ticket, or
    /// held with `Err` to be told why it is refused. Counted in [`Admission`] only
    /// once it is registered (else the socket is just closed).
    fn add_connection(
        &mut self,
        mut socket: mio::net::TcpStream,
        peer: SocketAddr,
        admitted: Result<Ticket, Refusal>,
        entrance: Entrance,
    ) {
        let web = entrance == Entrance::Web;
        // Web connections are TLS whenever the server has a certificate.
        let tls = match (&self.tls, entrance) {
            (Some(acceptor), Entrance::Web | Entrance::ChatTls) => {
                match acceptor.accept(Arc::clone(&self.handles.budget)) {
                    Ok(tls) => Some(tls),
                    Err(e) => {
                        tracing::warn!(%peer, "could not start TLS: {e}");
                        return;
                    }
                }
            }
            _ => None,
        };
        // We coalesce writes ourselves; Nagle would only add latency.
        if let Err(e) = socket.set_nodelay(true) {
            tracing::debug!(%peer, "could not set TCP_NODELAY: {e}");
        }
        if self.limits.send_buffer > 0
            && let Err(e) = SockRef::from(&socket).set_send_buffer_size(self.limits.send_buffer)
        {
            tracing::debug!(%peer, "could not set SO_SNDBUF: {e}");
        }
        let slot = self.free_slots.pop().unwrap_or_else(|| {
            self.connections.push(None);
            self.connections.len() - 1
        });
        let token = Token(FIRST_CONNECTION + slot);
        if let Err(e) = self.poll.registry().register(
            &mut socket,
            token,
            Interest::READABLE | Interest::WRITABLE,
        ) {
            tracing::warn!(%peer, "could not register a connection: {e}");
            self.free_slots.push(slot);
            return;
        }
        let id = self.next_session_id;
        self.next_session_id += 1;
        let name = texts::default_name(peer.ip(), peer.port());
        // A web client speaks JSON, whatever the chat port's `--format`.
        let format = if web {
            Some(WireFormat::Json)
        } else {
            self.limits.format
        };
        let client = match admitted {
            Ok(_) => {
                let client = Client::new(id, name, format);
                match self.limits.flood_control {
                    Some(limits) => client.with_flood_limits(limits, Instant::now()),
                    None => client,
                }
            }
            Err(why) => Client::refused(id, name, self.limits.format, why.as_core()),
        };
        let session = Session::new(
            token,
            socket,
            peer,
            client,
            self.limits.outbound_cap,
            Arc::clone(&self.handles.budget),
            Link { web, tls },
        );
        let refused_at = admitted.is_err().then(Instant::now);
        self.connections[slot] = Some(EventHandler::new(
            Arc::new(session),
            Arc::clone(&self.handles.budget),
            refused_at,
            web.then(|| {
                WebSide::new(
                    Arc::clone(&self.web_policy),
                    Arc::clone(&self.forwarded_clients),
                )
            }),
        ));
        let ticket = match admitted {
            Ok(ticket) => ticket,
            Err(_) => {
                self.admission.holding_refused();
                tracing::debug!(session = id, %peer, "connected, to be refused");
                return;
            }
        };
        if let Verdict::Log { suppressed } = self.connection_lines.check(Instant::now()) {
            tracing::info!(session = id, %peer, suppressed = crate::log_limit::shown(suppressed), "connection opened");
        }
        self.admission.opened(ticket);
        bump(&self.handles.metrics.accepted);
    }

    /// Counts a refusal and logs it, at most once per a few seconds (the line says
    /// how many since the last one).
    fn refuse(&mut self, why: Refusal, peer: SocketAddr) {
        self.handles.metrics.refused(why);
        if let Some(refused) = self.admission.note_refusal(Instant::now()) {
            tracing::warn!(
                %peer,
                refused,
                open = self.admission.open(),
                "refusing connections ({why:?})"
            );
        }
    }

    /// Every `TICK / SCAN_SLICES`: cut the connections of the next slice that are past
    /// a deadline (so each is checked about once a `TICK`), and give memory back to
    /// the system after a large drop in what clients make the server hold.
    fn tick(&mut self) {
        let now = Instant::now();
        if now < self.next_tick {
            return;
        }
        self.next_tick = now + TICK / SCAN_SLICES;
        let slots = scan_slice(&mut self.scan_cursor, self.connections.len());
        let handoff = self.handles.handoff();
        let deadlines = self.limits.deadlines;
        for connection in self.connections[slots].iter_mut().flatten() {
            let Some(expired) = connection.expired(now, &deadlines) else {
                continue;
            };
            let session = &connection.session;
            let metrics = &self.handles.metrics;
            match expired {
                Expired::Idle => {
                    session.note_end("idle timeout");
                    tracing::info!(session = session.id, peer = %session.peer, "idle too long, disconnecting");
                    bump(&metrics.idle_disconnects);
                    session.abort();
                }
                Expired::Frame => {
                    session.note_end("frame timeout");
                    tracing::info!(session = session.id, peer = %session.peer, "a frame took too long to arrive, disconnecting");
                    bump(&metrics.frame_timeout_disconnects);
                    session.cut();
                }
                Expired::Write => {
                    session.note_end("write timeout");
                    tracing::warn!(session = session.id, peer = %session.peer, "slow consumer: took no output for the write timeout, disconnecting");
                    bump(&metrics.write_timeout_disconnects);
                    session.cut();
                }
                Expired::Refusal => {
                    tracing::debug!(session = session.id, peer = %session.peer, "refused connection said nothing; closing");
                    session.cut();
                }
            }
            // The shut-down socket reads as end-of-stream right away.
            connection.on_readable(&mut self.scratch, handoff, true);
            connection.wake_if_released(handoff);
        }
        self.return_memory();
    }

    /// Gives freed heap back to the system once what clients make the server hold has
    /// dropped by [`TRIM_STEP`] since the peak: glibc's allocator keeps freed memory
    /// otherwise, so a server that once held a flood would stay that large.
    fn return_memory(&mut self) {
        let used = self.handles.budget.used();
        self.trim_mark = self.trim_mark.max(used);
        if self.trim_mark - used < TRIM_STEP {
            return;
        }
        self.trim_mark = used;
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only walks the allocator's own free lists.
        unsafe {
            libc::malloc_trim(0);
        }
    }

    fn slot_of(token: Token) -> Option<usize> {
        token.0.checked_sub(FIRST_CONNECTION)
    }

    fn connection_event(&mut self, token: Token, event: &Event) {
        let handoff = self.handles.handoff();
        let Some(slot) = Self::slot_of(token) else {
            return;
        };
        let Some(connection) = self.connections.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let mut next = Next::Keep;
        if event.is_writable() {
            next = connection.on_writable(handoff);
        }
        let hung_up = event.is_read_closed() || event.is_error();
        if next == Next::Keep && (event.is_readable() || hung_up) {
            next = connection.on_readable(&mut self.scratch, handoff, hung_up);
        }
        if next == Next::Drop {
            self.drop_connection(slot);
        }
    }

    fn run_command(&mut self, command: ReactorCommand) {
        if let ReactorCommand::WakeAt(token, id, at) = command {
            self.timers.push(Reverse((at, token.0, id)));
            return;
        }
        let handoff = self.handles.handoff();
        let (ReactorCommand::Resume(token, id)
        | ReactorCommand::Close(token, id)
        | ReactorCommand::WakeAt(token, id, _)) = command;
        let Some(slot) = Self::slot_of(token) else {
            return;
        };
        let Some(connection) = self.connections.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if connection.session.id != id {
            return;
        }
        let next = match command {
            ReactorCommand::Resume(..) => connection.resume(&mut self.scratch, handoff),
            ReactorCommand::WakeAt(..) => Next::Keep,
            ReactorCommand::Close(..) => {
                self.closing.push(token);
                connection.start_closing(Instant::now() + CLOSE_GRACE, &mut self.scratch, handoff)
            }
        };
        if next == Next::Drop {
            self.drop_connection(slot);
        }
    }

    /// Retries flushing closing connections and drops those done or overdue.
    fn tick_closing(&mut self) {
        if self.closing.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut closing = std::mem::take(&mut self.closing);
        closing.retain(|&token| {
            let Some(slot) = Self::slot_of(token) else {
                return false;
            };
            let Some(connection) = self.connections.get_mut(slot).and_then(Option::as_mut) else {
                return false;
            };
            if !connection.is_closing() {
                return false;
            }
            if connection.overdue(now) {
                // What is still unsent goes with a reset, so the kernel frees it now.
                connection.session.set_abortive_close();
                self.drop_connection(slot);
                return false;
            }
            let handoff = self.handles.handoff();
            if connection.on_writable(handoff) == Next::Drop {
                self.drop_connection(slot);
                return false;
            }
            true
        });
        self.closing = closing;
    }

    fn drop_connection(&mut self, slot: usize) {
        let Some(connection) = self.connections.get_mut(slot).and_then(Option::take) else {
            return;
        };
        let session = Arc::clone(&connection.session);
        let fd = session.socket().as_raw_fd();
        if let Err(e) = self.poll.registry().deregister(&mut SourceFd(&fd)) {
            tracing::debug!(session = session.id, "deregister failed: {e}");
        }
        // Other threads may hold the session a moment longer; the peer must see the
        // end now, not when the last reference goes.
        session.abort();
        self.free_slots.push(slot);
        if connection.refused {
            self.admission.refused_closed();
        } else {
            self.admission.closed(session.peer.ip());
            bump(&self.handles.metrics.closed);
            let name = session.try_name().unwrap_or_default();
            let reason = session.end_reason();
            if let Verdict::Log { suppressed } = self.connection_lines.check(Instant::now()) {
                tracing::info!(session = session.id, peer = %session.shown_peer(), name, reason, suppressed = crate::log_limit::shown(suppressed), "connection closed");
            }
        }
        if self.accept_stalled {
            self.accept(Entrance::Chat);
            self.accept(Entrance::Web);
            self.accept(Entrance::ChatTls);
        }
    }
}

/// The slots of `len` the next step of the deadline scan checks, moving `cursor`
/// past them: a `SCAN_SLICES`th of them (rounded up) after the last step's, and back
/// to the first after the last slot, so every slot is checked at least once in
/// `SCAN_SLICES` steps however many there are (a small table more often).
fn scan_slice(cursor: &mut usize, len: usize) -> std::ops::Range<usize> {
    if *cursor >= len {
        *cursor = 0;
    }
    let start = *cursor;
    let end = len.min(start + len.div_ceil(SCAN_SLICES as usize));
    *cursor = end;
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_slot_is_scanned_in_a_tick() {
        for len in [0, 1, 5, 15, 16, 17, 100, 19_000, 19_001] {
            let mut cursor = 0;
            let mut seen = vec![0u32; len];
            for _ in 0..SCAN_SLICES {
                for slot in scan_slice(&mut cursor, len) {
                    seen[slot] += 1;
                }
            }
            assert!(seen.iter().all(|&n| n >= 1), "len {len}: {seen:?}");
            if len % 16 == 0 {
                assert!(seen.iter().all(|&n| n == 1), "len {len}: {seen:?}");
            }
            // No step holds more than its share.
            assert!(scan_slice(&mut cursor, len).len() <= len.div_ceil(16));
        }
    }

    #[test]
    fn the_scan_follows_a_growing_table() {
        let mut cursor = 0;
        assert_eq!(scan_slice(&mut cursor, 32), 0..2);
        // Grown to 320 slots: the next step goes on where the last one ended.
        assert_eq!(scan_slice(&mut cursor, 320), 2..22);
        // Shrunk below the cursor: back to the start.
        assert_eq!(scan_slice(&mut cursor, 10), 0..1);
    }
}
