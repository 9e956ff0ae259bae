//! `/join N`: enter an existing room.

use chat_proto::Request;

use super::Context;
use crate::broker::NoSuchRoom;
use crate::texts;

pub fn handle(ctx: &mut Context<'_>, request: Request) {
    let Request::JoinRoom { room_id } = request else {
        return;
    };
    // The reference checks membership before existence.
    if ctx.state.room.is_some() {
        return ctx.system(texts::JOIN_WHILE_IN_ROOM);
    }
    let broker = &ctx.shared.broker;
    let (member, delivery) = ctx.member_and_delivery();
    match broker.join_room(room_id, &member, delivery) {
        Ok(()) => ctx.state.room = Some(room_id),
        Err(NoSuchRoom) => ctx.system(texts::NO_SUCH_ROOM),
    }
}
