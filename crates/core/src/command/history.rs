//! `/history [N]` (the `history` extension, docs/PROTOCOL.md §7.3): a page of the
//! client's room's recent chats, oldest first.

use crate::encoded::Encoded;
use crate::features::HISTORY;
use crate::history::MAX_PAGE;
use crate::mailbox::Mailbox;
use crate::room::history_response;
use crate::state::{ClientState, Turn};
use crate::texts;

/// The lines a page holds when the client does not say.
const DEFAULT_PAGE: i64 = 50;

pub(super) fn apply<M: Mailbox>(
    client: &mut ClientState,
    count: Option<i64>,
    before: Option<i64>,
    turn: &mut Turn<'_, M>,
) {
    if !client.features.has(HISTORY) {
        return client.system(turn, texts::HISTORY_NOT_ENABLED);
    }
    let Some(room) = client.room else {
        return client.system(turn, texts::NOT_IN_ROOM);
    };
    let count = count.unwrap_or(DEFAULT_PAGE);
    let (Ok(count @ 1..=200), Ok(before)) = (
        usize::try_from(count),
        before.map(u64::try_from).transpose(),
    ) else {
        return client.system(turn, texts::HISTORY_BAD_REQUEST);
    };
    debug_assert!(count <= MAX_PAGE);
    if before == Some(0) {
        return client.system(turn, texts::HISTORY_BAD_REQUEST);
    }
    let (lines, more) = match turn.broker.history(room, count, before) {
        Ok(page) => page,
        Err(_) => return client.system(turn, texts::UNAVAILABLE),
    };
    if client.unreachable {
        return;
    }
    // A page of at most 200 lines, each at most a frame: it may not fit one frame.
    // Then fewer, newest kept, until it does.
    let mut lines = lines;
    let mut more = more;
    loop {
        match Encoded::one(client.format, &history_response(room, lines.clone(), more)) {
            Ok(page) => return turn.out.send(turn.mailbox, client.format, &page),
            Err(_) if lines.len() > 1 => {
                let drop = lines.len() / 2;
                lines.drain(..drop);
                more = true;
            }
            Err(_) => return client.system(turn, texts::UNAVAILABLE),
        }
    }
}
