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
//! Bounded memory: once more than `cap` bytes wait (not counting a batch a flusher is
//! writing at that moment, itself at most [`MAX_BATCH_BYTES`]), the connection is a
//! slow consumer; `append` answers [`Append::Overflow`], the queue is dropped and the
//! caller disconnects the client. Nothing is ever silently dropped from a live
//! connection.
//!
//! This module does not know frames, sessions or rooms: it moves bytes.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::mem;
use std::sync::Mutex;

use bytes::{Buf, Bytes};

use crate::pool::lock;

/// Most messages one `writev` takes (well under the kernel's `IOV_MAX` of 1,024).
const MAX_BATCH_MESSAGES: usize = 64;
/// Most bytes one flusher takes out of the queue at a time.
pub(crate) const MAX_BATCH_BYTES: usize = 256 * 1024;
/// A queue whose ring grew past this many slots is freed once empty, so a connection
/// that once had a burst does not keep its capacity.
const KEEP_SLOTS: usize = 1024;

/// A connection's outbound queue.
#[derive(Debug)]
pub(crate) struct Outbound {
    state: Mutex<State>,
    cap: usize,
}

#[derive(Debug, Default)]
struct State {
    /// Messages appended and not yet written, oldest first. The front one may be
    /// partly written already (advanced past what the socket took).
    queue: VecDeque<Bytes>,
    /// Bytes in `queue`.
    queued: usize,
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
    /// Over the cap: the queue was dropped and the connection must be cut off.
    Overflow,
    /// The connection is closed; the bytes were discarded.
    Closed,
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
    /// An empty queue holding at most `cap` bytes.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            cap,
        }
    }

    /// Queues `message` (whole frames) for sending: a new handle, not a copy.
    pub(crate) fn append(&self, message: &Bytes) -> Append {
        let mut state = lock(&self.state);
        if state.closed {
            return Append::Closed;
        }
        if state.queued + message.len() > self.cap {
            state.close();
            return Append::Overflow;
        }
        state.queued += message.len();
        state.queue.push_back(message.clone());
        if mem::replace(&mut state.dirty, true) {
            Append::Queued
        } else {
            Append::NewlyDirty
        }
    }

    /// Discards everything and refuses further appends.
    pub(crate) fn close(&self) {
        lock(&self.state).close();
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

            let result = write_batch(&mut socket, &mut batch);

            state = lock(&self.state);
            if state.closed {
                // Cut off while we wrote: what is left goes with the connection.
                state.flushing = false;
                return Flush::Closed;
            }
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
                    state.close();
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
            batch.push(message);
        }
        self.queued -= bytes;
        batch
    }

    /// Returns what a flusher did not write to the front of the queue, in order.
    fn put_back(&mut self, mut batch: Vec<Bytes>) {
        for message in batch.drain(..).rev() {
            self.queued += message.len();
            self.queue.push_front(message);
        }
        self.spare = batch;
    }

    fn close(&mut self) {
        self.closed = true;
        self.queue = VecDeque::new();
        self.queued = 0;
        self.spare = Vec::new();
    }
}

/// Writes `batch` until done or `WouldBlock`, removing what was written (the first
/// message left may be advanced past a partial write).
fn write_batch(socket: &mut impl Write, batch: &mut Vec<Bytes>) -> io::Result<()> {
    let mut done = 0;
    let result = loop {
        if done == batch.len() {
            break Ok(());
        }
        // On the stack: a batch holds at most MAX_BATCH_MESSAGES messages.
        let mut slices = [IoSlice::new(&[]); MAX_BATCH_MESSAGES];
        let count = (batch.len() - done).min(MAX_BATCH_MESSAGES);
        for (slice, message) in slices.iter_mut().zip(&batch[done..]) {
            *slice = IoSlice::new(message);
        }
        match socket.write_vectored(&slices[..count]) {
            Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
            Ok(mut written) => {
                while written > 0 {
                    let first = &mut batch[done];
                    let step = written.min(first.len());
                    first.advance(step);
                    written -= step;
                    if first.is_empty() {
                        done += 1;
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    batch.drain(..done);
    result
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

    /// A socket whose vectored writes take everything it is given.
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

    fn pending(out: &Outbound) -> usize {
        lock(&out.state).queued
    }

    #[test]
    fn appends_coalesce_and_resume_after_would_block() {
        let out = Outbound::new(1024);
        let mut socket = FakeSocket {
            got: Vec::new(),
            room: 5,
            fail: false,
        };
        assert_eq!(out.append(&bytes(b"hello ")), Append::NewlyDirty);
        assert_eq!(out.append(&bytes(b"world")), Append::Queued);
        assert_eq!(out.flush(&mut socket), Flush::Blocked);
        assert_eq!(socket.got, b"hello");
        assert_eq!(pending(&out), 6);
        assert_eq!(
            out.append(&bytes(b"!")),
            Append::NewlyDirty,
            "the flush took from the queue"
        );
        socket.room = 100;
        assert_eq!(out.writable(&mut socket), Flush::Done);
        assert_eq!(socket.got, b"hello world!");
        assert_eq!(pending(&out), 0);
        assert_eq!(out.flush(&mut socket), Flush::Done);
    }

    #[test]
    fn many_messages_leave_in_few_writes_and_in_order() {
        let out = Outbound::new(1 << 20);
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
        let out = Outbound::new(1024);
        let message = Bytes::from(vec![1u8; 10]);
        out.append(&message);
        let state = lock(&out.state);
        assert_eq!(state.queue[0].as_ptr(), message.as_ptr(), "no copy");
    }

    #[test]
    fn overflow_closes_and_discards() {
        let out = Outbound::new(10);
        assert_eq!(out.append(&bytes(b"0123456789")), Append::NewlyDirty);
        assert_eq!(out.append(&bytes(b"x")), Append::Overflow);
        assert!(lock(&out.state).closed);
        assert_eq!(out.append(&bytes(b"y")), Append::Closed);
        assert_eq!(pending(&out), 0);
    }

    #[test]
    fn appends_while_a_flush_is_in_flight_go_after_it() {
        let out = Outbound::new(1024);
        let mut socket = FakeSocket {
            got: Vec::new(),
            room: 4,
            fail: false,
        };
        out.append(&bytes(b"0123456789"));
        assert_eq!(out.flush(&mut socket), Flush::Blocked);
        {
            // What a concurrent append sees while a flusher holds a batch.
            let mut state = lock(&out.state);
            state.flushing = true;
            let batch = state.take_batch();
            drop(state);
            assert_eq!(out.append(&bytes(b"ab")), Append::NewlyDirty);
            assert_eq!(pending(&out), 2);
            let mut state = lock(&out.state);
            state.put_back(batch);
            state.flushing = false;
        }
        socket.room = 100;
        assert_eq!(out.writable(&mut socket), Flush::Done);
        assert_eq!(socket.got, b"0123456789ab");
    }

    #[test]
    fn write_error_closes() {
        let out = Outbound::new(10);
        let mut socket = FakeSocket {
            got: Vec::new(),
            room: 0,
            fail: true,
        };
        out.append(&bytes(b"abc"));
        assert_eq!(out.flush(&mut socket), Flush::Closed);
        assert_eq!(out.append(&bytes(b"d")), Append::Closed);
    }
}
