//! Every text the server sends, in one place.
//!
//! The protocol texts are the reference server's, byte for byte (PROTOCOL.md §4),
//! including its spacing (`X 으로`). The client adds the `[시스템 메시지]` prefix;
//! these never include it. Texts for refusals the reference server did not have
//! (invalid names, oversized messages, …) follow the same style.

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

pub const CREATE_WHILE_IN_ROOM: &str = "대화 방에 있을 때는 방을 개설 할 수 없습니다.";
pub const JOIN_WHILE_IN_ROOM: &str = "대화 방에 있을 때는 다른 방에 들어갈 수 없습니다.";
pub const NO_SUCH_ROOM: &str = "대화방이 존재하지 않습니다.";
pub const NOT_IN_ROOM: &str = "현재 대화방에 들어가 있지 않습니다.";

pub const NAME_EMPTY: &str = "이름은 비어 있을 수 없습니다.";
pub const NAME_TOO_LONG: &str = "이름은 32자를 넘을 수 없습니다.";
pub const NAME_CONTROL: &str = "이름에 제어 문자를 쓸 수 없습니다.";
pub const NAME_RESERVED: &str = "시스템 메시지 는 이름으로 쓸 수 없습니다.";
pub const TITLE_EMPTY: &str = "방 제목은 비어 있을 수 없습니다.";
pub const TITLE_TOO_LONG: &str = "방 제목은 64자를 넘을 수 없습니다.";
pub const TITLE_CONTROL: &str = "방 제목에 제어 문자를 쓸 수 없습니다.";
pub const MESSAGE_TOO_LONG: &str = "메시지가 너무 깁니다.";
pub const SHUTDOWN_REFUSED: &str = "서버를 종료할 권한이 없습니다.";
pub const TOO_MANY_ERRORS: &str = "잘못된 메시지가 너무 많아 연결을 끊습니다.";
