//! The `chat-bench` binary: parse flags, run, print. Everything else is in the library.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

use chat_bench::cli::Args;
use chat_bench::report::render_text;

fn main() -> ExitCode {
    let mut args = Args::parse();
    // 10,000 connections need more than the usual 1,024 descriptors.
    let limit = match chat_bench::raise_open_file_limit() {
        Ok(limit) => Some(limit),
        Err(e) => {
            eprintln!("chat-bench: warning: cannot raise the open-file limit: {e}");
            None
        }
    };
    if args.processes == 0 {
        // As many processes as the descriptors need (with some room to spare each).
        let per_process = limit.map_or(1000, |l| l.saturating_sub(500).max(100)) as usize;
        args.processes = u32::try_from(args.rooms * args.per_room)
            .unwrap_or(u32::MAX)
            .div_ceil(per_process as u32)
            .max(1);
    }
    if args.processes > 1 {
        if let Err(e) = args.validate() {
            eprintln!("chat-bench: error: {e}");
            return ExitCode::FAILURE;
        }
        return match chat_bench::split::run(&args) {
            Ok(merged) => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&merged).unwrap_or_default()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("chat-bench: error: {e}");
                ExitCode::FAILURE
            }
        };
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
