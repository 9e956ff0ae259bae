//! `chat-client`: parses the flags, runs a session, turns its end into an exit status.
//! Everything else lives in the library (see `lib.rs` for the layout).

#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use chat_client::cli::Args;
use chat_client::session;
use clap::{CommandFactory, Parser};

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(shell) = args.completions {
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut Args::command(), "chat-client", &mut text);
        return print(&text);
    }
    if args.man {
        let mut text = Vec::new();
        if let Err(e) = clap_mangen::Man::new(Args::command()).render(&mut text) {
            eprintln!("chat-client: cannot make the man page: {e}");
            return ExitCode::FAILURE;
        }
        return print(&text);
    }
    match session::run(&args) {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(error) => {
            eprintln!("chat-client: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Writes `text` to standard output. A reader that stopped early (`| head`) is not an
/// error: what it wanted it got.
fn print(text: &[u8]) -> ExitCode {
    match std::io::stdout().lock().write_all(text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-client: cannot write to standard output: {e}");
            ExitCode::FAILURE
        }
    }
}
