//! `/create T`: create a room and enter it.

use chat_proto::Request;

use super::Context;
use crate::{texts, validate};

pub fn handle(ctx: &mut Context<'_>, request: Request) {
    let Request::CreateRoom { title } = request else {
        return;
    };
    if ctx.state.room.is_some() {
        return ctx.system(texts::CREATE_WHILE_IN_ROOM);
    }
    if let Err(refusal) = validate::check_title(&title) {
        return ctx.system(refusal);
    }
    let broker = &ctx.shared.broker;
    let (member, delivery) = ctx.member_and_delivery();
    let room = broker.create_room(&member, &title, delivery);
    ctx.state.room = Some(room);
}
