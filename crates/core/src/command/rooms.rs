//! `/rooms`: list the rooms, in as many messages as the list needs.

use crate::mailbox::Mailbox;
use crate::state::{ClientState, Turn};
use crate::texts;

pub(super) fn apply<M: Mailbox>(client: &mut ClientState, turn: &mut Turn<'_, M>) {
    if client.unreachable {
        // The expensive reply would go nowhere.
        return;
    }
    let listing = match turn.broker.listing() {
        Ok(listing) => listing,
        Err(_) => return client.system(turn, texts::UNAVAILABLE),
    };
    let topics = client.features.has(crate::features::MODERATION);
    for message in listing.messages(client.format, topics) {
        turn.out.send(turn.mailbox, client.format, message);
    }
}
