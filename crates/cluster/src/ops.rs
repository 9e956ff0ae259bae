//! Operations on their way to Redis: the FIFO the workers fill and the command
//! thread drains, and the waiters a worker blocks on.
//!
//! One queue, one connection: a client's operations reach Redis in the order its
//! worker submitted them (one worker handles a client at a time), so its chats and
//! commands take effect in the order it sent them. Each operation gets the next
//! number of this node at submission; numbers follow queue order, which is what lets
//! a resend after a broken connection be recognised (`entry.rs`, `scripts.rs`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chat_core::{BrokerError, ClientId, RoomId};

use crate::replica::LocalBox;

/// Locks a mutex, ignoring poisoning (every critical section here leaves its data
/// consistent; a panicking thread must not take the node down with it).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What an operation does.
#[derive(Debug, Clone)]
pub(crate) enum OpKind {
    Create {
        client: ClientId,
        name: String,
        title: String,
    },
    Join {
        client: ClientId,
        room: RoomId,
        name: String,
    },
    Leave {
        client: ClientId,
        room: RoomId,
        notify_self: bool,
    },
    Rename {
        client: ClientId,
        room: RoomId,
        name: String,
    },
    Chat {
        client: ClientId,
        room: RoomId,
        text: String,
    },
    Claim {
        client: ClientId,
        key: String,
    },
    Release {
        client: ClientId,
    },
}

/// One operation and who waits for it.
#[derive(Debug)]
pub(crate) struct Op<M> {
    pub(crate) seq: u64,
    /// The node id it was submitted under: after a reset the old id is fenced, so an
    /// operation from before it is refused rather than applied under the new id.
    pub(crate) node: u64,
    pub(crate) kind: OpKind,
    /// The worker blocked on the answer, if any (chats and disconnect leaves are not
    /// waited for). It is also in `Shared::pending`, which is how it is completed;
    /// here it only tells the command thread whether the worker gave up.
    pub(crate) waiter: Option<Arc<Waiter>>,
    /// For a chat: the sender, told if Redis went away while the chat was on its way.
    pub(crate) sender: Option<LocalBox<M>>,
    /// Kept through an outage and sent when Redis is back (a disconnect's leave, a
    /// name's release: no client waits, and dropping them would leave ghosts).
    pub(crate) keep: bool,
}

/// Where a worker waits for its operation's outcome.
#[derive(Debug, Default)]
pub(crate) struct Waiter {
    outcome: Mutex<Option<Result<RoomId, BrokerError>>>,
    ready: Condvar,
    /// The worker stopped waiting: the command thread skips it if it was not sent.
    cancelled: AtomicBool,
}

impl Waiter {
    /// Gives the outcome (the first one counts).
    pub(crate) fn complete(&self, outcome: Result<RoomId, BrokerError>) {
        let mut slot = lock(&self.outcome);
        if slot.is_none() {
            *slot = Some(outcome);
            self.ready.notify_all();
        }
    }

    /// Waits up to `timeout`; `None` if nothing came (the waiter is then cancelled).
    pub(crate) fn wait(&self, timeout: Duration) -> Option<Result<RoomId, BrokerError>> {
        let deadline = Instant::now() + timeout;
        let mut slot = lock(&self.outcome);
        loop {
            if let Some(outcome) = *slot {
                return Some(outcome);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.cancelled.store(true, Ordering::Release);
                return None;
            }
            slot = self
                .ready
                .wait_timeout(slot, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }
}

#[derive(Debug)]
struct State<M> {
    ops: VecDeque<Op<M>>,
    next_seq: u64,
    closed: bool,
    /// The command thread waits on the condition variable: only then is a notify
    /// needed (a notify is a system call even with nobody waiting, and chats come by
    /// the thousand).
    waiting: bool,
}

/// The FIFO between the workers and the command thread (a mutex and a condition
/// variable, as the work queue is).
#[derive(Debug)]
pub(crate) struct OpQueue<M> {
    state: Mutex<State<M>>,
    ready: Condvar,
}

impl<M> OpQueue<M> {
    pub(crate) fn new() -> Self {
        OpQueue {
            state: Mutex::new(State {
                ops: VecDeque::new(),
                next_seq: 1,
                closed: false,
                waiting: false,
            }),
            ready: Condvar::new(),
        }
    }

    /// Queues `kind`; `register` sees the operation's number first, under the queue's
    /// lock (so a waiter is findable before the operation can be applied). Answers
    /// the number, or `None` once the queue is closed.
    pub(crate) fn submit(
        &self,
        kind: OpKind,
        node: u64,
        waiter: Option<Arc<Waiter>>,
        sender: Option<LocalBox<M>>,
        keep: bool,
        register: impl FnOnce(u64),
    ) -> Option<u64> {
        let mut state = lock(&self.state);
        if state.closed {
            return None;
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        register(seq);
        state.ops.push_back(Op {
            seq,
            node,
            kind,
            waiter,
            sender,
            keep,
        });
        if state.waiting {
            self.ready.notify_one();
        }
        Some(seq)
    }

    /// Moves up to `max` operations into `into`, waiting up to `wait` for the first.
    /// Answers false once the queue is closed and empty.
    pub(crate) fn take(&self, into: &mut Vec<Op<M>>, max: usize, wait: Duration) -> bool {
        let mut state = lock(&self.state);
        if state.ops.is_empty() && !state.closed && !wait.is_zero() {
            state.waiting = true;
            state = self
                .ready
                .wait_timeout(state, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            state.waiting = false;
        }
        let n = state.ops.len().min(max);
        into.extend(state.ops.drain(..n));
        !(state.closed && state.ops.is_empty() && into.is_empty())
    }

    /// No more operations are taken; what is queued is still handed out.
    pub(crate) fn close(&self) {
        lock(&self.state).closed = true;
        self.ready.notify_all();
    }
}
