//! Flags and start-up failures: usage errors and an unreachable server end with a
//! one-line message and a non-zero status, never a panic.

mod common;

use std::net::TcpListener;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    // No stdin: these runs end before reading it.
    Command::new(env!("CARGO_BIN_EXE_chat-client"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run chat-client")
}

#[test]
fn help_lists_the_flags() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in ["--ip", "--port", "--format", "--verbosity"] {
        assert!(text.contains(flag), "{text}");
    }
}

#[test]
fn the_port_defaults_to_the_server_s_and_values_are_checked() {
    let help = String::from_utf8_lossy(&run(&["--help"]).stdout).into_owned();
    assert!(help.contains("[default: 9000]"), "{help}");
    for args in [
        &["--port=x"][..],
        &["--port=1", "--format=xml"],
        &["--port=1", "--verbosity=3"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with("error:"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn unreachable_server_is_one_line_and_exit_1() {
    // A port that was just free: nothing listens there now.
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let out = run(&[&format!("--port={port}")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("chat-client: 서버에 연결할 수 없음: ") && stderr.lines().count() == 1,
        "{stderr}"
    );
}

#[test]
fn completions_and_the_man_page_are_generated_from_the_flags() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&[&format!("--completions={shell}")]);
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("port") && script.contains("verbosity"),
            "{shell}: {script}"
        );
    }
    let out = run(&["--man"]);
    assert!(out.status.success());
    let man = String::from_utf8_lossy(&out.stdout);
    assert!(man.contains(".TH chat-client 1"), "{man}");
    for flag in ["ip", "port", "format", "verbosity"] {
        assert!(
            man.contains(&format!("\\-\\-{flag}")),
            "the man page lacks --{flag}"
        );
    }
}

/// A reader that has gone (`chat-client --help | head -1`): the output is cut short,
/// which is no error, and nothing panics — whether the reader is gone before the
/// first write or leaves after its first line, twenty times each.
#[test]
fn a_closed_pipe_is_not_a_panic() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    const BINARY: &str = env!("CARGO_BIN_EXE_chat-client");
    for flag in ["--help", "--man", "--completions=bash"] {
        for round in 0..20 {
            let (reader, writer) = std::io::pipe().expect("a pipe");
            drop(reader);
            let out = Command::new(BINARY)
                .arg(flag)
                .stdin(Stdio::null())
                .stdout(writer)
                .stderr(Stdio::piped())
                .output()
                .expect("run chat-client");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success(),
                "{flag} #{round}: {:?} {stderr}",
                out.status
            );
            assert!(stderr.is_empty(), "{flag} #{round}: {stderr}");

            let mut child = Command::new(BINARY)
                .arg(flag)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn chat-client");
            let mut first = String::new();
            BufReader::new(child.stdout.take().expect("its stdout"))
                .read_line(&mut first)
                .expect("a first line");
            assert!(!first.is_empty(), "{flag} #{round}: no output");
            let out = child.wait_with_output().expect("chat-client ends");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_ne!(out.status.code(), Some(101), "{flag} #{round}: {stderr}");
            assert!(!stderr.contains("panicked"), "{flag} #{round}: {stderr}");
            assert!(
                out.status.success(),
                "{flag} #{round}: {:?} {stderr}",
                out.status
            );
        }
    }
}
