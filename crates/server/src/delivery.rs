//! Writing out deliveries: what a worker does at the end of its turns, offered to a
//! broker that delivers from threads of its own (a cluster's log reader) as a
//! [`chat_core::Transport`] — with the way such a broker hands an awaited outcome
//! back to a parked session.
//!
//! Flushing a session writes what waits without blocking; a session whose socket
//! failed is cut; a session held for its output backlog is queued again once the
//! backlog drained. The batch's counts are folded into the metrics.

use std::sync::Arc;

use chat_core::{Completion, Fanout, Transport};

use crate::metrics::Metrics;
use crate::outbound::Flush;
use crate::pool::WorkQueue;
use crate::session::Session;

/// Writes out every session `fanout` lists and folds its tally into `metrics`.
pub(crate) fn flush_sessions(
    fanout: &mut Fanout<Session>,
    queue: &WorkQueue<Arc<Session>>,
    metrics: &Metrics,
) {
    for session in fanout.take_flush_due() {
        if session.flush() == Flush::Closed {
            session.abort();
        }
        if session.release_if_drained() {
            // A closed queue means the server is stopping.
            let _ = queue.push(session);
        }
    }
    metrics.fold(&mut std::mem::take(&mut fanout.tally));
}

/// The transport's side for a broker's own threads.
#[derive(Debug)]
pub(crate) struct SessionTransport {
    queue: Arc<WorkQueue<Arc<Session>>>,
    metrics: Arc<Metrics>,
}

impl SessionTransport {
    pub(crate) fn new(queue: Arc<WorkQueue<Arc<Session>>>, metrics: Arc<Metrics>) -> Self {
        SessionTransport { queue, metrics }
    }
}

impl Transport<Session> for SessionTransport {
    fn flush(&self, out: &mut Fanout<Session>) {
        flush_sessions(out, &self.queue, &self.metrics);
    }

    fn disconnect(&self, session: &Arc<Session>) {
        // The way a closed socket ends a session: a worker's turn sees the end, the
        // client leaves what it is in and releases its name, and the reactor closes
        // after the queued messages (the reason why, first) are written.
        session.note_end("cluster reset");
        if session.deliver_close() {
            // A closed queue means the server is stopping: everyone is closed then.
            let _ = self.queue.push(Arc::clone(session));
        }
    }

    fn complete(&self, session: &Arc<Session>, outcome: Completion) {
        let completed = session.complete(outcome);
        if completed.schedule {
            // A closed queue means the server is stopping: nobody is served any more.
            let _ = self.queue.push(Arc::clone(session));
        }
        if completed.was_parked {
            // After the push: a finishing pool must not see it neither parked nor
            // queued.
            self.queue.unpark();
        }
    }
}
