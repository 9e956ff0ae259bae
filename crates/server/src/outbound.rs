//! A connection's outbound byte queue, and the protocol for flushing it to the socket
//! without ever blocking a thread.
//!
//! Any thread may [`Outbound::append`] encoded frames; whoever appended first since the
//! last flush is told so ([`Append::NewlyDirty`]) and must make sure a flush follows
//! (workers collect such sessions and flush them once at the end of a job, so many
//! messages for one socket leave in one `write`). [`Outbound::flush`] writes with the
//! lock *released*: one thread at a time is the flusher (`flushing`), others' appends
//! land in `queued` and the flusher loops until nothing is left or the socket is full.
//!
//! When the socket is full (`WouldBlock`), the flusher stops and the reactor's next
//! writable event resumes it ([`Outbound::writable`]). The reactor registers every
//! socket for edge-triggered writability, so an edge that arrives while a flusher is
//! mid-write must not be lost: `ready_gen` counts writable events, and a flusher that
//! hits `WouldBlock` retries if the count moved since it started writing.
//!
//! Bounded memory: once more than `cap` bytes wait (not counting a buffer a flusher is
//! writing at that moment, so at most about twice `cap` is held), the connection is
//! a slow consumer;
//! `append` answers [`Append::Overflow`], the queue is dropped and the caller
//! disconnects the client. Nothing is ever silently dropped from a live connection.
//!
//! This module does not know frames, sessions or rooms: it moves bytes.

use std::io::{self, Write};
use std::mem;
use std::sync::Mutex;

use crate::pool::lock;

/// Buffers larger than this are freed once empty, so idle connections stay small.
const KEEP_CAPACITY: usize = 64 * 1024;

/// A connection's outbound queue.
pub struct Outbound {
    state: Mutex<State>,
    cap: usize,
}

#[derive(Default)]
struct State {
    /// Bytes appended and not yet taken by a flusher.
    queued: Vec<u8>,
    /// Bytes a flusher took but the socket did not accept yet, from `written` on.
    /// While a flusher is writing, its buffer is out of the struct.
    unsent: Vec<u8>,
    written: usize,
    /// Someone appended since the last flush took `queued`.
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
pub enum Append {
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
pub enum Flush {
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
    pub fn new(cap: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            cap,
        }
    }

    /// Queues `bytes` (whole frames) for sending.
    pub fn append(&self, bytes: &[u8]) -> Append {
        let mut state = lock(&self.state);
        if state.closed {
            return Append::Closed;
        }
        let waiting = state.waiting();
        if waiting + bytes.len() > self.cap {
            state.close();
            return Append::Overflow;
        }
        state.queued.extend_from_slice(bytes);
        if mem::replace(&mut state.dirty, true) {
            Append::Queued
        } else {
            Append::NewlyDirty
        }
    }

    /// Bytes waiting to be written (not counting a flusher's buffer in flight).
    pub fn pending(&self) -> usize {
        let state = lock(&self.state);
        state.waiting()
    }

    /// Whether the queue was closed (write failure or overflow).
    pub fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }

    /// Discards everything and refuses further appends.
    pub fn close(&self) {
        lock(&self.state).close();
    }

    /// Records a writable event and flushes if anything waits.
    pub fn writable(&self, socket: impl Write) -> Flush {
        lock(&self.state).ready_gen += 1;
        self.flush(socket)
    }

    /// Writes queued bytes until none are left or the socket is full. Never blocks:
    /// `socket` must be non-blocking. The lock is never held during a `write`.
    pub fn flush(&self, mut socket: impl Write) -> Flush {
        let mut state = lock(&self.state);
        if state.closed {
            return Flush::Closed;
        }
        if state.flushing {
            return Flush::Busy;
        }
        state.flushing = true;
        loop {
            // Take the unsent rest out of the struct while writing; `written` goes with
            // it so that `unsent[written..]` always describes what the struct holds.
            let mut buf = mem::take(&mut state.unsent);
            let mut written = mem::take(&mut state.written);
            if written == buf.len() {
                buf.clear();
                written = 0;
                mem::swap(&mut buf, &mut state.queued);
                state.dirty = false;
            }
            if buf.is_empty() {
                state.flushing = false;
                state.written = 0;
                if buf.capacity() <= KEEP_CAPACITY {
                    state.unsent = buf;
                }
                return Flush::Done;
            }
            let seen_gen = state.ready_gen;
            drop(state);

            let result = write_nonblocking(&mut socket, &buf, &mut written);

            state = lock(&self.state);
            if state.closed {
                // Cut off while we wrote: what is left is dropped with the connection.
                state.flushing = false;
                return Flush::Closed;
            }
            state.unsent = buf;
            state.written = written;
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
    /// Bytes held and not yet written.
    fn waiting(&self) -> usize {
        self.queued.len() + (self.unsent.len() - self.written)
    }

    fn close(&mut self) {
        self.closed = true;
        self.queued = Vec::new();
        self.unsent = Vec::new();
        self.written = 0;
    }
}

/// Writes `buf[*written..]` until done or `WouldBlock`, advancing `written`.
fn write_nonblocking(socket: &mut impl Write, buf: &[u8], written: &mut usize) -> io::Result<()> {
    while *written < buf.len() {
        match socket.write(&buf[*written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that accepts `room` bytes, then says `WouldBlock`.
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

    #[test]
    fn appends_coalesce_and_resume_after_would_block() {
        let out = Outbound::new(1024);
        let mut socket = FakeSocket {
            got: Vec::new(),
            room: 5,
            fail: false,
        };
        assert_eq!(out.append(b"hello "), Append::NewlyDirty);
        assert_eq!(out.append(b"world"), Append::Queued);
        assert_eq!(out.flush(&mut socket), Flush::Blocked);
        assert_eq!(socket.got, b"hello");
        assert_eq!(out.pending(), 6);
        assert_eq!(
            out.append(b"!"),
            Append::NewlyDirty,
            "queued was taken by the flush"
        );
        socket.room = 100;
        assert_eq!(out.writable(&mut socket), Flush::Done);
        assert_eq!(socket.got, b"hello world!");
        assert_eq!(out.pending(), 0);
        assert_eq!(out.flush(&mut socket), Flush::Done);
    }

    #[test]
    fn overflow_closes_and_discards() {
        let out = Outbound::new(10);
        assert_eq!(out.append(b"0123456789"), Append::NewlyDirty);
        assert_eq!(out.append(b"x"), Append::Overflow);
        assert!(out.is_closed());
        assert_eq!(out.append(b"y"), Append::Closed);
        assert_eq!(out.pending(), 0);
    }

    #[test]
    fn appends_while_a_flush_is_in_flight_are_counted_right() {
        // Regression: the flusher took `unsent` out but left `written` behind, so
        // an append during a write computed `0 - written` and panicked.
        let out = Outbound::new(1024);
        let mut socket = FakeSocket {
            got: Vec::new(),
            room: 4,
            fail: false,
        };
        out.append(b"0123456789");
        assert_eq!(out.flush(&mut socket), Flush::Blocked);
        {
            // What a concurrent append sees while a flusher holds the buffer.
            let mut state = lock(&out.state);
            state.flushing = true;
            let taken = mem::take(&mut state.unsent);
            let written = mem::take(&mut state.written);
            drop(state);
            assert_eq!(out.append(b"ab"), Append::NewlyDirty);
            assert_eq!(out.pending(), 2);
            let mut state = lock(&out.state);
            state.unsent = taken;
            state.written = written;
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
        out.append(b"abc");
        assert_eq!(out.flush(&mut socket), Flush::Closed);
        assert_eq!(out.append(b"d"), Append::Closed);
    }
}
