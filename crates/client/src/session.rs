//! The event loop: one `poll(2)` over standard input and the socket, so commands are
//! read and sent while whatever the server sends is printed, as soon as either is
//! ready (the reference client's `select` loop, made non-blocking on the socket side).
//!
//! Each turn: redraw the edit row (interactive only), wait, then write queued
//! requests if the socket is writable, print what the server sent, and handle what
//! was typed. Only this module decides when the program ends:
//!
//! * **End of input** (Ctrl-D, or the end of a pipe): the client stops reading input,
//!   finishes writing what is queued, half-closes the socket (`shutdown(SHUT_WR)`)
//!   and keeps printing until the server closes its side — it does that once it has
//!   answered everything sent before — or [`DRAIN_TIMEOUT`] passes. Then it prints
//!   `=== EOF 에 따라 프로그램을 종료합니다. ===` and exits 0. The reference client
//!   exits at once instead, losing replies still in flight when its input is a pipe;
//!   the half-close keeps them without guessing how many replies to wait for (chat
//!   lines get none) and costs nothing with a server that closes promptly.
//! * **The server closes the socket**: `서버가 소켓을 닫았음`, exit 0.
//! * **The server sends something invalid**: a one-line reason, exit 1.
//! * **Ctrl-C on an empty line** (interactive): exit 130, like a shell.
//! * **SIGTERM or SIGHUP**: exit 128 + the signal's number, like a shell, after the
//!   terminal is restored (see `signals.rs`).
//!
//! On a terminal a few things differ (piped output stays the reference's): `/quit`
//! and `/exit` end input like Ctrl-D; `/help` lists arguments and the ways to
//! leave; a chat line sent is shown as `[나] text` (the server never echoes it);
//! SIGWINCH redraws the edit row at once; and when the server closes, a half-typed
//! line is printed before `서버가 소켓을 닫았음` rather than erased.
//!
//! Reading input pauses while more than [`MAX_QUEUED`] bytes wait to be written, so a
//! huge pipe into a server that stopped reading cannot grow memory without bound.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use chat_proto::{Request, WireFormat};

use crate::cli::Args;
use crate::commands::{self, Command};
use crate::connection::{Connection, ConnectionError, Incoming, SendError, TlsSetup};
use crate::console::Console;
use crate::editor::Event;
use crate::input::{LineSplitter, NotUtf8, Stdin};
use crate::render::{self, Line, Style, escape};
use crate::signals::Signals;
use crate::sys::{self, PollFd};
use crate::tls::Trust;

/// How long to wait, after input ends, for the server to answer what was sent.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Queued output above which input is not read (back-pressure).
pub const MAX_QUEUED: usize = 256 * 1024;

/// The line printed when input ends.
pub const EOF_LINE: &str = "=== EOF 에 따라 프로그램을 종료합니다. ===";

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Input ended; replies were drained.
    InputEnded,
    /// The server closed the connection.
    ServerClosed,
    /// Ctrl-C.
    Interrupted,
    /// SIGTERM or SIGHUP (the signal's number).
    Signalled(i32),
    /// The server sent an invalid message or the socket failed.
    ConnectionFailed,
}

impl Outcome {
    /// The process exit status for this outcome.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::InputEnded | Outcome::ServerClosed => 0,
            Outcome::ConnectionFailed => 1,
            Outcome::Interrupted => 130,
            Outcome::Signalled(signal) => u8::try_from(128 + signal).unwrap_or(u8::MAX),
        }
    }
}

/// A local failure that ends the program (not the server's doing).
#[derive(Debug)]
pub struct Fatal {
    context: &'static str,
    error: io::Error,
}

impl fmt::Display for Fatal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.error)
    }
}

impl std::error::Error for Fatal {}

/// What `--tls` and its companions ask for, or `None` without `--tls`.
fn tls_setup(args: &Args) -> Result<Option<TlsSetup>, String> {
    if !args.tls {
        return Ok(None);
    }
    let trust = match (&args.ca, args.insecure) {
        (_, true) => Trust::Anyone,
        (Some(ca), false) => Trust::File(ca),
        (None, false) => Trust::System,
    };
    Ok(Some(TlsSetup {
        config: crate::tls::client_config(trust)?,
        server_name: crate::tls::server_name(&args.ip, args.server_name.as_deref())?,
    }))
}

fn fatal(context: &'static str) -> impl FnOnce(io::Error) -> Fatal {
    move |error| Fatal { context, error }
}

fn output_error(error: io::Error) -> Fatal {
    Fatal {
        context: "표준 출력에 쓸 수 없음",
        error,
    }
}

/// Connects as `args` say and runs until the session ends.
pub fn run(args: &Args) -> Result<Outcome, Fatal> {
    let format = WireFormat::from(args.format);
    let port = args.port;
    let tls = tls_setup(args).map_err(|why| Fatal {
        context: "TLS 설정 오류",
        error: io::Error::new(io::ErrorKind::InvalidInput, why),
    })?;
    let connection = Connection::connect(&args.ip, port, format, args.verbosity, tls)
        .map_err(fatal("서버에 연결할 수 없음"))?;
    let stdin = Stdin::open().map_err(fatal("표준 입력을 열 수 없음"))?;
    let signals = Signals::install().map_err(fatal("시그널 처리를 설치할 수 없음"))?;
    let mut console = Console::detect();
    let mut session = Session {
        connection,
        stdin,
        splitter: LineSplitter::new(),
        phase: Phase::Running,
        half_close_due: false,
        signals,
        said_hello: false,
        history_before: None,
    };
    let result = console
        .print_line(
            Style::Plain,
            format!("Connected to {}:{}", escape(&args.ip), port),
        )
        .map_err(output_error)
        .and_then(|()| session.run(&mut console));
    // Restore the edit row before the terminal leaves raw mode (when `console`
    // drops); a failure here changes nothing about how the session ended.
    let _ = console.finish();
    result
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading input and the socket.
    Running,
    /// Input ended: only printing replies, until the server closes or the deadline.
    Draining { deadline: Instant },
}

struct Session {
    connection: Connection,
    stdin: Stdin,
    splitter: LineSplitter,
    phase: Phase,
    /// Input ended and the socket is to be half-closed once the queue is written.
    half_close_due: bool,
    signals: Signals,
    /// `CSHello` was sent: the server's extensions are asked for only when first
    /// used (an account, history, direct-message or moderation command), so a
    /// session that never uses them sends exactly what the reference client sends.
    said_hello: bool,
    /// Where the last history page began, if older lines are kept (`/history more`).
    history_before: Option<i64>,
}

/// Whether the loop goes on.
enum Flow {
    Continue,
    Stop(Outcome),
}

impl Session {
    fn run(&mut self, console: &mut Console) -> Result<Outcome, Fatal> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if self.half_close_due && self.connection.queued() == 0 {
                self.half_close_due = false;
                if let Err(error) = self.connection.shutdown_write()
                    && let Flow::Stop(outcome) = self.connection_failed(console, error)?
                {
                    return Ok(outcome);
                }
            }
            console.refresh().map_err(output_error)?;

            let timeout = match self.phase {
                Phase::Running => None,
                Phase::Draining { deadline } => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return self.end_of_input(console);
                    }
                    Some(left)
                }
            };
            let read_input = self.phase == Phase::Running && self.connection.queued() < MAX_QUEUED;
            let fds = [
                PollFd {
                    fd: self.connection.fd(),
                    read: true,
                    write: self.connection.queued() > 0,
                },
                PollFd {
                    // A negative descriptor is skipped by poll (not even hang-ups).
                    fd: if read_input { self.stdin.fd() } else { -1 },
                    read: true,
                    write: false,
                },
                PollFd {
                    fd: self.signals.fd(),
                    read: true,
                    write: false,
                },
            ];
            let ready = sys::poll(&fds, timeout).map_err(fatal("poll 실패"))?;
            let (socket, input) = (ready[0], ready[1]);
            if ready[2].read {
                if let Some(signal) = self.signals.received() {
                    return Ok(Outcome::Signalled(signal));
                }
                // A resize needs nothing more: the next turn's refresh redraws the
                // row at the width the terminal has now. Waking the poll is the point.
                let _ = self.signals.take_resized();
            }

            if socket.write {
                let mut trace = Vec::new();
                let result = self.connection.flush(&mut trace);
                print_trace(console, trace)?;
                if let Err(error) = result
                    && let Flow::Stop(outcome) = self.write_failed(console, error)?
                {
                    return Ok(outcome);
                }
            }
            if socket.read
                && let Flow::Stop(outcome) = self.receive(console)?
            {
                return Ok(outcome);
            }
            if input.read
                && read_input
                && let Flow::Stop(outcome) = self.read_input(console, &mut buf)?
            {
                return Ok(outcome);
            }
        }
    }

    /// Prints what the server sent.
    fn receive(&mut self, console: &mut Console) -> Result<Flow, Fatal> {
        let mut incoming = Vec::new();
        let result = self.connection.receive(&mut incoming);
        let mut lines = Vec::new();
        for item in incoming {
            match item {
                Incoming::Trace(text) => lines.push(Line::new(Style::Trace, text)),
                Incoming::Response(response) => {
                    if let chat_proto::Response::History { lines, more, .. } = &response {
                        self.history_before = lines.first().filter(|_| *more).map(|l| l.seq);
                    }
                    console.observe(&response);
                    lines.extend(render::response_lines(&response));
                }
            }
        }
        console.print(&lines).map_err(output_error)?;
        match result {
            Ok(()) => Ok(Flow::Continue),
            Err(error) => self.connection_failed(console, error),
        }
    }

    /// A write failed. If the server is gone, the read side reports the close once it
    /// has printed whatever the server sent before closing; other errors end the
    /// session now.
    fn write_failed(
        &mut self,
        console: &mut Console,
        error: ConnectionError,
    ) -> Result<Flow, Fatal> {
        match error {
            ConnectionError::Closed => Ok(Flow::Continue),
            error => self.connection_failed(console, error),
        }
    }

    /// Ends the session for a connection error (a close while draining is the
    /// expected end of input).
    fn connection_failed(
        &mut self,
        console: &mut Console,
        error: ConnectionError,
    ) -> Result<Flow, Fatal> {
        match error {
            ConnectionError::Closed if matches!(self.phase, Phase::Draining { .. }) => {
                self.end_of_input(console).map(Flow::Stop)
            }
            ConnectionError::Closed => {
                console.keep_draft().map_err(output_error)?;
                console
                    .print_line(Style::Plain, error.to_string())
                    .map_err(output_error)?;
                Ok(Flow::Stop(Outcome::ServerClosed))
            }
            error => {
                console.keep_draft().map_err(output_error)?;
                console
                    .print_line(Style::Error, error.to_string())
                    .map_err(output_error)?;
                Ok(Flow::Stop(Outcome::ConnectionFailed))
            }
        }
    }

    /// Reads once from standard input and handles every complete line or key.
    fn read_input(&mut self, console: &mut Console, buf: &mut [u8]) -> Result<Flow, Fatal> {
        let n = self
            .stdin
            .read(buf)
            .map_err(fatal("표준 입력을 읽을 수 없음"))?;
        let bytes = &buf[..n];
        if console.is_interactive() {
            if n == 0 {
                // The terminal went away (hang-up).
                return self.input_ended(console);
            }
            for event in console.keys(bytes).map_err(output_error)? {
                let flow = match event {
                    Event::Submit(line) => self.handle_typed(console, &line)?,
                    Event::Eof => self.input_ended(console)?,
                    Event::Interrupt => Flow::Stop(Outcome::Interrupted),
                    Event::ClearScreen => Flow::Continue,
                };
                if let Flow::Stop(outcome) = flow {
                    return Ok(Flow::Stop(outcome));
                }
                if self.phase != Phase::Running {
                    break; // Keys after Ctrl-D are not read.
                }
            }
            return Ok(Flow::Continue);
        }
        let mut lines = self.splitter.push(bytes);
        if n == 0 {
            lines.extend(self.splitter.finish());
        }
        for line in lines {
            let flow = match line {
                Ok(line) => self.handle_line(console, &line)?,
                Err(NotUtf8) => {
                    // The reference skips such lines silently; say so, on stderr so
                    // standard output stays the reference's.
                    eprintln!("chat-client: UTF-8 이 아닌 입력 줄은 무시합니다.");
                    Flow::Continue
                }
            };
            if let Flow::Stop(outcome) = flow {
                return Ok(Flow::Stop(outcome));
            }
        }
        if n == 0 {
            return self.input_ended(console);
        }
        Ok(Flow::Continue)
    }

    /// Runs one line typed at a terminal. It has left the edit row, so it is shown
    /// again first: a chat line, once queued, as `[나] text`; anything else after its
    /// prompt, before whatever it prints.
    fn handle_typed(&mut self, console: &mut Console, line: &str) -> Result<Flow, Fatal> {
        match commands::parse_typed(line) {
            Some(Command::Send(request @ Request::Chat { .. })) => {
                let mut trace = Vec::new();
                let result = self.connection.send(&request, &mut trace);
                match (&result, &request) {
                    (Ok(()), Request::Chat { text }) => console
                        .print(&[render::own_chat_line(text)])
                        .map_err(output_error)?,
                    // Not sent: show what was typed; the error follows.
                    _ => console.echo(line).map_err(output_error)?,
                }
                print_trace(console, trace)?;
                match result {
                    Ok(()) => Ok(Flow::Continue),
                    Err(error) => self.send_failed(console, error),
                }
            }
            command => {
                // A password is never shown again: `/login NAME ********`.
                console
                    .echo(&commands::masked(line))
                    .map_err(output_error)?;
                self.run_command(console, command, true)
            }
        }
    }

    /// Runs one input line: a request to send, or something printed locally.
    fn handle_line(&mut self, console: &mut Console, line: &str) -> Result<Flow, Fatal> {
        self.run_command(console, commands::parse_line(line), false)
    }

    /// Carries out a parsed line; `terminal` picks the longer `/help`.
    fn run_command(
        &mut self,
        console: &mut Console,
        command: Option<Command>,
        terminal: bool,
    ) -> Result<Flow, Fatal> {
        match command {
            None => Ok(Flow::Continue),
            Some(Command::Quit) => self.input_ended(console),
            Some(Command::HistoryMore) => match self.history_before {
                Some(before) => self.run_command(
                    console,
                    Some(Command::Send(Request::History {
                        count: None,
                        before: Some(before),
                    })),
                    terminal,
                ),
                None => {
                    console
                        .print_line(Style::Error, "더 앞의 대화 기록이 없습니다.")
                        .map_err(output_error)?;
                    Ok(Flow::Continue)
                }
            },
            Some(Command::Help) => {
                let texts: Vec<String> = if terminal {
                    commands::terminal_help_lines().collect()
                } else {
                    commands::help_lines().collect()
                };
                let lines: Vec<Line> = texts
                    .into_iter()
                    .map(|text| Line::new(Style::Plain, text))
                    .collect();
                console.print(&lines).map_err(output_error)?;
                Ok(Flow::Continue)
            }
            Some(Command::Refused(error)) => {
                console
                    .print_line(Style::Error, error.to_string())
                    .map_err(output_error)?;
                Ok(Flow::Continue)
            }
            Some(Command::Send(request)) => {
                let mut trace = Vec::new();
                let extension = matches!(
                    request,
                    Request::Register { .. }
                        | Request::Login { .. }
                        | Request::Logout
                        | Request::ChangePassword { .. }
                        | Request::History { .. }
                        | Request::DeleteRoom { .. }
                        | Request::Direct { .. }
                        | Request::Ignore { .. }
                        | Request::Op { .. }
                        | Request::Owner { .. }
                        | Request::Kick { .. }
                        | Request::Ban { .. }
                        | Request::Topic { .. }
                );
                if extension && !self.said_hello {
                    self.said_hello = true;
                    // Every extension the client shows, at once: a later hello would
                    // replace the features of the first.
                    let hello = Request::Hello {
                        features: ["accounts", "history", "direct", "moderation"]
                            .map(str::to_owned)
                            .to_vec(),
                    };
                    if let Err(error) = self.connection.send(&hello, &mut trace) {
                        print_trace(console, trace)?;
                        return self.send_failed(console, error);
                    }
                }
                let result = self.connection.send(&request, &mut trace);
                print_trace(console, trace)?;
                match result {
                    Ok(()) => Ok(Flow::Continue),
                    Err(error) => self.send_failed(console, error),
                }
            }
        }
    }

    /// A request could not be queued: too large (said, nothing sent), or the
    /// connection failed.
    fn send_failed(&mut self, console: &mut Console, error: SendError) -> Result<Flow, Fatal> {
        match error {
            SendError::TooLarge(error) => {
                console
                    .print_line(Style::Error, format!("보내지 않았음: {error}"))
                    .map_err(output_error)?;
                Ok(Flow::Continue)
            }
            SendError::Connection(error) => self.write_failed(console, error),
        }
    }

    /// Input ended: half-close once the queue is written and wait for the server.
    fn input_ended(&mut self, console: &mut Console) -> Result<Flow, Fatal> {
        if self.phase == Phase::Running {
            self.phase = Phase::Draining {
                deadline: Instant::now() + DRAIN_TIMEOUT,
            };
            self.half_close_due = true;
            console.close_input();
        }
        Ok(Flow::Continue)
    }

    /// The end of a session whose input ended.
    fn end_of_input(&mut self, console: &mut Console) -> Result<Outcome, Fatal> {
        console
            .print_line(Style::Plain, EOF_LINE)
            .map_err(output_error)?;
        Ok(Outcome::InputEnded)
    }
}

fn print_trace(console: &mut Console, trace: Vec<String>) -> Result<(), Fatal> {
    let lines: Vec<Line> = trace
        .into_iter()
        .map(|text| Line::new(Style::Trace, text))
        .collect();
    console.print(&lines).map_err(output_error)
}
