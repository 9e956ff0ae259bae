//! The typed message model: one `Request` type for what clients send and one
//! `Response` type for what servers send, whatever the wire format.
//!
//! Codecs ([`crate::codec`]) turn these into bytes and back; nothing here knows about
//! JSON, protobuf or sockets.

use std::borrow::Cow;

/// A message from a client to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `/name X`: change the sender's nickname. May be empty (`/name` alone).
    Name {
        /// The new nickname.
        name: String,
    },
    /// `/rooms`: list the rooms.
    Rooms,
    /// `/create T`: create a room titled `title` and enter it.
    CreateRoom {
        /// The new room's title.
        title: String,
    },
    /// `/join N`: enter room `room_id`. JSON allows any integer; ids that do not fit an
    /// `i64` are saturated, which is safe because no such room can exist.
    JoinRoom {
        /// The id of the room to enter.
        room_id: i64,
    },
    /// `/leave`: leave the current room.
    LeaveRoom,
    /// A chat line for the other members of the sender's room.
    Chat {
        /// The line as typed.
        text: String,
    },
    /// `/shutdown`: stop the server.
    Shutdown,
    /// Opts in to this server's extensions (docs/PROTOCOL.md §7): the features the
    /// client understands. Answered with [`Response::Hello`]; a client that never
    /// sends it (the reference client) is never sent anything new.
    Hello {
        /// Feature names, as the client spells them; unknown ones are ignored.
        features: Vec<String>,
    },
    /// `/register PASSWORD` (the `accounts` extension): makes the client's name an
    /// account.
    Register {
        /// The password (never echoed, never logged).
        password: String,
    },
    /// `/login NAME PASSWORD` (the `accounts` extension).
    Login {
        /// The account's name.
        name: String,
        /// Its password.
        password: String,
    },
    /// `/logout` (the `accounts` extension).
    Logout,
    /// `/password OLD NEW` (the `accounts` extension).
    ChangePassword {
        /// The password now.
        old: String,
        /// The new one.
        new: String,
    },
    /// `/history [N]` (the `history` extension): the last `count` chats of the
    /// client's room before line `before` (or the newest).
    History {
        /// How many (the server caps it); `None` for its default.
        count: Option<i64>,
        /// A line number from an earlier page or chat; `None` for the newest.
        before: Option<i64>,
    },
    /// `/delete N` (the `accounts` extension): the owner of registered room `room_id`
    /// gives it up (deleted now if empty, else when its last member leaves).
    DeleteRoom {
        /// The room.
        room_id: i64,
    },
    /// Logs in again with a token an earlier login handed out (the `resume`
    /// extension), instead of the password: a page reloaded, a connection lost.
    Resume {
        /// The account's name.
        name: String,
        /// The token ([`Response::Session`]).
        token: String,
    },
    /// A direct message (the `direct` extension): `text` for the connected client
    /// named `name` only.
    Direct {
        /// The recipient's name.
        name: String,
        /// The line as typed.
        text: String,
    },
    /// `/ignore NAME` (`ignore` true) and `/unignore NAME` (false) (the `direct`
    /// extension).
    Ignore {
        /// The name to ignore or stop ignoring.
        name: String,
        /// Whether to ignore it (false: stop).
        ignore: bool,
    },
    /// `/op NAME` (`op` true) and `/deop NAME` (false) (the `moderation` extension):
    /// makes the account `name` an operator of the sender's room, or no longer one.
    Op {
        /// The account.
        name: String,
        /// Whether to make it an operator (false: stop).
        op: bool,
    },
    /// The owner hands the sender's room to the account `name` (the `moderation`
    /// extension).
    Owner {
        /// The new owner.
        name: String,
    },
    /// Sends `name` out of the sender's room (the `moderation` extension).
    Kick {
        /// Who goes.
        name: String,
        /// Why, as typed; empty for none (absent on the wire reads as empty).
        reason: String,
    },
    /// `/ban NAME [MINUTES]` (`ban` true) and `/unban NAME` (false) (the `moderation`
    /// extension): keeps `name` out of the sender's room, or lets it in again.
    Ban {
        /// Who.
        name: String,
        /// For how long; `None` until lifted (and for `/unban`).
        minutes: Option<i64>,
        /// Whether to ban (false: lift the ban).
        ban: bool,
    },
    /// Sets the topic of the sender's room (the `moderation` extension).
    Topic {
        /// The topic as typed.
        text: String,
    },
}

/// The kind of a [`Request`], without its data: a key for tables by kind (metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RequestKind {
    /// [`Request::Name`].
    Name = 0,
    /// [`Request::Rooms`].
    Rooms = 1,
    /// [`Request::CreateRoom`].
    CreateRoom = 2,
    /// [`Request::JoinRoom`].
    JoinRoom = 3,
    /// [`Request::LeaveRoom`].
    LeaveRoom = 4,
    /// [`Request::Chat`].
    Chat = 5,
    /// [`Request::Shutdown`].
    Shutdown = 6,
    /// [`Request::Hello`].
    Hello = 7,
    /// [`Request::Register`].
    Register = 8,
    /// [`Request::Login`].
    Login = 9,
    /// [`Request::Logout`].
    Logout = 10,
    /// [`Request::ChangePassword`].
    ChangePassword = 11,
    /// [`Request::History`].
    History = 12,
    /// [`Request::DeleteRoom`].
    DeleteRoom = 13,
    /// [`Request::Resume`].
    Resume = 14,
    /// [`Request::Direct`].
    Direct = 15,
    /// [`Request::Ignore`].
    Ignore = 16,
    /// [`Request::Op`].
    Op = 17,
    /// [`Request::Owner`].
    Owner = 18,
    /// [`Request::Kick`].
    Kick = 19,
    /// [`Request::Ban`].
    Ban = 20,
    /// [`Request::Topic`].
    Topic = 21,
}

impl RequestKind {
    /// How many kinds there are: the length of a table indexed by `kind as usize`.
    pub const COUNT: usize = 22;

    /// Every kind, in table order.
    pub const ALL: [RequestKind; Self::COUNT] = [
        RequestKind::Name,
        RequestKind::Rooms,
        RequestKind::CreateRoom,
        RequestKind::JoinRoom,
        RequestKind::LeaveRoom,
        RequestKind::Chat,
        RequestKind::Shutdown,
        RequestKind::Hello,
        RequestKind::Register,
        RequestKind::Login,
        RequestKind::Logout,
        RequestKind::ChangePassword,
        RequestKind::History,
        RequestKind::DeleteRoom,
        RequestKind::Resume,
        RequestKind::Direct,
        RequestKind::Ignore,
        RequestKind::Op,
        RequestKind::Owner,
        RequestKind::Kick,
        RequestKind::Ban,
        RequestKind::Topic,
    ];

    /// The JSON `type` string of this kind (also the protobuf message name).
    pub const fn name(self) -> &'static str {
        match self {
            RequestKind::Name => "CSName",
            RequestKind::Rooms => "CSRooms",
            RequestKind::CreateRoom => "CSCreateRoom",
            RequestKind::JoinRoom => "CSJoinRoom",
            RequestKind::LeaveRoom => "CSLeaveRoom",
            RequestKind::Chat => "CSChat",
            RequestKind::Shutdown => "CSShutdown",
            RequestKind::Hello => "CSHello",
            RequestKind::Register => "CSRegister",
            RequestKind::Login => "CSLogin",
            RequestKind::Logout => "CSLogout",
            RequestKind::ChangePassword => "CSPassword",
            RequestKind::History => "CSHistory",
            RequestKind::DeleteRoom => "CSDeleteRoom",
            RequestKind::Resume => "CSResume",
            RequestKind::Direct => "CSDirect",
            RequestKind::Ignore => "CSIgnore",
            RequestKind::Op => "CSOp",
            RequestKind::Owner => "CSOwner",
            RequestKind::Kick => "CSKick",
            RequestKind::Ban => "CSBan",
            RequestKind::Topic => "CSTopic",
        }
    }
}

impl Request {
    /// This request's kind.
    pub fn kind(&self) -> RequestKind {
        match self {
            Request::Name { .. } => RequestKind::Name,
            Request::Rooms => RequestKind::Rooms,
            Request::CreateRoom { .. } => RequestKind::CreateRoom,
            Request::JoinRoom { .. } => RequestKind::JoinRoom,
            Request::LeaveRoom => RequestKind::LeaveRoom,
            Request::Chat { .. } => RequestKind::Chat,
            Request::Shutdown => RequestKind::Shutdown,
            Request::Hello { .. } => RequestKind::Hello,
            Request::Register { .. } => RequestKind::Register,
            Request::Login { .. } => RequestKind::Login,
            Request::Logout => RequestKind::Logout,
            Request::ChangePassword { .. } => RequestKind::ChangePassword,
            Request::History { .. } => RequestKind::History,
            Request::DeleteRoom { .. } => RequestKind::DeleteRoom,
            Request::Resume { .. } => RequestKind::Resume,
            Request::Direct { .. } => RequestKind::Direct,
            Request::Ignore { .. } => RequestKind::Ignore,
            Request::Op { .. } => RequestKind::Op,
            Request::Owner { .. } => RequestKind::Owner,
            Request::Kick { .. } => RequestKind::Kick,
            Request::Ban { .. } => RequestKind::Ban,
            Request::Topic { .. } => RequestKind::Topic,
        }
    }
}

/// One room as listed by `/rooms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomInfo {
    /// The room's id, the number `/join` takes.
    pub room_id: i64,
    /// The title given at `/create`.
    pub title: String,
    /// Member names in join order.
    pub members: Vec<String>,
    /// The room's topic (the `moderation` extension); `None` when it has none or the
    /// listing is for a client that did not opt in. Only `Some` goes on the wire, so a
    /// listing without topics is what it was before the extension.
    pub topic: Option<String>,
}

/// One chat of a room's past, as `SCHistory` carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryLine {
    /// Its number in the room (increasing; a page before it starts below it).
    pub seq: i64,
    /// When the server took it, in milliseconds since the Unix epoch.
    pub time: i64,
    /// The sender's name then.
    pub member: String,
    /// The line.
    pub text: String,
}

/// A message from the server to a client.
///
/// Strings are `Cow` so that a server can encode borrowed text without copying it,
/// and a client can decode a JSON message without copying its strings out of the
/// frame ([`Response::into_owned`] keeps one past the frame's life).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response<'a> {
    /// A notice; the reference client prints it as `[시스템 메시지] <text>`.
    SystemMessage {
        /// The notice.
        text: Cow<'a, str>,
    },
    /// A chat line from `member`; printed as `[<member>] <text>`.
    Chat {
        /// The sender's nickname.
        member: Cow<'a, str>,
        /// The line the sender typed.
        text: Cow<'a, str>,
    },
    /// The answer to `/rooms`, ordered by id.
    RoomsResult {
        /// Every room, ordered by id.
        rooms: Vec<RoomInfo>,
    },
    /// The answer to [`Request::Hello`]: the features of the client's list that this
    /// server speaks (only those are used from now on), and the server's name and
    /// version. Sent only to a client that sent a hello.
    Hello {
        /// The features in force for this connection.
        features: Vec<String>,
        /// `chat-server/VERSION`.
        server: Cow<'a, str>,
    },
    /// A chat line with its number and time (the `history` extension): `SCChat` with
    /// two more fields, sent only to clients that opted in.
    TimedChat {
        /// The sender's nickname.
        member: Cow<'a, str>,
        /// The line the sender typed.
        text: Cow<'a, str>,
        /// Its number in the room.
        seq: i64,
        /// When the server took it, in milliseconds since the Unix epoch.
        time: i64,
    },
    /// A page of a room's past (the `history` extension), oldest first.
    History {
        /// The room.
        room_id: i64,
        /// The lines.
        lines: Vec<HistoryLine>,
        /// Older lines are kept (ask with `before` = the first line's `seq`).
        more: bool,
    },
    /// A token to log in again with ([`Request::Resume`]) without the password (the
    /// `resume` extension); sent to self after a login or registration.
    Session {
        /// The token (a secret, like a password).
        token: Cow<'a, str>,
        /// When it stops working, in milliseconds since the Unix epoch.
        expires: i64,
    },
    /// A direct message (the `direct` extension), sent only to a client that opted
    /// in: to its recipient, and to its sender as its own copy (`outgoing`).
    Direct {
        /// The other party: the sender (`outgoing` false) or, in the sender's own
        /// copy, the recipient (`outgoing` true).
        member: Cow<'a, str>,
        /// The line the sender typed.
        text: Cow<'a, str>,
        /// When the server took it, in milliseconds since the Unix epoch.
        time: i64,
        /// This is the sender's own copy of a message it sent to `member`.
        outgoing: bool,
    },
    /// A room's topic (the `moderation` extension), sent only to a client that opted
    /// in: on entering a room that has one, and to its members when it is set.
    Topic {
        /// The room.
        room_id: i64,
        /// The topic.
        topic: Cow<'a, str>,
        /// Who set it; empty when sent on entry.
        by: Cow<'a, str>,
    },
}

impl<'a> Response<'a> {
    /// A system message borrowing `text`.
    pub fn system(text: impl Into<Cow<'a, str>>) -> Self {
        Response::SystemMessage { text: text.into() }
    }

    /// The JSON `type` string of this response (also the protobuf message name).
    pub fn type_name(&self) -> &'static str {
        match self {
            Response::SystemMessage { .. } => "SCSystemMessage",
            Response::Chat { .. } => "SCChat",
            Response::RoomsResult { .. } => "SCRoomsResult",
            Response::Hello { .. } => "SCHello",
            Response::TimedChat { .. } => "SCChat",
            Response::History { .. } => "SCHistory",
            Response::Session { .. } => "SCSession",
            Response::Direct { .. } => "SCDirect",
            Response::Topic { .. } => "SCTopic",
        }
    }

    /// A copy that owns all its strings.
    pub fn into_owned(self) -> Response<'static> {
        match self {
            Response::SystemMessage { text } => Response::SystemMessage {
                text: Cow::Owned(text.into_owned()),
            },
            Response::Chat { member, text } => Response::Chat {
                member: Cow::Owned(member.into_owned()),
                text: Cow::Owned(text.into_owned()),
            },
            Response::RoomsResult { rooms } => Response::RoomsResult { rooms },
            Response::Hello { features, server } => Response::Hello {
                features,
                server: Cow::Owned(server.into_owned()),
            },
            Response::TimedChat {
                member,
                text,
                seq,
                time,
            } => Response::TimedChat {
                member: Cow::Owned(member.into_owned()),
                text: Cow::Owned(text.into_owned()),
                seq,
                time,
            },
            Response::History {
                room_id,
                lines,
                more,
            } => Response::History {
                room_id,
                lines,
                more,
            },
            Response::Session { token, expires } => Response::Session {
                token: Cow::Owned(token.into_owned()),
                expires,
            },
            Response::Direct {
                member,
                text,
                time,
                outgoing,
            } => Response::Direct {
                member: Cow::Owned(member.into_owned()),
                text: Cow::Owned(text.into_owned()),
                time,
                outgoing,
            },
            Response::Topic { room_id, topic, by } => Response::Topic {
                room_id,
                topic: Cow::Owned(topic.into_owned()),
                by: Cow::Owned(by.into_owned()),
            },
        }
    }
}

/// Whether `c` moves a terminal's cursor or changes how the rest of a line is shown:
/// C0/C1 controls, DEL, the line and paragraph separators, and the bidirectional
/// overrides and isolates. Such characters in text from one peer must never reach
/// another's terminal raw.
pub fn is_disruptive(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_index_their_table_slot() {
        for (index, kind) in RequestKind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, index);
        }
    }
}
