//! The protobuf format (proto2, package `mju`): each message is a `Type` frame, then
//! the body frame of that type.
//!
//! The message types mirror `proto/message.proto`, written by hand with prost's derive
//! macros so no system `protoc` is needed. Every field is declared `optional` here even
//! where the schema says `required`: the bytes on the wire are the same, and it gives
//! us presence on decode, so a missing required field is reported instead of silently
//! read as a default. When encoding, required fields are always set.
//!
//! The two responses on the hot path (`SCChat`, `SCSystemMessage`) are encoded by hand
//! from borrowed strings, avoiding the copies prost's owned structs would need; a test
//! checks the bytes match prost's.

use prost::Message;
use prost::encoding::encode_varint;

use super::{DecodeError, EncodeError};
use crate::frame;
use crate::message::{HistoryLine, Request, Response, RoomInfo};

/// `mju.Type.MessageType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MessageType {
    /// `CS_NAME`: the body is a [`CsName`].
    CsName = 0,
    /// `CS_ROOMS`: the body is [`Empty`].
    CsRooms = 1,
    /// `CS_CREATE_ROOM`: the body is a [`CsCreateRoom`].
    CsCreateRoom = 2,
    /// `CS_JOIN_ROOM`: the body is a [`CsJoinRoom`].
    CsJoinRoom = 3,
    /// `CS_LEAVE_ROOM`: the body is [`Empty`].
    CsLeaveRoom = 4,
    /// `CS_CHAT`: the body is a [`CsChat`].
    CsChat = 5,
    /// `CS_SHUTDOWN`: the body is [`Empty`].
    CsShutdown = 6,
    /// `SC_ROOMS_RESULT`: the body is an [`ScRoomsResult`].
    ScRoomsResult = 7,
    /// `SC_CHAT`: the body is an [`ScChat`].
    ScChat = 8,
    /// `SC_SYSTEM_MESSAGE`: the body is an [`ScSystemMessage`].
    ScSystemMessage = 9,
    /// `CS_HELLO`: the body is a [`CsHello`] (an extension: docs/PROTOCOL.md §7).
    CsHello = 10,
    /// `SC_HELLO`: the body is an [`ScHello`] (an extension).
    ScHello = 11,
    /// `CS_REGISTER`: the body is a [`CsRegister`] (the `accounts` extension).
    CsRegister = 12,
    /// `CS_LOGIN`: the body is a [`CsLogin`] (the `accounts` extension).
    CsLogin = 13,
    /// `CS_LOGOUT`: the body is [`Empty`] (the `accounts` extension).
    CsLogout = 14,
    /// `CS_PASSWORD`: the body is a [`CsPassword`] (the `accounts` extension).
    CsPassword = 15,
    /// `CS_HISTORY`: the body is a [`CsHistory`] (the `history` extension).
    CsHistory = 16,
    /// `SC_HISTORY`: the body is an [`ScHistory`] (the `history` extension).
    ScHistory = 17,
    /// `CS_DELETE_ROOM`: the body is a [`CsJoinRoom`]-shaped `CSDeleteRoom` (the
    /// `accounts` extension).
    CsDeleteRoom = 18,
    /// `CS_RESUME`: the body is a [`CsResume`] (the `resume` extension).
    CsResume = 19,
    /// `SC_SESSION`: the body is an [`ScSession`] (the `resume` extension).
    ScSession = 20,
    /// `CS_DIRECT`: the body is a [`CsDirect`] (the `direct` extension).
    CsDirect = 21,
    /// `CS_IGNORE`: the body is a [`CsIgnore`] (the `direct` extension).
    CsIgnore = 22,
    /// `SC_DIRECT`: the body is an [`ScDirect`] (the `direct` extension).
    ScDirect = 23,
    /// `CS_OP`: the body is a [`CsOp`] (the `moderation` extension).
    CsOp = 24,
    /// `CS_OWNER`: the body is a [`CsOwner`] (the `moderation` extension).
    CsOwner = 25,
    /// `CS_KICK`: the body is a [`CsKick`] (the `moderation` extension).
    CsKick = 26,
    /// `CS_BAN`: the body is a [`CsBan`] (the `moderation` extension).
    CsBan = 27,
    /// `CS_TOPIC`: the body is a [`CsTopic`] (the `moderation` extension).
    CsTopic = 28,
    /// `SC_TOPIC`: the body is an [`ScTopic`] (the `moderation` extension).
    ScTopic = 29,
}

/// `mju.Type`: the frame in front of every body.
#[derive(Clone, PartialEq, Message)]
pub struct Type {
    /// The body's [`MessageType`] as a number (required; unknown numbers still decode).
    #[prost(enumeration = "MessageType", optional, tag = "1")]
    pub r#type: Option<i32>,
}

/// `mju.CSName`.
#[derive(Clone, PartialEq, Message)]
pub struct CsName {
    /// The new nickname (required).
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
}

/// `mju.CSCreateRoom`.
#[derive(Clone, PartialEq, Message)]
pub struct CsCreateRoom {
    /// The new room's title (optional; absent reads as empty).
    #[prost(string, optional, tag = "1")]
    pub title: Option<String>,
}

/// `mju.CSJoinRoom`.
#[derive(Clone, PartialEq, Message)]
pub struct CsJoinRoom {
    /// The id of the room to enter (required).
    #[prost(int32, optional, tag = "1")]
    pub room_id: Option<i32>,
}

/// `mju.CSChat`.
#[derive(Clone, PartialEq, Message)]
pub struct CsChat {
    /// The chat line (required).
    #[prost(string, optional, tag = "1")]
    pub text: Option<String>,
}

/// `mju.CSHello`.
#[derive(Clone, PartialEq, Message)]
pub struct CsHello {
    /// The features the client understands.
    #[prost(string, repeated, tag = "1")]
    pub features: Vec<String>,
}

/// `mju.SCHello`.
#[derive(Clone, PartialEq, Message)]
pub struct ScHello {
    /// The features in force.
    #[prost(string, repeated, tag = "1")]
    pub features: Vec<String>,
    /// The server's name and version (required).
    #[prost(string, optional, tag = "2")]
    pub server: Option<String>,
}

/// `mju.CSRegister`.
#[derive(Clone, PartialEq, Message)]
pub struct CsRegister {
    /// The password (required).
    #[prost(string, optional, tag = "1")]
    pub password: Option<String>,
}

/// `mju.CSLogin`.
#[derive(Clone, PartialEq, Message)]
pub struct CsLogin {
    /// The account's name (required).
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// Its password (required).
    #[prost(string, optional, tag = "2")]
    pub password: Option<String>,
}

/// `mju.CSPassword`.
#[derive(Clone, PartialEq, Message)]
pub struct CsPassword {
    /// The password now (required).
    #[prost(string, optional, tag = "1")]
    pub old: Option<String>,
    /// The new one (required).
    #[prost(string, optional, tag = "2")]
    pub new: Option<String>,
}

/// `mju.CSRooms`, `mju.CSLeaveRoom`, `mju.CSShutdown`, `mju.CSLogout`: no fields.
#[derive(Clone, PartialEq, Message)]
pub struct Empty {}

/// `mju.SCRoomsResult.RoomInfo`.
#[derive(Clone, PartialEq, Message)]
pub struct ScRoomInfo {
    /// The room's id (required).
    #[prost(int32, optional, tag = "1")]
    pub room_id: Option<i32>,
    /// The room's title (absent reads as empty).
    #[prost(string, optional, tag = "2")]
    pub title: Option<String>,
    /// Member names in join order.
    #[prost(string, repeated, tag = "3")]
    pub members: Vec<String>,
    /// The room's topic (the `moderation` extension; absent when none).
    #[prost(string, optional, tag = "4")]
    pub topic: Option<String>,
}

/// `mju.SCRoomsResult`.
#[derive(Clone, PartialEq, Message)]
pub struct ScRoomsResult {
    /// Every room, ordered by id.
    #[prost(message, repeated, tag = "1")]
    pub rooms: Vec<ScRoomInfo>,
}

/// `mju.SCChat`.
#[derive(Clone, PartialEq, Message)]
pub struct ScChat {
    /// The sender's nickname (required).
    #[prost(string, optional, tag = "1")]
    pub member: Option<String>,
    /// The chat line (required).
    #[prost(string, optional, tag = "2")]
    pub text: Option<String>,
    /// Its number in the room (the `history` extension only).
    #[prost(int64, optional, tag = "3")]
    pub seq: Option<i64>,
    /// When the server took it, ms since the Unix epoch (the `history` extension).
    #[prost(int64, optional, tag = "4")]
    pub time: Option<i64>,
}

/// `mju.CSResume`.
#[derive(Clone, PartialEq, Message)]
pub struct CsResume {
    /// The account's name (required).
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// The token (required).
    #[prost(string, optional, tag = "2")]
    pub token: Option<String>,
}

/// `mju.SCSession`.
#[derive(Clone, PartialEq, Message)]
pub struct ScSession {
    /// The token (required).
    #[prost(string, optional, tag = "1")]
    pub token: Option<String>,
    /// When it stops working, ms since the Unix epoch (required).
    #[prost(int64, optional, tag = "2")]
    pub expires: Option<i64>,
}

/// `mju.CSDirect`.
#[derive(Clone, PartialEq, Message)]
pub struct CsDirect {
    /// The recipient's name (required).
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// The line (required).
    #[prost(string, optional, tag = "2")]
    pub text: Option<String>,
}

/// `mju.CSIgnore`.
#[derive(Clone, PartialEq, Message)]
pub struct CsIgnore {
    /// The name (required).
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// Ignore it (true) or stop (false; absent reads as false).
    #[prost(bool, optional, tag = "2")]
    pub ignore: Option<bool>,
}

/// `mju.SCDirect`.
#[derive(Clone, PartialEq, Message)]
pub struct ScDirect {
    /// The other party: the sender, or the recipient in the sender's copy (required).
    #[prost(string, optional, tag = "1")]
    pub member: Option<String>,
    /// The line (required).
    #[prost(string, optional, tag = "2")]
    pub text: Option<String>,
    /// When the server took it, ms since the Unix epoch (required).
    #[prost(int64, optional, tag = "3")]
    pub time: Option<i64>,
    /// The sender's own copy (absent reads as false).
    #[prost(bool, optional, tag = "4")]
    pub outgoing: Option<bool>,
}

/// `mju.CSOp`.
#[derive(Clone, PartialEq, Message)]
pub struct CsOp {
    /// The account (required).
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// Make it an operator (true) or stop (false; absent reads as false).
    #[prost(bool, optional, tag = "2")]
    pub op: Option<bool>,
}

/// `mju.CSOwner`.
#[derive(Clone, PartialEq, Message)]
pub struct CsOwner {
    /// The new owner (required).
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
}

/// `mju.CSKick`.
#[derive(Clone, PartialEq, Message)]
pub struct CsKick {
    /// Who goes (required).
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// Why (absent reads as empty).
    #[prost(string, optional, tag = "2")]
    pub reason: Option<String>,
}

/// `mju.CSBan`.
#[derive(Clone, PartialEq, Message)]
pub struct CsBan {
    /// Who (required).
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// For how many minutes (absent: until lifted).
    #[prost(int64, optional, tag = "2")]
    pub minutes: Option<i64>,
    /// Ban (true) or lift the ban (false; absent reads as false).
    #[prost(bool, optional, tag = "3")]
    pub ban: Option<bool>,
}

/// `mju.CSTopic`.
#[derive(Clone, PartialEq, Message)]
pub struct CsTopic {
    /// The topic (required).
    #[prost(string, optional, tag = "1")]
    pub text: Option<String>,
}

/// `mju.SCTopic`.
#[derive(Clone, PartialEq, Message)]
pub struct ScTopic {
    /// The room (required).
    #[prost(int64, optional, tag = "1")]
    pub room_id: Option<i64>,
    /// The topic (required).
    #[prost(string, optional, tag = "2")]
    pub topic: Option<String>,
    /// Who set it (absent reads as empty: sent on entry).
    #[prost(string, optional, tag = "3")]
    pub by: Option<String>,
}

/// `mju.CSHistory`.
#[derive(Clone, PartialEq, Message)]
pub struct CsHistory {
    /// How many lines (optional).
    #[prost(int32, optional, tag = "1")]
    pub count: Option<i32>,
    /// Lines before this number (optional).
    #[prost(int64, optional, tag = "2")]
    pub before: Option<i64>,
}

/// `mju.SCHistory.Line`.
#[derive(Clone, PartialEq, Message)]
pub struct ScHistoryLine {
    /// Its number (required).
    #[prost(int64, optional, tag = "1")]
    pub seq: Option<i64>,
    /// Its time, ms since the Unix epoch (required).
    #[prost(int64, optional, tag = "2")]
    pub time: Option<i64>,
    /// The sender's name (required).
    #[prost(string, optional, tag = "3")]
    pub member: Option<String>,
    /// The line (required).
    #[prost(string, optional, tag = "4")]
    pub text: Option<String>,
}

/// `mju.SCHistory`.
#[derive(Clone, PartialEq, Message)]
pub struct ScHistory {
    /// The room (required).
    #[prost(int32, optional, tag = "1")]
    pub room_id: Option<i32>,
    /// The lines, oldest first.
    #[prost(message, repeated, tag = "2")]
    pub lines: Vec<ScHistoryLine>,
    /// Older lines are kept.
    #[prost(bool, optional, tag = "3")]
    pub more: Option<bool>,
}

/// `mju.SCSystemMessage`.
#[derive(Clone, PartialEq, Message)]
pub struct ScSystemMessage {
    /// The notice (required).
    #[prost(string, optional, tag = "1")]
    pub text: Option<String>,
}

/// The name of a type number, for error texts.
fn type_name(kind: i32) -> &'static str {
    match MessageType::try_from(kind) {
        Ok(MessageType::CsName) => "CSName",
        Ok(MessageType::CsRooms) => "CSRooms",
        Ok(MessageType::CsCreateRoom) => "CSCreateRoom",
        Ok(MessageType::CsJoinRoom) => "CSJoinRoom",
        Ok(MessageType::CsLeaveRoom) => "CSLeaveRoom",
        Ok(MessageType::CsChat) => "CSChat",
        Ok(MessageType::CsShutdown) => "CSShutdown",
        Ok(MessageType::ScRoomsResult) => "SCRoomsResult",
        Ok(MessageType::ScChat) => "SCChat",
        Ok(MessageType::ScSystemMessage) => "SCSystemMessage",
        Ok(MessageType::CsHello) => "CSHello",
        Ok(MessageType::ScHello) => "SCHello",
        Ok(MessageType::CsRegister) => "CSRegister",
        Ok(MessageType::CsLogin) => "CSLogin",
        Ok(MessageType::CsLogout) => "CSLogout",
        Ok(MessageType::CsPassword) => "CSPassword",
        Ok(MessageType::CsHistory) => "CSHistory",
        Ok(MessageType::ScHistory) => "SCHistory",
        Ok(MessageType::CsDeleteRoom) => "CSDeleteRoom",
        Ok(MessageType::CsResume) => "CSResume",
        Ok(MessageType::ScSession) => "SCSession",
        Ok(MessageType::CsDirect) => "CSDirect",
        Ok(MessageType::CsIgnore) => "CSIgnore",
        Ok(MessageType::ScDirect) => "SCDirect",
        Ok(MessageType::CsOp) => "CSOp",
        Ok(MessageType::CsOwner) => "CSOwner",
        Ok(MessageType::CsKick) => "CSKick",
        Ok(MessageType::CsBan) => "CSBan",
        Ok(MessageType::CsTopic) => "CSTopic",
        Ok(MessageType::ScTopic) => "SCTopic",
        Err(_) => "?",
    }
}

/// Decodes a `Type` frame into its type number (not yet checked against a direction).
pub(super) fn decode_type(payload: &[u8]) -> Result<i32, DecodeError> {
    let decoded =
        Type::decode(payload).map_err(|e| DecodeError::InvalidTypeFrame(e.to_string()))?;
    decoded
        .r#type
        .ok_or_else(|| DecodeError::InvalidTypeFrame("type 필드가 없습니다".to_owned()))
}

fn body<M: Message + Default>(kind: i32, payload: &[u8]) -> Result<M, DecodeError> {
    M::decode(payload).map_err(|e| DecodeError::InvalidBody {
        message: type_name(kind),
        detail: e.to_string(),
    })
}

fn required<T>(value: Option<T>, kind: i32, field: &'static str) -> Result<T, DecodeError> {
    value.ok_or(DecodeError::MissingField {
        message: type_name(kind),
        field,
    })
}

pub(super) fn decode_request(kind: i32, payload: &[u8]) -> Result<Request, DecodeError> {
    let Ok(message_type) = MessageType::try_from(kind) else {
        return Err(DecodeError::UnknownType(kind.to_string()));
    };
    Ok(match message_type {
        MessageType::CsName => Request::Name {
            name: required(body::<CsName>(kind, payload)?.name, kind, "name")?,
        },
        MessageType::CsRooms => {
            body::<Empty>(kind, payload)?;
            Request::Rooms
        }
        // `title` is optional in the schema; absent means empty (refused later).
        MessageType::CsCreateRoom => Request::CreateRoom {
            title: body::<CsCreateRoom>(kind, payload)?
                .title
                .unwrap_or_default(),
        },
        MessageType::CsJoinRoom => Request::JoinRoom {
            room_id: required(body::<CsJoinRoom>(kind, payload)?.room_id, kind, "roomId")?.into(),
        },
        MessageType::CsLeaveRoom => {
            body::<Empty>(kind, payload)?;
            Request::LeaveRoom
        }
        MessageType::CsChat => Request::Chat {
            text: required(body::<CsChat>(kind, payload)?.text, kind, "text")?,
        },
        MessageType::CsShutdown => {
            body::<Empty>(kind, payload)?;
            Request::Shutdown
        }
        MessageType::CsHello => Request::Hello {
            features: body::<CsHello>(kind, payload)?.features,
        },
        MessageType::CsRegister => Request::Register {
            password: required(
                body::<CsRegister>(kind, payload)?.password,
                kind,
                "password",
            )?,
        },
        MessageType::CsLogin => {
            let m = body::<CsLogin>(kind, payload)?;
            Request::Login {
                name: required(m.name, kind, "name")?,
                password: required(m.password, kind, "password")?,
            }
        }
        MessageType::CsLogout => {
            body::<Empty>(kind, payload)?;
            Request::Logout
        }
        MessageType::CsPassword => {
            let m = body::<CsPassword>(kind, payload)?;
            Request::ChangePassword {
                old: required(m.old, kind, "old")?,
                new: required(m.new, kind, "new")?,
            }
        }
        // CSDeleteRoom has CSJoinRoom's one field: `roomId = 1`.
        MessageType::CsDeleteRoom => Request::DeleteRoom {
            room_id: required(body::<CsJoinRoom>(kind, payload)?.room_id, kind, "roomId")?.into(),
        },
        MessageType::CsResume => {
            let m = body::<CsResume>(kind, payload)?;
            Request::Resume {
                name: required(m.name, kind, "name")?,
                token: required(m.token, kind, "token")?,
            }
        }
        MessageType::CsDirect => {
            let m = body::<CsDirect>(kind, payload)?;
            Request::Direct {
                name: required(m.name, kind, "name")?,
                text: required(m.text, kind, "text")?,
            }
        }
        // `ignore` is optional in the schema; absent means false (`/unignore`).
        MessageType::CsIgnore => {
            let m = body::<CsIgnore>(kind, payload)?;
            Request::Ignore {
                name: required(m.name, kind, "name")?,
                ignore: m.ignore.unwrap_or(false),
            }
        }
        // `op` is optional in the schema; absent means false (`/deop`).
        MessageType::CsOp => {
            let m = body::<CsOp>(kind, payload)?;
            Request::Op {
                name: required(m.name, kind, "name")?,
                op: m.op.unwrap_or(false),
            }
        }
        MessageType::CsOwner => Request::Owner {
            name: required(body::<CsOwner>(kind, payload)?.name, kind, "name")?,
        },
        // `reason` is optional in the schema; absent means none (empty).
        MessageType::CsKick => {
            let m = body::<CsKick>(kind, payload)?;
            Request::Kick {
                name: required(m.name, kind, "name")?,
                reason: m.reason.unwrap_or_default(),
            }
        }
        // `minutes` absent: until lifted; `ban` absent means false (`/unban`).
        MessageType::CsBan => {
            let m = body::<CsBan>(kind, payload)?;
            Request::Ban {
                name: required(m.name, kind, "name")?,
                minutes: m.minutes,
                ban: m.ban.unwrap_or(false),
            }
        }
        MessageType::CsTopic => Request::Topic {
            text: required(body::<CsTopic>(kind, payload)?.text, kind, "text")?,
        },
        MessageType::CsHistory => {
            let m = body::<CsHistory>(kind, payload)?;
            Request::History {
                count: m.count.map(i64::from),
                before: m.before,
            }
        }
        MessageType::ScRoomsResult
        | MessageType::ScChat
        | MessageType::ScSystemMessage
        | MessageType::ScHello
        | MessageType::ScHistory
        | MessageType::ScSession
        | MessageType::ScDirect
        | MessageType::ScTopic => {
            return Err(DecodeError::UnknownType(format!(
                "{kind} ({})",
                type_name(kind)
            )));
        }
    })
}

pub(super) fn decode_response(kind: i32, payload: &[u8]) -> Result<Response<'static>, DecodeError> {
    match MessageType::try_from(kind) {
        Ok(MessageType::ScSystemMessage) => {
            let m = body::<ScSystemMessage>(kind, payload)?;
            Ok(Response::system(required(m.text, kind, "text")?))
        }
        Ok(MessageType::ScChat) => {
            let m = body::<ScChat>(kind, payload)?;
            let member = required(m.member, kind, "member")?.into();
            let text = required(m.text, kind, "text")?.into();
            Ok(match (m.seq, m.time) {
                (Some(seq), Some(time)) => Response::TimedChat {
                    member,
                    text,
                    seq,
                    time,
                },
                _ => Response::Chat { member, text },
            })
        }
        Ok(MessageType::ScHistory) => {
            let m = body::<ScHistory>(kind, payload)?;
            let lines = m
                .lines
                .into_iter()
                .map(|l| {
                    Ok(HistoryLine {
                        seq: required(l.seq, kind, "seq")?,
                        time: required(l.time, kind, "time")?,
                        member: required(l.member, kind, "member")?,
                        text: required(l.text, kind, "text")?,
                    })
                })
                .collect::<Result<_, DecodeError>>()?;
            Ok(Response::History {
                room_id: required(m.room_id, kind, "roomId")?.into(),
                lines,
                more: m.more.unwrap_or(false),
            })
        }
        Ok(MessageType::ScRoomsResult) => {
            let m = body::<ScRoomsResult>(kind, payload)?;
            let rooms = m
                .rooms
                .into_iter()
                .map(|r| {
                    Ok(RoomInfo {
                        room_id: required(r.room_id, kind, "roomId")?.into(),
                        title: r.title.unwrap_or_default(),
                        members: r.members,
                        topic: r.topic,
                    })
                })
                .collect::<Result<_, DecodeError>>()?;
            Ok(Response::RoomsResult { rooms })
        }
        Ok(MessageType::ScHello) => {
            let m = body::<ScHello>(kind, payload)?;
            Ok(Response::Hello {
                features: m.features,
                server: required(m.server, kind, "server")?.into(),
            })
        }
        Ok(MessageType::ScSession) => {
            let m = body::<ScSession>(kind, payload)?;
            Ok(Response::Session {
                token: required(m.token, kind, "token")?.into(),
                expires: required(m.expires, kind, "expires")?,
            })
        }
        Ok(MessageType::ScDirect) => {
            let m = body::<ScDirect>(kind, payload)?;
            Ok(Response::Direct {
                member: required(m.member, kind, "member")?.into(),
                text: required(m.text, kind, "text")?.into(),
                time: required(m.time, kind, "time")?,
                outgoing: m.outgoing.unwrap_or(false),
            })
        }
        Ok(MessageType::ScTopic) => {
            let m = body::<ScTopic>(kind, payload)?;
            Ok(Response::Topic {
                room_id: required(m.room_id, kind, "roomId")?,
                topic: required(m.topic, kind, "topic")?.into(),
                by: m.by.unwrap_or_default().into(),
            })
        }
        _ => Err(DecodeError::UnknownType(kind.to_string())),
    }
}

/// Appends the `Type` frame for `kind`: always `00 02 08 0N` (proto2 keeps explicit
/// presence, so even `CS_NAME = 0` is written).
fn type_frame(kind: MessageType, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0, 2, 0x08, kind as u8]);
}

/// Appends a body frame encoded by prost.
fn prost_frame(message: &impl Message, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = frame::begin_frame(out);
    message
        .encode(out)
        .expect("a Vec<u8> grows as needed, so encoding into it cannot run out of space");
    Ok(frame::finish_frame(out, start)?)
}

/// Appends a length-delimited string field (wire type 2).
fn string_field(out: &mut Vec<u8>, tag: u32, value: &str) {
    encode_varint(u64::from(tag << 3 | 2), out);
    encode_varint(value.len() as u64, out);
    out.extend_from_slice(value.as_bytes());
}

pub(super) fn encode_request(request: &Request, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match request {
        Request::Name { name } => {
            type_frame(MessageType::CsName, out);
            prost_frame(
                &CsName {
                    name: Some(name.clone()),
                },
                out,
            )
        }
        Request::Rooms => {
            type_frame(MessageType::CsRooms, out);
            prost_frame(&Empty {}, out)
        }
        Request::CreateRoom { title } => {
            type_frame(MessageType::CsCreateRoom, out);
            prost_frame(
                &CsCreateRoom {
                    title: Some(title.clone()),
                },
                out,
            )
        }
        Request::JoinRoom { room_id } => {
            type_frame(MessageType::CsJoinRoom, out);
            // The schema's field is int32; larger ids saturate (no such room exists).
            let room_id = Some(saturate_i32(*room_id));
            prost_frame(&CsJoinRoom { room_id }, out)
        }
        Request::Resume { name, token } => {
            type_frame(MessageType::CsResume, out);
            prost_frame(
                &CsResume {
                    name: Some(name.clone()),
                    token: Some(token.clone()),
                },
                out,
            )
        }
        Request::Direct { name, text } => {
            type_frame(MessageType::CsDirect, out);
            prost_frame(
                &CsDirect {
                    name: Some(name.clone()),
                    text: Some(text.clone()),
                },
                out,
            )
        }
        Request::Ignore { name, ignore } => {
            type_frame(MessageType::CsIgnore, out);
            prost_frame(
                &CsIgnore {
                    name: Some(name.clone()),
                    ignore: Some(*ignore),
                },
                out,
            )
        }
        Request::Op { name, op } => {
            type_frame(MessageType::CsOp, out);
            prost_frame(
                &CsOp {
                    name: Some(name.clone()),
                    op: Some(*op),
                },
                out,
            )
        }
        Request::Owner { name } => {
            type_frame(MessageType::CsOwner, out);
            prost_frame(
                &CsOwner {
                    name: Some(name.clone()),
                },
                out,
            )
        }
        Request::Kick { name, reason } => {
            type_frame(MessageType::CsKick, out);
            prost_frame(
                &CsKick {
                    name: Some(name.clone()),
                    reason: Some(reason.clone()),
                },
                out,
            )
        }
        Request::Ban { name, minutes, ban } => {
            type_frame(MessageType::CsBan, out);
            prost_frame(
                &CsBan {
                    name: Some(name.clone()),
                    minutes: *minutes,
                    ban: Some(*ban),
                },
                out,
            )
        }
        Request::Topic { text } => {
            type_frame(MessageType::CsTopic, out);
            prost_frame(
                &CsTopic {
                    text: Some(text.clone()),
                },
                out,
            )
        }
        Request::DeleteRoom { room_id } => {
            type_frame(MessageType::CsDeleteRoom, out);
            let room_id = Some(saturate_i32(*room_id));
            prost_frame(&CsJoinRoom { room_id }, out)
        }
        Request::LeaveRoom => {
            type_frame(MessageType::CsLeaveRoom, out);
            prost_frame(&Empty {}, out)
        }
        Request::Chat { text } => {
            type_frame(MessageType::CsChat, out);
            prost_frame(
                &CsChat {
                    text: Some(text.clone()),
                },
                out,
            )
        }
        Request::Shutdown => {
            type_frame(MessageType::CsShutdown, out);
            prost_frame(&Empty {}, out)
        }
        Request::Hello { features } => {
            type_frame(MessageType::CsHello, out);
            prost_frame(
                &CsHello {
                    features: features.clone(),
                },
                out,
            )
        }
        Request::Register { password } => {
            type_frame(MessageType::CsRegister, out);
            prost_frame(
                &CsRegister {
                    password: Some(password.clone()),
                },
                out,
            )
        }
        Request::Login { name, password } => {
            type_frame(MessageType::CsLogin, out);
            prost_frame(
                &CsLogin {
                    name: Some(name.clone()),
                    password: Some(password.clone()),
                },
                out,
            )
        }
        Request::Logout => {
            type_frame(MessageType::CsLogout, out);
            prost_frame(&Empty {}, out)
        }
        Request::History { count, before } => {
            type_frame(MessageType::CsHistory, out);
            let history = CsHistory {
                count: count.map(saturate_i32),
                before: *before,
            };
            prost_frame(&history, out)
        }
        Request::ChangePassword { old, new } => {
            type_frame(MessageType::CsPassword, out);
            prost_frame(
                &CsPassword {
                    old: Some(old.clone()),
                    new: Some(new.clone()),
                },
                out,
            )
        }
    }
}

pub(super) fn encode_response(
    response: &Response<'_>,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    match response {
        Response::SystemMessage { text } => {
            type_frame(MessageType::ScSystemMessage, out);
            let start = frame::begin_frame(out);
            string_field(out, 1, text);
            Ok(frame::finish_frame(out, start)?)
        }
        Response::Chat { member, text } => {
            type_frame(MessageType::ScChat, out);
            let start = frame::begin_frame(out);
            string_field(out, 1, member);
            string_field(out, 2, text);
            Ok(frame::finish_frame(out, start)?)
        }
        Response::RoomsResult { rooms } => {
            type_frame(MessageType::ScRoomsResult, out);
            let rooms = rooms
                .iter()
                .map(|room| ScRoomInfo {
                    room_id: Some(saturate_i32(room.room_id)),
                    title: Some(room.title.clone()),
                    members: room.members.clone(),
                    // Only when set, so a listing without topics keeps its old bytes.
                    topic: room.topic.clone(),
                })
                .collect();
            prost_frame(&ScRoomsResult { rooms }, out)
        }
        Response::TimedChat {
            member,
            text,
            seq,
            time,
        } => {
            type_frame(MessageType::ScChat, out);
            let start = frame::begin_frame(out);
            string_field(out, 1, member);
            string_field(out, 2, text);
            // int64 fields 3 and 4: varints of the two's-complement value.
            for (tag, value) in [(3u32, seq), (4, time)] {
                encode_varint(u64::from(tag << 3), out);
                encode_varint(*value as u64, out);
            }
            Ok(frame::finish_frame(out, start)?)
        }
        Response::History {
            room_id,
            lines,
            more,
        } => {
            type_frame(MessageType::ScHistory, out);
            let history = ScHistory {
                room_id: Some(saturate_i32(*room_id)),
                lines: lines
                    .iter()
                    .map(|l| ScHistoryLine {
                        seq: Some(l.seq),
                        time: Some(l.time),
                        member: Some(l.member.clone()),
                        text: Some(l.text.clone()),
                    })
                    .collect(),
                more: Some(*more),
            };
            prost_frame(&history, out)
        }
        Response::Hello { features, server } => {
            type_frame(MessageType::ScHello, out);
            let hello = ScHello {
                features: features.clone(),
                server: Some(server.to_string()),
            };
            prost_frame(&hello, out)
        }
        Response::Session { token, expires } => {
            type_frame(MessageType::ScSession, out);
            let session = ScSession {
                token: Some(token.to_string()),
                expires: Some(*expires),
            };
            prost_frame(&session, out)
        }
        Response::Direct {
            member,
            text,
            time,
            outgoing,
        } => {
            type_frame(MessageType::ScDirect, out);
            let direct = ScDirect {
                member: Some(member.to_string()),
                text: Some(text.to_string()),
                time: Some(*time),
                outgoing: Some(*outgoing),
            };
            prost_frame(&direct, out)
        }
        Response::Topic { room_id, topic, by } => {
            type_frame(MessageType::ScTopic, out);
            let topic = ScTopic {
                room_id: Some(*room_id),
                topic: Some(topic.to_string()),
                by: Some(by.to_string()),
            };
            prost_frame(&topic, out)
        }
    }
}

fn saturate_i32(value: i64) -> i32 {
    i32::try_from(value).unwrap_or(if value < 0 { i32::MIN } else { i32::MAX })
}
