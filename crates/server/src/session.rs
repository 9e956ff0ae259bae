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
//! * the **state** ([`SessionState`]): name, room, protocol decoder. Only the worker
//!   handling the session touches it; the mutex is uncontended and only satisfies the
//!   compiler.
//! * the **outbound queue** (`outbound.rs`): any thread appends replies and broadcasts.
//!
//! The socket itself is only *read* by the reactor; writes go through the outbound
//! queue's flush protocol. Sessions are identified by a never-reused `id`, so a new
//! connection that reuses a file descriptor or reactor slot is a different session.

use std::net::SocketAddr;
use std::sync::Mutex;

use chat_proto::{RequestDecoder, WireFormat};
use mio::Token;
use mio::net::TcpStream;

use crate::broker::RoomId;
use crate::outbound::{Append, Flush, Outbound};
use crate::pool::lock;

/// Frames an inbox may hold before the reactor stops reading the socket.
pub const MAX_INBOX_FRAMES: usize = 1024;
/// Bytes an inbox may hold before the reactor stops reading the socket.
pub const MAX_INBOX_BYTES: usize = 256 * 1024;

/// One client connection.
pub struct Session {
    /// Unique for the server's lifetime, never reused.
    pub id: u64,
    /// The reactor's handle for this connection (slots are reused; `id` is not).
    pub token: Token,
    /// The client's address.
    pub peer: SocketAddr,
    socket: TcpStream,
    inbox: Mutex<Inbox>,
    /// Replies and broadcasts waiting to be written.
    pub outbound: Outbound,
    /// Name, room and decoder; see the module doc.
    pub state: Mutex<SessionState>,
}

/// Frames read but not yet handled.
#[derive(Default)]
pub struct Inbox {
    /// Complete frames, headers included, in arrival order.
    pub bytes: Vec<u8>,
    /// How many frames `bytes` holds.
    pub frames: usize,
    /// The session is in the work queue or being handled.
    pub scheduled: bool,
    /// The reactor stopped reading because the inbox is full.
    pub paused: bool,
    /// The peer closed or the socket failed: no more bytes will come. Set by the
    /// reactor after the last bytes were appended.
    pub closed: bool,
}

/// What a worker takes out of an inbox in one go.
pub struct Taken {
    /// The frames (swapped with the worker's empty buffer, no copy).
    pub bytes: Vec<u8>,
    /// The reactor had paused reading and must be told to resume.
    pub resume: bool,
    /// The connection is gone: after these frames, the session ends.
    pub closed: bool,
}

/// The per-connection protocol state, owned by whichever worker handles the session.
pub struct SessionState {
    /// The display name; starts as `(IP, PORT)` of the client's side.
    pub name: String,
    /// The room the client is in.
    pub room: Option<RoomId>,
    /// Frames → requests; knows the connection's format once detected.
    pub decoder: RequestDecoder,
    /// Invalid messages in a row; too many and the client is cut off.
    pub error_streak: u32,
    /// The session has ended (left its room, close requested); later frames are
    /// ignored.
    pub ended: bool,
}

impl SessionState {
    /// The format replies are written in: the connection's own once known, JSON before
    /// (a peer whose first frame is unreadable still gets a readable error).
    pub fn reply_format(&self) -> WireFormat {
        self.decoder.format().unwrap_or(WireFormat::Json)
    }
}

impl Session {
    /// A new session for an accepted socket.
    pub fn new(
        id: u64,
        token: Token,
        socket: TcpStream,
        peer: SocketAddr,
        format: Option<WireFormat>,
        outbound_cap: usize,
    ) -> Self {
        Session {
            id,
            token,
            peer,
            socket,
            inbox: Mutex::new(Inbox::default()),
            outbound: Outbound::new(outbound_cap),
            state: Mutex::new(SessionState {
                name: default_name(peer),
                room: None,
                decoder: RequestDecoder::new(format),
                error_streak: 0,
                ended: false,
            }),
        }
    }

    /// The socket, for the reactor's reads and registration.
    pub fn socket(&self) -> &TcpStream {
        &self.socket
    }

    /// Appends frames read by the reactor; answers whether the session must now be
    /// queued (it was not scheduled) and whether the inbox is full (stop reading).
    pub fn deliver_frames(&self, bytes: &[u8], frames: usize) -> (bool, bool) {
        let mut inbox = lock(&self.inbox);
        inbox.bytes.extend_from_slice(bytes);
        inbox.frames += frames;
        let full = inbox.frames >= MAX_INBOX_FRAMES || inbox.bytes.len() >= MAX_INBOX_BYTES;
        inbox.paused |= full;
        (!mem_replace_true(&mut inbox.scheduled), full)
    }

    /// Marks the input side finished (EOF or error); answers whether the session must
    /// now be queued.
    pub fn deliver_close(&self) -> bool {
        let mut inbox = lock(&self.inbox);
        inbox.closed = true;
        !mem_replace_true(&mut inbox.scheduled)
    }

    /// Takes everything in the inbox, leaving `spare` (an empty buffer) in its place.
    pub fn take_inbox(&self, spare: Vec<u8>) -> Taken {
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
    pub fn finish_turn(&self, handled_close: bool) -> bool {
        let mut inbox = lock(&self.inbox);
        let more = !inbox.bytes.is_empty() || (inbox.closed && !handled_close);
        inbox.scheduled = more;
        more
    }

    /// Queues encoded frames for this client.
    pub fn send(&self, bytes: &[u8]) -> Append {
        let result = self.outbound.append(bytes);
        if result == Append::Overflow {
            tracing::warn!(
                session = self.id,
                peer = %self.peer,
                "slow consumer: outbound queue over its cap, disconnecting"
            );
            self.abort();
        }
        result
    }

    /// Writes what is queued, without blocking.
    pub fn flush(&self) -> Flush {
        self.outbound.flush(&self.socket)
    }

    /// Cuts the connection off now. The reactor then sees end-of-stream and the session
    /// ends through the usual path (leaving its room, notices to the others).
    pub fn abort(&self) {
        self.outbound.close();
        // Errors mean the socket is already shut down or gone: nothing to do.
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
    }
}

/// `(IP, PORT)` — the reference server's default name (Python's tuple repr without
/// the quotes).
pub fn default_name(peer: SocketAddr) -> String {
    format!("({}, {})", peer.ip(), peer.port())
}

fn mem_replace_true(flag: &mut bool) -> bool {
    std::mem::replace(flag, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_name_looks_like_the_reference() {
        assert_eq!(
            default_name("127.0.0.1:9001".parse().unwrap()),
            "(127.0.0.1, 9001)"
        );
    }
}
