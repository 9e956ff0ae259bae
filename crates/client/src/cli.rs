//! The command-line flags, named and defaulted like the reference client's absl flags.
//!
//! clap accepts both `--port=9000` and `--port 9000`, as absl does. Only parsing lives
//! here; what the flags mean is decided by [`crate::session`].

use chat_proto::WireFormat;
use clap::{Parser, ValueEnum};

/// Interactive chat client (JSON or protobuf over TCP).
///
/// Type a line to chat in the current room, or a command: /help, /name, /rooms,
/// /create, /join, /leave, /shutdown. End input (Ctrl-D) to quit.
#[derive(Debug, Clone, Parser)]
#[command(name = "chat-client", version)]
pub struct Args {
    /// Server IP address (or host name).
    #[arg(long, default_value = "127.0.0.1")]
    pub ip: String,

    /// Server port (the server's default too).
    #[arg(long, default_value_t = 9000)]
    pub port: u16,

    /// Message format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,

    /// Connect over TLS (the server's --tls-port). The server must prove it is --ip
    /// (or --server-name) with a certificate the system trusts, or one from --ca.
    #[arg(long)]
    pub tls: bool,

    /// With --tls: trust the certificates in this PEM file instead of the system's
    /// (for a server with a self-signed certificate: its cert.pem).
    #[arg(long, value_name = "PEM", requires = "tls")]
    pub ca: Option<std::path::PathBuf>,

    /// With --tls: the name the server's certificate must carry, when --ip is an
    /// address or another name for it.
    #[arg(long, value_name = "NAME", requires = "tls")]
    pub server_name: Option<String>,

    /// With --tls: accept any certificate. Still encrypted, but whoever sits between
    /// can read and change everything; for tests only.
    #[arg(long, requires = "tls", conflicts_with = "ca")]
    pub insecure: bool,

    /// Debug output: 0 none, 1 every frame sent and received, 2 also socket byte counts.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub verbosity: u8,

    /// Print shell completions for SHELL (bash, zsh, fish, elvish, powershell) and exit.
    #[arg(long, value_name = "SHELL")]
    pub completions: Option<clap_complete::Shell>,

    /// Print the man page (roff; `chat-client --man | man -l -`) and exit.
    #[arg(long)]
    pub man: bool,
}

/// The `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object per frame.
    Json,
    /// Two frames per message: a Type frame, then the body.
    Protobuf,
}

impl From<Format> for WireFormat {
    fn from(format: Format) -> Self {
        match format {
            Format::Json => WireFormat::Json,
            Format::Protobuf => WireFormat::Protobuf,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("chat-client").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_match_the_reference() {
        let args = parse(&["--port=9000"]).unwrap();
        assert_eq!(args.ip, "127.0.0.1");
        assert_eq!(args.port, 9000);
        assert_eq!(args.format, Format::Json);
        assert_eq!(args.verbosity, 0);
    }

    #[test]
    fn both_flag_spellings_work() {
        let args = parse(&["--port", "9001", "--format", "protobuf", "--verbosity=2"]).unwrap();
        assert_eq!(args.port, 9001);
        assert_eq!(args.format, Format::Protobuf);
        assert_eq!(args.verbosity, 2);
        assert_eq!(WireFormat::from(args.format), WireFormat::Protobuf);
    }

    #[test]
    fn bad_values_are_refused() {
        assert_eq!(parse(&[]).unwrap().port, 9000, "the server's default port");
        assert!(parse(&["--port=70000"]).is_err());
        assert!(parse(&["--port=1", "--verbosity=3"]).is_err());
        assert!(parse(&["--port=1", "--format=xml"]).is_err());
    }
}
