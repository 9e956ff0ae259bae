//! Safe wrappers over the few libc calls the client needs: `poll(2)`, termios raw
//! mode, and the terminal's width. This is the crate's only `unsafe` code; each block
//! passes pointers to live, correctly sized values, which is all these calls ask.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// One descriptor to watch.
#[derive(Debug, Clone, Copy)]
pub struct PollFd {
    /// The descriptor.
    pub fd: RawFd,
    /// Wake when readable (or closed, or in error).
    pub read: bool,
    /// Wake when writable.
    pub write: bool,
}

/// What `poll` reported for one [`PollFd`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ready {
    /// Readable, at end of stream, or in error: a `read` will not block and will tell.
    pub read: bool,
    /// Writable, or in error: a `write` will not block and will tell.
    pub write: bool,
}

/// Waits until one of `fds` is ready or `timeout` passes (`None`: no limit). An
/// interrupted wait returns with nothing ready, which callers treat as spurious.
pub fn poll(fds: &[PollFd], timeout: Option<Duration>) -> io::Result<Vec<Ready>> {
    let mut raw: Vec<libc::pollfd> = fds
        .iter()
        .map(|p| libc::pollfd {
            fd: p.fd,
            events: (if p.read { libc::POLLIN } else { 0 })
                | (if p.write { libc::POLLOUT } else { 0 }),
            revents: 0,
        })
        .collect();
    let timeout_ms = match timeout {
        None => -1,
        // Round up so a short timeout is not a busy loop of zero-length polls.
        Some(t) => i32::try_from(t.as_micros().div_ceil(1000)).unwrap_or(i32::MAX),
    };
    let nfds = libc::nfds_t::try_from(raw.len()).map_err(|_| io::Error::other("too many fds"))?;
    // SAFETY: `raw` is a valid array of `nfds` pollfd structs for the whole call.
    let n = unsafe { libc::poll(raw.as_mut_ptr(), nfds, timeout_ms) };
    if n < 0 {
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
        raw.iter_mut().for_each(|p| p.revents = 0);
    }
    Ok(raw
        .iter()
        .map(|p| {
            let failed = p.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0;
            Ready {
                read: p.revents & libc::POLLIN != 0 || failed,
                write: p.revents & libc::POLLOUT != 0 || (failed && p.events & libc::POLLOUT != 0),
            }
        })
        .collect())
}

/// A terminal in raw mode; the previous settings come back when this is dropped
/// (on every return path and on panic).
pub struct RawMode {
    fd: RawFd,
    original: libc::termios,
}

impl std::fmt::Debug for RawMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The saved termios is opaque flag words; the descriptor says which terminal.
        f.debug_struct("RawMode")
            .field("fd", &self.fd)
            .finish_non_exhaustive()
    }
}

impl RawMode {
    /// Switches the terminal on `fd` to raw input: no line buffering, no echo, no
    /// signals from Ctrl-C/Ctrl-Z (the editor handles those keys), no CR→NL
    /// translation, no flow control. Output processing (`\n` → `\r\n`) stays on, so
    /// printed lines need no special care.
    pub fn enable(fd: RawFd) -> io::Result<Self> {
        // SAFETY: termios is plain data; tcgetattr fills it or fails.
        let mut original: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: `original` is a valid termios to write into.
        if unsafe { libc::tcgetattr(fd, &mut original) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut raw = original;
        raw.c_iflag &= !(libc::BRKINT | libc::ICRNL | libc::INPCK | libc::ISTRIP | libc::IXON);
        raw.c_lflag &= !(libc::ECHO | libc::ICANON | libc::IEXTEN | libc::ISIG);
        raw.c_cflag |= libc::CS8;
        raw.c_cc[libc::VMIN] = 1;
        raw.c_cc[libc::VTIME] = 0;
        // SAFETY: `raw` is a valid termios.
        if unsafe { libc::tcsetattr(fd, libc::TCSADRAIN, &raw) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { fd, original })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: `original` is the valid termios read in `enable`. Nothing useful can
        // be done if restoring fails while exiting.
        unsafe { libc::tcsetattr(self.fd, libc::TCSADRAIN, &self.original) };
    }
}

/// The terminal's width in columns, if `fd` is a terminal that knows it.
pub fn terminal_width(fd: RawFd) -> Option<usize> {
    // SAFETY: winsize is plain data; TIOCGWINSZ fills it or fails.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize through the pointer.
    let ok = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some(usize::from(size.ws_col))
}
