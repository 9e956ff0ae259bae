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

/// A reader that has gone (`chat-server --completions=bash | head -5`): the output is
/// cut short, which is no error, and nothing panics.
#[test]
fn a_closed_pipe_is_not_a_panic() {
    for flag in ["--completions=bash", "--man"] {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .arg(flag)
            .stdin(std::process::Stdio::null())
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("run chat-server");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{flag}: {:?} {stderr}", out.status);
        assert!(stderr.is_empty(), "{flag}: {stderr}");
    }
}
