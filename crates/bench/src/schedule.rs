//! The open-loop send schedule: which client sends the `i`-th chat of a run, and when.
//!
//! Chat `i` (from 0) is meant to leave at `start + i / rate` seconds, whatever happened
//! to earlier chats. The driver sends every chat whose time has come, and receivers
//! measure latency from this intended time, so a server that falls behind cannot make
//! the bench slow down with it and hide its queueing (no coordinated omission).
//!
//! Senders take turns: consecutive chats go to consecutive *rooms* (room `i mod R`
//! first, then the next member), so every client sends one chat every `N / rate`
//! seconds, evenly spaced, and every room sees the same load at every moment.
//!
//! Pure arithmetic: no clock, no sockets.

/// How clients are laid out: room `r` holds clients `r * per_room .. (r + 1) * per_room`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Number of rooms.
    pub rooms: usize,
    /// Clients in each room.
    pub per_room: usize,
}

impl Layout {
    /// All clients.
    pub fn clients(&self) -> usize {
        self.rooms * self.per_room
    }

    /// The room of `client`.
    pub fn room_of(&self, client: usize) -> usize {
        client / self.per_room
    }

    /// `client`'s position in its room (0 is the room's creator).
    pub fn member_of(&self, client: usize) -> usize {
        client % self.per_room
    }
}

/// One run's schedule: `total` chats at `rate` chats/s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    layout: Layout,
    rate: u64,
    total: u64,
}

impl Schedule {
    /// A schedule of `rate` chats/s for `duration_s` seconds over `layout`'s clients.
    /// A rate of 0 or an empty layout sends nothing.
    pub fn new(layout: Layout, rate: u64, duration_s: f64) -> Self {
        let total = if layout.clients() == 0 || rate == 0 {
            0
        } else {
            (rate as f64 * duration_s.max(0.0)).round() as u64
        };
        Self {
            layout,
            rate,
            total,
        }
    }

    /// How many chats the run sends.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The configured rate, chats/s.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// When chat `i` should leave, in nanoseconds after the run's start. Exact integer
    /// arithmetic, so the schedule does not drift over long runs.
    pub fn intended_ns(&self, i: u64) -> u64 {
        if self.rate == 0 {
            return 0;
        }
        let ns = u128::from(i) * 1_000_000_000 / u128::from(self.rate);
        u64::try_from(ns).unwrap_or(u64::MAX)
    }

    /// The client that sends chat `i`.
    pub fn sender(&self, i: u64) -> usize {
        let Layout { rooms, per_room } = self.layout;
        let slot = (i % self.layout.clients() as u64) as usize;
        let room = slot % rooms;
        let member = slot / rooms;
        room * per_room + member
    }

    /// How long the sending part of the run lasts, nanoseconds: the time of the chat
    /// after the last one, i.e. `total / rate` seconds.
    pub fn span_ns(&self) -> u64 {
        self.intended_ns(self.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYOUT: Layout = Layout {
        rooms: 3,
        per_room: 4,
    };

    #[test]
    fn totals_and_times() {
        let s = Schedule::new(LAYOUT, 200, 1.0);
        assert_eq!(s.total(), 200);
        assert_eq!(s.intended_ns(0), 0);
        assert_eq!(s.intended_ns(1), 5_000_000);
        assert_eq!(s.intended_ns(199), 995_000_000);
        assert_eq!(s.span_ns(), 1_000_000_000);
        assert_eq!(Schedule::new(LAYOUT, 3, 1.0).intended_ns(1), 333_333_333);
        assert_eq!(Schedule::new(LAYOUT, 1000, 2.5).total(), 2500);
        assert_eq!(Schedule::new(LAYOUT, 0, 2.5).total(), 0);
        let empty = Layout {
            rooms: 0,
            per_room: 4,
        };
        assert_eq!(Schedule::new(empty, 10, 1.0).total(), 0);
    }

    #[test]
    fn no_drift_over_long_runs() {
        let s = Schedule::new(LAYOUT, 7, 1e9);
        assert_eq!(s.intended_ns(7_000_000_000), 1_000_000_000 * 1_000_000_000);
    }

    #[test]
    fn every_client_sends_evenly_and_rooms_alternate() {
        let s = Schedule::new(LAYOUT, 120, 1.0);
        let senders: Vec<usize> = (0..12).map(|i| s.sender(i)).collect();
        // Room 0, 1, 2 in turn; members 0, 1, 2, 3 in turn.
        assert_eq!(senders, vec![0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
        let mut per_client = [0; 12];
        for i in 0..s.total() {
            per_client[s.sender(i)] += 1;
        }
        assert!(per_client.iter().all(|&n| n == 10), "{per_client:?}");
        // Each client's chats are N / rate apart.
        let times: Vec<u64> = (0..s.total())
            .filter(|&i| s.sender(i) == 5)
            .map(|i| s.intended_ns(i))
            .collect();
        assert!(times.windows(2).all(|w| w[1] - w[0] == 100_000_000));
    }

    #[test]
    fn layout_maps_clients_to_rooms() {
        assert_eq!(LAYOUT.clients(), 12);
        assert_eq!(LAYOUT.room_of(7), 1);
        assert_eq!(LAYOUT.member_of(7), 3);
        assert_eq!(LAYOUT.member_of(8), 0);
    }
}
