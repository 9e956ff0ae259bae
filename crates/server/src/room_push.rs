//! The timer of the `rooms` extension (docs/PROTOCOL.md §7): every [`PUSH_EVERY`],
//! the broker's room list goes to the clients watching it, if it changed since the
//! last push ([`chat_core::ListingWatch`] decides), and is written out as a worker
//! writes its deliveries.
//!
//! One thread of its own: a push is a reference count per watcher plus a write each,
//! and must not wait for a worker. It does nothing while nobody watches.

use std::io;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chat_core::{Fanout, MessageBroker};

use crate::delivery::flush_sessions;
use crate::metrics::Metrics;
use crate::pool::WorkQueue;
use crate::session::Session;

/// How often the room list is looked at: a watcher gets at most two lists a second,
/// however fast rooms change (and none while they do not).
pub(crate) const PUSH_EVERY: Duration = Duration::from_millis(500);

/// The running timer; [`RoomPusher::stop`] ends it.
#[derive(Debug)]
pub(crate) struct RoomPusher {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl RoomPusher {
    /// Starts the timer's thread.
    pub(crate) fn start(
        broker: Arc<dyn MessageBroker<Session>>,
        queue: Arc<WorkQueue<Arc<Session>>>,
        metrics: Arc<Metrics>,
    ) -> io::Result<Self> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("rooms-push".into())
                .spawn(move || run(&*broker, &queue, &metrics, &stop))?
        };
        Ok(RoomPusher {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the timer and waits for its thread.
    pub(crate) fn stop(mut self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    broker: &dyn MessageBroker<Session>,
    queue: &WorkQueue<Arc<Session>>,
    metrics: &Metrics,
    stop: &(Mutex<bool>, Condvar),
) {
    let (stopped, wake) = stop;
    let mut fanout = Fanout::new();
    let mut next = Instant::now() + PUSH_EVERY;
    let mut guard = stopped.lock().unwrap_or_else(PoisonError::into_inner);
    while !*guard {
        let now = Instant::now();
        if now < next {
            guard = wake
                .wait_timeout(guard, next - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            continue;
        }
        next = now + PUSH_EVERY;
        drop(guard);
        if let Some(watch) = broker.listing_watch()
            && watch.watchers() > 0
            && let Ok(listing) = broker.listing()
        {
            watch.push_if_changed(listing, &mut fanout);
            flush_sessions(&mut fanout, queue, metrics);
        }
        guard = stopped.lock().unwrap_or_else(PoisonError::into_inner);
    }
}
