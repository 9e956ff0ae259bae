//! A one-shot timer with nanosecond resolution that wakes the mio event loop.
//!
//! Why: `mio::Poll::poll` rounds its timeout up to whole milliseconds, so at rates
//! above 1,000 chats/s a loop driven by poll timeouts alone would send each chat up
//! to a millisecond late, and (latency being measured from the intended send time)
//! charge that to the server. A Linux `timerfd` registered with the poll wakes the
//! loop when the next chat is due, while socket events still wake it at once.
//!
//! What it does not do: repeat, or measure anything. Its precision is the kernel's
//! timer slack (50 µs by default); the driver reports its actual send lag.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

/// A `timerfd` on the monotonic clock (the clock `Instant` uses).
#[derive(Debug)]
pub struct Timer {
    fd: OwnedFd,
}

impl Timer {
    /// A disarmed timer.
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain syscall; the result is checked before use.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            // SAFETY: `fd` was just returned by timerfd_create (checked non-negative
            // above): an open descriptor that nothing else owns or will close.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Makes the poll report `token` readable when the timer fires.
    pub fn register(&self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(
            &mut SourceFd(&self.fd.as_raw_fd()),
            token,
            Interest::READABLE,
        )
    }

    /// Fires once, `after` from now (replacing any earlier setting). A zero delay
    /// would disarm a timerfd, so it is raised to one nanosecond.
    pub fn arm(&self, after: Duration) -> io::Result<()> {
        let after = after.max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: libc::time_t::try_from(after.as_secs()).unwrap_or(libc::time_t::MAX),
                tv_nsec: after.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: `spec` is a valid itimerspec; the old value is not asked for.
        let rc =
            unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Consumes an expiry, so that the next one is a new edge for the poll.
    pub fn acknowledge(&self) {
        let mut expirations = [0u8; 8];
        // SAFETY: reads at most 8 bytes into an 8-byte buffer. `EAGAIN` (nothing
        // expired: a spurious event) is fine and ignored.
        unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                expirations.as_mut_ptr().cast(),
                expirations.len(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn wakes_the_poll_after_a_sub_millisecond_delay() {
        let mut poll = mio::Poll::new().unwrap();
        let mut events = mio::Events::with_capacity(4);
        let timer = Timer::new().unwrap();
        timer.register(poll.registry(), Token(7)).unwrap();
        for _ in 0..3 {
            let start = Instant::now();
            timer.arm(Duration::from_micros(300)).unwrap();
            let deadline = start + Duration::from_secs(5);
            loop {
                poll.poll(&mut events, Some(Duration::from_secs(1)))
                    .unwrap();
                if events.iter().any(|e| e.token() == Token(7)) {
                    break;
                }
                assert!(Instant::now() < deadline, "timer never fired");
            }
            assert!(start.elapsed() >= Duration::from_micros(300));
            timer.acknowledge();
        }
    }
}
