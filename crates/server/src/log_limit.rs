//! Logs a client cannot flood: per-connection rate limits for the events a client can
//! trigger at will (bad messages, refused `/shutdown`s, throttling).
//!
//! The first [`FREE_LINES`] events of a connection are logged; after that at most one
//! line per [`WINDOW`], which says how many were left out since the last one. So
//! 100,000 refused requests from one client cost a handful of lines, and an operator
//! still sees that they happened and how many.
//!
//! Lines that come with connections themselves (opened, closed) have one limit for the
//! whole server instead ([`SharedLimit`]): a flood of connections costs at most
//! [`SHARED_LINES`] lines per [`WINDOW`], and the next line logged says how many were
//! left out.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::pool::lock;

/// Events logged in full before the limit starts.
pub(crate) const FREE_LINES: u32 = 5;
/// After that, at most one line per this long.
pub(crate) const WINDOW: Duration = Duration::from_secs(10);

/// Lines per [`WINDOW`] that the whole server logs about connections opening and
/// closing (a busy server opening 100 a second still logs every one).
pub(crate) const SHARED_LINES: u32 = 1000;

/// The server-wide budget for connection lines (kept by the reactor, one thread).
#[derive(Debug, Default)]
pub(crate) struct SharedLimit {
    window_start: Option<Instant>,
    logged: u32,
    suppressed: u64,
}

impl SharedLimit {
    /// Decides about one line at `now`.
    pub(crate) fn check(&mut self, now: Instant) -> Verdict {
        if self
            .window_start
            .is_none_or(|start| now.saturating_duration_since(start) >= WINDOW)
        {
            self.window_start = Some(now);
            self.logged = 0;
        }
        if self.logged >= SHARED_LINES {
            self.suppressed += 1;
            return Verdict::Skip;
        }
        self.logged += 1;
        Verdict::Log {
            suppressed: std::mem::take(&mut self.suppressed),
        }
    }
}

/// One connection's log budget.
#[derive(Debug, Default)]
pub(crate) struct LogLimit {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    logged: u32,
    suppressed: u64,
    last: Option<Instant>,
}

/// The `suppressed` field of a log line: present only when events were left out, so
/// that the common line carries no `suppressed=0` a reader has to wonder about
/// (tracing records an `Option` field only when it is `Some`).
pub(crate) fn shown(suppressed: u64) -> Option<u64> {
    (suppressed > 0).then_some(suppressed)
}

/// Whether to log an event, and how many before it were left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Log it; `suppressed` events were left out since the last line.
    Log { suppressed: u64 },
    /// Leave it out (it is counted).
    Skip,
}

impl LogLimit {
    /// Decides about one event at `now`.
    pub(crate) fn check(&self, now: Instant) -> Verdict {
        let mut state = lock(&self.state);
        let due = state.logged < FREE_LINES
            || state
                .last
                .is_none_or(|last| now.saturating_duration_since(last) >= WINDOW);
        if !due {
            state.suppressed += 1;
            return Verdict::Skip;
        }
        state.logged = state.logged.saturating_add(1);
        state.last = Some(now);
        Verdict::Log {
            suppressed: std::mem::take(&mut state.suppressed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_lines_then_one_per_window_with_the_count() {
        let limit = LogLimit::default();
        let t0 = Instant::now();
        for _ in 0..FREE_LINES {
            assert_eq!(limit.check(t0), Verdict::Log { suppressed: 0 });
        }
        for _ in 0..1000 {
            assert_eq!(limit.check(t0), Verdict::Skip);
        }
        assert_eq!(limit.check(t0 + WINDOW), Verdict::Log { suppressed: 1000 });
        assert_eq!(limit.check(t0 + WINDOW), Verdict::Skip);
        assert_eq!(limit.check(t0 + WINDOW * 2), Verdict::Log { suppressed: 1 });
    }

    #[test]
    fn the_shared_limit_allows_a_window_s_worth_then_counts() {
        let mut limit = SharedLimit::default();
        let t0 = Instant::now();
        for _ in 0..SHARED_LINES {
            assert_eq!(limit.check(t0), Verdict::Log { suppressed: 0 });
        }
        for _ in 0..5000 {
            assert_eq!(limit.check(t0 + WINDOW / 2), Verdict::Skip);
        }
        assert_eq!(limit.check(t0 + WINDOW), Verdict::Log { suppressed: 5000 });
        assert_eq!(limit.check(t0 + WINDOW), Verdict::Log { suppressed: 0 });
    }

    #[test]
    fn suppressed_is_shown_only_when_something_was_left_out() {
        assert_eq!(shown(0), None);
        assert_eq!(shown(7), Some(7));
    }
}
