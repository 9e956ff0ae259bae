//! What the core's integration tests share: a mailbox that keeps what it gets, and
//! the ordering guarantees checked on what clients received ([`guarantees`]).
//!
//! The cluster crate's `log_props` includes this module too (by path), so it uses
//! nothing but `chat-core`, `chat-proto` and `bytes`.

#![allow(dead_code)] // each test file uses a different part of this module

pub(crate) mod guarantees;

use std::sync::Mutex;

use bytes::Bytes;
use chat_core::{Delivered, Mailbox};
use chat_proto::frame::Frames;
use chat_proto::{Response, ResponseDecoder, WireFormat};

/// A mailbox that keeps every message it is given.
#[derive(Debug, Default)]
pub(crate) struct Recorder(Mutex<Vec<Bytes>>);

impl Mailbox for Recorder {
    fn deliver(&self, frames: &Bytes) -> Delivered {
        self.0.lock().unwrap().push(frames.clone());
        Delivered::Queued
    }
}

impl Recorder {
    /// Everything received, decoded.
    pub(crate) fn received(&self, format: WireFormat) -> Vec<Response<'static>> {
        decode(&self.0.lock().unwrap(), format)
    }

    /// Everything received since the last call, as lines: a system message's text,
    /// a chat as `[member] text`. The mailbox is emptied.
    pub(crate) fn lines(&self, format: WireFormat) -> Vec<String> {
        self.take(format)
            .into_iter()
            .map(|response| match response {
                Response::SystemMessage { text } => text.into_owned(),
                Response::Chat { member, text } => format!("[{member}] {text}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    /// Everything received since the last call, decoded; the mailbox is emptied.
    pub(crate) fn take(&self, format: WireFormat) -> Vec<Response<'static>> {
        let taken = std::mem::take(&mut *self.0.lock().unwrap());
        decode(&taken, format)
    }
}

/// Each delivery decoded; every one must be exactly one valid message.
fn decode(deliveries: &[Bytes], format: WireFormat) -> Vec<Response<'static>> {
    let mut decoder = ResponseDecoder::new(format);
    deliveries
        .iter()
        .flat_map(|message| {
            let mut decoded = Vec::new();
            for payload in Frames::new(message) {
                if let Some(response) = decoder.feed(payload) {
                    decoded.push(
                        response
                            .expect("the core sends valid messages")
                            .into_owned(),
                    );
                }
            }
            assert_eq!(decoded.len(), 1, "one delivery is one message");
            decoded
        })
        .collect()
}
