//! Accounts on one node, over the wire, against the real binary and a real data
//! directory: register, keep the name through a restart (SIGTERM and SIGKILL), log in
//! again from a new connection, and no guest — opted in or not, by the name or a
//! look-alike — can take it. A server without a store does not offer accounts.

mod support;

use std::path::PathBuf;

use chat_proto::{Request, Response, WireFormat};
use support::accounts::*;
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

// ---------------------------------------------------------------------------------
// Rooms that last: a room created while logged in is the account's
// ---------------------------------------------------------------------------------

/// SIGTERM, a clean exit, and a new server on the same directory.
fn sigterm_and_restart(server: BinaryServer, data: &DataDir) -> BinaryServer {
    let mut server = server;
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(server.pid(), libc::SIGTERM) }, 0);
    assert!(server.wait_for_exit().success());
    BinaryServer::start(&[&data.flag()])
}

/// The scenario: register, create a room, chat, SIGTERM, restart on the same
/// directory; a raw client (no opt-in) lists the room with its id and title; the
/// owner logs in again, joins, and the history returns the chats in order with
/// their senders. A guest room beside it vanishes as ever, and new rooms are
/// numbered after the kept one.
#[test]
fn a_registered_room_outlives_its_members_and_the_server() {
    let data = DataDir::new("rooms-last");
    let server = BinaryServer::start(&[&data.flag()]);
    let mut alice = account(&server, WireFormat::Json, "Alice");
    alice.create("라운지");
    alice.expect_system(REGISTERED_ROOM_1);
    // The reference client's view: an ordinary room, an ordinary chat.
    let mut raw = server.client(WireFormat::Protobuf);
    raw.set_name("bob");
    raw.join(1, "라운지");
    alice.expect_system(&entered("bob"));
    alice.chat("하나");
    raw.expect_chat("Alice", "하나");
    raw.chat("둘");
    let Response::TimedChat { member, text, .. } = alice.recv() else {
        panic!("a timed chat for the client that opted in");
    };
    assert_eq!((member.as_ref(), text.as_ref()), ("bob", "둘"));
    alice.chat("셋");
    raw.expect_chat("Alice", "셋");
    raw.leave("라운지");
    alice.expect_system(&left("bob"));
    alice.leave("라운지");
    // Empty, and still there; a guest's room beside it is gone with its member.
    raw.create("손님방");
    raw.leave("손님방");
    assert_eq!(raw.rooms(), [room(1, "라운지", &[])]);
    drop(alice);

    let server = sigterm_and_restart(server, &data);
    let mut raw = server.client(WireFormat::Json);
    assert_eq!(raw.rooms(), [room(1, "라운지", &[])]);
    let mut alice = alice_again(&server, WireFormat::Protobuf);
    alice.join(1, "라운지");
    assert_eq!(
        page(&mut alice),
        (
            pairs(&[("Alice", "하나"), ("bob", "둘"), ("Alice", "셋")]),
            false
        )
    );
    // The next chat is numbered after the kept ones.
    raw.join(1, "라운지");
    alice.expect_system(&entered(&raw.default_name()));
    raw.chat("넷");
    match alice.recv() {
        Response::TimedChat { seq, text, .. } => assert_eq!((seq, text.as_ref()), (4, "넷")),
        other => panic!("expected a timed chat, got {other:?}"),
    }
    // A new room comes after the kept one.
    let mut guest = server.client(WireFormat::Json);
    guest.create("새 방");
    assert_eq!(
        guest.rooms(),
        [
            room(1, "라운지", &["Alice", &raw.default_name()]),
            room(2, "새 방", &[&guest.default_name()]),
        ]
    );
}

/// `/delete N`: only the owner, logged in; an empty room goes at once with its
/// history (and stays gone after a restart); one with members becomes an ordinary
/// room, gone with its last member.
#[test]
fn the_owner_gives_up_a_registered_room() {
    let data = DataDir::new("rooms-delete");
    let server = BinaryServer::start(&[&data.flag()]);
    let mut alice = account(&server, WireFormat::Protobuf, "Alice");
    alice.create("하나");
    alice.expect_system(REGISTERED_ROOM_1);
    alice.chat("잊혀질 말");
    alice.leave("하나");
    alice.create("둘");
    alice.expect_system(
        "2번 방이 내 계정에 등록되었습니다. 비어 있어도 남고, /delete 2 으로 지울 수 있습니다.",
    );

    // Not opted in: told how; opted in but not logged in: told to log in.
    let mut guest = server.client(WireFormat::Json);
    guest.send(&Request::DeleteRoom { room_id: 1 });
    guest.expect_system("계정 기능을 쓰려면 먼저 CSHello 로 accounts 기능을 켜야 합니다.");
    hello(&mut guest, &["accounts"]);
    guest.send(&Request::DeleteRoom { room_id: 1 });
    guest.expect_system("방을 지우려면 그 방을 만든 계정으로 로그인해야 합니다.");
    // Another account: not its room. No such room: said so.
    let mut carol = account(&server, WireFormat::Json, "Carol");
    carol.send(&Request::DeleteRoom { room_id: 1 });
    carol.expect_system("내 계정에 등록된 방이 아닙니다.");
    carol.send(&Request::DeleteRoom { room_id: 99 });
    carol.expect_system("대화방이 존재하지 않습니다.");

    // Empty: gone at once.
    alice.send(&Request::DeleteRoom { room_id: 1 });
    alice.expect_system("1번 방을 지웠습니다.");
    // With a member (its owner): unregistered, gone when the last one leaves.
    alice.send(&Request::DeleteRoom { room_id: 2 });
    alice.expect_system("2번 방의 등록을 풀었습니다. 마지막 멤버가 나가면 사라집니다.");
    assert_eq!(guest.rooms(), [room(2, "둘", &["Alice"])]);
    alice.leave("둘");
    assert_eq!(guest.rooms(), []);
    // Neither comes back.
    let server = sigterm_and_restart(server, &data);
    let mut raw = server.client(WireFormat::Protobuf);
    assert_eq!(raw.rooms(), []);
    raw.create("셋");
    assert_eq!(
        raw.rooms()[0].room_id,
        1,
        "nothing kept: ids start at 1 again"
    );
}

/// `kill -9` while chats arrive at 200 a second: every chat taken more than a commit
/// window before the kill is in the history after the restart, in order, with no
/// gap and nothing doubled.
#[test]
fn a_kill_9_loses_no_chat_older_than_the_commit_window() {
    const WINDOW_MS: u64 = 100;
    let data = DataDir::new("rooms-kill");
    let window = format!("--commit-window-ms={WINDOW_MS}");
    let mut server = BinaryServer::start(&[&data.flag(), &window]);
    let mut alice = account(&server, WireFormat::Json, "Alice");
    alice.create("기록");
    alice.expect_system(REGISTERED_ROOM_1);
    let mut reader = server.client(WireFormat::Json);
    reader.join(1, "기록");
    alice.expect_system(&entered(&reader.default_name()));
    // 400 chats at 200/s; each counts as taken once the reader has it (the server
    // has put it in the room's history by then).
    let start = std::time::Instant::now();
    let mut taken_at = Vec::new();
    for n in 0..400u32 {
        let due = start + std::time::Duration::from_millis(u64::from(n) * 5);
        if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
            // Pacing the load, not waiting for the server.
            std::thread::sleep(wait);
        }
        alice.chat(&format!("chat {n}"));
        reader.expect_chat("Alice", &format!("chat {n}"));
        taken_at.push(std::time::Instant::now());
    }
    let killed_at = std::time::Instant::now();
    server.kill_9();
    // What must be there: every chat taken more than the window (plus the time a
    // commit itself takes on a busy machine: 200 ms) before the kill.
    let grace = std::time::Duration::from_millis(WINDOW_MS + 200);
    let must = taken_at
        .iter()
        .filter(|&&at| at + grace <= killed_at)
        .count();
    assert!(must > 300, "the run was too slow to test anything: {must}");

    let server = BinaryServer::start(&[&data.flag()]);
    let mut alice = alice_again(&server, WireFormat::Json);
    alice.join(1, "기록");
    // The entry page holds the newest 50; then everything, 200 at a time.
    let (entry_page, _) = page(&mut alice);
    assert_eq!(entry_page.len(), 50);
    let mut kept: Vec<(String, String)> = Vec::new();
    let mut before = None;
    loop {
        alice.send(&Request::History {
            count: Some(200),
            before,
        });
        let Response::History {
            lines, more: older, ..
        } = alice.recv()
        else {
            panic!("expected SCHistory");
        };
        before = lines.first().map(|l| l.seq);
        let mut texts: Vec<(String, String)> =
            lines.into_iter().map(|l| (l.member, l.text)).collect();
        texts.append(&mut kept);
        kept = texts;
        if !older {
            break;
        }
    }
    assert!(
        kept.len() >= must,
        "kept {} of {must} that had to be",
        kept.len()
    );
    let want: Vec<(String, String)> = (0..kept.len())
        .map(|n| ("Alice".to_owned(), format!("chat {n}")))
        .collect();
    assert_eq!(
        kept, want,
        "a prefix of the chats, in order, nothing doubled"
    );
}

// ---------------------------------------------------------------------------------
// Logging in again with a token (the `resume` extension)
// ---------------------------------------------------------------------------------

/// A token works on a later connection and after a restart, without the password;
/// it is kept only as a hash; `/logout` ends it, a new password ends them all and
/// hands a new one; a client that did not ask for `resume` is never sent one.
#[test]
fn a_token_logs_in_again_until_logout_or_a_new_password() {
    let data = DataDir::new("resume");
    let server = BinaryServer::start(&[&data.flag()]);
    let mut alice = server.client(WireFormat::Json);
    hello(&mut alice, &["accounts", "resume"]);
    alice.set_name("Alice");
    alice.send(&Request::Register {
        password: "correct horse".into(),
    });
    alice.expect_system(REGISTERED);
    let token = expect_token(&mut alice);
    drop(alice);

    // Not opted in: told how. A wrong token: refused, and nothing else happens.
    let mut plain = server.client(WireFormat::Protobuf);
    hello(&mut plain, &["accounts"]);
    plain.send(&Request::Resume {
        name: "Alice".into(),
        token: token.clone(),
    });
    plain.expect_system("로그인 유지 기능을 쓰려면 먼저 CSHello 로 resume 기능을 켜야 합니다.");
    let mut wrong = resume(&server, WireFormat::Json, &"0".repeat(64));
    wrong.expect_system(RESUME_FAILED);
    wrong.expect_silence();

    // After a restart, the token still works, in either format; no new token.
    let server = sigterm_and_restart(server, &data);
    let store = std::fs::read(data.0.join("chat.db")).unwrap();
    assert!(
        !store.windows(token.len()).any(|w| w == token.as_bytes()),
        "the token itself is never stored"
    );
    let mut back = resume(&server, WireFormat::Protobuf, &token);
    back.expect_system("Alice 으로 로그인했습니다.");
    back.expect_system("이름이 Alice 으로 변경되었습니다.");
    back.expect_silence();
    // `/logout` ends it.
    back.send(&Request::Logout);
    back.expect_system("로그아웃했습니다.");
    back.expect_system(&format!(
        "이름이 {} 으로 변경되었습니다.",
        back.default_name()
    ));
    drop(back);
    let mut again = resume(&server, WireFormat::Json, &token);
    again.expect_system(RESUME_FAILED);

    // A login hands a new one; a password change ends every token and hands another.
    again.send(&Request::Login {
        name: "Alice".into(),
        password: "correct horse".into(),
    });
    again.expect_system("Alice 으로 로그인했습니다.");
    let second = expect_token(&mut again);
    again.expect_system("이름이 Alice 으로 변경되었습니다.");
    again.send(&Request::ChangePassword {
        old: "correct horse".into(),
        new: "battery staple".into(),
    });
    again.expect_system("비밀번호를 바꿨습니다.");
    let third = expect_token(&mut again);
    assert_ne!(second, third);
    drop(again);
    resume(&server, WireFormat::Json, &second).expect_system(RESUME_FAILED);
    let mut last = resume(&server, WireFormat::Json, &third);
    last.expect_system("Alice 으로 로그인했습니다.");
    last.expect_system("이름이 Alice 으로 변경되었습니다.");
}

/// A disk that fails at run time — here the process's file size limit, which makes
/// every write past it fail as a full disk would (EFBIG) — keeps the chat going,
/// refuses a registration with a clear text, and shows in the log and the metrics.
#[test]
fn a_failing_disk_keeps_the_chat_going_and_refuses_registrations() {
    use std::os::unix::process::CommandExt;
    const LIMIT: u64 = 256 * 1024;
    let data = DataDir::new("full");
    let server = BinaryServer::start_with(
        &[
            &data.flag(),
            "--metrics=127.0.0.1:0",
            "--commit-window-ms=5",
        ],
        |command| {
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                command.pre_exec(|| {
                    let limit = libc::rlimit {
                        rlim_cur: LIMIT,
                        rlim_max: LIMIT,
                    };
                    if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    // A write past the limit then fails instead of killing the
                    // process (an ignored signal stays ignored across exec).
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    Ok(())
                });
            }
        },
    );
    let metrics: std::net::SocketAddr = {
        let line = server.log_line("metrics on http://");
        let at = line.find("metrics on http://").unwrap() + "metrics on http://".len();
        line[at..].split('/').next().unwrap().parse().unwrap()
    };
    let mut alice = account(&server, WireFormat::Json, "Alice");
    alice.create("방");
    alice.expect_system(REGISTERED_ROOM_1);
    let mut bob = server.client(WireFormat::Protobuf);
    bob.join(1, "방");
    alice.expect_system(&entered(&bob.default_name()));
    // Chats of a registered room are written to the store until the file cannot
    // grow; every one of them still reaches bob.
    let text = "가".repeat(300);
    let mut sent = 0;
    loop {
        for _ in 0..50 {
            alice.chat(&text);
            bob.expect_chat("Alice", &text);
            sent += 1;
        }
        let (_, page) = http_get(metrics, "/metrics");
        if metric(&page, "chat_store_failing") == 1 {
            assert!(metric(&page, "chat_store_write_failures_total") > 0);
            break;
        }
        assert!(
            sent < 5_000,
            "{sent} chats of 900 bytes and the store never failed"
        );
    }
    server.log_line("store: commit failed");
    // A registration is refused with a text; the chat goes on.
    let mut carol = server.client(WireFormat::Json);
    hello(&mut carol, &["accounts"]);
    carol.set_name("Carol");
    carol.send(&Request::Register {
        password: "correct horse".into(),
    });
    carol.expect_system("지금은 요청을 처리할 수 없습니다. 잠시 후 다시 시도해 주세요.");
    alice.chat("아직 들려요?");
    bob.expect_chat("Alice", "아직 들려요?");
}
