//! The `moderation` extension on one node (PROTOCOL.md §7.6), over the wire, against
//! the real binary and a real data directory, in both formats: a registered room's
//! owner names operators, who kick and ban members and set the topic; nobody touches
//! the owner, an operator does not touch another, nobody targets themselves; bans and
//! operators and the topic are kept in the store and outlive the server; the owner
//! hands the room on. A client that did not opt in sees exactly what it saw before.
//!
//! Every text is asserted byte for byte. Nothing waits by sleeping: a client that
//! must see nothing is probed (`expect_silence`), and the one wait on the clock (a
//! ban's end) polls with a deadline.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chat_proto::{Request, Response, RoomInfo, WireFormat};
use support::accounts::{REGISTERED_ROOM_1, hello, now_ms};
use support::*;

in_both_formats!(
    an_operator_kicks_a_member_and_the_ranks_hold,
    a_banned_account_stays_out_until_the_ban_is_lifted_or_ends,
    a_banned_guest_is_kept_out_by_its_address,
    a_topic_reaches_the_members_that_opted_in_and_outlives_the_server,
    the_owner_hands_the_room_on,
    moderation_needs_the_opt_in_a_registered_room_and_accounts,
    a_member_with_its_default_name_can_be_kicked_and_banned,
);

// ---------------------------------------------------------------------------------
// Texts
// ---------------------------------------------------------------------------------

const MODERATION_NOT_ENABLED: &str =
    "방 관리 기능을 쓰려면 먼저 CSHello 로 moderation 기능을 켜야 합니다.";
const NOT_REGISTERED_ROOM: &str = "계정에 등록된 방에서만 방 관리 기능을 쓸 수 있습니다.";
const NOT_OPERATOR: &str = "방장이나 운영자만 할 수 있습니다.";
const NOT_THE_OWNER: &str = "방장만 할 수 있습니다.";
const CANNOT_TOUCH_OWNER: &str = "방장은 내보내거나 밴할 수 없습니다.";
const CANNOT_TOUCH_OPERATOR: &str = "운영자는 방장만 내보내거나 밴할 수 있습니다.";
const CANNOT_TARGET_SELF: &str = "자기 자신에게는 할 수 없습니다.";
const NO_SUCH_ACCOUNT: &str = "그런 이름의 계정이 없습니다.";
const NO_SUCH_MEMBER_HERE: &str = "그런 이름의 멤버가 이 방에 없습니다.";
const NOT_AN_OPERATOR: &str = "운영자가 아닌 이름입니다.";
const BAN_BAD_MINUTES: &str =
    "밴 시간은 1분부터 525600분까지 쓸 수 있습니다. 쓰지 않으면 풀 때까지입니다.";
const NOT_BANNED: &str = "밴되지 않은 이름입니다.";
const TOPIC_TOO_LONG: &str = "주제는 200자를 넘을 수 없습니다.";
const TOPIC_CONTROL: &str = "주제에 제어 문자를 쓸 수 없습니다.";
const REASON_TOO_LONG: &str = "이유는 200자를 넘을 수 없습니다.";
const BANNED_UNTIL_LIFTED: &str =
    "이 방에서 밴되어 들어갈 수 없습니다. 방장이나 운영자가 풀 때까지입니다.";
const NOT_ROOM_OWNER: &str = "내 계정에 등록된 방이 아닙니다.";

/// `/join` of a room that bans the client for `minutes` more.
fn banned_for(minutes: u64) -> String {
    format!("이 방에서 밴되어 들어갈 수 없습니다. {minutes}분 뒤에 풀립니다.")
}

/// To the kicked member.
fn kicked_self(by: &str, reason: &str) -> String {
    if reason.is_empty() {
        format!("[{by}] 님이 나를 방에서 내보냈습니다.")
    } else {
        format!("[{by}] 님이 나를 방에서 내보냈습니다. 이유: {reason}")
    }
}

/// To the room (and, as its answer, to whoever kicked).
fn kicked_others(name: &str, by: &str, reason: &str) -> String {
    if reason.is_empty() {
        format!("[{name}] 님이 [{by}] 님에 의해 방에서 내보내졌습니다.")
    } else {
        format!("[{name}] 님이 [{by}] 님에 의해 방에서 내보내졌습니다. 이유: {reason}")
    }
}

fn opped(name: &str) -> String {
    format!("{name} 님이 이 방의 운영자가 되었습니다.")
}

fn deopped(name: &str) -> String {
    format!("{name} 님은 이제 이 방의 운영자가 아닙니다.")
}

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

/// A fresh data directory, removed on drop.
struct DataDir(PathBuf);

impl DataDir {
    fn new(name: &str) -> DataDir {
        let dir =
            std::env::temp_dir().join(format!("chat-moderation-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        DataDir(dir)
    }

    fn flag(&self) -> String {
        format!("--data-dir={}", self.0.display())
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The other wire format: the tests mix them, so every fan-out crosses formats.
fn other(format: WireFormat) -> WireFormat {
    match format {
        WireFormat::Json => WireFormat::Protobuf,
        WireFormat::Protobuf => WireFormat::Json,
    }
}

/// A server on `data`.
fn start(data: &DataDir) -> BinaryServer {
    BinaryServer::start(&[&data.flag()])
}

/// SIGTERM and a clean exit.
fn stop(server: BinaryServer) {
    let mut server = server;
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(server.pid(), libc::SIGTERM) }, 0);
    assert!(server.wait_for_exit().success());
}

/// SIGTERM, a clean exit, and a new server on the same directory.
fn restart(server: BinaryServer, data: &DataDir) -> BinaryServer {
    stop(server);
    start(data)
}

/// A client that opted in to `features` (named in the order `SCHello` answers them:
/// accounts before moderation), registered as `name` with "correct horse".
fn registered(server: &BinaryServer, format: WireFormat, name: &str, features: &[&str]) -> Client {
    let mut client = server.client(format);
    assert_eq!(hello(&mut client, features), features);
    client.set_name(name);
    client.send(&Request::Register {
        password: "correct horse".into(),
    });
    client.expect_system(&format!(
        "이름 {name} 을 계정으로 등록했습니다. 이제 이 이름은 로그인해야 쓸 수 있습니다."
    ));
    client
}

/// A client registered as `name` that opted in to accounts and moderation.
fn moderator(server: &BinaryServer, format: WireFormat, name: &str) -> Client {
    registered(server, format, name, &["accounts", "moderation"])
}

/// `name` logged in again from a new connection that opted in to `features`. The
/// name's last connection may still be closing on the server: the name is asked for
/// until it is granted (bounded).
fn logged_in(server: &BinaryServer, format: WireFormat, name: &str, features: &[&str]) -> Client {
    let mut client = server.client(format);
    assert_eq!(hello(&mut client, features), features);
    client.send(&Request::Login {
        name: name.into(),
        password: "correct horse".into(),
    });
    client.expect_system(&format!("{name} 으로 로그인했습니다."));
    let renamed = format!("이름이 {name} 으로 변경되었습니다.");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let reply = client.recv_system();
        if reply == renamed {
            return client;
        }
        assert_eq!(
            reply, "이미 쓰이고 있는 이름이거나 그와 헷갈리는 이름입니다.",
            "{name}'s login"
        );
        assert!(Instant::now() < deadline, "{name} never got its name back");
        std::thread::sleep(POLL_EVERY);
        client.send(&Request::Name { name: name.into() });
    }
}

/// A client that never says hello (as the reference client), named `name`.
fn plain(server: &BinaryServer, format: WireFormat, name: &str) -> Client {
    let mut client = server.client(format);
    client.set_name(name);
    client
}

/// A guest (no account) that opted in to `moderation` only, named `name`.
fn opted_in_guest(server: &BinaryServer, format: WireFormat, name: &str) -> Client {
    let mut client = server.client(format);
    assert_eq!(hello(&mut client, &["moderation"]), ["moderation"]);
    client.set_name(name);
    client
}

fn op(client: &mut Client, name: &str, op: bool) {
    client.send(&Request::Op {
        name: name.into(),
        op,
    });
}

fn owner(client: &mut Client, name: &str) {
    client.send(&Request::Owner { name: name.into() });
}

fn kick(client: &mut Client, name: &str, reason: &str) {
    client.send(&Request::Kick {
        name: name.into(),
        reason: reason.into(),
    });
}

fn ban(client: &mut Client, name: &str, minutes: Option<i64>) {
    client.send(&Request::Ban {
        name: name.into(),
        minutes,
        ban: true,
    });
}

fn unban(client: &mut Client, name: &str) {
    client.send(&Request::Ban {
        name: name.into(),
        minutes: None,
        ban: false,
    });
}

fn topic(client: &mut Client, text: &str) {
    client.send(&Request::Topic { text: text.into() });
}

/// `/join N` answered with `text` (a refusal).
#[track_caller]
fn join_refused(client: &mut Client, room_id: i64, text: &str) {
    client.send(&Request::JoinRoom { room_id });
    client.expect_system(text);
}

/// The next message is `SCTopic { room_id, topic, by }`.
#[track_caller]
fn expect_topic(client: &mut Client, room_id: i64, topic: &str, by: &str) {
    match client.recv() {
        Response::Topic {
            room_id: got_room,
            topic: got_topic,
            by: got_by,
        } => assert_eq!(
            (got_room, got_topic.as_ref(), got_by.as_ref()),
            (room_id, topic, by)
        ),
        other => panic!("expected SCTopic, got {other:?}"),
    }
}

/// A room as an opted-in client lists it: with its topic.
fn room_with_topic(room_id: i64, title: &str, members: &[&str], topic: &str) -> RoomInfo {
    RoomInfo {
        topic: Some(topic.to_owned()),
        ..room(room_id, title, members)
    }
}

/// `/rooms`, answered as raw frames (one in JSON, the type and the body in protobuf):
/// to compare listings byte for byte.
fn rooms_raw(client: &mut Client) -> Vec<Vec<u8>> {
    client.send(&Request::Rooms);
    let frames = match client.format() {
        WireFormat::Json => 1,
        WireFormat::Protobuf => 2,
    };
    (0..frames).map(|_| client.recv_frame()).collect()
}

/// Every moderation request, each with a target that exists (`alice`, an account
/// and a member).
fn every_request() -> Vec<Request> {
    vec![
        Request::Op {
            name: "alice".into(),
            op: true,
        },
        Request::Op {
            name: "alice".into(),
            op: false,
        },
        Request::Owner {
            name: "alice".into(),
        },
        Request::Kick {
            name: "alice".into(),
            reason: String::new(),
        },
        Request::Ban {
            name: "alice".into(),
            minutes: Some(5),
            ban: true,
        },
        Request::Ban {
            name: "alice".into(),
            minutes: None,
            ban: false,
        },
        Request::Topic {
            text: "주제".into(),
        },
    ]
}

/// Rewrites, in a stopped server's store, the end of room `room_id`'s ban made
/// against `name` to `until_ms`; answers the ban as it was stored.
fn rewrite_ban_end(data: &DataDir, room_id: i64, name: &str, until_ms: i64) -> serde_json::Value {
    let conn = rusqlite::Connection::open(data.0.join("chat.db")).expect("open chat.db");
    let text: String = conn
        .query_row(
            "SELECT moderation FROM rooms WHERE id = ?1",
            [room_id],
            |row| row.get(0),
        )
        .expect("the room's moderation");
    let mut moderation: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let bans = moderation["bans"]
        .as_array_mut()
        .unwrap_or_else(|| panic!("no bans in {text}"));
    let mut matching = bans.iter_mut().filter(|ban| ban["name"] == name);
    let ban = matching
        .next()
        .unwrap_or_else(|| panic!("no ban of {name} in {text}"));
    let was = ban.clone();
    ban["until"] = until_ms.into();
    assert!(matching.next().is_none(), "two bans of {name} in {text}");
    let changed = conn
        .execute(
            "UPDATE rooms SET moderation = ?2 WHERE id = ?1",
            rusqlite::params![room_id, moderation.to_string()],
        )
        .expect("rewrite the moderation");
    assert_eq!(changed, 1);
    was
}

// ---------------------------------------------------------------------------------
// Kicks and ranks
// ---------------------------------------------------------------------------------

/// The owner names operators; an operator kicks a member, who is told by whom and
/// why, the room too, and the member is out of the listing and learns at its next
/// request that it is in no room. What an operator may not do is refused and tells
/// nobody anything.
fn an_operator_kicks_a_member_and_the_ranks_hold(format: WireFormat) {
    let data = DataDir::new(&format!("kick-{format}"));
    let server = start(&data);
    let mut alice = moderator(&server, format, "alice");
    alice.create("교실");
    alice.expect_system(REGISTERED_ROOM_1);
    let mut olga = moderator(&server, other(format), "olga");
    olga.join(1, "교실");
    alice.expect_system(&entered("olga"));
    let mut bob = moderator(&server, format, "bob");
    bob.join(1, "교실");
    alice.expect_system(&entered("bob"));
    olga.expect_system(&entered("bob"));
    let mut guest = plain(&server, other(format), "guest");
    guest.join(1, "교실");
    for member in [&mut alice, &mut olga, &mut bob] {
        member.expect_system(&entered("guest"));
    }

    // Not (yet) an operator: refused. Only the owner names operators.
    kick(&mut olga, "guest", "");
    olga.expect_system(NOT_OPERATOR);
    op(&mut olga, "bob", true);
    olga.expect_system(NOT_THE_OWNER);
    // Named: the owner is answered, the account told.
    for name in ["olga", "bob"] {
        op(&mut alice, name, true);
        alice.expect_system(&opped(name));
    }
    olga.expect_system(&opped("olga"));
    bob.expect_system(&opped("bob"));

    // What an operator may not do.
    for (name, answer) in [
        ("alice", CANNOT_TOUCH_OWNER),
        ("bob", CANNOT_TOUCH_OPERATOR),
        ("olga", CANNOT_TARGET_SELF),
        ("nobody", NO_SUCH_MEMBER_HERE),
    ] {
        kick(&mut olga, name, "");
        olga.expect_system(answer);
    }
    // Nor the owner on itself.
    kick(&mut alice, "alice", "");
    alice.expect_system(CANNOT_TARGET_SELF);
    for member in [&mut alice, &mut olga, &mut bob, &mut guest] {
        member.expect_silence();
    }
    assert_eq!(
        guest.rooms(),
        [room(1, "교실", &["alice", "olga", "bob", "guest"])]
    );

    // The kick: the guest is told by whom and why, the room who went (the operator
    // as its answer).
    kick(&mut olga, "guest", "떠들어서");
    guest.expect_system(&kicked_self("olga", "떠들어서"));
    let told = kicked_others("guest", "olga", "떠들어서");
    assert_eq!(
        told,
        "[guest] 님이 [olga] 님에 의해 방에서 내보내졌습니다. 이유: 떠들어서"
    );
    for member in [&mut olga, &mut alice, &mut bob] {
        member.expect_system(&told);
    }
    assert_eq!(guest.rooms(), [room(1, "교실", &["alice", "olga", "bob"])]);
    // Its next /leave: it is in no room.
    guest.send(&Request::LeaveRoom);
    guest.expect_system(NOT_IN_ROOM);
    for member in [&mut alice, &mut olga, &mut bob] {
        member.expect_silence();
    }
    // A kick is no ban: it comes back.
    guest.join(1, "교실");
    for member in [&mut alice, &mut olga, &mut bob] {
        member.expect_system(&entered("guest"));
    }

    // Bob, no longer an operator, may be kicked by one; his next chat finds him in
    // no room, and so does his /leave.
    op(&mut alice, "bob", false);
    alice.expect_system(&deopped("bob"));
    bob.expect_system(&deopped("bob"));
    op(&mut alice, "bob", false);
    alice.expect_system(NOT_AN_OPERATOR);
    kick(&mut bob, "guest", "");
    bob.expect_system(NOT_OPERATOR);
    kick(&mut olga, "bob", "");
    bob.expect_system("[olga] 님이 나를 방에서 내보냈습니다.");
    for member in [&mut olga, &mut alice, &mut guest] {
        member.expect_system("[bob] 님이 [olga] 님에 의해 방에서 내보내졌습니다.");
    }
    bob.chat("들려?");
    bob.expect_system(NOT_IN_ROOM);
    bob.send(&Request::LeaveRoom);
    bob.expect_system(NOT_IN_ROOM);
    for member in [&mut alice, &mut olga, &mut guest] {
        member.expect_silence();
    }

    // The owner kicks an operator.
    kick(&mut alice, "olga", "");
    olga.expect_system(&kicked_self("alice", ""));
    for member in [&mut alice, &mut guest] {
        member.expect_system(&kicked_others("olga", "alice", ""));
    }
    olga.send(&Request::LeaveRoom);
    olga.expect_system(NOT_IN_ROOM);
    assert_eq!(bob.rooms(), [room(1, "교실", &["alice", "guest"])]);
}

// ---------------------------------------------------------------------------------
// Bans
// ---------------------------------------------------------------------------------

/// A banned account is put out at once and stays out: after reconnecting and
/// logging in again, after a restart; `/unban` lets it in at once; a ban for some
/// minutes ends by itself (its end rewritten in the stopped server's store).
fn a_banned_account_stays_out_until_the_ban_is_lifted_or_ends(format: WireFormat) {
    let data = DataDir::new(&format!("ban-{format}"));
    let server = start(&data);
    let mut alice = moderator(&server, format, "alice");
    alice.create("교실");
    alice.expect_system(REGISTERED_ROOM_1);
    let mut bob = registered(&server, other(format), "bob", &["accounts"]);
    bob.join(1, "교실");
    alice.expect_system(&entered("bob"));

    // Bad requests: told, nothing changes.
    for minutes in [0, -1, 525_601] {
        ban(&mut alice, "bob", Some(minutes));
        alice.expect_system(BAN_BAD_MINUTES);
    }
    unban(&mut alice, "bob");
    alice.expect_system(NOT_BANNED);
    ban(&mut alice, "alice", None);
    alice.expect_system(CANNOT_TARGET_SELF);
    bob.expect_silence();
    assert_eq!(bob.rooms(), [room(1, "교실", &["alice", "bob"])]);

    // Until lifted: out now, and not back in.
    ban(&mut alice, "bob", None);
    bob.expect_system(&kicked_self("alice", ""));
    alice.expect_system("bob 님을 풀 때까지 이 방에서 밴했습니다.");
    assert_eq!(bob.rooms(), [room(1, "교실", &["alice"])]);
    join_refused(&mut bob, 1, BANNED_UNTIL_LIFTED);
    // Nor from a new connection, logged in again.
    bob.disconnect();
    let mut bob = logged_in(&server, format, "bob", &["accounts"]);
    join_refused(&mut bob, 1, BANNED_UNTIL_LIFTED);
    alice.expect_silence();

    // Nor after a restart.
    drop(bob);
    drop(alice);
    let server = restart(server, &data);
    let mut bob = logged_in(&server, other(format), "bob", &["accounts"]);
    join_refused(&mut bob, 1, BANNED_UNTIL_LIFTED);

    // `/unban` lets it in at once.
    let mut alice = logged_in(&server, format, "alice", &["accounts", "moderation"]);
    alice.join(1, "교실");
    unban(&mut alice, "bob");
    alice.expect_system("bob 님의 밴을 풀었습니다.");
    bob.join(1, "교실");
    alice.expect_system(&entered("bob"));

    // For 30 minutes.
    ban(&mut alice, "bob", Some(30));
    bob.expect_system(&kicked_self("alice", ""));
    alice.expect_system("bob 님을 30분 동안 이 방에서 밴했습니다.");
    let banned_at = now_ms();
    join_refused(&mut bob, 1, &banned_for(30));

    // Stopped; the ban's end rewritten to a few seconds from now.
    drop(bob);
    drop(alice);
    stop(server);
    let until = now_ms() + 4_000;
    let was = rewrite_ban_end(&data, 1, "bob", until);
    assert!(was["account"].is_string(), "a ban of an account: {was}");
    let stored_end = was["until"].as_i64().unwrap_or_else(|| panic!("{was}"));
    let thirty = 30 * 60_000;
    assert!(
        (banned_at - 60_000 + thirty..=banned_at + thirty).contains(&stored_end),
        "a 30-minute ban made at {banned_at} ends at {stored_end}"
    );
    let server = start(&data);
    let mut bob = logged_in(&server, format, "bob", &["accounts"]);
    // Refused while it holds (if the first try is early enough), let in once it
    // ended.
    let entered_self = "방제[교실] 방에 입장했습니다.";
    let deadline = Instant::now() + Duration::from_millis(4_000) + TIMEOUT;
    loop {
        let sent_at = now_ms();
        bob.send(&Request::JoinRoom { room_id: 1 });
        let reply = bob.recv_system();
        let answered_at = now_ms();
        if reply == entered_self {
            assert!(
                answered_at >= until,
                "let in at {answered_at}, before the ban's end at {until}"
            );
            break;
        }
        assert_eq!(reply, banned_for(1));
        assert!(
            sent_at < until,
            "still refused for a /join sent at {sent_at}, after the ban's end at {until}"
        );
        assert!(Instant::now() < deadline, "the ban never ended");
        std::thread::sleep(POLL_EVERY * 10);
    }
    assert_eq!(bob.rooms(), [room(1, "교실", &["bob"])]);
}

/// A guest (no account) is banned by its address: another guest connection from the
/// same address is kept out too, a logged-in account on it is not.
fn a_banned_guest_is_kept_out_by_its_address(format: WireFormat) {
    let data = DataDir::new(&format!("ban-guest-{format}"));
    let server = start(&data);
    let mut alice = moderator(&server, format, "alice");
    alice.create("교실");
    alice.expect_system(REGISTERED_ROOM_1);
    let mut guest = plain(&server, other(format), "손님");
    guest.join(1, "교실");
    alice.expect_system(&entered("손님"));

    // A name that is neither an account nor a member here.
    ban(&mut alice, "nobody", None);
    alice.expect_system(NO_SUCH_ACCOUNT);

    ban(&mut alice, "손님", Some(10));
    guest.expect_system(&kicked_self("alice", ""));
    alice.expect_system("손님 님을 10분 동안 이 방에서 밴했습니다.");
    join_refused(&mut guest, 1, &banned_for(10));
    // Another guest from 127.0.0.1, whatever its name: refused.
    let mut second = server.client(format);
    join_refused(&mut second, 1, &banned_for(10));
    let mut opted = opted_in_guest(&server, other(format), "다른손님");
    join_refused(&mut opted, 1, &banned_for(10));
    // A logged-in account on the same address: let in.
    let mut carol = registered(&server, other(format), "carol", &["accounts"]);
    carol.join(1, "교실");
    alice.expect_system(&entered("carol"));
    assert_eq!(carol.rooms(), [room(1, "교실", &["alice", "carol"])]);

    unban(&mut alice, "손님");
    alice.expect_system("손님 님의 밴을 풀었습니다.");
    second.join(1, "교실");
    alice.expect_system(&entered(&second.default_name()));
    carol.expect_system(&entered(&second.default_name()));
}

// ---------------------------------------------------------------------------------
// Topics
// ---------------------------------------------------------------------------------

/// The owner sets the topic: the members that opted in get `SCTopic` with who set
/// it, the others nothing; a later joiner that opted in gets it after its entry
/// notice; `/rooms` shows it to opted-in clients only (the others get the very bytes
/// they got before); too long or with a control character it is refused; it
/// outlives the server.
fn a_topic_reaches_the_members_that_opted_in_and_outlives_the_server(format: WireFormat) {
    let data = DataDir::new(&format!("topic-{format}"));
    let server = start(&data);
    let mut alice = moderator(&server, format, "alice");
    alice.create("교실");
    alice.expect_system(REGISTERED_ROOM_1);
    let mut watcher = opted_in_guest(&server, other(format), "watcher");
    watcher.join(1, "교실");
    alice.expect_system(&entered("watcher"));
    // Said hello, but not to moderation.
    let mut greeted = server.client(format);
    assert_eq!(hello(&mut greeted, &["direct"]), ["direct"]);
    greeted.set_name("greeted");
    greeted.join(1, "교실");
    for member in [&mut alice, &mut watcher] {
        member.expect_system(&entered("greeted"));
    }
    // Never said hello (the reference client).
    let mut raw = plain(&server, other(format), "raw");
    raw.join(1, "교실");
    for member in [&mut alice, &mut watcher, &mut greeted] {
        member.expect_system(&entered("raw"));
    }
    let members = ["alice", "watcher", "greeted", "raw"];
    let raw_before = rooms_raw(&mut raw);
    let greeted_before = rooms_raw(&mut greeted);
    assert_eq!(watcher.rooms(), [room(1, "교실", &members)]);

    // Refused: not an operator, too long, a control character.
    topic(&mut watcher, "내 주제");
    watcher.expect_system(NOT_OPERATOR);
    topic(&mut alice, &"x".repeat(60_000));
    alice.expect_system(TOPIC_TOO_LONG);
    topic(&mut alice, &"가".repeat(201));
    alice.expect_system(TOPIC_TOO_LONG);
    topic(&mut alice, "숙제\u{202e} 이야기");
    alice.expect_system(TOPIC_CONTROL);
    for member in [&mut alice, &mut watcher, &mut greeted, &mut raw] {
        member.expect_silence();
    }
    // 200 characters is not too long (and is replaced right after).
    topic(&mut alice, &"가".repeat(200));
    expect_topic(&mut alice, 1, &"가".repeat(200), "alice");
    alice.expect_system(&format!("주제를 바꿨습니다: {}", "가".repeat(200)));
    expect_topic(&mut watcher, 1, &"가".repeat(200), "alice");

    // Set: the members that opted in get SCTopic (the setter before its answer).
    topic(&mut alice, "  숙제 이야기 ");
    expect_topic(&mut alice, 1, "숙제 이야기", "alice");
    alice.expect_system("주제를 바꿨습니다: 숙제 이야기");
    expect_topic(&mut watcher, 1, "숙제 이야기", "alice");
    for member in [&mut alice, &mut watcher, &mut greeted, &mut raw] {
        member.expect_silence();
    }
    // Listed for the clients that opted in; the others' listing is unchanged, byte
    // for byte.
    let listed = [room_with_topic(1, "교실", &members, "숙제 이야기")];
    assert_eq!(watcher.rooms(), listed);
    assert_eq!(alice.rooms(), listed);
    assert_eq!(rooms_raw(&mut raw), raw_before);
    assert_eq!(rooms_raw(&mut greeted), greeted_before);
    assert_eq!(raw.rooms(), [room(1, "교실", &members)]);
    assert_eq!(greeted.rooms(), [room(1, "교실", &members)]);

    // A later joiner that opted in: its entry notice, then the topic (by nobody).
    let mut late = opted_in_guest(&server, format, "late");
    late.join(1, "교실");
    expect_topic(&mut late, 1, "숙제 이야기", "");
    for member in [&mut alice, &mut watcher, &mut greeted, &mut raw] {
        member.expect_system(&entered("late"));
    }
    // One that did not: just its entry notice.
    let mut late_raw = plain(&server, other(format), "late_raw");
    late_raw.join(1, "교실");
    late_raw.expect_silence();
    for member in [&mut alice, &mut watcher, &mut greeted, &mut raw, &mut late] {
        member.expect_system(&entered("late_raw"));
    }

    // Cleared: an empty SCTopic, and no topic listed.
    topic(&mut alice, "   ");
    expect_topic(&mut alice, 1, "", "alice");
    alice.expect_system("주제를 지웠습니다.");
    expect_topic(&mut watcher, 1, "", "alice");
    expect_topic(&mut late, 1, "", "alice");
    let members = ["alice", "watcher", "greeted", "raw", "late", "late_raw"];
    assert_eq!(watcher.rooms(), [room(1, "교실", &members)]);
    raw.expect_silence();
    greeted.expect_silence();
    late_raw.expect_silence();

    // Set again, and the server restarted: it is still the room's.
    topic(&mut alice, "다음 주 시험");
    expect_topic(&mut alice, 1, "다음 주 시험", "alice");
    alice.expect_system("주제를 바꿨습니다: 다음 주 시험");
    drop((alice, watcher, greeted, raw, late, late_raw));
    let server = restart(server, &data);
    let mut raw = server.client(format);
    assert_eq!(raw.rooms(), [room(1, "교실", &[])]);
    let mut watcher = opted_in_guest(&server, other(format), "watcher");
    assert_eq!(
        watcher.rooms(),
        [room_with_topic(1, "교실", &[], "다음 주 시험")]
    );
    watcher.join(1, "교실");
    expect_topic(&mut watcher, 1, "다음 주 시험", "");
    raw.join(1, "교실");
    watcher.expect_system(&entered(&raw.default_name()));
    raw.expect_silence();
}

// ---------------------------------------------------------------------------------
// Handing the room on
// ---------------------------------------------------------------------------------

/// `/owner NAME`: the room is told; the old owner is an operator from then on (it
/// kicks a guest, not the new owner, names no operators); it all outlives a restart,
/// and the new owner may take the old one's rank away.
fn the_owner_hands_the_room_on(format: WireFormat) {
    let data = DataDir::new(&format!("owner-{format}"));
    let server = start(&data);
    let mut alice = moderator(&server, format, "alice");
    alice.create("교실");
    alice.expect_system(REGISTERED_ROOM_1);
    let mut bob = moderator(&server, other(format), "bob");
    bob.join(1, "교실");
    alice.expect_system(&entered("bob"));
    let mut guest = plain(&server, format, "guest");
    guest.join(1, "교실");
    for member in [&mut alice, &mut bob] {
        member.expect_system(&entered("guest"));
    }

    owner(&mut bob, "alice");
    bob.expect_system(NOT_THE_OWNER);
    owner(&mut alice, "nobody");
    alice.expect_system(NO_SUCH_ACCOUNT);
    owner(&mut alice, "alice");
    alice.expect_system(CANNOT_TARGET_SELF);
    for member in [&mut alice, &mut bob, &mut guest] {
        member.expect_silence();
    }

    owner(&mut alice, "bob");
    let told = "이제 bob 님이 이 방의 방장입니다.";
    for member in [&mut alice, &mut bob, &mut guest] {
        member.expect_system(told);
    }
    // Alice is an operator now: not the owner, and not above him.
    kick(&mut alice, "bob", "");
    alice.expect_system(CANNOT_TOUCH_OWNER);
    ban(&mut alice, "bob", None);
    alice.expect_system(CANNOT_TOUCH_OWNER);
    op(&mut alice, "bob", true);
    alice.expect_system(NOT_THE_OWNER);
    owner(&mut alice, "bob");
    alice.expect_system(NOT_THE_OWNER);
    kick(&mut alice, "guest", "");
    guest.expect_system(&kicked_self("alice", ""));
    for member in [&mut alice, &mut bob] {
        member.expect_system(&kicked_others("guest", "alice", ""));
    }

    // After a restart: the same ranks.
    drop((alice, bob, guest));
    let server = restart(server, &data);
    let mut bob = logged_in(&server, other(format), "bob", &["accounts", "moderation"]);
    bob.join(1, "교실");
    let mut alice = logged_in(&server, format, "alice", &["accounts", "moderation"]);
    alice.join(1, "교실");
    bob.expect_system(&entered("alice"));
    let mut guest = plain(&server, format, "guest");
    guest.join(1, "교실");
    for member in [&mut alice, &mut bob] {
        member.expect_system(&entered("guest"));
    }
    kick(&mut alice, "bob", "");
    alice.expect_system(CANNOT_TOUCH_OWNER);
    kick(&mut alice, "guest", "나가");
    guest.expect_system(&kicked_self("alice", "나가"));
    for member in [&mut alice, &mut bob] {
        member.expect_system(&kicked_others("guest", "alice", "나가"));
    }
    // The room is bob's account's: alice cannot delete it.
    alice.send(&Request::DeleteRoom { room_id: 1 });
    alice.expect_system(NOT_ROOM_OWNER);
    // The new owner takes the old one's rank away.
    op(&mut bob, "alice", false);
    bob.expect_system(&deopped("alice"));
    alice.expect_system(&deopped("alice"));
    topic(&mut alice, "내 방");
    alice.expect_system(NOT_OPERATOR);
    kick(&mut bob, "alice", "");
    alice.expect_system(&kicked_self("bob", ""));
    bob.expect_system(&kicked_others("alice", "bob", ""));
}

// ---------------------------------------------------------------------------------
// Refusals
// ---------------------------------------------------------------------------------

/// Without the opt-in, every moderation request is told how to opt in (even the
/// owner's); in a guest room none of it applies; names with no account are told so.
fn moderation_needs_the_opt_in_a_registered_room_and_accounts(format: WireFormat) {
    let data = DataDir::new(&format!("refusals-{format}"));
    let server = start(&data);
    // The owner of a registered room, not opted in to moderation.
    let mut alice = registered(&server, format, "alice", &["accounts"]);
    alice.create("교실");
    alice.expect_system(REGISTERED_ROOM_1);
    let mut raw = plain(&server, other(format), "raw");
    raw.join(1, "교실");
    alice.expect_system(&entered("raw"));
    for client in [&mut alice, &mut raw] {
        for request in every_request() {
            client.send(&request);
            client.expect_system(MODERATION_NOT_ENABLED);
        }
    }

    // Opted in, in no room.
    let mut guest = opted_in_guest(&server, format, "guest");
    kick(&mut guest, "alice", "");
    guest.expect_system(NOT_IN_ROOM);
    topic(&mut guest, "주제");
    guest.expect_system(NOT_IN_ROOM);

    // A guest room (its creator has no account): nothing applies, to anyone.
    guest.create("손님방");
    for request in every_request() {
        guest.send(&request);
        guest.expect_system(NOT_REGISTERED_ROOM);
    }
    assert_eq!(
        hello(&mut alice, &["accounts", "moderation"]),
        ["accounts", "moderation"]
    );
    alice.leave("교실");
    raw.expect_system(&left("alice"));
    alice.join(2, "손님방");
    guest.expect_system(&entered("alice"));
    kick(&mut alice, "guest", "");
    alice.expect_system(NOT_REGISTERED_ROOM);
    op(&mut alice, "bob", true);
    alice.expect_system(NO_SUCH_ACCOUNT);
    guest.expect_silence();

    // Back in her registered room: names that are no account.
    alice.leave("손님방");
    guest.expect_system(&left("alice"));
    alice.join(1, "교실");
    raw.expect_system(&entered("alice"));
    for name in ["nobody", "raw", "guest", "[x]", ""] {
        op(&mut alice, name, true);
        alice.expect_system(NO_SUCH_ACCOUNT);
        op(&mut alice, name, false);
        alice.expect_system(NO_SUCH_ACCOUNT);
        owner(&mut alice, name);
        alice.expect_system(NO_SUCH_ACCOUNT);
    }
    ban(&mut alice, "guest", None);
    alice.expect_system(NO_SUCH_ACCOUNT);
    // A reason too long.
    kick(&mut alice, "raw", &"이".repeat(201));
    alice.expect_system(REASON_TOO_LONG);
    raw.expect_silence();
    guest.expect_silence();
    assert_eq!(raw.rooms()[0], room(1, "교실", &["raw", "alice"]));
}

/// A reference client that never chose a name keeps its default one, `(IP, PORT)`,
/// which no `/name` could take: it is kicked and banned by that name all the same.
fn a_member_with_its_default_name_can_be_kicked_and_banned(format: WireFormat) {
    let data = DataDir::new(&format!("default-name-{format:?}"));
    let server = start(&data);
    let mut alice = moderator(&server, format, "alice");
    alice.create("교실");
    alice.expect_system(
        "1번 방이 내 계정에 등록되었습니다. 비어 있어도 남고, /delete 1 으로 지울 수 있습니다.",
    );
    let mut guest = server.client(other(format));
    guest.join(1, "교실");
    let name = guest.default_name();
    alice.expect_system(&format!("[{name}] 님이 입장했습니다."));
    kick(&mut alice, &name, "");
    guest.expect_system(&kicked_self("alice", ""));
    alice.expect_system(&kicked_others(&name, "alice", ""));
    guest.join(1, "교실");
    alice.expect_system(&format!("[{name}] 님이 입장했습니다."));
    ban(&mut alice, &name, None);
    guest.expect_system(&kicked_self("alice", ""));
    alice.expect_system(&format!("{name} 님을 풀 때까지 이 방에서 밴했습니다."));
    join_refused(&mut guest, 1, BANNED_UNTIL_LIFTED);
    unban(&mut alice, &name);
    alice.expect_system(&format!("{name} 님의 밴을 풀었습니다."));
    guest.join(1, "교실");
    alice.expect_system(&format!("[{name}] 님이 입장했습니다."));
    stop(server);
}
