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

    /// Wire format spoken by every client.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,

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

    /// PID of the server process, to report its CPU time and memory (same machine).
    #[arg(long)]
    pub server_pid: Option<u32>,

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
        Ok(())
    }

    /// `--drain` as a duration.
    pub fn drain(&self) -> Duration {
        Duration::from_secs_f64(self.drain)
    }

    /// `--setup-timeout` as a duration.
    pub fn setup_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.setup_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("chat-bench").chain(args.iter().copied())).unwrap()
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
}
