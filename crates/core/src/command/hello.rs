//! `CSHello`: opt in to the protocol's extensions (see `features.rs`), answered with
//! `SCHello`, or with a system message if the hello is too large.

use chat_proto::Response;

use crate::encoded::Encoded;
use crate::features::{Features, SERVER};
use crate::mailbox::Mailbox;
use crate::state::{ClientState, Turn};
use crate::texts;

pub(super) fn apply<M: Mailbox>(
    client: &mut ClientState,
    features: &[String],
    turn: &mut Turn<'_, M>,
) {
    let Ok(agreed) = Features::negotiate(features) else {
        return client.system(turn, texts::HELLO_TOO_LARGE);
    };
    client.features = agreed;
    if client.unreachable {
        return;
    }
    let hello = Response::Hello {
        features: agreed.names(),
        server: SERVER.into(),
    };
    // A handful of short names: it always fits a frame.
    if let Ok(encoded) = Encoded::one(client.format, &hello) {
        turn.out.send(turn.mailbox, client.format, &encoded);
    }
}
