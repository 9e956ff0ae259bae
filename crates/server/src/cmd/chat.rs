//! A chat line: to every other member of the sender's room.

use chat_proto::Request;

use super::Context;
use crate::{texts, validate};

pub fn handle(ctx: &mut Context<'_>, request: Request) {
    let Request::Chat { text } = request else {
        return;
    };
    let Some(room) = ctx.state.room else {
        return ctx.system(texts::NOT_IN_ROOM);
    };
    let text = validate::sanitize_chat(&text);
    let broker = &ctx.shared.broker;
    let (member, delivery) = ctx.member_and_delivery();
    if broker.chat(room, &member, &text, delivery).is_err() {
        // Name and text together overflow one frame: nothing was sent to anyone.
        ctx.system(texts::MESSAGE_TOO_LONG);
    }
}
