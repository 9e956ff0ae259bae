//! `CSHello`: opt in to the protocol's extensions (see `features.rs`), answered with
//! `SCHello`, or with a system message if the hello is too large. The `rooms` feature
//! makes the client a watcher of the room list (`listing_watch.rs`), if the broker
//! keeps watchers; a later hello without it stops that.

use chat_proto::Response;

use crate::encoded::Encoded;
use crate::features::{ACCOUNTS, DIRECT, Features, MODERATION, RESUME, ROOMS, SERVER};
use crate::mailbox::Mailbox;
use crate::state::{ClientState, Turn};
use crate::texts;

pub(super) fn apply<M: Mailbox>(
    client: &mut ClientState,
    features: &[String],
    turn: &mut Turn<'_, M>,
) {
    let Ok(mut agreed) = Features::negotiate(features) else {
        return client.system(turn, texts::HELLO_TOO_LARGE);
    };
    match turn.broker.listing_watch() {
        Some(watch) if agreed.has(ROOMS) && !client.unreachable => {
            let current = turn.broker.listing().ok();
            let topics = agreed.has(MODERATION) && turn.broker.offers_moderation();
            watch.watch(client.id, turn.mailbox, client.format, topics, current);
        }
        Some(watch) => watch.unwatch(client.id),
        None => agreed = agreed.without(ROOMS),
    }
    if turn.broker.accounts().is_none() {
        agreed = agreed.without(ACCOUNTS);
    }
    // Tokens are for logging in again: only with accounts, and a backend that keeps them.
    if !agreed.has(ACCOUNTS) || !turn.broker.accounts().is_some_and(|a| a.keeps_tokens()) {
        agreed = agreed.without(RESUME);
    }
    if !turn.broker.offers_direct() {
        agreed = agreed.without(DIRECT);
    }
    if !turn.broker.offers_moderation() {
        agreed = agreed.without(MODERATION);
    }
    client.features = agreed;
    // A client listed under its name is now reached in the form it asked for.
    turn.broker.refresh(client.member(turn.mailbox));
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
