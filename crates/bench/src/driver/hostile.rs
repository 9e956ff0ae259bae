//! The hostile and slow populations inside the event loop.
//!
//! * **Idle-room creators** rename, create a room and stay: registered, reading and
//!   decoding whatever comes (normally nothing).
//! * **`/rooms` flooders** rename (their readiness check) and wait. During the run each
//!   writes one pre-encoded batch of `--rooms-batch` `CSRooms` frames after another,
//!   the next as soon as the last byte of the previous one is in the socket, and reads
//!   everything that comes as fast as it can, counting messages with a
//!   [`Skimmer`] rather than decoding them. Both directions are pumped with a budget
//!   per loop turn (so a flooder cannot starve the measured clients), and while a
//!   flooder still has work the loop polls without sleeping. They are closed when the
//!   run ends.
//! * **The flood room.** Its sender creates it (its id comes from a `/rooms` lookup
//!   by client 0, like the measured rooms'), then the slow readers and never-readers
//!   join. Once a member has its join reply it is taken off the poll: from then on it
//!   is only touched by timers. During the run the sender sends `--flood-rate` chats/s
//!   on an open-loop schedule. Slow readers are served in 100 groups, one group every
//!   millisecond, so each reads every 100 ms what its [`ReadBudget`] allows (at most
//!   `--flood-read-bps` on average, into the shared scratch buffer; no sleeping, no
//!   per-connection buffer). Small groups matter: on loopback each read that opens
//!   the receive window makes the bench's thread run the server's transmit too, and
//!   100 such reads in a row held the measured chats back by milliseconds (send-lag
//!   p99 31 ms with 10 groups, 3.5 ms with 100). Every 100 ms one `poll(2)` over
//!   every member still connected looks for `POLLRDHUP`, `POLLHUP` or `POLLERR`: the
//!   server closed or reset it, which is a cut, seen without reading a never-reader's
//!   data. A member found cut is closed at once, so its buffers do not count in the
//!   kernel's memory. (A server that closes gracefully while unsent data is still
//!   queued for the member sends its FIN only after that data, which a member that
//!   does not read never gets: such a close is not seen as a cut, the room's leave
//!   notice is, and the kernel keeps the data: its memory shows it.)
//! * **Slowloris** connections send the header of a 65,534-byte frame as soon as they
//!   connect (that is their start), then one payload byte every
//!   `--slowloris-interval-ms`, from setup until the run ends. A read of end of
//!   stream, a reset or a failed write is a cut.
//!
//! Every 100 ms of the run, the kernel's TCP memory and (with `--server-pid`) the
//! server's RSS are sampled for the peak.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use chat_proto::codec::{DecodeError, WireFormat, encode_request};
use chat_proto::{Request, Response};
use mio::{Interest, Token};

use super::{Client, Driver, LookupError, MAX_WAIT, base36, notice_kind};
use crate::BenchError;
use crate::hostile::{
    FloodSchedule, HostilePlan, Populations, ReadBudget, Role, SLOWLORIS_HEADER,
    SLOWLORIS_MAX_BYTES, Skimmer, median_max, slowloris_byte,
};
use crate::procstat::{self, Pid};
use crate::report::{
    FloodReport, FlooderReport, HostileReport, IdleRoomsReport, MemorySamples, RoomsFloodReport,
    SlowlorisReport, Spread,
};

/// Slow readers are served in this many groups, one group per [`SLOW_TICK`].
const SLOW_GROUPS: usize = 100;
const SLOW_TICK: Duration = Duration::from_millis(1);
/// How often flood members are probed and memory is sampled during the run.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// Per loop turn and flooder: at most this many reads, and this many whole batches
/// written.
const FLOODER_READS_PER_PUMP: usize = 16;
const FLOODER_BATCHES_PER_PUMP: usize = 4;
/// The kernel's TCP memory is sampled again this long after the run.
const AFTER_END: Duration = Duration::from_secs(2);

/// One slow reader.
#[derive(Debug)]
struct SlowReader {
    budget: ReadBudget,
    skim: Skimmer,
    bytes: u64,
    /// Nanoseconds after the run's start when it was found cut.
    cut_ns: Option<u64>,
}

/// One `/rooms` flooder.
#[derive(Debug)]
struct Flooder {
    /// Bytes of the current batch already written.
    off: usize,
    bytes_written: u64,
    write_blocked: bool,
    read_pending: bool,
    skim: Skimmer,
    cut_ns: Option<u64>,
}

/// One slowloris connection.
#[derive(Debug, Default)]
struct Loris {
    started_ns: u64,
    /// Payload bytes sent after the header.
    payload: u64,
    /// Nanoseconds after its start when it was cut.
    cut_ns: Option<u64>,
}

/// Everything the hostile populations need between events.
#[derive(Debug)]
pub(super) struct HostileState {
    plan: HostilePlan,
    pops: Populations,
    format: WireFormat,
    flood_title: String,
    idle_prefix: String,
    flood_room_id: Option<i64>,
    /// During the run: the populations act and memory is sampled.
    active: bool,
    /// Whether a run has started (cut times count from its start).
    started: bool,
    start_ns: u64,
    // The flood sender.
    flood: FloodSchedule,
    flood_next: u64,
    flood_request: Request,
    flood_sent: u64,
    leave_notices: u64,
    sender_cut: bool,
    sender_unsent_at_end: u64,
    // The flood members.
    slow: Vec<SlowReader>,
    never_cut_ns: Vec<Option<u64>>,
    /// Members that got their join reply and are to be taken off the poll.
    to_passive: Vec<usize>,
    slow_group: usize,
    next_slow_ns: u64,
    next_sample_ns: u64,
    pollfds: Vec<libc::pollfd>,
    poll_owners: Vec<usize>,
    // Idle rooms.
    idle_messages: u64,
    idle_closed: usize,
    idle_open_at_end: usize,
    // `/rooms` flooders.
    batch: Vec<u8>,
    request_len: usize,
    flooders: Vec<Flooder>,
    flooding: bool,
    // Slowloris.
    loris: Vec<Loris>,
    /// (due, index), in due order: every connection has the same interval.
    loris_queue: VecDeque<(u64, usize)>,
    loris_on: bool,
    loris_bytes: u64,
    loris_open_at_end: usize,
    // Memory.
    kernel: MemorySamples,
    rss: MemorySamples,
    /// Connections lost while the state was borrowed, handled afterwards.
    lost: Vec<(usize, String)>,
}

impl HostileState {
    pub(super) fn new(
        plan: &HostilePlan,
        pops: Populations,
        nonce: &str,
        format: WireFormat,
    ) -> Self {
        let mut batch = Vec::new();
        let mut request_len = 0;
        if pops.rooms_flooders > 0 {
            // A CSRooms request encodes identically every time.
            let mut one = Vec::new();
            if encode_request(format, &Request::Rooms, &mut one).is_ok() {
                request_len = one.len();
                for _ in 0..plan.rooms_batch.max(1) {
                    batch.extend_from_slice(&one);
                }
            }
        }
        Self {
            plan: plan.clone(),
            pops,
            format,
            // '-' keeps these apart from the measured rooms' `nonce.N` titles.
            flood_title: format!("{nonce}-f"),
            idle_prefix: format!("{nonce}-i"),
            flood_room_id: None,
            active: false,
            started: false,
            start_ns: 0,
            flood: FloodSchedule::new(0, 0.0),
            flood_next: 0,
            flood_request: Request::Chat {
                text: String::new(),
            },
            flood_sent: 0,
            leave_notices: 0,
            sender_cut: false,
            sender_unsent_at_end: 0,
            slow: (0..pops.slow_readers)
                .map(|_| SlowReader {
                    budget: ReadBudget::new(0, 1, 0),
                    skim: Skimmer::new(format),
                    bytes: 0,
                    cut_ns: None,
                })
                .collect(),
            never_cut_ns: vec![None; pops.never_readers],
            to_passive: Vec::new(),
            slow_group: 0,
            next_slow_ns: 0,
            next_sample_ns: 0,
            pollfds: Vec::new(),
            poll_owners: Vec::new(),
            idle_messages: 0,
            idle_closed: 0,
            idle_open_at_end: 0,
            batch,
            request_len,
            flooders: (0..pops.rooms_flooders)
                .map(|_| Flooder {
                    off: 0,
                    bytes_written: 0,
                    write_blocked: false,
                    read_pending: false,
                    skim: Skimmer::new(format),
                    cut_ns: None,
                })
                .collect(),
            flooding: false,
            loris: (0..pops.slowloris).map(|_| Loris::default()).collect(),
            loris_queue: VecDeque::new(),
            loris_on: true,
            loris_bytes: 0,
            loris_open_at_end: 0,
            kernel: MemorySamples::default(),
            rss: MemorySamples::default(),
            lost: Vec::new(),
        }
    }

    /// Nanoseconds since the run started (0 before it has).
    fn since_start(&self, now_ns: u64) -> u64 {
        if self.started {
            now_ns.saturating_sub(self.start_ns)
        } else {
            0
        }
    }

    fn flooders_busy(&self) -> bool {
        self.flooding
            && self
                .flooders
                .iter()
                .any(|f| f.cut_ns.is_none() && (f.read_pending || !f.write_blocked))
    }
}

/// Samples the kernel's TCP memory and the server's RSS into `kernel` and `rss`
/// with `put` (which picks before, end, …), and raises the peaks.
fn sample(
    server: Option<Pid>,
    kernel: &mut MemorySamples,
    rss: &mut MemorySamples,
    put: fn(&mut MemorySamples, u64),
) {
    if let Ok(kb) = procstat::kernel_tcp_mem_kb() {
        put(kernel, kb);
        kernel.peak = Some(kernel.peak.map_or(kb, |p| p.max(kb)));
    }
    if let Some(kb) = server
        .and_then(|p| procstat::memory(p).ok())
        .map(|m| m.rss_kb)
    {
        put(rss, kb);
        rss.peak = Some(rss.peak.map_or(kb, |p| p.max(kb)));
    }
}

fn spread(values: impl Iterator<Item = u64>) -> Option<Spread> {
    let secs: Vec<f64> = values.map(|ns| ns as f64 / 1e9).collect();
    median_max(&secs).map(|(p50, max)| Spread {
        count: secs.len(),
        p50,
        max,
    })
}

impl Driver {
    /// Sets up every hostile population after the measured rooms (see the module docs).
    pub(super) fn set_up_hostile(&mut self, deadline: Instant) -> Result<(), BenchError> {
        let Some(h) = self.hostile.as_deref() else {
            return Ok(());
        };
        let pops = self.pops;
        let flood_title = h.flood_title.clone();
        if let Some(sender) = pops.flood_sender() {
            self.start_clients(&[sender], deadline, "creating the flood room")?;
            let ids = self
                .look_up(std::slice::from_ref(&flood_title), deadline)
                .map_err(|e| match e {
                    LookupError::Missing { listed, .. } => BenchError::Setup(format!(
                        "/rooms did not list the flood room {flood_title:?} ({listed} rooms \
                         listed)"
                    )),
                    LookupError::Other(e) => e,
                })?;
            if let Some(h) = self.hostile.as_deref_mut() {
                h.flood_room_id = ids.first().copied();
            }
            let members: Vec<usize> = pops.slow_readers().chain(pops.never_readers()).collect();
            self.start_clients(&members, deadline, "joining the flood room")?;
            self.make_passive();
        }
        let idle: Vec<usize> = pops.idle_creators().collect();
        self.start_clients(&idle, deadline, "creating idle rooms")?;
        let flooders: Vec<usize> = pops.rooms_flooders().collect();
        self.start_clients(&flooders, deadline, "connecting /rooms flooders")?;
        let loris: Vec<usize> = pops.slowloris().collect();
        self.start_clients(&loris, deadline, "connecting slowloris clients")
    }

    /// A hostile connection's connect completed.
    pub(super) fn on_extra_connected(&mut self, c: usize) {
        let Some(h) = self.hostile.as_deref() else {
            return;
        };
        let flood_join =
            |h: &HostileState| h.flood_room_id.map(|room_id| Request::JoinRoom { room_id });
        let joined = |title: &str| format!("방제[{title}] 방에 입장했습니다.");
        let renamed = |name: &str| format!("이름이 {name} 으로 변경되었습니다.");
        let (name, request, want) = match self.pops.role(c) {
            Role::Measured => return,
            Role::Slowloris(k) => return self.start_slowloris(c, k),
            Role::FloodSender => (
                "f".to_string(),
                Some(Request::CreateRoom {
                    title: h.flood_title.clone(),
                }),
                joined(&h.flood_title),
            ),
            Role::SlowReader(k) | Role::NeverReader(k) => {
                let prefix = if matches!(self.pops.role(c), Role::SlowReader(_)) {
                    "s"
                } else {
                    "n"
                };
                let Some(join) = flood_join(h) else {
                    return self.fail_setup(c, "the flood room has no id".into());
                };
                (
                    // Decimal: names must differ by look (see driver.rs).
                    format!("{prefix}{k}"),
                    Some(join),
                    joined(&h.flood_title),
                )
            }
            Role::IdleCreator(k) => {
                let title = format!("{}{}", h.idle_prefix, base36(k as u64));
                let want = joined(&title);
                (format!("i{k}"), Some(Request::CreateRoom { title }), want)
            }
            Role::RoomsFlooder(k) => {
                let name = format!("q{k}"); // decimal, as in driver.rs
                let want = renamed(&name);
                (name, None, want)
            }
        };
        let Some(conn) = self.conns[c].as_mut() else {
            return;
        };
        let queued = conn
            .queue(&Request::Name { name })
            .and_then(|()| request.as_ref().map_or(Ok(()), |r| conn.queue(r)));
        if let Err(e) = queued {
            return self.fail_setup(c, format!("cannot encode a setup request: {e}"));
        }
        self.clients[c] = Client::Joining { want };
        self.mark_dirty(c);
    }

    /// A slowloris connection is up: its header goes out now, a byte per interval later.
    fn start_slowloris(&mut self, c: usize, k: usize) {
        let now = self.now_ns();
        let Some(conn) = self.conns[c].as_mut() else {
            return;
        };
        match conn.stream.write(&SLOWLORIS_HEADER) {
            Ok(2) => {}
            Ok(n) => {
                return self.fail_setup(c, format!("the header went out short ({n} of 2 bytes)"));
            }
            Err(e) => return self.fail_setup(c, format!("cannot send the header: {e}")),
        }
        // Only reads matter from now on (an end of stream or a reset is the cut).
        let _ = self
            .poll
            .registry()
            .reregister(&mut conn.stream, Token(c), Interest::READABLE);
        self.clients[c] = Client::Ready;
        self.in_flight -= 1;
        let Some(h) = self.hostile.as_deref_mut() else {
            return;
        };
        h.loris[k].started_ns = now;
        h.loris_bytes += 2;
        let interval = u64::try_from(h.plan.slowloris_interval.as_nanos()).unwrap_or(u64::MAX);
        h.loris_queue.push_back((now.saturating_add(interval), k));
    }

    /// A message for a hostile connection (decoded: idle creators, the flood sender,
    /// and everyone during setup).
    pub(super) fn on_extra_message(
        &mut self,
        c: usize,
        message: Result<Response<'_>, DecodeError>,
    ) {
        let joining = matches!(self.clients[c], Client::Joining { .. });
        let text = match message {
            Ok(Response::SystemMessage { text }) => Some(text),
            Ok(_) => None,
            Err(e) => {
                if joining {
                    return self.fail_setup(c, format!("undecodable reply: {e}"));
                }
                None
            }
        };
        if let (Client::Joining { want }, Some(text)) = (&self.clients[c], &text) {
            if text == want {
                self.clients[c] = Client::Ready;
                self.in_flight -= 1;
                if matches!(
                    self.pops.role(c),
                    Role::SlowReader(_) | Role::NeverReader(_)
                ) && let Some(h) = self.hostile.as_deref_mut()
                {
                    h.to_passive.push(c);
                }
                return;
            }
            if notice_kind(text).is_none() {
                return self.fail_setup(c, format!("unexpected reply while joining: {text}"));
            }
            return;
        }
        let role = self.pops.role(c);
        let Some(h) = self.hostile.as_deref_mut() else {
            return;
        };
        match role {
            Role::IdleCreator(_) => h.idle_messages += 1,
            Role::FloodSender
                if text
                    .as_deref()
                    .is_some_and(|t| t.starts_with('[') && t.ends_with("] 님이 퇴장했습니다.")) =>
            {
                h.leave_notices += 1;
            }
            _ => {}
        }
    }

    /// Takes flood members that have joined off the poll (called after reads, when
    /// their connection is back in its slot).
    pub(super) fn after_extra_read(&mut self, _c: usize) {
        if self
            .hostile
            .as_deref()
            .is_some_and(|h| !h.to_passive.is_empty())
        {
            self.make_passive();
        }
    }

    fn make_passive(&mut self) {
        let Some(h) = self.hostile.as_deref_mut() else {
            return;
        };
        for c in h.to_passive.drain(..) {
            if let Some(conn) = self.conns[c].as_mut() {
                let _ = self.poll.registry().deregister(&mut conn.stream);
            }
        }
    }

    /// Reads for hostile connections that do not decode; `true` when `c` was one.
    pub(super) fn read_extra_raw(&mut self, c: usize) -> bool {
        if self.clients[c] != Client::Ready {
            return false;
        }
        match self.pops.role(c) {
            Role::RoomsFlooder(k) if self.hostile.as_deref().is_some_and(|h| h.flooding) => {
                self.flooder_read(c, k);
                true
            }
            Role::Slowloris(_) => {
                self.slowloris_read(c);
                true
            }
            // Off the poll; a stray event is ignored.
            Role::SlowReader(_) | Role::NeverReader(_) => true,
            _ => false,
        }
    }

    /// A writable event.
    pub(super) fn on_writable(&mut self, c: usize) {
        if let Role::RoomsFlooder(k) = self.pops.role(c)
            && self.clients[c] == Client::Ready
            && let Some(h) = self.hostile.as_deref_mut()
            && h.flooding
        {
            h.flooders[k].write_blocked = false;
            return self.flooder_write(c, k);
        }
        self.flush_client(c);
    }

    /// Records that the server cut hostile connection `c` (the caller drops it).
    pub(super) fn on_extra_lost(&mut self, c: usize) {
        let now = self.now_ns();
        let role = self.pops.role(c);
        let Some(h) = self.hostile.as_deref_mut() else {
            return;
        };
        let t = h.since_start(now);
        match role {
            Role::Measured => {}
            Role::FloodSender => h.sender_cut = true,
            Role::SlowReader(k) => {
                h.slow[k].cut_ns.get_or_insert(t);
            }
            Role::NeverReader(k) => {
                h.never_cut_ns[k].get_or_insert(t);
            }
            Role::IdleCreator(_) => h.idle_closed += 1,
            Role::RoomsFlooder(k) => {
                // (Before the run this records 0; after it they are closed by the
                // bench, which does not come here.)
                h.flooders[k].cut_ns.get_or_insert(t);
            }
            Role::Slowloris(k) => {
                if h.loris_on {
                    let started = h.loris[k].started_ns;
                    h.loris[k].cut_ns.get_or_insert(now.saturating_sub(started));
                }
            }
        }
    }

    fn slowloris_read(&mut self, c: usize) {
        let Some(conn) = self.conns[c].as_mut() else {
            return;
        };
        let failure = loop {
            match conn.stream.read(&mut self.scratch) {
                Ok(0) => break Some("the server closed the connection".to_string()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Some(format!("read failed: {e}")),
            }
        };
        if let Some(why) = failure {
            self.lose_client(c, why);
        }
    }

    fn flooder_read(&mut self, c: usize, k: usize) {
        let Some(h) = self.hostile.as_deref_mut() else {
            return;
        };
        let Some(conn) = self.conns[c].as_mut() else {
            return;
        };
        let f = &mut h.flooders[k];
        f.read_pending = true;
        let mut failure = None;
        for _ in 0..FLOODER_READS_PER_PUMP {
            match conn.stream.read(&mut self.scratch) {
                Ok(0) => {
                    failure = Some("the server closed the connection".to_string());
                    break;
                }
                Ok(n) => f.skim.feed(&self.scratch[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    f.read_pending = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failure = Some(format!("read failed: {e}"));
                    break;
                }
            }
        }
        if let Some(why) = failure {
            f.read_pending = false;
            self.lose_client(c, why);
        }
    }

    fn flooder_write(&mut self, c: usize, k: usize) {
        let Some(h) = self.hostile.as_deref_mut() else {
            return;
        };
        let Some(conn) = self.conns[c].as_mut() else {
            return;
        };
        let f = &mut h.flooders[k];
        let batch = &h.batch;
        if batch.is_empty() {
            f.write_blocked = true;
            return;
        }
        let mut batches = 0;
        let mut failure = None;
        while batches < FLOODER_BATCHES_PER_PUMP {
            match conn.stream.write(&batch[f.off..]) {
                Ok(0) => {
                    failure = Some("write failed: wrote zero bytes".to_string());
                    break;
                }
                Ok(n) => {
                    f.bytes_written += n as u64;
                    f.off += n;
                    if f.off == batch.len() {
                        f.off = 0;
                        batches += 1;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    f.write_blocked = true;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failure = Some(format!("write failed: {e}"));
                    break;
                }
            }
        }
        if let Some(why) = failure {
            f.write_blocked = true;
            self.lose_client(c, why);
        }
    }

    // ----- the run -----------------------------------------------------------

    /// The run starts: the populations start acting, memory is sampled.
    pub(super) fn hostile_begin(&mut self, start_ns: u64, duration_s: f64) {
        let server = self.plan.server_pid.map(Pid::Other);
        let Some(h) = self.hostile.as_deref_mut() else {
            return;
        };
        h.active = true;
        h.started = true;
        h.start_ns = start_ns;
        if h.pops.flood() {
            h.flood = FloodSchedule::new(h.plan.flood_rate, duration_s);
        }
        h.flood_next = 0;
        // Each slow reader is served every SLOW_GROUPS × SLOW_TICK (100 ms) and may
        // save up two servings' worth.
        let period_ns = (SLOW_TICK * SLOW_GROUPS as u32).as_nanos() as u64;
        let rate = h.plan.flood_read_bps;
        let burst = (u128::from(rate) * 2 * u128::from(period_ns) / 1_000_000_000) as u64;
        for (k, c) in h.pops.slow_readers().enumerate() {
            let r = &mut h.slow[k];
            r.budget = ReadBudget::new(rate, burst.max(1), start_ns);
            if let Some(conn) = self.conns[c].as_mut() {
                let (tail, body_pending) = conn.take_raw_tail();
                r.skim = Skimmer::resume(h.format, body_pending);
                r.skim.feed(&tail);
            }
        }
        for (k, c) in h.pops.rooms_flooders().enumerate() {
            let f = &mut h.flooders[k];
            if let Some(conn) = self.conns[c].as_mut() {
                let (tail, body_pending) = conn.take_raw_tail();
                f.skim = Skimmer::resume(h.format, body_pending);
                f.skim.feed(&tail);
            }
            // Start writing at once; read whatever may already be there.
            f.write_blocked = false;
            f.read_pending = true;
        }
        h.flooding = h.pops.rooms_flooders > 0;
        h.slow_group = 0;
        h.next_slow_ns = start_ns;
        h.next_sample_ns = start_ns + SAMPLE_EVERY.as_nanos() as u64;
        sample(server, &mut h.kernel, &mut h.rss, |m, v| m.before = Some(v));
    }

    /// How long the loop may sleep given the populations' timers: `wait` or less,
    /// zero while a flooder has work.
    pub(super) fn hostile_wait(&self, now_ns: u64, wait: Duration) -> Duration {
        let Some(h) = self.hostile.as_deref() else {
            return wait;
        };
        if h.flooders_busy() {
            return Duration::ZERO;
        }
        let mut next: Option<u64> = None;
        let mut consider = |t: u64| next = Some(next.map_or(t, |n| n.min(t)));
        if h.loris_on
            && let Some(&(due, _)) = h.loris_queue.front()
        {
            consider(due);
        }
        if h.active {
            if let Some(due) = h.flood.due_ns(h.flood_next) {
                consider(h.start_ns.saturating_add(due));
            }
            if h.pops.slow_readers > 0 {
                consider(h.next_slow_ns);
            }
            consider(h.next_sample_ns);
        }
        match next {
            Some(t) if t <= now_ns => Duration::ZERO,
            Some(t) => wait.min(Duration::from_nanos(t - now_ns)),
            None => wait,
        }
    }

    /// Whatever the populations' timers say is due, and the flooders' pending work.
    /// Called after every turn of the loop.
    pub(super) fn service_hostile(&mut self) {
        let now = self.now_ns();
        let server = self.plan.server_pid.map(Pid::Other);
        let Some(h) = self.hostile.as_deref_mut() else {
            return;
        };
        let mut lost = std::mem::take(&mut h.lost);
        if h.loris_on {
            trickle(h, &mut self.conns, now, &mut lost);
        }
        let mut sender_dirty = None;
        if h.active {
            // The flood sender: every chat whose time has come.
            if let Some(sender) = h.pops.flood_sender()
                && let Some(conn) = self.conns[sender].as_mut()
            {
                while let Some(due) = h.flood.due_ns(h.flood_next)
                    && h.start_ns.saturating_add(due) <= now
                {
                    if let Request::Chat { text } = &mut h.flood_request {
                        text.clear();
                        let _ = write!(text, "f{}", h.flood_next);
                        if h.plan.flood_pad > 0 {
                            text.push(' ');
                            text.extend(std::iter::repeat_n('x', h.plan.flood_pad - 1));
                        }
                    }
                    h.flood_next += 1;
                    if conn.queue(&h.flood_request).is_ok() {
                        h.flood_sent += 1;
                    }
                    sender_dirty = Some(sender);
                }
            }
            if h.pops.slow_readers > 0 && now >= h.next_slow_ns {
                serve_slow_group(
                    h,
                    &mut self.conns,
                    &mut self.clients,
                    &mut self.scratch,
                    now,
                );
                h.slow_group = (h.slow_group + 1) % SLOW_GROUPS;
                let tick = SLOW_TICK.as_nanos() as u64;
                h.next_slow_ns = (h.next_slow_ns + tick).max(now.saturating_sub(tick));
            }
            if now >= h.next_sample_ns {
                probe_members(h, &mut self.conns, &mut self.clients, now);
                sample(server, &mut h.kernel, &mut h.rss, |_, _| {});
                let every = SAMPLE_EVERY.as_nanos() as u64;
                h.next_sample_ns = (h.next_sample_ns + every).max(now);
            }
        }
        let flooders = if h.flooding {
            h.pops.rooms_flooders()
        } else {
            0..0
        };
        if let Some(sender) = sender_dirty {
            self.mark_dirty(sender);
        }
        for (k, c) in flooders.enumerate() {
            let Some(f) = self.hostile.as_deref().map(|h| &h.flooders[k]) else {
                break;
            };
            let (read, write) = (f.read_pending, !f.write_blocked);
            if read && self.clients[c] == Client::Ready {
                self.flooder_read(c, k);
            }
            if write && self.clients[c] == Client::Ready {
                self.flooder_write(c, k);
            }
        }
        for (c, why) in lost.drain(..) {
            if self.clients[c] == Client::Ready {
                self.lose_client(c, why);
            }
        }
        if let Some(h) = self.hostile.as_deref_mut() {
            h.lost = lost;
        }
    }

    /// The run's drain has ended: last probes and counts, flooders closed, memory
    /// sampled.
    pub(super) fn hostile_end(&mut self) {
        let now = self.now_ns();
        let server = self.plan.server_pid.map(Pid::Other);
        let Some(h) = self.hostile.as_deref_mut() else {
            return;
        };
        if h.active {
            probe_members(h, &mut self.conns, &mut self.clients, now);
        }
        h.active = false;
        h.flooding = false;
        h.loris_on = false;
        h.sender_unsent_at_end = h
            .pops
            .flood_sender()
            .and_then(|c| self.conns[c].as_ref())
            .map_or(0, |conn| conn.unsent() as u64);
        h.loris_open_at_end = h
            .pops
            .slowloris()
            .filter(|&c| self.conns[c].is_some())
            .count();
        h.idle_open_at_end = h
            .pops
            .idle_creators()
            .filter(|&c| self.conns[c].is_some())
            .count();
        sample(server, &mut h.kernel, &mut h.rss, |m, v| m.end = Some(v));
        for c in h.pops.rooms_flooders() {
            self.drop_client(c);
        }
    }

    /// After the run: two more seconds, then (with a flood room) leaving it and
    /// `--flood-leave-wait` more; returns the populations' report.
    pub fn finish_hostile(&mut self) -> Result<Option<HostileReport>, BenchError> {
        let server = self.plan.server_pid.map(Pid::Other);
        if self.hostile.is_none() {
            return Ok(None);
        }
        self.idle_for(AFTER_END)?;
        let Some(h) = self.hostile.as_deref_mut() else {
            return Ok(None);
        };
        // The peak is the run's: keep it while taking the later samples.
        let (kernel_peak, rss_peak) = (h.kernel.peak, h.rss.peak);
        sample(server, &mut h.kernel, &mut h.rss, |m, v| {
            m.after_2s = Some(v)
        });
        let pops = h.pops;
        let leave_wait = h.plan.flood_leave_wait;
        if pops.flood() {
            let members = pops.flood_sender().into_iter().chain(pops.slow_readers());
            for c in members.chain(pops.never_readers()).collect::<Vec<_>>() {
                self.drop_client(c);
            }
            self.idle_for(leave_wait)?;
            if let Some(h) = self.hostile.as_deref_mut() {
                sample(server, &mut h.kernel, &mut h.rss, |m, v| {
                    m.after_leave = Some(v);
                });
            }
        }
        let Some(h) = self.hostile.as_deref_mut() else {
            return Ok(None);
        };
        h.kernel.peak = kernel_peak;
        h.rss.peak = rss_peak;
        Ok(Some(self.hostile_report(server.is_some())))
    }

    /// Polls (reading whatever comes, sending nothing) for `how_long`.
    fn idle_for(&mut self, how_long: Duration) -> Result<(), BenchError> {
        let until = Instant::now() + how_long;
        loop {
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            self.poll_once((until - now).min(MAX_WAIT))?;
        }
    }

    fn hostile_report(&self, with_server: bool) -> HostileReport {
        let Some(h) = self.hostile.as_deref() else {
            return HostileReport::default();
        };
        let pops = h.pops;
        let idle_rooms = (pops.idle_rooms > 0).then_some(IdleRoomsReport {
            rooms: pops.idle_rooms,
            messages_received: h.idle_messages,
            closed_by_server: h.idle_closed,
            open_at_end: h.idle_open_at_end,
        });
        let rooms_flooders = (pops.rooms_flooders > 0).then(|| {
            let per_flooder: Vec<FlooderReport> = h
                .flooders
                .iter()
                .map(|f| {
                    let c = f.skim.counts();
                    FlooderReport {
                        requests_sent: if h.request_len > 0 {
                            f.bytes_written / h.request_len as u64
                        } else {
                            0
                        },
                        rooms_results_received: c.rooms_results,
                        other_messages: c.messages - c.rooms_results,
                        bytes_received: c.bytes,
                        disconnected: f.cut_ns.is_some(),
                        disconnected_after_s: f.cut_ns.map(|ns| ns as f64 / 1e9),
                    }
                })
                .collect();
            RoomsFloodReport {
                batch: h.plan.rooms_batch,
                requests_sent: per_flooder.iter().map(|f| f.requests_sent).sum(),
                rooms_results_received: per_flooder.iter().map(|f| f.rooms_results_received).sum(),
                bytes_received: per_flooder.iter().map(|f| f.bytes_received).sum(),
                disconnected: per_flooder.iter().filter(|f| f.disconnected).count(),
                per_flooder,
            }
        });
        let flood = pops.flood().then(|| FloodReport {
            slow_readers: pops.slow_readers,
            never_readers: pops.never_readers,
            read_bps: h.plan.flood_read_bps,
            rate: h.plan.flood_rate,
            pad: h.plan.flood_pad,
            chats_sent: h.flood_sent,
            sender_unsent_bytes_at_end: h.sender_unsent_at_end,
            sender_disconnected: h.sender_cut,
            leave_notices: h.leave_notices,
            slow_bytes_read: h.slow.iter().map(|r| r.bytes).sum(),
            slow_chats_read: h.slow.iter().map(|r| r.skim.counts().chats).sum(),
            slow_readers_cut: h.slow.iter().filter(|r| r.cut_ns.is_some()).count(),
            slow_readers_cut_after_s: spread(h.slow.iter().filter_map(|r| r.cut_ns)),
            never_readers_cut: h.never_cut_ns.iter().flatten().count(),
            never_readers_cut_after_s: spread(h.never_cut_ns.iter().flatten().copied()),
            leave_wait_s: h.plan.flood_leave_wait.as_secs_f64(),
        });
        let slowloris = (pops.slowloris > 0).then(|| SlowlorisReport {
            connections: pops.slowloris,
            interval_ms: u64::try_from(h.plan.slowloris_interval.as_millis()).unwrap_or(u64::MAX),
            bytes_sent: h.loris_bytes,
            cut: h.loris.iter().filter(|l| l.cut_ns.is_some()).count(),
            cut_after_s: spread(h.loris.iter().filter_map(|l| l.cut_ns)),
            open_at_end: h.loris_open_at_end,
        });
        HostileReport {
            connections: pops.extra(),
            setup_s: 0.0,
            idle_rooms,
            rooms_flooders,
            flood,
            slowloris,
            kernel_tcp_mem_kb: h.kernel,
            server_rss_kb: with_server.then_some(h.rss),
        }
    }
}

/// Sends every slowloris byte that is due.
fn trickle(
    h: &mut HostileState,
    conns: &mut [Option<crate::conn::Conn>],
    now: u64,
    lost: &mut Vec<(usize, String)>,
) {
    let interval = u64::try_from(h.plan.slowloris_interval.as_nanos()).unwrap_or(u64::MAX);
    let first = h.pops.slowloris().start;
    // Each connection at most once per call, even when the bench is late.
    for _ in 0..h.loris_queue.len() {
        let Some(&(due, k)) = h.loris_queue.front() else {
            break;
        };
        if due > now {
            break;
        }
        h.loris_queue.pop_front();
        let l = &mut h.loris[k];
        let Some(conn) = conns[first + k].as_mut() else {
            continue;
        };
        if l.cut_ns.is_some() || l.payload >= SLOWLORIS_MAX_BYTES {
            continue;
        }
        match conn.stream.write(&[slowloris_byte(l.payload)]) {
            Ok(1) => {
                l.payload += 1;
                h.loris_bytes += 1;
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                lost.push((first + k, format!("write failed: {e}")));
                continue;
            }
        }
        h.loris_queue.push_back((due.saturating_add(interval), k));
    }
}

/// One slow-reader group reads what its budget allows.
fn serve_slow_group(
    h: &mut HostileState,
    conns: &mut [Option<crate::conn::Conn>],
    clients: &mut [Client],
    scratch: &mut [u8],
    now: u64,
) {
    let first = h.pops.slow_readers().start;
    let t = h.since_start(now);
    for k in (h.slow_group..h.slow.len()).step_by(SLOW_GROUPS) {
        let c = first + k;
        let r = &mut h.slow[k];
        let Some(conn) = conns[c].as_mut() else {
            continue;
        };
        r.budget.refill(now);
        let mut cut = false;
        loop {
            let allowed = r.budget.available().min(scratch.len());
            if allowed == 0 {
                break;
            }
            match conn.stream.read(&mut scratch[..allowed]) {
                Ok(0) => {
                    cut = true;
                    break;
                }
                Ok(n) => {
                    r.budget.spend(n);
                    r.bytes += n as u64;
                    r.skim.feed(&scratch[..n]);
                    if n < allowed {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    cut = true;
                    break;
                }
            }
        }
        if cut {
            r.cut_ns.get_or_insert(t);
            conns[c] = None;
            clients[c] = Client::Dead;
        }
    }
}

/// One `poll(2)` over every flood member still connected: those whose peer closed or
/// reset the connection are cut, and closed.
fn probe_members(
    h: &mut HostileState,
    conns: &mut [Option<crate::conn::Conn>],
    clients: &mut [Client],
    now: u64,
) {
    let pops = h.pops;
    h.pollfds.clear();
    h.poll_owners.clear();
    for c in pops.slow_readers().chain(pops.never_readers()) {
        if let Some(conn) = conns[c].as_ref()
            && clients[c] == Client::Ready
        {
            h.pollfds.push(libc::pollfd {
                fd: conn.stream.as_raw_fd(),
                events: libc::POLLRDHUP,
                revents: 0,
            });
            h.poll_owners.push(c);
        }
    }
    if h.pollfds.is_empty() {
        return;
    }
    // SAFETY: `pollfds` is a valid array of `len` pollfd structs, and its fds stay
    // open for the call (their sockets are in `conns`). A zero timeout never blocks.
    let n = unsafe { libc::poll(h.pollfds.as_mut_ptr(), h.pollfds.len() as libc::nfds_t, 0) };
    if n <= 0 {
        return;
    }
    let t = h.since_start(now);
    for (pfd, &c) in h.pollfds.iter().zip(&h.poll_owners) {
        if pfd.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) == 0 {
            continue;
        }
        match pops.role(c) {
            Role::SlowReader(k) => {
                h.slow[k].cut_ns.get_or_insert(t);
            }
            Role::NeverReader(k) => {
                h.never_cut_ns[k].get_or_insert(t);
            }
            _ => continue,
        }
        conns[c] = None;
        clients[c] = Client::Dead;
    }
}
