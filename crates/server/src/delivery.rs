//! Encoding once, delivering to many, flushing once.
//!
//! A [`Delivery`] belongs to one worker thread and lives as long as it: its buffers are
//! reused for every message, so the hot path allocates nothing. A broadcast is encoded
//! once per wire format ([`Delivery::encode_broadcast`]) *before* any room lock is
//! taken, then copied into each recipient's outbound queue under the lock. Sessions
//! that got their first pending bytes are remembered and flushed together at the end
//! of the worker's turn ([`Delivery::flush_all`]), so a burst of messages for one
//! socket costs one `write`.

use std::sync::Arc;

use chat_proto::codec::encode_response;
use chat_proto::{EncodeError, Response, WireFormat};

use crate::metrics::{LocalCounts, Metrics, OutKind, bump};
use crate::outbound::{Append, Flush};
use crate::session::Session;

/// A worker's encoding scratch and the sessions it must flush.
#[derive(Default)]
pub struct Delivery {
    /// The current broadcast, indexed by [`WireFormat::index`].
    broadcast: [Vec<u8>; 2],
    broadcast_kind: Option<OutKind>,
    /// The current single-recipient message and its format.
    single: Vec<u8>,
    single_kind: Option<(OutKind, WireFormat)>,
    /// This worker's counters, folded into the shared metrics at each flush.
    pub counts: LocalCounts,
    /// Recipients cut off as slow consumers since the last flush.
    slow_consumers: u64,
    /// Sessions with bytes waiting for this worker's flush.
    to_flush: Vec<Arc<Session>>,
}

impl Delivery {
    /// Encodes `response` in both formats as the current broadcast.
    pub fn encode_broadcast(&mut self, response: &Response<'_>) -> Result<(), EncodeError> {
        self.broadcast_kind = None;
        for format in WireFormat::ALL {
            let buf = &mut self.broadcast[format.index()];
            buf.clear();
            encode_response(format, response, buf)?;
        }
        self.broadcast_kind = Some(OutKind::of(response));
        Ok(())
    }

    /// Encodes `response` in `format` as the current single message.
    pub fn encode_single(
        &mut self,
        format: WireFormat,
        response: &Response<'_>,
    ) -> Result<(), EncodeError> {
        self.single.clear();
        self.single_kind = None;
        encode_response(format, response, &mut self.single)?;
        self.single_kind = Some((OutKind::of(response), format));
        Ok(())
    }

    /// Queues the current broadcast for `to`, in its format.
    pub fn send_broadcast(&mut self, to: &Arc<Session>, format: WireFormat) {
        let Some(kind) = self.broadcast_kind else {
            return;
        };
        let bytes = &self.broadcast[format.index()];
        let result = to.send(bytes);
        self.counts.response(kind, format, bytes.len());
        self.note(to, result);
    }

    /// Queues the current single message for `to`.
    pub fn send_single(&mut self, to: &Arc<Session>) {
        let Some((kind, format)) = self.single_kind else {
            return;
        };
        let result = to.send(&self.single);
        self.counts.response(kind, format, self.single.len());
        self.note(to, result);
    }

    fn note(&mut self, to: &Arc<Session>, result: Append) {
        match result {
            Append::NewlyDirty => self.to_flush.push(Arc::clone(to)),
            Append::Overflow => self.slow_consumers += 1,
            Append::Queued | Append::Closed => {}
        }
    }

    /// Writes out every session that got bytes since the last call. A socket that is
    /// full is left to the reactor's writable event; one whose write failed is cut off
    /// so the reactor ends it.
    /// Also folds this turn's counts into `metrics`.
    pub fn flush_all(&mut self, metrics: &Metrics) {
        for session in self.to_flush.drain(..) {
            if session.flush() == Flush::Closed {
                session.abort();
            }
        }
        for _ in 0..std::mem::take(&mut self.slow_consumers) {
            bump(&metrics.slow_consumer_disconnects);
        }
        self.counts.fold_into(metrics);
    }
}
