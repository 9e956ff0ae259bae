//! The cluster half of accounts, registered rooms, login tokens and durable history
//! (PROTOCOL.md §7.2–7.4): a cluster's nodes offer the same extensions as one node
//! with a store, with the same texts, and keep the data in Redis, so that every node
//! sees the same accounts, rooms, history and tokens — and a registered room outlives
//! every node that served it.
//!
//! Each test starts its own `redis-server` and two or more nodes on it
//! (`support/redis.rs`, as `cluster.rs` does), and follows the single node's tests
//! (`accounts.rs`) with the steps spread over the nodes, expecting the texts those
//! tests expect (`support/accounts.rs`). Without a `redis-server` the tests say loudly
//! that they skipped; under `CI=true` they fail.
//!
//! A name is let go of a moment after its holder's connection closes (the node tells
//! Redis without waiting), so a login on another node right after the account's
//! earlier connection closed may find the name still held: [`takes_the_name`] then
//! asks again until it is free, bounded by [`TIMEOUT`].
//!
//! A node learns of another's change (an account, a token) by following the log, so
//! for a moment Redis has it and the node has not heard. The last tests make that
//! moment last: they write an account or a token into Redis directly (`redis-cli`),
//! with no log entry, after the node started (a node reads every account and token
//! before it listens) — so the node can only find it by asking Redis. The values
//! written are real ones, copied from an account registered through a node on a
//! prefix of its own ([`kept_alice`]).

mod support;

use std::thread;
use std::time::{Duration, Instant};

use chat_proto::{Request, Response, WireFormat};
use support::accounts::*;
use support::redis::{RedisServer, signal};
use support::{BinaryServer, Client, NO_SUCH_ROOM, TIMEOUT, entered, left, room, rooms_eventually};

/// `/name` of a name another connection holds (§4.3).
const NAME_TAKEN: &str = "이미 쓰이고 있는 이름이거나 그와 헷갈리는 이름입니다.";
/// An account request from a client that did not opt in.
const ACCOUNTS_NOT_ENABLED: &str =
    "계정 기능을 쓰려면 먼저 CSHello 로 accounts 기능을 켜야 합니다.";
/// `/delete N` from a client not logged in.
const DELETE_NEEDS_LOGIN: &str = "방을 지우려면 그 방을 만든 계정으로 로그인해야 합니다.";
/// `/delete N` of a room not registered to the client's account.
const NOT_ROOM_OWNER: &str = "내 계정에 등록된 방이 아닙니다.";

/// After `Alice 으로 로그인했습니다.`: the login's rename to the account's name.
/// The name's last holder (the account's earlier connection, closed, on another
/// node) may not have let go of it in Redis yet; while it has not, the rename is
/// refused as taken, and `/name` is asked again (polling, bounded by [`TIMEOUT`])
/// until it is granted. Anything else — a token, another text — fails the test.
#[track_caller]
fn takes_the_name(client: &mut Client, name: &str) {
    let renamed = format!("이름이 {name} 으로 변경되었습니다.");
    let deadline = Instant::now() + TIMEOUT;
    let mut reply = client.recv_system();
    while reply != renamed {
        assert_eq!(reply, NAME_TAKEN, "the login's rename to {name}");
        assert!(
            Instant::now() < deadline,
            "{name} was never let go of by the account's earlier connection"
        );
        // A poll interval, not a synchronisation.
        thread::sleep(Duration::from_millis(20));
        client.send(&Request::Name { name: name.into() });
        reply = client.recv_system();
    }
}

/// `/login Alice "correct horse"` on `client` (opted in to accounts): logged in, and
/// the name is the client's.
#[track_caller]
fn log_in_as_alice(client: &mut Client) {
    client.send(&Request::Login {
        name: "Alice".into(),
        password: "correct horse".into(),
    });
    client.expect_system("Alice 으로 로그인했습니다.");
    takes_the_name(client, "Alice");
}

/// Alice logged in from a new connection to `node` that opted in to accounts and
/// history (the cluster's `alice_again`).
#[track_caller]
fn alice_on(node: &BinaryServer, format: WireFormat) -> Client {
    let mut alice = node.client(format);
    assert_eq!(
        hello(&mut alice, &["accounts", "history"]),
        ["accounts", "history"]
    );
    log_in_as_alice(&mut alice);
    alice
}

/// The next message, a chat with its number (the client opted in to history), from
/// `member` saying `text`; its number.
#[track_caller]
fn expect_timed_chat(client: &mut Client, member: &str, text: &str) -> i64 {
    match client.recv() {
        Response::TimedChat {
            member: got_member,
            text: got_text,
            seq,
            ..
        } => {
            assert_eq!(
                (got_member.as_ref(), got_text.as_ref()),
                (member, text),
                "a timed chat"
            );
            seq
        }
        other => panic!("expected a timed chat from {member}, got {other:?}"),
    }
}

/// SIGTERM, and a clean exit (its members leave first, as any node's).
#[track_caller]
fn sigterm(mut node: BinaryServer) {
    signal(&node, libc::SIGTERM);
    assert!(node.wait_for_exit().success());
}

// ---------------------------------------------------------------------------------
// Accounts
// ---------------------------------------------------------------------------------

/// Registered on node A, the name is the account's on node B too: a guest there —
/// one that never opted in (the reference client) or one that did — cannot take it
/// nor its look-alike, whether its owner is connected or not; a wrong password and
/// a name with no account get the same answer; the password logs in on node B.
#[test]
fn an_account_registered_on_one_node_logs_in_on_another() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (redis.node(), redis.node());
    let alice = register_alice(&a, WireFormat::Json);

    let mut raw = b.client(WireFormat::Protobuf);
    let mut guest = b.client(WireFormat::Json);
    assert_eq!(hello(&mut guest, &["accounts"]), ["accounts"]);
    for name in ["Alice", "AIice"] {
        raw.send(&Request::Name { name: name.into() });
        raw.expect_system(NAME_REGISTERED);
        guest.send(&Request::Name { name: name.into() });
        guest.expect_system(NAME_REGISTERED);
    }
    // Not without the password: a wrong one is told as a name with no account.
    guest.send(&Request::Login {
        name: "Alice".into(),
        password: "wrong horse".into(),
    });
    guest.expect_system(BAD_CREDENTIALS);
    guest.send(&Request::Login {
        name: "Nobody".into(),
        password: "wrong horse".into(),
    });
    guest.expect_system(BAD_CREDENTIALS);

    // Its owner gone: still the account's.
    alice.disconnect();
    for name in ["Alice", "AIice"] {
        raw.send(&Request::Name { name: name.into() });
        raw.expect_system(NAME_REGISTERED);
    }
    let mut on_a = a.client(WireFormat::Protobuf);
    on_a.send(&Request::Name {
        name: "AIice".into(),
    });
    on_a.expect_system(NAME_REGISTERED);

    // The password logs in on node B, and the name comes with it.
    log_in_as_alice(&mut guest);
    guest.expect_silence();
    // Logged in on B, the account's name is still nobody else's, on either node.
    raw.send(&Request::Name {
        name: "Alice".into(),
    });
    raw.expect_system(NAME_REGISTERED);
    on_a.send(&Request::Name {
        name: "Alice".into(),
    });
    on_a.expect_system(NAME_REGISTERED);
}

// ---------------------------------------------------------------------------------
// Rooms that last
// ---------------------------------------------------------------------------------

/// The single node's `a_registered_room_outlives_its_members_and_the_server`, spread
/// over nodes: Alice's room, created on node A, is joined from node B; they chat
/// both ways; both go (one leaves, one disconnects). Empty, it is still listed on
/// every node with its id and title, to a client that never opted in. Every node
/// stops (SIGTERM); two new nodes on the same Redis and prefix list it still, and
/// Alice, logged in again on one of them, finds the chats in its history in order
/// with their senders. Later chats are numbered after them, and a new room comes
/// after the kept one.
#[test]
fn a_registered_room_outlives_its_members_and_every_node() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    const PREFIX: &str = "--cluster-prefix=lasting";
    let (a, b) = (redis.node_with(&[PREFIX]), redis.node_with(&[PREFIX]));
    let mut alice = account(&a, WireFormat::Json, "Alice");
    alice.create("라운지");
    alice.expect_system(REGISTERED_ROOM_1);
    // The reference client's view, on the other node: an ordinary room, ordinary
    // chats.
    let mut bob = b.client(WireFormat::Protobuf);
    bob.set_name("bob");
    bob.join(1, "라운지");
    alice.expect_system(&entered("bob"));
    alice.chat("하나");
    bob.expect_chat("Alice", "하나");
    bob.chat("둘");
    expect_timed_chat(&mut alice, "bob", "둘");
    alice.chat("셋");
    bob.expect_chat("Alice", "셋");
    bob.chat("넷");
    expect_timed_chat(&mut alice, "bob", "넷");
    // Bob leaves; Alice, the last member, goes with her connection.
    bob.leave("라운지");
    alice.expect_system(&left("bob"));
    alice.disconnect();
    bob.disconnect();
    let kept = [room(1, "라운지", &[])];
    for node in [&a, &b] {
        rooms_eventually(&mut node.client(WireFormat::Json), &kept);
    }

    // Every node stops; the cluster is two new ones on the same Redis.
    sigterm(a);
    sigterm(b);
    let (c, d) = (redis.node_with(&[PREFIX]), redis.node_with(&[PREFIX]));
    let mut raw = c.client(WireFormat::Protobuf);
    rooms_eventually(&mut raw, &kept);
    rooms_eventually(&mut d.client(WireFormat::Json), &kept);
    let mut alice = alice_on(&d, WireFormat::Protobuf);
    alice.join(1, "라운지");
    let (lines, more) = match alice.recv() {
        Response::History {
            room_id,
            lines,
            more,
        } => {
            assert_eq!(room_id, 1);
            (lines, more)
        }
        other => panic!("expected SCHistory, got {other:?}"),
    };
    assert_eq!(
        (
            lines
                .iter()
                .map(|l| (l.member.clone(), l.text.clone()))
                .collect::<Vec<_>>(),
            more
        ),
        (
            pairs(&[
                ("Alice", "하나"),
                ("bob", "둘"),
                ("Alice", "셋"),
                ("bob", "넷")
            ]),
            false
        )
    );
    assert!(
        lines.windows(2).all(|w| w[0].seq < w[1].seq),
        "numbers increase: {lines:?}"
    );
    // The next chat is numbered after the kept ones.
    raw.join(1, "라운지");
    alice.expect_system(&entered(&raw.default_name()));
    raw.chat("다섯");
    let seq = expect_timed_chat(&mut alice, &raw.default_name(), "다섯");
    assert!(seq > lines[3].seq, "{seq} after {lines:?}");
    // A new room comes after the kept one.
    let mut guest = c.client(WireFormat::Json);
    guest.create("새 방");
    assert_eq!(
        guest.rooms(),
        [
            room(1, "라운지", &["Alice", &raw.default_name()]),
            room(2, "새 방", &[&guest.default_name()]),
        ]
    );
}

/// A registered room keeps only the last `--history` chats, in Redis as on the
/// nodes: with `--history=5`, of 8 chats (sent from node B into Alice's room, created
/// on node A) Redis's list of the room holds the last 5, in order, and so does the
/// page a member joining is sent; once every node stopped, a new node's page is those
/// 5 still, and says there is nothing before them.
#[test]
fn a_registered_rooms_history_is_trimmed_to_the_history_limit() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    const FLAGS: [&str; 2] = ["--cluster-prefix=trimmed", "--history=5"];
    let (a, b) = (redis.node_with(&FLAGS), redis.node_with(&FLAGS));
    let mut alice = account(&a, WireFormat::Json, "Alice");
    alice.create("기록");
    alice.expect_system(REGISTERED_ROOM_1);
    let mut bob = b.client(WireFormat::Protobuf);
    bob.set_name("bob");
    bob.join(1, "기록");
    alice.expect_system(&entered("bob"));
    let said: Vec<String> = (1..=8).map(|n| format!("말 {n}")).collect();
    for text in &said {
        bob.chat(text);
        // Delivered from the log entry the same script pushed to the history with.
        expect_timed_chat(&mut alice, "bob", text);
    }
    let last_five: Vec<(String, String)> = said[3..]
        .iter()
        .map(|text| ("bob".to_owned(), text.clone()))
        .collect();

    // In Redis: the last 5, oldest first, each `stream id ␟ name ␟ text`.
    let list = key("trimmed", "room:1:history");
    assert_eq!(redis_cli(&redis, &["LLEN", &list]), "5");
    let kept: Vec<(String, String)> = redis_cli(&redis, &["LRANGE", &list, "0", "-1"])
        .lines()
        .map(|line| {
            let mut parts = line.splitn(3, SEP);
            let (_id, name, text) = (parts.next(), parts.next(), parts.next());
            (
                name.unwrap_or_default().to_owned(),
                text.unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(kept, last_five, "{list} in Redis");
    // On the node: the page a member joining is sent.
    alice.leave("기록");
    bob.expect_system(&left("Alice"));
    alice.join(1, "기록");
    assert_eq!(
        page(&mut alice),
        (last_five.clone(), false),
        "node A's page"
    );
    bob.expect_system(&entered("Alice"));

    // Every node stops; the cluster is two new ones on the same Redis.
    bob.disconnect();
    alice.disconnect();
    sigterm(a);
    sigterm(b);
    let (c, d) = (redis.node_with(&FLAGS), redis.node_with(&FLAGS));
    rooms_eventually(&mut c.client(WireFormat::Json), &[room(1, "기록", &[])]);
    let mut alice = alice_on(&d, WireFormat::Protobuf);
    alice.join(1, "기록");
    let lines = match alice.recv() {
        Response::History {
            room_id: 1,
            lines,
            more,
        } => {
            let got: Vec<(String, String)> = lines
                .iter()
                .map(|l| (l.member.clone(), l.text.clone()))
                .collect();
            assert_eq!((got, more), (last_five, false), "the page after a restart");
            lines
        }
        other => panic!("expected SCHistory of room 1, got {other:?}"),
    };
    assert!(
        lines.windows(2).all(|w| w[0].seq < w[1].seq),
        "numbers increase: {lines:?}"
    );
    assert_eq!(redis_cli(&redis, &["LLEN", &list]), "5");
}

/// A room created by anyone not logged in — a client that never opted in, or one
/// that opted in to accounts without logging in — is an ordinary room in cluster
/// mode too: gone, on every node and in Redis, with its last member, by a leave or
/// a disconnect.
#[test]
fn a_guest_room_still_vanishes_with_its_last_member() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (redis.node(), redis.node());
    let mut probe_a = a.client(WireFormat::Json);
    let mut probe_b = b.client(WireFormat::Protobuf);

    let mut raw = a.client(WireFormat::Protobuf);
    raw.create("손님방");
    let mut guest = b.client(WireFormat::Json);
    assert_eq!(hello(&mut guest, &["accounts"]), ["accounts"]);
    guest.join(1, "손님방");
    raw.expect_system(&entered(&guest.default_name()));
    raw.leave("손님방");
    guest.expect_system(&left(&raw.default_name()));
    rooms_eventually(&mut probe_a, &[room(1, "손님방", &[&guest.default_name()])]);
    guest.leave("손님방");
    rooms_eventually(&mut probe_a, &[]);
    rooms_eventually(&mut probe_b, &[]);
    raw.send(&Request::JoinRoom { room_id: 1 });
    raw.expect_system(NO_SUCH_ROOM);

    // Opted in, not logged in: not registered (no text after the entry notice), and
    // gone with its member's connection.
    guest.create("둘");
    guest.expect_silence();
    rooms_eventually(&mut probe_a, &[room(2, "둘", &[&guest.default_name()])]);
    guest.disconnect();
    rooms_eventually(&mut probe_a, &[]);
    rooms_eventually(&mut probe_b, &[]);
    // Nothing of either is left in Redis: a node started now lists no room.
    let c = redis.node();
    rooms_eventually(&mut c.client(WireFormat::Json), &[]);
}

/// The single node's `the_owner_gives_up_a_registered_room`, spread over nodes: rooms
/// registered on node A are given up by their owner logged in on node B. Only the
/// owner, logged in, may; an empty room goes at once, on every node; one with a
/// member (on node A) is registered no more, its member told nothing, and goes with
/// its last member, on every node and in Redis.
#[test]
fn the_owner_gives_up_a_registered_room_from_another_node() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (redis.node(), redis.node());
    let mut alice = account(&a, WireFormat::Protobuf, "Alice");
    alice.create("하나");
    alice.expect_system(REGISTERED_ROOM_1);
    alice.chat("잊혀질 말");
    alice.leave("하나");
    alice.create("둘");
    alice.expect_system(
        "2번 방이 내 계정에 등록되었습니다. 비어 있어도 남고, /delete 2 으로 지울 수 있습니다.",
    );
    let mut bob = a.client(WireFormat::Json);
    bob.set_name("bob");
    bob.join(2, "둘");
    alice.expect_system(&entered("bob"));
    alice.leave("둘");
    bob.expect_system(&left("Alice"));
    alice.disconnect();

    // On node B. Not opted in: told how; opted in but not logged in: told to log in.
    let mut guest = b.client(WireFormat::Json);
    guest.send(&Request::DeleteRoom { room_id: 1 });
    guest.expect_system(ACCOUNTS_NOT_ENABLED);
    assert_eq!(hello(&mut guest, &["accounts"]), ["accounts"]);
    guest.send(&Request::DeleteRoom { room_id: 1 });
    guest.expect_system(DELETE_NEEDS_LOGIN);
    // Another account: not its rooms. No such room: said so.
    let mut carol = account(&b, WireFormat::Json, "Carol");
    for room_id in [1, 2] {
        carol.send(&Request::DeleteRoom { room_id });
        carol.expect_system(NOT_ROOM_OWNER);
    }
    carol.send(&Request::DeleteRoom { room_id: 99 });
    carol.expect_system(NO_SUCH_ROOM);

    let mut probe_a = a.client(WireFormat::Protobuf);
    let mut probe_b = b.client(WireFormat::Json);
    let mut owner = alice_on(&b, WireFormat::Json);
    // Empty: gone at once, on both nodes.
    owner.send(&Request::DeleteRoom { room_id: 1 });
    owner.expect_system("1번 방을 지웠습니다.");
    for probe in [&mut probe_a, &mut probe_b] {
        rooms_eventually(probe, &[room(2, "둘", &["bob"])]);
        probe.send(&Request::JoinRoom { room_id: 1 });
        probe.expect_system(NO_SUCH_ROOM);
    }
    owner.send(&Request::DeleteRoom { room_id: 1 });
    owner.expect_system(NO_SUCH_ROOM);
    // With a member (on node A): registered no more, its member told nothing.
    owner.send(&Request::DeleteRoom { room_id: 2 });
    owner.expect_system("2번 방의 등록을 풀었습니다. 마지막 멤버가 나가면 사라집니다.");
    assert_eq!(bob.rooms(), [room(2, "둘", &["bob"])]);
    // Nobody's room now, the owner's included.
    owner.send(&Request::DeleteRoom { room_id: 2 });
    owner.expect_system(NOT_ROOM_OWNER);
    rooms_eventually(&mut probe_b, &[room(2, "둘", &["bob"])]);
    // Gone with its last member, everywhere.
    bob.leave("둘");
    rooms_eventually(&mut probe_a, &[]);
    rooms_eventually(&mut probe_b, &[]);
    let c = redis.node();
    rooms_eventually(&mut c.client(WireFormat::Json), &[]);
}

// ---------------------------------------------------------------------------------
// Logging in again with a token (the `resume` extension)
// ---------------------------------------------------------------------------------

/// A token handed out on node A logs in on node B without the password (and hands
/// no new one); a new password set on node B ends it, on node A too, as it ends the
/// old password, and hands a new token that works on node A; `/logout` there ends
/// that one on node B.
#[test]
fn a_token_from_one_node_logs_in_on_another_until_the_password_changes() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (redis.node(), redis.node());
    let mut alice = a.client(WireFormat::Json);
    assert_eq!(
        hello(&mut alice, &["accounts", "resume"]),
        ["accounts", "resume"]
    );
    alice.set_name("Alice");
    alice.send(&Request::Register {
        password: "correct horse".into(),
    });
    alice.expect_system(REGISTERED);
    let token = expect_token(&mut alice);
    alice.disconnect();

    // A wrong token: refused on node B, and nothing else happens.
    let mut wrong = resume(&b, WireFormat::Json, &"0".repeat(64));
    wrong.expect_system(RESUME_FAILED);
    wrong.expect_silence();
    // Node A's token on node B: logged in, the name, no new token.
    let mut back = resume(&b, WireFormat::Protobuf, &token);
    back.expect_system("Alice 으로 로그인했습니다.");
    takes_the_name(&mut back, "Alice");
    back.expect_silence();

    // A new password on node B ends every token and hands a new one.
    back.send(&Request::ChangePassword {
        old: "correct horse".into(),
        new: "battery staple".into(),
    });
    back.expect_system("비밀번호를 바꿨습니다.");
    let fresh = expect_token(&mut back);
    assert_ne!(fresh, token);
    // On node A, the old token is refused, as the old password is.
    resume(&a, WireFormat::Json, &token).expect_system(RESUME_FAILED);
    let mut old = a.client(WireFormat::Protobuf);
    assert_eq!(hello(&mut old, &["accounts"]), ["accounts"]);
    old.send(&Request::Login {
        name: "Alice".into(),
        password: "correct horse".into(),
    });
    old.expect_system(BAD_CREDENTIALS);

    // The new token works on node A (once node B's connection is gone and has let go
    // of the name); `/logout` there ends it on node B too.
    back.disconnect();
    let mut again = resume(&a, WireFormat::Json, &fresh);
    again.expect_system("Alice 으로 로그인했습니다.");
    takes_the_name(&mut again, "Alice");
    again.expect_silence();
    again.send(&Request::Logout);
    again.expect_system("로그아웃했습니다.");
    again.expect_system(&format!(
        "이름이 {} 으로 변경되었습니다.",
        again.default_name()
    ));
    resume(&b, WireFormat::Protobuf, &fresh).expect_system(RESUME_FAILED);
}

// ---------------------------------------------------------------------------------
// A node that has not heard yet: Redis decides
// ---------------------------------------------------------------------------------

/// The separator of the fields of a value in Redis (`scripts.rs`).
const SEP: char = '\u{1f}';

/// Key `rest` under `--cluster-prefix=prefix` (`{prefix}:rest`).
fn key(prefix: &str, rest: &str) -> String {
    format!("{{{prefix}}}:{rest}")
}

/// One command through `redis-cli`; its output (a failure fails the test).
#[track_caller]
fn redis_cli(redis: &RedisServer, args: &[&str]) -> String {
    redis
        .cli(args)
        .unwrap_or_else(|| panic!("redis-cli {args:?} failed"))
}

/// The hash a login token is kept as in `P:tokens`: hex of BLAKE2b-256 of the token.
fn token_hash(token: &str) -> String {
    use blake2::{Blake2b, Digest, digest::consts::U32};
    use std::fmt::Write as _;
    Blake2b::<U32>::digest(token.as_bytes())
        .iter()
        .fold(String::new(), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

/// Alice's account (password "correct horse") and a login token of hers, as Redis
/// keeps them.
struct KeptAlice {
    /// Her name's key (the field of `P:accounts`).
    key: String,
    /// Her account (`name ␟ password hash ␟ created ms`).
    account: String,
    /// A token she was handed.
    token: String,
}

/// Registers Alice through a node of its own on `--cluster-prefix=prefix` (with
/// `resume`, so she is handed a token) and reads her account from Redis, and her
/// token's entry (checking that it is kept under [`token_hash`] for her key).
#[track_caller]
fn kept_alice(redis: &RedisServer, prefix: &str) -> KeptAlice {
    let flag = format!("--cluster-prefix={prefix}");
    let node = redis.node_with(&[&flag]);
    let mut alice = node.client(WireFormat::Json);
    assert_eq!(
        hello(&mut alice, &["accounts", "resume"]),
        ["accounts", "resume"]
    );
    alice.set_name("Alice");
    alice.send(&Request::Register {
        password: "correct horse".into(),
    });
    // Answered once Redis has it.
    alice.expect_system(REGISTERED);
    let token = expect_token(&mut alice);
    let all = redis_cli(redis, &["HGETALL", &key(prefix, "accounts")]);
    let [key_of_alice, account] = all.lines().collect::<Vec<_>>()[..] else {
        panic!("one account in {prefix}: {all:?}")
    };
    assert!(account.starts_with(&format!("Alice{SEP}")), "{account:?}");
    // A token is kept without waiting: polled for, bounded.
    let tokens = key(prefix, "tokens");
    let hash = token_hash(&token);
    let deadline = Instant::now() + TIMEOUT;
    let entry = loop {
        let entry = redis_cli(redis, &["HGET", &tokens, &hash]);
        if !entry.is_empty() {
            break entry;
        }
        assert!(
            Instant::now() < deadline,
            "the token never reached {tokens}: {:?}",
            redis_cli(redis, &["HGETALL", &tokens])
        );
        // A poll interval, not a synchronisation.
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        entry.split_once(SEP).map(|(k, _)| k),
        Some(key_of_alice),
        "{tokens} {hash}"
    );
    KeptAlice {
        key: key_of_alice.to_owned(),
        account: account.to_owned(),
        token,
    }
}

/// Writes Alice's account under `prefix` directly, with no log entry: Redis has it,
/// no node has heard of it.
fn plant_account(redis: &RedisServer, prefix: &str, alice: &KeptAlice) {
    redis_cli(
        redis,
        &["HSET", &key(prefix, "accounts"), &alice.key, &alice.account],
    );
}

/// Writes a login token of Alice's, `token`, expiring at `expires_ms`, under
/// `prefix` directly, with no log entry (as `TOKEN_ADD` keeps one).
fn plant_token(redis: &RedisServer, prefix: &str, alice: &KeptAlice, token: &str, expires_ms: i64) {
    let hash = token_hash(token);
    let entry = format!("{}{SEP}{expires_ms}", alice.key);
    redis_cli(redis, &["HSET", &key(prefix, "tokens"), &hash, &entry]);
    let set = key(prefix, &format!("account:{}:tokens", alice.key));
    redis_cli(redis, &["SADD", &set, &hash]);
}

/// A name registered in Redis is refused by the name-claim script to anyone not
/// logged in as it, even by a node that has not heard of the account: a guest's
/// `/name Alice` (or a look-alike) is refused — Redis says the name is registered,
/// and the guest is told so — and only a login as the account takes it.
#[test]
fn a_registered_name_the_node_has_not_heard_of_is_refused() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let alice = kept_alice(&redis, "elsewhere");
    let node = redis.node();
    let mut raw = node.client(WireFormat::Protobuf);
    let mut guest = node.client(WireFormat::Json);
    assert_eq!(hello(&mut guest, &["accounts"]), ["accounts"]);
    // Before: free (and let go of again).
    raw.set_name("Alice");
    raw.set_name("raw");
    plant_account(&redis, "chat", &alice);

    for name in ["Alice", "AIice"] {
        raw.send(&Request::Name { name: name.into() });
        raw.expect_system(NAME_REGISTERED);
        guest.send(&Request::Name { name: name.into() });
        guest.expect_system(NAME_REGISTERED);
    }
    // Other names are as free as ever.
    guest.set_name("Bob");
    // Logged in as it (the node looks the account up), the name is given.
    log_in_as_alice(&mut guest);
    guest.expect_silence();
    raw.send(&Request::Name {
        name: "Alice".into(),
    });
    let refused = raw.recv_system();
    assert!(
        [NAME_TAKEN, NAME_REGISTERED].contains(&refused.as_str()),
        "{refused}"
    );
}

/// A `/login` for an account the node has not heard of is looked up in Redis before
/// it is refused: the password logs in, with the name; a wrong one, or a name with
/// no account, gets the usual answer.
#[test]
fn a_login_the_node_has_not_heard_of_is_looked_up_in_redis() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let alice = kept_alice(&redis, "first");
    const PREFIX: &str = "--cluster-prefix=second";
    let (a, b) = (redis.node_with(&[PREFIX]), redis.node_with(&[PREFIX]));
    plant_account(&redis, "second", &alice);

    // Node A, a wrong password; node B, the right one: each looks the account up.
    let mut wrong = a.client(WireFormat::Protobuf);
    assert_eq!(hello(&mut wrong, &["accounts"]), ["accounts"]);
    wrong.send(&Request::Login {
        name: "Alice".into(),
        password: "wrong horse".into(),
    });
    wrong.expect_system(BAD_CREDENTIALS);
    wrong.send(&Request::Login {
        name: "Nobody".into(),
        password: "correct horse".into(),
    });
    wrong.expect_system(BAD_CREDENTIALS);
    wrong.expect_silence();
    let mut right = b.client(WireFormat::Json);
    assert_eq!(hello(&mut right, &["accounts"]), ["accounts"]);
    log_in_as_alice(&mut right);
    right.expect_silence();
}

/// A `CSResume` token the node has not heard of is looked up in Redis before it is
/// refused: a token handed out elsewhere (for an account the node knows) logs in,
/// with the name and no new token; one that expired is refused.
#[test]
fn a_token_the_node_has_not_heard_of_is_looked_up_in_redis() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let alice = kept_alice(&redis, "first");
    // The account before the node starts (it reads it), the tokens after.
    plant_account(&redis, "second", &alice);
    let node = redis.node_with(&["--cluster-prefix=second"]);
    let expired = "0123456789abcdef".repeat(4);
    plant_token(&redis, "second", &alice, &expired, now_ms() - 60_000);
    plant_token(&redis, "second", &alice, &alice.token, now_ms() + 3_600_000);

    let mut late = resume(&node, WireFormat::Json, &expired);
    late.expect_system(RESUME_FAILED);
    late.expect_silence();
    let mut back = resume(&node, WireFormat::Protobuf, &alice.token);
    back.expect_system("Alice 으로 로그인했습니다.");
    takes_the_name(&mut back, "Alice");
    back.expect_silence();
}

/// A `CSResume` right after the account was registered and the token handed out
/// elsewhere, when the node has heard of neither: the token is looked up in Redis,
/// and logs in, with the name (as the password would: `/login` looks the account up).
#[test]
fn a_token_and_its_account_the_node_has_not_heard_of_log_in() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let alice = kept_alice(&redis, "first");
    let node = redis.node_with(&["--cluster-prefix=second"]);
    plant_account(&redis, "second", &alice);
    plant_token(&redis, "second", &alice, &alice.token, now_ms() + 3_600_000);

    let mut back = resume(&node, WireFormat::Protobuf, &alice.token);
    back.expect_system("Alice 으로 로그인했습니다.");
    takes_the_name(&mut back, "Alice");
    back.expect_silence();
}
