//! Input lines → what to do: a [`Request`] for the server, or something local
//! (the help text, a usage error).
//!
//! The rules are the reference client's (`docs/PROTOCOL.md` §5): lines are trimmed,
//! empty lines ignored, a line not starting with `/` is a chat message, a command's
//! arguments are split on whitespace and joined again with one space. Nothing here
//! does I/O or knows the wire format.
//!
//! On a terminal a little more is understood ([`parse_typed`], [`terminal_help_lines`]):
//! `/quit` and `/exit` leave, and `/help` names each command's argument and the keys
//! that quit. Piped input keeps the reference's rules exactly — there `/quit` is an
//! invalid command — so scripted output stays byte-identical.

use std::fmt;

use chat_proto::Request;

use crate::render::escape;

/// The commands and their help texts, in the order `/help` lists them.
pub const COMMANDS: [(&str, &str); 7] = [
    ("/help", "사용 가능 명령어를 나열한다."),
    ("/name", "채팅 이름을 지정한다."),
    ("/rooms", "채팅 방 목록을 출력한다."),
    ("/create", "채팅 방을 만든다."),
    ("/join", "채팅 방에 들어간다."),
    ("/leave", "채팅 방을 나간다."),
    ("/shutdown", "채팅 서버를 종료한다."),
];

/// The commands as `/help` lists them on a terminal: with their arguments, the
/// accounts, history, direct messages and moderation (the server's extensions,
/// docs/PROTOCOL.md §7), and the ways to leave that only a terminal has.
pub const TERMINAL_COMMANDS: [(&str, &str); 25] = [
    ("/help", "사용 가능 명령어를 나열한다."),
    ("/name NAME", "채팅 이름을 지정한다."),
    ("/rooms", "채팅 방 목록을 출력한다."),
    ("/create TITLE", "채팅 방을 만든다."),
    ("/join N", "N 번 채팅 방에 들어간다."),
    ("/leave", "채팅 방을 나간다."),
    ("/shutdown", "채팅 서버를 종료한다."),
    (
        "/register PASSWORD",
        "지금 이름을 계정으로 등록한다. (비밀번호 8자 이상)",
    ),
    ("/login NAME PASSWORD", "계정에 로그인해 그 이름을 쓴다."),
    ("/logout", "계정에서 로그아웃한다."),
    ("/password OLD NEW", "비밀번호를 바꾼다."),
    (
        "/delete N",
        "내 계정에 등록된 N 번 방을 지운다. (멤버가 있으면 모두 나간 뒤에)",
    ),
    (
        "/history [N]",
        "지금 방의 최근 대화 N줄(기본 50, 최대 200)을 보여 준다.",
    ),
    ("/history more", "그보다 앞의 대화를 보여 준다."),
    ("/msg NAME TEXT", "NAME 님에게만 귓속말을 보낸다."),
    ("/ignore NAME", "NAME 님의 귓속말을 받지 않는다."),
    ("/unignore NAME", "NAME 님의 귓속말을 다시 받는다."),
    ("/op NAME", "NAME 님을 이 방의 운영자로 정한다."),
    ("/deop NAME", "NAME 님을 이 방의 운영자에서 뺀다."),
    ("/owner NAME", "방을 NAME 님에게 넘긴다."),
    ("/kick NAME [이유]", "NAME 님을 방에서 내보낸다."),
    (
        "/ban NAME [분]",
        "NAME 님을 방에서 밴한다 (분을 쓰지 않으면 풀 때까지).",
    ),
    ("/unban NAME", "NAME 님의 밴을 푼다."),
    ("/topic [TEXT]", "방 주제를 정한다 (없으면 지운다)."),
    (
        "/quit, /exit",
        "프로그램을 종료한다. (빈 줄에서 Ctrl-D 도 같다.)",
    ),
];

/// What one input line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Send this to the server.
    Send(Request),
    /// Print the command list.
    Help,
    /// Print this error; nothing is sent.
    Refused(LocalError),
    /// Leave, as at end of input (terminal only: see [`parse_typed`]).
    Quit,
    /// `/history more`: the page before the last one shown (the session knows
    /// where that was).
    HistoryMore,
}

/// A line the client refuses without asking the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalError {
    /// `/create` without a title.
    MissingTitle,
    /// `/join` without a positive room number.
    MissingRoomId,
    /// A `/word` that is not a command; carries the word.
    InvalidCommand(String),
    /// An extension's command without its arguments (or with wrong ones); carries
    /// its usage.
    Usage(&'static str),
}

impl fmt::Display for LocalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocalError::MissingTitle => f.write_str("방 제목을 지정해야 됩니다."),
            LocalError::MissingRoomId => f.write_str("방 번호를 입력해야 됩니다."),
            // Escaped: a piped input line may hold control characters too.
            LocalError::InvalidCommand(word) => write!(f, "Invalid command: {}", escape(word)),
            LocalError::Usage(usage) => write!(f, "사용법: {usage}"),
        }
    }
}

/// The lines `/help` prints: `/name: 채팅 이름을 지정한다.` and so on.
pub fn help_lines() -> impl Iterator<Item = String> {
    COMMANDS
        .iter()
        .map(|(command, help)| format!("{command}: {help}"))
}

/// The lines `/help` prints on a terminal: `/name NAME: 채팅 이름을 지정한다.` and so
/// on, then `/quit, /exit` and Ctrl-D.
pub fn terminal_help_lines() -> impl Iterator<Item = String> {
    TERMINAL_COMMANDS
        .iter()
        .map(|(command, help)| format!("{command}: {help}"))
}

/// Parses a line typed at a terminal: as [`parse_line`], plus `/quit` and `/exit`
/// and the extensions' commands (a password is one word: no spaces). `/msg NAME
/// TEXT` and `/kick NAME [REASON]` take their name as one word and their text or
/// reason as the rest of the line, as typed (trimmed); `/ignore`, `/unignore`,
/// `/op`, `/deop`, `/owner` and `/unban` take the rest of the line as the name;
/// `/ban NAME [MINUTES]` a one-word name and, if given, a whole number of minutes
/// (the server checks its range); `/topic [TEXT]` the rest of the line, none to
/// clear the topic.
pub fn parse_typed(line: &str) -> Option<Command> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let send = |request| Some(Command::Send(request));
    let usage = |usage| Some(Command::Refused(LocalError::Usage(usage)));
    match words.as_slice() {
        ["/quit" | "/exit", ..] => Some(Command::Quit),
        ["/register", password] => send(Request::Register {
            password: (*password).to_owned(),
        }),
        ["/register", ..] => usage("/register PASSWORD"),
        ["/login", name, password] => send(Request::Login {
            name: (*name).to_owned(),
            password: (*password).to_owned(),
        }),
        ["/login", ..] => usage("/login NAME PASSWORD"),
        ["/logout"] => send(Request::Logout),
        ["/logout", ..] => usage("/logout"),
        ["/password", old, new] => send(Request::ChangePassword {
            old: (*old).to_owned(),
            new: (*new).to_owned(),
        }),
        ["/password", ..] => usage("/password OLD NEW"),
        ["/delete", room] if room.parse::<i64>().is_ok_and(|n| n > 0) => {
            send(Request::DeleteRoom {
                room_id: room.parse().unwrap_or_default(),
            })
        }
        ["/delete", ..] => usage("/delete N"),
        ["/history"] => send(Request::History {
            count: None,
            before: None,
        }),
        ["/history", "more"] => Some(Command::HistoryMore),
        ["/history", count] if count.parse::<i64>().is_ok() => send(Request::History {
            count: count.parse().ok(),
            before: None,
        }),
        ["/history", ..] => usage("/history [N] | /history more"),
        ["/msg", name, _, ..] => send(Request::Direct {
            name: (*name).to_owned(),
            text: after_words(line, 2).to_owned(),
        }),
        ["/msg", ..] => usage("/msg NAME TEXT"),
        ["/ignore", _, ..] => send(Request::Ignore {
            name: after_words(line, 1).to_owned(),
            ignore: true,
        }),
        ["/ignore"] => usage("/ignore NAME"),
        ["/unignore", _, ..] => send(Request::Ignore {
            name: after_words(line, 1).to_owned(),
            ignore: false,
        }),
        ["/unignore"] => usage("/unignore NAME"),
        ["/op", _, ..] => send(Request::Op {
            name: after_words(line, 1).to_owned(),
            op: true,
        }),
        ["/op"] => usage("/op NAME"),
        ["/deop", _, ..] => send(Request::Op {
            name: after_words(line, 1).to_owned(),
            op: false,
        }),
        ["/deop"] => usage("/deop NAME"),
        ["/owner", _, ..] => send(Request::Owner {
            name: after_words(line, 1).to_owned(),
        }),
        ["/owner"] => usage("/owner NAME"),
        ["/kick", name, ..] => send(Request::Kick {
            name: (*name).to_owned(),
            reason: after_words(line, 2).to_owned(),
        }),
        ["/kick"] => usage("/kick NAME [이유]"),
        ["/ban", name] => send(Request::Ban {
            name: (*name).to_owned(),
            minutes: None,
            ban: true,
        }),
        ["/ban", name, minutes] if minutes.parse::<i64>().is_ok() => send(Request::Ban {
            name: (*name).to_owned(),
            minutes: minutes.parse().ok(),
            ban: true,
        }),
        ["/ban", ..] => usage("/ban NAME [분]"),
        ["/unban", _, ..] => send(Request::Ban {
            name: after_words(line, 1).to_owned(),
            minutes: None,
            ban: false,
        }),
        ["/unban"] => usage("/unban NAME"),
        ["/topic", ..] => send(Request::Topic {
            text: after_words(line, 1).to_owned(),
        }),
        _ => parse_line(line),
    }
}

/// `line` without its first `n` whitespace-separated words, trimmed: what follows
/// them as typed (inner runs of spaces kept).
fn after_words(line: &str, n: usize) -> &str {
    let mut rest = line.trim_start();
    for _ in 0..n {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        rest = rest[end..].trim_start();
    }
    rest.trim_end()
}

/// Whether a typed line carries a password (it is then never kept in history).
pub fn holds_password(line: &str) -> bool {
    matches!(
        line.split_whitespace().next(),
        Some("/register" | "/login" | "/password")
    )
}

/// A typed line as it may be shown again: its passwords as `********`.
pub fn masked(line: &str) -> String {
    if !holds_password(line) {
        return line.to_owned();
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    // `/login NAME` keeps the name; every other argument is a password.
    let keep = if words.first() == Some(&"/login") {
        2
    } else {
        1
    };
    words
        .iter()
        .enumerate()
        .map(|(i, word)| if i < keep { *word } else { "********" })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parses one input line (with or without its line ending). `None` for a blank line.
pub fn parse_line(line: &str) -> Option<Command> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    if !line.starts_with('/') {
        return Some(Command::Send(Request::Chat {
            text: line.to_owned(),
        }));
    }
    let mut words = line.split_whitespace();
    // `line` is non-empty and trimmed, so it has a first word.
    let command = words.next().unwrap_or(line);
    let args: Vec<&str> = words.collect();
    let joined = || args.join(" ");
    Some(match command {
        "/help" => Command::Help,
        "/name" => Command::Send(Request::Name { name: joined() }),
        "/rooms" => Command::Send(Request::Rooms),
        "/create" => match joined() {
            title if title.is_empty() => Command::Refused(LocalError::MissingTitle),
            title => Command::Send(Request::CreateRoom { title }),
        },
        "/join" => match args.first().and_then(|arg| parse_room_id(arg)) {
            Some(room_id) => Command::Send(Request::JoinRoom { room_id }),
            None => Command::Refused(LocalError::MissingRoomId),
        },
        "/leave" => Command::Send(Request::LeaveRoom),
        "/shutdown" => Command::Send(Request::Shutdown),
        other => Command::Refused(LocalError::InvalidCommand(other.to_owned())),
    })
}

/// A positive room number: decimal digits with an optional `+`. Numbers too large for
/// an `i64` saturate (no such room exists, and the server says so). Zero, negative
/// numbers and non-numbers are refused: the reference client crashes on `/join x`
/// and sends `/join -1`, which can never name a room.
fn parse_room_id(arg: &str) -> Option<i64> {
    let digits = arg.strip_prefix('+').unwrap_or(arg);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let id = digits.parse::<i64>().unwrap_or(i64::MAX);
    (id > 0).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(line: &str) -> Request {
        match parse_line(line) {
            Some(Command::Send(request)) => request,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    fn refused(line: &str) -> String {
        match parse_line(line) {
            Some(Command::Refused(error)) => error.to_string(),
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    #[test]
    fn blank_lines_are_ignored() {
        assert_eq!(parse_line(""), None);
        assert_eq!(parse_line("   \t \r\n"), None);
    }

    #[test]
    fn plain_lines_are_chat_trimmed() {
        assert_eq!(
            send("  안녕  하세요 \r\n"),
            Request::Chat {
                text: "안녕  하세요".into()
            }
        );
        assert_eq!(
            send("a / b"),
            Request::Chat {
                text: "a / b".into()
            }
        );
    }

    #[test]
    fn name_joins_arguments_with_one_space() {
        assert_eq!(
            send("/name a   b\tc"),
            Request::Name {
                name: "a b c".into()
            }
        );
        assert_eq!(send("/name"), Request::Name { name: "".into() });
    }

    #[test]
    fn create_needs_a_title() {
        assert_eq!(
            send("/create  my   room "),
            Request::CreateRoom {
                title: "my room".into()
            }
        );
        assert_eq!(refused("/create"), "방 제목을 지정해야 됩니다.");
        assert_eq!(refused("/create   "), "방 제목을 지정해야 됩니다.");
    }

    #[test]
    fn join_needs_a_positive_number() {
        assert_eq!(send("/join 3"), Request::JoinRoom { room_id: 3 });
        assert_eq!(send("/join +7 extra"), Request::JoinRoom { room_id: 7 });
        assert_eq!(
            send("/join 99999999999999999999999"),
            Request::JoinRoom { room_id: i64::MAX }
        );
        for line in [
            "/join",
            "/join 0",
            "/join -1",
            "/join x",
            "/join 1.5",
            "/join +",
        ] {
            assert_eq!(refused(line), "방 번호를 입력해야 됩니다.", "{line}");
        }
    }

    #[test]
    fn simple_commands_ignore_arguments() {
        assert_eq!(send("/rooms"), Request::Rooms);
        assert_eq!(send("/rooms please"), Request::Rooms);
        assert_eq!(send("/leave"), Request::LeaveRoom);
        assert_eq!(send("/shutdown now"), Request::Shutdown);
        assert_eq!(parse_line("/help"), Some(Command::Help));
    }

    #[test]
    fn unknown_commands_are_named() {
        assert_eq!(refused("/x 1 2"), "Invalid command: /x");
        assert_eq!(refused("/"), "Invalid command: /");
        assert_eq!(refused("/HELP"), "Invalid command: /HELP");
        assert_eq!(refused("/e\x1b[2J"), "Invalid command: /e\\x1b[2J");
    }

    #[test]
    fn quit_and_exit_only_when_typed() {
        assert_eq!(parse_typed(" /quit "), Some(Command::Quit));
        assert_eq!(parse_typed("/exit now"), Some(Command::Quit));
        assert_eq!(parse_typed("/rooms"), Some(Command::Send(Request::Rooms)));
        assert_eq!(parse_typed(""), None);
        // Piped input keeps the reference's answer.
        assert_eq!(refused("/quit"), "Invalid command: /quit");
        assert_eq!(refused("/exit"), "Invalid command: /exit");
    }

    #[test]
    fn terminal_help_names_arguments_and_ctrl_d() {
        let lines: Vec<String> = terminal_help_lines().collect();
        assert!(lines.contains(&"/name NAME: 채팅 이름을 지정한다.".to_owned()));
        assert!(lines.contains(&"/create TITLE: 채팅 방을 만든다.".to_owned()));
        assert!(lines.iter().any(|l| l.starts_with("/join N: ")));
        assert!(
            lines
                .iter()
                .any(|l| l.contains("/quit") && l.contains("Ctrl-D"))
        );
    }

    #[test]
    fn help_lists_every_command_in_order() {
        let lines: Vec<String> = help_lines().collect();
        assert_eq!(lines.len(), 7);
        assert_eq!(lines[0], "/help: 사용 가능 명령어를 나열한다.");
        assert_eq!(lines[6], "/shutdown: 채팅 서버를 종료한다.");
    }

    #[test]
    fn account_commands_on_a_terminal_only() {
        let typed = |line: &str| match parse_typed(line) {
            Some(Command::Send(request)) => Ok(request),
            Some(Command::Refused(error)) => Err(error.to_string()),
            other => panic!("{line:?} gave {other:?}"),
        };
        assert_eq!(
            typed("/register  correct-horse "),
            Ok(Request::Register {
                password: "correct-horse".into()
            })
        );
        assert_eq!(
            typed("/login Alice pw12345678"),
            Ok(Request::Login {
                name: "Alice".into(),
                password: "pw12345678".into()
            })
        );
        assert_eq!(typed("/logout"), Ok(Request::Logout));
        assert_eq!(
            typed("/password old1 new2"),
            Ok(Request::ChangePassword {
                old: "old1".into(),
                new: "new2".into()
            })
        );
        assert_eq!(typed("/register"), Err("사용법: /register PASSWORD".into()));
        assert_eq!(
            typed("/login Alice"),
            Err("사용법: /login NAME PASSWORD".into())
        );
        assert_eq!(
            typed("/password a"),
            Err("사용법: /password OLD NEW".into())
        );
        assert_eq!(typed("/logout now"), Err("사용법: /logout".into()));
        // Piped input keeps the reference's rules: not commands there.
        assert_eq!(refused("/register pw"), "Invalid command: /register");
    }

    #[test]
    fn direct_commands_on_a_terminal_only() {
        let typed = |line: &str| match parse_typed(line) {
            Some(Command::Send(request)) => Ok(request),
            Some(Command::Refused(error)) => Err(error.to_string()),
            other => panic!("{line:?} gave {other:?}"),
        };
        let direct = |name: &str, text: &str| {
            Ok(Request::Direct {
                name: name.into(),
                text: text.into(),
            })
        };
        let ignore = |name: &str, ignore: bool| {
            Ok(Request::Ignore {
                name: name.into(),
                ignore,
            })
        };
        assert_eq!(typed("/msg bob hi"), direct("bob", "hi"));
        // The text is the rest of the line as typed, trimmed: inner spaces stay.
        assert_eq!(
            typed("  /msg\tbob   안녕  하세요 😀 \r\n"),
            direct("bob", "안녕  하세요 😀")
        );
        assert_eq!(typed("/msg bob /rooms"), direct("bob", "/rooms"));
        assert_eq!(typed("/msg"), Err("사용법: /msg NAME TEXT".into()));
        assert_eq!(typed("/msg bob"), Err("사용법: /msg NAME TEXT".into()));
        assert_eq!(typed("/msg   bob   "), Err("사용법: /msg NAME TEXT".into()));
        // The name of `/ignore` is the rest of the line, trimmed.
        assert_eq!(typed("/ignore bob"), ignore("bob", true));
        assert_eq!(
            typed(" /ignore  (127.0.0.1, 9001) "),
            ignore("(127.0.0.1, 9001)", true)
        );
        assert_eq!(typed("/unignore 김 철수"), ignore("김 철수", false));
        assert_eq!(typed("/ignore"), Err("사용법: /ignore NAME".into()));
        assert_eq!(typed("/unignore  "), Err("사용법: /unignore NAME".into()));
        // A longer word is not the command.
        assert_eq!(typed("/msgs bob hi"), Err("Invalid command: /msgs".into()));
        // Piped input keeps the reference's rules: not commands there.
        assert_eq!(refused("/msg bob hi"), "Invalid command: /msg");
        assert_eq!(refused("/ignore bob"), "Invalid command: /ignore");
        assert_eq!(refused("/unignore bob"), "Invalid command: /unignore");
        // Nothing secret: the line is shown and kept as typed.
        assert!(!holds_password("/msg bob hunter2"));
        assert_eq!(masked("/msg bob hi"), "/msg bob hi");
    }

    #[test]
    fn terminal_help_lists_direct_commands() {
        let lines: Vec<String> = terminal_help_lines().collect();
        let at = |prefix: &str| {
            lines
                .iter()
                .position(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("{prefix} not in {lines:?}"))
        };
        assert_eq!(
            lines[at("/msg ")],
            "/msg NAME TEXT: NAME 님에게만 귓속말을 보낸다."
        );
        assert_eq!(
            lines[at("/ignore ")],
            "/ignore NAME: NAME 님의 귓속말을 받지 않는다."
        );
        assert_eq!(
            lines[at("/unignore ")],
            "/unignore NAME: NAME 님의 귓속말을 다시 받는다."
        );
        assert!(at("/history more") < at("/msg ") && at("/unignore ") < at("/quit"));
        // Piped `/help` stays the reference's.
        assert!(!help_lines().any(|l| l.contains("귓속말")));
    }

    #[test]
    fn moderation_commands_on_a_terminal_only() {
        let typed = |line: &str| match parse_typed(line) {
            Some(Command::Send(request)) => Ok(request),
            Some(Command::Refused(error)) => Err(error.to_string()),
            other => panic!("{line:?} gave {other:?}"),
        };
        let op = |name: &str, op: bool| {
            Ok(Request::Op {
                name: name.into(),
                op,
            })
        };
        let kick = |name: &str, reason: &str| {
            Ok(Request::Kick {
                name: name.into(),
                reason: reason.into(),
            })
        };
        let ban = |name: &str, minutes: Option<i64>, ban: bool| {
            Ok(Request::Ban {
                name: name.into(),
                minutes,
                ban,
            })
        };
        let topic = |text: &str| Ok(Request::Topic { text: text.into() });
        // One-argument commands take the rest of the line as the name, trimmed.
        assert_eq!(typed("/op bob"), op("bob", true));
        assert_eq!(typed(" /deop\t김 철수 "), op("김 철수", false));
        assert_eq!(
            typed("/owner  bob "),
            Ok(Request::Owner { name: "bob".into() })
        );
        assert_eq!(typed("/unban bob"), ban("bob", None, false));
        assert_eq!(typed("/unban 김  철수"), ban("김  철수", None, false));
        // `/kick`: a one-word name, then the reason as typed (none: empty).
        assert_eq!(typed("/kick bob"), kick("bob", ""));
        assert_eq!(typed("/kick bob  "), kick("bob", ""));
        assert_eq!(
            typed("/kick bob  도배  그만 😀 \r\n"),
            kick("bob", "도배  그만 😀")
        );
        // `/ban`: a one-word name and perhaps a whole number of minutes; the
        // server checks the range.
        assert_eq!(typed("/ban bob"), ban("bob", None, true));
        assert_eq!(typed("/ban bob 30"), ban("bob", Some(30), true));
        assert_eq!(typed("/ban  bob\t+5 "), ban("bob", Some(5), true));
        assert_eq!(typed("/ban bob -1"), ban("bob", Some(-1), true));
        assert_eq!(typed("/ban bob 0"), ban("bob", Some(0), true));
        for line in [
            "/ban",
            "/ban bob 30m",
            "/ban bob 1.5",
            "/ban bob 30 more",
            "/ban 김 철수",
            "/ban bob 99999999999999999999",
        ] {
            assert_eq!(typed(line), Err("사용법: /ban NAME [분]".into()), "{line}");
        }
        // `/topic`: the rest of the line as typed; alone, it clears the topic.
        assert_eq!(typed("/topic  오늘은  Rust 😀 "), topic("오늘은  Rust 😀"));
        assert_eq!(typed("/topic"), topic(""));
        assert_eq!(typed("/topic   "), topic(""));
        // Usage for a missing name.
        assert_eq!(typed("/op"), Err("사용법: /op NAME".into()));
        assert_eq!(typed("/deop "), Err("사용법: /deop NAME".into()));
        assert_eq!(typed("/owner"), Err("사용법: /owner NAME".into()));
        assert_eq!(typed("/kick"), Err("사용법: /kick NAME [이유]".into()));
        assert_eq!(typed("/unban"), Err("사용법: /unban NAME".into()));
        // A longer word is not the command.
        assert_eq!(typed("/ops bob"), Err("Invalid command: /ops".into()));
        assert_eq!(typed("/topics"), Err("Invalid command: /topics".into()));
        // Piped input keeps the reference's rules: not commands there.
        for command in [
            "/op", "/deop", "/owner", "/kick", "/ban", "/unban", "/topic",
        ] {
            assert_eq!(
                refused(&format!("{command} bob")),
                format!("Invalid command: {command}")
            );
        }
        // Nothing secret: the line is shown and kept as typed.
        assert!(!holds_password("/kick bob hunter2"));
        assert_eq!(masked("/topic hi"), "/topic hi");
    }

    #[test]
    fn terminal_help_lists_moderation_commands() {
        let lines: Vec<String> = terminal_help_lines().collect();
        let at = |prefix: &str| {
            lines
                .iter()
                .position(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("{prefix} not in {lines:?}"))
        };
        let first = at("/op ");
        assert_eq!(
            lines[first..first + 7],
            [
                "/op NAME: NAME 님을 이 방의 운영자로 정한다.",
                "/deop NAME: NAME 님을 이 방의 운영자에서 뺀다.",
                "/owner NAME: 방을 NAME 님에게 넘긴다.",
                "/kick NAME [이유]: NAME 님을 방에서 내보낸다.",
                "/ban NAME [분]: NAME 님을 방에서 밴한다 (분을 쓰지 않으면 풀 때까지).",
                "/unban NAME: NAME 님의 밴을 푼다.",
                "/topic [TEXT]: 방 주제를 정한다 (없으면 지운다).",
            ]
        );
        assert!(at("/unignore ") < first && first + 7 == at("/quit"));
        // Piped `/help` stays the reference's.
        assert!(!help_lines().any(|l| l.contains("운영자") || l.contains("주제")));
    }

    #[test]
    fn passwords_are_masked_and_never_kept() {
        assert_eq!(masked("/register secret"), "/register ********");
        assert_eq!(masked("/login  Alice secret"), "/login Alice ********");
        assert_eq!(masked("/password old new"), "/password ******** ********");
        assert_eq!(masked("hello /login x y"), "hello /login x y");
        assert!(holds_password("/login a b") && !holds_password("/logout"));
    }
}
