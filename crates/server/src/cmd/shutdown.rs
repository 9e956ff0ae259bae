//! `/shutdown`: stop the whole server.

use chat_proto::Request;

use super::Context;

pub fn handle(ctx: &mut Context<'_>, request: Request) {
    let Request::Shutdown = request else {
        return;
    };
    tracing::info!(session = ctx.session.id, peer = %ctx.session.peer, "shutdown requested by a client");
    ctx.shared.shutdown.request();
}
