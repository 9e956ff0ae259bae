//! The core's only way out: a recipient that takes encoded frames.
//!
//! A [`Mailbox`] is whatever can receive messages for one client: a TCP connection's
//! outbound queue, a WebSocket connection, a test's vector. Rooms hold mailboxes,
//! never connections, so the chat logic neither knows nor cares what is behind one
//! (the shape of mini-redis's `db.rs` and tokio's chat example: shared state holds
//! senders).
//!
//! A mailbox is told the frames in the wire format its client speaks (the format is
//! recorded beside the mailbox when the client enters a room) and answers at once; it
//! must never block, and it must keep the order in which frames were delivered.

use bytes::Bytes;

/// A recipient of encoded frames.
pub trait Mailbox: Send + Sync + 'static {
    /// Queues `frames` (one whole message, length headers included) for the client.
    /// Must not block; messages leave in the order they were delivered.
    fn deliver(&self, frames: &Bytes) -> Delivered;

    /// How the client is connected, for counting its messages by connection kind (the
    /// metrics' `transport` label). Plain TCP unless the mailbox says otherwise.
    fn connection_kind(&self) -> ConnectionKind {
        ConnectionKind::Tcp
    }

    /// The client's own address, if the transport knows it (behind a trusted
    /// proxy, the one the proxy named): a room's ban of a guest keeps it out.
    fn address(&self) -> Option<std::net::IpAddr> {
        None
    }
}

/// How a client reaches the server. The core only counts by it ([`crate::Tally`]);
/// the transport says which a mailbox is ([`Mailbox::connection_kind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnectionKind {
    /// The chat protocol on a plain TCP port.
    #[default]
    Tcp,
    /// The chat protocol over TLS.
    Tls,
    /// A WebSocket of the web client (with or without TLS).
    Web,
}

impl ConnectionKind {
    /// How many there are.
    pub const COUNT: usize = 3;
    /// Every kind, in [`ConnectionKind::index`] order.
    pub const ALL: [ConnectionKind; Self::COUNT] = [
        ConnectionKind::Tcp,
        ConnectionKind::Tls,
        ConnectionKind::Web,
    ];

    /// Its position in [`ConnectionKind::ALL`] (and in [`crate::Tally`]'s rows).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Its name as a metrics label: `tcp`, `tls` or `web`.
    pub fn name(self) -> &'static str {
        match self {
            ConnectionKind::Tcp => "tcp",
            ConnectionKind::Tls => "tls",
            ConnectionKind::Web => "web",
        }
    }
}

/// What a [`Mailbox`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// Taken; a flush was already due.
    Queued,
    /// Taken, and nothing was waiting before: the transport must flush this mailbox
    /// after the current turn ([`crate::Fanout::take_flush_due`] lists it). This is what
    /// lets many messages for one client leave in one write.
    FlushDue,
    /// Not taken: the client let too much pile up and is being cut off.
    Overflow,
    /// Not taken: the client is gone.
    Closed,
}
