//! `chat-client`: the interactive client of the chat server, a Rust twin of the
//! course's reference `client.py` (see `docs/PROTOCOL.md` §5 for what it prints).
//!
//! # Layout
//!
//! * [`cli`] — the command-line flags (`--ip`, `--port`, `--format`, `--verbosity`).
//! * [`commands`] — one input line → a [`chat_proto::Request`] to send, or a local
//!   action (help, a usage error). No I/O.
//! * [`render`] — a [`chat_proto::Response`] → the lines to print, and the escaping
//!   that keeps a server from sending terminal escape sequences. No I/O.
//! * [`trace`] — the `--verbosity` lines (`[C->S:총길이=…]`), including protobuf's text
//!   format. No I/O.
//! * [`connection`] — the socket: framing and codecs from `chat-proto`, a write queue,
//!   and the trace of every frame. Never blocks once connected.
//! * [`input`] — standard input as a stream of lines when it is not a terminal.
//! * [`editor`] — the line editor's state machine (keys → buffer, history, redraw
//!   text). No I/O.
//! * [`prompt`] — the user's name and room, followed from the server's notices, and
//!   the terminal prompt `NAME@ROOM> ` that shows them. No I/O.
//! * [`history_file`] — the editor's history kept between runs under
//!   `$XDG_STATE_HOME/chat-client/`; every failure is silent.
//! * [`sys`] — `poll(2)`, termios raw mode, the window width: the only `unsafe`.
//! * [`console`] — where output goes: plain lines, or lines printed above the line
//!   being edited.
//! * [`signals`] — SIGTERM and SIGHUP as poll events, so the terminal is restored.
//! * [`session`] — the event loop: one `poll(2)` over standard input and the socket.
//!
//! `main.rs` parses the flags, calls [`session::run`] and turns its result into the
//! exit status.

pub mod cli;
pub mod commands;
pub mod connection;
pub mod console;
pub mod editor;
pub mod history_file;
pub mod input;
pub mod prompt;
pub mod render;
pub mod session;
pub mod signals;
pub mod sys;
pub mod tls;
pub mod trace;
