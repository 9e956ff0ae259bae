//! MessageBroker: the seam between a client's commands and the rooms they share.
//!
//! The commands (`command/`) decide *whether* something may happen (the client's own
//! state, validation); a [`MessageBroker`] makes it happen — room ids, titles,
//! membership, listings — and tells everyone concerned, through their
//! [`Mailbox`]es. [`crate::LocalBroker`] keeps rooms in this process; a cluster broker
//! (rooms shared through Redis, members on many nodes) implements the same trait.
//!
//! # The contract every implementation keeps
//!
//! These are the guarantees clients see; the property tests (`tests/ordering.rs`)
//! check them against any broker built on this crate's mailboxes.
//!
//! 1. **One order per room.** Every notice about a room — a join, a leave, a rename,
//!    a chat — reaches all the members it is for in one and the same order.
//! 2. **A member's view is a contiguous slice of that order.** A member gets nothing
//!    from a room after its own leave notice (or after it was removed by a
//!    disconnect), and misses nothing sent after its own entry notice.
//! 3. **Per-sender order.** Operations from one client (one caller at a time, in
//!    order) take effect in that order.
//! 4. **No echo.** A chat goes to every member but its sender; the sender's own
//!    notices (entered, left, renamed) go to the sender only as the self texts.
//! 5. **Room ids** are unique for the broker's life, start at 1, only grow and never
//!    pass [`MAX_ROOM_ID`] (creation fails instead of wrapping); a room ceases to
//!    exist when its last member leaves, unless it is registered to an account
//!    (created by a logged-in member): then it lasts until its owner gives it up
//!    ([`MessageBroker::delete_room`]).
//! 6. **Errors change nothing.** An operation that returns an error has delivered
//!    nothing and changed no state.
//! 7. **Names are unique** by key: no two clients hold names with the same
//!    [`crate::validate::name_key`] at once.
//!
//! 8. **An operation that must wait says so.** Create, join, leave, rename and name
//!    claims answer a [`Reply`]: [`Reply::Done`] with the outcome, or
//!    [`Reply::Pending`] when the outcome needs a round trip (a cluster's shared
//!    state). A pending operation is completed exactly once, through
//!    [`Transport::complete`] on the caller's mailbox, within the broker's own
//!    timeout; until then the caller's client takes no more input, so its requests
//!    still take effect in order (3). [`crate::LocalBroker`] is always done at once.
//!
//! A broker never blocks on a client: delivering is queueing into a mailbox. Nor does
//! it block a caller on I/O: that is what [`Reply::Pending`] is for.
//!
//! What a broker does *not* do: check names, titles or whether the caller is already
//! in a room (the commands do), or touch sockets (the transport does).

use std::fmt;
use std::sync::Arc;

use chat_proto::WireFormat;

use crate::encoded::Encoded;
use crate::fanout::Fanout;
use crate::history::ChatLine;
use crate::listing::Listing;
use crate::listing_watch::ListingWatch;
use crate::mailbox::Mailbox;

pub use crate::ids::{ClientId, MAX_ROOM_ID, RoomId};

/// A client as the broker's callers describe it (borrowed: no copy per chat).
#[derive(Debug)]
pub struct Member<'a, M> {
    /// Who it is.
    pub id: ClientId,
    /// The member's display name (after a rename, the new one).
    pub name: &'a str,
    /// The format its messages are written in.
    pub format: WireFormat,
    /// Where its messages go.
    pub mailbox: &'a Arc<M>,
    /// It opted in to the `history` extension: it is sent a room's recent chats when
    /// it enters, and chats with their numbers and times.
    pub history: bool,
    /// The key of the account it is logged in as: a room it creates is registered to
    /// that account (it lasts; see [`MessageBroker::delete_room`]).
    pub account: Option<&'a str>,
    /// It opted in to the `direct` extension: direct messages reach it as
    /// `SCDirect` (else as a system message).
    pub direct: bool,
    /// It opted in to the `moderation` extension: it is sent a room's topic
    /// (`SCTopic`) when it enters and when the topic changes.
    pub moderation: bool,
    /// The address it connects from, if the transport knows it (a guest's ban is
    /// by address).
    pub address: Option<std::net::IpAddr>,
}

// Not derived: a derive would demand `M: Clone`, and only the reference is copied.
impl<M> Clone for Member<'_, M> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<M> Copy for Member<'_, M> {}

/// Why a member leaves a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaving {
    /// It asked (`/leave`): it gets its own leave notice.
    Asked,
    /// It disconnected: only the others are told.
    Disconnected,
}

/// Why a broker operation did nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerError {
    /// No room has that id (any more).
    NoSuchRoom,
    /// Another client holds a name that looks the same ([`crate::validate::name_key`]).
    NameTaken,
    /// The name is an account's, and the claimant is not logged in as it (a shared
    /// broker's answer when this process had not heard of the account yet).
    NameRegistered,
    /// Every room id the protocol can carry (int32 on the protobuf wire) was used.
    RoomIdsExhausted,
    /// The shared state is out of reach (a cluster backend is down); try later.
    Unavailable,
    /// A login or a password change whose name and password do not match (or whose
    /// name has no account: the same answer).
    BadCredentials,
    /// Too many attempts from this client's address or at this account; try later.
    Throttled,
    /// The room is not registered to the caller's account.
    NotOwner,
    /// The room bans the client: for so many more minutes, or until lifted.
    Banned {
        /// Minutes left (rounded up), `None` for until lifted.
        minutes_left: Option<u64>,
    },
    /// No connected client holds that name (a direct message).
    NoSuchMember,
    /// The recipient ignores the sender (a direct message).
    Ignored,
    /// A per-client bound was reached (names ignored).
    TooMany,
}

impl fmt::Display for BrokerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BrokerError::NoSuchRoom => "no such room",
            BrokerError::NameTaken => "the name is taken",
            BrokerError::NameRegistered => "the name is an account's",
            BrokerError::RoomIdsExhausted => "room ids are exhausted",
            BrokerError::Unavailable => "the shared room state is unavailable",
            BrokerError::BadCredentials => "the name and password do not match",
            BrokerError::Throttled => "too many attempts",
            BrokerError::NotOwner => "the room is not registered to this account",
            BrokerError::Banned { .. } => "the room bans the client",
            BrokerError::NoSuchMember => "no connected client has that name",
            BrokerError::Ignored => "the recipient ignores the sender",
            BrokerError::TooMany => "too many",
        })
    }
}

impl std::error::Error for BrokerError {}

/// What [`MessageBroker::delete_room`] did with a registered room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unregistered {
    /// It had no members: it is gone, with its history.
    Deleted,
    /// It has members: it is an ordinary room now, gone when its last member leaves
    /// (its history is no longer kept for good).
    WhenEmpty,
}

impl Unregistered {
    /// How a broker that answered [`Reply::Pending`] says it in its [`Completion`].
    pub fn completion(self) -> RoomId {
        match self {
            Unregistered::Deleted => 1,
            Unregistered::WhenEmpty => 0,
        }
    }

    /// The inverse of [`Unregistered::completion`].
    pub fn from_completion(done: RoomId) -> Self {
        if done == 1 {
            Unregistered::Deleted
        } else {
            Unregistered::WhenEmpty
        }
    }
}

/// Where a broker keeps its registered rooms for good (the transport's store): told
/// of each change under the room's serialisation, so in the room's order. Every
/// call must only queue (it runs under a room's lock).
pub trait RoomKeeper: Send + Sync {
    /// Room `room` titled `title` was registered to the account whose key is `owner`.
    fn registered(&self, room: RoomId, title: &str, owner: &str);
    /// Room `room` is registered no more: forget it and its history.
    fn unregistered(&self, room: RoomId);
    /// A chat in registered room `room`, as its history keeps it (handed over: the
    /// keeper turns it into its own record without copying its texts again).
    fn chat(&self, room: RoomId, line: ChatLine);
    /// Registered room `room` is now owned by `owner` and moderated as `moderation`
    /// says (after every change). The default keeps none of it.
    fn moderated(&self, room: RoomId, owner: &str, moderation: &crate::moderation::Moderation) {
        let _ = (room, owner, moderation);
    }
}

/// A registered room as a store kept it, for a broker to start with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptRoom {
    /// Its id (kept for good).
    pub id: RoomId,
    /// Its title.
    pub title: String,
    /// The owning account's key.
    pub owner: String,
    /// Its most recent chats, oldest first.
    pub history: Vec<ChatLine>,
    /// Its operators, bans and topic.
    pub moderation: crate::moderation::Moderation,
}

/// A broker's answer to an operation that may need a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Reply<T> {
    /// Done: this is the outcome.
    Done(Result<T, BrokerError>),
    /// Under way: the outcome comes later, as a [`Completion`] handed to
    /// [`Transport::complete`] for the caller's mailbox.
    Pending,
}

/// The outcome of an operation that was [`Reply::Pending`]: for a create, the new
/// room's id; for anything else, `Ok` carries nothing of use (0).
pub type Completion = Result<RoomId, BrokerError>;

/// Rooms and fan-out; see the module doc for the contract. Every method delivers
/// through `out`; the caller flushes what `out` lists afterwards.
pub trait MessageBroker<M: Mailbox>: Send + Sync + fmt::Debug {
    /// Creates a room titled `title` with `creator` as its only member and sends the
    /// creator its entry notice. Answers the new room's id. A creator logged in to an
    /// account (only possible with a broker that keeps [accounts](Self::accounts))
    /// registers the room to it: it lasts while empty, until [`Self::delete_room`].
    fn create_room(
        &self,
        creator: Member<'_, M>,
        title: &str,
        out: &mut Fanout<M>,
    ) -> Reply<RoomId>;

    /// Adds `member` to room `room`: the member gets its entry notice, the earlier
    /// members `[NAME] 님이 입장했습니다.`.
    fn join_room(&self, room: RoomId, member: Member<'_, M>, out: &mut Fanout<M>) -> Reply<()>;

    /// Removes `member` from room `room`; the others get `[NAME] 님이 퇴장했습니다.`, the
    /// member its own leave notice if it [asked](Leaving::Asked). Deletes the room if it
    /// is now empty.
    fn leave_room(
        &self,
        room: RoomId,
        member: Member<'_, M>,
        why: Leaving,
        out: &mut Fanout<M>,
    ) -> Reply<()>;

    /// Renames `member` (whose `name` is the new name) from `old` inside room `room`:
    /// the member gets its rename notice, the others `OLD 의 이름이 X 으로 변경되었습니다.`.
    fn rename(
        &self,
        room: RoomId,
        member: Member<'_, M>,
        old: &str,
        out: &mut Fanout<M>,
    ) -> Reply<()>;

    /// Sends `chat` (an encoded `SCChat` from `sender` saying `text`, already
    /// sanitised) to every other member of room `room`; answers how many members it
    /// goes to (what it cost, for flood control). A broker that carries chats to other
    /// processes sends `text` and encodes there; one in this process sends `chat`.
    fn chat(
        &self,
        room: RoomId,
        sender: Member<'_, M>,
        text: &str,
        chat: &Encoded,
        out: &mut Fanout<M>,
    ) -> Result<usize, BrokerError>;

    /// Every room, ordered by id, members in join order, with its encoded replies.
    /// Each room is listed as it was at one moment; rooms emptied meanwhile are left
    /// out. A listing reflects every change that returned before this call began
    /// (so `/rooms` right after `/join` shows the member); implementations should hand
    /// out the same [`Listing`] until the rooms change, so that repeating `/rooms`
    /// costs nothing.
    fn listing(&self) -> Result<Arc<Listing>, BrokerError>;

    /// Up to `count` chats of room `room` before line `before` (or the newest), oldest
    /// first, and whether older ones are kept (the `history` extension). The default
    /// keeps none.
    fn history(
        &self,
        room: RoomId,
        count: usize,
        before: Option<u64>,
    ) -> Result<(Vec<ChatLine>, bool), BrokerError> {
        let _ = (room, count, before);
        Ok((Vec::new(), false))
    }

    /// Claims the name whose key is `key` for `member`, releasing the one it held
    /// before: [`BrokerError::NameTaken`] if another client holds a name with that key.
    fn claim_name(&self, member: Member<'_, M>, key: &str) -> Reply<()>;

    /// Releases the name client `id` holds, if any (it left, or took back a default
    /// name).
    fn release_name(&self, id: ClientId);

    /// Client `id` is gone while an operation of its was [pending](Reply::Pending):
    /// nobody will take the outcome, so what the operation did (a room entered) is
    /// undone. The completion may still come. The default does nothing (a broker
    /// that never answers pending has nothing to undo).
    fn abandon(&self, id: ClientId) {
        let _ = id;
    }

    /// `/delete N`: the owner (logged in as the account whose key is `owner`, its
    /// mailbox `to`) gives up registered room `room`. [`BrokerError::NotOwner`] if it
    /// is not registered to that account. A pending answer completes with
    /// [`Unregistered::completion`]. The default registers no rooms, so every room is
    /// refused so.
    fn delete_room(
        &self,
        room: RoomId,
        owner: &str,
        to: &Arc<M>,
        out: &mut Fanout<M>,
    ) -> Reply<Unregistered> {
        let _ = (room, owner, to, out);
        Reply::Done(Err(BrokerError::NotOwner))
    }

    /// Whether this broker carries the `moderation` extension. The default does not,
    /// and the extension is then not offered.
    fn offers_moderation(&self) -> bool {
        false
    }

    /// `actor` (a member of room `room`) asks for `action`: the room's rules
    /// (`moderation.rs`, `Room::moderate`) decide, under the room's serialisation,
    /// and the broker tells the actor what was done or why not (a system message,
    /// queued in the room's order). `Ok` says it was told; an error that nothing
    /// happened ([`BrokerError::NoSuchRoom`]: the room is gone). The default
    /// moderates nothing.
    fn moderate(
        &self,
        room: RoomId,
        actor: Member<'_, M>,
        action: crate::moderation::Action,
        out: &mut Fanout<M>,
    ) -> Reply<()> {
        let _ = (room, actor, action, out);
        Reply::Done(Err(BrokerError::Unavailable))
    }

    /// Whether client `id` is (still) a member of room `room`: a member can be put
    /// out by someone else (a kick, a ban), and its client learns it at its next
    /// request. The default: yes (a broker that puts nobody out).
    fn is_member(&self, room: RoomId, id: ClientId) -> bool {
        let _ = (room, id);
        true
    }

    /// Whether this broker carries direct messages (the `direct` extension). The
    /// default does not, and the extension is then not offered.
    fn offers_direct(&self) -> bool {
        false
    }

    /// Sends `text` (already sanitised) from `from` to the client holding the name
    /// whose key is `to`, in the form that client reads (`direct::encode`), unless
    /// that client ignores `from`'s name ([`BrokerError::Ignored`]);
    /// [`BrokerError::NoSuchMember`] if nobody holds it. The default carries none.
    fn direct(&self, from: Member<'_, M>, to: &str, text: &str, out: &mut Fanout<M>) -> Reply<()> {
        let _ = (from, to, text, out);
        Reply::Done(Err(BrokerError::NoSuchMember))
    }

    /// `member` ignores (`ignore`), or no longer ignores, direct messages from the
    /// name whose key is `key`; answers whether anything changed
    /// ([`BrokerError::TooMany`] past `direct::MAX_IGNORED`); a pending answer
    /// completes with 1 if it did, 0 if not.
    fn set_ignored(&self, member: Member<'_, M>, key: &str, ignore: bool) -> Reply<bool> {
        let _ = (member, key, ignore);
        Reply::Done(Ok(false))
    }

    /// `member` changed what it reads (a hello): what the broker keeps of it for
    /// direct messages follows. The default keeps nothing.
    fn refresh(&self, member: Member<'_, M>) {
        let _ = member;
    }

    /// Client `id` is gone for good (its connection closed, after
    /// [`Self::release_name`]): whatever the broker kept of it goes. The default
    /// keeps nothing.
    fn forget(&self, id: ClientId) {
        let _ = id;
    }

    /// How many rooms exist (for logs and metrics).
    fn room_count(&self) -> usize;

    /// The accounts (the `accounts` extension), if this broker has them. The default
    /// has none, and the extension is then not offered.
    fn accounts(&self) -> Option<&dyn AccountBackend<M>> {
        None
    }

    /// The clients watching the room list (the `rooms` extension), if this broker
    /// keeps them: the transport pushes [`MessageBroker::listing`] to them on a
    /// timer. The default keeps none, and the extension is then not offered.
    fn listing_watch(&self) -> Option<&ListingWatch<M>> {
        None
    }

    /// Called once by the transport before it serves anyone: a broker that delivers
    /// from threads of its own (a cluster's log reader) gets what it needs to flush
    /// and disconnect mailboxes. The default does nothing.
    fn start(&self, transport: Arc<dyn Transport<M>>) {
        let _ = transport;
    }

    /// Called once by the transport when it stops, after its last request was
    /// handled: a shared broker takes this process's members out of their rooms (with
    /// leave notices to the others) and stops its threads. The default does nothing.
    fn stop(&self) {}

    /// The broker's own counters and gauges, for the transport's metrics endpoint.
    /// The default has none.
    fn stats(&self) -> Vec<BrokerStat> {
        Vec::new()
    }
}

/// Accounts, kept by the transport's side (see `accounts.rs` for how they work).
pub trait AccountBackend<M>: Send + Sync {
    /// Whether the name whose key is `key` is registered: nobody but a client logged
    /// in as it may take it (or anything confusable with it: same key).
    fn is_registered(&self, key: &str) -> bool;

    /// The registered name whose key is `key`, as it was registered.
    fn registered_name(&self, key: &str) -> Option<String>;

    /// Registers `member`'s name (its key is `key`) with `password`.
    fn register(&self, member: Member<'_, M>, key: &str, password: &str) -> Reply<()>;

    /// Checks `password` for the account whose key is `key`.
    fn login(&self, member: Member<'_, M>, key: &str, password: &str) -> Reply<()>;

    /// Replaces the password of the account `key` (the member is logged in as it),
    /// if `old` is its password now. Every token of the account stops working.
    fn change_password(&self, member: Member<'_, M>, key: &str, old: &str, new: &str) -> Reply<()>;

    /// Whether this backend hands out tokens to log in again with (the `resume`
    /// extension). The default does not, and the extension is then not offered.
    fn keeps_tokens(&self) -> bool {
        false
    }

    /// A new token for the account `key` (the member just logged in as it, or
    /// registered it), and when it expires (ms since the Unix epoch); `None` if none
    /// can be made now.
    fn issue_token(&self, member: Member<'_, M>, key: &str) -> Option<(String, u64)> {
        let _ = (member, key);
        None
    }

    /// Checks `token` for the account `key`: [`BrokerError::BadCredentials`] if it is
    /// not one of its tokens, or expired, or revoked.
    fn resume(&self, member: Member<'_, M>, key: &str, token: &str) -> Reply<()> {
        let _ = (member, key, token);
        Reply::Done(Err(BrokerError::BadCredentials))
    }

    /// `token` is given up (replaced by a new one): it stops working.
    fn forget_token(&self, token: &str) {
        let _ = token;
    }

    /// `/logout` of a member holding `token` (if it opted in to tokens): the token
    /// stops working everywhere, before the logout is answered — `Pending` while a
    /// cluster's shared store is told. The default forgets it at once.
    fn log_out(&self, member: Member<'_, M>, token: Option<&str>) -> Reply<()> {
        let _ = member;
        if let Some(token) = token {
            self.forget_token(token);
        }
        Reply::Done(Ok(()))
    }
}

/// What a broker that delivers from its own threads asks of the transport (the
/// worker threads flush after each turn; such a broker has no turn to end).
pub trait Transport<M>: Send + Sync {
    /// Writes out what `out` queued (its flush list) and folds its tally into the
    /// transport's counters.
    fn flush(&self, out: &mut Fanout<M>);

    /// Ends `mailbox`'s connection, after the messages already queued for it (the
    /// client's session then ends as for any disconnect).
    fn disconnect(&self, mailbox: &Arc<M>);

    /// Hands `outcome` to the client whose operation was [pending](Reply::Pending)
    /// (its mailbox is `mailbox`): the transport resumes it, and it takes more input
    /// after that. Called once per pending operation, from any thread.
    fn complete(&self, mailbox: &Arc<M>, outcome: Completion);
}

/// One number a broker reports about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerStat {
    /// The metric's name (prefixed by the transport, e.g. `chat_cluster_…`).
    pub name: &'static str,
    /// What it counts, for the metric's help text.
    pub help: &'static str,
    /// A counter (only grows) or a gauge.
    pub counter: bool,
    /// Its value now.
    pub value: u64,
}
