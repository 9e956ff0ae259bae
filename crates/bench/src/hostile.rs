//! The pure parts of the hostile and slow populations (`--idle-rooms`,
//! `--rooms-flooders`, `--flood-*`, `--slowloris`): where their connections sit in the
//! driver's tables, how fast a slow reader may read, how a flooder counts answers
//! without decoding them, and the small statistics the report gives. The sockets and
//! the event loop that use them are in `driver/hostile.rs`.
//!
//! No sockets and no clocks here: times are plain nanosecond numbers.

use std::ops::Range;
use std::time::Duration;

use chat_proto::codec::WireFormat;

/// What the hostile and slow populations should be (the `--idle-rooms`,
/// `--rooms-*`, `--flood-*` and `--slowloris*` flags). The default has none.
#[derive(Debug, Clone, PartialEq)]
pub struct HostilePlan {
    /// Idle rooms, one creator each.
    pub idle_rooms: usize,
    /// `/rooms` flooders.
    pub rooms_flooders: usize,
    /// `/rooms` requests per write of a flooder.
    pub rooms_batch: usize,
    /// Slow readers in the flood room.
    pub flood_members: usize,
    /// Never-readers in the flood room.
    pub flood_never_read: usize,
    /// Bytes/s each slow reader reads.
    pub flood_read_bps: u64,
    /// Chats/s of the flood sender.
    pub flood_rate: u64,
    /// Padding bytes per flood chat.
    pub flood_pad: usize,
    /// How long to wait after leaving the flood room before sampling the server's RSS.
    pub flood_leave_wait: Duration,
    /// Slowloris connections.
    pub slowloris: usize,
    /// Time between two bytes of a slowloris connection.
    pub slowloris_interval: Duration,
}

impl Default for HostilePlan {
    fn default() -> Self {
        Self {
            idle_rooms: 0,
            rooms_flooders: 0,
            rooms_batch: 1024,
            flood_members: 0,
            flood_never_read: 0,
            flood_read_bps: 20_000,
            flood_rate: 1000,
            flood_pad: 100,
            flood_leave_wait: Duration::from_secs(3),
            slowloris: 0,
            slowloris_interval: Duration::from_secs(1),
        }
    }
}

impl HostilePlan {
    /// The connection layout with `measured` clients first.
    pub fn populations(&self, measured: usize) -> Populations {
        Populations {
            measured,
            slow_readers: self.flood_members,
            never_readers: self.flood_never_read,
            idle_rooms: self.idle_rooms,
            rooms_flooders: self.rooms_flooders,
            slowloris: self.slowloris,
        }
    }
}

/// Which population a connection belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A client of the measured rooms (`--rooms` × `--per-room`).
    Measured,
    /// The one client that creates the flood room and sends `--flood-rate` chats/s.
    FloodSender,
    /// A flood-room member that reads at `--flood-read-bps`; the index within them.
    SlowReader(usize),
    /// A flood-room member that never reads; the index within them.
    NeverReader(usize),
    /// The creator of an idle room; the index within them.
    IdleCreator(usize),
    /// A `/rooms` flooder; the index within them.
    RoomsFlooder(usize),
    /// A slowloris connection; the index within them.
    Slowloris(usize),
}

/// How many connections each population has. Connections are numbered (they are
/// the driver's poll tokens) measured clients first, then the flood sender, slow
/// readers, never-readers, idle-room creators, `/rooms` flooders and slowloris, each
/// population in one contiguous range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Populations {
    /// Measured clients.
    pub measured: usize,
    /// Slow readers in the flood room.
    pub slow_readers: usize,
    /// Never-readers in the flood room.
    pub never_readers: usize,
    /// Idle rooms, one creator each.
    pub idle_rooms: usize,
    /// `/rooms` flooders.
    pub rooms_flooders: usize,
    /// Slowloris connections.
    pub slowloris: usize,
}

impl Populations {
    /// Whether the flood room (and so its sender) exists.
    pub fn flood(&self) -> bool {
        self.slow_readers + self.never_readers > 0
    }

    /// The flood sender's index, when there is a flood room.
    pub fn flood_sender(&self) -> Option<usize> {
        self.flood().then_some(self.measured)
    }

    /// Slow readers' indices.
    pub fn slow_readers(&self) -> Range<usize> {
        let start = self.measured + usize::from(self.flood());
        start..start + self.slow_readers
    }

    /// Never-readers' indices.
    pub fn never_readers(&self) -> Range<usize> {
        let start = self.slow_readers().end;
        start..start + self.never_readers
    }

    /// Idle-room creators' indices.
    pub fn idle_creators(&self) -> Range<usize> {
        let start = self.never_readers().end;
        start..start + self.idle_rooms
    }

    /// `/rooms` flooders' indices.
    pub fn rooms_flooders(&self) -> Range<usize> {
        let start = self.idle_creators().end;
        start..start + self.rooms_flooders
    }

    /// Slowloris connections' indices.
    pub fn slowloris(&self) -> Range<usize> {
        let start = self.rooms_flooders().end;
        start..start + self.slowloris
    }

    /// Every connection, all populations together.
    pub fn total(&self) -> usize {
        self.slowloris().end
    }

    /// Connections besides the measured clients.
    pub fn extra(&self) -> usize {
        self.total() - self.measured
    }

    /// The population of connection `c` (which must be below [`Populations::total`]).
    pub fn role(&self, c: usize) -> Role {
        let index_in = |r: Range<usize>| r.contains(&c).then(|| c - r.start);
        if c < self.measured {
            Role::Measured
        } else if Some(c) == self.flood_sender() {
            Role::FloodSender
        } else if let Some(k) = index_in(self.slow_readers()) {
            Role::SlowReader(k)
        } else if let Some(k) = index_in(self.never_readers()) {
            Role::NeverReader(k)
        } else if let Some(k) = index_in(self.idle_creators()) {
            Role::IdleCreator(k)
        } else if let Some(k) = index_in(self.rooms_flooders()) {
            Role::RoomsFlooder(k)
        } else {
            Role::Slowloris(c.saturating_sub(self.slowloris().start))
        }
    }
}

/// A token bucket for one slow reader: `rate` bytes/s, at most `burst` bytes saved up
/// (so a reader served late does not catch up with one big read). Exact integer
/// arithmetic in byte-nanoseconds, so it does not drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadBudget {
    rate: u64,
    burst: u64,
    /// Saved-up credit, bytes × 10⁹.
    credit: u128,
    last_ns: u64,
}

impl ReadBudget {
    /// An empty bucket at `now_ns`, filling at `rate` bytes/s up to `burst` bytes.
    pub fn new(rate: u64, burst: u64, now_ns: u64) -> Self {
        Self {
            rate,
            burst: burst.max(1),
            credit: 0,
            last_ns: now_ns,
        }
    }

    /// Adds the credit earned since the last refill.
    pub fn refill(&mut self, now_ns: u64) {
        let elapsed = now_ns.saturating_sub(self.last_ns);
        self.last_ns = self.last_ns.max(now_ns);
        let cap = u128::from(self.burst) * 1_000_000_000;
        self.credit = (self.credit + u128::from(self.rate) * u128::from(elapsed)).min(cap);
    }

    /// Whole bytes that may be read now.
    pub fn available(&self) -> usize {
        usize::try_from(self.credit / 1_000_000_000).unwrap_or(usize::MAX)
    }

    /// Records that `bytes` were read (at most [`ReadBudget::available`]).
    pub fn spend(&mut self, bytes: usize) {
        self.credit = self.credit.saturating_sub(bytes as u128 * 1_000_000_000);
    }
}

/// What a [`Skimmer`] has counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SkimCounts {
    /// Bytes fed.
    pub bytes: u64,
    /// Complete messages (one frame in JSON, two in protobuf).
    pub messages: u64,
    /// `SCRoomsResult` messages.
    pub rooms_results: u64,
    /// `SCChat` messages.
    pub chats: u64,
    /// `SCSystemMessage` messages.
    pub system: u64,
}

/// How many payload bytes a [`Skimmer`] keeps of each frame to tell its kind.
const SKIM_PREFIX: usize = 48;

/// Counts a server's messages by kind without decoding them or holding whole frames:
/// only each frame's length header and first bytes are looked at, so a flooder can
/// read hundreds of megabytes of `/rooms` answers at little cost.
///
/// JSON: the kind is the first of `"SCRoomsResult"`, `"SCChat"`, `"SCSystemMessage"`
/// found in the frame's first 48 bytes (servers write `type` first; one that does not
/// has its messages counted but not classified). Protobuf: the kind is the Type
/// frame's number (7, 8, 9), and the frame after a Type frame is its body (§3.4).
#[derive(Debug, Clone)]
pub struct Skimmer {
    format: WireFormat,
    header: [u8; 2],
    header_len: u8,
    /// Payload bytes of the current frame still to come.
    remaining: usize,
    prefix: [u8; SKIM_PREFIX],
    prefix_len: usize,
    /// Protobuf: the type number of the body that comes next (`Some(None)`: a Type
    /// frame that did not decode).
    body_of: Option<Option<u8>>,
    counts: SkimCounts,
}

impl Skimmer {
    /// A skimmer for a connection speaking `format`.
    pub fn new(format: WireFormat) -> Self {
        Self {
            format,
            header: [0; 2],
            header_len: 0,
            remaining: 0,
            prefix: [0; SKIM_PREFIX],
            prefix_len: 0,
            body_of: None,
            counts: SkimCounts::default(),
        }
    }

    /// A skimmer taking over a stream mid-way from a decoder (see
    /// [`crate::conn::Conn::take_raw_tail`]): with `body_pending`, the next frame is
    /// the body of a protobuf message of unknown kind.
    pub fn resume(format: WireFormat, body_pending: bool) -> Self {
        let mut s = Self::new(format);
        if body_pending {
            s.body_of = Some(None);
        }
        s
    }

    /// The totals so far.
    pub fn counts(&self) -> SkimCounts {
        self.counts
    }

    /// Takes the next bytes of the stream, split anywhere.
    pub fn feed(&mut self, mut data: &[u8]) {
        self.counts.bytes += data.len() as u64;
        while !data.is_empty() {
            if self.header_len < 2 {
                self.header[usize::from(self.header_len)] = data[0];
                self.header_len += 1;
                data = &data[1..];
                if self.header_len == 2 {
                    self.remaining = usize::from(u16::from_be_bytes(self.header));
                    self.prefix_len = 0;
                    if self.remaining == 0 {
                        self.end_frame();
                    }
                }
                continue;
            }
            let n = self.remaining.min(data.len());
            let keep = n.min(SKIM_PREFIX - self.prefix_len);
            self.prefix[self.prefix_len..self.prefix_len + keep].copy_from_slice(&data[..keep]);
            self.prefix_len += keep;
            self.remaining -= n;
            data = &data[n..];
            if self.remaining == 0 {
                self.end_frame();
            }
        }
    }

    fn end_frame(&mut self) {
        self.header_len = 0;
        let payload = &self.prefix[..self.prefix_len];
        let kind = match self.format {
            WireFormat::Json => {
                let has = |needle: &[u8]| payload.windows(needle.len()).any(|w| w == needle);
                if has(b"\"SCRoomsResult\"") {
                    Some(7)
                } else if has(b"\"SCChat\"") {
                    Some(8)
                } else if has(b"\"SCSystemMessage\"") {
                    Some(9)
                } else {
                    None
                }
            }
            WireFormat::Protobuf => match self.body_of.take() {
                None => {
                    // A Type frame: `08 0N` (field 1, varint N).
                    let kind = match payload {
                        [0x08, n] if *n < 0x80 => Some(*n),
                        _ => None,
                    };
                    self.body_of = Some(kind);
                    return;
                }
                Some(kind) => kind,
            },
        };
        self.counts.messages += 1;
        match kind {
            Some(7) => self.counts.rooms_results += 1,
            Some(8) => self.counts.chats += 1,
            Some(9) => self.counts.system += 1,
            _ => {}
        }
    }
}

/// The 2-byte header a slowloris connection sends: a 65,534-byte frame.
pub const SLOWLORIS_HEADER: [u8; 2] = 65_534u16.to_be_bytes();
/// Payload bytes a slowloris connection sends at most: one short of the frame, so it
/// never completes.
pub const SLOWLORIS_MAX_BYTES: u64 = 65_533;

/// The `i`-th payload byte a slowloris connection sends: `{` first (a JSON start, so a
/// server cannot refuse the frame's format early), then spaces.
pub fn slowloris_byte(i: u64) -> u8 {
    if i == 0 { b'{' } else { b' ' }
}

/// The median and maximum of some values (seconds, milliseconds: the caller's unit);
/// `None` when there are none. The median of an even count is the mean of the middle
/// two.
pub fn median_max(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    Some((median, sorted[n - 1]))
}

/// The open-loop schedule of the flood sender: chat `i` is due `i / rate` seconds
/// after the start, `total` chats in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodSchedule {
    rate: u64,
    total: u64,
}

impl FloodSchedule {
    /// `rate` chats/s for `duration_s` seconds (nothing at rate 0).
    pub fn new(rate: u64, duration_s: f64) -> Self {
        Self {
            rate,
            total: (rate as f64 * duration_s.max(0.0)).round() as u64,
        }
    }

    /// Chats in all.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// When chat `i` is due, nanoseconds after the start (`None` past the end).
    pub fn due_ns(&self, i: u64) -> Option<u64> {
        (i < self.total && self.rate > 0).then(|| {
            u64::try_from(u128::from(i) * 1_000_000_000 / u128::from(self.rate)).unwrap_or(u64::MAX)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_proto::Response;
    use chat_proto::codec::encode_response;

    #[test]
    fn populations_are_contiguous_ranges_in_order() {
        let p = Populations {
            measured: 4,
            slow_readers: 2,
            never_readers: 1,
            idle_rooms: 3,
            rooms_flooders: 2,
            slowloris: 2,
        };
        assert_eq!(p.flood_sender(), Some(4));
        assert_eq!(p.slow_readers(), 5..7);
        assert_eq!(p.never_readers(), 7..8);
        assert_eq!(p.idle_creators(), 8..11);
        assert_eq!(p.rooms_flooders(), 11..13);
        assert_eq!(p.slowloris(), 13..15);
        assert_eq!((p.total(), p.extra()), (15, 11));
        let roles: Vec<Role> = (0..p.total()).map(|c| p.role(c)).collect();
        use Role::*;
        assert_eq!(
            roles,
            vec![
                Measured,
                Measured,
                Measured,
                Measured,
                FloodSender,
                SlowReader(0),
                SlowReader(1),
                NeverReader(0),
                IdleCreator(0),
                IdleCreator(1),
                IdleCreator(2),
                RoomsFlooder(0),
                RoomsFlooder(1),
                Slowloris(0),
                Slowloris(1),
            ]
        );
        // No flood room: no sender slot either.
        let q = Populations {
            measured: 4,
            slowloris: 1,
            ..Populations::default()
        };
        assert_eq!(q.flood_sender(), None);
        assert_eq!((q.total(), q.role(4)), (5, Slowloris(0)));
        let only_never = Populations {
            measured: 2,
            never_readers: 3,
            ..Populations::default()
        };
        assert_eq!(only_never.flood_sender(), Some(2));
        assert_eq!(only_never.never_readers(), 3..6);
    }

    #[test]
    fn read_budget_holds_the_rate_over_time() {
        // 20,000 B/s served every 100 ms, reading everything allowed: 10 s → 200,000 B.
        let mut b = ReadBudget::new(20_000, 4_000, 0);
        let mut read = 0;
        for tick in 1..=100u64 {
            b.refill(tick * 100_000_000);
            let n = b.available();
            assert!(n <= 4_000);
            b.spend(n);
            read += n;
        }
        assert_eq!(read, 200_000);
        // Ticks worth a fractional number of bytes (7.5) lose nothing to rounding.
        let mut b = ReadBudget::new(1_000, 1_000, 0);
        let mut read = 0;
        for tick in 1..=1000u64 {
            b.refill(tick * 7_500_000);
            let n = b.available().min(10);
            assert!(n <= 8);
            b.spend(n);
            read += n;
        }
        assert_eq!(read + b.available(), 7_500);
        assert_eq!(b.available(), 0);
        // A reader that takes less than allowed saves up, but only to the burst.
        let mut b = ReadBudget::new(1_000, 1_000, 0);
        let mut read = 0;
        for tick in 1..=1000u64 {
            b.refill(tick * 7_000_000);
            let n = b.available().min(5);
            b.spend(n);
            read += n;
        }
        assert_eq!(read, 5_000);
        assert_eq!(b.available(), 995, "capped at 1,000, then 5 read");
    }

    #[test]
    fn read_budget_caps_savings_and_ignores_time_going_back() {
        let mut b = ReadBudget::new(20_000, 4_000, 1_000);
        assert_eq!(b.available(), 0);
        b.refill(1_000 + 60_000_000_000); // a minute unserved
        assert_eq!(b.available(), 4_000, "capped at the burst");
        b.spend(4_000);
        b.refill(500); // an earlier time: no credit, no panic
        assert_eq!(b.available(), 0);
        b.refill(1_000 + 60_000_000_000 + 50_000_000);
        assert_eq!(b.available(), 1_000);
        b.spend(10_000); // more than available: floors at zero
        assert_eq!(b.available(), 0);
    }

    fn wire(format: WireFormat, responses: &[Response<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in responses {
            encode_response(format, r, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn skimmer_counts_messages_by_kind_split_anywhere() {
        let rooms = Response::RoomsResult {
            rooms: (0..1000)
                .map(|i| chat_proto::RoomInfo {
                    room_id: i,
                    title: format!("t{i}"),
                    members: vec![format!("m{i}")],
                    topic: None,
                })
                .collect(),
        };
        let responses = [
            Response::system("x"),
            rooms.clone(),
            Response::Chat {
                member: "a".into(),
                text: "SCRoomsResult".into(),
            },
            Response::RoomsResult { rooms: vec![] },
            rooms,
        ];
        for format in WireFormat::ALL {
            let data = wire(format, &responses);
            for chunk in [1, 2, 3, 1000, 65_536, data.len()] {
                let mut s = Skimmer::new(format);
                for piece in data.chunks(chunk) {
                    s.feed(piece);
                }
                let c = s.counts();
                assert_eq!(c.bytes, data.len() as u64);
                assert_eq!(
                    (c.messages, c.rooms_results, c.chats, c.system),
                    (5, 3, 1, 1),
                    "{format} in chunks of {chunk}"
                );
            }
        }
    }

    #[test]
    fn skimmer_keeps_protobuf_in_step_after_a_bad_type_frame() {
        let mut data = Vec::new();
        chat_proto::frame::write_frame(&mut data, b"\xff\xff").unwrap(); // bad Type frame
        chat_proto::frame::write_frame(&mut data, b"\x08\x07").unwrap(); // its body
        data.extend(wire(
            WireFormat::Protobuf,
            &[Response::RoomsResult { rooms: vec![] }],
        ));
        let mut s = Skimmer::new(WireFormat::Protobuf);
        s.feed(&data);
        let c = s.counts();
        assert_eq!((c.messages, c.rooms_results), (2, 1));
    }

    #[test]
    fn skimmer_resumes_after_a_decoder_in_protobuf() {
        let data = wire(
            WireFormat::Protobuf,
            &[
                Response::system("a"),
                Response::RoomsResult { rooms: vec![] },
            ],
        );
        // The decoder took the first Type frame (4 bytes): the body comes next.
        let mut s = Skimmer::resume(WireFormat::Protobuf, true);
        s.feed(&data[4..]);
        let c = s.counts();
        assert_eq!((c.messages, c.system, c.rooms_results), (2, 0, 1));
    }

    #[test]
    fn slowloris_never_completes_its_frame() {
        assert_eq!(SLOWLORIS_HEADER, [0xff, 0xfe]);
        assert_eq!(u16::from_be_bytes(SLOWLORIS_HEADER), 65_534);
        const { assert!(SLOWLORIS_MAX_BYTES < 65_534) };
        assert_eq!((slowloris_byte(0), slowloris_byte(1)), (b'{', b' '));
    }

    #[test]
    fn median_and_max() {
        assert_eq!(median_max(&[]), None);
        assert_eq!(median_max(&[3.0]), Some((3.0, 3.0)));
        assert_eq!(median_max(&[5.0, 1.0, 3.0]), Some((3.0, 5.0)));
        assert_eq!(median_max(&[4.0, 1.0, 2.0, 3.0]), Some((2.5, 4.0)));
    }

    #[test]
    fn flood_schedule() {
        let s = FloodSchedule::new(1000, 2.5);
        assert_eq!(s.total(), 2500);
        assert_eq!(s.due_ns(0), Some(0));
        assert_eq!(s.due_ns(1), Some(1_000_000));
        assert_eq!(s.due_ns(2499), Some(2_499_000_000));
        assert_eq!(s.due_ns(2500), None);
        assert_eq!(FloodSchedule::new(0, 5.0).due_ns(0), None);
    }
}
