//! `/leave`: leave the current room.

use chat_proto::Request;

use super::Context;
use crate::texts;

pub fn handle(ctx: &mut Context<'_>, request: Request) {
    let Request::LeaveRoom = request else {
        return;
    };
    let Some(room) = ctx.state.room.take() else {
        return ctx.system(texts::NOT_IN_ROOM);
    };
    let broker = &ctx.shared.broker;
    let (member, delivery) = ctx.member_and_delivery();
    broker.leave_room(room, &member, true, delivery);
}
