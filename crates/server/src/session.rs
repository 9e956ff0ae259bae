//! ClientSession: everything the server keeps about one connection, shared between
//! the reactor and the workers behind an `Arc`.
//!
//! A session has three parts, each with its own owner and lock:
//!
//! * the **inbox** ([`Inbox`]): complete frames the reactor has read and no worker has
//!   taken yet, plus the *scheduled* flag. The reactor appends and, if the session was
//!   not scheduled, pushes it onto the work queue; a worker takes the whole inbox at
//!   once. While a session is scheduled (queued or being handled) it is never queued
//!   again, so **one session is handled by one worker at a time, in arrival order** —
//!   the assignment's ordering rule. The inbox is bounded (frames and bytes): past the
//!   bound the reactor pauses reading the socket until a worker drains it
//!   (backpressure; nothing is dropped, the reactor never blocks).
//! * the **chat state** (a [`chat_core::Client`]): name, room, protocol decoder. Only
//!   the worker handling the session touches it; the mutex is uncontended and only
//!   satisfies the compiler.
//! * the **outbound queue** (`outbound.rs`): any thread delivers replies and
//!   broadcasts, through the [`Mailbox`] implementation below — the only face of a
//!   session that rooms ever see.
//!
//! The socket itself is only *read* by the reactor; writes go through the outbound
//! queue's flush protocol. Sessions are identified by a never-reused `id`, so a new
//! connection that reuses a file descriptor or reactor slot is a different session.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use chat_core::{Client, ClientId, Delivered, Mailbox};
use mio::Token;
use mio::net::TcpStream;

use crate::outbound::{Append, Flush, Outbound};
use crate::pool::lock;

/// Frames an inbox may hold before the reactor stops reading the socket.
pub(crate) const MAX_INBOX_FRAMES: usize = 1024;
/// Bytes an inbox may hold before the reactor stops reading the socket.
pub(crate) const MAX_INBOX_BYTES: usize = 256 * 1024;

/// One client connection: the server's [`Mailbox`] type.
///
/// Opaque outside this crate; it is public only so that a broker handed to
/// [`crate::Server::with_broker`] can name it (`MessageBroker<Session>`).
pub struct Session {
    pub(crate) id: ClientId,
    /// The reactor's handle for this connection (slots are reused; `id` is not).
    pub(crate) token: Token,
    /// The client's address.
    pub(crate) peer: SocketAddr,
    socket: TcpStream,
    inbox: Mutex<Inbox>,
    outbound: Outbound,
    client: Mutex<Client>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

/// Frames read but not yet handled.
#[derive(Debug, Default)]
struct Inbox {
    /// Complete frames, headers included, in arrival order.
    bytes: Vec<u8>,
    /// How many frames `bytes` holds.
    frames: usize,
    /// The session is in the work queue or being handled.
    scheduled: bool,
    /// The reactor stopped reading because the inbox is full.
    paused: bool,
    /// The peer closed or the socket failed: no more bytes will come. Set by the
    /// reactor after the last bytes were appended.
    closed: bool,
}

/// What a worker takes out of an inbox in one go.
#[derive(Debug)]
pub(crate) struct Taken {
    /// The frames (swapped with the worker's empty buffer, no copy).
    pub(crate) bytes: Vec<u8>,
    /// The reactor had paused reading and must be told to resume.
    pub(crate) resume: bool,
    /// The connection is gone: after these frames, the session ends.
    pub(crate) closed: bool,
}

/// What the reactor must do after handing frames to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Delivery {
    /// The session was idle: push it on the work queue.
    pub(crate) schedule: bool,
    /// The inbox is full: stop reading until a worker drains it.
    pub(crate) full: bool,
}

impl Session {
    /// A new session for an accepted socket, with `client` as its chat state.
    pub(crate) fn new(
        token: Token,
        socket: TcpStream,
        peer: SocketAddr,
        client: Client,
        outbound_cap: usize,
    ) -> Self {
        Session {
            id: client.id(),
            token,
            peer,
            socket,
            inbox: Mutex::new(Inbox::default()),
            outbound: Outbound::new(outbound_cap),
            client: Mutex::new(client),
        }
    }

    /// The socket, for the reactor's reads and registration.
    pub(crate) fn socket(&self) -> &TcpStream {
        &self.socket
    }

    /// The chat state, for the worker handling this session.
    pub(crate) fn client(&self) -> MutexGuard<'_, Client> {
        lock(&self.client)
    }

    /// Appends `frames` complete frames read by the reactor.
    pub(crate) fn deliver_frames(&self, bytes: &[u8], frames: usize) -> Delivery {
        let mut inbox = lock(&self.inbox);
        inbox.bytes.extend_from_slice(bytes);
        inbox.frames += frames;
        let full = inbox.frames >= MAX_INBOX_FRAMES || inbox.bytes.len() >= MAX_INBOX_BYTES;
        inbox.paused |= full;
        Delivery {
            schedule: !std::mem::replace(&mut inbox.scheduled, true),
            full,
        }
    }

    /// Marks the input side finished (EOF or error); answers whether the session must
    /// now be queued.
    pub(crate) fn deliver_close(&self) -> bool {
        let mut inbox = lock(&self.inbox);
        inbox.closed = true;
        !std::mem::replace(&mut inbox.scheduled, true)
    }

    /// Takes everything in the inbox, leaving `spare` (an empty buffer) in its place.
    pub(crate) fn take_inbox(&self, spare: Vec<u8>) -> Taken {
        let mut inbox = lock(&self.inbox);
        let bytes = std::mem::replace(&mut inbox.bytes, spare);
        inbox.frames = 0;
        Taken {
            bytes,
            resume: std::mem::take(&mut inbox.paused),
            closed: inbox.closed,
        }
    }

    /// Called by the worker when done: unschedules the session unless more input
    /// arrived meanwhile, in which case it stays scheduled and the caller requeues it.
    pub(crate) fn finish_turn(&self, handled_close: bool) -> bool {
        let mut inbox = lock(&self.inbox);
        let more = !inbox.bytes.is_empty() || (inbox.closed && !handled_close);
        inbox.scheduled = more;
        more
    }

    /// Writes what is queued, without blocking.
    pub(crate) fn flush(&self) -> Flush {
        self.outbound.flush(&self.socket)
    }

    /// Records a writable event and resumes a flush.
    pub(crate) fn writable(&self) -> Flush {
        self.outbound.writable(&self.socket)
    }

    /// Cuts the connection off now. The reactor then sees end-of-stream and the session
    /// ends through the usual path (leaving its room, notices to the others).
    pub(crate) fn abort(&self) {
        self.outbound.close();
        // Errors mean the socket is already shut down or gone: nothing to do.
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
    }
}

impl Mailbox for Session {
    fn deliver(&self, frames: &Bytes) -> Delivered {
        match self.outbound.append(frames) {
            Append::Queued => Delivered::Queued,
            Append::NewlyDirty => Delivered::FlushDue,
            Append::Closed => Delivered::Closed,
            Append::Overflow => {
                tracing::warn!(
                    session = self.id,
                    peer = %self.peer,
                    "slow consumer: outbound queue over its cap, disconnecting"
                );
                self.abort();
                Delivered::Overflow
            }
        }
    }
}
