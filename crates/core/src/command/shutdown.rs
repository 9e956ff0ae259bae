//! `/shutdown`: stop the whole server — if the transport's policy lets this client.

use crate::mailbox::Mailbox;
use crate::state::{ClientState, Outcome, Turn};
use crate::texts;

pub(super) fn apply<M: Mailbox>(client: &mut ClientState, turn: &mut Turn<'_, M>) -> Outcome {
    if client.may_shutdown {
        Outcome::Shutdown
    } else {
        client.system(turn, texts::SHUTDOWN_REFUSED);
        Outcome::ShutdownRefused
    }
}
