//! One turn's deliveries: what was sent to whom, and which mailboxes need a flush.
//!
//! A [`Fanout`] belongs to one thread (a worker) and lives as long as it. Every message
//! the core sends goes through [`Fanout::send`], which picks the frames in the
//! recipient's format, hands them to its [`Mailbox`], counts them in the [`Tally`],
//! and remembers mailboxes that now need a flush. The transport takes that list at the
//! end of its turn ([`Fanout::take_flush_due`]) and writes each once, so a burst for
//! one socket costs one write.
//!
//! Sending never blocks and never fails from the sender's point of view: a recipient
//! that cannot take a message is the recipient's problem (it is being cut off), and is
//! only counted.

use std::sync::Arc;

use chat_proto::{RequestKind, WireFormat};

use crate::encoded::{Encoded, OutKind};
use crate::ids::{ClientId, RoomId};
use crate::mailbox::{ConnectionKind, Delivered, Mailbox};

/// Counts of one thread's work since they were last taken (the transport folds them
/// into its metrics once per turn, so fan-out costs no shared counter per message).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Requests handled, by [`RequestKind`], [`ConnectionKind::index`] and
    /// [`WireFormat::index`].
    pub requests: [[[u64; 2]; ConnectionKind::COUNT]; RequestKind::COUNT],
    /// Messages queued for clients, by [`OutKind`], [`ConnectionKind::index`] and
    /// [`WireFormat::index`].
    pub responses: [[[u64; 2]; ConnectionKind::COUNT]; OutKind::COUNT],
    /// Bytes queued for clients.
    pub bytes_out: u64,
    /// Client messages refused as invalid.
    pub protocol_errors: u64,
    /// Recipients whose mailbox overflowed (they are being cut off).
    pub overflows: u64,
}

/// Something that happened to the rooms or names, for the transport's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatEvent {
    /// A room was created.
    RoomCreated {
        /// Its id.
        room: RoomId,
        /// Its title.
        title: String,
    },
    /// A room's last member left; the room is gone.
    RoomDeleted {
        /// Its id.
        room: RoomId,
    },
    /// A client took a new name.
    Renamed {
        /// Who.
        client: ClientId,
        /// The name before.
        old: String,
        /// The name now.
        new: String,
    },
}

/// One thread's deliveries in progress; see the module doc.
#[derive(Debug)]
pub struct Fanout<M> {
    flush_due: Vec<Arc<M>>,
    /// What was sent since the tally was last taken.
    pub tally: Tally,
    /// What happened to rooms and names since the transport last took them.
    pub events: Vec<ChatEvent>,
}

impl<M> Default for Fanout<M> {
    fn default() -> Self {
        Fanout {
            flush_due: Vec::new(),
            tally: Tally::default(),
            events: Vec::new(),
        }
    }
}

impl<M: Mailbox> Fanout<M> {
    /// Nothing sent yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Delivers `message` to `to`, in `format`. A format the message was not encoded
    /// in is a bug in the caller; nothing is sent then (and debug builds panic).
    pub fn send(&mut self, to: &Arc<M>, format: WireFormat, message: &Encoded) {
        let Some(frames) = message.frames(format) else {
            debug_assert!(false, "{:?} not encoded in {format}", message.kind());
            return;
        };
        match to.deliver(frames) {
            Delivered::Queued => {}
            Delivered::FlushDue => self.flush_due.push(Arc::clone(to)),
            Delivered::Overflow => {
                self.tally.overflows += 1;
                return;
            }
            Delivered::Closed => return,
        }
        let kind = to.connection_kind().index();
        self.tally.responses[message.kind() as usize][kind][format.index()] += 1;
        self.tally.bytes_out += frames.len() as u64;
    }

    /// The mailboxes that must be flushed: each got its first waiting message during
    /// this turn. Taking them empties the list.
    pub fn take_flush_due(&mut self) -> std::vec::Drain<'_, Arc<M>> {
        self.flush_due.drain(..)
    }
}
