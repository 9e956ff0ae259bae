//! `chat-client` on a pseudo-terminal: line editing, history, messages printed above
//! the line being typed without garbling it, and the terminal restored on exit.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Instant;

use chat_proto::{Request, Response, WireFormat};
use common::{FakeServer, TIMEOUT};

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
}

fn start_on_pty(fake: &FakeServer) -> OnPty {
    let (master, slave) = open_pty();
    let before = termios_of(&slave);
    let child = Command::new(env!("CARGO_BIN_EXE_chat-client"))
        .arg(format!("--port={}", fake.addr.port()))
        .env("NO_COLOR", "1")
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn chat-client");
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

    // Two backspaces, cursor home, insert, Enter: the submitted line is echoed.
    keyboard.write_all(b"\x7f\x7f\x01>\r").unwrap();
    screen.expect("> >héllo\r\n");
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
