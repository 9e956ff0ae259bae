//! `chat-client`: parses the flags, runs a session, turns its end into an exit status.
//! Everything else lives in the library (see `lib.rs` for the layout).

#![forbid(unsafe_code)]

use std::process::ExitCode;

use chat_client::cli::Args;
use chat_client::session;
use clap::{CommandFactory, Parser};

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(shell) = args.completions {
        clap_complete::generate(
            shell,
            &mut Args::command(),
            "chat-client",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    if args.man {
        return match clap_mangen::Man::new(Args::command()).render(&mut std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("chat-client: cannot write the man page: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match session::run(&args) {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(error) => {
            eprintln!("chat-client: {error}");
            ExitCode::FAILURE
        }
    }
}
