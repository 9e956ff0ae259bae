//! Shutdown as its own type: a flag plus a way to wake the reactor.
//!
//! Anyone may request a shutdown — a worker handling `/shutdown`, the signal thread
//! in `main.rs`, a test through [`ShutdownHandle`]. The request only sets a flag and
//! wakes the reactor; the reactor then runs the shutdown sequence itself (see
//! `server.rs`), so no thread ever tears down state another thread is using.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use mio::Waker;

/// The shared shutdown flag.
#[derive(Debug)]
pub(crate) struct Shutdown {
    requested: AtomicBool,
    waker: Arc<Waker>,
    /// Until when workers may keep handling input already read, once set.
    drain_until: OnceLock<Instant>,
}

impl Shutdown {
    /// A flag that wakes the reactor's poll through `waker` when raised.
    pub(crate) fn new(waker: Arc<Waker>) -> Self {
        Self {
            requested: AtomicBool::new(false),
            waker,
            drain_until: OnceLock::new(),
        }
    }

    /// Starts the drain: workers handle what was read for at most `bound`.
    pub(crate) fn begin_drain(&self, bound: Duration) {
        let _ = self.drain_until.set(Instant::now() + bound);
    }

    /// Whether the drain's time is up (input still unhandled is then dropped).
    pub(crate) fn drain_expired(&self) -> bool {
        self.drain_until
            .get()
            .is_some_and(|until| Instant::now() >= *until)
    }

    /// Asks the server to stop. Idempotent, callable from any thread.
    pub(crate) fn request(&self) {
        if !self.requested.swap(true, Ordering::SeqCst)
            && let Err(e) = self.waker.wake()
        {
            tracing::error!("could not wake the reactor for shutdown: {e}");
        }
    }

    /// Whether a shutdown was requested.
    pub(crate) fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }
}

/// Stops a running server from any thread.
#[derive(Debug, Clone)]
pub struct ShutdownHandle(pub(crate) Arc<Shutdown>);

impl ShutdownHandle {
    /// Starts the shutdown; `Server::run` returns once every thread is joined.
    pub fn shutdown(&self) {
        self.0.request();
    }
}
