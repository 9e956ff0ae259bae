//! Direct messages (the `direct` extension, docs/PROTOCOL.md §7.5): who can be
//! reached by name, who ignores whom, and the form a direct message takes for the
//! client it reaches. No I/O: a broker keeps a [`Directory`] of its own clients and
//! delivers through their mailboxes.
//!
//! * **Reachable**: a client is listed under the key of the name it claimed
//!   ([`crate::validate::name_key`]); a client with its default name claimed none and
//!   is not listed (nobody could type its name anyway: it has brackets).
//! * **The form** ([`encode`]): `SCDirect` for a client that opted in to `direct`;
//!   a system message (`texts::direct_plain`) for one that did not, the reference
//!   client included, which reads it as it reads any notice and cannot be sent a
//!   type it does not know.
//! * **Ignoring** is by name key, kept per client while it is connected (whatever
//!   name it takes meanwhile), at most [`MAX_IGNORED`] keys: bounded state whatever a
//!   client sends. It holds whether or not the ignored name is connected.
//!
//! Invariants: a key lists at most one client, and a client is listed under at most
//! one key (its name now); the ignore sets hold only clients still connected (the
//! broker drops a client's at its disconnect, [`Directory::forget`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chat_proto::{Response, WireFormat};

use crate::broker::{BrokerError, ClientId, Member};
use crate::encoded::Encoded;
use crate::texts;

/// Names a client may ignore at most.
pub const MAX_IGNORED: usize = 100;

/// `text` from `from` at `time_ms`, as the recipient (which writes `format`, and
/// opted in to `direct` or not) reads it; `None` if it does not fit one frame.
pub fn encode(
    format: WireFormat,
    opted_in: bool,
    from: &str,
    text: &str,
    time_ms: u64,
) -> Option<Encoded> {
    if opted_in {
        let direct = Response::Direct {
            member: from.into(),
            text: text.into(),
            time: i64::try_from(time_ms).unwrap_or(i64::MAX),
            outgoing: false,
        };
        Encoded::one(format, &direct).ok()
    } else {
        let notice = Response::SystemMessage {
            text: texts::direct_plain(from, text).into(),
        };
        Encoded::one(format, &notice).ok()
    }
}

/// One listed client: where its messages go and how it reads a direct message.
#[derive(Debug)]
pub struct Listed<M> {
    /// Who it is.
    pub id: ClientId,
    /// Its mailbox.
    pub mailbox: Arc<M>,
    /// Its wire format.
    pub format: WireFormat,
    /// It opted in to `direct` (it is sent `SCDirect`).
    pub opted_in: bool,
}

impl<M> Listed<M> {
    fn of(member: Member<'_, M>) -> Self {
        Listed {
            id: member.id,
            mailbox: Arc::clone(member.mailbox),
            format: member.format,
            opted_in: member.direct,
        }
    }
}

/// A broker's clients by name key, and whom each ignores; see the module doc.
#[derive(Debug)]
pub struct Directory<M> {
    by_key: HashMap<String, Listed<M>>,
    key_of: HashMap<ClientId, String>,
    ignoring: HashMap<ClientId, HashSet<String>>,
}

impl<M> Default for Directory<M> {
    fn default() -> Self {
        Directory {
            by_key: HashMap::new(),
            key_of: HashMap::new(),
            ignoring: HashMap::new(),
        }
    }
}

impl<M> Directory<M> {
    /// Who holds the name whose key is `key`, if anyone.
    pub fn holder(&self, key: &str) -> Option<ClientId> {
        self.by_key.get(key).map(|listed| listed.id)
    }

    /// Lists `member` under `key`, in place of the name it held before:
    /// [`BrokerError::NameTaken`] if another client holds it.
    pub fn claim(&mut self, member: Member<'_, M>, key: &str) -> Result<(), BrokerError> {
        match self.by_key.get(key) {
            Some(listed) if listed.id != member.id => return Err(BrokerError::NameTaken),
            _ => {}
        }
        if let Some(old) = self.key_of.insert(member.id, key.to_owned())
            && old != key
        {
            self.by_key.remove(&old);
        }
        self.by_key.insert(key.to_owned(), Listed::of(member));
        Ok(())
    }

    /// Client `id` holds no name any more.
    pub fn release(&mut self, id: ClientId) {
        if let Some(key) = self.key_of.remove(&id) {
            self.by_key.remove(&key);
        }
    }

    /// `member` changed how it reads messages (a hello): its listing follows.
    pub fn refresh(&mut self, member: Member<'_, M>) {
        if let Some(key) = self.key_of.get(&member.id)
            && let Some(listed) = self.by_key.get_mut(key)
        {
            *listed = Listed::of(member);
        }
    }

    /// Client `id` is gone: its ignore set goes too.
    pub fn forget(&mut self, id: ClientId) {
        self.release(id);
        self.ignoring.remove(&id);
    }

    /// Client `id` ignores (`ignore`) or no longer ignores the name whose key is
    /// `key`; answers whether that changed anything. Past [`MAX_IGNORED`] keys,
    /// [`BrokerError::TooMany`].
    pub fn set_ignored(
        &mut self,
        id: ClientId,
        key: &str,
        ignore: bool,
    ) -> Result<bool, BrokerError> {
        if !ignore {
            let Some(set) = self.ignoring.get_mut(&id) else {
                return Ok(false);
            };
            let changed = set.remove(key);
            if set.is_empty() {
                self.ignoring.remove(&id);
            }
            return Ok(changed);
        }
        let set = self.ignoring.entry(id).or_default();
        if set.contains(key) {
            return Ok(false);
        }
        if set.len() >= MAX_IGNORED {
            return Err(BrokerError::TooMany);
        }
        Ok(set.insert(key.to_owned()))
    }

    /// The client holding the name whose key is `to`, if it takes direct messages
    /// from the name whose key is `from`: [`BrokerError::NoSuchMember`] if nobody
    /// holds it, [`BrokerError::Ignored`] if its holder ignores `from`.
    pub fn recipient(&self, to: &str, from: &str) -> Result<&Listed<M>, BrokerError> {
        let listed = self.by_key.get(to).ok_or(BrokerError::NoSuchMember)?;
        if self
            .ignoring
            .get(&listed.id)
            .is_some_and(|set| set.contains(from))
        {
            return Err(BrokerError::Ignored);
        }
        Ok(listed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: ClientId, mailbox: &Arc<()>, direct: bool) -> Member<'_, ()> {
        Member {
            id,
            name: "x",
            format: WireFormat::Json,
            mailbox,
            history: false,
            account: None,
            direct,
            moderation: false,
            address: None,
        }
    }

    #[test]
    fn a_name_lists_one_client_and_a_client_one_name() {
        let boxed = Arc::new(());
        let mut dir = Directory::default();
        dir.claim(member(1, &boxed, false), "alice").unwrap();
        assert_eq!(
            dir.claim(member(2, &boxed, false), "alice"),
            Err(BrokerError::NameTaken)
        );
        dir.claim(member(1, &boxed, false), "alicia").unwrap();
        assert_eq!(dir.holder("alice"), None, "the old name is free");
        assert_eq!(dir.holder("alicia"), Some(1));
        dir.refresh(member(1, &boxed, true));
        assert!(dir.recipient("alicia", "bob").unwrap().opted_in);
        dir.forget(1);
        assert_eq!(
            dir.recipient("alicia", "bob").err(),
            Some(BrokerError::NoSuchMember)
        );
    }

    #[test]
    fn ignoring_is_by_key_and_bounded() {
        let boxed = Arc::new(());
        let mut dir = Directory::default();
        dir.claim(member(1, &boxed, true), "alice").unwrap();
        assert_eq!(dir.set_ignored(1, "bob", true), Ok(true));
        assert_eq!(dir.set_ignored(1, "bob", true), Ok(false));
        assert_eq!(
            dir.recipient("alice", "bob").err(),
            Some(BrokerError::Ignored)
        );
        assert!(dir.recipient("alice", "carol").is_ok());
        for n in 1..MAX_IGNORED {
            assert_eq!(dir.set_ignored(1, &format!("n{n}"), true), Ok(true));
        }
        assert_eq!(
            dir.set_ignored(1, "one-more", true),
            Err(BrokerError::TooMany)
        );
        assert_eq!(dir.set_ignored(1, "bob", false), Ok(true));
        assert_eq!(dir.set_ignored(1, "bob", false), Ok(false));
        assert!(dir.recipient("alice", "bob").is_ok());
        dir.forget(1);
        assert!(dir.ignoring.is_empty(), "a client's ignores go with it");
    }
}
