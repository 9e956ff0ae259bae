//! The chat itself, without I/O: rooms, membership, what each command means, every
//! text the server sends, input validation, and fan-out of already encoded frames.
//!
//! No sockets, no threads, no event loop: this crate is a state machine that a
//! transport drives (as `quinn-proto` is for `quinn`). The TCP server in
//! `crates/server` is one transport; a WebSocket endpoint or a test harness are
//! others. Cargo enforces the boundary: the crate depends only on `chat-proto`
//! (framing and codecs, also I/O-free), `bytes`, and three Unicode data crates
//! (normalisation, general categories, confusable skeletons) for names.
//!
//! # Layout
//!
//! * [`client`] — [`Client`]: one connection's chat state (name, room, decoder, error
//!   streak) and the entry points a transport calls: `handle_frame`,
//!   `handle_request`, `complete` (a pending operation's outcome), `disconnect`; what
//!   the transport must do comes back as an [`Outcome`].
//! * `state` — what commands see of a client (`ClientState`), the [`Turn`] one call
//!   works with and the [`Outcome`] it returns: the layer below both `client` and
//!   `command/`.
//! * `command/` — one module per command, routed by an exhaustive `match`
//!   (`command::dispatch`); the refusals live here.
//! * [`broker`] — [`MessageBroker`]: the seam to room state (ids, membership,
//!   listing, fan-out), its error type, [`Reply`] (done now, or pending a round
//!   trip), and the ordering contract every implementation keeps. [`local`] —
//!   [`LocalBroker`], rooms in this process.
//! * [`room`] — [`Room`]: one room's members and title and every rule of who is
//!   told what, driven by every broker (the local one under room locks, a cluster's
//!   replica in log order).
//! * [`mailbox`] — [`Mailbox`]: the only way out, a recipient that takes encoded
//!   frames. [`fanout`] — [`Fanout`]: one turn's deliveries, the mailboxes to flush
//!   and the counts. [`encoded`] — [`Encoded`]: a message encoded once per format as
//!   shared [`bytes::Bytes`].
//! * [`flood`] — token buckets per client: over the limit a request waits
//!   ([`Outcome::Throttled`]); far over it, the client is cut off.
//! * [`accounts`] — the password rules, and how [`AccountBackend`] (the seam to
//!   accounts, kept and hashed by the transport's side) is used.
//! * [`features`] — the protocol extensions a client opts in to with `CSHello`, and
//!   the rule that nothing new reaches a client that did not.
//! * [`direct`] — direct messages: the [`direct::Directory`] of reachable clients and
//!   whom they ignore, and the form a direct message takes for its recipient.
//! * [`history`] — [`History`]: a room's recent chats, bounded, numbered, paged.
//! * [`job_thread`] — [`JobThread`]: one thread working through a bounded queue of
//!   jobs in order (password hashing, a cluster's account writes).
//! * [`texts`], [`validate`] — every text; what clients may choose. [`listing`] —
//!   [`Listing`], a room list encoded once per format and shared until it changes;
//!   [`ListingCache`], the rule that keeps it. [`listing_watch`] — [`ListingWatch`],
//!   the room list pushed to clients that opted in when it changed.
//! * `sync` — the crate's lock helper.
//!
//! # Example
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use bytes::Bytes;
//! use chat_core::{Client, Delivered, Fanout, LocalBroker, Mailbox, Turn};
//! use chat_proto::{Request, WireFormat};
//!
//! /// A mailbox that keeps what it gets.
//! #[derive(Debug, Default)]
//! struct Inbox(Mutex<Vec<Bytes>>);
//! impl Mailbox for Inbox {
//!     fn deliver(&self, frames: &Bytes) -> Delivered {
//!         self.0.lock().unwrap().push(frames.clone());
//!         Delivered::Queued
//!     }
//! }
//!
//! let broker = LocalBroker::new();
//! let mut out = Fanout::new();
//! let (alice_box, bob_box) = (Arc::new(Inbox::default()), Arc::new(Inbox::default()));
//! let mut alice = Client::new(1, "alice".into(), Some(WireFormat::Json));
//! let mut bob = Client::new(2, "bob".into(), Some(WireFormat::Json));
//! let now = std::time::Instant::now();
//!
//! let mut turn = Turn { mailbox: &alice_box, broker: &broker, out: &mut out, now };
//! alice.handle_request(Request::CreateRoom { title: "lobby".into() }, &mut turn);
//! let mut turn = Turn { mailbox: &bob_box, broker: &broker, out: &mut out, now };
//! bob.handle_request(Request::JoinRoom { room_id: 1 }, &mut turn);
//! bob.handle_request(Request::Chat { text: "hi".into() }, &mut turn);
//!
//! let last = alice_box.0.lock().unwrap().last().cloned().unwrap();
//! assert!(last.ends_with(br#""member": "bob", "text": "hi"}"#));
//! ```

#![forbid(unsafe_code)]

pub mod accounts;
pub mod broker;
pub mod client;
mod command;
pub mod direct;
pub mod encoded;
pub mod fanout;
pub mod features;
pub mod flood;
pub mod history;
mod ids;
pub mod job_thread;
pub mod listing;
pub mod listing_watch;
pub mod local;
pub mod mailbox;
pub mod moderation;
pub mod room;
mod state;
mod sync;
pub mod texts;
pub mod validate;

pub use accounts::{AccountKeeper, AccountRecord, AccountSink, KeepDone, KeepError, TokenRecord};
pub use broker::{
    AccountBackend, BrokerError, BrokerStat, ClientId, Completion, KeptRoom, Leaving, Member,
    MessageBroker, Reply, RoomId, RoomKeeper, Transport, Unregistered,
};
pub use client::{Client, MAX_ERROR_STREAK};
pub use encoded::{Encoded, OutKind};
pub use fanout::{ChatEvent, Fanout, Tally};
pub use flood::{Bucket, FloodLimits, Rate};
pub use history::{ChatLine, History, HistoryLimit};
pub use job_thread::JobThread;
pub use listing::{Listing, ListingCache};
pub use listing_watch::ListingWatch;
pub use local::LocalBroker;
pub use mailbox::{ConnectionKind, Delivered, Mailbox};
pub use room::{Recipient, Room, RoomMember};
pub use state::{EndReason, Outcome, Refusal, Turn};
