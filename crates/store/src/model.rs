//! What the store keeps, as plain values: accounts, registered rooms and their chats,
//! what is read back at start ([`Snapshot`]) and the writes the writer thread takes
//! ([`Write`]). No SQL here.

/// An account: a name made one's own with a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The name's comparison key (`chat_core::validate::name_key`): what makes two
    /// names the same name, look-alikes included. Unique.
    pub key: String,
    /// The name as registered.
    pub name: String,
    /// The password's Argon2id hash, in the PHC string format (never the password).
    pub password_hash: String,
    /// When it was registered, in milliseconds since the Unix epoch.
    pub created_ms: u64,
}

/// A room registered to an account: it lasts while empty and across restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredRoom {
    /// Its id, kept for good.
    pub id: i64,
    /// Its title.
    pub title: String,
    /// The owning account's key.
    pub owner_key: String,
    /// When it was registered, in milliseconds since the Unix epoch.
    pub created_ms: u64,
}

/// One chat line of a room's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRecord {
    /// The room.
    pub room_id: i64,
    /// Its place in the room's history: increasing, never reused.
    pub seq: u64,
    /// When the server took it, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The sender's name then.
    pub member: String,
    /// The line.
    pub text: String,
}

/// A login token (the `resume` extension), kept as its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The hash of the token (hex); the token itself is never stored.
    pub token_hash: String,
    /// The account's key.
    pub key: String,
    /// When it stops working, in milliseconds since the Unix epoch.
    pub expires_ms: u64,
}

/// Everything read back at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Every account, by key order.
    pub accounts: Vec<Account>,
    /// Every registered room, by id.
    pub rooms: Vec<RegisteredRoom>,
    /// The most recent chats of each registered room (at most the history limit a
    /// room), oldest first, by room.
    pub chats: Vec<ChatRecord>,
    /// Every login token not expired at start.
    pub sessions: Vec<Session>,
    /// The moderation of the registered rooms that have any (room id, the text the
    /// server wrote), by id.
    pub moderation: Vec<(i64, String)>,
}

/// A change for the writer thread to make durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// A new account (its key is not taken: the caller checked, in memory).
    CreateAccount(Account),
    /// An account's new password hash.
    SetPassword {
        /// The account's key.
        key: String,
        /// The new hash.
        password_hash: String,
    },
    /// A newly registered room.
    CreateRoom(RegisteredRoom),
    /// A registered room deleted by its owner, with its history.
    DeleteRoom {
        /// Its id.
        id: i64,
    },
    /// A chat in a registered room.
    Chat(ChatRecord),
    /// A registered room's owner and moderation, as they are now.
    SetModeration {
        /// The room.
        id: i64,
        /// Its owner's key (`/owner` hands a room on).
        owner_key: String,
        /// Its operators, bans and topic: the server's text, kept as it is.
        moderation: String,
    },
    /// A new login token.
    CreateSession(Session),
    /// A login token given up (`/logout`) or expired.
    DeleteSession {
        /// Its hash.
        token_hash: String,
    },
    /// Every login token of an account (its password changed).
    DeleteSessionsOf {
        /// The account's key.
        key: String,
    },
}

impl Write {
    /// Whether losing this write at a crash is allowed by the documented promise (a
    /// chat of the last commit window) or not (an account, a room: its caller waits
    /// for the commit before saying it is done).
    pub fn is_chat(&self) -> bool {
        matches!(self, Write::Chat(_))
    }
}
