//! `/shutdown`: stop the whole server — if the transport's policy lets this client.

use crate::client::{Client, Outcome, Turn};
use crate::mailbox::Mailbox;
use crate::texts;

pub(super) fn apply<M: Mailbox>(client: &mut Client, turn: &mut Turn<'_, M>) -> Outcome {
    if client.may_shutdown {
        Outcome::Shutdown
    } else {
        client.system(turn, texts::SHUTDOWN_REFUSED);
        Outcome::ShutdownRefused
    }
}
