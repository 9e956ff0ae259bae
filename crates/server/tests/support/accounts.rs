//! The `accounts`, `history` and `resume` extensions (PROTOCOL.md §7) as the tests
//! use them: opting in, registering, logging in again, pages of history, tokens, and
//! the texts the server answers with. Shared by the single node's tests
//! (`accounts.rs`) and the cluster's (`cluster_accounts.rs`): a cluster's node offers
//! the same extensions with the same texts.

use chat_proto::{Request, Response, WireFormat};

use super::{BinaryServer, Client};

/// `CSHello` with `features`; the features the server's `SCHello` answers.
pub(crate) fn hello(client: &mut Client, features: &[&str]) -> Vec<String> {
    client.send(&Request::Hello {
        features: features.iter().map(|f| (*f).to_owned()).collect(),
    });
    match client.recv() {
        Response::Hello { features, .. } => features,
        other => panic!("expected SCHello, got {other:?}"),
    }
}

/// `/register` of the name `Alice` done.
pub(crate) const REGISTERED: &str =
    "이름 Alice 을 계정으로 등록했습니다. 이제 이 이름은 로그인해야 쓸 수 있습니다.";
/// `/name` of a registered name (or a look-alike) by anyone not logged in as it.
pub(crate) const NAME_REGISTERED: &str =
    "등록된 이름입니다. /login 으로 로그인해야 쓸 수 있습니다.";
/// A wrong password, or a name with no account: the same answer.
pub(crate) const BAD_CREDENTIALS: &str = "이름 또는 비밀번호가 맞지 않습니다.";
/// Room 1 created while logged in.
pub(crate) const REGISTERED_ROOM_1: &str =
    "1번 방이 내 계정에 등록되었습니다. 비어 있어도 남고, /delete 1 으로 지울 수 있습니다.";
/// `CSResume` with a token that is not (or no longer) the account's.
pub(crate) const RESUME_FAILED: &str =
    "저장된 로그인이 만료되었거나 맞지 않습니다. 비밀번호로 다시 로그인하세요.";

/// A client that opted in to accounts and rooms, named `Alice` and registered with
/// the password "correct horse".
pub(crate) fn register_alice(server: &BinaryServer, format: WireFormat) -> Client {
    let mut alice = server.client(format);
    assert_eq!(
        hello(&mut alice, &["accounts", "rooms"]),
        ["rooms", "accounts"]
    );
    alice.send(&Request::Name {
        name: "Alice".into(),
    });
    alice.expect_system("이름이 Alice 으로 변경되었습니다.");
    alice.send(&Request::Register {
        password: "correct horse".into(),
    });
    alice.expect_system(REGISTERED);
    alice
}

/// A client that opted in to accounts and history, named `name`, registered (with
/// "correct horse").
pub(crate) fn account(server: &BinaryServer, format: WireFormat, name: &str) -> Client {
    let mut client = server.client(format);
    assert_eq!(
        hello(&mut client, &["accounts", "history"]),
        ["accounts", "history"]
    );
    client.set_name(name);
    client.send(&Request::Register {
        password: "correct horse".into(),
    });
    client.expect_system(&format!(
        "이름 {name} 을 계정으로 등록했습니다. 이제 이 이름은 로그인해야 쓸 수 있습니다."
    ));
    client
}

/// Alice (registered with "correct horse") logged in again from a new connection
/// that opted in to accounts and history.
pub(crate) fn alice_again(server: &BinaryServer, format: WireFormat) -> Client {
    let mut alice = server.client(format);
    hello(&mut alice, &["accounts", "history"]);
    alice.send(&Request::Login {
        name: "Alice".into(),
        password: "correct horse".into(),
    });
    alice.expect_system("Alice 으로 로그인했습니다.");
    alice.expect_system("이름이 Alice 으로 변경되었습니다.");
    alice
}

/// A page of history as (sender, text) pairs.
pub(crate) fn page(client: &mut Client) -> (Vec<(String, String)>, bool) {
    match client.recv() {
        Response::History { lines, more, .. } => (
            lines.into_iter().map(|l| (l.member, l.text)).collect(),
            more,
        ),
        other => panic!("expected SCHistory, got {other:?}"),
    }
}

/// `(sender, text)` pairs, owned, to compare with [`page`]'s.
pub(crate) fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(who, text)| ((*who).to_owned(), (*text).to_owned()))
        .collect()
}

/// The token that follows a login, a registration or a password change.
pub(crate) fn expect_token(client: &mut Client) -> String {
    match client.recv() {
        Response::Session { token, expires } => {
            let in_30_days = now_ms() + 30 * 24 * 3600 * 1000;
            assert!(
                (in_30_days - 60_000..=in_30_days).contains(&expires),
                "{expires}"
            );
            assert_eq!(token.len(), 64, "{token}");
            assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
            token.into_owned()
        }
        other => panic!("expected SCSession, got {other:?}"),
    }
}

/// Now, in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `CSResume Alice TOKEN` from a fresh connection that opted in to `resume`.
pub(crate) fn resume(server: &BinaryServer, format: WireFormat, token: &str) -> Client {
    let mut client = server.client(format);
    assert_eq!(
        hello(&mut client, &["accounts", "resume"]),
        ["accounts", "resume"]
    );
    client.send(&Request::Resume {
        name: "Alice".into(),
        token: token.into(),
    });
    client
}
