//! A connection's outbound queue of shared frames, and the protocol for flushing it to
//! the socket without ever blocking a thread.
//!
//! The queue holds [`Bytes`] handles, not copies: a broadcast to 1,000 members is one
//! allocation referenced 1,000 times. Bytes are copied only by the kernel, when a
//! flusher hands a bounded batch of handles to one `writev`.
//!
//! Any thread may [`Outbound::append`] a message; whoever appended first since the
//! last flush took the queue is told so ([`Append::NewlyDirty`]) and must make sure a
//! flush follows (workers collect such connections and flush them once at the end of
//! a turn, so many messages for one socket leave in one write). [`Outbound::flush`]
//! writes with the lock *released*: one thread at a time is the flusher (`flushing`);
//! it takes a batch from the front, writes it, and puts back at the front whatever the
//! socket did not take. Others' appends land at the back meanwhile, so order is kept,
//! and the flusher loops until nothing is left or the socket is full.
//!
//! When the socket is full (`WouldBlock`), the flusher stops and the reactor's next
//! writable event resumes it ([`Outbound::writable`]). The reactor registers every
//! socket for edge-triggered writability, so an edge that arrives while a flusher is
//! mid-write must not be lost: `ready_gen` counts writable events, and a flusher that
//! hits `WouldBlock` retries if the count moved since it started writing.
//!
//! Bounded memory, two ways. Per connection: once more than `cap` bytes wait (each
//! message counted with its [`ENTRY_OVERHEAD`], not counting a batch a flusher is
//! writing at that moment, itself at most [`MAX_BATCH_BYTES`]), `append` answers
//! [`Append::Overflow`]. Server-wide: every queue charges the shared [`MemoryBudget`];
//! when it is spent, a queue already holding [`BUDGET_VICTIM_MIN`] or more is refused
//! the same way, so the largest queues are cut first and small ones still get their
//! messages. Either way the queue is dropped and the caller disconnects the client.
//! Nothing is ever silently dropped from a live connection.
//!
//! Progress: [`Outbound::progress`] tells how much waits and how many bytes were ever
//! written, so the reactor can cut a client that stops reading (no bytes written for
//! a whole write timeout while some wait) without a clock read per message.
//!
//! This module does not know frames, sessions or rooms: it moves bytes.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::mem;
use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes};

use crate::budget::{ENTRY_OVERHEAD, MemoryBudget};
use crate::pool::lock;

/// Most messages one `writev` takes (well under the kernel's `IOV_MAX` of 1,024).
const MAX_BATCH_MESSAGES: usize = 64;
/// Most bytes one flusher takes out of the queue at a time.
pub(crate) const MAX_BATCH_BYTES: usize = 256 * 1024;
/// A queue whose ring grew past this many slots is freed once empty, so a connection
/// that once had a burst does not keep its capacity.
const KEEP_SLOTS: usize = 1024;
/// With the memory budget spent, queues at least this large are refused more.
pub(crate) const BUDGET_VICTIM_MIN: usize = 64 * 1024;

/// A connection's outbound queue.
#[derive(Debug)]
pub(crate) struct Outbound {
    state: Mutex<State>,
    cap: usize,
    budget: Arc<MemoryBudget>,
}

#[derive(Debug, Default)]
struct State {
    /// Messages appended and not yet written, oldest first. The front one may be
    /// partly written already (advanced past what the socket took).
    queue: VecDeque<Bytes>,
    /// Cost of `queue`: its bytes plus [`ENTRY_OVERHEAD`] per message.
    queued: usize,
    /// What this queue has charged the budget and not released: `queued` plus the
    /// batch in flight.
    charged: usize,
    /// Bytes ever written to the socket.
    written: u64,
    /// The flusher's reusable batch (empty when no flush is in progress).
    spare: Vec<Bytes>,
    /// Someone appended since the last flush took from the queue.
    dirty: bool,
    /// A thread is writing right now.
    flushing: bool,
    /// Writable events seen; see the module doc.
    ready_gen: u64,
    /// The socket failed or the client was cut off: appends are discarded.
    closed: bool,
}

/// What [`Outbound::append`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Append {
    /// Queued; a flush was already due.
    Queued,
    /// Queued, and nothing was waiting before: the caller must arrange a flush.
    NewlyDirty,
    /// Over this connection's cap, or the server's memory budget is spent and this
    /// queue is among the large ones: the queue was dropped and the connection must be
    /// cut off.
    Overflow(Overflow),
    /// The connection is closed; the bytes were discarded.
    Closed,
}

/// Which bound an [`Append::Overflow`] hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overflow {
    /// The connection's own cap (`--outbound-cap`).
    Cap,
    /// The server's memory budget (`--memory-budget`).
    Budget,
}

/// What waits in a queue, and how far writing has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Cost of what waits (not counting a batch being written).
    pub(crate) pending: usize,
    /// Bytes ever written.
    pub(crate) written: u64,
}

/// What [`Outbound::flush`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flush {
    /// Everything queued was written.
    Done,
    /// The socket is full; a writable event will resume.
    Blocked,
    /// Another thread is flushing and will write what is queued.
    Busy,
    /// The connection is closed or the write failed.
    Closed,
}

impl Outbound {
    /// An empty queue holding at most `cap` bytes, charging `budget`.
    pub(crate) fn new(cap: usize, budget: Arc<MemoryBudget>) -> Self {
        Self {
            state: Mutex::new(State::default()),
            cap,
            budget,
        }
    }

    /// Queues `message` (whole frames) for sending: a new handle, not a copy.
    pub(crate) fn append(&self, message: &Bytes) -> Append {
        self.append_parts(std::slice::from_ref(message))
    }

    /// Like [`Outbound::append`] for one message in several parts (a WebSocket frame
    /// header and a payload shared with other recipients), queued together: no other
    /// message can come between them.
    pub(crate) fn append_parts(&self, parts: &[Bytes]) -> Append {
        let cost = parts
            .iter()
            .map(|p| p.len() + ENTRY_OVERHEAD)
            .sum::<usize>();
        let mut state = lock(&self.state);
        if state.closed {
            return Append::Closed;
        }
        let overflow = if state.queued + cost > self.cap {
            Some(Overflow::Cap)
        } else if state.queued >= BUDGET_VICTIM_MIN && self.budget.would_exceed(cost) {
            Some(Overflow::Budget)
        } else {
            None
        };
        if let Some(overflow) = overflow {
            state.close(&self.budget);
            return Append::Overflow(overflow);
        }
        state.queued += cost;
        state.charged += cost;
        self.budget.charge(cost);
        state.queue.extend(parts.iter().cloned());
        if mem::replace(&mut state.dirty, true) {
            Append::Queued
        } else {
            Append::NewlyDirty
        }
    }

    /// Discards everything and refuses further appends.
    pub(crate) fn close(&self) {
        lock(&self.state).close(&self.budget);
    }

    /// Whether the queue was closed (cut off, or the socket failed).
    pub(crate) fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }

    /// What waits, and how many bytes were ever written.
    pub(crate) fn progress(&self) -> Progress {
        let state = lock(&self.state);
        Progress {
            pending: state.queued,
            written: state.written,
        }
    }

    /// Records a writable event and flushes if anything waits.
    pub(crate) fn writable(&self, socket: impl Write) -> Flush {
        lock(&self.state).ready_gen += 1;
        self.flush(socket)
    }

    /// Writes queued bytes until none are left or the socket is full. Never blocks:
    /// `socket` must be non-blocking. The lock is never held during a write.
    pub(crate) fn flush(&self, mut socket: impl Write) -> Flush {
        let mut state = lock(&self.state);
        if state.closed {
            return Flush::Closed;
        }
        if state.flushing {
            return Flush::Busy;
        }
        state.flushing = true;
        loop {
            state.dirty = false;
            if state.queue.is_empty() {
                state.flushing = false;
                if state.queue.capacity() > KEEP_SLOTS {
                    state.queue = VecDeque::new();
                }
                return Flush::Done;
            }
            let mut batch = state.take_batch();
            let seen_gen = state.ready_gen;
            drop(state);

            let (result, written) = write_batch(&mut socket, &mut batch);

            state = lock(&self.state);
            if state.closed {
                // Cut off while we wrote: what is left goes with the connection (and
                // closing released its charge, in flight included).
                state.flushing = false;
                return Flush::Closed;
            }
            // What was written is freed; a partly written message keeps its handle.
            let freed = written.bytes + written.messages * ENTRY_OVERHEAD;
            state.written += written.bytes as u64;
            state.charged -= freed;
            self.budget.release(freed);
            state.put_back(batch);
            match result {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if state.ready_gen == seen_gen {
                        state.flushing = false;
                        return Flush::Blocked;
                    }
                    // A writable edge arrived while we wrote: try again now.
                }
                Err(_) => {
                    state.flushing = false;
                    state.close(&self.budget);
                    return Flush::Closed;
                }
            }
        }
    }
}

impl State {
    /// Takes up to a batch's worth of messages off the front of the queue.
    fn take_batch(&mut self) -> Vec<Bytes> {
        let mut batch = mem::take(&mut self.spare);
        let mut bytes = 0;
        while batch.len() < MAX_BATCH_MESSAGES && bytes < MAX_BATCH_BYTES {
            let Some(message) = self.queue.pop_front() else {
                break;
            };
            bytes += message.len();
            self.queued -= message.len() + ENTRY_OVERHEAD;
            batch.push(message);
        }
        batch
    }

    /// Returns what a flusher did not write to the front of the queue, in order.
    fn put_back(&mut self, mut batch: Vec<Bytes>) {
        for message in batch.drain(..).rev() {
            self.queued += message.len() + ENTRY_OVERHEAD;
            self.queue.push_front(message);
        }
        self.spare = batch;
    }

    fn close(&mut self, budget: &MemoryBudget) {
        self.closed = true;
        self.queue = VecDeque::new();
        self.queued = 0;
        budget.release(mem::take(&mut self.charged));
        self.spare = Vec::new();
    }
}

/// What one [`write_batch`] wrote.
#[derive(Debug, Default, Clone, Copy)]
struct Written {
    /// Bytes the socket took.
    bytes: usize,
    /// Messages written completely (and removed from the batch).
    messages: usize,
}

/// Writes `batch` until done or `WouldBlock`, removing what was written (the first
/// message left may be advanced past a partial write).
fn write_batch(socket: &mut impl Write, batch: &mut Vec<Bytes>) -> (io::Result<()>, Written) {
    let mut written = Written::default();
    let result = loop {
        if written.messages == batch.len() {
            break Ok(());
        }
        // On the stack: a batch holds at most MAX_BATCH_MESSAGES messages.
        let mut slices = [IoSlice::new(&[]); MAX_BATCH_MESSAGES];
        let rest = &batch[written.messages..];
        let count = rest.len().min(MAX_BATCH_MESSAGES);
        for (slice, message) in slices.iter_mut().zip(rest) {
            *slice = IoSlice::new(message);
        }
        match socket.write_vectored(&slices[..count]) {
            Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
            Ok(mut n) => {
                written.bytes += n;
                while n > 0 {
                    let first = &mut batch[written.messages];
                    let step = n.min(first.len());
                    first.advance(step);
                    n -= step;
                    if first.is_empty() {
                        written.messages += 1;
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    batch.drain(..written.messages);
    (result, written)
}

impl Drop for Outbound {
    fn drop(&mut self) {
        let state = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        self.budget.release(mem::take(&mut state.charged));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that accepts `room` bytes, at most 3 per write, then says `WouldBlock`.
    struct FakeSocket {
        got: Vec<u8>,
        room: usize,
        fail: bool,
    }

    impl FakeSocket {
        fn with_room(room: usize) -> Self {
            FakeSocket {
                got: Vec::new(),
                room,
                fail: false,
            }
        }
    }

    impl Write for &mut FakeSocket {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.fail {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            let n = buf.len().min(self.room).min(3);
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.room -= n;
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A socket whose vectored writes take everything they are given.
    #[derive(Default)]
    struct GreedySocket {
        got: Vec<u8>,
        writes: usize,
    }

    impl Write for &mut GreedySocket {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.writes += 1;
            let mut n = 0;
            for buf in bufs {
                self.got.extend_from_slice(buf);
                n += buf.len();
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn bytes(s: &'static [u8]) -> Bytes {
        Bytes::from_static(s)
    }

    /// What `messages` messages of `bytes` bytes in total cost.
    fn cost(bytes: usize, messages: usize) -> usize {
        bytes + messages * ENTRY_OVERHEAD
    }

    /// A queue with a cap and an unlimited budget.
    fn queue(cap: usize) -> (Outbound, Arc<MemoryBudget>) {
        let budget = Arc::new(MemoryBudget::new(usize::MAX));
        (Outbound::new(cap, Arc::clone(&budget)), budget)
    }

    #[test]
    fn appends_coalesce_and_resume_after_would_block() {
        let (out, budget) = queue(1024);
        let mut socket = FakeSocket::with_room(5);
        assert_eq!(out.append(&bytes(b"hello ")), Append::NewlyDirty);
        assert_eq!(out.append(&bytes(b"world")), Append::Queued);
        assert_eq!(out.flush(&mut socket), Flush::Blocked);
        assert_eq!(socket.got, b"hello");
        assert_eq!(
            out.progress(),
            Progress {
                pending: cost(6, 2),
                written: 5
            }
        );
        assert_eq!(budget.used(), cost(6, 2));
        assert_eq!(
            out.append(&bytes(b"!")),
            Append::NewlyDirty,
            "the flush took from the queue"
        );
        socket.room = 100;
        assert_eq!(out.writable(&mut socket), Flush::Done);
        assert_eq!(socket.got, b"hello world!");
        assert_eq!(out.progress().pending, 0);
        assert_eq!(out.progress().written, 12);
        assert_eq!(budget.used(), 0, "everything written is released");
        assert_eq!(out.flush(&mut socket), Flush::Done);
    }

    #[test]
    fn many_messages_leave_in_few_writes_and_in_order() {
        let (out, _) = queue(1 << 20);
        let messages: Vec<Bytes> = (0..200u8).map(|i| Bytes::from(vec![i; 7])).collect();
        for message in &messages {
            out.append(message);
        }
        let mut socket = GreedySocket::default();
        assert_eq!(out.flush(&mut socket), Flush::Done);
        assert_eq!(socket.got, messages.concat());
        assert_eq!(socket.writes, 200usize.div_ceil(MAX_BATCH_MESSAGES));
    }

    #[test]
    fn a_queued_message_shares_the_appended_bytes() {
        let (out, _) = queue(1024);
        let message = Bytes::from(vec![1u8; 10]);
        out.append(&message);
        let state = lock(&out.state);
        assert_eq!(state.queue[0].as_ptr(), message.as_ptr(), "no copy");
    }

    #[test]
    fn over_the_cap_closes_and_discards() {
        let (out, budget) = queue(cost(10, 1));
        assert_eq!(out.append(&bytes(b"0123456789")), Append::NewlyDirty);
        assert_eq!(out.append(&bytes(b"x")), Append::Overflow(Overflow::Cap));
        assert!(out.is_closed());
        assert_eq!(out.append(&bytes(b"y")), Append::Closed);
        assert_eq!(out.progress().pending, 0);
        assert_eq!(budget.used(), 0, "closing released the charge");
    }

    #[test]
    fn a_spent_budget_cuts_large_queues_and_spares_small_ones() {
        let budget = Arc::new(MemoryBudget::new(BUDGET_VICTIM_MIN + ENTRY_OVERHEAD + 50));
        let large = Outbound::new(usize::MAX, Arc::clone(&budget));
        let small = Outbound::new(usize::MAX, Arc::clone(&budget));
        let chunk = Bytes::from(vec![0u8; BUDGET_VICTIM_MIN]);
        assert_eq!(large.append(&chunk), Append::NewlyDirty);
        assert!(budget.would_exceed(1000));
        assert_eq!(
            small.append(&bytes(b"still gets it")),
            Append::NewlyDirty,
            "a small queue is not a victim"
        );
        assert_eq!(
            large.append(&bytes(b"x")),
            Append::Overflow(Overflow::Budget)
        );
        assert_eq!(
            budget.used(),
            cost(13, 1),
            "only the small queue's charge is left"
        );
        drop(small);
        assert_eq!(budget.used(), 0, "a dropped queue releases its charge");
    }

    #[test]
    fn appends_while_a_flush_is_in_flight_go_after_it() {
        let (out, budget) = queue(1024);
        let mut socket = FakeSocket::with_room(4);
        out.append(&bytes(b"0123456789"));
        assert_eq!(out.flush(&mut socket), Flush::Blocked);
        {
            // What a concurrent append sees while a flusher holds a batch.
            let mut state = lock(&out.state);
            state.flushing = true;
            let batch = state.take_batch();
            drop(state);
            assert_eq!(out.append(&bytes(b"ab")), Append::NewlyDirty);
            assert_eq!(out.progress().pending, cost(2, 1));
            assert_eq!(
                budget.used(),
                cost(6 + 2, 2),
                "the batch in flight still counts"
            );
            let mut state = lock(&out.state);
            state.put_back(batch);
            state.flushing = false;
        }
        socket.room = 100;
        assert_eq!(out.writable(&mut socket), Flush::Done);
        assert_eq!(socket.got, b"0123456789ab");
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn write_error_closes() {
        let (out, budget) = queue(100);
        let mut socket = FakeSocket::with_room(0);
        socket.fail = true;
        out.append(&bytes(b"abc"));
        assert_eq!(out.flush(&mut socket), Flush::Closed);
        assert_eq!(out.append(&bytes(b"d")), Append::Closed);
        assert_eq!(budget.used(), 0);
    }
}
