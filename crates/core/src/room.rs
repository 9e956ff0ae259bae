//! Room: one room's title and members, and every rule of who is told what.
//!
//! This is the one place where a room's rules are written: what its creator, an
//! entrant, the earlier members, a leaver and a renamed member are each told, that a
//! chat goes to every member but its sender, and that a room with no members is to be
//! deleted — unless it is registered to an account ([`Room::register`]): such a room
//! lasts while empty, until its owner gives it up. Every broker drives it: [`crate::LocalBroker`] under each room's lock, the
//! cluster's replica while it applies the shared log in order. It holds no locks and
//! does no I/O: deliveries go to mailboxes through the caller's [`Fanout`].
//!
//! # Members here and elsewhere
//!
//! A member is named by a key `K` (a [`ClientId`](crate::ClientId) on one node; a
//! node and client pair in a cluster) and may have a [`Recipient`]: the mailbox and
//! format of a client connected to this process. A member connected elsewhere has
//! none: it is listed and counted like anyone, and its own node tells it what it is
//! told (that node runs the same rules on the same events in the same order).
//!
//! # Invariants
//!
//! * Members are in join order (the `/rooms` listing's order), each key at most once.
//! * Every notice for one event is queued before the call returns, so a caller that
//!   serialises calls per room (a lock, or one log) gives every member one order.
//! * A call that answers "not a member" has delivered nothing and changed nothing.
//!
//! It also keeps the room's recent chats ([`History`]): a member that opted in to the
//! `history` extension is sent the last of them right after its entry notice (so it
//! misses nothing and sees nothing twice: both happen under the room's serialisation),
//! and chats with their numbers and times.
//!
//! What it does not do: hand out room ids, keep the table of rooms, check names or
//! titles (the commands do), decide whether a client may act (the commands do), or
//! read a clock (the broker stamps each chat: [`Stamp`]).

use std::net::IpAddr;
use std::sync::Arc;

use chat_proto::{HistoryLine, Response, RoomInfo, WireFormat};

use crate::broker::Leaving;
use crate::encoded::Encoded;
use crate::fanout::Fanout;
use crate::history::{ChatLine, History, HistoryLimit, ON_ENTRY};
use crate::ids::RoomId;
use crate::mailbox::Mailbox;
use crate::moderation::{self, Action, Ban, Banned, Moderation, Rank};
use crate::texts;

/// Where a member connected to this process gets its messages.
#[derive(Debug)]
pub struct Recipient<M> {
    /// Its mailbox.
    pub mailbox: Arc<M>,
    /// The format its messages are written in.
    pub format: WireFormat,
    /// It opted in to the `history` extension.
    pub history: bool,
    /// It opted in to the `moderation` extension (it is sent the room's topic).
    pub topics: bool,
}

// Not derived: a derive would demand `M: Clone`, and only the `Arc` is cloned.
impl<M> Clone for Recipient<M> {
    fn clone(&self) -> Self {
        Recipient {
            mailbox: Arc::clone(&self.mailbox),
            format: self.format,
            history: self.history,
            topics: self.topics,
        }
    }
}

/// When a chat was taken, and its number if the broker numbers chats itself (a
/// cluster's log does, the same on every node); otherwise the room numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The chat's number, if the broker gives one.
    pub seq: Option<u64>,
}

/// A page of history as `SCHistory` carries it.
pub fn history_response(room_id: RoomId, lines: Vec<ChatLine>, more: bool) -> Response<'static> {
    let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    Response::History {
        room_id,
        lines: lines
            .into_iter()
            .map(|line| HistoryLine {
                seq: as_i64(line.seq),
                time: as_i64(line.time_ms),
                member: line.member.to_string(),
                text: line.text.to_string(),
            })
            .collect(),
        more,
    }
}

impl<M: Mailbox> Recipient<M> {
    /// Queues a system message saying `text` for this recipient alone.
    pub fn notify(&self, text: &str, out: &mut Fanout<M>) {
        let notice = Encoded::notice_for(self.format, text);
        out.send(&self.mailbox, self.format, &notice);
    }
}

/// A member as a room stores it.
#[derive(Debug)]
pub struct RoomMember<K, M> {
    /// Who it is.
    pub id: K,
    /// Its display name in the room.
    pub name: String,
    /// Set for a member connected to this process.
    pub recipient: Option<Recipient<M>>,
    /// The key of the account it is logged in as, if any (its rank in a registered
    /// room, and what a ban of it keeps out).
    pub account: Option<String>,
    /// Its address, if known here (what a ban of a guest keeps out).
    pub address: Option<IpAddr>,
}

/// What a chat did ([`Room::chat`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chatted {
    /// How many members it is for (what it costs, for flood control).
    pub recipients: usize,
    /// The line as the room's history keeps it (`None`: too long for a frame, so it
    /// reached nobody and is not kept).
    pub line: Option<ChatLine>,
}

/// One room; see the module doc.
#[derive(Debug)]
pub struct Room<K, M> {
    title: String,
    /// In join order.
    members: Vec<RoomMember<K, M>>,
    /// Its recent chats.
    history: History,
    /// The key of the account it is registered to, if it is.
    owner: Option<String>,
    /// Its operators, bans and topic (only a registered room has any).
    moderation: Moderation,
}

impl<K: Copy + Eq, M: Mailbox> Room<K, M> {
    /// A room titled `title` whose only member is `creator`, who is told it entered.
    pub fn create(
        title: String,
        creator: RoomMember<K, M>,
        history: HistoryLimit,
        out: &mut Fanout<M>,
    ) -> Self {
        if let Some(to) = &creator.recipient {
            to.notify(&texts::entered_self(&title), out);
        }
        Room {
            title,
            members: vec![creator],
            history: History::new(history),
            owner: None,
            moderation: Moderation::default(),
        }
    }

    /// A registered room as a store kept it: no members yet, its history as kept.
    pub fn registered(title: String, owner: String, history: History) -> Self {
        Room {
            title,
            members: Vec::new(),
            history,
            owner: Some(owner),
            moderation: Moderation::default(),
        }
    }

    /// A room as a snapshot of shared state lists it (registered to `owner`, if
    /// any, with the history kept for it), telling nobody anything.
    pub fn restore(
        title: String,
        owner: Option<String>,
        members: Vec<RoomMember<K, M>>,
        history: History,
    ) -> Self {
        Room {
            title,
            members,
            history,
            owner,
            moderation: Moderation::default(),
        }
    }

    /// Its title.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// Its members, in join order.
    pub fn members(&self) -> &[RoomMember<K, M>] {
        &self.members
    }

    /// Whether it must be deleted: it has no members and is not registered (an
    /// unregistered room with no members does not exist).
    pub fn is_gone(&self) -> bool {
        self.members.is_empty() && self.owner.is_none()
    }

    /// The key of the account it is registered to, if it is.
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// Registers it to the account whose key is `owner`: it lasts while empty.
    pub fn register(&mut self, owner: &str) {
        self.owner = Some(owner.to_owned());
    }

    /// Registers it no more: it is gone when its last member leaves (at once if it
    /// has none: see [`Room::is_gone`]). A guest room has no moderation: its
    /// operators, bans and topic go too.
    pub fn unregister(&mut self) {
        self.owner = None;
        self.moderation = Moderation::default();
    }

    /// Its operators, bans and topic.
    pub fn moderation(&self) -> &Moderation {
        &self.moderation
    }

    /// The same room with `moderation` as a store kept it.
    pub fn with_moderation(mut self, moderation: Moderation) -> Self {
        self.moderation = moderation;
        self
    }

    /// Whether a client logged in as `account` (a key) from `address` is banned at
    /// `now_ms`: `Some(minutes left, rounded up; None for until lifted)`, or `None`.
    pub fn ban_on(
        &self,
        account: Option<&str>,
        address: Option<IpAddr>,
        now_ms: u64,
    ) -> Option<Option<u64>> {
        let ban = self.moderation.ban_on(account, address, now_ms)?;
        Some(ban.until_ms.map(|until| (until - now_ms).div_ceil(60_000)))
    }

    /// Member `actor`, logged in as `actor_account` now (it may have logged in or out
    /// since it entered: the room keeps the new one), asks for `action` (see
    /// `moderation.rs` for the rules): answers
    /// the text for the actor — what was done, or why nothing was. A kicked member is
    /// told by whom and why and the room who was removed (the member is out when this
    /// returns); a topic change is sent to the members that opted in to `moderation`
    /// (`SCTopic`, `room_id` this room's id); a new owner is announced to the room.
    pub fn moderate(
        &mut self,
        room_id: RoomId,
        actor: K,
        actor_account: Option<&str>,
        action: Action,
        now_ms: u64,
        out: &mut Fanout<M>,
    ) -> Result<String, &'static str> {
        let owner = self.owner.clone().ok_or(texts::NOT_REGISTERED_ROOM)?;
        let (actor_name, actor_account) = {
            let member = self
                .members
                .iter_mut()
                .find(|m| m.id == actor)
                .ok_or(texts::NOT_IN_ROOM)?;
            member.account = actor_account.map(str::to_owned);
            (member.name.clone(), member.account.clone())
        };
        let rank = self.moderation.rank(Some(&owner), actor_account.as_deref());
        let operator = |rank| {
            if rank >= Rank::Operator {
                Ok(())
            } else {
                Err(texts::NOT_OPERATOR)
            }
        };
        match action {
            Action::Op { key, name, op } => {
                if rank != Rank::Owner {
                    return Err(texts::NOT_THE_OWNER);
                }
                if key == owner {
                    return Err(texts::CANNOT_TARGET_SELF);
                }
                let operators = &mut self.moderation.operators;
                let text = if op {
                    if !operators.contains(&key) && operators.len() >= moderation::MAX_OPERATORS {
                        return Err(texts::OPERATORS_FULL);
                    }
                    operators.insert(key.clone());
                    texts::opped(&name)
                } else {
                    if !operators.remove(&key) {
                        return Err(texts::NOT_AN_OPERATOR);
                    }
                    texts::deopped(&name)
                };
                self.tell_account(&key, &text, out);
                Ok(text)
            }
            Action::Owner { key, name } => {
                if rank != Rank::Owner {
                    return Err(texts::NOT_THE_OWNER);
                }
                if key == owner {
                    return Err(texts::CANNOT_TARGET_SELF);
                }
                let operators = &mut self.moderation.operators;
                operators.remove(&key);
                // The old owner stays an operator (if there is room for one more).
                if operators.len() < moderation::MAX_OPERATORS {
                    operators.insert(owner);
                }
                self.owner = Some(key);
                let text = texts::owner_changed(&name);
                self.broadcast(actor, &Encoded::notice(&text), out);
                Ok(text)
            }
            Action::Kick { key, reason } => {
                operator(rank)?;
                let target = self
                    .target(&key, actor, &owner, rank)?
                    .ok_or(texts::NO_SUCH_MEMBER_HERE)?
                    .id;
                Ok(self.kick(target, actor, &actor_name, &reason, out))
            }
            Action::Ban {
                key,
                name,
                account,
                minutes,
            } => {
                moderation::check_minutes(minutes)?;
                let until_ms = moderation::ban_end(minutes, now_ms);
                operator(rank)?;
                let who = match account {
                    Some(account) => {
                        if actor_account.as_deref() == Some(account.as_str()) {
                            return Err(texts::CANNOT_TARGET_SELF);
                        }
                        let target_rank = self.moderation.rank(Some(&owner), Some(&account));
                        moderation::may_act_on(rank, target_rank)?;
                        Banned::Account(account)
                    }
                    None => {
                        // Not an account: a guest of this room, kept out by address.
                        let target = self
                            .target(&key, actor, &owner, rank)?
                            .ok_or(texts::NO_SUCH_ACCOUNT)?;
                        match (&target.account, target.address) {
                            (Some(account), _) => Banned::Account(account.clone()),
                            (None, Some(address)) => Banned::Address(address),
                            (None, None) => return Err(texts::NO_SUCH_ACCOUNT),
                        }
                    }
                };
                let ban = Ban {
                    who,
                    name: name.clone(),
                    until_ms,
                };
                self.moderation.add_ban(ban.clone(), now_ms)?;
                // Whoever the ban keeps out leaves now.
                let out_now: Vec<K> = self
                    .members
                    .iter()
                    .filter(|m| m.id != actor && ban.keeps_out(m.account.as_deref(), m.address))
                    .map(|m| m.id)
                    .collect();
                for target in out_now {
                    self.kick(target, actor, &actor_name, "", out);
                }
                Ok(texts::banned(&name, minutes))
            }
            Action::Unban { key, name } => {
                operator(rank)?;
                if self.moderation.lift(&key, now_ms) {
                    Ok(texts::unbanned(&name))
                } else {
                    Err(texts::NOT_BANNED)
                }
            }
            Action::Topic { topic } => {
                operator(rank)?;
                let text = texts::topic_set(topic.as_deref());
                self.moderation.topic = topic;
                let message = Response::Topic {
                    room_id,
                    topic: self.moderation.topic.clone().unwrap_or_default().into(),
                    by: actor_name.into(),
                };
                if let Ok(message) = Encoded::both(&message) {
                    for member in &self.members {
                        if let Some(to) = member.recipient.as_ref().filter(|to| to.topics) {
                            out.send(&to.mailbox, to.format, &message);
                        }
                    }
                }
                Ok(text)
            }
        }
    }

    /// The member whose name's key is `key`, if one is here and an actor of rank
    /// `rank` (member `actor`, in a room owned by `owner`) may act on it: not itself,
    /// and within its rank (`moderation::may_act_on`).
    fn target(
        &self,
        key: &str,
        actor: K,
        owner: &str,
        rank: Rank,
    ) -> Result<Option<&RoomMember<K, M>>, &'static str> {
        let Some(target) = self
            .members
            .iter()
            .find(|m| crate::validate::name_key(&m.name) == key)
        else {
            return Ok(None);
        };
        if target.id == actor {
            return Err(texts::CANNOT_TARGET_SELF);
        }
        let target_rank = self.moderation.rank(Some(owner), target.account.as_deref());
        moderation::may_act_on(rank, target_rank)?;
        Ok(Some(target))
    }

    /// Takes member `target` out, kicked by member `actor` named `by`: the target is
    /// told by whom and why, the others (but the actor, who is answered) who was
    /// removed. Answers what the room was told.
    fn kick(&mut self, target: K, actor: K, by: &str, reason: &str, out: &mut Fanout<M>) -> String {
        let Some(at) = self.members.iter().position(|m| m.id == target) else {
            return String::new();
        };
        let gone = self.members.remove(at);
        if let Some(to) = &gone.recipient {
            to.notify(&texts::kicked_self(by, reason), out);
        }
        let text = texts::kicked_others(&gone.name, by, reason);
        let notice = Encoded::notice(&text);
        for member in self.members.iter().filter(|m| m.id != actor) {
            if let Some(to) = &member.recipient {
                out.send(&to.mailbox, to.format, &notice);
            }
        }
        text
    }

    /// Tells the members logged in as the account whose key is `key` `text`.
    fn tell_account(&self, key: &str, text: &str, out: &mut Fanout<M>) {
        for member in &self.members {
            if member.account.as_deref() == Some(key)
                && let Some(to) = &member.recipient
            {
                to.notify(text, out);
            }
        }
    }

    /// Whether `id` is a member.
    pub fn contains(&self, id: K) -> bool {
        self.members.iter().any(|m| m.id == id)
    }

    /// Adds `entrant`: the earlier members are told `[NAME] 님이 입장했습니다.`, then the
    /// entrant its entry notice, so it misses nothing that comes after.
    pub fn join(&mut self, entrant: RoomMember<K, M>, room_id: RoomId, out: &mut Fanout<M>) {
        let arrived = Encoded::notice(&texts::entered_others(&entrant.name));
        self.broadcast(entrant.id, &arrived, out);
        if let Some(to) = &entrant.recipient {
            to.notify(&texts::entered_self(&self.title), out);
            if to.history {
                // Right after the entry notice: every later chat comes after it.
                let (lines, more) = self.history.page(ON_ENTRY, None);
                if let Ok(page) = Encoded::one(to.format, &history_response(room_id, lines, more)) {
                    out.send(&to.mailbox, to.format, &page);
                }
            }
            if let (true, Some(topic)) = (to.topics, &self.moderation.topic) {
                let topic = Response::Topic {
                    room_id,
                    topic: topic.as_str().into(),
                    by: "".into(),
                };
                if let Ok(topic) = Encoded::one(to.format, &topic) {
                    out.send(&to.mailbox, to.format, &topic);
                }
            }
        }
        self.members.push(entrant);
    }

    /// Takes member `id` out: the others are told `[NAME] 님이 퇴장했습니다.`, and the
    /// member its own leave notice if it [asked](Leaving::Asked). Answers the member
    /// taken out, or `None` (nothing told) if `id` is not a member. The caller deletes
    /// the room if it is now [empty](Room::is_empty).
    pub fn leave(&mut self, id: K, why: Leaving, out: &mut Fanout<M>) -> Option<RoomMember<K, M>> {
        let at = self.members.iter().position(|m| m.id == id)?;
        let gone = self.members.remove(at);
        let departed = Encoded::notice(&texts::left_others(&gone.name));
        self.broadcast(id, &departed, out);
        if let (Leaving::Asked, Some(to)) = (why, &gone.recipient) {
            to.notify(&texts::left_self(&self.title), out);
        }
        Some(gone)
    }

    /// Renames member `id` to `name`: the others are told `OLD 의 이름이 NEW 으로
    /// 변경되었습니다.`, then the member its own rename notice. Answers the old name, or
    /// `None` (nothing told) if `id` is not a member.
    pub fn rename(&mut self, id: K, name: &str, out: &mut Fanout<M>) -> Option<String> {
        let member = self.members.iter_mut().find(|m| m.id == id)?;
        let old = std::mem::replace(&mut member.name, name.to_owned());
        let own = member.recipient.clone();
        let others = Encoded::notice(&texts::renamed_others(&old, name));
        self.broadcast(id, &others, out);
        if let Some(to) = own {
            to.notify(&texts::renamed_self(name), out);
        }
        Some(old)
    }

    /// Sends a chat from member `sender` saying `text` to every other member, and
    /// keeps it in the room's history, numbered and stamped with `at`. `message` makes
    /// the encoded `SCChat` from the sender's name in the room; it is called only if
    /// some other member is connected here (a node with nobody to tell encodes
    /// nothing), and a `None` from it sends nothing (a chat too long for a frame):
    /// such a chat is not kept either. Members that opted in to `history` get it with
    /// its number and time (encoded only if one is here). Answers what it did, or
    /// `None` (nothing sent, nothing kept) if `sender` is not a member.
    pub fn chat(
        &mut self,
        sender: K,
        text: &str,
        at: Stamp,
        message: impl FnOnce(&str) -> Option<Encoded>,
        out: &mut Fanout<M>,
    ) -> Option<Chatted> {
        let from = self.members.iter().find(|m| m.id == sender)?;
        let others = self.members.iter().filter(|m| m.id != sender);
        let (plain_here, timed_here) =
            others.fold((false, false), |(plain, timed), m| match &m.recipient {
                Some(to) if to.history => (plain, true),
                Some(_) => (true, timed),
                None => (plain, timed),
            });
        // Borrowed, not cloned: `members` and `history` are separate fields.
        let name = from.name.as_str();
        let recipients = self.members.len() - 1;
        let line = match at.seq {
            Some(seq) => self.history.record_as(seq, at.time_ms, name, text),
            None => self.history.record(at.time_ms, name, text),
        };
        let anyone_here = plain_here || timed_here;
        let plain = if anyone_here { message(name) } else { None };
        if anyone_here && plain.is_none() {
            // Too long for a frame: nobody gets it, so nobody reads it later either.
            self.history.forget(line.seq);
            return Some(Chatted {
                recipients,
                line: None,
            });
        }
        let timed = timed_here
            .then(|| {
                let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                Encoded::both(&Response::TimedChat {
                    member: name.into(),
                    text: text.into(),
                    seq: as_i64(line.seq),
                    time: as_i64(line.time_ms),
                })
                .ok()
            })
            .flatten();
        for member in self.members.iter().filter(|m| m.id != sender) {
            let Some(to) = &member.recipient else {
                continue;
            };
            // A timed chat a few bytes too long for a frame goes as a plain one.
            let chat = if to.history {
                timed.as_ref().or(plain.as_ref())
            } else {
                plain.as_ref()
            };
            if let Some(chat) = chat {
                out.send(&to.mailbox, to.format, chat);
            }
        }
        Some(Chatted {
            recipients,
            line: Some(line),
        })
    }

    /// Up to `count` lines of the room's history before line `before` (or the
    /// newest), oldest first, and whether older ones are kept.
    pub fn history(&self, count: usize, before: Option<u64>) -> (Vec<ChatLine>, bool) {
        self.history.page(count, before)
    }

    /// The room as `/rooms` lists it.
    pub fn info(&self, room_id: RoomId) -> RoomInfo {
        RoomInfo {
            room_id,
            title: self.title.clone(),
            members: self.members.iter().map(|m| m.name.clone()).collect(),
            topic: self.moderation.topic.clone(),
        }
    }

    /// Delivers `message` to every member connected here except `except`.
    fn broadcast(&self, except: K, message: &Encoded, out: &mut Fanout<M>) {
        for member in self.members.iter().filter(|m| m.id != except) {
            if let Some(to) = &member.recipient {
                out.send(&to.mailbox, to.format, message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use bytes::Bytes;
    use chat_proto::frame::Frames;
    use chat_proto::{Response, ResponseDecoder};

    use super::*;
    use crate::mailbox::Delivered;

    /// A mailbox that decodes what it gets into lines (`[name] text` for chats).
    #[derive(Debug, Default)]
    struct Inbox(Mutex<Vec<String>>);
    impl Mailbox for Inbox {
        fn deliver(&self, frames: &Bytes) -> Delivered {
            let mut decoder = ResponseDecoder::new(WireFormat::Json);
            for frame in Frames::new(frames) {
                if let Some(Ok(response)) = decoder.feed(frame) {
                    self.0.lock().unwrap().push(match response {
                        Response::SystemMessage { text } => text.into_owned(),
                        Response::Chat { member, text } => format!("[{member}] {text}"),
                        Response::TimedChat {
                            member,
                            text,
                            seq,
                            time,
                        } => format!("[{member}] {text} #{seq} @{time}"),
                        Response::History { lines, more, .. } => format!(
                            "history {:?} more={more}",
                            lines
                                .iter()
                                .map(|l| (l.seq, l.text.as_str()))
                                .collect::<Vec<_>>()
                        ),
                        other => format!("{other:?}"),
                    });
                }
            }
            Delivered::Queued
        }
    }

    fn here(id: u32, name: &str, inbox: &Arc<Inbox>) -> RoomMember<u32, Inbox> {
        RoomMember {
            id,
            name: name.to_owned(),
            recipient: Some(Recipient {
                mailbox: Arc::clone(inbox),
                format: WireFormat::Json,
                history: false,
                topics: false,
            }),
            account: None,
            address: None,
        }
    }

    /// A member here that opted in to `history`.
    fn timed(id: u32, name: &str, inbox: &Arc<Inbox>) -> RoomMember<u32, Inbox> {
        let mut member = here(id, name, inbox);
        if let Some(to) = &mut member.recipient {
            to.history = true;
        }
        member
    }

    const LIMIT: HistoryLimit = HistoryLimit {
        lines: 1000,
        bytes: 1 << 20,
    };

    fn at(time_ms: u64) -> Stamp {
        Stamp { time_ms, seq: None }
    }

    fn elsewhere(id: u32, name: &str) -> RoomMember<u32, Inbox> {
        RoomMember {
            id,
            name: name.to_owned(),
            recipient: None,
            account: None,
            address: None,
        }
    }

    fn got(inbox: &Inbox) -> Vec<String> {
        std::mem::take(&mut *inbox.0.lock().unwrap())
    }

    fn chat(text: &str) -> impl FnOnce(&str) -> Option<Encoded> + '_ {
        move |name| {
            Encoded::both(&Response::Chat {
                member: name.into(),
                text: text.into(),
            })
            .ok()
        }
    }

    #[test]
    fn who_is_told_what() {
        let (a, b) = (Arc::new(Inbox::default()), Arc::new(Inbox::default()));
        let mut out = Fanout::new();
        let mut room = Room::create("t".into(), here(1, "a", &a), LIMIT, &mut out);
        room.join(here(2, "b", &b), 7, &mut out);
        room.join(elsewhere(3, "far"), 7, &mut out);
        assert_eq!(
            room.chat(2, "hi", at(5), chat("hi"), &mut out)
                .map(|c| c.recipients),
            Some(2)
        );
        assert_eq!(room.rename(1, "z", &mut out).as_deref(), Some("a"));
        let gone = room.leave(2, Leaving::Asked, &mut out).expect("a member");
        assert_eq!(gone.name, "b");
        room.leave(3, Leaving::Disconnected, &mut out);
        assert_eq!(
            got(&a),
            [
                "방제[t] 방에 입장했습니다.",
                "[b] 님이 입장했습니다.",
                "[far] 님이 입장했습니다.",
                "[b] hi",
                "이름이 z 으로 변경되었습니다.",
                "[b] 님이 퇴장했습니다.",
                "[far] 님이 퇴장했습니다.",
            ]
        );
        assert_eq!(
            got(&b),
            [
                "방제[t] 방에 입장했습니다.",
                "[far] 님이 입장했습니다.",
                "a 의 이름이 z 으로 변경되었습니다.",
                "방제[t] 대화 방에서 퇴장했습니다.",
            ]
        );
        assert_eq!(room.info(7).members, ["z"]);
        room.leave(1, Leaving::Disconnected, &mut out);
        assert!(room.is_gone(), "no members and not registered");
        assert!(got(&a).is_empty(), "a disconnected member is told nothing");
    }

    #[test]
    fn a_non_member_changes_nothing_and_nobody_here_encodes_nothing() {
        let a = Arc::new(Inbox::default());
        let mut out = Fanout::new();
        let mut room = Room::create("t".into(), here(1, "a", &a), LIMIT, &mut out);
        got(&a);
        assert!(room.leave(9, Leaving::Asked, &mut out).is_none());
        assert!(room.rename(9, "x", &mut out).is_none());
        assert_eq!(room.chat(9, "x", at(1), chat("x"), &mut out), None);
        assert!(got(&a).is_empty());
        assert!(
            room.history(10, None).0.is_empty(),
            "a non-member's chat is not kept"
        );

        let mut far = Room::create("t".into(), elsewhere(5, "far"), LIMIT, &mut out);
        far.join(here(1, "a", &a), 2, &mut out);
        got(&a);
        assert_eq!(
            far.chat(
                1,
                "kept",
                at(9),
                |_| panic!("nobody else is here to encode for"),
                &mut out
            )
            .map(|c| c.recipients),
            Some(1)
        );
        assert_eq!(
            &*far.history(10, None).0[0].text,
            "kept",
            "kept all the same"
        );
    }

    /// A member that opted in gets the recent chats right after its entry notice,
    /// and chats with their numbers and times; the others get exactly what they did.
    #[test]
    fn history_on_entry_and_timed_chats_only_for_who_asked() {
        let (a, b, c) = (
            Arc::new(Inbox::default()),
            Arc::new(Inbox::default()),
            Arc::new(Inbox::default()),
        );
        let mut out = Fanout::new();
        let mut room = Room::create("t".into(), here(1, "a", &a), LIMIT, &mut out);
        room.chat(1, "one", at(100), chat("one"), &mut out);
        room.chat(1, "two", at(200), chat("two"), &mut out);
        room.join(timed(2, "b", &b), 4, &mut out);
        room.join(here(3, "c", &c), 4, &mut out);
        room.chat(1, "three", at(300), chat("three"), &mut out);
        // A number from the broker (a cluster's log) is taken as it is.
        let logged = Stamp {
            time_ms: 400,
            seq: Some(90),
        };
        room.chat(3, "four", logged, chat("four"), &mut out);
        assert_eq!(
            got(&b),
            [
                "방제[t] 방에 입장했습니다.",
                r#"history [(1, "one"), (2, "two")] more=false"#,
                "[c] 님이 입장했습니다.",
                "[a] three #3 @300",
                "[c] four #90 @400",
            ]
        );
        assert_eq!(
            got(&c),
            ["방제[t] 방에 입장했습니다.", "[a] three"],
            "no history, no numbers"
        );
        let (page, more) = room.history(2, Some(90));
        assert_eq!(
            (page.iter().map(|l| l.seq).collect::<Vec<_>>(), more),
            (vec![2, 3], true)
        );
        // A chat too long for a frame reaches nobody and is not kept.
        room.chat(1, "huge", at(500), |_| None, &mut out);
        assert_eq!(room.history(1, None).0[0].seq, 90);
    }
}
