//! The `chat-bench` binary: parse flags, run, print. Everything else is in the library.

use std::process::ExitCode;

use clap::Parser;

use chat_bench::cli::Args;
use chat_bench::report::render_text;

fn main() -> ExitCode {
    let args = Args::parse();
    // 10,000 connections need more than the usual 1,024 descriptors.
    if let Err(e) = chat_bench::raise_open_file_limit() {
        eprintln!("chat-bench: warning: cannot raise the open-file limit: {e}");
    }
    match chat_bench::run(&args) {
        Ok(report) => {
            if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(json) => println!("{json}"),
                    Err(e) => {
                        eprintln!("chat-bench: error: cannot write the report as JSON: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print!("{}", render_text(&report));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chat-bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}
