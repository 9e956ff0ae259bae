//! SIGTERM and SIGHUP as events of the poll loop, so the session ends through its
//! normal path — and a terminal in raw mode is restored — instead of the process
//! dying where it stands; and SIGWINCH (the terminal was resized), so the edit row
//! is redrawn at the new width at once rather than at the next key.
//!
//! The handlers (from `signal-hook`) only set a flag per signal and write a byte to a
//! socket pair whose read end is in the poll set: no work happens inside the handler,
//! and a signal that arrives just before `poll` still wakes it. (In raw mode Ctrl-C
//! is a key, not a signal; see `editor.rs`.)

use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use signal_hook::consts::{SIGHUP, SIGTERM, SIGWINCH};

/// The signals that end a session, the resize signal, and a descriptor that becomes
/// readable when one arrives.
#[derive(Debug)]
pub struct Signals {
    wake: UnixStream,
    flags: [(i32, Arc<AtomicBool>); 2],
    resized: Arc<AtomicBool>,
}

impl Signals {
    /// Installs the handlers.
    pub fn install() -> io::Result<Self> {
        let (wake, notify) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        notify.set_nonblocking(true)?;
        let flags = [SIGTERM, SIGHUP].map(|signal| (signal, Arc::new(AtomicBool::new(false))));
        for (signal, flag) in &flags {
            signal_hook::flag::register(*signal, Arc::clone(flag))?;
            signal_hook::low_level::pipe::register(*signal, notify.try_clone()?)?;
        }
        let resized = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(SIGWINCH, Arc::clone(&resized))?;
        signal_hook::low_level::pipe::register(SIGWINCH, notify)?;
        Ok(Self {
            wake,
            flags,
            resized,
        })
    }

    /// The descriptor to poll for reading.
    pub fn fd(&self) -> RawFd {
        self.wake.as_raw_fd()
    }

    /// The signal that arrived, if any (drains the wake-up bytes).
    pub fn received(&mut self) -> Option<i32> {
        let mut sink = [0u8; 64];
        while matches!(self.wake.read(&mut sink), Ok(n) if n > 0) {}
        self.flags
            .iter()
            .find(|(_, flag)| flag.load(Ordering::SeqCst))
            .map(|(signal, _)| *signal)
    }

    /// Whether the terminal was resized since the last call (call after
    /// [`Signals::received`], which drains the wake-up bytes).
    pub fn take_resized(&self) -> bool {
        self.resized.swap(false, Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raised_signal_is_reported_and_wakes_the_descriptor() {
        let mut signals = Signals::install().unwrap();
        assert_eq!(signals.received(), None);
        signal_hook::low_level::raise(SIGHUP).unwrap();
        let ready = crate::sys::poll(
            &[crate::sys::PollFd {
                fd: signals.fd(),
                read: true,
                write: false,
            }],
            Some(std::time::Duration::from_secs(5)),
        )
        .unwrap();
        assert!(ready[0].read);
        assert_eq!(signals.received(), Some(SIGHUP));
    }

    #[test]
    fn a_resize_is_reported_once() {
        let signals = Signals::install().unwrap();
        // raise() delivers to this thread before it returns.
        signal_hook::low_level::raise(SIGWINCH).unwrap();
        assert!(signals.take_resized());
        assert!(!signals.take_resized(), "reported once");
    }
}
