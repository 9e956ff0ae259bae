//! Every text the server sends, in one place.
//!
//! The protocol texts are the reference server's, byte for byte
//! (`docs/PROTOCOL.md` §4), including its spacing (`X 으로`). The client adds the
//! `[시스템 메시지]` prefix; these never include it. Texts for refusals the reference
//! server did not have (invalid names, oversized messages, …) follow the same style
//! (`docs/PROTOCOL.md` §6).

/// `/name X`, to the renamed client.
pub fn renamed_self(new: &str) -> String {
    format!("이름이 {new} 으로 변경되었습니다.")
}

/// `/name X`, to the other members of the client's room.
pub fn renamed_others(old: &str, new: &str) -> String {
    format!("{old} 의 이름이 {new} 으로 변경되었습니다.")
}

/// `/create` or `/join` succeeded, to the client.
pub fn entered_self(title: &str) -> String {
    format!("방제[{title}] 방에 입장했습니다.")
}

/// `/join` succeeded, to the earlier members.
pub fn entered_others(name: &str) -> String {
    format!("[{name}] 님이 입장했습니다.")
}

/// `/leave` succeeded, to the client.
pub fn left_self(title: &str) -> String {
    format!("방제[{title}] 대화 방에서 퇴장했습니다.")
}

/// `/leave` or a disconnect, to the remaining members.
pub fn left_others(name: &str) -> String {
    format!("[{name}] 님이 퇴장했습니다.")
}

/// The name a client has until it picks one: `(IP, PORT)` of its own side, as the
/// reference server shows a Python address tuple (without the quotes).
pub fn default_name(ip: impl std::fmt::Display, port: u16) -> String {
    format!("({ip}, {port})")
}

/// `/create` while in a room.
pub const CREATE_WHILE_IN_ROOM: &str = "대화 방에 있을 때는 방을 개설 할 수 없습니다.";
/// `/join` while in a room (checked before the room's existence, as the reference does).
pub const JOIN_WHILE_IN_ROOM: &str = "대화 방에 있을 때는 다른 방에 들어갈 수 없습니다.";
/// `/join N` where room N does not exist.
pub const NO_SUCH_ROOM: &str = "대화방이 존재하지 않습니다.";
/// `/leave` or a chat line outside any room.
pub const NOT_IN_ROOM: &str = "현재 대화방에 들어가 있지 않습니다.";

/// `/name` with an empty (or all-whitespace) name.
pub const NAME_EMPTY: &str = "이름은 비어 있을 수 없습니다.";
/// `/name` longer than [`crate::validate::MAX_NAME_CHARS`].
pub const NAME_TOO_LONG: &str = "이름은 32자를 넘을 수 없습니다.";
/// `/name` holding control, format (bidi, zero-width) or other invisible characters.
pub const NAME_CONTROL: &str = "이름에 제어 문자를 쓸 수 없습니다.";
/// `/name` with a bracket (or a character that looks like one).
pub const NAME_BRACKETS: &str = "이름에 괄호를 쓸 수 없습니다.";
/// `/name` with nothing visible in it (only fillers, accents or invisible characters).
pub const NAME_INVISIBLE: &str = "이름에 보이는 글자가 하나는 있어야 합니다.";
/// `/name` that another client's name already looks like.
pub const NAME_TAKEN: &str = "이미 쓰이고 있는 이름이거나 그와 헷갈리는 이름입니다.";
/// `/name 시스템 메시지` (in any look-alike spelling): a chat line would print like a
/// system line.
pub const NAME_RESERVED: &str = "시스템 메시지 는 이름으로 쓸 수 없습니다.";
/// `/create` with an empty (or all-whitespace) title.
pub const TITLE_EMPTY: &str = "방 제목은 비어 있을 수 없습니다.";
/// `/create` with a title longer than [`crate::validate::MAX_TITLE_CHARS`].
pub const TITLE_TOO_LONG: &str = "방 제목은 64자를 넘을 수 없습니다.";
/// `/create` with a title holding control or bidi-override characters.
pub const TITLE_CONTROL: &str = "방 제목에 제어 문자를 쓸 수 없습니다.";
/// A chat whose sender name and text together do not fit one frame.
pub const MESSAGE_TOO_LONG: &str = "메시지가 너무 깁니다.";
/// Once, when a client starts sending faster than flood control allows; its messages
/// then wait.
pub const FLOOD_SLOW_DOWN: &str =
    "메시지를 너무 빨리 보내고 있습니다. 보낸 메시지는 천천히 처리됩니다.";
/// Before the disconnect of a client that stayed over the flood limit.
pub const FLOOD_DISCONNECT: &str = "메시지를 너무 빨리 계속 보내 연결을 끊습니다.";
/// A `CSHello` naming more than 32 features, or one longer than 32 bytes
/// (`features::MAX_FEATURES`, `features::MAX_FEATURE_LEN`).
pub const HELLO_TOO_LARGE: &str =
    "기능 목록이 너무 깁니다: 32개까지, 각각 32바이트까지 쓸 수 있습니다.";
/// An account request from a client that did not opt in to `accounts` (§7.2).
pub const ACCOUNTS_NOT_ENABLED: &str =
    "계정 기능을 쓰려면 먼저 CSHello 로 accounts 기능을 켜야 합니다.";
/// An account request to a server without accounts (no store, no cluster).
pub const ACCOUNTS_UNAVAILABLE: &str = "이 서버에서는 계정을 쓸 수 없습니다.";
/// `/register` while the client has its default name.
pub const REGISTER_NEEDS_NAME: &str = "먼저 /name 으로 등록할 이름을 정하세요.";
/// `/register` while logged in.
pub const REGISTER_WHILE_LOGGED_IN: &str = "이미 로그인되어 있습니다. 먼저 /logout 하세요.";
/// A password shorter than [`crate::accounts::MIN_PASSWORD_CHARS`].
pub const PASSWORD_TOO_SHORT: &str = "비밀번호는 8자 이상이어야 합니다.";
/// A password longer than [`crate::accounts::MAX_PASSWORD_BYTES`].
pub const PASSWORD_TOO_LONG: &str = "비밀번호는 128바이트를 넘을 수 없습니다.";
/// `/register` of a name that has an account already.
pub const ALREADY_REGISTERED: &str = "이미 등록된 이름입니다.";
/// `/login` or `/password` with a name and password that do not match.
pub const BAD_CREDENTIALS: &str = "이름 또는 비밀번호가 맞지 않습니다.";
/// Too many login or registration attempts.
pub const TOO_MANY_ATTEMPTS: &str = "시도가 너무 잦습니다. 잠시 후 다시 시도해 주세요.";
/// `/logout` or `/password` while not logged in.
pub const NOT_LOGGED_IN: &str = "로그인하지 않았습니다.";
/// `/password` done.
pub const PASSWORD_CHANGED: &str = "비밀번호를 바꿨습니다.";
/// `/logout` done.
pub const LOGGED_OUT: &str = "로그아웃했습니다.";
/// `/name X` where X (or a look-alike) is registered to an account the client is not
/// logged in as.
pub const NAME_REGISTERED: &str = "등록된 이름입니다. /login 으로 로그인해야 쓸 수 있습니다.";

/// `CSResume` from a client that did not opt in to `resume`.
pub const RESUME_NOT_ENABLED: &str =
    "로그인 유지 기능을 쓰려면 먼저 CSHello 로 resume 기능을 켜야 합니다.";
/// `CSResume` with a token that is not (or no longer) the account's.
pub const RESUME_FAILED: &str =
    "저장된 로그인이 만료되었거나 맞지 않습니다. 비밀번호로 다시 로그인하세요.";

/// `/delete N` from a client not logged in.
pub const DELETE_NEEDS_LOGIN: &str = "방을 지우려면 그 방을 만든 계정으로 로그인해야 합니다.";
/// `/delete N` of a room not registered to the client's account.
pub const NOT_ROOM_OWNER: &str = "내 계정에 등록된 방이 아닙니다.";

/// A room created while logged in: it is the account's.
pub fn room_registered(room: i64) -> String {
    format!(
        "{room}번 방이 내 계정에 등록되었습니다. 비어 있어도 남고, /delete {room} 으로 지울 수 있습니다."
    )
}

/// `/delete N` of an empty registered room.
pub fn room_deleted(room: i64) -> String {
    format!("{room}번 방을 지웠습니다.")
}

/// `/delete N` of a registered room with members.
pub fn room_unregistered(room: i64) -> String {
    format!("{room}번 방의 등록을 풀었습니다. 마지막 멤버가 나가면 사라집니다.")
}

/// `/history` from a client that did not opt in to `history` (§7.3).
pub const HISTORY_NOT_ENABLED: &str =
    "대화 기록을 보려면 먼저 CSHello 로 history 기능을 켜야 합니다.";
/// `/history` with a count outside 1..=200 or a line number below 1.
pub const HISTORY_BAD_REQUEST: &str =
    "대화 기록은 한 번에 1줄부터 200줄까지, 1번 줄 이후로 요청할 수 있습니다.";

/// `/msg` or `/ignore` from a client that did not opt in to `direct` (§7.5).
pub const DIRECT_NOT_ENABLED: &str = "귓속말을 쓰려면 먼저 CSHello 로 direct 기능을 켜야 합니다.";
/// `/msg` from a client that still has its default name.
pub const DIRECT_NEEDS_NAME: &str = "귓속말을 보내려면 먼저 /name 으로 이름을 정하세요.";
/// `/msg` to a name nobody connected holds (or one that is not a valid name).
pub const NO_SUCH_MEMBER: &str = "그런 이름으로 접속한 사람이 없습니다.";
/// `/msg` to oneself.
pub const DIRECT_TO_SELF: &str = "자기 자신에게는 귓속말을 보낼 수 없습니다.";
/// `/msg NAME` with nothing to say.
pub const DIRECT_EMPTY: &str = "보낼 내용이 없습니다.";
/// `/msg` to someone who ignores the sender.
pub const DIRECT_IGNORED: &str = "상대가 내 귓속말을 받지 않습니다.";
/// `/ignore` of oneself.
pub const IGNORE_SELF: &str = "자기 자신은 차단할 수 없습니다.";
/// `/ignore` past the limit (`command/direct.rs` `MAX_IGNORED`).
pub const IGNORE_LIMIT: &str = "귓속말 차단은 100명까지 할 수 있습니다.";
/// `/unignore` of a name not ignored.
pub const NOT_IGNORED: &str = "차단하지 않은 이름입니다.";

/// A direct message as a client that never opted in to `direct` reads it (the
/// reference client prints it as `[시스템 메시지] [NAME] 님의 귓속말: TEXT`): a system
/// message, which no client can send, with the sender's name in brackets, which no
/// name can hold — so nobody can make a chat or a name look like one.
pub fn direct_plain(from: &str, text: &str) -> String {
    format!("[{from}] 님의 귓속말: {text}")
}

/// `/ignore NAME` done.
pub fn ignoring(name: &str) -> String {
    format!("이제 {name} 님의 귓속말을 받지 않습니다.")
}

/// `/unignore NAME` done.
pub fn not_ignoring(name: &str) -> String {
    format!("다시 {name} 님의 귓속말을 받습니다.")
}

/// A moderation request from a client that did not opt in to `moderation` (§7.6).
pub const MODERATION_NOT_ENABLED: &str =
    "방 관리 기능을 쓰려면 먼저 CSHello 로 moderation 기능을 켜야 합니다.";
/// A moderation request in a guest room (registered to nobody).
pub const NOT_REGISTERED_ROOM: &str = "계정에 등록된 방에서만 방 관리 기능을 쓸 수 있습니다.";
/// Kick, ban, unban or topic by someone neither owner nor operator.
pub const NOT_OPERATOR: &str = "방장이나 운영자만 할 수 있습니다.";
/// `/op`, `/deop` or `/owner` by someone not the owner.
pub const NOT_THE_OWNER: &str = "방장만 할 수 있습니다.";
/// Kicking or banning the owner.
pub const CANNOT_TOUCH_OWNER: &str = "방장은 내보내거나 밴할 수 없습니다.";
/// An operator kicking or banning another operator.
pub const CANNOT_TOUCH_OPERATOR: &str = "운영자는 방장만 내보내거나 밴할 수 있습니다.";
/// Kicking, banning, opping or handing the room to oneself.
pub const CANNOT_TARGET_SELF: &str = "자기 자신에게는 할 수 없습니다.";
/// `/op`, `/owner` or `/ban` of a name that is no account (and, for a ban, no
/// member of the room).
pub const NO_SUCH_ACCOUNT: &str = "그런 이름의 계정이 없습니다.";
/// `/kick` of a name that is no member of the room.
pub const NO_SUCH_MEMBER_HERE: &str = "그런 이름의 멤버가 이 방에 없습니다.";
/// `/op` past the limit (`moderation::MAX_OPERATORS`).
pub const OPERATORS_FULL: &str = "운영자는 32명까지 둘 수 있습니다.";
/// `/deop` of a name that is no operator.
pub const NOT_AN_OPERATOR: &str = "운영자가 아닌 이름입니다.";
/// `/ban` past the limit (`moderation::MAX_BANS`).
pub const BANS_FULL: &str = "이 방의 밴 목록이 가득 찼습니다(256개). 먼저 /unban 하세요.";
/// `/ban NAME MINUTES` with minutes out of range.
pub const BAN_BAD_MINUTES: &str =
    "밴 시간은 1분부터 525600분까지 쓸 수 있습니다. 쓰지 않으면 풀 때까지입니다.";
/// `/unban` of a name not banned.
pub const NOT_BANNED: &str = "밴되지 않은 이름입니다.";
/// `/topic` too long.
pub const TOPIC_TOO_LONG: &str = "주제는 200자를 넘을 수 없습니다.";
/// `/topic` with a control or format character.
pub const TOPIC_CONTROL: &str = "주제에 제어 문자를 쓸 수 없습니다.";
/// A kick reason too long (`moderation::MAX_REASON_CHARS`).
pub const REASON_TOO_LONG: &str = "이유는 200자를 넘을 수 없습니다.";

/// `/op NAME` done (to the owner, and to NAME if connected).
pub fn opped(name: &str) -> String {
    format!("{name} 님이 이 방의 운영자가 되었습니다.")
}

/// `/deop NAME` done.
pub fn deopped(name: &str) -> String {
    format!("{name} 님은 이제 이 방의 운영자가 아닙니다.")
}

/// `/owner NAME` done (to every member).
pub fn owner_changed(name: &str) -> String {
    format!("이제 {name} 님이 이 방의 방장입니다.")
}

/// To a kicked member: who did it, and why if said.
pub fn kicked_self(by: &str, reason: &str) -> String {
    if reason.is_empty() {
        format!("[{by}] 님이 나를 방에서 내보냈습니다.")
    } else {
        format!("[{by}] 님이 나를 방에서 내보냈습니다. 이유: {reason}")
    }
}

/// To the room's other members when one is kicked.
pub fn kicked_others(name: &str, by: &str, reason: &str) -> String {
    if reason.is_empty() {
        format!("[{name}] 님이 [{by}] 님에 의해 방에서 내보내졌습니다.")
    } else {
        format!("[{name}] 님이 [{by}] 님에 의해 방에서 내보내졌습니다. 이유: {reason}")
    }
}

/// `/ban NAME [MINUTES]` done (to the operator).
pub fn banned(name: &str, minutes: Option<i64>) -> String {
    match minutes {
        Some(m) => format!("{name} 님을 {m}분 동안 이 방에서 밴했습니다."),
        None => format!("{name} 님을 풀 때까지 이 방에서 밴했습니다."),
    }
}

/// `/unban NAME` done.
pub fn unbanned(name: &str) -> String {
    format!("{name} 님의 밴을 풀었습니다.")
}

/// `/join` of a room that bans the client: until when.
pub fn join_banned(minutes_left: Option<u64>) -> String {
    match minutes_left {
        Some(m) => format!("이 방에서 밴되어 들어갈 수 없습니다. {m}분 뒤에 풀립니다."),
        None => {
            "이 방에서 밴되어 들어갈 수 없습니다. 방장이나 운영자가 풀 때까지입니다.".to_owned()
        }
    }
}

/// `/topic` done, to the one who set it.
pub fn topic_set(topic: Option<&str>) -> String {
    match topic {
        Some(topic) => format!("주제를 바꿨습니다: {topic}"),
        None => "주제를 지웠습니다.".to_owned(),
    }
}

/// `/register` done.
pub fn registered(name: &str) -> String {
    format!("이름 {name} 을 계정으로 등록했습니다. 이제 이 이름은 로그인해야 쓸 수 있습니다.")
}

/// `/login` done.
pub fn logged_in(name: &str) -> String {
    format!("{name} 으로 로그인했습니다.")
}

/// To every connected client when the server stops (`/shutdown`, SIGTERM, SIGINT),
/// the last message before the connection closes: a reference client shows it, where
/// it would otherwise only see the connection drop.
pub const SERVER_SHUTTING_DOWN: &str = "서버가 종료됩니다.";
/// `/shutdown` from a client the shutdown policy does not allow.
pub const SHUTDOWN_REFUSED: &str = "서버를 종료할 권한이 없습니다.";
/// After too many invalid messages in a row, just before the disconnect.
pub const TOO_MANY_ERRORS: &str = "잘못된 메시지가 너무 많아 연결을 끊습니다.";
/// To a connection refused because the server serves as many as it may
/// (`--max-connections`), before it is closed.
pub const SERVER_FULL: &str = "서버에 접속한 사람이 너무 많습니다. 잠시 후 다시 접속해 주세요.";
/// To a connection refused because its address has as many connections as it may
/// (`--max-connections-per-ip`), before it is closed.
pub const TOO_MANY_FROM_ADDRESS: &str =
    "이 주소에서 접속한 연결이 너무 많습니다. 다른 연결을 닫고 다시 접속해 주세요.";

/// `/create` when every room id the protocol can carry (int32) has been used.
pub const ROOM_IDS_EXHAUSTED: &str = "더 이상 방을 만들 수 없습니다: 방 번호를 모두 썼습니다.";

/// A command that needs shared state the server cannot reach right now (a cluster
/// backend that is down); nothing was changed.
pub const UNAVAILABLE: &str = "지금은 요청을 처리할 수 없습니다. 잠시 후 다시 시도해 주세요.";

/// To a client in a room on a cluster node that lost its place in the cluster (it
/// stalled past its deadline and was declared dead, or the shared store lost its
/// data): the others were told it left, so it is disconnected, then reconnects fresh.
pub const CLUSTER_RESET: &str =
    "서버가 클러스터와의 연결을 잃어 방에서 나가게 되었습니다. 다시 접속해 주세요.";

/// A chat the cluster may not have carried: the shared store went away while it was
/// on its way.
pub const CHAT_MAYBE_LOST: &str =
    "클러스터 연결이 끊겨 방금 보낸 메시지가 전달되지 않았을 수 있습니다.";

#[cfg(test)]
mod tests {
    #[test]
    fn default_name_looks_like_the_reference() {
        assert_eq!(super::default_name("127.0.0.1", 9001), "(127.0.0.1, 9001)");
        assert_eq!(super::default_name("::1", 9001), "(::1, 9001)");
    }
}
