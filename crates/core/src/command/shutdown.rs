//! `/shutdown`: stop the whole server — if the transport's policy lets this client,
//! which the transport decides (it alone knows who is on the other end).

use crate::mailbox::Mailbox;
use crate::state::{ClientState, Outcome, Turn};

pub(super) fn apply<M: Mailbox>(_client: &mut ClientState, _turn: &mut Turn<'_, M>) -> Outcome {
    Outcome::ShutdownRequested
}
