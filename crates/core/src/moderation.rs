//! Moderation of a registered room (the `moderation` extension, docs/PROTOCOL.md
//! §7.6): who may do what, and what a room keeps — its operators, its bans, its
//! topic. The rules are written here once; [`crate::Room`] keeps the state and every
//! broker applies both under the room's serialisation.
//!
//! * **Ranks**: the account a room is registered to owns it; the owner names
//!   operators (accounts) and hands the room on; owner and operators kick, ban,
//!   unban and set the topic. Guests hold no rank, and a guest room (registered to
//!   nobody) has no moderation at all.
//! * **Who cannot be touched**: nobody kicks or bans the owner; an operator does not
//!   kick or ban another operator (the owner does); nobody kicks or bans themselves.
//! * **Bans**: of an account (by its key: whatever name it takes, on whatever
//!   address) or of a guest's address (a guest has nothing else that lasts); for a
//!   number of minutes, or until lifted. A banned client cannot enter the room.
//!
//! Invariants: at most [`MAX_OPERATORS`] operators and [`MAX_BANS`] bans a room (a
//! thousand bans get a clear text, not a thousand entries); a ban's end is in the
//! future when it is made (expired ones are dropped whenever the bans are looked at
//! for a change); the owner is never an operator (handing the room on makes the old
//! owner an operator instead, and removes the new one from the operators).
//!
//! No I/O and no clock: callers pass the time.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::texts;

/// Operators a room has at most.
pub const MAX_OPERATORS: usize = 32;
/// Bans a room keeps at most.
pub const MAX_BANS: usize = 256;
/// The longest ban in minutes (a year); longer is "until lifted".
pub const MAX_BAN_MINUTES: i64 = 365 * 24 * 60;

/// The longest kick reason, in characters.
pub const MAX_REASON_CHARS: usize = 200;

/// What an owner or operator asks of a room, its targets resolved by the command
/// (names to keys, accounts looked up); [`crate::Room::moderate`] decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `/op` (`op`) or `/deop`.
    Op {
        /// The account's key.
        key: String,
        /// Its name, for the texts.
        name: String,
        /// Make it an operator (else: no longer).
        op: bool,
    },
    /// `/owner`: hand the room to an account.
    Owner {
        /// The account's key.
        key: String,
        /// Its name, for the texts.
        name: String,
    },
    /// `/kick` of a member.
    Kick {
        /// The key of the member's name.
        key: String,
        /// Why (may be empty).
        reason: String,
    },
    /// `/ban`: an account (whatever name it takes), or else the address of the
    /// member so named.
    Ban {
        /// The key of the name as typed.
        key: String,
        /// The name, for the texts and `/unban`.
        name: String,
        /// The account's key, if the name is an account's.
        account: Option<String>,
        /// For how long ([`check_minutes`]); `None`: until lifted.
        minutes: Option<i64>,
    },
    /// `/unban`.
    Unban {
        /// The key of the name the ban was made against.
        key: String,
        /// The name, for the texts.
        name: String,
    },
    /// `/topic`.
    Topic {
        /// The new topic; `None` clears it.
        topic: Option<String>,
    },
}

/// Whom a ban keeps out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Banned {
    /// An account, by its key.
    Account(String),
    /// A guest's address.
    Address(IpAddr),
}

/// One ban.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// Whom it keeps out.
    pub who: Banned,
    /// The name it was made against (as `/unban` and the texts name it).
    pub name: String,
    /// When it ends (ms since the Unix epoch), or `None`: until lifted.
    pub until_ms: Option<u64>,
}

impl Ban {
    /// Whether it still holds at `now_ms`.
    pub fn holds(&self, now_ms: u64) -> bool {
        self.until_ms.is_none_or(|until| until > now_ms)
    }

    /// Whether it keeps out a client logged in as `account` (a key), from `address`.
    pub fn keeps_out(&self, account: Option<&str>, address: Option<IpAddr>) -> bool {
        match &self.who {
            Banned::Account(key) => account == Some(key.as_str()),
            // A logged-in client is judged by its account, not by an address it may
            // share with guests (a classroom behind one router).
            Banned::Address(ip) => account.is_none() && address == Some(*ip),
        }
    }
}

/// A registered room's operators, bans and topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Moderation {
    /// Operators' account keys.
    pub operators: BTreeSet<String>,
    /// Bans, oldest first.
    pub bans: Vec<Ban>,
    /// The topic, if one is set.
    pub topic: Option<String>,
}

/// What an actor holds in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rank {
    /// Anyone else (guests included).
    Member,
    /// Named by the owner.
    Operator,
    /// The account the room is registered to.
    Owner,
}

impl Moderation {
    /// The rank of a client logged in as `account` (a key) in a room owned by `owner`.
    pub fn rank(&self, owner: Option<&str>, account: Option<&str>) -> Rank {
        match (owner, account) {
            (Some(owner), Some(account)) if owner == account => Rank::Owner,
            (Some(_), Some(account)) if self.operators.contains(account) => Rank::Operator,
            _ => Rank::Member,
        }
    }

    /// The ban that keeps out a client logged in as `account` from `address` at
    /// `now_ms`, if any.
    pub fn ban_on(
        &self,
        account: Option<&str>,
        address: Option<IpAddr>,
        now_ms: u64,
    ) -> Option<&Ban> {
        self.bans
            .iter()
            .find(|ban| ban.holds(now_ms) && ban.keeps_out(account, address))
    }

    /// Drops the bans that ended by `now_ms`.
    pub fn prune(&mut self, now_ms: u64) {
        self.bans.retain(|ban| ban.holds(now_ms));
    }

    /// Adds or replaces (same target) `ban`; [`texts::BANS_FULL`] past [`MAX_BANS`].
    pub fn add_ban(&mut self, ban: Ban, now_ms: u64) -> Result<(), &'static str> {
        self.prune(now_ms);
        if let Some(kept) = self.bans.iter_mut().find(|kept| kept.who == ban.who) {
            *kept = ban;
            return Ok(());
        }
        if self.bans.len() >= MAX_BANS {
            return Err(texts::BANS_FULL);
        }
        self.bans.push(ban);
        Ok(())
    }

    /// Lifts the ban made against the name whose key is `key` (`name_key` of the
    /// ban's name, or an account's key); answers whether there was one.
    pub fn lift(&mut self, key: &str, now_ms: u64) -> bool {
        self.prune(now_ms);
        let before = self.bans.len();
        self.bans.retain(|ban| {
            let by_account = matches!(&ban.who, Banned::Account(k) if k == key);
            !by_account && crate::validate::name_key(&ban.name) != key
        });
        self.bans.len() != before
    }
}

impl Moderation {
    /// A room's moderation as it is kept (a store's column, a cluster's Redis): JSON,
    /// `{"operators": [KEY…], "bans": [{"account": KEY | "address": IP, "name": NAME,
    /// "until": MS | null}…], "topic": TEXT | null}`.
    pub fn to_text(&self) -> String {
        let moderation = self;
        let bans: Vec<serde_json::Value> = moderation
            .bans
            .iter()
            .map(|ban| {
                let mut entry = serde_json::Map::new();
                match &ban.who {
                    Banned::Account(key) => entry.insert("account".into(), key.as_str().into()),
                    Banned::Address(ip) => entry.insert("address".into(), ip.to_string().into()),
                };
                entry.insert("name".into(), ban.name.as_str().into());
                entry.insert("until".into(), ban.until_ms.into());
                serde_json::Value::Object(entry)
            })
            .collect();
        serde_json::json!({
            "operators": moderation.operators,
            "bans": bans,
            "topic": moderation.topic,
        })
        .to_string()
    }

    /// The inverse of [`Moderation::to_text`]; `None` for text it did not write.
    pub fn from_text(text: &str) -> Option<Moderation> {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        let operators = value
            .get("operators")?
            .as_array()?
            .iter()
            .map(|key| key.as_str().map(str::to_owned))
            .collect::<Option<_>>()?;
        let bans = value
            .get("bans")?
            .as_array()?
            .iter()
            .map(|ban| {
                let who = match (ban.get("account"), ban.get("address")) {
                    (Some(key), _) => Banned::Account(key.as_str()?.to_owned()),
                    (None, Some(ip)) => Banned::Address(ip.as_str()?.parse().ok()?),
                    (None, None) => return None,
                };
                let until_ms = match ban.get("until")? {
                    serde_json::Value::Null => None,
                    until => Some(until.as_u64()?),
                };
                Some(Ban {
                    who,
                    name: ban.get("name")?.as_str()?.to_owned(),
                    until_ms,
                })
            })
            .collect::<Option<_>>()?;
        let topic = match value.get("topic")? {
            serde_json::Value::Null => None,
            topic => Some(topic.as_str()?.to_owned()),
        };
        Some(Moderation {
            operators,
            bans,
            topic,
        })
    }
}

/// Whether an actor of rank `actor` may act on (kick, ban) a target of rank
/// `target`: the owner on anyone else, an operator on members only.
pub fn may_act_on(actor: Rank, target: Rank) -> Result<(), &'static str> {
    match (actor, target) {
        (_, Rank::Owner) => Err(texts::CANNOT_TOUCH_OWNER),
        (Rank::Owner, _) => Ok(()),
        (Rank::Operator, Rank::Member) => Ok(()),
        (Rank::Operator, Rank::Operator) => Err(texts::CANNOT_TOUCH_OPERATOR),
        (Rank::Member, _) => Err(texts::NOT_OPERATOR),
    }
}

/// Whether `minutes` is a ban's duration (or `None`: until lifted); the text if not.
pub fn check_minutes(minutes: Option<i64>) -> Result<(), &'static str> {
    match minutes {
        None | Some(1..=MAX_BAN_MINUTES) => Ok(()),
        Some(_) => Err(texts::BAN_BAD_MINUTES),
    }
}

/// A ban's end for `minutes` (checked) from `now_ms`; `None`: until lifted.
pub fn ban_end(minutes: Option<i64>, now_ms: u64) -> Option<u64> {
    let minutes = u64::try_from(minutes?).ok()?;
    Some(now_ms.saturating_add(minutes.saturating_mul(60_000)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ban(who: Banned, name: &str, until_ms: Option<u64>) -> Ban {
        Ban {
            who,
            name: name.into(),
            until_ms,
        }
    }

    #[test]
    fn ranks_and_who_may_act_on_whom() {
        let mut m = Moderation::default();
        m.operators.insert("olga".into());
        assert_eq!(m.rank(Some("alice"), Some("alice")), Rank::Owner);
        assert_eq!(m.rank(Some("alice"), Some("olga")), Rank::Operator);
        assert_eq!(m.rank(Some("alice"), Some("bob")), Rank::Member);
        assert_eq!(m.rank(Some("alice"), None), Rank::Member);
        assert_eq!(
            m.rank(None, Some("olga")),
            Rank::Member,
            "a guest room has no ranks"
        );
        assert_eq!(may_act_on(Rank::Owner, Rank::Operator), Ok(()));
        assert_eq!(may_act_on(Rank::Operator, Rank::Member), Ok(()));
        assert!(may_act_on(Rank::Operator, Rank::Operator).is_err());
        assert!(may_act_on(Rank::Operator, Rank::Owner).is_err());
        assert!(may_act_on(Rank::Member, Rank::Member).is_err());
    }

    #[test]
    fn bans_keep_out_their_target_until_they_end() {
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        let mut m = Moderation::default();
        m.add_ban(ban(Banned::Account("bob".into()), "bob", Some(1_000)), 0)
            .unwrap();
        m.add_ban(ban(Banned::Address(ip), "guest", None), 0)
            .unwrap();
        assert!(m.ban_on(Some("bob"), None, 999).is_some());
        assert!(m.ban_on(Some("bob"), None, 1_000).is_none(), "ended");
        assert!(m.ban_on(None, Some(ip), 5_000).is_some());
        assert!(
            m.ban_on(Some("carol"), Some(ip), 5_000).is_none(),
            "an account is judged by its account"
        );
        assert!(m.lift("guest", 0));
        assert!(!m.lift("guest", 0));
        assert!(m.ban_on(None, Some(ip), 5_000).is_none());
    }

    #[test]
    fn bans_are_bounded_and_a_second_ban_replaces_the_first() {
        let mut m = Moderation::default();
        for n in 0..MAX_BANS {
            m.add_ban(ban(Banned::Account(format!("a{n}")), "x", None), 0)
                .unwrap();
        }
        assert_eq!(
            m.add_ban(ban(Banned::Account("one-more".into()), "x", None), 0),
            Err(texts::BANS_FULL)
        );
        m.add_ban(ban(Banned::Account("a0".into()), "x", Some(5)), 0)
            .unwrap();
        assert_eq!(m.bans.len(), MAX_BANS);
        // Ended bans make room.
        m.add_ban(ban(Banned::Account("one-more".into()), "x", None), 10)
            .unwrap();
        assert_eq!(m.bans.len(), MAX_BANS);
    }

    #[test]
    fn durations_are_checked() {
        assert_eq!(ban_end(None, 7), None);
        assert_eq!(ban_end(Some(2), 0), Some(120_000));
        assert_eq!(check_minutes(None), Ok(()));
        assert_eq!(check_minutes(Some(MAX_BAN_MINUTES)), Ok(()));
        assert!(check_minutes(Some(0)).is_err());
        assert!(check_minutes(Some(-5)).is_err());
        assert!(check_minutes(Some(MAX_BAN_MINUTES + 1)).is_err());
    }

    #[test]
    fn moderation_text_reads_back_as_it_was_written() {
        let mut moderation = Moderation::default();
        moderation.operators.insert("olga".into());
        moderation.bans.push(Ban {
            who: Banned::Account("bob".into()),
            name: "Bob".into(),
            until_ms: Some(1_234),
        });
        moderation.bans.push(Ban {
            who: Banned::Address("10.0.0.7".parse().unwrap()),
            name: "guest \"x\"".into(),
            until_ms: None,
        });
        moderation.topic = Some("숙제 {json}".into());
        let text = moderation.to_text();
        assert_eq!(Moderation::from_text(&text), Some(moderation));
        assert_eq!(Moderation::from_text("{}"), None);
        assert_eq!(Moderation::from_text("not json"), None);
    }
}
