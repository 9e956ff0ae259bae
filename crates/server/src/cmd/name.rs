//! `/name X`: change the client's display name.

use chat_proto::Request;

use super::Context;
use crate::{texts, validate};

pub fn handle(ctx: &mut Context<'_>, request: Request) {
    let Request::Name { name } = request else {
        return;
    };
    if let Err(refusal) = validate::check_name(&name) {
        return ctx.system(refusal);
    }
    let old = std::mem::replace(&mut ctx.state.name, name);
    match ctx.state.room {
        // In a room the broker sends both notices under the room's lock, so every
        // member sees the rename at the same point among the room's messages.
        Some(room) => {
            let broker = &ctx.shared.broker;
            let (member, delivery) = ctx.member_and_delivery();
            broker.rename(room, &member, &old, delivery);
        }
        None => {
            let text = texts::renamed_self(&ctx.state.name);
            ctx.system(&text);
        }
    }
}
