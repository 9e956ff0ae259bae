//! Moderation across a cluster's nodes (PROTOCOL.md §7.6): the owner on one node
//! kicks and bans a member connected to another, every node applies the request at
//! the same place in the room's order (the same rules, `Room::moderate`), and the
//! room's operators, bans and topic are kept in Redis, so they outlive every node. A
//! real `redis-server` (`support/redis.rs`); without one the tests say loudly that
//! they skipped, and under `CI=true` they fail.

mod support;

use chat_proto::{Request, Response, WireFormat};
use support::accounts::{REGISTERED_ROOM_1, hello};
use support::redis::{RedisServer, signal};
use support::{BinaryServer, Client, TIMEOUT};

/// A client of `node` that opted in to accounts and moderation, registered as
/// `name` (password "correct horse").
fn moderator(node: &BinaryServer, name: &str) -> Client {
    let mut client = node.client(WireFormat::Json);
    assert_eq!(
        hello(&mut client, &["accounts", "moderation"]),
        ["accounts", "moderation"]
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

/// `name` logged in again on `node`, opted in to moderation.
fn logged_in(node: &BinaryServer, name: &str) -> Client {
    let mut client = node.client(WireFormat::Protobuf);
    hello(&mut client, &["accounts", "moderation"]);
    client.send(&Request::Login {
        name: name.into(),
        password: "correct horse".into(),
    });
    client.expect_system(&format!("{name} 으로 로그인했습니다."));
    // The name's last holder may be letting go of it in Redis: ask until granted.
    let renamed = format!("이름이 {name} 으로 변경되었습니다.");
    let deadline = std::time::Instant::now() + TIMEOUT;
    let mut reply = client.recv_system();
    while reply != renamed {
        assert!(std::time::Instant::now() < deadline, "{name}: {reply}");
        std::thread::sleep(std::time::Duration::from_millis(20));
        client.send(&Request::Name { name: name.into() });
        reply = client.recv_system();
    }
    client
}

#[test]
fn the_owner_on_one_node_kicks_and_bans_a_member_on_another() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (redis.node(), redis.node());
    let mut alice = moderator(&a, "alice");
    alice.send(&Request::CreateRoom {
        title: "교실".into(),
    });
    alice.expect_system("방제[교실] 방에 입장했습니다.");
    alice.expect_system(REGISTERED_ROOM_1);
    // Bob, an account on node B; a plain guest there too.
    let mut bob = moderator(&b, "bob");
    bob.join(1, "교실");
    alice.expect_system("[bob] 님이 입장했습니다.");
    let mut guest = b.client(WireFormat::Protobuf);
    guest.join(1, "교실");
    alice.expect_system(&format!("[{}] 님이 입장했습니다.", guest.default_name()));
    bob.expect_system(&format!("[{}] 님이 입장했습니다.", guest.default_name()));

    // A topic set on node A reaches the opted-in member on node B.
    alice.send(&Request::Topic {
        text: "숙제 이야기".into(),
    });
    let expect_topic = |client: &mut Client| match client.recv() {
        Response::Topic { room_id, topic, by } => {
            assert_eq!(
                (room_id, topic.as_ref(), by.as_ref()),
                (1, "숙제 이야기", "alice")
            );
        }
        other => panic!("expected SCTopic, got {other:?}"),
    };
    // The setter opted in too: the room's SCTopic, then its answer.
    expect_topic(&mut alice);
    alice.expect_system("주제를 바꿨습니다: 숙제 이야기");
    expect_topic(&mut bob);

    // Bob may not kick; the owner kicks him across nodes: he is told, the room too.
    bob.send(&Request::Kick {
        name: "alice".into(),
        reason: String::new(),
    });
    bob.expect_system("방장이나 운영자만 할 수 있습니다.");
    alice.send(&Request::Kick {
        name: "bob".into(),
        reason: "떠들어서".into(),
    });
    let told = "[bob] 님이 [alice] 님에 의해 방에서 내보내졌습니다. 이유: 떠들어서";
    alice.expect_system(told);
    bob.expect_system("[alice] 님이 나를 방에서 내보냈습니다. 이유: 떠들어서");
    guest.expect_system(told);
    bob.send(&Request::LeaveRoom);
    bob.expect_system("현재 대화방에 들어가 있지 않습니다.");
    let members = |client: &mut Client| client.rooms()[0].members.clone();
    assert_eq!(members(&mut guest), ["alice", &guest.default_name()]);

    // Banned on node A: bob, back on node B, cannot enter; nor after reconnecting.
    alice.send(&Request::Ban {
        name: "bob".into(),
        minutes: Some(30),
        ban: true,
    });
    alice.expect_system("bob 님을 30분 동안 이 방에서 밴했습니다.");
    bob.send(&Request::JoinRoom { room_id: 1 });
    bob.expect_system("이 방에서 밴되어 들어갈 수 없습니다. 30분 뒤에 풀립니다.");
    bob.disconnect();
    let mut bob = logged_in(&b, "bob");
    bob.send(&Request::JoinRoom { room_id: 1 });
    bob.expect_system("이 방에서 밴되어 들어갈 수 없습니다. 30분 뒤에 풀립니다.");

    // Every node stops; two fresh ones find the ban and the topic in Redis.
    drop(guest);
    drop(bob);
    drop(alice);
    for node in [a, b] {
        let mut node = node;
        signal(&node, libc::SIGTERM);
        assert!(node.wait_for_exit().success());
    }
    let (c, d) = (redis.node(), redis.node());
    let mut bob = logged_in(&d, "bob");
    bob.send(&Request::JoinRoom { room_id: 1 });
    bob.expect_system("이 방에서 밴되어 들어갈 수 없습니다. 30분 뒤에 풀립니다.");
    let mut alice = logged_in(&c, "alice");
    alice.join(1, "교실");
    match alice.recv() {
        Response::Topic { topic, by, .. } => {
            assert_eq!((topic.as_ref(), by.as_ref()), ("숙제 이야기", ""));
        }
        other => panic!("expected SCTopic, got {other:?}"),
    }
    alice.send(&Request::Ban {
        name: "bob".into(),
        minutes: None,
        ban: false,
    });
    alice.expect_system("bob 님의 밴을 풀었습니다.");
    bob.join(1, "교실");
    alice.expect_system("[bob] 님이 입장했습니다.");
}
