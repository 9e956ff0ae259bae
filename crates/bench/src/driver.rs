//! The event loop and the phases of a benchmark: set up, run, settle.
//!
//! One thread, one `mio::Poll`, every connection on it (no thread per connection):
//! on a 2-core machine shared with the server, a second busy thread would mostly take
//! CPU from the server being measured. The bench reports its own CPU use and send lag
//! so a reader can tell when it was the limit.
//!
//! # Phases
//!
//! 1. **Setup** ([`Driver::setup`]). Each room's first client connects, renames itself
//!    (short names keep the `/rooms` list small) and creates the room with a title
//!    unique to this bench invocation. One client then asks `/rooms` and finds the ids
//!    of those titles (the server may hold other rooms; nothing assumes it is empty).
//!    Then the other clients connect, rename and `/join`. At most
//!    `--connect-concurrency` clients are connecting or waiting for their reply at any
//!    time, so the server's listen backlog never overflows (an overflow drops SYNs and
//!    costs a one-second retransmit each). Setup fails fast, naming the client and the
//!    reason, if any client cannot connect, is disconnected or gets an unexpected
//!    answer. Setup ends when every `[NAME] 님이 입장했습니다.` notice has arrived too
//!    (a room of K sends K(K−1)/2 of them): in a room of 1,000 that is half a million
//!    messages, which must not spill into the measured run. With
//!    `--registered-rooms` one extra connection, the rooms' owner, first registers an
//!    account and creates every room under it, learning each id from the server's
//!    registered notice, and leaves it (a registered room stays when empty); then
//!    every member joins, none creates, and no `/rooms` lookup is needed (see
//!    `driver/owner.rs` and [`crate::owner`]).
//! 2. **Run** ([`Driver::run_step`]). Chats leave on the open-loop [`Schedule`]: every
//!    chat whose intended time has come is queued, then each connection with queued
//!    bytes is flushed once (coalescing). A `timerfd` wakes the loop for the next
//!    chat; sends are also pumped between events, so a burst of receives cannot
//!    hold them back. Every receipt goes to the [`Tracker`] and, when it is a
//!    first delivery, into the latency histogram (intended time → receipt). After
//!    the last send the run waits up to `--drain` for what is still in flight, ending
//!    early once everything expected has arrived.
//! 3. **Settle** ([`Driver::settle`]). Between find-max steps: wait until nothing has
//!    arrived for a while, so one overloaded step does not spill into the next.
//!
//! # The reactor's rules (from mio's `Poll` docs)
//! After a readiness event, read or write until `WouldBlock` ([`Conn`] does);
//! `Interrupted` is retried; spurious events are harmless (every handler checks the
//! state it acts on). Tokens are client indices; `TIMER` is the timer.
//!
//! Nothing the server sends can panic the bench: bad frames, unknown messages and
//! closed connections are counted, sampled and reported.
//!
//! # Hostile and slow populations
//! Optional extra connections (`--idle-rooms`, `--rooms-flooders`, the flood room,
//! `--slowloris`) have tokens after the measured clients ([`Populations`]). They are
//! set up after the measured rooms, act during the run, and never count in the
//! measured figures or in `errors`; their own figures go to
//! [`crate::report::HostileReport`]. See `driver/hostile.rs`.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chat_proto::codec::{DecodeError, WireFormat};
use chat_proto::{Request, Response};
use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::BenchError;
use crate::conn::{Conn, ReadEnd};
use crate::hostile::{HostilePlan, Populations, Role};
use crate::payload::{self, Stamp};
use crate::procstat::{self, Pid};
use crate::report::{ErrorReport, Percentiles, RegisteredRoomsReport, StepReport};
use crate::schedule::{Layout, Schedule};
use crate::timer::Timer;
use crate::tls::TlsPlan;
use crate::tracker::{Outcome, Tracker};

mod hostile;
use hostile::HostileState;
mod owner;
use owner::{OWNER, OwnerConn};

/// The timer's token; client tokens are client indices, far below it.
const TIMER: Token = Token(usize::MAX - 1);
/// Events taken per poll.
const EVENT_CAPACITY: usize = 1024;
/// The longest setup waits for join notices after the last join reply (within
/// `--setup-timeout`); if they do not all come (a server that sends fewer), the run
/// starts anyway and says so.
const NOTICE_WAIT: Duration = Duration::from_secs(30);
/// One receive buffer for all connections.
/// (64 KiB: one read's worth of messages is handled before sends are pumped again.)
const SCRATCH_LEN: usize = 64 * 1024;
/// The longest the loop sleeps without checking its deadlines.
const MAX_WAIT: Duration = Duration::from_millis(100);
/// Once everything expected has arrived, the run still listens this long after the
/// last chat, so that a duplicate sent right behind its original is counted.
const GRACE: Duration = Duration::from_millis(50);
/// How many problem descriptions the report keeps.
const MAX_SAMPLES: usize = 10;
/// A `/rooms` list may come as several messages (`docs/PROTOCOL.md` §6.5): once one
/// has arrived, the list counts as complete when nothing more came for this long.
const LIST_QUIET: Duration = Duration::from_secs(1);

/// What the driver needs to know, fixed for its lifetime.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The servers to connect to (never empty): client `c` uses `addrs[c % len]`.
    pub addrs: Vec<SocketAddr>,
    /// The addresses are web ports: clients speak JSON over WebSocket.
    pub web: bool,
    /// Prefixes every client's name (`--name-tag`).
    pub name_tag: String,
    /// The wire format every client speaks.
    pub format: WireFormat,
    /// How many rooms, and clients per room.
    pub layout: Layout,
    /// Padding bytes after each chat's stamp (`--pad`).
    pub pad: usize,
    /// At most this many clients connecting or joining at once.
    pub connect_concurrency: usize,
    /// How long connecting and joining every client may take.
    pub setup_timeout: Duration,
    /// How long a run listens after its last send before counting the rest lost.
    pub drain: Duration,
    /// The server process, whose CPU time each run reports.
    pub server_pid: Option<u32>,
    /// Other processes whose CPU time each run reports (`--also-pid`).
    pub also_pids: Vec<u32>,
    /// The hostile and slow populations (none by default).
    pub hostile: HostilePlan,
    /// `--tls`: every measured connection speaks TLS (none by default).
    pub tls: Option<TlsPlan>,
    /// `--protocol=irc|nats`: a peer's protocol instead of ours (see [`crate::peer`]).
    pub peer: Option<crate::peer::Protocol>,
    /// `--quickack`: `TCP_QUICKACK` after every read.
    pub quickack: bool,
    /// `--registered-rooms`: the measured rooms are made by one account's owner
    /// connection and registered to it; every member joins (see [`crate::owner`]).
    pub registered_rooms: bool,
}

/// Where a client is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Client {
    /// Not started yet.
    Idle,
    /// `connect` issued, not yet established.
    Connecting,
    /// Name and `/create` or `/join` sent; waiting for exactly this system message.
    Joining { want: String },
    /// In its room.
    Ready,
    /// Its connection is gone.
    Dead,
}

/// The state of a run in progress.
struct RunState {
    schedule: Schedule,
    tracker: Tracker,
    /// Bench-epoch nanoseconds of the run's chat 0.
    start_ns: u64,
    /// The next chat of the schedule to send.
    next: u64,
    /// Reused for every chat, so sending allocates nothing.
    request: Request,
    latency: Histogram<u64>,
    send_lag: Histogram<u64>,
    last_delivery_ns: u64,
    /// When the last bench chat of any kind arrived.
    last_chat_ns: u64,
    skipped: u64,
    bad_padding: u64,
    unexpected: u64,
}

/// The event loop and everything it owns.
pub struct Driver {
    plan: Plan,
    poll: Poll,
    events: Events,
    timer: Timer,
    /// Every time stamp is nanoseconds since this instant.
    epoch: Instant,
    conns: Vec<Option<Conn>>,
    clients: Vec<Client>,
    /// Clients connecting or waiting for their setup reply.
    in_flight: usize,
    /// Which population each connection belongs to.
    pops: Populations,
    /// Per room: its unique title, and its id once known.
    titles: Vec<String>,
    room_ids: Vec<Option<i64>>,
    /// Set while waiting for a `/rooms` answer; filled as it arrives.
    awaiting_rooms: Option<RoomsLookup>,
    /// After a lookup: the asker, whose further `SCRoomsResult` messages (the rest of
    /// a long list) are not unexpected. Cleared when a run starts.
    trailing_rooms_from: Option<usize>,
    /// Per measured client: bench-epoch nanoseconds when its `connect()` started.
    connect_started_ns: Vec<u64>,
    /// Per measured client: `connect()` → its `/create` or `/join` reply, ns.
    connect_to_joined: Histogram<u64>,
    /// The hostile and slow populations' state (`None` when there are none).
    hostile: Option<Box<HostileState>>,
    /// `--registered-rooms`: the rooms' owner while it sets them up.
    owner: Option<Box<OwnerConn>>,
    /// `--registered-rooms`: what the owner did, once it is done.
    registered: Option<RegisteredRoomsReport>,
    /// Part of every room title (and of the owner's name): unique to this invocation.
    nonce: String,
    /// Connections with queued bytes since the last flush, without repeats.
    dirty: Vec<usize>,
    is_dirty: Vec<bool>,
    scratch: Vec<u8>,
    run: Option<RunState>,
    /// The first setup failure, which ends setup.
    setup_failure: Option<String>,
    /// In [`Driver::setup`]: losing any client, even one already in its room, fails it.
    setting_up: bool,
    /// `[NAME] 님이 입장했습니다.` notices received.
    join_notices: u64,
    /// When the last message of any kind arrived (for settling).
    last_receipt: Instant,
    errors: ErrorReport,
}

/// Why a `/rooms` lookup failed.
#[derive(Debug)]
enum LookupError {
    /// The list was complete and lacked `missing` of the titles; it had `listed` rooms.
    Missing { missing: usize, listed: usize },
    /// Anything else.
    Other(BenchError),
}

impl From<BenchError> for LookupError {
    fn from(e: BenchError) -> Self {
        LookupError::Other(e)
    }
}

/// A `/rooms` request in flight: who asked, and what has come so far.
#[derive(Debug)]
struct RoomsLookup {
    asker: usize,
    rooms: Vec<chat_proto::RoomInfo>,
    /// `SCRoomsResult` messages received, and when the last one came.
    replies: usize,
    last_reply: Option<Instant>,
}

// By hand: the connection tables hold an entry per client (thousands) and the read
// buffer is 64 KiB, far too much to print, so this is a summary.
impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("plan", &self.plan)
            .field("alive", &self.alive())
            .field("in_flight", &self.in_flight)
            .field("room_ids", &self.room_ids)
            .field("running", &self.run.is_some())
            .field("setting_up", &self.setting_up)
            .field("setup_failure", &self.setup_failure)
            .field("join_notices", &self.join_notices)
            .field("errors", &self.errors)
            .finish_non_exhaustive()
    }
}

impl Driver {
    /// A driver with no connections yet.
    pub fn new(plan: Plan) -> Result<Self, BenchError> {
        let poll = Poll::new().map_err(|e| BenchError::Io("creating the poll".into(), e))?;
        let timer = Timer::new().map_err(|e| BenchError::Io("creating the timer".into(), e))?;
        timer
            .register(poll.registry(), TIMER)
            .map_err(|e| BenchError::Io("registering the timer".into(), e))?;
        let pops = plan.hostile.populations(plan.layout.clients());
        let n = pops.total();
        let nonce = title_nonce();
        let titles = (0..plan.layout.rooms)
            .map(|r| format!("{nonce}.{}", base36(r as u64)))
            .collect();
        let hostile = (pops.extra() > 0)
            .then(|| Box::new(HostileState::new(&plan.hostile, pops, &nonce, plan.format)));
        Ok(Self {
            poll,
            events: Events::with_capacity(EVENT_CAPACITY),
            timer,
            epoch: Instant::now(),
            conns: (0..n).map(|_| None).collect(),
            clients: vec![Client::Idle; n],
            in_flight: 0,
            titles,
            room_ids: vec![None; plan.layout.rooms],
            awaiting_rooms: None,
            trailing_rooms_from: None,
            connect_started_ns: vec![0; pops.measured],
            connect_to_joined: new_histogram(),
            hostile,
            owner: None,
            registered: None,
            nonce,
            pops,
            dirty: Vec::new(),
            is_dirty: vec![false; n],
            scratch: vec![0; SCRATCH_LEN],
            run: None,
            setup_failure: None,
            setting_up: false,
            join_notices: 0,
            last_receipt: Instant::now(),
            errors: ErrorReport::default(),
            plan,
        })
    }

    /// Problems seen so far.
    pub fn errors(&self) -> &ErrorReport {
        &self.errors
    }

    /// Measured clients whose connection is still up.
    pub fn alive(&self) -> usize {
        self.conns[..self.pops.measured]
            .iter()
            .filter(|c| c.is_some())
            .count()
    }

    /// Per measured client, from starting its `connect()` to its `/create` or
    /// `/join` reply (after [`Driver::setup`]).
    pub fn connect_to_joined(&self) -> Option<Percentiles> {
        percentiles(&self.connect_to_joined)
    }

    /// With `--registered-rooms`, after [`Driver::setup`]: the owner's account and
    /// how long it took to register the rooms.
    pub fn registered_rooms(&self) -> Option<&RegisteredRoomsReport> {
        self.registered.as_ref()
    }

    /// With `--tls`, after [`Driver::setup`]: the protocol version and cipher suite
    /// the first connected client negotiated.
    pub fn tls_session(&self) -> Option<(String, String)> {
        self.conns[..self.pops.measured]
            .iter()
            .flatten()
            .find_map(Conn::tls_session)
    }

    // ----- setup -------------------------------------------------------------

    /// Connects every client and puts it in its room.
    pub fn setup(&mut self) -> Result<(), BenchError> {
        self.setting_up = true;
        let result = self.set_up_all();
        self.setting_up = false;
        result
    }

    fn set_up_all(&mut self) -> Result<(), BenchError> {
        let deadline = Instant::now() + self.plan.setup_timeout;
        let layout = self.plan.layout;
        if self.plan.registered_rooms {
            // The owner creates and registers every room and leaves it (they stay,
            // empty, with known ids): then every member joins, none creates.
            self.register_rooms(deadline)?;
            let members: Vec<usize> = (0..layout.clients()).collect();
            self.start_clients(&members, deadline, "joining registered rooms")?;
            return self.wait_for_join_notices(deadline.min(Instant::now() + NOTICE_WAIT));
        }
        let creators: Vec<usize> = (0..layout.rooms).map(|r| r * layout.per_room).collect();
        self.start_clients(&creators, deadline, "creating rooms")?;
        if self.plan.peer.is_none() {
            // Peers' rooms are named, not numbered: every member joins by title.
            self.look_up_rooms(deadline)?;
        }
        let joiners: Vec<usize> = (0..layout.clients())
            .filter(|&c| layout.member_of(c) != 0)
            .collect();
        self.start_clients(&joiners, deadline, "joining rooms")?;
        self.wait_for_join_notices(deadline.min(Instant::now() + NOTICE_WAIT))
    }

    /// After [`Driver::setup`]: connects the hostile and slow populations, if any
    /// (within another `--setup-timeout`). Losing a measured client meanwhile still
    /// fails the setup.
    pub fn setup_hostile(&mut self) -> Result<(), BenchError> {
        self.setting_up = true;
        let result = self.set_up_hostile(Instant::now() + self.plan.setup_timeout);
        self.setting_up = false;
        result
    }

    /// Waits until every join notice has arrived (see the module docs).
    fn wait_for_join_notices(&mut self, deadline: Instant) -> Result<(), BenchError> {
        let k = self.plan.layout.per_room as u64;
        let expected = if self.plan.peer == Some(crate::peer::Protocol::Nats) {
            // NATS tells nobody about other subscribers: each client's own PONG
            // after its SUB already confirmed it is subscribed.
            0
        } else {
            self.plan.layout.rooms as u64 * k * (k - 1) / 2
        };
        loop {
            if let Some(failure) = self.setup_failure.take() {
                return Err(BenchError::Setup(failure));
            }
            if self.join_notices >= expected {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                let got = self.join_notices;
                self.sample(format!(
                    "setup: only {got} of {expected} join notices arrived; starting anyway"
                ));
                return Ok(());
            }
            self.poll_once((deadline - now).min(MAX_WAIT))?;
        }
    }

    /// Starts `ids` at the bounded concurrency and waits until all are in a room.
    fn start_clients(
        &mut self,
        ids: &[usize],
        deadline: Instant,
        what: &str,
    ) -> Result<(), BenchError> {
        let mut next = 0;
        loop {
            while next < ids.len() && self.in_flight < self.plan.connect_concurrency {
                self.connect(ids[next]);
                next += 1;
            }
            if let Some(failure) = self.setup_failure.take() {
                return Err(BenchError::Setup(failure));
            }
            if next == ids.len() && self.in_flight == 0 {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                let ready = ids
                    .iter()
                    .filter(|&&c| self.clients[c] == Client::Ready)
                    .count();
                return Err(BenchError::Setup(format!(
                    "timed out {what} after --setup-timeout={}s: {ready} of {} clients ready, \
                     {} connecting or waiting for the server's reply, {} not started",
                    self.plan.setup_timeout.as_secs_f64(),
                    ids.len(),
                    self.in_flight,
                    ids.len() - next
                )));
            }
            self.poll_once((deadline - now).min(MAX_WAIT))?;
        }
    }

    /// Issues a non-blocking connect for client `c`.
    fn connect(&mut self, c: usize) {
        if c < self.pops.measured {
            self.connect_started_ns[c] = self.now_ns();
        }
        let addr = self.plan.addrs[c % self.plan.addrs.len()];
        let mut conn = match self.open(addr, c as u32) {
            Ok(conn) => conn,
            Err(why) => return self.fail_setup(c, why),
        };
        if let Err(e) = self.poll.registry().register(
            &mut conn.stream,
            Token(c),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            return self.fail_setup(c, format!("cannot register the socket: {e}"));
        }
        self.conns[c] = Some(conn);
        self.clients[c] = Client::Connecting;
        self.in_flight += 1;
    }

    /// A non-blocking connection to `addr` speaking what every client speaks (the
    /// format, or the web's WebSocket, TLS, a peer's protocol); `seed` varies a web
    /// connection's masking keys. Not yet registered with the poll.
    fn open(&self, addr: SocketAddr, seed: u32) -> Result<Conn, String> {
        let stream = TcpStream::connect(addr).map_err(|e| format!("cannot connect: {e}"))?;
        // Without TCP_NODELAY, Nagle holds a small write back while an earlier one is
        // unacknowledged, and the server's delayed ACK makes that up to 200 ms: the
        // bench would measure its own stalls.
        stream
            .set_nodelay(true)
            .map_err(|e| format!("cannot set TCP_NODELAY: {e}"))?;
        let mut conn = if self.plan.web {
            Conn::new_web(stream, &addr.to_string(), seed, self.plan.tls.is_some())
        } else {
            Conn::new(stream, self.plan.format)
        };
        if let Some(protocol) = self.plan.peer {
            conn = conn.with_peer(protocol);
        }
        conn = conn.with_quickack(self.plan.quickack);
        if let Some(tls) = &self.plan.tls {
            // The handshake runs during setup: it is part of connect → joined.
            let session = tls
                .connect()
                .map_err(|e| format!("cannot start TLS: {e}"))?;
            conn = conn.with_tls(session);
        }
        Ok(conn)
    }

    /// A connect completed: rename, then create or join.
    fn on_connected(&mut self, c: usize) {
        if self.pops.role(c) != Role::Measured {
            return self.on_extra_connected(c);
        }
        let layout = self.plan.layout;
        let room = layout.room_of(c);
        let title = &self.titles[room];
        // Registered rooms exist already (the owner made them): every member joins.
        let creates =
            !self.plan.registered_rooms && (layout.member_of(c) == 0 || self.plan.peer.is_some());
        let join = if creates {
            Request::CreateRoom {
                title: title.clone(),
            }
        } else {
            match self.room_ids[room] {
                Some(room_id) => Request::JoinRoom { room_id },
                None => return self.fail_setup(c, format!("room {title:?} has no id")),
            }
        };
        let want = format!("방제[{title}] 방에 입장했습니다.");
        let name = Request::Name {
            // Decimal: names must differ by look (the server compares confusable
            // skeletons, in which 1 and l, 0 and o are the same).
            name: format!("{}u{c}", self.plan.name_tag),
        };
        let Some(conn) = self.conns[c].as_mut() else {
            return;
        };
        if let Err(e) = conn.queue(&name).and_then(|()| conn.queue(&join)) {
            return self.fail_setup(c, format!("cannot encode a setup request: {e}"));
        }
        self.clients[c] = Client::Joining { want };
        self.mark_dirty(c);
    }

    /// Asks `/rooms` once every creator is in its room, and learns the rooms' ids.
    fn look_up_rooms(&mut self, deadline: Instant) -> Result<(), BenchError> {
        let titles = self.titles.clone();
        let ids = self.look_up(&titles, deadline).map_err(|e| match e {
            LookupError::Missing { missing, listed } => BenchError::Setup(format!(
                "/rooms did not list {missing} of the {} rooms the bench created ({listed} \
                 rooms listed). The list is one frame of at most 65,535 bytes, so a server \
                 with very many rooms cannot list them all; use fewer --rooms",
                titles.len(),
            )),
            LookupError::Other(e) => e,
        })?;
        self.room_ids = ids.into_iter().map(Some).collect();
        Ok(())
    }

    /// Client 0 asks `/rooms` and the ids of `titles` are read from the answer, which
    /// may come as several messages (`docs/PROTOCOL.md` §6.5).
    fn look_up(&mut self, titles: &[String], deadline: Instant) -> Result<Vec<i64>, LookupError> {
        let asker = 0;
        let Some(conn) = self.conns[asker].as_mut() else {
            return Err(BenchError::Setup("client 0 has no connection".into()).into());
        };
        conn.queue(&Request::Rooms)
            .map_err(|e| BenchError::Setup(format!("cannot encode /rooms: {e}")))?;
        self.mark_dirty(asker);
        self.trailing_rooms_from = None;
        self.awaiting_rooms = Some(RoomsLookup {
            asker,
            rooms: Vec::new(),
            replies: 0,
            last_reply: None,
        });
        let result = self.await_rooms(titles, deadline);
        self.awaiting_rooms = None;
        self.trailing_rooms_from = Some(asker);
        result
    }

    fn await_rooms(
        &mut self,
        titles: &[String],
        deadline: Instant,
    ) -> Result<Vec<i64>, LookupError> {
        let mut seen_replies = 0;
        loop {
            if let Some(failure) = self.setup_failure.take() {
                return Err(BenchError::Setup(failure).into());
            }
            let now = Instant::now();
            if let Some(lookup) = &self.awaiting_rooms {
                if lookup.replies > seen_replies {
                    seen_replies = lookup.replies;
                    if let Some(found) = find_titles(&lookup.rooms, titles) {
                        return found.map_err(LookupError::Other);
                    }
                }
                if lookup.last_reply.is_some_and(|t| now >= t + LIST_QUIET) {
                    let missing = titles
                        .iter()
                        .filter(|t| !lookup.rooms.iter().any(|r| &r.title == *t))
                        .count();
                    return Err(LookupError::Missing {
                        missing,
                        listed: lookup.rooms.len(),
                    });
                }
            }
            if now >= deadline {
                return Err(
                    BenchError::Setup("timed out waiting for the answer to /rooms".into()).into(),
                );
            }
            self.poll_once((deadline - now).min(MAX_WAIT))?;
        }
    }

    fn fail_setup(&mut self, c: usize, why: String) {
        let message = format!("{}: {why}", self.describe(c));
        self.sample(message.clone());
        self.setup_failure.get_or_insert(message);
        self.drop_client(c);
    }

    // ----- run ---------------------------------------------------------------

    /// Sends `rate` chats/s for `duration_s` seconds, drains, and reports.
    pub fn run_step(
        &mut self,
        step: u32,
        rate: u64,
        duration_s: f64,
    ) -> Result<StepReport, BenchError> {
        let layout = self.plan.layout;
        let schedule = Schedule::new(layout, rate, duration_s);
        let server = self.plan.server_pid.map(Pid::Other);
        let server_cpu_before = server.and_then(|p| procstat::cpu_times(p).ok());
        let others_before: Vec<Option<Duration>> = self
            .plan
            .also_pids
            .iter()
            .map(|&p| procstat::cpu_time(Pid::Other(p)).ok())
            .collect();
        let switches = |pid: u32| procstat::context_switches(Pid::Other(pid)).ok();
        let server_switches_before = self.plan.server_pid.and_then(switches);
        let others_switches_before: Vec<Option<u64>> =
            self.plan.also_pids.iter().map(|&p| switches(p)).collect();
        let bench_cpu_before = procstat::cpu_time(Pid::This).ok();
        let wall = Instant::now();
        let start_ns = self.now_ns();
        self.trailing_rooms_from = None;
        self.hostile_begin(start_ns, duration_s);
        self.run = Some(RunState {
            schedule,
            tracker: Tracker::new(layout, step),
            start_ns,
            next: 0,
            request: Request::Chat {
                text: String::new(),
            },
            latency: new_histogram(),
            send_lag: new_histogram(),
            last_delivery_ns: start_ns,
            last_chat_ns: start_ns,
            skipped: 0,
            bad_padding: 0,
            unexpected: 0,
        });
        let drain_ns = u64::try_from(self.plan.drain.as_nanos()).unwrap_or(u64::MAX);
        let end_ns = start_ns
            .saturating_add(schedule.span_ns())
            .saturating_add(drain_ns);
        loop {
            let now = self.now_ns();
            self.send_due(now);
            self.flush_dirty();
            let Some(run) = self.run.as_ref() else { break };
            let wait = if run.next < run.schedule.total() {
                let due = run.start_ns + run.schedule.intended_ns(run.next);
                let until = Duration::from_nanos(due.saturating_sub(now));
                if until.is_zero() {
                    continue;
                }
                self.timer
                    .arm(until)
                    .map_err(|e| BenchError::Io("arming the timer".into(), e))?;
                MAX_WAIT
            } else {
                if now >= end_ns {
                    break;
                }
                let mut until = end_ns;
                if run.tracker.outstanding() == 0 {
                    let grace_ns = GRACE.as_nanos() as u64;
                    until = until.min(run.last_chat_ns.saturating_add(grace_ns));
                    if now >= until {
                        break;
                    }
                }
                Duration::from_nanos(until - now).min(MAX_WAIT)
            };
            let wait = self.hostile_wait(now, wait);
            self.poll_once(wait)?;
        }
        self.hostile_end();
        let elapsed = wall.elapsed().as_secs_f64();
        let server_user_system = match (server, server_cpu_before) {
            (Some(pid), Some(before)) => procstat::cpu_times(pid).ok().map(|after| {
                (
                    after.0.saturating_sub(before.0).as_secs_f64(),
                    after.1.saturating_sub(before.1).as_secs_f64(),
                )
            }),
            _ => None,
        };
        let server_cpu = server_user_system.map(|(user, system)| user + system);
        let others_cpu: Vec<Option<f64>> = self
            .plan
            .also_pids
            .iter()
            .zip(&others_before)
            .map(|(&p, before)| {
                let after = procstat::cpu_time(Pid::Other(p)).ok()?;
                Some(after.saturating_sub((*before)?).as_secs_f64())
            })
            .collect();
        let server_switches = self
            .plan
            .server_pid
            .and_then(switches)
            .zip(server_switches_before)
            .map(|(after, before)| after.saturating_sub(before));
        let others_switches: Vec<Option<u64>> = self
            .plan
            .also_pids
            .iter()
            .zip(&others_switches_before)
            .map(|(&p, before)| Some(switches(p)?.saturating_sub((*before)?)))
            .collect();
        let bench_cpu = bench_cpu_before.and_then(|before| {
            procstat::cpu_time(Pid::This)
                .ok()
                .map(|after| after.saturating_sub(before).as_secs_f64())
        });
        let run = self
            .run
            .take()
            .ok_or_else(|| BenchError::Setup("internal: run state vanished".into()))?;
        let summary = run.tracker.summary();
        let counts = summary.counts;
        let delivering_s = (run.last_delivery_ns.saturating_sub(run.start_ns) as f64 / 1e9)
            .max(schedule.span_ns() as f64 / 1e9);
        let pct = |cpu: f64| (elapsed > 0.0).then(|| 100.0 * cpu / elapsed);
        Ok(StepReport {
            step,
            rate,
            duration_s,
            elapsed_s: elapsed,
            chats_sent: counts.sent,
            chats_skipped: run.skipped,
            expected_deliveries: summary.expected,
            deliveries: counts.delivered,
            lost: summary.lost,
            duplicated: counts.duplicates,
            out_of_order: counts.out_of_order,
            misdelivered: counts.foreign + run.bad_padding,
            stale: counts.stale,
            unexpected_messages: run.unexpected,
            deliveries_per_s: if delivering_s > 0.0 {
                counts.delivered as f64 / delivering_s
            } else {
                0.0
            },
            latency_ms: percentiles(&run.latency),
            send_lag_ms: percentiles(&run.send_lag),
            unsent_bytes_at_end: self.conns[..self.pops.measured]
                .iter()
                .flatten()
                .map(|c| c.unsent() as u64)
                .sum(),
            connections_alive_at_end: self.alive(),
            server_cpu_s: server_cpu,
            server_cpu_pct: server_cpu.and_then(pct),
            server_user_s: server_user_system.map(|(user, _)| user),
            server_system_s: server_user_system.map(|(_, system)| system),
            others_cpu_s: others_cpu,
            server_context_switches: server_switches,
            others_context_switches: others_switches,
            bench_cpu_pct: bench_cpu.and_then(pct),
            passed: None,
        })
    }

    /// Whether a run is on and its next chat's time has come.
    fn send_is_due(&self, now_ns: u64) -> bool {
        self.run.as_ref().is_some_and(|run| {
            run.next < run.schedule.total()
                && run.start_ns + run.schedule.intended_ns(run.next) <= now_ns
        })
    }

    /// Queues every chat whose intended time is at or before `now_ns`.
    fn send_due(&mut self, now_ns: u64) {
        let Some(run) = self.run.as_mut() else { return };
        let step = run.tracker.step();
        while run.next < run.schedule.total() {
            let intended = run.start_ns + run.schedule.intended_ns(run.next);
            if intended > now_ns {
                break;
            }
            let sender = run.schedule.sender(run.next);
            run.next += 1;
            let conn = match self.conns[sender].as_mut() {
                Some(conn) if self.clients[sender] == Client::Ready => conn,
                _ => {
                    run.skipped += 1;
                    continue;
                }
            };
            let seq = run.tracker.on_send(sender);
            if let Request::Chat { text } = &mut run.request {
                let stamp = Stamp {
                    sender: sender as u32,
                    seq,
                    t_ns: intended,
                    step,
                };
                payload::write_text(text, stamp, self.plan.pad);
            }
            if let Err(e) = conn.queue(&run.request) {
                // Cannot happen with --pad validated; if it did, the chat counts as
                // sent and lost, which is the honest verdict.
                self.errors.io_errors += 1;
                push_sample(&mut self.errors, format!("cannot encode a chat: {e}"));
                continue;
            }
            run.send_lag.saturating_record(now_ns - intended);
            if !self.is_dirty[sender] {
                self.is_dirty[sender] = true;
                self.dirty.push(sender);
            }
        }
    }

    // ----- settle ------------------------------------------------------------

    /// Waits until nothing has arrived for `quiet`, or `limit` has passed.
    pub fn settle(&mut self, quiet: Duration, limit: Duration) -> Result<(), BenchError> {
        let deadline = Instant::now() + limit;
        self.last_receipt = Instant::now();
        loop {
            let now = Instant::now();
            let calm_at = self.last_receipt + quiet;
            if now >= calm_at || now >= deadline {
                return Ok(());
            }
            self.poll_once((calm_at.min(deadline) - now).min(MAX_WAIT))?;
        }
    }

    // ----- the loop ----------------------------------------------------------

    /// Waits up to `timeout` for events and handles them, then flushes.
    fn poll_once(&mut self, timeout: Duration) -> Result<(), BenchError> {
        // Take the events out so handlers can borrow `self` mutably.
        let mut events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        let polled = self.poll.poll(&mut events, Some(timeout));
        if let Err(e) = polled {
            self.events = events;
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(());
            }
            return Err(BenchError::Io("polling".into(), e));
        }
        for event in events.iter() {
            // Cheap (a clock read and a compare), and keeps sends on time while a
            // long batch of events is handled.
            let now = self.now_ns();
            if self.send_is_due(now) {
                self.send_due(now);
                self.flush_dirty();
            }
            let token = event.token();
            if token == TIMER {
                self.timer.acknowledge();
                continue;
            }
            if token == OWNER {
                self.on_owner_event(event);
                continue;
            }
            let c = token.0;
            if c >= self.clients.len() {
                continue;
            }
            if self.clients[c] == Client::Connecting {
                self.check_connect(c);
                // Fall through: the server may already have answered.
            }
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                self.read_client(c, event.is_read_closed() || event.is_error());
            }
            if event.is_writable() {
                self.on_writable(c);
            }
        }
        self.events = events;
        self.service_hostile();
        self.flush_dirty();
        Ok(())
    }

    /// Tells an established connection from one still connecting or refused.
    fn check_connect(&mut self, c: usize) {
        let Some(conn) = self.conns[c].as_mut() else {
            return;
        };
        match conn.stream.take_error() {
            Ok(None) => {}
            Ok(Some(e)) | Err(e) => return self.fail_setup(c, format!("cannot connect: {e}")),
        }
        match conn.stream.peer_addr() {
            Ok(_) => self.on_connected(c),
            // Spurious wake-up: still connecting.
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
            Err(e) => self.fail_setup(c, format!("cannot connect: {e}")),
        }
    }

    fn read_client(&mut self, c: usize, peer_closed: bool) {
        if self.read_extra_raw(c) {
            return;
        }
        let Some(mut conn) = self.conns[c].take() else {
            return;
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        let result = conn.read(&mut scratch, peer_closed, |message, at| {
            self.on_message(c, message, at)
        });
        self.scratch = scratch;
        // `on_message` may have ended this client (a setup failure).
        let still_wanted = self.clients[c] != Client::Dead;
        if still_wanted {
            self.conns[c] = Some(conn);
            self.after_extra_read(c);
        }
        // A hostile connection cut after setup is a figure of its own, not an error.
        let counts = !self.is_extra_in_service(c);
        match result {
            Ok(ReadEnd::WouldBlock) => {}
            Ok(ReadEnd::Eof) => {
                if still_wanted {
                    self.errors.closed_by_server += u64::from(counts);
                    self.lose_client(c, "the server closed the connection".into());
                }
            }
            Err(e) => {
                if still_wanted {
                    self.errors.io_errors += u64::from(counts);
                    self.lose_client(c, format!("read failed: {e}"));
                }
            }
        }
    }

    fn flush_client(&mut self, c: usize) {
        let Some(conn) = self.conns[c].as_mut() else {
            return;
        };
        if let Err(e) = conn.flush() {
            self.errors.io_errors += u64::from(!self.is_extra_in_service(c));
            self.lose_client(c, format!("write failed: {e}"));
        }
    }

    /// Whether `c` is a hostile connection past its setup (its losses are figures).
    fn is_extra_in_service(&self, c: usize) -> bool {
        self.pops.role(c) != Role::Measured && self.clients[c] == Client::Ready
    }

    /// Who connection `c` is, for messages.
    fn describe(&self, c: usize) -> String {
        let layout = self.plan.layout;
        match self.pops.role(c) {
            Role::Measured => format!(
                "client {c} (room {}, member {})",
                layout.room_of(c),
                layout.member_of(c)
            ),
            Role::FloodSender => "the flood sender".into(),
            Role::SlowReader(k) => format!("slow flood reader {k}"),
            Role::NeverReader(k) => format!("never-reading flood member {k}"),
            Role::IdleCreator(k) => format!("idle-room creator {k}"),
            Role::RoomsFlooder(k) => format!("/rooms flooder {k}"),
            Role::Slowloris(k) => format!("slowloris connection {k}"),
        }
    }

    fn mark_dirty(&mut self, c: usize) {
        if !self.is_dirty[c] {
            self.is_dirty[c] = true;
            self.dirty.push(c);
        }
    }

    fn flush_dirty(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for &c in &dirty {
            self.is_dirty[c] = false;
            if self.clients[c] != Client::Connecting {
                self.flush_client(c);
            }
        }
        // Keep the allocation.
        self.dirty = dirty;
        self.dirty.clear();
    }

    /// A connection ended unexpectedly.
    fn lose_client(&mut self, c: usize, why: String) {
        match self.clients[c] {
            Client::Connecting | Client::Joining { .. } => self.fail_setup(c, why),
            _ if self.pops.role(c) != Role::Measured => {
                self.on_extra_lost(c);
                self.drop_client(c);
            }
            _ if self.setting_up => self.fail_setup(c, why),
            _ => {
                self.sample(format!("{}: {why}", self.describe(c)));
                self.drop_client(c);
            }
        }
    }

    fn drop_client(&mut self, c: usize) {
        if matches!(self.clients[c], Client::Connecting | Client::Joining { .. }) {
            self.in_flight -= 1;
        }
        self.clients[c] = Client::Dead;
        if let Some(mut conn) = self.conns[c].take() {
            // Closing the socket removes it from the poll anyway; an error here
            // changes nothing.
            let _ = self.poll.registry().deregister(&mut conn.stream);
        }
    }

    /// One message from the server to client `c`.
    fn on_message(&mut self, c: usize, message: Result<Response<'_>, DecodeError>, at: Instant) {
        self.last_receipt = at;
        if self.pops.role(c) != Role::Measured {
            return self.on_extra_message(c, message);
        }
        let message = match message {
            Ok(message) => message,
            Err(e) => {
                self.errors.decode_errors += 1;
                self.sample(format!("client {c}: undecodable message: {e}"));
                if matches!(self.clients[c], Client::Joining { .. }) {
                    self.fail_setup(c, format!("undecodable reply: {e}"));
                }
                return;
            }
        };
        match message {
            Response::Chat { text, .. } | Response::TimedChat { text, .. } => {
                self.on_chat(c, &text, at);
            }
            Response::SystemMessage { text } => self.on_system(c, &text),
            Response::RoomsResult { rooms } => match &mut self.awaiting_rooms {
                Some(lookup) if lookup.asker == c => {
                    lookup.rooms.extend(rooms);
                    lookup.replies += 1;
                    lookup.last_reply = Some(at);
                }
                // The rest of a long list whose titles were already found.
                _ if self.trailing_rooms_from == Some(c) => {}
                _ => self.unexpected(c, "an unasked /rooms result".into()),
            },
            // The bench never says hello.
            Response::Hello { .. } => self.unexpected(c, "an unasked SCHello".into()),
            Response::History { .. } => self.unexpected(c, "an unasked SCHistory".into()),
            Response::Session { .. } => self.unexpected(c, "an unasked SCSession".into()),
            Response::Direct { .. } => self.unexpected(c, "an unasked SCDirect".into()),
            Response::Topic { .. } => self.unexpected(c, "an unasked SCTopic".into()),
        }
    }

    fn on_chat(&mut self, c: usize, text: &str, at: Instant) {
        let Some(parsed) = payload::parse(text) else {
            return self.unexpected(c, format!("a chat that is not the bench's: {text:.80}"));
        };
        let Some(run) = self.run.as_mut() else {
            // Between runs: a chat that outlived its drain (already counted lost).
            self.errors.chats_after_drain += 1;
            return;
        };
        let received_ns =
            u64::try_from(at.duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX);
        run.last_chat_ns = run.last_chat_ns.max(received_ns);
        if parsed.pad_len != self.plan.pad {
            run.bad_padding += 1;
            return;
        }
        match run.tracker.on_receive(c, parsed.stamp) {
            Outcome::Delivered { .. } => {
                run.latency
                    .saturating_record(received_ns.saturating_sub(parsed.stamp.t_ns));
                run.last_delivery_ns = run.last_delivery_ns.max(received_ns);
            }
            // Counted per step by the tracker, and here in the invocation's total.
            Outcome::Stale => self.errors.chats_after_drain += 1,
            Outcome::Duplicate | Outcome::Foreign => {}
        }
    }

    fn on_system(&mut self, c: usize, text: &str) {
        if let Client::Joining { want } = &self.clients[c]
            && text == want
        {
            self.clients[c] = Client::Ready;
            self.in_flight -= 1;
            if let Some(&started) = self.connect_started_ns.get(c) {
                let took = self.now_ns().saturating_sub(started);
                self.connect_to_joined.saturating_record(took);
            }
            return;
        }
        // Replies to our renames, and other members arriving: expected.
        match notice_kind(text) {
            Some(Notice::Joined) => {
                self.join_notices += 1;
                return;
            }
            Some(Notice::Renamed) => return,
            None => {}
        }
        if matches!(self.clients[c], Client::Joining { .. }) {
            return self.fail_setup(c, format!("unexpected reply while joining: {text}"));
        }
        self.unexpected(c, format!("system message: {text}"));
    }

    fn unexpected(&mut self, c: usize, what: String) {
        self.errors.unexpected_messages += 1;
        if let Some(run) = self.run.as_mut() {
            run.unexpected += 1;
        }
        self.sample(format!("client {c}: unexpected {what}"));
    }

    fn sample(&mut self, message: String) {
        push_sample(&mut self.errors, message);
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// The ids of `titles` in `rooms`, once every one is listed: `Some(Err)` when one is
/// listed more than once (it cannot be told which is the bench's).
fn find_titles(
    rooms: &[chat_proto::RoomInfo],
    titles: &[String],
) -> Option<Result<Vec<i64>, BenchError>> {
    let mut by_title: HashMap<&str, Vec<i64>> = HashMap::new();
    for room in rooms {
        by_title.entry(&room.title).or_default().push(room.room_id);
    }
    let mut ids = Vec::with_capacity(titles.len());
    for title in titles {
        match by_title.get(title.as_str()).map(Vec::as_slice) {
            Some([id]) => ids.push(*id),
            Some(ids) => {
                return Some(Err(BenchError::Setup(format!(
                    "/rooms lists {} rooms titled {title:?}; cannot tell which is ours",
                    ids.len()
                ))));
            }
            None => return None,
        }
    }
    Some(Ok(ids))
}

fn push_sample(errors: &mut ErrorReport, message: String) {
    if errors.samples.len() < MAX_SAMPLES {
        errors.samples.push(message);
    }
}

/// System messages the bench expects besides its join replies (`docs/PROTOCOL.md` §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Notice {
    /// `[NAME] 님이 입장했습니다.`: another member joined.
    Joined,
    /// `이름이 X 으로 변경되었습니다.`: the reply to our own rename.
    Renamed,
}

fn notice_kind(text: &str) -> Option<Notice> {
    if text.starts_with('[') && text.ends_with("] 님이 입장했습니다.") {
        Some(Notice::Joined)
    } else if text.starts_with("이름이 ") && text.ends_with(" 으로 변경되었습니다.") {
        Some(Notice::Renamed)
    } else {
        None
    }
}

/// Nanosecond values from 1 ns to one hour, three significant digits.
fn new_histogram() -> Histogram<u64> {
    // Constant, valid bounds: this cannot fail.
    Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds")
}

/// Milliseconds percentiles of a nanosecond histogram; `None` when empty.
fn percentiles(h: &Histogram<u64>) -> Option<Percentiles> {
    if h.is_empty() {
        return None;
    }
    let ms = |ns: u64| ns as f64 / 1e6;
    Some(Percentiles {
        p50: ms(h.value_at_quantile(0.5)),
        p90: ms(h.value_at_quantile(0.9)),
        p99: ms(h.value_at_quantile(0.99)),
        p999: ms(h.value_at_quantile(0.999)),
        max: ms(h.max()),
        mean: h.mean() / 1e6,
    })
}

/// A short string unlikely to repeat between bench invocations, for room titles.
fn title_nonce() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mixed = (nanos ^ (u64::from(std::process::id()) << 20)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // Four base-36 digits: 1.7 million values.
    let s = base36(mixed >> 40);
    format!("{:0>4}", &s[s.len().saturating_sub(4)..])
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base36_and_nonce() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
        assert_eq!(base36(9999), "7pr");
        let nonce = title_nonce();
        assert_eq!(nonce.len(), 4, "{nonce}");
    }

    #[test]
    fn notices_are_recognised() {
        assert_eq!(notice_kind("[u1] 님이 입장했습니다."), Some(Notice::Joined));
        assert_eq!(
            notice_kind("이름이 u1 으로 변경되었습니다."),
            Some(Notice::Renamed)
        );
        assert_eq!(notice_kind("현재 대화방에 들어가 있지 않습니다."), None);
        assert_eq!(notice_kind("[u1] 님이 퇴장했습니다."), None);
    }

    #[test]
    fn percentiles_in_milliseconds() {
        let mut h = new_histogram();
        assert!(percentiles(&h).is_none());
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap();
        }
        let p = percentiles(&h).unwrap();
        assert!((p.p50 - 0.5).abs() < 0.01, "{p:?}");
        assert!((p.p99 - 0.99).abs() < 0.01, "{p:?}");
        assert!((p.max - 1.0).abs() < 0.01, "{p:?}");
    }
}
