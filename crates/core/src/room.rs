//! Room: one room's title and members, and every rule of who is told what.
//!
//! This is the one place where a room's rules are written: what its creator, an
//! entrant, the earlier members, a leaver and a renamed member are each told, that a
//! chat goes to every member but its sender, and that a room with no members is to be
//! deleted. Every broker drives it: [`crate::LocalBroker`] under each room's lock, the
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
//! What it does not do: hand out room ids, keep the table of rooms, check names or
//! titles (the commands do), or decide whether a client may act (the commands do).

use std::sync::Arc;

use chat_proto::{RoomInfo, WireFormat};

use crate::broker::Leaving;
use crate::encoded::Encoded;
use crate::fanout::Fanout;
use crate::ids::RoomId;
use crate::mailbox::Mailbox;
use crate::texts;

/// Where a member connected to this process gets its messages.
#[derive(Debug)]
pub struct Recipient<M> {
    /// Its mailbox.
    pub mailbox: Arc<M>,
    /// The format its messages are written in.
    pub format: WireFormat,
}

// Not derived: a derive would demand `M: Clone`, and only the `Arc` is cloned.
impl<M> Clone for Recipient<M> {
    fn clone(&self) -> Self {
        Recipient {
            mailbox: Arc::clone(&self.mailbox),
            format: self.format,
        }
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
}

/// One room; see the module doc.
#[derive(Debug)]
pub struct Room<K, M> {
    title: String,
    /// In join order.
    members: Vec<RoomMember<K, M>>,
}

impl<K: Copy + Eq, M: Mailbox> Room<K, M> {
    /// A room titled `title` whose only member is `creator`, who is told it entered.
    pub fn create(title: String, creator: RoomMember<K, M>, out: &mut Fanout<M>) -> Self {
        if let Some(to) = &creator.recipient {
            to.notify(&texts::entered_self(&title), out);
        }
        Room {
            title,
            members: vec![creator],
        }
    }

    /// A room as a snapshot of shared state lists it, telling nobody anything.
    pub fn restore(title: String, members: Vec<RoomMember<K, M>>) -> Self {
        Room { title, members }
    }

    /// Its title.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// Its members, in join order.
    pub fn members(&self) -> &[RoomMember<K, M>] {
        &self.members
    }

    /// Whether it has no members (then it must be deleted: a room with no members
    /// does not exist).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Whether `id` is a member.
    pub fn contains(&self, id: K) -> bool {
        self.members.iter().any(|m| m.id == id)
    }

    /// Adds `entrant`: the earlier members are told `[NAME] 님이 입장했습니다.`, then the
    /// entrant its entry notice, so it misses nothing that comes after.
    pub fn join(&mut self, entrant: RoomMember<K, M>, out: &mut Fanout<M>) {
        let arrived = Encoded::notice(&texts::entered_others(&entrant.name));
        self.broadcast(entrant.id, &arrived, out);
        if let Some(to) = &entrant.recipient {
            to.notify(&texts::entered_self(&self.title), out);
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

    /// Sends a chat from member `sender` to every other member. `message` makes the
    /// encoded `SCChat` from the sender's name in the room; it is called only if some
    /// other member is connected here (a node with nobody to tell encodes nothing),
    /// and a `None` from it sends nothing (a chat too long for a frame). Answers how
    /// many members the chat is for (what it costs, for flood control), or `None`
    /// (nothing sent) if `sender` is not a member.
    pub fn chat(
        &self,
        sender: K,
        message: impl FnOnce(&str) -> Option<Encoded>,
        out: &mut Fanout<M>,
    ) -> Option<usize> {
        let from = self.members.iter().find(|m| m.id == sender)?;
        let anyone_here = self
            .members
            .iter()
            .any(|m| m.id != sender && m.recipient.is_some());
        if anyone_here && let Some(chat) = message(&from.name) {
            self.broadcast(sender, &chat, out);
        }
        Some(self.members.len() - 1)
    }

    /// The room as `/rooms` lists it.
    pub fn info(&self, room_id: RoomId) -> RoomInfo {
        RoomInfo {
            room_id,
            title: self.title.clone(),
            members: self.members.iter().map(|m| m.name.clone()).collect(),
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
            }),
        }
    }

    fn elsewhere(id: u32, name: &str) -> RoomMember<u32, Inbox> {
        RoomMember {
            id,
            name: name.to_owned(),
            recipient: None,
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
        let mut room = Room::create("t".into(), here(1, "a", &a), &mut out);
        room.join(here(2, "b", &b), &mut out);
        room.join(elsewhere(3, "far"), &mut out);
        assert_eq!(room.chat(2, chat("hi"), &mut out), Some(2));
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
        assert!(room.is_empty());
        assert!(got(&a).is_empty(), "a disconnected member is told nothing");
    }

    #[test]
    fn a_non_member_changes_nothing_and_nobody_here_encodes_nothing() {
        let a = Arc::new(Inbox::default());
        let mut out = Fanout::new();
        let mut room = Room::create("t".into(), here(1, "a", &a), &mut out);
        got(&a);
        assert!(room.leave(9, Leaving::Asked, &mut out).is_none());
        assert!(room.rename(9, "x", &mut out).is_none());
        assert_eq!(room.chat(9, chat("x"), &mut out), None);
        assert!(got(&a).is_empty());

        let mut far = Room::create("t".into(), elsewhere(5, "far"), &mut out);
        far.join(here(1, "a", &a), &mut out);
        got(&a);
        assert_eq!(
            far.chat(1, |_| panic!("nobody else is here to encode for"), &mut out),
            Some(1)
        );
    }
}
