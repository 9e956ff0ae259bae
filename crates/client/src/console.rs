//! Where output goes, and — on a terminal — the line being typed.
//!
//! * [`Console::plain`]: lines are written to standard output as they are, nothing
//!   else (no colour, no prompt), so output can be compared byte for byte. Used
//!   whenever standard input or output is not a terminal.
//! * Interactive ([`Console::detect`] when standard input and output are one
//!   terminal; see [`Console::is_interactive`]): the terminal is put in raw mode and
//!   a [`crate::editor::Editor`] owns the bottom row. Printing first erases that row,
//!   writes the lines, and the row is redrawn once per loop turn by
//!   [`Console::refresh`], so messages arriving while the user types never garble
//!   the line being typed. Lines may be coloured by [`Style`]. The prompt shows
//!   the user's name and room ([`crate::prompt`]), kept up to date by
//!   [`Console::observe`]; entered lines are saved to the history file
//!   ([`crate::history_file`]), whose lines are loaded at start. The row is drawn
//!   at the terminal's width of the moment, so a redraw after a resize (which the
//!   session triggers on SIGWINCH) fits the new width.
//!
//! Every string shown here was escaped by [`crate::render`] or [`crate::trace`]
//! already; this module adds only its own colour and cursor codes.

use std::io::{self, IsTerminal, StdoutLock, Write};
use std::os::fd::{AsRawFd, RawFd};

use chat_proto::Response;

use crate::editor::{Editor, Event};
use crate::history_file::HistoryFile;
use crate::prompt::Identity;
use crate::render::{Line, Style, escape};
use crate::sys::{self, RawMode};

/// Standard output, plus the line editor when interactive.
#[derive(Debug)]
pub struct Console {
    out: StdoutLock<'static>,
    colour: bool,
    interactive: Option<Interactive>,
}

/// The terminal side of an interactive console.
#[derive(Debug)]
struct Interactive {
    editor: Editor,
    /// Dropped last (fields drop in order), restoring the terminal.
    _raw: RawMode,
    /// The terminal, for its width.
    fd: RawFd,
    /// Whether the prompt and line are on screen now (so must be erased before
    /// printing).
    shown: bool,
    /// Input ended: nothing more is typed, so the edit row stays hidden.
    input_closed: bool,
    /// The user's name and room, for the prompt.
    identity: Identity,
    /// Where entered lines are saved (none if no place was found).
    history: Option<HistoryFile>,
}

impl Console {
    /// A console that writes plain lines only.
    pub fn plain() -> Self {
        Self {
            out: io::stdout().lock(),
            colour: false,
            interactive: None,
        }
    }

    /// A line-editing console if standard input and output are both terminals (and
    /// raw mode can be set); a plain one otherwise.
    pub fn detect() -> Self {
        let mut console = Self::plain();
        let stdin = io::stdin();
        if !(stdin.is_terminal() && io::stdout().is_terminal()) {
            return console;
        }
        let fd = stdin.as_raw_fd();
        if let Ok(raw) = RawMode::enable(fd) {
            console.colour = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            let history = HistoryFile::from_env();
            let lines = history.as_ref().map(HistoryFile::load).unwrap_or_default();
            console.interactive = Some(Interactive {
                editor: Editor::with_history(lines),
                _raw: raw,
                fd,
                shown: false,
                input_closed: false,
                identity: Identity::new(),
                history,
            });
        }
        console
    }

    /// Whether keys go to the line editor ([`Console::keys`]) rather than being read
    /// as lines.
    pub fn is_interactive(&self) -> bool {
        self.interactive.is_some()
    }

    /// Feeds bytes read from the terminal to the line editor; returns what they asked
    /// for. Lines entered into history are saved to the history file. A submitted
    /// line leaves the edit row; the caller shows it ([`Console::echo`] or, for a
    /// chat line, [`crate::render::own_chat_line`]).
    pub fn keys(&mut self, bytes: &[u8]) -> io::Result<Vec<Event>> {
        let Some(interactive) = self.interactive.as_mut() else {
            return Ok(Vec::new());
        };
        let events = interactive.editor.feed(bytes);
        if let Some(history) = &interactive.history {
            for line in interactive.editor.take_recorded() {
                history.append(&line);
            }
        }
        for event in &events {
            match event {
                Event::Submit(_) => self.hide()?,
                Event::ClearScreen => {
                    self.hide()?;
                    self.out.write_all(b"\x1b[H\x1b[2J")?;
                }
                Event::Eof | Event::Interrupt => {}
            }
        }
        Ok(events)
    }

    /// Prints an entered line after the prompt it was typed at, as a terminal would
    /// have left it.
    pub fn echo(&mut self, line: &str) -> io::Result<()> {
        self.hide()?;
        let prompt = self.prompt().0;
        writeln!(self.out, "{prompt}{}", escape(line))
    }

    /// Updates the prompt from a response (terminal only; see [`crate::prompt`]).
    pub fn observe(&mut self, response: &Response<'_>) {
        if let Some(interactive) = self.interactive.as_mut() {
            interactive.identity.observe(response);
        }
    }

    /// The session is ending under the user's hands (the server closed): a half-typed
    /// line is printed, so it stays on screen instead of being erased, and the edit
    /// row is not drawn again.
    pub fn keep_draft(&mut self) -> io::Result<()> {
        let Some(interactive) = self.interactive.as_mut() else {
            return Ok(());
        };
        let draft = interactive.editor.line();
        interactive.input_closed = true;
        if draft.is_empty() {
            return Ok(());
        }
        self.echo(&draft)
    }

    /// Input has ended: the edit row is no longer drawn.
    pub fn close_input(&mut self) {
        if let Some(interactive) = self.interactive.as_mut() {
            interactive.input_closed = true;
        }
    }

    /// Prints lines (above the edit row, when interactive).
    pub fn print(&mut self, lines: &[Line]) -> io::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        self.hide()?;
        for line in lines {
            match self.colour_of(line.style) {
                Some(code) => writeln!(self.out, "\x1b[{code}m{}\x1b[0m", line.text)?,
                None => writeln!(self.out, "{}", line.text)?,
            }
        }
        Ok(())
    }

    /// Prints one line of the given style.
    pub fn print_line(&mut self, style: Style, text: impl Into<String>) -> io::Result<()> {
        self.print(&[Line::new(style, text)])
    }

    /// Redraws the edit row if needed and flushes; call once per loop turn (and after
    /// a resize: the width is read afresh each time).
    pub fn refresh(&mut self) -> io::Result<()> {
        if self.interactive.as_ref().is_some_and(|i| !i.input_closed) {
            let (prompt, prompt_width) = self.prompt();
            let width = self.width();
            if let Some(interactive) = self.interactive.as_mut() {
                let row = interactive.editor.render(&prompt, prompt_width, width);
                self.out.write_all(row.as_bytes())?;
                interactive.shown = true;
            }
        }
        self.out.flush()
    }

    /// Erases the edit row (if shown) and flushes: call before exiting.
    pub fn finish(&mut self) -> io::Result<()> {
        self.hide()?;
        self.out.flush()
    }

    /// Erases the edit row if it is on screen.
    fn hide(&mut self) -> io::Result<()> {
        if let Some(interactive) = self.interactive.as_mut()
            && interactive.shown
        {
            self.out.write_all(b"\r\x1b[K")?;
            interactive.shown = false;
        }
        Ok(())
    }

    /// The terminal's width now (80 if it cannot tell).
    fn width(&self) -> usize {
        self.interactive
            .as_ref()
            .and_then(|i| sys::terminal_width(i.fd))
            .unwrap_or(80)
    }

    /// The prompt as drawn (coloured when colouring) and its width in columns.
    fn prompt(&self) -> (String, usize) {
        let (text, width) = match &self.interactive {
            Some(interactive) => interactive.identity.prompt(self.width()),
            None => Identity::new().prompt(self.width()),
        };
        if self.colour {
            (format!("\x1b[1;32m{text}\x1b[0m"), width)
        } else {
            (text, width)
        }
    }

    /// The SGR colour code for a style, when colouring.
    fn colour_of(&self, style: Style) -> Option<&'static str> {
        if !self.colour {
            return None;
        }
        match style {
            Style::Plain | Style::Chat => None,
            Style::System => Some("33"),
            // Magenta: apart from chats (uncoloured) and system messages (yellow).
            Style::Direct => Some("35"),
            Style::Trace => Some("2"),
            Style::Own => Some("1"),
            Style::Error => Some("31"),
        }
    }
}
