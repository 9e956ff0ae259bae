//! `chat-client`: parses the flags, runs a session, turns its end into an exit status.
//! Everything else lives in the library (see `lib.rs` for the layout).

use std::process::ExitCode;

use chat_client::cli::Args;
use chat_client::session;
use clap::Parser;

fn main() -> ExitCode {
    let args = Args::parse();
    match session::run(&args) {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(error) => {
            eprintln!("chat-client: {error}");
            ExitCode::FAILURE
        }
    }
}
