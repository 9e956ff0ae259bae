//! A server message encoded once, as shared bytes, for every recipient.
//!
//! [`Encoded`] holds a [`Response`] as whole frames in each wire format it was encoded
//! for, as [`Bytes`]: cloning one for a recipient only bumps a reference count, so a
//! chat to a 1,000-member room is encoded once per format and the *same* bytes are
//! queued 1,000 times. Copying into a socket happens only when a transport writes.
//!
//! This module encodes; it does not know recipients or rooms.

use bytes::Bytes;
use chat_proto::codec::encode_response;
use chat_proto::{EncodeError, Response, WireFormat};

/// The kinds of server → client message, for counting (`messages_out{type}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutKind {
    /// `SCSystemMessage`.
    System = 0,
    /// `SCChat`.
    Chat = 1,
    /// `SCRoomsResult`.
    Rooms = 2,
    /// `SCHello` (an extension, only for a client that said hello).
    Hello = 3,
    /// `SCHistory` (the `history` extension).
    History = 4,
    /// `SCSession` (the `resume` extension).
    Session = 5,
    /// `SCDirect` (the `direct` extension).
    Direct = 6,
    /// `SCTopic` (the `moderation` extension).
    Topic = 7,
}

impl OutKind {
    /// How many kinds there are: the length of a table indexed by `kind as usize`.
    pub const COUNT: usize = 8;

    /// Every kind, in table order.
    pub const ALL: [OutKind; Self::COUNT] = [
        OutKind::System,
        OutKind::Chat,
        OutKind::Rooms,
        OutKind::Hello,
        OutKind::History,
        OutKind::Session,
        OutKind::Direct,
        OutKind::Topic,
    ];

    /// The kind of `response`.
    pub fn of(response: &Response<'_>) -> Self {
        match response {
            Response::SystemMessage { .. } => OutKind::System,
            Response::Chat { .. } | Response::TimedChat { .. } => OutKind::Chat,
            Response::RoomsResult { .. } => OutKind::Rooms,
            Response::Hello { .. } => OutKind::Hello,
            Response::History { .. } => OutKind::History,
            Response::Session { .. } => OutKind::Session,
            Response::Direct { .. } => OutKind::Direct,
            Response::Topic { .. } => OutKind::Topic,
        }
    }

    /// The message's type name on the wire (`SCChat`, …).
    pub const fn name(self) -> &'static str {
        match self {
            OutKind::System => "SCSystemMessage",
            OutKind::Chat => "SCChat",
            OutKind::Rooms => "SCRoomsResult",
            OutKind::Hello => "SCHello",
            OutKind::History => "SCHistory",
            OutKind::Session => "SCSession",
            OutKind::Direct => "SCDirect",
            OutKind::Topic => "SCTopic",
        }
    }
}

/// One server message as whole frames (length headers included), per wire format.
#[derive(Debug, Clone)]
pub struct Encoded {
    kind: OutKind,
    /// Indexed by [`WireFormat::index`]; `None` for a format not encoded.
    frames: [Option<Bytes>; 2],
}

impl Encoded {
    /// `response` in both formats: for a broadcast, whose recipients may speak either.
    pub fn both(response: &Response<'_>) -> Result<Self, EncodeError> {
        Ok(Encoded {
            kind: OutKind::of(response),
            frames: [
                Some(encode(WireFormat::Json, response)?),
                Some(encode(WireFormat::Protobuf, response)?),
            ],
        })
    }

    /// `response` in `format` only: for a reply to one client.
    pub fn one(format: WireFormat, response: &Response<'_>) -> Result<Self, EncodeError> {
        let mut frames = [None, None];
        frames[format.index()] = Some(encode(format, response)?);
        Ok(Encoded {
            kind: OutKind::of(response),
            frames,
        })
    }

    /// A system message (a notice or a refusal) in both formats.
    ///
    /// System texts embed at most names and titles, which are length-checked, so they
    /// always fit a frame; should one not, the message is an empty text rather than
    /// none at all, so that a recipient still sees *that* something happened.
    pub fn notice(text: &str) -> Self {
        Self::both(&Response::system(text))
            .or_else(|_| Self::both(&Response::system("")))
            .expect("an empty system message always fits a frame")
    }

    /// A system message in `format` only (see [`Encoded::notice`] on size).
    pub fn notice_for(format: WireFormat, text: &str) -> Self {
        Self::one(format, &Response::system(text))
            .or_else(|_| Self::one(format, &Response::system("")))
            .expect("an empty system message always fits a frame")
    }

    /// What kind of message this is.
    pub fn kind(&self) -> OutKind {
        self.kind
    }

    /// The frames in `format`, if it was encoded.
    pub fn frames(&self, format: WireFormat) -> Option<&Bytes> {
        self.frames[format.index()].as_ref()
    }
}

fn encode(format: WireFormat, response: &Response<'_>) -> Result<Bytes, EncodeError> {
    let mut buf = Vec::new();
    encode_response(format, response, &mut buf)?;
    // Takes the vector's allocation as it is: no copy.
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_share_nothing_but_the_message() {
        let encoded = Encoded::both(&Response::Chat {
            member: "a".into(),
            text: "hi".into(),
        })
        .unwrap();
        assert_eq!(encoded.kind(), OutKind::Chat);
        let json = encoded.frames(WireFormat::Json).unwrap();
        assert_eq!(
            &json[..],
            b"\x00\x2f{\"type\": \"SCChat\", \"member\": \"a\", \"text\": \"hi\"}"
        );
        let protobuf = encoded.frames(WireFormat::Protobuf).unwrap();
        assert_eq!(&protobuf[..4], b"\x00\x02\x08\x08", "Type frame SC_CHAT");
    }

    #[test]
    fn clones_share_the_bytes() {
        let encoded = Encoded::notice("x");
        let a = encoded.frames(WireFormat::Json).unwrap().clone();
        let b = encoded.frames(WireFormat::Json).unwrap().clone();
        assert_eq!(a.as_ptr(), b.as_ptr(), "one allocation, two handles");
    }

    #[test]
    fn a_reply_is_encoded_in_its_format_only() {
        let encoded = Encoded::notice_for(WireFormat::Protobuf, "x");
        assert!(encoded.frames(WireFormat::Json).is_none());
        assert!(encoded.frames(WireFormat::Protobuf).is_some());
    }

    #[test]
    fn an_oversized_notice_becomes_an_empty_one() {
        let encoded = Encoded::notice(&"x".repeat(70_000));
        let json = encoded.frames(WireFormat::Json).unwrap();
        assert!(json.len() < 100, "{}", json.len());
    }
}
