//! What a packager uses: the systemd unit in `contrib/`, the man page and the shell
//! completions generated from the flags.

use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_chat-server");

fn run(args: &[&str]) -> String {
    let out = Command::new(BINARY)
        .args(args)
        .output()
        .expect("run chat-server");
    assert!(
        out.status.success(),
        "chat-server {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn the_systemd_unit_verifies_and_runs_the_server_as_expected() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../contrib/chat-server.service"
    ))
    .expect("contrib/chat-server.service");
    for line in [
        "LimitNOFILE=20000",
        "DynamicUser=yes",
        "KillSignal=SIGTERM",
        "ExecStart=/usr/local/bin/chat-server ",
    ] {
        assert!(
            unit.lines().any(|l| l.starts_with(line)),
            "the unit lacks {line:?}"
        );
    }
    let Ok(verify) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!(
            "\n*** SKIPPED: no systemd-analyze here; the unit was checked by its lines only ***\n"
        );
        return;
    };
    assert!(verify.status.success());
    // The unit names the installed binary; point it at the one just built.
    let dir = std::env::temp_dir().join(format!("chat-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("chat-server.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/chat-server", BINARY)).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze verify");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_man_page_documents_every_flag() {
    let man = run(&["--man"]);
    assert!(
        man.starts_with(".ie") || man.contains(".TH chat-server 1"),
        "not roff:\n{man}"
    );
    for flag in [
        "port",
        "workers",
        "cluster",
        "shutdown\\-from",
        "max\\-connections",
        "metrics",
    ] {
        assert!(
            man.contains(&format!("\\-\\-{flag}")),
            "the man page lacks --{flag}"
        );
    }
}

#[test]
fn shell_completions_know_the_flags() {
    for shell in ["bash", "zsh", "fish"] {
        let script = run(&[&format!("--completions={shell}")]);
        for flag in ["--port", "--cluster", "--log-format"] {
            let flag = if shell == "fish" {
                flag.trim_start_matches('-')
            } else {
                flag
            };
            assert!(script.contains(flag), "{shell} completions lack {flag}");
        }
    }
}

/// A reader that has gone (`chat-server --completions=bash | head -1`): the output is
/// cut short, which is no error, and nothing panics — whether the reader is gone
/// before the first write or leaves after its first line, twenty times each (the
/// race between the two ends differs from run to run).
#[test]
fn a_closed_pipe_is_not_a_panic() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    for flag in ["--completions=bash", "--man", "--help"] {
        for round in 0..20 {
            // Gone before the first write.
            let (reader, writer) = std::io::pipe().expect("a pipe");
            drop(reader);
            let out = Command::new(BINARY)
                .arg(flag)
                .stdin(Stdio::null())
                .stdout(writer)
                .stderr(Stdio::piped())
                .output()
                .expect("run chat-server");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success(),
                "{flag} #{round}: {:?} {stderr}",
                out.status
            );
            assert!(stderr.is_empty(), "{flag} #{round}: {stderr}");

            // `| head -1`: one line read, then the reader goes.
            let mut child = Command::new(BINARY)
                .arg(flag)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn chat-server");
            let mut first = String::new();
            BufReader::new(child.stdout.take().expect("its stdout"))
                .read_line(&mut first)
                .expect("a first line");
            assert!(!first.is_empty(), "{flag} #{round}: no output");
            let out = child.wait_with_output().expect("chat-server ends");
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
