//! Command-line flags, and the checks on them that clap cannot express.
//!
//! Only parsing and validation live here; [`crate::run`] does the work.

use std::time::Duration;

use chat_proto::WireFormat;
use clap::{Parser, ValueEnum};

/// Open-loop load generator for chat servers speaking the course protocol.
///
/// Sets up ROOMS rooms of PER_ROOM clients, then sends RATE chats/s in total on a
/// fixed schedule for DURATION seconds and checks that every member receives every
/// other member's chats exactly once and in order. Latency is measured from each
/// chat's intended send time, so a server that falls behind cannot hide its queueing.
#[derive(Debug, Clone, Parser)]
#[command(name = "chat-bench", version, args_override_self = true)]
pub struct Args {
    /// Server host name or address.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// Server port.
    #[arg(long, default_value_t = 9000)]
    pub port: u16,

    /// Ports of several servers on --host (the nodes of a cluster), comma-separated;
    /// overrides --port. Client i connects to the (i mod n)-th, so every room has
    /// members on every node (given --per-room ≥ n). Hostile populations use the
    /// first.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub ports: Vec<u16>,

    /// The port(s) are the server's web port (`chat-server --web`): every client speaks
    /// JSON over the WebSocket at /ws instead of TCP frames (implies --format=json).
    #[arg(long)]
    pub web: bool,

    /// Every client speaks TLS: the port(s) are the server's TLS port
    /// (`chat-server --tls-port`), or with --web its web port serving `wss://`. Needs
    /// --tls-ca or --tls-insecure. The handshake is part of setup, never of a run.
    #[arg(long)]
    pub tls: bool,

    /// With --tls: trust the certificates in this PEM file (the server's own when it
    /// is self-signed, or its CA).
    #[arg(long, value_name = "PEM", conflicts_with = "tls_insecure")]
    pub tls_ca: Option<std::path::PathBuf>,

    /// With --tls: accept any certificate. The traffic is encrypted all the same, so
    /// the cost measured is the same, but the server is not authenticated.
    #[arg(long)]
    pub tls_insecure: bool,

    /// With --tls: the name the server's certificate must carry (the bench connects
    /// to --host's address).
    #[arg(long, default_value = "localhost", value_name = "NAME")]
    pub tls_server_name: String,

    /// Protocol spoken by every client: `chat` (ours, in --format), or a peer's for
    /// comparison: `irc` (NICK/USER, JOIN #room, PRIVMSG; InspIRCd, ngIRCd) or
    /// `nats` (CONNECT with echo off, SUB/PUB on room.<title>; nats-server).
    #[arg(long, value_enum, default_value_t = ProtocolArg::Chat)]
    pub protocol: ProtocolArg,

    /// Set TCP_QUICKACK on every socket after each read, so the bench's ACKs are not
    /// delayed (servers without TCP_NODELAY would otherwise stall up to 40 ms on
    /// Nagle). Default: on for --protocol=irc|nats, off for chat.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub quickack: Option<bool>,

    /// Wire format spoken by every client.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,

    /// Make the rooms registered rooms, whose history a server with a store keeps on
    /// disk: during setup one extra connection opts in to `accounts`, registers an
    /// account (`bench-owner-<pid>-<nonce>`), creates every room (registering it to
    /// the account) and leaves it; then every member joins the rooms, and the owner
    /// is closed. Needs a server that offers accounts (one with its store, or a
    /// cluster node; not one run with --no-store) and, beyond about 45 rooms, flood
    /// control off (the owner sends two commands per room). Not with
    /// --protocol=irc|nats.
    #[arg(long)]
    pub registered_rooms: bool,

    /// Number of rooms.
    #[arg(long, default_value_t = 10)]
    pub rooms: usize,

    /// Clients per room (at least 2: a chat is never echoed to its sender).
    #[arg(long, default_value_t = 10)]
    pub per_room: usize,

    /// Total chats per second, all clients together (the start rate with --find-max).
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,

    /// Seconds of sending (per step with --find-max).
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,

    /// Extra bytes per chat text: a space, then PAD−1 times 'x'.
    #[arg(long, default_value_t = 0)]
    pub pad: usize,

    /// Seconds to wait after the last send for chats still in flight; whatever has
    /// not arrived by then is lost.
    #[arg(long, default_value_t = 2.0)]
    pub drain: f64,

    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,

    /// Split the run over this many bench processes (each with a share of the rooms
    /// and the rate), for more connections than one process may hold; the report is
    /// merged, each latency figure the worst process's. 0: as many as the open-file
    /// limit needs. Fixed-rate runs only.
    #[arg(long, default_value_t = 1)]
    pub processes: u32,

    /// A prefix for every client's name (names are unique server- or cluster-wide: bench
    /// processes sharing a server need different tags).
    #[arg(long, default_value = "", value_name = "TAG")]
    pub name_tag: String,

    /// After setup, wait (up to --setup-timeout) until this file exists before the run:
    /// how several bench processes, each below the open-file limit, start their runs
    /// together (`bench/run.sh` creates it once every process reports it is waiting).
    #[arg(long, value_name = "PATH")]
    pub start_when: Option<std::path::PathBuf>,

    /// PID of the server process, to report its CPU time and memory (same machine).
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// Other processes whose CPU time each step reports, in this order (a cluster's
    /// Redis and its other nodes), comma-separated.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub also_pid: Vec<u32>,

    /// Search for the highest rate whose p99 stays under --p99-max-ms with nothing
    /// lost, duplicated or reordered, starting at --rate.
    #[arg(long)]
    pub find_max: bool,

    /// The p99 latency bound for --find-max, milliseconds.
    #[arg(long, default_value_t = 10.0)]
    pub p99_max_ms: f64,

    /// Highest rate --find-max will try, chats/s.
    #[arg(long, default_value_t = 10_000_000)]
    pub max_rate: u64,

    /// --find-max stops when the bracket is narrower than this fraction of the rate.
    #[arg(long, default_value_t = 0.05)]
    pub precision: f64,

    /// At most this many --find-max steps.
    #[arg(long, default_value_t = 16)]
    pub max_steps: u32,

    /// At most this many connections being set up at once (connecting or waiting for
    /// the server's reply to /create or /join). Keeps the server's accept queue short
    /// so 10,000 connections set up without SYN drops and retransmits.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,

    /// Seconds allowed for connecting and joining every client.
    #[arg(long, default_value_t = 120.0)]
    pub setup_timeout: f64,

    // ----- hostile and slow clients (all off by default) -------------------------
    /// Extra rooms, each created by one extra client that then stays without
    /// chatting (it reads whatever comes). Makes `/rooms` answers big.
    #[arg(long, default_value_t = 0, help_heading = "Hostile and slow clients")]
    pub idle_rooms: usize,

    /// Extra connections in no room that, during the run, write `/rooms` requests in
    /// batches of --rooms-batch as fast as the socket takes them and read (and
    /// discard) every answer as fast as they can.
    #[arg(long, default_value_t = 0, help_heading = "Hostile and slow clients")]
    pub rooms_flooders: usize,

    /// `/rooms` requests per write of a --rooms-flooders connection.
    #[arg(
        long,
        default_value_t = 1024,
        help_heading = "Hostile and slow clients"
    )]
    pub rooms_batch: usize,

    /// Members of an extra "flood" room that read slowly, at --flood-read-bps each.
    #[arg(long, default_value_t = 0, help_heading = "Hostile and slow clients")]
    pub flood_members: usize,

    /// Bytes per second each slow flood-room member reads (20,000 is roughly a
    /// Python client printing every line).
    #[arg(
        long,
        default_value_t = 20_000,
        help_heading = "Hostile and slow clients"
    )]
    pub flood_read_bps: u64,

    /// Extra members of the flood room that never read at all.
    #[arg(long, default_value_t = 0, help_heading = "Hostile and slow clients")]
    pub flood_never_read: usize,

    /// Chats per second one flood sender sends into the flood room for the whole run
    /// (used when --flood-members or --flood-never-read is set).
    #[arg(
        long,
        default_value_t = 1000,
        help_heading = "Hostile and slow clients"
    )]
    pub flood_rate: u64,

    /// Padding bytes per flood chat.
    #[arg(long, default_value_t = 100, help_heading = "Hostile and slow clients")]
    pub flood_pad: usize,

    /// Seconds to wait after closing every flood-room connection at the end before
    /// sampling memory again (the kernel's TCP memory, and the server's RSS with
    /// --server-pid).
    #[arg(long, default_value_t = 3.0, help_heading = "Hostile and slow clients")]
    pub flood_leave_wait: f64,

    /// Extra connections that each send the 2-byte header of a 65,534-byte frame and
    /// then one more byte every --slowloris-interval-ms, never completing it.
    #[arg(long, default_value_t = 0, help_heading = "Hostile and slow clients")]
    pub slowloris: usize,

    /// Milliseconds between two bytes of a --slowloris connection.
    #[arg(
        long,
        default_value_t = 1000,
        help_heading = "Hostile and slow clients"
    )]
    pub slowloris_interval_ms: u64,
}

/// `--protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtocolArg {
    /// Ours (docs/PROTOCOL.md).
    Chat,
    /// IRC (RFC 1459/2812 client side).
    Irc,
    /// NATS core.
    Nats,
}

impl ProtocolArg {
    /// The peer protocol, `None` for ours.
    pub fn peer(self) -> Option<crate::peer::Protocol> {
        match self {
            ProtocolArg::Chat => None,
            ProtocolArg::Irc => Some(crate::peer::Protocol::Irc),
            ProtocolArg::Nats => Some(crate::peer::Protocol::Nats),
        }
    }
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object per frame.
    Json,
    /// Two frames per message: a Type frame, then the body.
    Protobuf,
}

impl From<Format> for WireFormat {
    fn from(f: Format) -> Self {
        match f {
            Format::Json => WireFormat::Json,
            Format::Protobuf => WireFormat::Protobuf,
        }
    }
}

impl Args {
    /// Checks that clap's types cannot express; the message names the flag.
    pub fn validate(&self) -> Result<(), String> {
        if self.processes != 1 && (self.find_max || self.extra_connections() > 0) {
            return Err(
                "--processes splits fixed-rate runs without hostile populations only".into(),
            );
        }
        if self.processes as usize > self.rooms.max(1) {
            return Err("--processes cannot exceed --rooms".into());
        }
        if self.web && self.format == Format::Protobuf {
            return Err("--web clients speak JSON (the WebSocket carries the JSON format)".into());
        }
        if self.web && self.extra_connections() > 0 {
            return Err(
                "--web does not combine with the hostile populations (they speak TCP)".into(),
            );
        }
        self.validate_tls()?;
        self.validate_protocol()?;
        if self.rooms == 0 {
            return Err("--rooms must be at least 1".into());
        }
        if self.per_room < 2 {
            return Err(
                "--per-room must be at least 2 (chats are not echoed to their sender)".into(),
            );
        }
        if u32::try_from(self.rooms * self.per_room).is_err() {
            return Err("--rooms × --per-room is too large".into());
        }
        if self.rate == 0 {
            return Err("--rate must be at least 1".into());
        }
        for (flag, value) in [
            ("--duration", self.duration),
            ("--drain", self.drain),
            ("--setup-timeout", self.setup_timeout),
            ("--p99-max-ms", self.p99_max_ms),
        ] {
            if !(value.is_finite() && value > 0.0 && value < 1e7) {
                return Err(format!(
                    "{flag} must be a positive number of reasonable size"
                ));
            }
        }
        if self.pad > 60_000 {
            return Err("--pad must fit in one frame (at most 60000)".into());
        }
        if self.connect_concurrency == 0 {
            return Err("--connect-concurrency must be at least 1".into());
        }
        self.validate_hostile()
    }

    /// Whether to set TCP_QUICKACK after reads (`--quickack`, else by protocol).
    pub fn quickack(&self) -> bool {
        self.quickack.unwrap_or(self.protocol != ProtocolArg::Chat)
    }

    /// A peer's protocol goes over plain TCP, without hostile populations, and an
    /// IRC chat must fit one 512-byte line.
    fn validate_protocol(&self) -> Result<(), String> {
        if self.protocol == ProtocolArg::Chat {
            return Ok(());
        }
        if self.web || self.tls || self.extra_connections() > 0 {
            return Err(
                "--protocol=irc|nats does not combine with --web, --tls or the hostile populations"
                    .into(),
            );
        }
        if self.registered_rooms {
            return Err(
                "--registered-rooms needs our protocol's accounts (--protocol=chat)".into(),
            );
        }
        // Room titles are `<4 base-36 digits>.<room in base 36>`.
        let title_len = 5 + format!("{}", self.rooms.max(1)).len();
        let max = crate::peer::irc_max_pad(title_len);
        if self.protocol == ProtocolArg::Irc && self.pad > max {
            return Err(format!(
                "--pad={} does not fit an IRC line: a chat is `PRIVMSG #room :<stamp> <pad>` \
                 and, relayed with the sender's `:nick!user@host` prefix, must stay within \
                 512 bytes; with {} rooms at most --pad={max}",
                self.pad, self.rooms
            ));
        }
        Ok(())
    }

    /// The checks on the TLS flags: whom to trust is never left to a default.
    fn validate_tls(&self) -> Result<(), String> {
        if !self.tls {
            if self.tls_ca.is_some() || self.tls_insecure {
                return Err("--tls-ca and --tls-insecure need --tls".into());
            }
            return Ok(());
        }
        if self.tls_ca.is_none() && !self.tls_insecure {
            return Err("--tls needs --tls-ca=PEM (the certificates to trust: the \
                        server's own if self-signed, or its CA) or, to accept any \
                        certificate, --tls-insecure"
                .into());
        }
        if self.extra_connections() > 0 {
            return Err("--tls does not combine with the hostile populations (they \
                        write raw bytes)"
                .into());
        }
        Ok(())
    }

    /// The checks on the hostile-client flags.
    fn validate_hostile(&self) -> Result<(), String> {
        if !self.hostile() {
            return Ok(());
        }
        if self.find_max {
            return Err(
                "--find-max cannot be combined with --idle-rooms, --rooms-flooders, \
                        --flood-members, --flood-never-read or --slowloris"
                    .into(),
            );
        }
        if self.extra_connections() + self.rooms * self.per_room > 1_000_000 {
            return Err("too many connections in all (at most 1,000,000)".into());
        }
        if self.rooms_flooders > 0 && !(1..=100_000).contains(&self.rooms_batch) {
            return Err("--rooms-batch must be between 1 and 100000".into());
        }
        if self.flood() {
            if self.flood_members > 0 && self.flood_read_bps == 0 {
                return Err("--flood-read-bps must be at least 1".into());
            }
            if self.flood_pad > 60_000 {
                return Err("--flood-pad must fit in one frame (at most 60000)".into());
            }
            if !(self.flood_leave_wait.is_finite() && (0.0..1e6).contains(&self.flood_leave_wait)) {
                return Err("--flood-leave-wait must be a number of seconds ≥ 0".into());
            }
        }
        if self.slowloris > 0 && self.slowloris_interval_ms == 0 {
            return Err("--slowloris-interval-ms must be at least 1".into());
        }
        Ok(())
    }

    /// Whether any hostile or slow population is asked for.
    pub fn hostile(&self) -> bool {
        self.extra_connections() > 0
    }

    /// Whether the flood room is asked for (slow readers or never-readers).
    pub fn flood(&self) -> bool {
        self.flood_members + self.flood_never_read > 0
    }

    /// Connections besides the measured rooms' clients: idle-room creators, `/rooms`
    /// flooders, the flood room (its members and one sender) and slowloris.
    pub fn extra_connections(&self) -> usize {
        let flood = if self.flood() {
            self.flood_members + self.flood_never_read + 1
        } else {
            0
        };
        self.idle_rooms + self.rooms_flooders + flood + self.slowloris
    }

    /// `--drain` as a duration.
    pub fn drain(&self) -> Duration {
        Duration::from_secs_f64(self.drain)
    }

    /// `--setup-timeout` as a duration.
    pub fn setup_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.setup_timeout)
    }

    /// `--flood-leave-wait` as a duration.
    pub fn flood_leave_wait(&self) -> Duration {
        Duration::from_secs_f64(self.flood_leave_wait.max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("chat-bench").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn a_split_run_is_fixed_rate_and_has_a_room_per_process() {
        assert!(parse(&["--processes=3", "--rooms=30"]).validate().is_ok());
        assert!(
            parse(&["--processes=3", "--rooms=30", "--find-max"])
                .validate()
                .is_err()
        );
        assert!(parse(&["--processes=3", "--rooms=2"]).validate().is_err());
        assert!(
            parse(&["--processes=2", "--rooms=30", "--slowloris=10"])
                .validate()
                .is_err()
        );
    }

    #[test]
    fn peer_protocols_refuse_what_they_cannot_carry() {
        let irc = parse(&["--protocol=irc"]);
        assert!(irc.validate().is_ok());
        assert!(irc.quickack());
        assert!(!parse(&[]).quickack());
        assert!(!parse(&["--protocol=nats", "--quickack=false"]).quickack());
        assert!(parse(&["--quickack"]).quickack());
        let why = parse(&["--protocol=irc", "--pad=400"])
            .validate()
            .unwrap_err();
        assert!(why.contains("512 bytes"), "{why}");
        assert!(parse(&["--protocol=irc", "--pad=300"]).validate().is_ok());
        // NATS has no line limit.
        assert!(parse(&["--protocol=nats", "--pad=4000"]).validate().is_ok());
        for flags in [
            ["--protocol=nats", "--web"],
            ["--protocol=irc", "--slowloris=5"],
        ] {
            assert!(parse(&flags).validate().is_err(), "{flags:?}");
        }
    }

    #[test]
    fn registered_rooms_are_ours_only() {
        assert!(!parse(&[]).registered_rooms);
        assert!(parse(&["--registered-rooms"]).validate().is_ok());
        assert!(
            parse(&["--registered-rooms", "--find-max", "--format=protobuf"])
                .validate()
                .is_ok()
        );
        for protocol in ["--protocol=irc", "--protocol=nats"] {
            let why = parse(&["--registered-rooms", protocol])
                .validate()
                .unwrap_err();
            assert!(why.contains("--registered-rooms"), "{why}");
        }
    }

    #[test]
    fn defaults_and_flags() {
        let a = parse(&[]);
        assert_eq!((a.port, a.rooms, a.per_room, a.rate), (9000, 10, 10, 1000));
        assert_eq!(a.format, Format::Json);
        assert!(a.validate().is_ok());
        let a = parse(&[
            "--port=7",
            "--format=protobuf",
            "--rooms=3",
            "--per-room=4",
            "--rate=200",
            "--duration=1",
            "--json",
            "--find-max",
            "--server-pid=99",
        ]);
        assert_eq!(WireFormat::from(a.format), WireFormat::Protobuf);
        assert_eq!((a.port, a.rooms, a.per_room, a.rate), (7, 3, 4, 200));
        assert!(a.json && a.find_max);
        assert_eq!(a.server_pid, Some(99));
    }

    #[test]
    fn validation_names_the_flag() {
        assert!(
            parse(&["--per-room=1"])
                .validate()
                .unwrap_err()
                .contains("--per-room")
        );
        assert!(
            parse(&["--rooms=0"])
                .validate()
                .unwrap_err()
                .contains("--rooms")
        );
        assert!(
            parse(&["--duration=0"])
                .validate()
                .unwrap_err()
                .contains("--duration")
        );
        assert!(
            parse(&["--drain=-1"])
                .validate()
                .unwrap_err()
                .contains("--drain")
        );
        assert!(
            parse(&["--pad=70000"])
                .validate()
                .unwrap_err()
                .contains("--pad")
        );
    }

    #[test]
    fn tls_needs_a_trust_decision() {
        let a = parse(&[]);
        assert!(!a.tls && a.tls_ca.is_none() && !a.tls_insecure);
        assert_eq!(a.tls_server_name, "localhost");
        let why = parse(&["--tls"]).validate().unwrap_err();
        assert!(
            why.contains("--tls-ca") && why.contains("--tls-insecure"),
            "{why}"
        );
        assert!(parse(&["--tls", "--tls-insecure"]).validate().is_ok());
        assert!(
            parse(&["--tls", "--tls-ca=/x.pem", "--tls-server-name=chat.example"])
                .validate()
                .is_ok()
        );
        assert!(parse(&["--tls-insecure"]).validate().is_err());
        assert!(parse(&["--tls-ca=/x.pem"]).validate().is_err());
        assert!(
            Args::try_parse_from(["chat-bench", "--tls", "--tls-ca=/x", "--tls-insecure"]).is_err()
        );
        assert!(
            parse(&["--tls", "--tls-insecure", "--slowloris=1"])
                .validate()
                .is_err()
        );
        assert!(
            parse(&["--tls", "--tls-insecure", "--web"])
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn hostile_flags_are_off_by_default() {
        let a = parse(&[]);
        assert!(!a.hostile() && !a.flood());
        assert_eq!(a.extra_connections(), 0);
        assert_eq!(
            (a.rooms_batch, a.flood_read_bps, a.flood_rate),
            (1024, 20_000, 1000)
        );
        assert_eq!((a.flood_pad, a.slowloris_interval_ms), (100, 1000));
        assert_eq!(a.flood_leave_wait(), Duration::from_secs(3));
    }

    #[test]
    fn hostile_flags_count_their_connections_and_are_checked() {
        let a = parse(&[
            "--idle-rooms=5",
            "--rooms-flooders=2",
            "--flood-members=3",
            "--flood-never-read=4",
            "--slowloris=6",
        ]);
        assert!(a.hostile() && a.flood());
        // 5 idle + 2 flooders + 3 slow + 4 never + 1 flood sender + 6 slowloris.
        assert_eq!(a.extra_connections(), 21);
        assert!(a.validate().is_ok());
        assert!(parse(&["--flood-never-read=1"]).flood());
        for (flags, flag) in [
            (&["--slowloris=1", "--find-max"][..], "--find-max"),
            (
                &["--rooms-flooders=1", "--rooms-batch=0"][..],
                "--rooms-batch",
            ),
            (
                &["--flood-members=1", "--flood-read-bps=0"][..],
                "--flood-read-bps",
            ),
            (
                &["--flood-members=1", "--flood-pad=70000"][..],
                "--flood-pad",
            ),
            (
                &["--flood-members=1", "--flood-leave-wait=-1"][..],
                "--flood-leave-wait",
            ),
            (
                &["--slowloris=1", "--slowloris-interval-ms=0"][..],
                "--slowloris-interval-ms",
            ),
        ] {
            let why = parse(flags).validate().unwrap_err();
            assert!(why.contains(flag), "{flags:?}: {why}");
        }
        // Flags of an unused population are not checked.
        assert!(
            parse(&["--rooms-batch=0", "--flood-read-bps=0"])
                .validate()
                .is_ok()
        );
    }
}
