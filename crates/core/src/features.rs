//! The protocol extensions a client may opt in to (docs/PROTOCOL.md §7), and the
//! rule of the opt-in.
//!
//! The reference client exits on any message type it does not know, so nothing new
//! may reach a client that has not asked for it. A client asks with `CSHello`, naming
//! the features it understands; the server answers `SCHello` with those of them it
//! speaks — the only ones in force for that connection from then on — and its name.
//! A client that never says hello (the reference client) never receives `SCHello` or
//! anything an extension adds, so what it sees is exactly what it saw before.
//!
//! What this module does not do: it sends nothing (the `hello` command does) and it
//! knows nothing of what a feature changes (each feature's command checks
//! [`Features::has`]).
//!
//! # Invariants
//!
//! * [`Features`] only ever holds features of [`KNOWN`]: a client cannot make the
//!   server keep anything it sent in a hello (unknown names are dropped, not stored).
//! * A hello is bounded work: at most [`MAX_FEATURES`] names of at most
//!   [`MAX_FEATURE_LEN`] bytes are looked at; a longer list is refused whole.

/// How many feature names a hello may carry.
pub const MAX_FEATURES: usize = 32;
/// The longest feature name, in bytes.
pub const MAX_FEATURE_LEN: usize = 32;

/// The server's name and version, as `SCHello` gives it.
pub const SERVER: &str = concat!("chat-server/", env!("CARGO_PKG_VERSION"));

/// One extension this server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feature {
    /// Its name on the wire.
    pub name: &'static str,
    bit: u32,
}

/// `rooms`: the room list is pushed when it changes (`listing_watch.rs`).
pub const ROOMS: Feature = Feature {
    name: "rooms",
    bit: 1,
};

/// `accounts`: `/register`, `/login`, `/logout`, `/password` (`command/account.rs`).
pub const ACCOUNTS: Feature = Feature {
    name: "accounts",
    bit: 2,
};

/// `history`: a room's recent chats on entry and on request, chats with their
/// numbers and times (`history.rs`, `command/history.rs`).
pub const HISTORY: Feature = Feature {
    name: "history",
    bit: 4,
};

/// `resume`: a login or registration hands out a token (`SCSession`) to log in
/// again with (`CSResume`) instead of the password (`command/account.rs`). Only with
/// `accounts`.
pub const RESUME: Feature = Feature {
    name: "resume",
    bit: 8,
};

/// `direct`: direct messages (`CSDirect`, `CSIgnore`), received as `SCDirect`
/// (`command/direct.rs`). A client that never opted in still receives direct
/// messages, as a system message (`texts::direct_plain`).
pub const DIRECT: Feature = Feature {
    name: "direct",
    bit: 16,
};

/// `moderation`: owners and operators of registered rooms (`CSOp`, `CSOwner`,
/// `CSKick`, `CSBan`, `CSTopic`), and room topics (`SCTopic`, and in the room list)
/// (`moderation.rs`, `command/moderate.rs`).
pub const MODERATION: Feature = Feature {
    name: "moderation",
    bit: 32,
};

/// Every feature this server speaks, by name. The protocol's extensions are added
/// here as they land; a name not in this table is ignored in a hello.
pub const KNOWN: &[Feature] = &[ROOMS, ACCOUNTS, HISTORY, RESUME, DIRECT, MODERATION];

/// The features in force for one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    bits: u32,
    /// The client said hello (even one naming nothing the server speaks).
    greeted: bool,
}

/// Why a hello was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloError {
    /// More than [`MAX_FEATURES`] names, or one longer than [`MAX_FEATURE_LEN`].
    TooLarge,
}

impl Features {
    /// The features of `asked` that this server speaks, in [`KNOWN`]'s order; names
    /// are compared exactly (they are ASCII identifiers), duplicates count once.
    pub fn negotiate(asked: &[String]) -> Result<Features, HelloError> {
        if asked.len() > MAX_FEATURES || asked.iter().any(|name| name.len() > MAX_FEATURE_LEN) {
            return Err(HelloError::TooLarge);
        }
        let bits = KNOWN
            .iter()
            .filter(|feature| asked.iter().any(|name| name == feature.name))
            .fold(0, |bits, feature| bits | feature.bit);
        Ok(Features {
            bits,
            greeted: true,
        })
    }

    /// Whether `feature` is in force.
    pub fn has(self, feature: Feature) -> bool {
        self.bits & feature.bit != 0
    }

    /// Whether the client said hello: only then may it be sent `SCHello`.
    pub fn greeted(self) -> bool {
        self.greeted
    }

    /// The same, without `feature` (one the transport or broker cannot offer).
    pub fn without(self, feature: Feature) -> Features {
        Features {
            bits: self.bits & !feature.bit,
            ..self
        }
    }

    /// The names in force, for `SCHello`.
    pub fn names(self) -> Vec<String> {
        KNOWN
            .iter()
            .filter(|feature| self.has(**feature))
            .map(|feature| feature.name.to_owned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn unknown_features_are_dropped_and_the_client_is_greeted() {
        let features = Features::negotiate(&names(&["no-such-feature", "", "기능"])).unwrap();
        assert!(features.greeted());
        assert!(features.names().is_empty());
        let rooms = Features::negotiate(&names(&["x", "rooms", "rooms", "ROOMS"])).unwrap();
        assert_eq!(rooms.names(), ["rooms"], "exact names, once");
        assert!(rooms.has(ROOMS));
        assert!(!rooms.without(ROOMS).has(ROOMS));
        assert!(rooms.without(ROOMS).greeted());
        assert!(!Features::default().greeted(), "no hello, no greeting");
        let none = Features::negotiate(&[]).unwrap();
        assert!(none.greeted());
    }

    #[test]
    fn a_hello_is_bounded() {
        let many = vec!["x".to_owned(); MAX_FEATURES];
        assert!(Features::negotiate(&many).is_ok());
        let too_many = vec!["x".to_owned(); MAX_FEATURES + 1];
        assert_eq!(Features::negotiate(&too_many), Err(HelloError::TooLarge));
        let long = vec!["x".repeat(MAX_FEATURE_LEN)];
        assert!(Features::negotiate(&long).is_ok());
        let too_long = vec!["x".repeat(MAX_FEATURE_LEN + 1)];
        assert_eq!(Features::negotiate(&too_long), Err(HelloError::TooLarge));
    }
}
