//! One memory budget for everything clients make the server hold: queued output and
//! buffered input.
//!
//! Per-connection caps bound what one client can cost, but not what ten thousand can:
//! 4 MiB × 10,000 connections is 40 GiB. The budget is the second bound, for the
//! server as a whole. Outbound queues and input buffers charge it as they grow and
//! release it as they drain; when it is spent, output for the *largest* queues is
//! refused (those clients are cut off as slow consumers) and reading pauses for
//! connections that have input waiting (backpressure), so the server stops growing
//! instead of being killed by the kernel.
//!
//! The accounting is logical: a broadcast frame shared by 1,000 queues counts 1,000
//! times, plus a fixed overhead per queued message, so the real memory is at most what
//! is counted. It is a relaxed atomic counter, approximate under concurrency by at most
//! one message per thread, which is fine for a bound this size.

use std::sync::atomic::{AtomicUsize, Ordering};

/// What one queued message costs besides its bytes: its handle in the queue.
pub(crate) const ENTRY_OVERHEAD: usize = std::mem::size_of::<bytes::Bytes>();

/// The server-wide budget; see the module doc.
#[derive(Debug)]
pub(crate) struct MemoryBudget {
    used: AtomicUsize,
    limit: usize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        MemoryBudget {
            used: AtomicUsize::new(0),
            limit,
        }
    }

    /// Whether `more` bytes would exceed the budget.
    pub(crate) fn would_exceed(&self, more: usize) -> bool {
        self.used.load(Ordering::Relaxed).saturating_add(more) > self.limit
    }

    /// Whether the budget is spent.
    pub(crate) fn is_spent(&self) -> bool {
        self.used.load(Ordering::Relaxed) >= self.limit
    }

    /// Counts `bytes` as held.
    pub(crate) fn charge(&self, bytes: usize) {
        if bytes > 0 {
            self.used.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Counts `bytes` as freed.
    pub(crate) fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.used.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    /// Bytes held now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_and_releases() {
        let budget = MemoryBudget::new(100);
        budget.charge(60);
        assert!(!budget.would_exceed(40));
        assert!(budget.would_exceed(41));
        budget.charge(40);
        assert!(budget.is_spent());
        budget.release(100);
        assert_eq!(budget.used(), 0);
    }
}
