//! A chat line: to every other member of the sender's room.

use chat_proto::Response;

use crate::broker::BrokerError;
use crate::encoded::Encoded;
use crate::mailbox::Mailbox;
use crate::state::{ClientState, Turn};
use crate::{texts, validate};

pub(super) fn apply<M: Mailbox>(client: &mut ClientState, text: &str, turn: &mut Turn<'_, M>) {
    let Some(room) = client.room else {
        return client.system(turn, texts::NOT_IN_ROOM);
    };
    let text = validate::sanitize_chat(text);
    let chat = Response::Chat {
        member: client.name.as_str().into(),
        text: text.as_ref().into(),
    };
    let Ok(chat) = Encoded::both(&chat) else {
        // Name and text together overflow one frame: nothing is sent to anyone.
        return client.system(turn, texts::MESSAGE_TOO_LONG);
    };
    match turn
        .broker
        .chat(room, client.member(turn.mailbox), &text, &chat, turn.out)
    {
        Ok(recipients) => client.fanout = recipients,
        // The client was put out (a kick, a ban) or the room lost under it: it is in
        // none now, and told so as if it had known.
        Err(BrokerError::NoSuchRoom) => {
            client.room = None;
            client.system(turn, texts::NOT_IN_ROOM);
        }
        Err(_) => client.system(turn, texts::UNAVAILABLE),
    }
}
