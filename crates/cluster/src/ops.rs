//! Operations on their way to Redis: the FIFO the workers fill and the command
//! thread drains, and the waiters: clients whose outcome is awaited.
//!
//! One queue, one connection: a client's operations reach Redis in the order its
//! worker submitted them (one worker handles a client at a time), so its chats and
//! commands take effect in the order it sent them. Each operation gets the next
//! number of this node at submission; numbers follow queue order, which is what lets
//! a resend after a broken connection be recognised (`entry.rs`, `scripts.rs`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chat_core::{ClientId, Recipient, RoomId};

use crate::sync::lock;

/// What an operation does.
#[derive(Debug, Clone)]
pub(crate) enum OpKind {
    Create {
        client: ClientId,
        name: String,
        title: String,
        /// The creator's account key: the room is registered to it.
        owner: Option<String>,
    },
    Join {
        client: ClientId,
        room: RoomId,
        name: String,
        /// The account key the client is logged in as.
        account: Option<String>,
        /// Its address.
        address: Option<std::net::IpAddr>,
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
        /// The room is registered: its history is kept in Redis too.
        kept: bool,
    },
    Claim {
        client: ClientId,
        key: String,
        /// The account key the client is logged in as.
        account: Option<String>,
    },
    DeleteRoom {
        room: RoomId,
        owner: String,
    },
    /// A direct message to whoever holds the name key `to_key`.
    Direct {
        client: ClientId,
        to_key: String,
        from_key: String,
        from_name: String,
        text: String,
    },
    /// The client ignores (or no longer ignores) the name key `key`.
    Ignore {
        client: ClientId,
        key: String,
        ignore: bool,
    },
    /// The client is gone: its ignore set goes.
    Unignore {
        client: ClientId,
    },
    /// A moderation request of the client's, in its room (an `M` entry: every node
    /// applies it alike).
    Moderate {
        client: ClientId,
        room: RoomId,
        /// The account key the client is logged in as now (its rank).
        account: Option<String>,
        action: chat_core::moderation::Action,
    },
    /// A registered room's moderation as it is after the log entry (ms, seq).
    SaveModeration {
        room: RoomId,
        owner: String,
        at: (u64, u64),
        text: String,
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
    /// The client awaiting the outcome, if any (chats and disconnect leaves are not
    /// awaited). It is also in `Shared::pending`, which is how it is completed; here
    /// it only tells the command thread whether the wait is already over.
    pub(crate) waiter: Option<Arc<Waiter<M>>>,
    /// For a chat: the sender, told if Redis went away while the chat was on its way.
    pub(crate) sender: Option<Recipient<M>>,
    /// Kept through an outage and sent when Redis is back (a disconnect's leave, a
    /// name's release: no client waits, and dropping them would leave ghosts).
    pub(crate) keep: bool,
}

/// A client whose operation's outcome is awaited: the transport has parked its
/// session, and resumes it when the outcome is handed over (`Shared::settle`).
#[derive(Debug)]
pub(crate) struct Waiter<M> {
    /// The client's mailbox: the outcome goes to its session.
    pub(crate) to: Arc<M>,
    /// What the broker itself does with the outcome before the client sees it.
    pub(crate) then: Then,
    /// When the client is told "unavailable" if no outcome came.
    pub(crate) deadline: Instant,
    /// The outcome was handed over (or the wait timed out): the command thread skips
    /// the operation if it was not sent yet.
    settled: AtomicBool,
}

/// The broker's own follow-up to an operation's outcome (`Shared::follow_up`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Then {
    /// A create or join: the member was registered as local before; on success it
    /// records the room, on failure it is taken out again.
    Enter { client: ClientId, node: u64 },
    /// A leave the client asked for: if Redis says it was in no room, it is not.
    Leave { client: ClientId },
    /// A name claim (recorded before it was sent): on failure the name it held before,
    /// `previous`, is what it holds.
    Claim {
        client: ClientId,
        key: String,
        previous: Option<String>,
    },
    /// Nothing (a rename).
    Nothing,
}

impl Then {
    /// The client the operation is for, if it says.
    pub(crate) fn client(&self) -> Option<ClientId> {
        match *self {
            Then::Enter { client, .. } | Then::Leave { client } | Then::Claim { client, .. } => {
                Some(client)
            }
            Then::Nothing => None,
        }
    }
}

impl<M> Waiter<M> {
    pub(crate) fn new(to: Arc<M>, then: Then, deadline: Instant) -> Self {
        Waiter {
            to,
            then,
            deadline,
            settled: AtomicBool::new(false),
        }
    }

    /// Marks the wait over; answers whether it was not already.
    pub(crate) fn settle(&self) -> bool {
        !self.settled.swap(true, Ordering::AcqRel)
    }

    pub(crate) fn is_settled(&self) -> bool {
        self.settled.load(Ordering::Acquire)
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
        waiter: Option<Arc<Waiter<M>>>,
        sender: Option<Recipient<M>>,
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
