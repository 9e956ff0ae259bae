//! `/rooms`: list the rooms, in as many messages as the list needs.

use chat_proto::Response;

use crate::listing::chunks_that_fit;
use crate::mailbox::Mailbox;
use crate::state::{ClientState, Turn};
use crate::texts;

pub(super) fn apply<M: Mailbox>(client: &mut ClientState, turn: &mut Turn<'_, M>) {
    if client.unreachable {
        // The expensive reply would go nowhere.
        return;
    }
    let rooms = match turn.broker.rooms() {
        Ok(rooms) => rooms,
        Err(_) => return client.system(turn, texts::UNAVAILABLE),
    };
    for chunk in chunks_that_fit(rooms, client.format) {
        // Every chunk was measured to fit a frame.
        let sent = client.reply(turn, &Response::RoomsResult { rooms: chunk });
        debug_assert!(sent, "a measured chunk did not fit");
    }
}
