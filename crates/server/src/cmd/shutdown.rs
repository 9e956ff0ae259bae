//! `/shutdown`: stop the whole server — if the client's address may (`--shutdown-from`).

use chat_proto::Request;

use super::Context;
use crate::metrics::bump;
use crate::texts;

pub fn handle(ctx: &mut Context<'_>, request: Request) {
    let Request::Shutdown = request else {
        return;
    };
    let peer = ctx.session.peer;
    if !ctx.shared.shutdown_from.allows(peer.ip()) {
        tracing::warn!(session = ctx.session.id, %peer, "shutdown refused: not allowed from this address");
        bump(&ctx.shared.metrics.shutdown_refused);
        return ctx.system(texts::SHUTDOWN_REFUSED);
    }
    tracing::info!(session = ctx.session.id, %peer, "shutdown requested by a client");
    ctx.shared.shutdown.request();
}
