//! `chat-client` on a pseudo-terminal: line editing, history (kept between runs),
//! messages printed above the line being typed without garbling it, the prompt that
//! follows name and room, own chat lines, resizes, `/quit` and `/help`, the
//! extensions' commands (accounts, history, direct messages, moderation), the
//! terminal restored on exit, and format characters from the server shown escaped.
//!
//! Every run points `XDG_STATE_HOME` at a fresh directory, so no test touches the
//! real history file.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Instant;

use chat_proto::{Request, Response, WireFormat};
use common::{FakeServer, Peer, TIMEOUT, TestServer};

/// A pty pair: (master, slave).
fn open_pty() -> (OwnedFd, OwnedFd) {
    let mut master = -1;
    let mut slave = -1;
    let size = libc::winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors; the name and termios pointers may be null.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

/// Collects everything the client writes to the terminal and waits for expected text.
struct Screen {
    chunks: Receiver<Vec<u8>>,
    seen: Vec<u8>,
    /// How much of `seen` earlier waits consumed.
    mark: usize,
}

impl Screen {
    /// Waits until `expected` appears after what earlier calls matched.
    fn expect(&mut self, expected: &str) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let text = String::from_utf8_lossy(&self.seen[self.mark..]).into_owned();
            if let Some(at) = text.find(expected) {
                self.mark += text[..at + expected.len()].len();
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.seen.extend(chunk),
                Err(_) => panic!("{expected:?} never appeared; after the last match: {text:?}"),
            }
        }
    }
}

impl Screen {
    /// Waits until every one of `expected` appears after what earlier calls matched,
    /// in any order (for messages whose order the server does not promise); later
    /// waits go on after the last of them.
    fn expect_unordered(&mut self, expected: &[&str]) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let text = String::from_utf8_lossy(&self.seen[self.mark..]).into_owned();
            let ends: Option<Vec<usize>> = expected
                .iter()
                .map(|e| text.find(e).map(|at| at + e.len()))
                .collect();
            if let Some(ends) = ends {
                self.mark += ends.into_iter().max().unwrap_or(0);
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.seen.extend(chunk),
                Err(_) => {
                    panic!("not all of {expected:?} appeared; after the last match: {text:?}")
                }
            }
        }
    }
}

fn termios_of(fd: &OwnedFd) -> libc::termios {
    // SAFETY: termios is plain data, filled by tcgetattr.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor and pointer.
    assert_eq!(unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) }, 0);
    t
}

/// `chat-client` running on a fresh pty against `fake`: the child, its screen, the
/// keyboard (the pty master), the pty slave, and the slave's termios before the start.
struct OnPty {
    child: Child,
    screen: Screen,
    keyboard: File,
    slave: OwnedFd,
    before: libc::termios,
    /// The run's `XDG_STATE_HOME` when the test did not choose one; removed on drop.
    /// Tests bind it (`_state`), so it lives as long as the client runs.
    _state: Option<StateDir>,
}

/// A temporary directory removed when dropped.
struct StateDir(PathBuf);

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh, empty directory for one test's `XDG_STATE_HOME`.
fn state_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "chat-client-pty-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn start_on_pty(fake: &FakeServer) -> OnPty {
    start_on_pty_at(fake.addr.port())
}

/// As [`start_on_pty`], against whatever listens on `127.0.0.1:port`.
fn start_on_pty_at(port: u16) -> OnPty {
    let state = StateDir(state_dir());
    let mut on_pty = start_on_pty_with_state_at(port, &state.0);
    on_pty._state = Some(state);
    on_pty
}

/// As [`start_on_pty`], with `XDG_STATE_HOME` set to `state`. The child gets the pty
/// as its controlling terminal (a session of its own), as a shell would arrange, so
/// the kernel sends it SIGWINCH when the window size changes.
fn start_on_pty_with_state(fake: &FakeServer, state: &Path) -> OnPty {
    start_on_pty_with_state_at(fake.addr.port(), state)
}

/// As [`start_on_pty_with_state`], against whatever listens on `127.0.0.1:port`.
fn start_on_pty_with_state_at(port: u16, state: &Path) -> OnPty {
    let (master, slave) = open_pty();
    let before = termios_of(&slave);
    let mut command = Command::new(env!("CARGO_BIN_EXE_chat-client"));
    command
        .arg(format!("--port={port}"))
        .env("NO_COLOR", "1")
        .env("XDG_STATE_HOME", state)
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::null());
    // SAFETY: runs in the child between fork and exec, after stdio is set up; it
    // calls only async-signal-safe functions (setsid, ioctl).
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().expect("spawn chat-client");
    let keyboard = File::from(master.try_clone().unwrap());
    let (tx, chunks) = mpsc::channel();
    let mut reader = File::from(master);
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // Ends with EIO once every slave descriptor is closed.
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            if tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let screen = Screen {
        chunks,
        seen: Vec::new(),
        mark: 0,
    };
    OnPty {
        child,
        screen,
        keyboard,
        slave,
        before,
        _state: None,
    }
}

/// Waits (bounded) for the child to exit.
fn wait_for_exit(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "chat-client did not exit");
        thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn editing_history_and_messages_above_the_line() {
    let fake = FakeServer::start();
    let OnPty {
        mut child,
        mut screen,
        mut keyboard,
        slave,
        before,
        _state,
        ..
    } = start_on_pty(&fake);
    let mut conn = fake.accept();

    screen.expect(&format!("Connected to 127.0.0.1:{}\r\n", fake.addr.port()));
    screen.expect("\r> \x1b[K");

    // Typing is echoed by the editor (the terminal's own echo is off).
    keyboard.write_all("héllo 한".as_bytes()).unwrap();
    screen.expect("\r> héllo 한\x1b[K");

    // A message arrives mid-line: the row is erased, the message printed, the line
    // redrawn as it was.
    conn.send_response(
        WireFormat::Json,
        &Response::Chat {
            member: "bob".into(),
            text: "hi\x1b[2J".into(),
        },
    );
    screen.expect("\r\x1b[K[bob] hi\\x1b[2J\r\n\r> héllo 한\x1b[K");

    // Two backspaces, cursor home, insert, Enter: the chat line stays on screen,
    // marked as the user's own.
    keyboard.write_all(b"\x7f\x7f\x01>\r").unwrap();
    screen.expect("\r\x1b[K[나] >héllo\r\n");
    let frame = conn.recv_frame().expect("a chat request");
    let mut expected = Vec::new();
    chat_proto::codec::encode_request(
        WireFormat::Json,
        &Request::Chat {
            text: ">héllo".into(),
        },
        &mut expected,
    )
    .unwrap();
    assert_eq!(frame, expected[2..]);

    // History: ↑ brings the line back; Ctrl-C clears it.
    keyboard.write_all(b"\x1b[A").unwrap();
    screen.expect("\r> >héllo\x1b[K");
    keyboard.write_all(b"\x03").unwrap();
    screen.expect("\r> \x1b[K");

    // Ctrl-D on the empty line: end of input, the client half-closes.
    keyboard.write_all(b"\x04").unwrap();
    assert_eq!(conn.recv_frame(), None, "half-closed after Ctrl-D");
    drop(conn);
    screen.expect("=== EOF 에 따라 프로그램을 종료합니다. ===\r\n");

    let status = wait_for_exit(&mut child);
    assert!(status.success(), "{status:?}");

    // The terminal is back in the mode it was in.
    let after = termios_of(&slave);
    assert_eq!(after.c_lflag, before.c_lflag);
    assert_eq!(after.c_iflag, before.c_iflag);
}

/// SIGTERM while the terminal is in raw mode: the client ends through its normal
/// path — the terminal comes back as it was — and exits 128 + 15 like a shell, rather
/// than dying with the terminal left raw.
#[test]
fn sigterm_restores_the_terminal() {
    let fake = FakeServer::start();
    let OnPty {
        mut child,
        mut screen,
        slave,
        before,
        _state,
        ..
    } = start_on_pty(&fake);
    let _conn = fake.accept();
    screen.expect("\r> \x1b[K");
    assert_ne!(
        termios_of(&slave).c_lflag,
        before.c_lflag,
        "the prompt is up, so the terminal is raw"
    );

    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: sends a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = wait_for_exit(&mut child);
    assert_eq!(status.code(), Some(143), "{status:?}");
    let after = termios_of(&slave);
    assert_eq!(after.c_lflag, before.c_lflag);
    assert_eq!(after.c_iflag, before.c_iflag);
}

/// The chat request `text` as the client frames it (payload only).
fn chat_payload(text: &str) -> Vec<u8> {
    let mut wire = Vec::new();
    chat_proto::codec::encode_request(
        WireFormat::Json,
        &Request::Chat { text: text.into() },
        &mut wire,
    )
    .unwrap();
    wire.split_off(2)
}

/// The prompt follows the server's notices about this client's name and room; own
/// chats are shown as `[나] text`, commands after their prompt; and when the server
/// closes mid-line, the half-typed line is printed before the close message.
#[test]
fn prompt_own_chats_and_the_draft_kept_when_the_server_closes() {
    let fake = FakeServer::start();
    let OnPty {
        mut child,
        mut screen,
        mut keyboard,
        slave,
        before,
        _state,
        ..
    } = start_on_pty(&fake);
    let mut conn = fake.accept();
    screen.expect("\r> \x1b[K");

    conn.send_response(
        WireFormat::Json,
        &Response::system("이름이 alice 으로 변경되었습니다."),
    );
    screen.expect("[시스템 메시지] 이름이 alice 으로 변경되었습니다.\r\n\ralice> \x1b[K");
    // Someone else's rename changes nothing.
    conn.send_response(
        WireFormat::Json,
        &Response::system("bob 의 이름이 carol 으로 변경되었습니다."),
    );
    screen.expect("carol 으로 변경되었습니다.\r\n\ralice> \x1b[K");
    conn.send_response(
        WireFormat::Json,
        &Response::system("방제[lobby] 방에 입장했습니다."),
    );
    screen.expect("\ralice@lobby> \x1b[K");

    keyboard.write_all(b"hi there\r").unwrap();
    screen.expect("\r\x1b[K[나] hi there\r\n\ralice@lobby> \x1b[K");
    assert_eq!(conn.recv_frame(), Some(chat_payload("hi there")));
    keyboard.write_all(b"/leave\r").unwrap();
    screen.expect("\r\x1b[Kalice@lobby> /leave\r\n");
    assert!(conn.recv_frame().is_some(), "the leave request");
    conn.send_response(
        WireFormat::Json,
        &Response::system("방제[lobby] 대화 방에서 퇴장했습니다."),
    );
    screen.expect("\ralice> \x1b[K");

    keyboard.write_all(b"half typed").unwrap();
    screen.expect("\ralice> half typed\x1b[K");
    drop(conn);
    screen.expect("\r\x1b[Kalice> half typed\r\n서버가 소켓을 닫았음\r\n");
    let status = wait_for_exit(&mut child);
    assert!(status.success(), "{status:?}");
    let after = termios_of(&slave);
    assert_eq!(after.c_lflag, before.c_lflag);
}

/// Bidi controls, separators and other format characters from the server reach the
/// terminal escaped — in chat lines, system messages and the prompt built from the
/// server's name and room notices — and never raw.
#[test]
fn format_characters_reach_the_terminal_escaped() {
    const FORMAT_CHARS: &[(char, &str)] = &[
        ('\u{061c}', "\\u061c"),
        ('\u{200e}', "\\u200e"),
        ('\u{200f}', "\\u200f"),
        ('\u{202a}', "\\u202a"),
        ('\u{202b}', "\\u202b"),
        ('\u{202c}', "\\u202c"),
        ('\u{202d}', "\\u202d"),
        ('\u{202e}', "\\u202e"),
        ('\u{2066}', "\\u2066"),
        ('\u{2067}', "\\u2067"),
        ('\u{2068}', "\\u2068"),
        ('\u{2069}', "\\u2069"),
        ('\u{2028}', "\\u2028"),
        ('\u{2029}', "\\u2029"),
        ('\u{200b}', "\\u200b"),
        ('\u{200c}', "\\u200c"),
        ('\u{200d}', "\\u200d"),
        ('\u{2060}', "\\u2060"),
        ('\u{2061}', "\\u2061"),
        ('\u{2062}', "\\u2062"),
        ('\u{2063}', "\\u2063"),
        ('\u{2064}', "\\u2064"),
        ('\u{feff}', "\\ufeff"),
        ('\u{00ad}', "\\xad"),
        ('\u{e0001}', "\\U000e0001"),
    ];
    let fake = FakeServer::start();
    let OnPty {
        mut child,
        mut screen,
        _state,
        ..
    } = start_on_pty(&fake);
    let mut conn = fake.accept();
    screen.expect("\r> \x1b[K");

    conn.send_response(
        WireFormat::Json,
        &Response::system("이름이 철\u{202e}수\u{200d} 으로 변경되었습니다."),
    );
    screen.expect(
        "\r\x1b[K[시스템 메시지] 이름이 철\\u202e수\\u200d 으로 변경되었습니다.\r\n\
         \r철\\u202e수\\u200d> \x1b[K",
    );
    conn.send_response(
        WireFormat::Json,
        &Response::system("방제[방\u{2028}😀] 방에 입장했습니다."),
    );
    screen.expect(
        "\r\x1b[K[시스템 메시지] 방제[방\\u2028😀] 방에 입장했습니다.\r\n\
         \r철\\u202e수\\u200d@방\\u2028😀> \x1b[K",
    );
    for &(c, shown) in FORMAT_CHARS {
        conn.send_response(
            WireFormat::Json,
            &Response::Chat {
                member: format!("ev{c}il").into(),
                text: format!("안녕 {c}😀").into(),
            },
        );
        screen.expect(&format!(
            "\r\x1b[K[ev{shown}il] 안녕 {shown}😀\r\n\r철\\u202e수\\u200d@방\\u2028😀> \x1b[K"
        ));
    }
    drop(conn);
    screen.expect("서버가 소켓을 닫았음\r\n");
    let status = wait_for_exit(&mut child);
    assert!(status.success(), "{status:?}");
    let seen = String::from_utf8_lossy(&screen.seen);
    for &(c, _) in FORMAT_CHARS {
        assert!(
            !seen.contains(c),
            "U+{:04X} reached the terminal",
            u32::from(c)
        );
    }
}

/// A resize redraws the line at once, at the new width, with markers where text is
/// hidden.
#[test]
fn resize_redraws_at_the_new_width_with_markers() {
    let fake = FakeServer::start();
    let OnPty {
        mut child,
        mut screen,
        mut keyboard,
        slave,
        _state,
        ..
    } = start_on_pty(&fake);
    let _conn = fake.accept();
    screen.expect("\r> \x1b[K");
    let text: String = "abcdefghij".repeat(7);
    keyboard.write_all(text.as_bytes()).unwrap();
    screen.expect(&format!("\r> {text}\x1b[K"));

    // 40 columns: 40 - 2 (prompt) - 1 (last column kept free) = 37, one of them for
    // the `<` marker. No key is pressed: the redraw comes from SIGWINCH alone.
    let size = libc::winsize {
        ws_row: 24,
        ws_col: 40,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    assert_eq!(
        // SAFETY: TIOCSWINSZ reads one winsize through the pointer, which points to
        // the live `size`; the descriptor is our own pty master.
        unsafe { libc::ioctl(keyboard.as_raw_fd(), libc::TIOCSWINSZ, &size) },
        0
    );
    screen.expect(&format!("\r> <{}\x1b[K", &text[70 - 36..]));
    // Home: the start shows, the cut right edge is marked, the cursor goes back
    // over the marker and the 36 characters.
    keyboard.write_all(b"\x01").unwrap();
    screen.expect(&format!("\r> {}>\x1b[K\x1b[37D", &text[..36]));

    assert_eq!(
        // SAFETY: kill(2) takes no pointers; it signals our own child, not yet reaped.
        unsafe { libc::kill(i32::try_from(child.id()).unwrap(), libc::SIGTERM) },
        0
    );
    wait_for_exit(&mut child);
    drop(slave);
}

/// `/help` on a terminal names arguments and Ctrl-D; `/quit` ends like Ctrl-D: the
/// client half-closes, prints the EOF line, exits 0 with the terminal restored.
#[test]
fn terminal_help_and_quit() {
    let fake = FakeServer::start();
    let OnPty {
        mut child,
        mut screen,
        mut keyboard,
        slave,
        before,
        _state,
        ..
    } = start_on_pty(&fake);
    let mut conn = fake.accept();
    screen.expect("\r> \x1b[K");
    keyboard.write_all(b"/help\r").unwrap();
    screen.expect("> /help\r\n/help: 사용 가능 명령어를 나열한다.\r\n");
    screen.expect("/name NAME: 채팅 이름을 지정한다.\r\n");
    screen.expect("/create TITLE: ");
    screen.expect("/join N: ");
    screen.expect(
        "/msg NAME TEXT: NAME 님에게만 귓속말을 보낸다.\r\n\
         /ignore NAME: NAME 님의 귓속말을 받지 않는다.\r\n\
         /unignore NAME: NAME 님의 귓속말을 다시 받는다.\r\n\
         /op NAME: NAME 님을 이 방의 운영자로 정한다.\r\n\
         /deop NAME: NAME 님을 이 방의 운영자에서 뺀다.\r\n\
         /owner NAME: 방을 NAME 님에게 넘긴다.\r\n\
         /kick NAME [이유]: NAME 님을 방에서 내보낸다.\r\n\
         /ban NAME [분]: NAME 님을 방에서 밴한다 (분을 쓰지 않으면 풀 때까지).\r\n\
         /unban NAME: NAME 님의 밴을 푼다.\r\n\
         /topic [TEXT]: 방 주제를 정한다 (없으면 지운다).\r\n",
    );
    screen.expect("Ctrl-D");

    keyboard.write_all(b"/quit\r").unwrap();
    screen.expect("> /quit\r\n");
    assert_eq!(
        conn.recv_frame(),
        None,
        "half-closed after /quit, nothing sent"
    );
    drop(conn);
    screen.expect("=== EOF 에 따라 프로그램을 종료합니다. ===\r\n");
    let status = wait_for_exit(&mut child);
    assert_eq!(status.code(), Some(0), "{status:?}");
    let after = termios_of(&slave);
    assert_eq!(after.c_lflag, before.c_lflag);
    assert_eq!(after.c_iflag, before.c_iflag);
}

/// Types `lines` then Ctrl-D in one run against a fresh fake server, with
/// `XDG_STATE_HOME` at `state`; returns the screen (for more checks) after exit.
fn run_and_quit(state: &Path, lines: &[&str], check: impl FnOnce(&mut Screen, &mut File)) {
    let fake = FakeServer::start();
    let OnPty {
        mut child,
        mut screen,
        mut keyboard,
        ..
    } = start_on_pty_with_state(&fake, state);
    let mut conn = fake.accept();
    screen.expect("\r> \x1b[K");
    check(&mut screen, &mut keyboard);
    for line in lines {
        keyboard.write_all(format!("{line}\r").as_bytes()).unwrap();
        assert!(conn.recv_frame().is_some(), "{line:?} was sent");
    }
    keyboard.write_all(b"\x04").unwrap();
    assert_eq!(conn.recv_frame(), None);
    drop(conn);
    screen.expect("=== EOF");
    let status = wait_for_exit(&mut child);
    assert!(status.success(), "{status:?}");
}

/// History is saved under `$XDG_STATE_HOME/chat-client/history` and comes back in
/// the next run; a state directory that cannot be used changes nothing else.
#[test]
fn history_persists_between_runs() {
    let state = state_dir();
    run_and_quit(&state, &["first line", "/rooms"], |_, _| {});
    let file = state.join("chat-client").join("history");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "first line\n/rooms\n"
    );

    run_and_quit(&state, &["third"], |screen, keyboard| {
        keyboard.write_all(b"\x1b[A").unwrap();
        screen.expect("\r> /rooms\x1b[K");
        keyboard.write_all(b"\x1b[A").unwrap();
        screen.expect("\r> first line\x1b[K");
        keyboard.write_all(b"\x03").unwrap();
        screen.expect("\r> \x1b[K");
    });
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "first line\n/rooms\nthird\n"
    );

    // XDG_STATE_HOME names a plain file: nothing can be read or written there, and
    // the session goes on as usual.
    let blocked = state.join("not-a-directory");
    std::fs::write(&blocked, "x").unwrap();
    run_and_quit(&blocked, &["still works"], |_, _| {});
    let _ = std::fs::remove_dir_all(&state);
}

/// An account command asks for the server's extension first (`CSHello`, once), then
/// goes out as its own request; the password is shown as `********`, and the line is
/// kept neither in history nor in the history file.
#[test]
fn account_commands_opt_in_and_never_show_or_keep_a_password() {
    let state = state_dir();
    run_and_quit(&state, &["before"], |screen, keyboard| {
        let _ = (screen, keyboard);
    });
    let fake = FakeServer::start();
    let OnPty {
        mut child,
        mut screen,
        mut keyboard,
        ..
    } = start_on_pty_with_state(&fake, &state);
    let mut conn = fake.accept();
    screen.expect("\r> \x1b[K");
    keyboard
        .write_all(b"/login Alice hunter2hunter2\r")
        .unwrap();
    screen.expect("\r\x1b[K> /login Alice ********\r\n");
    assert_eq!(
        conn.recv_frame().as_deref(),
        Some(
            &br#"{"type": "CSHello", "features": ["accounts", "history", "direct", "moderation"]}"#
                [..]
        )
    );
    assert_eq!(
        conn.recv_frame().as_deref(),
        Some(&br#"{"type": "CSLogin", "name": "Alice", "password": "hunter2hunter2"}"#[..])
    );
    keyboard.write_all(b"/logout\r").unwrap();
    assert_eq!(
        conn.recv_frame().as_deref(),
        Some(&br#"{"type": "CSLogout"}"#[..]),
        "one hello is enough"
    );
    // Up-arrow recalls `/logout`, then the line before the password line.
    keyboard.write_all(b"\x1b[A").unwrap();
    screen.expect("\r> /logout\x1b[K");
    keyboard.write_all(b"\x1b[A").unwrap();
    screen.expect("\r> before\x1b[K");
    keyboard.write_all(b"\x03\x04").unwrap();
    assert_eq!(conn.recv_frame(), None);
    drop(conn);
    let status = wait_for_exit(&mut child);
    assert!(status.success(), "{status:?}");
    assert!(!String::from_utf8_lossy(&screen.seen).contains("hunter2"));
    let file = state.join("chat-client").join("history");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "before\n/logout\n");
    let _ = std::fs::remove_dir_all(&state);
}

/// `/history [N]` asks for a page (after the one `CSHello`), prints it oldest first
/// with each line's sender, and `/history more` asks for the page before it.
#[test]
fn history_pages_and_more() {
    let fake = FakeServer::start();
    let OnPty {
        mut child,
        mut screen,
        mut keyboard,
        _state,
        ..
    } = start_on_pty(&fake);
    let mut conn = fake.accept();
    screen.expect("\r> \x1b[K");
    keyboard.write_all(b"/history more\r").unwrap();
    screen.expect("더 앞의 대화 기록이 없습니다.");
    keyboard.write_all(b"/history 2\r").unwrap();
    assert_eq!(
        conn.recv_frame().as_deref(),
        Some(
            &br#"{"type": "CSHello", "features": ["accounts", "history", "direct", "moderation"]}"#
                [..]
        )
    );
    assert_eq!(
        conn.recv_frame().as_deref(),
        Some(&br#"{"type": "CSHistory", "count": 2}"#[..])
    );
    let line = |seq: i64, member: &str, text: &str| chat_proto::HistoryLine {
        seq,
        time: 1_700_000_000_000,
        member: member.into(),
        text: text.into(),
    };
    conn.send_response(
        WireFormat::Json,
        &Response::History {
            room_id: 1,
            lines: vec![line(7, "bob", "earlier"), line(8, "amy", "later")],
            more: true,
        },
    );
    screen.expect("--- 대화 기록 2줄 (더 있음) ---\r\n[bob] earlier\r\n[amy] later\r\n---\r\n");
    keyboard.write_all(b"/history more\r").unwrap();
    assert_eq!(
        conn.recv_frame().as_deref(),
        Some(&br#"{"type": "CSHistory", "before": 7}"#[..])
    );
    keyboard.write_all(b"/history two\r").unwrap();
    screen.expect("사용법: /history [N] | /history more");
    keyboard.write_all(b"\x04").unwrap();
    assert_eq!(conn.recv_frame(), None);
    drop(conn);
    let status = wait_for_exit(&mut child);
    assert!(status.success(), "{status:?}");
}

/// `/msg NAME TEXT` asks for the `direct` extension with the others (one `CSHello`),
/// then sends the text as typed; `/ignore` and `/unignore` send the name. Direct
/// messages show as `[귓속말 ← NAME]` (received) and `[귓속말 → NAME]` (the server's
/// copy of one sent), escaped; the server's refusals are system messages; a line
/// missing its name or text is answered locally with its usage.
#[test]
fn direct_messages_opt_in_send_and_show() {
    let fake = FakeServer::start();
    let OnPty {
        mut child,
        mut screen,
        mut keyboard,
        _state,
        ..
    } = start_on_pty(&fake);
    let mut conn = fake.accept();
    screen.expect("\r> \x1b[K");
    keyboard.write_all(b"/msg bob\r").unwrap();
    screen.expect("> /msg bob\r\n사용법: /msg NAME TEXT\r\n");
    keyboard.write_all(b"/msg bob  hi  there \r").unwrap();
    screen.expect("> /msg bob  hi  there \r\n");
    assert_eq!(
        conn.recv_frame().as_deref(),
        Some(
            &br#"{"type": "CSHello", "features": ["accounts", "history", "direct", "moderation"]}"#
                [..]
        )
    );
    assert_eq!(
        conn.recv_frame().as_deref(),
        Some(&br#"{"type": "CSDirect", "name": "bob", "text": "hi  there"}"#[..])
    );
    let direct = |member: &'static str, text: &'static str, outgoing| Response::Direct {
        member: member.into(),
        text: text.into(),
        time: 1_700_000_000_000,
        outgoing,
    };
    conn.send_response(WireFormat::Json, &direct("bob", "hi  there", true));
    screen.expect("[귓속말 → bob] hi  there\r\n");
    conn.send_response(WireFormat::Json, &direct("bob", "안녕\x1b[2J", false));
    screen.expect("[귓속말 ← bob] 안녕\\x1b[2J\r\n");

    keyboard.write_all(b"/ignore  bob \r").unwrap();
    assert_eq!(
        conn.recv_frame().as_deref(),
        Some(&br#"{"type": "CSIgnore", "name": "bob", "ignore": true}"#[..]),
        "one hello is enough"
    );
    conn.send_response(
        WireFormat::Json,
        &Response::system("이제 bob 님의 귓속말을 받지 않습니다."),
    );
    screen.expect("[시스템 메시지] 이제 bob 님의 귓속말을 받지 않습니다.\r\n");
    keyboard.write_all(b"/unignore bob\r").unwrap();
    assert_eq!(
        conn.recv_frame().as_deref(),
        Some(&br#"{"type": "CSIgnore", "name": "bob", "ignore": false}"#[..])
    );
    keyboard.write_all(b"/ignore\r").unwrap();
    screen.expect("사용법: /ignore NAME\r\n");
    keyboard.write_all(b"/msg amy yo\r").unwrap();
    assert_eq!(
        conn.recv_frame().as_deref(),
        Some(&br#"{"type": "CSDirect", "name": "amy", "text": "yo"}"#[..])
    );
    // A server that did not agree to `direct` refuses in a system message.
    conn.send_response(
        WireFormat::Json,
        &Response::system("귓속말을 쓰려면 먼저 CSHello 로 direct 기능을 켜야 합니다."),
    );
    screen.expect("[시스템 메시지] 귓속말을 쓰려면 먼저 CSHello 로 direct 기능을 켜야 합니다.\r\n");
    keyboard.write_all(b"\x04").unwrap();
    assert_eq!(conn.recv_frame(), None);
    drop(conn);
    let status = wait_for_exit(&mut child);
    assert!(status.success(), "{status:?}");
}

/// Against the real server: `/msg` reaches a peer that opted in to `direct` (its
/// copy comes back as `[귓속말 → bob]`), the peer's answer shows as `[귓속말 ← bob]`,
/// and `/ignore`, `/unignore` and a name nobody holds are answered in the server's
/// system messages.
#[test]
fn direct_messages_with_the_real_server() {
    let server = TestServer::start();
    let OnPty {
        mut child,
        mut screen,
        mut keyboard,
        _state,
        ..
    } = start_on_pty_at(server.addr.port());
    screen.expect("\r> \x1b[K");
    keyboard.write_all(b"/name alice\r").unwrap();
    screen.expect("[시스템 메시지] 이름이 alice 으로 변경되었습니다.\r\n");

    let mut peer = Peer::connect(server.addr, WireFormat::Json);
    peer.send(Request::Hello {
        features: vec!["direct".into()],
    });
    assert!(
        matches!(peer.recv(), Response::Hello { features, .. } if features == ["direct"]),
        "the server offers direct"
    );
    peer.name("bob");

    keyboard
        .write_all("/msg bob 안녕  하세요 \r".as_bytes())
        .unwrap();
    screen.expect("> /msg bob 안녕  하세요 \r\n");
    screen.expect("[귓속말 → bob] 안녕  하세요\r\n");
    assert!(
        matches!(
            peer.recv(),
            Response::Direct { member, text, outgoing: false, .. }
                if member == "alice" && text == "안녕  하세요"
        ),
        "bob receives alice's message"
    );

    peer.send(Request::Direct {
        name: "alice".into(),
        text: "yo".into(),
    });
    screen.expect("[귓속말 ← bob] yo\r\n");
    assert!(matches!(
        peer.recv(),
        Response::Direct { outgoing: true, .. }
    ));

    keyboard.write_all(b"/ignore bob\r").unwrap();
    screen.expect("[시스템 메시지] 이제 bob 님의 귓속말을 받지 않습니다.\r\n");
    peer.send(Request::Direct {
        name: "alice".into(),
        text: "again".into(),
    });
    peer.expect_system("상대가 내 귓속말을 받지 않습니다.");
    keyboard.write_all(b"/unignore bob\r").unwrap();
    screen.expect("[시스템 메시지] 다시 bob 님의 귓속말을 받습니다.\r\n");
    keyboard.write_all(b"/msg nobody hi\r").unwrap();
    screen.expect("[시스템 메시지] 그런 이름으로 접속한 사람이 없습니다.\r\n");

    keyboard.write_all(b"\x04").unwrap();
    screen.expect("=== EOF 에 따라 프로그램을 종료합니다. ===\r\n");
    let status = wait_for_exit(&mut child);
    assert!(status.success(), "{status:?}");
    assert!(!String::from_utf8_lossy(&screen.seen).contains("again"));
}

/// The moderation commands ask for the `moderation` extension with the others (one
/// `CSHello`, whichever comes first), then go out as typed: `/op` and `/deop`,
/// `/owner`, `/kick` with or without a reason, `/ban` with or without minutes,
/// `/unban`, `/topic` with a text or alone (to clear it). Wrong arguments are
/// answered locally with the usage; the server's answers and refusals are system
/// messages; topics show as `[주제] …` lines, and being kicked leaves the prompt's room.
#[test]
fn moderation_commands_opt_in_send_and_show() {
    let fake = FakeServer::start();
    let OnPty {
        mut child,
        mut screen,
        mut keyboard,
        _state,
        ..
    } = start_on_pty(&fake);
    let mut conn = fake.accept();
    screen.expect("\r> \x1b[K");
    for (line, usage) in [
        ("/op", "사용법: /op NAME"),
        ("/kick", "사용법: /kick NAME [이유]"),
        ("/ban bob 30m", "사용법: /ban NAME [분]"),
        ("/ban bob 30 60", "사용법: /ban NAME [분]"),
        ("/unban", "사용법: /unban NAME"),
    ] {
        keyboard.write_all(format!("{line}\r").as_bytes()).unwrap();
        screen.expect(&format!("> {line}\r\n{usage}\r\n"));
    }
    keyboard
        .write_all("/topic  오늘은  Rust \r".as_bytes())
        .unwrap();
    assert_eq!(
        conn.recv_frame().as_deref(),
        Some(
            &br#"{"type": "CSHello", "features": ["accounts", "history", "direct", "moderation"]}"#
                [..]
        )
    );
    assert_eq!(
        conn.recv_frame().as_deref(),
        Some(r#"{"type": "CSTopic", "text": "\uc624\ub298\uc740  Rust"}"#.as_bytes()),
        "one hello, then the text as typed"
    );
    for (line, sent) in [
        ("/op bob", r#"{"type": "CSOp", "name": "bob", "op": true}"#),
        (
            "/deop bob",
            r#"{"type": "CSOp", "name": "bob", "op": false}"#,
        ),
        ("/owner bob", r#"{"type": "CSOwner", "name": "bob"}"#),
        (
            "/kick bob",
            r#"{"type": "CSKick", "name": "bob", "reason": ""}"#,
        ),
        (
            "/kick bob  spam  again ",
            r#"{"type": "CSKick", "name": "bob", "reason": "spam  again"}"#,
        ),
        (
            "/ban bob 30",
            r#"{"type": "CSBan", "name": "bob", "minutes": 30, "ban": true}"#,
        ),
        (
            "/ban bob",
            r#"{"type": "CSBan", "name": "bob", "ban": true}"#,
        ),
        (
            "/unban bob",
            r#"{"type": "CSBan", "name": "bob", "ban": false}"#,
        ),
        ("/topic", r#"{"type": "CSTopic", "text": ""}"#),
    ] {
        keyboard.write_all(format!("{line}\r").as_bytes()).unwrap();
        assert_eq!(
            conn.recv_frame().as_deref(),
            Some(sent.as_bytes()),
            "{line}"
        );
    }

    conn.send_response(
        WireFormat::Json,
        &Response::system("방제[lobby] 방에 입장했습니다."),
    );
    screen.expect("[시스템 메시지] 방제[lobby] 방에 입장했습니다.\r\n");
    let topic = |topic: &'static str, by: &'static str| Response::Topic {
        room_id: 1,
        topic: topic.into(),
        by: by.into(),
    };
    conn.send_response(WireFormat::Json, &topic("오늘은  Rust", ""));
    screen.expect("[주제] 오늘은  Rust\r\n");
    conn.send_response(WireFormat::Json, &topic("새 주제\x1b[2J", "alice"));
    screen.expect("[주제] alice 님이 주제를 바꿨습니다: 새 주제\\x1b[2J\r\n");
    conn.send_response(WireFormat::Json, &topic("", "alice"));
    screen.expect("[주제] alice 님이 주제를 지웠습니다.\r\n");
    // A refusal is the server's system message, printed as it comes.
    conn.send_response(
        WireFormat::Json,
        &Response::system("방장이나 운영자만 할 수 있습니다."),
    );
    screen.expect("[시스템 메시지] 방장이나 운영자만 할 수 있습니다.\r\n");
    screen.expect("(you)@lobby> ");
    // Kicked: the notice, and the prompt no longer names the room.
    conn.send_response(
        WireFormat::Json,
        &Response::system("[alice] 님이 나를 방에서 내보냈습니다. 이유: spam"),
    );
    screen.expect("[시스템 메시지] [alice] 님이 나를 방에서 내보냈습니다. 이유: spam\r\n");
    screen.expect("\r> \x1b[K");
    keyboard.write_all(b"\x04").unwrap();
    assert_eq!(conn.recv_frame(), None);
    drop(conn);
    let status = wait_for_exit(&mut child);
    assert!(status.success(), "{status:?}");
}

/// Against the real server with a store (registered rooms): the owner's `/topic` is
/// answered and told to every member that opted in, the listing shows it after the
/// title, a member that enters is told it, `/kick` sends a peer out with a reason
/// (as system messages on both sides), and refusals are the server's system messages.
#[test]
fn moderation_with_the_real_server() {
    let server = TestServer::start_with_store();
    let OnPty {
        mut child,
        mut screen,
        mut keyboard,
        _state,
        ..
    } = start_on_pty_at(server.addr.port());
    screen.expect("\r> \x1b[K");
    keyboard.write_all(b"/name alice\r").unwrap();
    screen.expect("[시스템 메시지] 이름이 alice 으로 변경되었습니다.\r\n");
    keyboard.write_all(b"/register pw12345678\r").unwrap();
    screen.expect("[시스템 메시지] 이름 alice 을 계정으로 등록했습니다.");
    keyboard.write_all(b"/create lobby\r").unwrap();
    screen.expect("[시스템 메시지] 방제[lobby] 방에 입장했습니다.\r\n");
    keyboard
        .write_all("/topic 오늘은  Rust 😀\r".as_bytes())
        .unwrap();
    // Every member that opted in is told (the setter too), and the setter answered.
    screen.expect_unordered(&[
        "[주제] alice 님이 주제를 바꿨습니다: 오늘은  Rust 😀\r\n",
        "[시스템 메시지] 주제를 바꿨습니다: 오늘은  Rust 😀\r\n",
    ]);

    let mut peer = Peer::connect(server.addr, WireFormat::Json);
    peer.send(Request::Hello {
        features: vec!["moderation".into()],
    });
    assert!(
        matches!(peer.recv(), Response::Hello { features, .. } if features == ["moderation"]),
        "the server offers moderation"
    );
    peer.name("bob");
    peer.send(Request::Rooms);
    let Response::RoomsResult { rooms } = peer.recv() else {
        panic!("a rooms list");
    };
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0].topic.as_deref(), Some("오늘은  Rust 😀"));
    peer.send(Request::JoinRoom {
        room_id: rooms[0].room_id,
    });
    peer.expect_system("방제[lobby] 방에 입장했습니다.");
    assert!(matches!(
        peer.recv(),
        Response::Topic { topic, by, .. } if topic == "오늘은  Rust 😀" && by.is_empty()
    ));
    screen.expect("[시스템 메시지] [bob] 님이 입장했습니다.\r\n");

    keyboard.write_all(b"/rooms\r").unwrap();
    screen.expect(&format!(
        "---\r\n[방목록]\r\n방ID | 방제목 | 멤버들\r\n{} | lobby (주제: 오늘은  Rust 😀) | alice,bob\r\n---\r\n",
        rooms[0].room_id
    ));
    // Entering again, the topic is told with nobody's name.
    keyboard.write_all(b"/leave\r").unwrap();
    screen.expect("[시스템 메시지] 방제[lobby] 대화 방에서 퇴장했습니다.\r\n");
    peer.expect_system("[alice] 님이 퇴장했습니다.");
    keyboard
        .write_all(format!("/join {}\r", rooms[0].room_id).as_bytes())
        .unwrap();
    screen.expect("[시스템 메시지] 방제[lobby] 방에 입장했습니다.\r\n");
    // After the history page the hello asked for (the room has no chats).
    screen.expect("--- 대화 기록 0줄 ---\r\n---\r\n[주제] 오늘은  Rust 😀\r\n");
    peer.expect_system("[alice] 님이 입장했습니다.");

    keyboard.write_all(b"/kick bob  stop  it \r").unwrap();
    screen.expect(
        "[시스템 메시지] [bob] 님이 [alice] 님에 의해 방에서 내보내졌습니다. 이유: stop  it\r\n",
    );
    peer.expect_system("[alice] 님이 나를 방에서 내보냈습니다. 이유: stop  it");
    // Refusals: bob is neither an account nor in the room now; nobody named carol.
    keyboard.write_all(b"/ban bob 30\r").unwrap();
    screen.expect("[시스템 메시지] 그런 이름의 계정이 없습니다.\r\n");
    keyboard.write_all(b"/op carol\r").unwrap();
    screen.expect("[시스템 메시지] 그런 이름의 계정이 없습니다.\r\n");
    keyboard.write_all(b"/topic\r").unwrap();
    screen.expect_unordered(&[
        "[주제] alice 님이 주제를 지웠습니다.\r\n",
        "[시스템 메시지] 주제를 지웠습니다.\r\n",
    ]);

    keyboard.write_all(b"\x04").unwrap();
    screen.expect("=== EOF 에 따라 프로그램을 종료합니다. ===\r\n");
    let status = wait_for_exit(&mut child);
    assert!(status.success(), "{status:?}");
}
