//! The chat protocol, without I/O: everything a server, a client or a load generator
//! needs to speak it, and nothing that touches a socket or a thread.
//!
//! # Layout
//!
//! * [`frame`] — bytes ↔ frames: a 2-byte big-endian length, then the payload
//!   (zero-length frames are legal, 65,535 bytes at most).
//! * [`message`] — the typed model: [`Request`] (client → server) and [`Response`]
//!   (server → client), one of each whatever the wire format.
//! * [`codec`] — frames ↔ messages in JSON or protobuf, format detection from a
//!   connection's first frame, and decoders that keep protobuf's two-frame messages in
//!   step.
//!
//! The wire contract is `docs/PROTOCOL.md`; `proto/message.proto` is the schema.
//!
//! # Example
//!
//! ```
//! use chat_proto::codec::{encode_request, RequestDecoder, WireFormat};
//! use chat_proto::frame::Frames;
//! use chat_proto::Request;
//!
//! let mut wire = Vec::new();
//! let request = Request::Chat { text: "안녕".into() };
//! encode_request(WireFormat::Protobuf, &request, &mut wire).unwrap();
//!
//! let mut decoder = RequestDecoder::new(None); // detects the format
//! let decoded: Vec<_> = Frames::new(&wire).filter_map(|f| decoder.feed(f)).collect();
//! assert_eq!(decoded, vec![Ok(request)]);
//! assert_eq!(decoder.format(), Some(WireFormat::Protobuf));
//! ```

#![forbid(unsafe_code)]

pub mod codec;
pub mod frame;
pub mod message;

pub use codec::{DecodeError, EncodeError, RequestDecoder, ResponseDecoder, WireFormat};
pub use message::{HistoryLine, Request, RequestKind, Response, RoomInfo};
