//! The `--find-max` search: which rate to try next, given which rates passed.
//!
//! Doubling from the start rate until a step fails (or halving while they fail),
//! then bisecting between the highest pass and the lowest failure until they are
//! within `precision` of each other. What "pass" means (p99 under the bound, nothing
//! lost) is decided by the caller; this is only the search, without sockets or clocks.

/// State of one search.
#[derive(Debug, Clone)]
pub struct RateSearch {
    start: u64,
    max_rate: u64,
    precision: f64,
    steps_left: u32,
    /// The highest rate that passed.
    pass: Option<u64>,
    /// The lowest rate that failed.
    fail: Option<u64>,
}

impl RateSearch {
    /// Searches from `start` chats/s, never above `max_rate`, stopping once the bracket
    /// is narrower than `precision` (a fraction of the passing rate) or after
    /// `max_steps` steps.
    pub fn new(start: u64, max_rate: u64, precision: f64, max_steps: u32) -> Self {
        let max_rate = max_rate.max(1);
        Self {
            start: start.clamp(1, max_rate),
            max_rate,
            precision: precision.max(0.0),
            steps_left: max_steps,
            pass: None,
            fail: None,
        }
    }

    /// The rate to try next, or `None` when the search is over.
    pub fn next_rate(&self) -> Option<u64> {
        if self.steps_left == 0 {
            return None;
        }
        match (self.pass, self.fail) {
            (None, None) => Some(self.start),
            (Some(pass), None) => {
                (pass < self.max_rate).then(|| pass.saturating_mul(2).min(self.max_rate))
            }
            (None, Some(fail)) => (fail > 1).then_some(fail / 2),
            (Some(pass), Some(fail)) => {
                let width = fail.saturating_sub(pass);
                let enough = ((pass as f64 * self.precision) as u64).max(1);
                (width > enough).then(|| pass + width / 2)
            }
        }
    }

    /// Records the verdict of a step at `rate`.
    pub fn record(&mut self, rate: u64, passed: bool) {
        self.steps_left = self.steps_left.saturating_sub(1);
        if passed {
            self.pass = Some(self.pass.map_or(rate, |p| p.max(rate)));
        } else {
            self.fail = Some(self.fail.map_or(rate, |f| f.min(rate)));
        }
    }

    /// The highest rate that passed so far.
    pub fn best(&self) -> Option<u64> {
        self.pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search against a server that passes every rate up to `capacity`.
    fn run(mut search: RateSearch, capacity: u64) -> (Option<u64>, Vec<u64>) {
        let mut tried = Vec::new();
        while let Some(rate) = search.next_rate() {
            assert!(tried.len() < 100, "search does not end");
            tried.push(rate);
            search.record(rate, rate <= capacity);
        }
        (search.best(), tried)
    }

    #[test]
    fn doubles_then_bisects() {
        let (best, tried) = run(RateSearch::new(1000, 1_000_000, 0.05, 20), 5000);
        assert_eq!(&tried[..4], &[1000, 2000, 4000, 8000]);
        assert_eq!(tried[4], 6000);
        let best = best.unwrap();
        assert!((4750..=5000).contains(&best), "{best} {tried:?}");
    }

    #[test]
    fn halves_when_the_start_fails() {
        let (best, tried) = run(RateSearch::new(1000, 1_000_000, 0.05, 20), 300);
        assert_eq!(&tried[..3], &[1000, 500, 250]);
        assert!((285..=300).contains(&best.unwrap()), "{tried:?}");
    }

    #[test]
    fn nothing_passes() {
        let (best, tried) = run(RateSearch::new(8, 100, 0.05, 20), 0);
        assert_eq!(best, None);
        assert_eq!(tried, vec![8, 4, 2, 1]);
    }

    #[test]
    fn stops_at_the_cap_and_after_max_steps() {
        let (best, tried) = run(RateSearch::new(1000, 3000, 0.05, 20), u64::MAX);
        assert_eq!(best, Some(3000));
        assert_eq!(tried, vec![1000, 2000, 3000]);
        let (_, tried) = run(RateSearch::new(1000, 1 << 40, 0.0, 5), u64::MAX);
        assert_eq!(tried.len(), 5);
    }

    #[test]
    fn precision_zero_converges_to_the_exact_rate() {
        let (best, _) = run(RateSearch::new(1000, 1_000_000, 0.0, 64), 12_345);
        assert_eq!(best, Some(12_345));
    }
}
