//! `--registered-rooms`: what the rooms' owner says and what each answer means,
//! without I/O. The connection that carries it is in `driver/owner.rs`.
//!
//! A server with a store keeps the history of *registered* rooms on disk
//! (`docs/PROTOCOL.md` §7.2, "Rooms that last", and §7.3): rooms created by a client
//! logged in to an account. The bench's usual rooms are guest rooms, created by their
//! first member, whose history lives in memory only. To measure what durable history
//! costs, the measured rooms can be registered ones instead: during setup, before any
//! member connects, one extra connection — the owner —
//!
//! 1. opts in to `accounts` (`CSHello`) and checks the server's `SCHello` lists it (a
//!    server or cluster node run with `--no-store` does not);
//! 2. takes a name of its own and registers it as an account (`CSRegister`; the server
//!    answers once the account is stored, after ~50 ms of Argon2);
//! 3. for each room: creates it (`CSCreateRoom`), which registers it to the account —
//!    the entry notice, then `N번 방이 내 계정에 등록되었습니다. …` with the room's id
//!    N — and leaves it (`CSLeaveRoom`): a registered room stays when it is empty.
//!
//! The members then all *join* the rooms by those ids (no `/rooms` lookup is needed),
//! and the owner is closed. One account holds every room: the server limits
//! registrations per address (10, then one every 5 s).
//!
//! Each request waits for its answer, except that a room's `/create` and `/leave` go
//! together: the registered notice is part of the answer to `/create`, so it comes
//! before the `/leave` is handled, and a server that did not register the room
//! answers the `/leave` instead, which tells it at once rather than after
//! `--setup-timeout`.
//!
//! Every answer is checked against the texts of `docs/PROTOCOL.md`; anything else
//! ends the setup with what the server said. One answer is let pass: flood control's
//! warning, since the server's command limit (5/s after 20) slows the owner down
//! without refusing anything (servers under test run with `--flood-control=off`).

use chat_proto::{Request, Response};

/// What the owner opts in to.
pub const FEATURE: &str = "accounts";

/// The answer to an account request on a server without accounts (`--no-store`).
const ACCOUNTS_UNAVAILABLE: &str = "이 서버에서는 계정을 쓸 수 없습니다.";
/// Registrations from one address are limited (10, then one every 5 s).
const TOO_MANY_ATTEMPTS: &str = "시도가 너무 잦습니다. 잠시 후 다시 시도해 주세요.";
/// Flood control's warning: the owner's commands are slowed, not refused.
const FLOOD_WARNING: &str = "메시지를 너무 빨리 보내고 있습니다. 보낸 메시지는 천천히 처리됩니다.";
/// Flood control's last word before it cuts the connection.
const FLOOD_DISCONNECT: &str = "메시지를 너무 빨리 계속 보내 연결을 끊습니다.";

/// Where the owner is in its dialogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Sent `CSHello`; waiting for `SCHello`.
    Hello,
    /// Sent `CSName`; waiting for the rename notice.
    Naming,
    /// Sent `CSRegister`; waiting for the account to be stored.
    Registering,
    /// Sent `/create` and `/leave` of room `r`; waiting for its entry notice.
    Entering(usize),
    /// Waiting for room `r`'s registered notice.
    Registered(usize),
    /// Waiting for the notice that the owner left room `r`.
    Leaving(usize),
    /// Every room is registered and empty.
    Done,
}

/// The owner's side of the dialogue (see the module docs).
#[derive(Debug, Clone)]
pub struct Owner {
    name: String,
    password: String,
    titles: Vec<String>,
    /// The registered rooms' ids so far, in the order of `titles`.
    ids: Vec<i64>,
    phase: Phase,
}

impl Owner {
    /// An owner that will register the account `name` (with `password`, at least 8
    /// characters) and create one room per title.
    pub fn new(name: String, password: String, titles: Vec<String>) -> Self {
        Self {
            name,
            password,
            ids: Vec::with_capacity(titles.len()),
            titles,
            phase: Phase::Hello,
        }
    }

    /// The account's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The first request, to send once connected.
    pub fn start(&self) -> Vec<Request> {
        vec![Request::Hello {
            features: vec![FEATURE.to_owned()],
        }]
    }

    /// Once the dialogue is over: every room's id, in the order of the titles.
    pub fn room_ids(&self) -> Option<&[i64]> {
        (self.phase == Phase::Done).then_some(&self.ids[..])
    }

    /// Whether the account is stored (the rooms come next).
    pub fn account_registered(&self) -> bool {
        !matches!(
            self.phase,
            Phase::Hello | Phase::Naming | Phase::Registering
        )
    }

    /// What the owner is waiting for, for a timeout's message.
    pub fn waiting_for(&self) -> String {
        let n = self.titles.len();
        match self.phase {
            Phase::Hello => "the answer to CSHello".into(),
            Phase::Naming => format!("the answer to renaming itself {}", self.name),
            Phase::Registering => "the answer to CSRegister".into(),
            Phase::Entering(r) => format!("the entry notice of room {} of {n}", r + 1),
            Phase::Registered(r) => format!("the registered notice of room {} of {n}", r + 1),
            Phase::Leaving(r) => format!("the notice of leaving room {} of {n}", r + 1),
            Phase::Done => "nothing".into(),
        }
    }

    /// Handles one message from the server: the requests to send next (none while it
    /// waits for more), or why setup cannot go on.
    pub fn on_response(&mut self, message: &Response<'_>) -> Result<Vec<Request>, String> {
        let text = match message {
            Response::SystemMessage { text } => text.as_ref(),
            Response::Hello { features, server } if self.phase == Phase::Hello => {
                if !features.iter().any(|f| f == FEATURE) {
                    return Err(format!(
                        "the server ({server}) does not offer accounts (its SCHello \
                         lists {features:?}): registered rooms need a server that offers \
                         accounts (one with its store, or a cluster node; not --no-store)"
                    ));
                }
                self.phase = Phase::Naming;
                return Ok(vec![Request::Name {
                    name: self.name.clone(),
                }]);
            }
            other => {
                return Err(format!(
                    "unexpected {} while waiting for {}",
                    other.type_name(),
                    self.waiting_for()
                ));
            }
        };
        if text == FLOOD_WARNING {
            return Ok(Vec::new());
        }
        if text == FLOOD_DISCONNECT {
            return Err(format!(
                "the server's flood control cut the owner ({text}): it allows 20 commands, \
                 then 5 a second, and cuts a client over that for 15 s, which is about 45 \
                 rooms (two commands each); run the server with --flood-control=off"
            ));
        }
        match self.phase {
            Phase::Naming if text == format!("이름이 {} 으로 변경되었습니다.", self.name) =>
            {
                self.phase = Phase::Registering;
                Ok(vec![Request::Register {
                    password: self.password.clone(),
                }])
            }
            Phase::Registering
                if text.starts_with(&format!("이름 {} 을 계정으로 등록했습니다.", self.name)) =>
            {
                Ok(self.next_room(0))
            }
            Phase::Registering if text == ACCOUNTS_UNAVAILABLE => Err(format!(
                "the server has no accounts ({text}): registered rooms need a server with \
                 its store (not --no-store)"
            )),
            Phase::Registering if text == TOO_MANY_ATTEMPTS => Err(format!(
                "the server refused the registration ({text}): it allows 10 \
                 registrations and logins per address, then one every 5 s"
            )),
            Phase::Entering(r) if text == entry_notice(&self.titles[r]) => {
                self.phase = Phase::Registered(r);
                Ok(Vec::new())
            }
            Phase::Registered(r) => match registered_room(text) {
                Some(id) => {
                    self.ids.push(id);
                    self.phase = Phase::Leaving(r);
                    Ok(Vec::new())
                }
                None if text == left_notice(&self.titles[r]) => Err(format!(
                    "the server did not register room {:?} to the owner's account (no \
                     `N번 방이 내 계정에 등록되었습니다.` after its entry notice)",
                    self.titles[r]
                )),
                None => Err(self.refused(text)),
            },
            Phase::Leaving(r) if text == left_notice(&self.titles[r]) => Ok(self.next_room(r + 1)),
            _ => Err(self.refused(text)),
        }
    }

    /// The requests for room `r`, or the end when every room is done.
    fn next_room(&mut self, r: usize) -> Vec<Request> {
        let Some(title) = self.titles.get(r) else {
            self.phase = Phase::Done;
            return Vec::new();
        };
        self.phase = Phase::Entering(r);
        vec![
            Request::CreateRoom {
                title: title.clone(),
            },
            Request::LeaveRoom,
        ]
    }

    fn refused(&self, text: &str) -> String {
        format!(
            "the server answered `{text}` while the owner was waiting for {}",
            self.waiting_for()
        )
    }
}

/// `방제[T] 방에 입장했습니다.`: the creator (or a member) entered room T.
pub fn entry_notice(title: &str) -> String {
    format!("방제[{title}] 방에 입장했습니다.")
}

/// `방제[T] 대화 방에서 퇴장했습니다.`: self left room T.
pub fn left_notice(title: &str) -> String {
    format!("방제[{title}] 대화 방에서 퇴장했습니다.")
}

/// The room id N of `N번 방이 내 계정에 등록되었습니다. 비어 있어도 남고, /delete N 으로
/// 지울 수 있습니다.` (the creator's notice that a room is registered to its account);
/// `None` for any other text.
pub fn registered_room(text: &str) -> Option<i64> {
    let (id, rest) = text.split_once("번 방이 내 계정에 등록되었습니다.")?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let id: i64 = id.parse().ok().filter(|&id| id > 0)?;
    // The notice names the room twice; both must agree.
    rest.contains(&format!("/delete {id} ")).then_some(id)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn system(text: &str) -> Response<'static> {
        Response::SystemMessage {
            text: Cow::Owned(text.to_owned()),
        }
    }

    fn hello(features: &[&str]) -> Response<'static> {
        Response::Hello {
            features: features.iter().map(|&f| f.to_owned()).collect(),
            server: Cow::Borrowed("chat-server/0.1.0"),
        }
    }

    fn owner(rooms: usize) -> Owner {
        let titles = (0..rooms).map(|r| format!("ab12.{r}")).collect();
        Owner::new("bench-owner-7-ab12".into(), "password-7".into(), titles)
    }

    /// Hello, name and registration answered as the server answers them.
    fn registered(o: &mut Owner) -> Vec<Request> {
        assert!(o.on_response(&hello(&["accounts"])).is_ok());
        o.on_response(&system("이름이 bench-owner-7-ab12 으로 변경되었습니다."))
            .unwrap();
        o.on_response(&system(
            "이름 bench-owner-7-ab12 을 계정으로 등록했습니다. 이제 이 이름은 로그인해야 쓸 수 있습니다.",
        ))
        .unwrap()
    }

    #[test]
    fn the_registered_notice_gives_the_room_id() {
        let text = "42번 방이 내 계정에 등록되었습니다. 비어 있어도 남고, /delete 42 으로 지울 수 있습니다.";
        assert_eq!(registered_room(text), Some(42));
        assert_eq!(
            registered_room(
                "7번 방이 내 계정에 등록되었습니다. 비어 있어도 남고, /delete 7 으로 지울 수 있습니다."
            ),
            Some(7)
        );
        // Not this notice, or a malformed one.
        for text in [
            "42번 방이 내 계정에 등록되었습니다. 비어 있어도 남고, /delete 43 으로 지울 수 있습니다.",
            "번 방이 내 계정에 등록되었습니다. 비어 있어도 남고, /delete  으로 지울 수 있습니다.",
            "+4번 방이 내 계정에 등록되었습니다. 비어 있어도 남고, /delete 4 으로 지울 수 있습니다.",
            "0번 방이 내 계정에 등록되었습니다. 비어 있어도 남고, /delete 0 으로 지울 수 있습니다.",
            "42번 방을 지웠습니다.",
            "42번 방의 등록을 풀었습니다. 마지막 멤버가 나가면 사라집니다.",
            "방제[ab12.0] 방에 입장했습니다.",
        ] {
            assert_eq!(registered_room(text), None, "{text}");
        }
    }

    #[test]
    fn the_whole_dialogue_registers_every_room() {
        let mut o = owner(2);
        assert_eq!(
            o.start(),
            vec![Request::Hello {
                features: vec!["accounts".into()]
            }]
        );
        assert_eq!(
            o.on_response(&hello(&["accounts"])).unwrap(),
            vec![Request::Name {
                name: "bench-owner-7-ab12".into()
            }]
        );
        assert_eq!(
            o.on_response(&system("이름이 bench-owner-7-ab12 으로 변경되었습니다."))
                .unwrap(),
            vec![Request::Register {
                password: "password-7".into()
            }]
        );
        assert!(!o.account_registered());
        // Flood control's warning slows the owner down; it is not a refusal.
        assert!(
            o.on_response(&system(FLOOD_WARNING)).unwrap().is_empty(),
            "ignored"
        );
        let first = o
            .on_response(&system(
                "이름 bench-owner-7-ab12 을 계정으로 등록했습니다. 이제 이 이름은 로그인해야 쓸 수 있습니다.",
            ))
            .unwrap();
        assert!(o.account_registered());
        assert_eq!(
            first,
            vec![
                Request::CreateRoom {
                    title: "ab12.0".into()
                },
                Request::LeaveRoom
            ]
        );
        for (r, id) in [(0, 5), (1, 9)] {
            let title = format!("ab12.{r}");
            assert!(
                o.on_response(&system(&entry_notice(&title)))
                    .unwrap()
                    .is_empty()
            );
            let registered = format!(
                "{id}번 방이 내 계정에 등록되었습니다. 비어 있어도 남고, /delete {id} 으로 지울 수 있습니다."
            );
            assert!(o.on_response(&system(&registered)).unwrap().is_empty());
            assert_eq!(o.room_ids(), None);
            let next = o.on_response(&system(&left_notice(&title))).unwrap();
            if r == 0 {
                assert_eq!(
                    next,
                    vec![
                        Request::CreateRoom {
                            title: "ab12.1".into()
                        },
                        Request::LeaveRoom
                    ]
                );
            } else {
                assert!(next.is_empty());
            }
        }
        assert_eq!(o.room_ids(), Some(&[5, 9][..]));
    }

    #[test]
    fn a_server_without_accounts_is_told_apart() {
        let why = owner(1).on_response(&hello(&[])).unwrap_err();
        assert!(
            why.contains("does not offer accounts") && why.contains("--no-store"),
            "{why}"
        );
        let mut o = owner(1);
        o.on_response(&hello(&["accounts"])).unwrap();
        o.on_response(&system("이름이 bench-owner-7-ab12 으로 변경되었습니다."))
            .unwrap();
        let why = o.on_response(&system(ACCOUNTS_UNAVAILABLE)).unwrap_err();
        assert!(why.contains("no accounts"), "{why}");
    }

    #[test]
    fn refusals_end_the_dialogue_with_the_server_s_words() {
        // The name is taken (a registered look-alike).
        let mut o = owner(1);
        o.on_response(&hello(&["accounts"])).unwrap();
        let why = o
            .on_response(&system(
                "등록된 이름입니다. /login 으로 로그인해야 쓸 수 있습니다.",
            ))
            .unwrap_err();
        assert!(
            why.contains("등록된 이름입니다") && why.contains("renaming"),
            "{why}"
        );
        // Throttled registrations.
        let mut o = owner(1);
        o.on_response(&hello(&["accounts"])).unwrap();
        o.on_response(&system("이름이 bench-owner-7-ab12 으로 변경되었습니다."))
            .unwrap();
        let why = o.on_response(&system(TOO_MANY_ATTEMPTS)).unwrap_err();
        assert!(why.contains("one every 5 s"), "{why}");
        // A room that is not registered: its /leave is answered instead.
        let mut o = owner(1);
        registered(&mut o);
        o.on_response(&system(&entry_notice("ab12.0"))).unwrap();
        let why = o.on_response(&system(&left_notice("ab12.0"))).unwrap_err();
        assert!(why.contains("did not register"), "{why}");
        // Cut by flood control.
        let mut o = owner(1);
        registered(&mut o);
        let why = o.on_response(&system(FLOOD_DISCONNECT)).unwrap_err();
        assert!(why.contains("--flood-control=off"), "{why}");
        // Anything but a system message once the hello is answered.
        let mut o = owner(1);
        registered(&mut o);
        let why = o.on_response(&hello(&["accounts"])).unwrap_err();
        assert!(why.contains("unexpected SCHello"), "{why}");
    }
}
