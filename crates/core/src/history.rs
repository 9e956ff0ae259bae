//! A room's recent chats, kept for the `history` extension (docs/PROTOCOL.md §7.3):
//! the last lines of a room, bounded in count and in bytes, numbered so that a client
//! can ask for the page before a line it has.
//!
//! What it does not do: keep anything on disk (a broker hands registered rooms' lines
//! to its store), read a clock (the caller gives each line its time), or decide who
//! may read it (the room's rules do).
//!
//! # Invariants
//!
//! * Lines are in increasing `seq` order, oldest first; `seq` never repeats in a room.
//! * At most [`HistoryLimit::lines`] lines and [`HistoryLimit::bytes`] bytes of names
//!   and texts are kept: the oldest go first. A single line larger than the byte
//!   bound is not kept at all (it still reaches the members).

use std::collections::VecDeque;
use std::sync::Arc;

/// The most lines one page holds (`CSHistory`'s count is capped here).
pub const MAX_PAGE: usize = 200;
/// How many lines a client that opted in is sent when it enters a room.
pub const ON_ENTRY: usize = 50;

/// How much of a room's past is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimit {
    /// Lines at most (`--history`; 0 keeps nothing).
    pub lines: usize,
    /// Bytes of names and texts at most.
    pub bytes: usize,
}

impl Default for HistoryLimit {
    /// 1,000 lines, 512 KiB.
    fn default() -> Self {
        HistoryLimit {
            lines: 1000,
            bytes: 512 * 1024,
        }
    }
}

/// One chat line of the past.
///
/// The strings are shared: recording a chat allocates its two strings once, and a
/// clone (the copy the history keeps, the one the room answers its broker with, a
/// page's lines) only counts references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatLine {
    /// Its number in the room: increasing, never reused.
    pub seq: u64,
    /// When the server took it, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The sender's name then.
    pub member: Arc<str>,
    /// The line.
    pub text: Arc<str>,
}

impl ChatLine {
    fn size(&self) -> usize {
        self.member.len() + self.text.len()
    }
}

/// A room's kept lines; see the module doc.
#[derive(Debug, Clone)]
pub struct History {
    lines: VecDeque<ChatLine>,
    bytes: usize,
    limit: HistoryLimit,
    /// The number the next line gets.
    next_seq: u64,
}

impl History {
    /// Nothing kept yet; the first line is number 1.
    pub fn new(limit: HistoryLimit) -> Self {
        History {
            lines: VecDeque::new(),
            bytes: 0,
            limit,
            next_seq: 1,
        }
    }

    /// Lines kept before (a registered room's, from the store), oldest first; the
    /// next line is numbered after the last of them.
    pub fn restore(limit: HistoryLimit, lines: Vec<ChatLine>) -> Self {
        let mut history = History::new(limit);
        for line in lines {
            history.next_seq = history.next_seq.max(line.seq + 1);
            history.keep(line);
        }
        history
    }

    /// Records a line from `member` saying `text` at `time_ms`; answers it, with its
    /// number (kept only within the limits).
    pub fn record(&mut self, time_ms: u64, member: &str, text: &str) -> ChatLine {
        self.record_as(self.next_seq, time_ms, member, text)
    }

    /// Records a line numbered `seq` by someone else (a cluster's log, which numbers
    /// lines the same on every node); a number not after the last is taken as the
    /// next one.
    pub fn record_as(&mut self, seq: u64, time_ms: u64, member: &str, text: &str) -> ChatLine {
        let seq = seq.max(self.next_seq);
        self.next_seq = seq + 1;
        let line = ChatLine {
            seq,
            time_ms,
            member: member.into(),
            text: text.into(),
        };
        self.keep(line.clone());
        line
    }

    fn keep(&mut self, line: ChatLine) {
        if self.limit.lines == 0 || line.size() > self.limit.bytes {
            return;
        }
        self.bytes += line.size();
        self.lines.push_back(line);
        while self.lines.len() > self.limit.lines || self.bytes > self.limit.bytes {
            match self.lines.pop_front() {
                Some(old) => self.bytes -= old.size(),
                None => break,
            }
        }
    }

    /// Up to `count` (at most [`MAX_PAGE`]) lines before line `before` (or the
    /// newest), oldest first; and whether older lines are kept.
    pub fn page(&self, count: usize, before: Option<u64>) -> (Vec<ChatLine>, bool) {
        let count = count.min(MAX_PAGE);
        let end = match before {
            Some(seq) => self.lines.partition_point(|line| line.seq < seq),
            None => self.lines.len(),
        };
        let start = end.saturating_sub(count);
        let page = self.lines.range(start..end).cloned().collect();
        (page, start > 0)
    }

    /// Drops line `seq` if it is the newest (a chat that turned out not to be sent).
    pub fn forget(&mut self, seq: u64) {
        if self.lines.back().is_some_and(|line| line.seq == seq)
            && let Some(line) = self.lines.pop_back()
        {
            self.bytes -= line.size();
        }
    }

    /// How many lines are kept.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(limit: HistoryLimit, n: u64) -> History {
        let mut history = History::new(limit);
        for i in 1..=n {
            history.record(1000 + i, "a", &format!("line {i}"));
        }
        history
    }

    fn seqs(lines: &[ChatLine]) -> Vec<u64> {
        lines.iter().map(|l| l.seq).collect()
    }

    #[test]
    fn pages_go_back_from_the_newest() {
        let history = filled(HistoryLimit::default(), 10);
        let (page, more) = history.page(4, None);
        assert_eq!((seqs(&page), more), (vec![7, 8, 9, 10], true));
        assert_eq!(&*page[3].text, "line 10");
        assert_eq!(page[3].time_ms, 1010);
        let (page, more) = history.page(4, Some(7));
        assert_eq!((seqs(&page), more), (vec![3, 4, 5, 6], true));
        let (page, more) = history.page(4, Some(3));
        assert_eq!((seqs(&page), more), (vec![1, 2], false));
        assert_eq!(history.page(4, Some(1)), (vec![], false));
        assert_eq!(history.page(0, None), (vec![], true));
        // A number past the newest is the newest.
        assert_eq!(seqs(&history.page(2, Some(999)).0), [9, 10]);
        // At most a page, however many are asked for.
        let big = filled(HistoryLimit::default(), 500);
        assert_eq!(big.page(usize::MAX, None).0.len(), MAX_PAGE);
    }

    #[test]
    fn bounded_in_lines_and_bytes_oldest_first() {
        let by_lines = filled(
            HistoryLimit {
                lines: 3,
                bytes: 1 << 20,
            },
            10,
        );
        assert_eq!(seqs(&by_lines.page(10, None).0), [8, 9, 10]);
        // "a" + "line N" is 7 bytes for N < 10.
        let by_bytes = filled(
            HistoryLimit {
                lines: 100,
                bytes: 21,
            },
            9,
        );
        assert_eq!(seqs(&by_bytes.page(10, None).0), [7, 8, 9]);
        let mut one = History::new(HistoryLimit {
            lines: 100,
            bytes: 10,
        });
        let line = one.record(5, "a", &"x".repeat(50));
        assert_eq!(line.seq, 1);
        assert!(one.is_empty(), "too large to keep");
        assert_eq!(one.record(6, "a", "y").seq, 2, "numbers go on");
        let off = filled(
            HistoryLimit {
                lines: 0,
                bytes: 1000,
            },
            3,
        );
        assert!(off.is_empty());
    }

    #[test]
    fn restored_lines_go_on_numbering() {
        let kept = filled(HistoryLimit::default(), 5).page(10, None).0;
        let mut history = History::restore(HistoryLimit::default(), kept);
        assert_eq!(history.len(), 5);
        assert_eq!(history.record(1, "b", "next").seq, 6);
        // A cluster's numbers: taken when after the last, else the next one.
        assert_eq!(history.record_as(100, 1, "b", "x").seq, 100);
        assert_eq!(history.record_as(50, 1, "b", "y").seq, 101);
    }
}
