//! Delivery accounting: did every member get every other member's chats exactly once
//! and in order?
//!
//! For each (receiver, sender) pair in a room the tracker keeps `next`, the sequence
//! number below which every chat has arrived. In the normal case that one counter is
//! all: a chat with `seq == next` moves it on. Chats that arrive ahead of a gap are
//! kept in a small sorted side list (only for pairs that ever saw a gap), so a late
//! chat filling the gap is recognised, and a second copy of anything is a duplicate.
//!
//! Definitions, as reported:
//! * **delivered**: distinct chats received by a member of the sender's room (never
//!   the sender itself).
//! * **duplicate**: a chat this receiver already had.
//! * **out of order**: a chat that arrived after a later chat of the same sender.
//! * **lost**: expected but never delivered; expected is every sent chat times the
//!   other members of the sender's room (`K − 1`), counted when the run ends.
//! * **foreign**: a well-formed bench chat that should not reach this receiver (its
//!   own chat echoed, another room's chat, or a sequence number never sent).
//! * **stale**: a chat of another step (a find-max step that ended earlier).
//!
//! No clocks and no sockets here: latency is the driver's business.

use std::collections::HashMap;

use crate::payload::Stamp;
use crate::schedule::Layout;

/// What a received chat turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// First copy; `in_order` is false when a later chat of the sender came first.
    Delivered {
        /// Whether every earlier chat of the sender had arrived before it.
        in_order: bool,
    },
    /// A chat this receiver already had.
    Duplicate,
    /// A chat that should not reach this receiver (its own, another room's, or one
    /// never sent).
    Foreign,
    /// A chat of another step.
    Stale,
}

/// Running totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Chats handed a sequence number.
    pub sent: u64,
    /// Distinct chats received by a member of the sender's room.
    pub delivered: u64,
    /// Second and later copies of a chat at the same receiver.
    pub duplicates: u64,
    /// Deliveries that arrived after a later chat of the same sender.
    pub out_of_order: u64,
    /// [`Outcome::Foreign`] chats.
    pub foreign: u64,
    /// [`Outcome::Stale`] chats.
    pub stale: u64,
}

/// The verdict at the end of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// The totals at the end.
    pub counts: Counts,
    /// Deliveries expected: every sent chat times the other members of its room.
    pub expected: u64,
    /// Expected deliveries that never arrived.
    pub lost: u64,
}

/// Per-pair delivery state for one run (one find-max step).
#[derive(Debug)]
pub struct Tracker {
    layout: Layout,
    step: u32,
    /// Chats sent so far, per sender: the next sequence number to hand out.
    sent: Vec<u32>,
    /// Per pair (`receiver * per_room + sender's member index`): every seq below it
    /// has been delivered.
    next: Vec<u32>,
    /// Per pair that saw a gap: delivered seqs above `next`, sorted.
    ahead: HashMap<usize, Vec<u32>>,
    counts: Counts,
}

impl Tracker {
    /// A tracker for `layout`'s clients, accepting only chats of `step`.
    pub fn new(layout: Layout, step: u32) -> Self {
        Self {
            layout,
            step,
            sent: vec![0; layout.clients()],
            next: vec![0; layout.clients() * layout.per_room],
            ahead: HashMap::new(),
            counts: Counts::default(),
        }
    }

    /// The step this tracker accepts.
    pub fn step(&self) -> u32 {
        self.step
    }

    /// Records that `sender` sends a chat; returns its sequence number.
    pub fn on_send(&mut self, sender: usize) -> u32 {
        let seq = self.sent[sender];
        self.sent[sender] += 1;
        self.counts.sent += 1;
        seq
    }

    /// Records that `receiver` got the chat stamped `stamp`.
    pub fn on_receive(&mut self, receiver: usize, stamp: Stamp) -> Outcome {
        let outcome = self.classify(receiver, stamp);
        match outcome {
            Outcome::Delivered { in_order } => {
                self.counts.delivered += 1;
                if !in_order {
                    self.counts.out_of_order += 1;
                }
            }
            Outcome::Duplicate => self.counts.duplicates += 1,
            Outcome::Foreign => self.counts.foreign += 1,
            Outcome::Stale => self.counts.stale += 1,
        }
        outcome
    }

    fn classify(&mut self, receiver: usize, stamp: Stamp) -> Outcome {
        if stamp.step != self.step {
            return Outcome::Stale;
        }
        let sender = stamp.sender as usize;
        let layout = self.layout;
        if sender >= self.sent.len()
            || receiver >= self.sent.len()
            || sender == receiver
            || layout.room_of(sender) != layout.room_of(receiver)
            || stamp.seq >= self.sent[sender]
        {
            return Outcome::Foreign;
        }
        let pair = receiver * layout.per_room + layout.member_of(sender);
        let next = &mut self.next[pair];
        let seq = stamp.seq;
        if seq < *next {
            return Outcome::Duplicate;
        }
        // `ahead` is nearly always empty: skip hashing the pair then.
        if seq == *next && (self.ahead.is_empty() || !self.ahead.contains_key(&pair)) {
            *next += 1;
            return Outcome::Delivered { in_order: true };
        }
        // A gap exists or is being opened: the slow path.
        let ahead = self.ahead.entry(pair).or_default();
        let later_seen = ahead.last().is_some_and(|&max| max > seq);
        if seq == *next {
            *next += 1;
            // Chats that were waiting for this one are now in sequence too.
            let run = ahead
                .iter()
                .enumerate()
                .take_while(|&(i, &s)| s == *next + i as u32)
                .count();
            *next += run as u32;
            ahead.drain(..run);
        } else {
            match ahead.binary_search(&seq) {
                Ok(_) => return Outcome::Duplicate,
                Err(at) => ahead.insert(at, seq),
            }
        }
        if ahead.is_empty() {
            self.ahead.remove(&pair);
        }
        Outcome::Delivered {
            in_order: !later_seen,
        }
    }

    /// Totals so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Deliveries expected from what has been sent so far.
    pub fn expected(&self) -> u64 {
        let others = self.layout.per_room.saturating_sub(1) as u64;
        self.counts.sent * others
    }

    /// Expected deliveries that have not arrived yet.
    pub fn outstanding(&self) -> u64 {
        self.expected().saturating_sub(self.counts.delivered)
    }

    /// The verdict: whatever has not arrived by now is lost.
    pub fn summary(&self) -> Summary {
        Summary {
            counts: self.counts,
            expected: self.expected(),
            lost: self.outstanding(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYOUT: Layout = Layout {
        rooms: 2,
        per_room: 3,
    };

    fn stamp(sender: u32, seq: u32) -> Stamp {
        Stamp {
            sender,
            seq,
            t_ns: 0,
            step: 0,
        }
    }

    fn tracker_with_sends(sender: usize, n: u32) -> Tracker {
        let mut t = Tracker::new(LAYOUT, 0);
        for expected in 0..n {
            assert_eq!(t.on_send(sender), expected);
        }
        t
    }

    #[test]
    fn in_order_delivery_to_every_other_member() {
        let mut t = tracker_with_sends(1, 3);
        for seq in 0..3 {
            for receiver in [0, 2] {
                assert_eq!(
                    t.on_receive(receiver, stamp(1, seq)),
                    Outcome::Delivered { in_order: true }
                );
            }
        }
        let s = t.summary();
        assert_eq!(s.expected, 6);
        assert_eq!(s.counts.delivered, 6);
        assert_eq!(s.lost, 0);
        assert_eq!(s.counts.out_of_order + s.counts.duplicates, 0);
        assert!(t.ahead.is_empty());
    }

    #[test]
    fn duplicates_are_counted_once_each() {
        let mut t = tracker_with_sends(0, 2);
        t.on_receive(1, stamp(0, 0));
        assert_eq!(t.on_receive(1, stamp(0, 0)), Outcome::Duplicate);
        // A duplicate of a chat that arrived ahead of a gap.
        t.on_receive(2, stamp(0, 1));
        assert_eq!(t.on_receive(2, stamp(0, 1)), Outcome::Duplicate);
        let c = t.counts();
        assert_eq!((c.delivered, c.duplicates), (2, 2));
        assert_eq!(
            t.summary().lost,
            2,
            "receiver 1 lacks seq 1, receiver 2 seq 0"
        );
    }

    #[test]
    fn reordering_counts_the_late_chats() {
        let mut t = tracker_with_sends(0, 5);
        let arrivals = [(2, true), (0, false), (1, false), (4, true), (3, false)];
        for (seq, in_order) in arrivals {
            assert_eq!(
                t.on_receive(1, stamp(0, seq)),
                Outcome::Delivered { in_order },
                "seq {seq}"
            );
        }
        assert_eq!(t.counts().out_of_order, 3);
        assert_eq!(t.next[LAYOUT.per_room], 5, "gap closed, counter caught up");
        assert!(t.ahead.is_empty());
        assert_eq!(t.on_receive(1, stamp(0, 3)), Outcome::Duplicate);
    }

    #[test]
    fn losses_are_what_never_arrived() {
        let mut t = tracker_with_sends(4, 10);
        for seq in (0..10).filter(|s| s % 3 != 0) {
            t.on_receive(3, stamp(4, seq));
        }
        let s = t.summary();
        assert_eq!(s.expected, 20);
        assert_eq!(s.counts.delivered, 6);
        assert_eq!(s.lost, 14, "4 gaps at receiver 3, all 10 at receiver 5");
        assert_eq!(s.counts.out_of_order, 0, "gaps alone are not reordering");
    }

    #[test]
    fn foreign_and_stale_chats() {
        let mut t = tracker_with_sends(0, 1);
        assert_eq!(t.on_receive(0, stamp(0, 0)), Outcome::Foreign, "echo");
        assert_eq!(t.on_receive(3, stamp(0, 0)), Outcome::Foreign, "other room");
        assert_eq!(t.on_receive(1, stamp(0, 1)), Outcome::Foreign, "never sent");
        assert_eq!(
            t.on_receive(1, stamp(99, 0)),
            Outcome::Foreign,
            "no such sender"
        );
        let old = Stamp {
            step: 1,
            ..stamp(0, 0)
        };
        assert_eq!(t.on_receive(1, old), Outcome::Stale);
        let c = t.counts();
        assert_eq!((c.foreign, c.stale, c.delivered), (4, 1, 0));
    }
}
