//! Flood control: how fast one client may send, as IRC servers do it.
//!
//! Two token buckets per client: one for chat lines, a tighter one for commands that
//! change shared state or cost the server work for everyone to see (renames, creates,
//! joins, leaves, `/rooms`, `/shutdown`). Each request takes a token; tokens come back
//! at a steady rate up to a burst. A request that finds its bucket empty waits: the
//! client's [`crate::Client`] keeps it and answers [`crate::Outcome::Throttled`] with
//! the moment a token will be back, and the transport stops reading the client until
//! then — the client is slowed down (backpressure), nothing is lost. A client that is
//! throttled without a break for [`FloodLimits::grace`] is far over the limit and is
//! disconnected.
//!
//! A transport's control frames (a WebSocket ping, pong or empty continuation frame)
//! carry nothing for the chat, but each costs the server a read, a parse and maybe a
//! reply, and a client can send them far faster than messages: each takes a token of
//! the command bucket, throttled and cut exactly like a command
//! ([`crate::Client::handle_control`]). A person's browser sends none of them.
//!
//! A chat also costs by its reach: past [`FREE_FANOUT`] recipients, every
//! [`FREE_FANOUT`] more cost one more token, so a member of a 1,000-member room may
//! say a twentieth as much per second as a member of a small one — no client can
//! make the server do a thousand deliveries a chat at the rate of ten.
//!
//! The defaults are far above what a person types (a pasted page of a few hundred
//! lines goes through); load generators and tests of other limits turn flood control
//! off.
//!
//! Pure arithmetic on instants the caller passes in: no clock is read here.

use std::time::{Duration, Instant};

use chat_proto::Request;

/// Recipients a chat reaches at the price of one token; each as many more cost one
/// more.
pub const FREE_FANOUT: usize = 50;

/// One bucket's rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens that come back per second.
    pub per_second: f64,
    /// Tokens the bucket holds at most (and starts with).
    pub burst: f64,
}

/// A client's limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloodLimits {
    /// Chat lines.
    pub chat: Rate,
    /// Everything else.
    pub command: Rate,
    /// Throttled without a break for this long, a client is disconnected.
    pub grace: Duration,
}

impl Default for FloodLimits {
    /// 20 chats/s after a burst of 100; 5 commands/s after a burst of 20; 15 s of
    /// grace.
    fn default() -> Self {
        FloodLimits {
            chat: Rate {
                per_second: 20.0,
                burst: 100.0,
            },
            command: Rate {
                per_second: 5.0,
                burst: 20.0,
            },
            grace: Duration::from_secs(15),
        }
    }
}

/// One token bucket: `burst` tokens at most, `per_second` coming back. Also used by
/// transports for limits of their own (login attempts per address).
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    rate: Rate,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rate: Rate, now: Instant) -> Self {
        Bucket {
            rate,
            tokens: rate.burst,
            at: now,
        }
    }

    /// Takes `extra` more tokens after the fact (the bucket may go into debt, at most
    /// one burst deep).
    fn charge(&mut self, extra: f64) {
        self.tokens = (self.tokens - extra).max(-self.rate.burst);
    }

    /// Whether the bucket would be full at `now` (nothing owed: it can be forgotten).
    pub fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens + elapsed * self.rate.per_second >= self.rate.burst
    }

    /// Takes a token, or answers when one will be back.
    pub fn take(&mut self, now: Instant) -> Result<(), Instant> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate.per_second).min(self.rate.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - self.tokens) / self.rate.per_second;
        Err(now + Duration::from_secs_f64(wait.max(0.0)))
    }
}

/// A client's buckets and throttling state.
#[derive(Debug, Clone)]
pub(crate) struct Flood {
    chat: Bucket,
    command: Bucket,
    grace: Duration,
    /// Since when the client has been throttled without a break.
    pub(crate) throttled_since: Option<Instant>,
}

impl Flood {
    pub(crate) fn new(limits: FloodLimits, now: Instant) -> Self {
        Flood {
            chat: Bucket::new(limits.chat, now),
            command: Bucket::new(limits.command, now),
            grace: limits.grace,
            throttled_since: None,
        }
    }

    /// Whether `request` may go now, or when to try again.
    pub(crate) fn admit(&mut self, request: &Request, now: Instant) -> Result<(), Instant> {
        match request {
            Request::Chat { .. } => self.chat.take(now),
            _ => self.command.take(now),
        }
    }

    /// Whether a control frame (see the module doc) may go now, or when to try again:
    /// it costs what a command costs.
    pub(crate) fn admit_control(&mut self, now: Instant) -> Result<(), Instant> {
        self.command.take(now)
    }

    /// Charges the chat bucket for a broadcast that reached `recipients` members.
    pub(crate) fn charge_fanout(&mut self, recipients: usize) {
        let extra = recipients.saturating_sub(1) / FREE_FANOUT;
        if extra > 0 {
            self.chat.charge(extra as f64);
        }
    }

    /// Whether a client throttled since `throttled_since` has been over the limit for
    /// longer than the grace.
    pub(crate) fn out_of_grace(&self, now: Instant) -> bool {
        self.throttled_since
            .is_some_and(|since| now.saturating_duration_since(since) >= self.grace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_gives_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(
            Rate {
                per_second: 10.0,
                burst: 3.0,
            },
            t0,
        );
        for _ in 0..3 {
            assert_eq!(bucket.take(t0), Ok(()));
        }
        let until = bucket.take(t0).unwrap_err();
        assert_eq!(until, t0 + Duration::from_millis(100));
        assert_eq!(bucket.take(until), Ok(()), "a token is back by then");
        assert!(bucket.take(until).is_err());
        let later = until + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(bucket.take(later), Ok(()), "refilled up to the burst only");
        }
        assert!(bucket.take(later).is_err());
    }

    #[test]
    fn chats_and_commands_have_their_own_buckets() {
        let t0 = Instant::now();
        let limits = FloodLimits {
            chat: Rate {
                per_second: 1.0,
                burst: 1.0,
            },
            command: Rate {
                per_second: 1.0,
                burst: 1.0,
            },
            grace: Duration::from_secs(5),
        };
        let mut flood = Flood::new(limits, t0);
        let chat = Request::Chat { text: "x".into() };
        assert!(flood.admit(&chat, t0).is_ok());
        assert!(flood.admit(&chat, t0).is_err());
        assert!(flood.admit(&Request::Rooms, t0).is_ok(), "another bucket");
        // A control frame costs a command: the command bucket is now empty.
        assert!(flood.admit_control(t0).is_err());
        assert!(flood.admit_control(t0 + Duration::from_secs(1)).is_ok());
        assert!(
            flood
                .admit(&Request::Rooms, t0 + Duration::from_secs(1))
                .is_err()
        );
        assert!(!flood.out_of_grace(t0));
        flood.throttled_since = Some(t0);
        assert!(flood.out_of_grace(t0 + Duration::from_secs(5)));
    }

    #[test]
    fn a_big_room_costs_by_its_reach() {
        let t0 = Instant::now();
        let mut flood = Flood::new(FloodLimits::default(), t0);
        let chat = Request::Chat { text: "x".into() };
        // A 1,000-member room: 1 + 19 tokens a chat, so 5 of the burst of 100.
        let mut sent = 0;
        while flood.admit(&chat, t0).is_ok() {
            flood.charge_fanout(999);
            sent += 1;
        }
        assert_eq!(sent, 5);
        // A small room: 1 token a chat.
        let mut small = Flood::new(FloodLimits::default(), t0);
        let mut sent = 0;
        while small.admit(&chat, t0).is_ok() {
            small.charge_fanout(9);
            sent += 1;
        }
        assert_eq!(sent, 100);
    }
}
