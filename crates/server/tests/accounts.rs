//! Accounts on one node, over the wire, against the real binary and a real data
//! directory: register, keep the name through a restart (SIGTERM and SIGKILL), log in
//! again from a new connection, and no guest — opted in or not, by the name or a
//! look-alike — can take it. A server without a store does not offer accounts.

mod support;

use std::path::PathBuf;

use chat_proto::{Request, Response, WireFormat};
use support::*;

/// A fresh data directory, removed on drop.
struct DataDir(PathBuf);

impl DataDir {
    fn new(name: &str) -> DataDir {
        let dir = std::env::temp_dir().join(format!("chat-accounts-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        DataDir(dir)
    }

    fn flag(&self) -> String {
        format!("--data-dir={}", self.0.display())
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn hello(client: &mut Client, features: &[&str]) -> Vec<String> {
    client.send(&Request::Hello {
        features: features.iter().map(|f| (*f).to_owned()).collect(),
    });
    match client.recv() {
        Response::Hello { features, .. } => features,
        other => panic!("expected SCHello, got {other:?}"),
    }
}

const REGISTERED: &str =
    "이름 Alice 을 계정으로 등록했습니다. 이제 이 이름은 로그인해야 쓸 수 있습니다.";
const NAME_REGISTERED: &str = "등록된 이름입니다. /login 으로 로그인해야 쓸 수 있습니다.";

fn register_alice(server: &BinaryServer, format: WireFormat) -> Client {
    let mut alice = server.client(format);
    assert_eq!(
        hello(&mut alice, &["accounts", "rooms"]),
        ["rooms", "accounts"]
    );
    alice.send(&Request::Name {
        name: "Alice".into(),
    });
    alice.expect_system("이름이 Alice 으로 변경되었습니다.");
    alice.send(&Request::Register {
        password: "correct horse".into(),
    });
    alice.expect_system(REGISTERED);
    alice
}

#[test]
fn an_account_outlives_its_connection_and_the_server() {
    let data = DataDir::new("restart");
    let server = BinaryServer::start(&[&data.flag()]);
    let alice = register_alice(&server, WireFormat::Json);
    drop(alice);
    // A client that never opted in (as the reference client) cannot take the name
    // once it is free, nor a look-alike.
    let mut guest = server.client(WireFormat::Protobuf);
    for name in ["Alice", "AIice"] {
        guest.send(&Request::Name { name: name.into() });
        guest.expect_system(NAME_REGISTERED);
    }
    // SIGTERM, and a new server on the same directory.
    let mut server = server;
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(server.pid(), libc::SIGTERM) }, 0);
    assert!(server.wait_for_exit().success());
    let server = BinaryServer::start(&[&data.flag()]);
    let mut guest = server.client(WireFormat::Json);
    guest.send(&Request::Name {
        name: "Alice".into(),
    });
    guest.expect_system(NAME_REGISTERED);
    let mut back = server.client(WireFormat::Protobuf);
    hello(&mut back, &["accounts"]);
    back.send(&Request::Login {
        name: "Alice".into(),
        password: "wrong horse".into(),
    });
    back.expect_system("이름 또는 비밀번호가 맞지 않습니다.");
    back.send(&Request::Login {
        name: "Alice".into(),
        password: "correct horse".into(),
    });
    back.expect_system("Alice 으로 로그인했습니다.");
    back.expect_system("이름이 Alice 으로 변경되었습니다.");
    // A new password, then SIGKILL right after its answer: it was committed first.
    back.send(&Request::ChangePassword {
        old: "correct horse".into(),
        new: "battery staple".into(),
    });
    back.expect_system("비밀번호를 바꿨습니다.");
    let mut server = server;
    server.kill_9();
    let server = BinaryServer::start(&[&data.flag()]);
    let mut again = server.client(WireFormat::Json);
    hello(&mut again, &["accounts"]);
    again.send(&Request::Login {
        name: "Alice".into(),
        password: "battery staple".into(),
    });
    again.expect_system("Alice 으로 로그인했습니다.");
    again.expect_system("이름이 Alice 으로 변경되었습니다.");
}

#[test]
fn a_registration_answered_survives_a_kill_9() {
    let data = DataDir::new("kill");
    let mut server = BinaryServer::start(&[&data.flag()]);
    let _alice = register_alice(&server, WireFormat::Protobuf);
    server.kill_9();
    let server = BinaryServer::start(&[&data.flag()]);
    let mut guest = server.client(WireFormat::Json);
    guest.send(&Request::Name {
        name: "Alice".into(),
    });
    guest.expect_system(NAME_REGISTERED);
}

#[test]
fn a_second_server_on_the_same_directory_is_refused() {
    let data = DataDir::new("twice");
    let _first = BinaryServer::start(&[&data.flag()]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["--port=0", &data.flag()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is in use by another chat-server (one server per data directory)"),
        "{stderr}"
    );
}

#[test]
fn without_a_store_accounts_are_not_offered() {
    let server = BinaryServer::start(&["--no-store"]);
    let mut client = server.client(WireFormat::Json);
    assert_eq!(hello(&mut client, &["accounts", "rooms"]), ["rooms"]);
    client.send(&Request::Register {
        password: "correct horse".into(),
    });
    client.expect_system("계정 기능을 쓰려면 먼저 CSHello 로 accounts 기능을 켜야 합니다.");
}

#[test]
fn a_backup_taken_while_the_server_runs_restores_the_accounts() {
    let data = DataDir::new("backup");
    let server = BinaryServer::start(&[&data.flag()]);
    let _alice = register_alice(&server, WireFormat::Json);
    let restored = DataDir::new("backup-restored");
    std::fs::create_dir_all(&restored.0).unwrap();
    let copy = restored.0.join("chat.db");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .arg("backup")
        .arg(format!("--data-dir={}", data.0.display()))
        .arg(&copy)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("wrote {}\n", copy.display())
    );
    // A second backup to the same file is refused; the copy is kept.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .arg("backup")
        .arg(format!("--data-dir={}", data.0.display()))
        .arg(&copy)
        .output()
        .unwrap();
    assert!(!again.status.success());
    // A server on the restored directory knows the account.
    let server = BinaryServer::start(&[&restored.flag()]);
    let mut back = server.client(WireFormat::Json);
    hello(&mut back, &["accounts"]);
    back.send(&Request::Login {
        name: "Alice".into(),
        password: "correct horse".into(),
    });
    back.expect_system("Alice 으로 로그인했습니다.");
}
