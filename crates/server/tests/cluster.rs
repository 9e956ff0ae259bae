//! Cluster mode against a real `redis-server`: several `chat-server` processes
//! sharing one chat through it.
//!
//! Each test starts its own Redis on a free loopback port (no persistence unless the
//! test needs it) and its own nodes, with fast liveness knobs (100 ms heartbeat,
//! 500 ms time to live) unless the test is about the defaults. Without a
//! `redis-server` the tests say loudly that they skipped; under `CI=true` they fail.
//! The harness ([`RedisServer`]) is `support/redis.rs`, shared with
//! `cluster_accounts.rs`.

mod support;

use std::io::{Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use chat_proto::{Request, Response, WireFormat};
use support::redis::{RedisServer, signal};
use support::{BinaryServer, Client, TIMEOUT, entered, left, room};

/// Receives until a system message `text` arrives, returning what came before it.
#[track_caller]
fn until_system(client: &mut Client, text: &str) -> Vec<Response<'static>> {
    let mut before = Vec::new();
    loop {
        match client.recv() {
            Response::SystemMessage { text: got } if got == text => return before,
            other => before.push(other),
        }
    }
}

const RESET: &str = "서버가 클러스터와의 연결을 잃어 방에서 나가게 되었습니다. 다시 접속해 주세요.";
const UNAVAILABLE: &str = "지금은 요청을 처리할 수 없습니다. 잠시 후 다시 시도해 주세요.";

// ---------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------

#[test]
fn room_ids_and_listings_agree_on_every_node() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let nodes = [redis.node(), redis.node(), redis.node()];
    let mut creators: Vec<Client> = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let mut c = node.client(WireFormat::Json);
        c.set_name(&format!("c{i}"));
        c.create(&format!("room {i}"));
        creators.push(c);
    }
    let want = vec![
        room(1, "room 0", &["c0"]),
        room(2, "room 1", &["c1"]),
        room(3, "room 2", &["c2"]),
    ];
    for node in &nodes {
        // A fresh client on each node: the listing is the node's replica, which has
        // applied every change that returned before (each create waited for its own
        // node's application; other nodes may lag a moment, so poll).
        let mut probe = node.client(WireFormat::Protobuf);
        support::rooms_eventually(&mut probe, &want);
    }
    // The creator's own node shows its room at once: replies stay in order.
    for (i, c) in creators.iter_mut().enumerate() {
        assert!(c.rooms().iter().any(|r| r.room_id == i as i64 + 1));
    }
}

#[test]
fn chat_and_notices_cross_nodes_in_both_formats() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (redis.node(), redis.node());
    let mut alice = a.client(WireFormat::Json);
    let mut bob = b.client(WireFormat::Protobuf);
    alice.set_name("alice");
    bob.set_name("bob");
    alice.create("lobby");
    bob.join(1, "lobby");
    alice.expect_system(&entered("bob"));
    alice.chat("안녕 bob 😀");
    bob.expect_chat("alice", "안녕 bob 😀");
    bob.chat("hi alice");
    alice.expect_chat("bob", "hi alice");
    bob.send(&Request::Name {
        name: "robert".into(),
    });
    bob.expect_system("이름이 robert 으로 변경되었습니다.");
    alice.expect_system("bob 의 이름이 robert 으로 변경되었습니다.");
    assert_eq!(alice.rooms(), vec![room(1, "lobby", &["alice", "robert"])]);
    bob.leave("lobby");
    alice.expect_system(&left("robert"));
    alice.expect_silence();
    bob.expect_silence();
}

#[test]
fn names_are_unique_across_nodes() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (redis.node(), redis.node());
    let mut first = a.client(WireFormat::Json);
    let mut second = b.client(WireFormat::Json);
    first.set_name("dora");
    second.send(&Request::Name {
        name: "dora".into(),
    });
    let refused = second.recv_system();
    assert!(
        refused.contains("dora") || refused.contains("이름"),
        "{refused}"
    );
    assert_ne!(refused, "이름이 dora 으로 변경되었습니다.");
    // Released when its holder leaves: then it can be taken on the other node.
    first.disconnect();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        second.send(&Request::Name {
            name: "dora".into(),
        });
        if second.recv_system() == "이름이 dora 으로 변경되었습니다." {
            break;
        }
        assert!(Instant::now() < deadline, "the name was never released");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Three senders on three nodes pipeline numbered chats into one room; listeners on
/// every node must all see the same interleaving, each sender's chats in order.
#[test]
fn pipelining_senders_on_three_nodes_are_seen_in_one_order() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let nodes = [redis.node(), redis.node(), redis.node()];
    const PER_SENDER: usize = 300;
    let mut owner = nodes[0].client(WireFormat::Json);
    owner.set_name("owner");
    owner.create("busy");
    let mut listeners = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        for format in WireFormat::ALL {
            let mut l = node.client(format);
            l.set_name(&format!("l{i}{}", format.index()));
            l.join(1, "busy");
            listeners.push(l);
        }
    }
    let mut senders = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let mut s = node.client(WireFormat::Protobuf);
        s.set_name(&format!("s{i}"));
        s.join(1, "busy");
        senders.push(s);
    }
    // Every join returned (each waited for its own node to apply it), so every
    // join precedes every chat in the log: each listener gets all the chats.
    let threads: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            thread::spawn(move || {
                for n in 0..PER_SENDER {
                    s.chat(&format!("{i}:{n}"));
                }
                s
            })
        })
        .collect();
    let _senders: Vec<Client> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let mut orders = Vec::new();
    for l in &mut listeners {
        let mut seen = Vec::new();
        while seen.len() < 3 * PER_SENDER {
            match l.recv() {
                Response::Chat { text, .. } => seen.push(text.into_owned()),
                Response::SystemMessage { .. } => {} // joins of the senders
                other => panic!("unexpected {other:?}"),
            }
        }
        for sender in 0..3 {
            let mine: Vec<usize> = seen
                .iter()
                .filter_map(|t| t.strip_prefix(&format!("{sender}:")))
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(
                mine,
                (0..PER_SENDER).collect::<Vec<_>>(),
                "sender {sender}: lost or reordered"
            );
        }
        orders.push(seen);
    }
    for order in &orders[1..] {
        assert!(
            order == &orders[0],
            "two listeners saw different interleavings"
        );
    }
}

/// A sender streams numbered chats on one node while others join and leave on the
/// others: each joiner's view is one contiguous run of the numbers.
#[test]
fn joiners_on_other_nodes_see_a_contiguous_run() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    // Liveness is not what this test is about, and its talker keeps every core busy:
    // a generous time to live, so that a late heartbeat cannot have a node presumed
    // dead and reset mid-test (seen with a 0.5 s one: clients cut, joins "unavailable").
    let calm = ["--cluster-heartbeat-ms=1000", "--cluster-node-ttl-ms=5000"];
    let nodes = [
        redis.node_with(&calm),
        redis.node_with(&calm),
        redis.node_with(&calm),
    ];
    let mut sender = nodes[0].client(WireFormat::Json);
    sender.set_name("talker");
    sender.create("stream");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let talker = {
        let stop = std::sync::Arc::clone(&stop);
        thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                sender.chat(&n.to_string());
                n += 1;
                // A pace, not a synchronisation: a few thousand chats a second.
                if n.is_multiple_of(10) {
                    thread::sleep(Duration::from_millis(2));
                }
            }
            sender
        })
    };
    for round in 0..6 {
        let node = &nodes[1 + round % 2];
        let mut joiner = node.client(if round % 2 == 0 {
            WireFormat::Json
        } else {
            WireFormat::Protobuf
        });
        joiner.join(1, "stream");
        let mut seen = Vec::new();
        while seen.len() < 40 {
            if let Response::Chat { text, .. } = joiner.recv() {
                seen.push(text.parse::<u64>().unwrap());
            }
        }
        joiner.send(&Request::LeaveRoom);
        for r in until_system(&mut joiner, "방제[stream] 대화 방에서 퇴장했습니다.") {
            if let Response::Chat { text, .. } = r {
                seen.push(text.parse::<u64>().unwrap());
            }
        }
        joiner.expect_silence();
        for pair in seen.windows(2) {
            assert_eq!(
                pair[1],
                pair[0] + 1,
                "round {round}: a gap or reorder in {seen:?}"
            );
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    talker.join().unwrap();
}

/// A node killed with SIGKILL: with the default liveness settings, the others see its
/// members leave within 5 s, its empty rooms go, and ids are not reused.
#[test]
fn a_killed_node_s_members_leave_within_five_seconds() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let defaults = ["--cluster-node-ttl-ms=3000", "--cluster-heartbeat-ms=1000"];
    let survivor = redis.node_with(&defaults);
    let mut doomed = redis.node_with(&defaults);
    let mut stay = survivor.client(WireFormat::Json);
    stay.set_name("stay");
    stay.create("shared");
    let mut victim = doomed.client(WireFormat::Protobuf);
    victim.set_name("victim");
    victim.join(1, "shared");
    stay.expect_system(&entered("victim"));
    let mut alone = doomed.client(WireFormat::Json);
    alone.create("only on the dead node");
    support::rooms_eventually(
        &mut stay,
        &[
            room(1, "shared", &["stay", "victim"]),
            room(2, "only on the dead node", &[&alone.default_name()]),
        ],
    );

    doomed.child.kill().unwrap();
    let killed = Instant::now();
    doomed.wait_for_exit();
    stay.expect_system(&left("victim"));
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(5), "leave notice after {took:?}");
    support::rooms_eventually(&mut stay, &[room(1, "shared", &["stay"])]);
    let mut next = survivor.client(WireFormat::Json);
    next.create("after");
    let rooms = next.rooms();
    assert_eq!(
        rooms.iter().map(|r| r.room_id).collect::<Vec<_>>(),
        [1, 3],
        "ids are never reused"
    );
}

/// Every Redis connection of every node is killed (`CLIENT KILL`) while chats flow:
/// nothing is lost, doubled or reordered.
#[test]
fn killed_redis_connections_lose_and_reorder_nothing() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (redis.node(), redis.node());
    let mut sender = a.client(WireFormat::Json);
    sender.create("flow");
    let mut far = b.client(WireFormat::Protobuf);
    far.join(1, "flow");
    let mut near = a.client(WireFormat::Json);
    near.join(1, "flow");
    sender.expect_system(&entered(&far.default_name()));
    sender.expect_system(&entered(&near.default_name()));
    far.expect_system(&entered(&near.default_name()));
    near.expect_silence();
    const N: usize = 2000;
    let talker = thread::spawn(move || {
        for n in 0..N {
            sender.chat(&n.to_string());
        }
        sender
    });
    for _ in 0..5 {
        thread::sleep(Duration::from_millis(30));
        let killed = redis.cli(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
        assert!(killed.is_some());
    }
    let _sender = talker.join().unwrap();
    for listener in [&mut far, &mut near] {
        let mut next = 0;
        while next < N {
            match listener.recv() {
                Response::Chat { text, .. } => {
                    assert_eq!(
                        text.parse::<usize>().unwrap(),
                        next,
                        "lost, doubled or reordered"
                    );
                    next += 1;
                }
                other => panic!("unexpected {other:?} after {next} chats"),
            }
        }
        listener.expect_silence();
    }
}

/// Redis stops: commands fail fast with a clear message, `/rooms` still answers from
/// what the node knows, clients stay connected; Redis comes back with its data and
/// service resumes with no restart.
#[test]
fn redis_down_fails_fast_and_service_resumes_when_it_returns() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (redis.node(), redis.node());
    let mut alice = a.client(WireFormat::Json);
    alice.set_name("alice");
    alice.create("kept");
    let mut bob = b.client(WireFormat::Protobuf);
    bob.set_name("bob");
    bob.join(1, "kept");
    alice.expect_system(&entered("bob"));

    let mut carol = b.client(WireFormat::Json);
    carol.expect_silence();

    redis.stop(true);
    // Until a node notices, a request may still wait for its timeout; never over 1 s.
    for (is_bob, request) in [
        (
            false,
            Request::CreateRoom {
                title: "new".into(),
            },
        ),
        (
            false,
            Request::Name {
                name: "newname".into(),
            },
        ),
        (true, Request::LeaveRoom),
        (false, Request::JoinRoom { room_id: 1 }),
    ] {
        let client = if is_bob { &mut bob } else { &mut carol };
        let started = Instant::now();
        client.send(&request);
        assert_eq!(client.recv_system(), UNAVAILABLE, "{request:?}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{request:?} waited {:?}",
            started.elapsed()
        );
    }
    assert_eq!(
        bob.rooms(),
        vec![room(1, "kept", &["alice", "bob"])],
        "/rooms answers from the replica"
    );

    redis.restart();
    let deadline = Instant::now() + TIMEOUT;
    for attempt in 0.. {
        let text = format!("are you there? {attempt}");
        bob.chat(&text);
        bob.send(&Request::Rooms);
        let mut refused = false;
        loop {
            match bob.recv() {
                Response::RoomsResult { .. } => break,
                Response::SystemMessage { text }
                    if text == UNAVAILABLE || text.contains("전달되지") =>
                {
                    refused = true
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        if !refused {
            // Earlier attempts may have arrived after all; this one must.
            loop {
                match alice.recv() {
                    Response::Chat { text: got, .. } if got == text => break,
                    Response::Chat { text: got, .. } if got.starts_with("are you there?") => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
            break;
        }
        assert!(Instant::now() < deadline, "service did not resume");
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(alice.rooms(), vec![room(1, "kept", &["alice", "bob"])]);
}

/// Redis restarted empty: in-room clients are told and disconnected; room ids
/// continue above the highest seen.
#[test]
fn redis_restarted_empty_resets_rooms_but_never_reuses_ids() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (redis.node(), redis.node());
    let mut alice = a.client(WireFormat::Json);
    alice.create("one");
    let mut bob = b.client(WireFormat::Protobuf);
    bob.create("two");
    let mut idle = b.client(WireFormat::Json);
    idle.set_name("idle");
    support::rooms_eventually(
        &mut idle,
        &[
            room(1, "one", &[&alice.default_name()]),
            room(2, "two", &[&bob.default_name()]),
        ],
    );

    redis.stop(false);
    redis.restart();
    until_system(&mut alice, RESET);
    alice.expect_eof();
    until_system(&mut bob, RESET);
    bob.expect_eof();
    // The client that was in no room stays connected.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        idle.send(&Request::CreateRoom {
            title: "three".into(),
        });
        let reply = idle.recv_system();
        if reply == "방제[three] 방에 입장했습니다." {
            break;
        }
        assert_eq!(reply, UNAVAILABLE);
        assert!(Instant::now() < deadline, "the cluster did not come back");
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(idle.rooms(), vec![room(3, "three", &["idle"])]);
}

/// A node stopped (SIGSTOP) past its deadline is reaped by the others; when it
/// continues it must not deliver stale state: its in-room clients are disconnected
/// with a message, and the chat one of them sent while it was stopped reaches nobody.
#[test]
fn a_node_paused_past_its_deadline_is_fenced() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (live, paused) = (redis.node(), redis.node());
    let mut watcher = live.client(WireFormat::Json);
    watcher.set_name("watcher");
    watcher.create("room");
    let mut sleeper = paused.client(WireFormat::Protobuf);
    sleeper.set_name("sleeper");
    sleeper.join(1, "room");
    watcher.expect_system(&entered("sleeper"));

    signal(&paused, libc::SIGSTOP);
    watcher.expect_system(&left("sleeper"));
    sleeper.chat("zombie");
    signal(&paused, libc::SIGCONT);
    until_system(&mut sleeper, RESET);
    sleeper.expect_eof();
    watcher.expect_silence();
    // The fenced node rejoined: its new clients use the cluster as before.
    let mut fresh = paused.client(WireFormat::Json);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        fresh.send(&Request::JoinRoom { room_id: 1 });
        let reply = fresh.recv_system();
        if reply == "방제[room] 방에 입장했습니다." {
            break;
        }
        assert_eq!(reply, UNAVAILABLE);
        assert!(Instant::now() < deadline, "the fenced node never rejoined");
        thread::sleep(Duration::from_millis(50));
    }
    watcher.expect_system(&entered(&fresh.default_name()));
    fresh.chat("back");
    watcher.expect_chat(&fresh.default_name(), "back");
}

/// SIGTERM stops one node; its members leave their rooms cleanly first.
#[test]
fn sigterm_stops_one_node_and_its_members_leave_first() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let defaults = ["--cluster-node-ttl-ms=3000", "--cluster-heartbeat-ms=1000"];
    let stays = redis.node_with(&defaults);
    let mut goes = redis.node_with(&defaults);
    let mut watcher = stays.client(WireFormat::Json);
    watcher.set_name("watcher");
    watcher.create("room");
    let mut leaver = goes.client(WireFormat::Json);
    leaver.set_name("leaver");
    leaver.join(1, "room");
    watcher.expect_system(&entered("leaver"));
    signal(&goes, libc::SIGTERM);
    let started = Instant::now();
    watcher.expect_system(&left("leaver"));
    // Well before the 3 s time to live would have passed: the node said so itself.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(goes.wait_for_exit().success());
    assert_eq!(watcher.rooms(), vec![room(1, "room", &["watcher"])]);
    // Its own log calls that leaving, not a death.
    goes.log_line("cluster: this node left the cluster cleanly");
    assert_eq!(goes.log_count("dead node"), 0);
}

/// A node whose reader stays away longer than half the log's retention (here
/// stopped for 1.5 s with 2 s retention, well inside its 5 s time to live, so it is not
/// declared dead) may have missed trimmed entries: it resynchronises, disconnecting
/// its in-room clients with a message, and the others are told they left.
#[test]
fn a_reader_that_fell_behind_the_log_resynchronises() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let knobs = [
        "--cluster-heartbeat-ms=500",
        "--cluster-node-ttl-ms=5000",
        "--cluster-log-retention-ms=2000",
    ];
    let (live, behind) = (redis.node_with(&knobs), redis.node_with(&knobs));
    let mut watcher = live.client(WireFormat::Json);
    watcher.set_name("watcher");
    watcher.create("room");
    let mut lagger = behind.client(WireFormat::Protobuf);
    lagger.set_name("lagger");
    lagger.join(1, "room");
    watcher.expect_system(&entered("lagger"));
    let mut outside = behind.client(WireFormat::Json);
    outside.expect_silence();

    signal(&behind, libc::SIGSTOP);
    watcher.chat("while you were away");
    let stopped = Instant::now();
    while stopped.elapsed() < Duration::from_millis(1500) {
        thread::sleep(Duration::from_millis(50));
    }
    signal(&behind, libc::SIGCONT);
    until_system(&mut lagger, RESET);
    lagger.expect_eof();
    watcher.expect_system(&left("lagger"));
    // Clients in no room are not affected.
    outside.expect_silence();
}

/// The metrics endpoint shows the cluster's view.
#[test]
fn metrics_show_the_cluster_s_view() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let node = redis.node_with(&[
        "--metrics=127.0.0.1:0",
        "--cluster-heartbeat-ms=100",
        "--cluster-node-ttl-ms=500",
    ]);
    let mut alice = node.client(WireFormat::Json);
    alice.create("metered");
    alice.chat("one");
    alice.expect_silence();
    let addr = {
        let log = node.log_line("metrics on http://");
        let at = log.find("metrics on http://").unwrap() + "metrics on http://".len();
        log[at..].split('/').next().unwrap().to_owned()
    };
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let page = http_get(&addr, "/metrics");
        let value = |name: &str| -> Option<u64> {
            page.lines()
                .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse().ok())
        };
        if value("chat_cluster_available") == Some(1)
            && value("chat_cluster_log_entries_applied_total").is_some_and(|n| n >= 2)
            && value("chat_cluster_redis_round_trips_total").is_some_and(|n| n >= 1)
            && page.contains("chat_cluster_log_lag_ms")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never showed the cluster:\n{page}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// The node id in a node's `cluster: joined through URL node=ID node_name=…` line,
/// after checking that the line names `node_name` exactly so.
#[track_caller]
fn joined_as(redis: &RedisServer, node: &BinaryServer, node_name: &str) -> u64 {
    let line = node.log_line("cluster: joined through");
    let at = format!(
        "INFO chat_cluster::broker: cluster: joined through {} node=",
        redis.url()
    );
    let rest = &line[line.find(&at).unwrap_or_else(|| panic!("{line}")) + at.len()..];
    let (id, rest) = rest.split_once(' ').unwrap_or_else(|| panic!("{line}"));
    assert!(
        rest.starts_with(&format!("node_name=\"{node_name}\" epoch=")),
        "{line}"
    );
    id.parse().unwrap_or_else(|e| panic!("{line}: {e}"))
}

/// This machine's host name, as `--node-name`'s default reads it.
fn host_name() -> String {
    let mut buf = [0u8; 256];
    let (at, len) = (buf.as_mut_ptr().cast(), buf.len());
    // SAFETY: `at` and `len` describe `buf`, which outlives the call.
    let done = unsafe { libc::gethostname(at, len) };
    assert_eq!(done, 0, "gethostname");
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

/// `--node-name` is a label beside the node's random id, not an identity: it is in
/// the node's log lines, its metrics (`chat_cluster_node_info`) and its Redis
/// connections' names, while ids stay unique, so two nodes given the same name both
/// serve and share the chat. Without the flag the name is the host name (with
/// `--port=0`; `HOST:PORT` for a fixed port).
#[test]
fn a_node_s_name_is_a_label_in_its_log_metrics_and_redis_connections() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = redis.node_with(&["--node-name=twin", "--metrics=127.0.0.1:0"]);
    let b = redis.node_with(&["--node-name=twin"]);
    let unnamed = redis.node();
    let (id_a, id_b) = (joined_as(&redis, &a, "twin"), joined_as(&redis, &b, "twin"));
    assert_ne!(id_a, id_b, "one name, two nodes");
    joined_as(&redis, &unnamed, &host_name());

    let mut alice = a.client(WireFormat::Json);
    let mut bob = b.client(WireFormat::Protobuf);
    alice.set_name("alice");
    bob.set_name("bob");
    alice.create("twins");
    bob.join(1, "twins");
    alice.expect_system(&entered("bob"));
    bob.chat("same name, other node");
    alice.expect_chat("bob", "same name, other node");

    let metrics = {
        let line = a.log_line("metrics on http://");
        let at = line.find("metrics on http://").unwrap() + "metrics on http://".len();
        line[at..].split('/').next().unwrap().to_owned()
    };
    let page = http_get(&metrics, "/metrics");
    for want in [
        "chat_cluster_node_info{node_name=\"twin\"} 1".to_owned(),
        format!("chat_cluster_node_id {id_a}"),
    ] {
        assert!(page.lines().any(|l| l == want), "{want} in:\n{page}");
    }

    // Each node's reader connection carries its name and its own id.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let clients = redis.cli(&["CLIENT", "LIST"]).unwrap_or_default();
        let named = |id: u64| clients.contains(&format!(" name=chat-reader-twin-{id} "));
        if named(id_a) && named(id_b) {
            break;
        }
        assert!(Instant::now() < deadline, "CLIENT LIST:\n{clients}");
        thread::sleep(Duration::from_millis(20));
    }
}

fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to /metrics");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut page = String::new();
    stream.read_to_string(&mut page).unwrap();
    page
}

/// Web clients work on every node: a browser on one node and a TCP client on another
/// share a room.
#[test]
fn a_web_client_on_one_node_chats_with_a_tcp_client_on_another() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let a = redis.node_with(&[
        "--web=127.0.0.1:0",
        "--cluster-heartbeat-ms=100",
        "--cluster-node-ttl-ms=500",
    ]);
    let b = redis.node();
    let web = {
        let log = a.log_line("web client on http://");
        let at = log.find("web client on http://").unwrap() + "web client on http://".len();
        log[at..].split('/').next().unwrap().to_owned()
    };
    let stream = std::net::TcpStream::connect(&web).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    use tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{web}/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Origin", format!("http://{web}").parse().unwrap());
    let (mut browser, _) = tungstenite::client::client(request, stream).expect("the handshake");
    browser
        .send(tungstenite::Message::text(
            r#"{"type":"CSCreateRoom","title":"web"}"#,
        ))
        .unwrap();
    let entered_self = loop {
        if let tungstenite::Message::Text(text) = browser.read().unwrap() {
            break serde_json::from_str::<serde_json::Value>(text.as_str()).unwrap();
        }
    };
    assert_eq!(entered_self["text"], "방제[web] 방에 입장했습니다.");
    let mut tcp = b.client(WireFormat::Protobuf);
    tcp.join(1, "web");
    tcp.chat("from another node");
    let got = loop {
        if let tungstenite::Message::Text(text) = browser.read().unwrap() {
            let v: serde_json::Value = serde_json::from_str(text.as_str()).unwrap();
            if v["type"] == "SCChat" {
                break v;
            }
        }
    };
    assert_eq!(got["member"], tcp.default_name().as_str());
    assert_eq!(got["text"], "from another node");
}

/// Redis stalls (`DEBUG SLEEP`) while one client's `/create` waits on it, on a node
/// with a single worker: another client's bad frame is still answered at once (no
/// worker waits for Redis), and the creator's later request is answered after its
/// `/create`'s own outcome, never before.
#[test]
fn a_redis_stall_delays_only_what_needs_redis() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let node = redis.node_with(&[
        "--workers=1",
        "--cluster-heartbeat-ms=1000",
        "--cluster-node-ttl-ms=10000",
    ]);
    let mut creator = node.client(WireFormat::Json);
    creator.set_name("creator");
    let mut other = node.client(WireFormat::Json);
    other.set_name("other");

    // Redis asleep for 3 s: proven by a PING that gets no answer.
    let mut sleeper = std::net::TcpStream::connect(("127.0.0.1", redis.port)).expect("redis");
    sleeper
        .write_all(b"DEBUG SLEEP 3\r\n")
        .expect("DEBUG SLEEP");
    // (A PING sent on another connection may still be served before the sleep
    // starts; then ask again.)
    for attempt in 0.. {
        assert!(
            attempt < 10,
            "Redis kept answering PING: DEBUG SLEEP did not start"
        );
        let mut probe = std::net::TcpStream::connect(("127.0.0.1", redis.port)).expect("redis");
        probe.write_all(b"PING\r\n").expect("PING");
        probe
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let mut pong = [0u8; 16];
        if probe.read(&mut pong).is_err() {
            break;
        }
    }

    creator.send(&Request::CreateRoom {
        title: "stalled".into(),
    });
    creator.send(&Request::Rooms);
    let started = Instant::now();
    other.send_raw(&support::frame(b"[1]"));
    other.expect_system(&chat_proto::DecodeError::NotAnObject.to_string());
    let answered = started.elapsed();
    assert!(
        answered < Duration::from_millis(200),
        "a bad frame waited {answered:?} behind a request stuck on Redis"
    );

    // The creator: its /create's outcome first (refused for the stall, or done), then
    // the listing it asked for after it.
    let outcome = creator.recv_system();
    assert!(
        outcome == UNAVAILABLE || outcome == "방제[stalled] 방에 입장했습니다.",
        "{outcome}"
    );
    assert!(
        matches!(creator.recv(), Response::RoomsResult { .. }),
        "the /rooms sent after /create is answered after it"
    );
    // Service resumes once Redis wakes.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        other.send(&Request::CreateRoom {
            title: "after".into(),
        });
        let reply = other.recv_system();
        if reply == "방제[after] 방에 입장했습니다." {
            break;
        }
        assert_eq!(reply, UNAVAILABLE);
        assert!(Instant::now() < deadline, "the cluster did not come back");
        thread::sleep(Duration::from_millis(50));
    }
}

/// Redis loses its data (`FLUSHALL`) while a client of node A holds a name; a client
/// of node B tries to take it every 10 ms. Ten times over, B never gets it while A's
/// client holds it: the nodes re-claim their clients' names before any new claim is
/// accepted.
#[test]
fn names_stay_unique_through_a_redis_flush() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    // The racer's node notices the flush well before the holder's (nodes that beat
    // in step reset almost together, and the race is rarely lost).
    let a = redis.node_with(&["--cluster-heartbeat-ms=1000", "--cluster-node-ttl-ms=2000"]);
    let b = redis.node_with(&["--cluster-heartbeat-ms=100", "--cluster-node-ttl-ms=2000"]);
    for trial in 0..10 {
        let name = format!("held{trial}");
        let mut holder = a.client(WireFormat::Json);
        holder.set_name(&name);
        let mut racer = b.client(WireFormat::Protobuf);
        assert_eq!(redis.cli(&["FLUSHALL"]).as_deref(), Some("OK"));
        let deadline = Instant::now() + TIMEOUT;
        loop {
            racer.send(&Request::Name { name: name.clone() });
            let reply = racer.recv_system();
            assert_ne!(
                reply,
                format!("이름이 {name} 으로 변경되었습니다."),
                "trial {trial}: the name was taken while its holder still held it"
            );
            if reply != UNAVAILABLE {
                // Refused as taken: the holder's node re-claimed it first.
                assert!(reply.contains("이름"), "trial {trial}: {reply}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "trial {trial}: no answer but unavailable"
            );
            thread::sleep(Duration::from_millis(10));
        }
        // The holder was never told to go, and still holds the name.
        holder.send(&Request::Rooms);
        assert!(matches!(holder.recv(), Response::RoomsResult { .. }));
        holder.expect_silence();
    }
}

/// The `history` extension across nodes: every node numbers a room's chats alike
/// (from their place in the shared log), so clients on different nodes see the same
/// lines with the same numbers; a page sent on entry is ordered with the log (it
/// holds exactly the chats before the entry).
#[test]
fn history_is_numbered_alike_on_every_node() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let (a, b) = (redis.node(), redis.node());
    let opt_in = |client: &mut Client| {
        client.send(&Request::Hello {
            features: vec!["history".into()],
        });
        assert!(matches!(client.recv(), Response::Hello { .. }));
    };
    let mut alice = a.client(WireFormat::Json);
    alice.set_name("alice");
    alice.create("lobby");
    let mut bob = b.client(WireFormat::Protobuf);
    bob.set_name("bob");
    opt_in(&mut bob);
    bob.send(&Request::JoinRoom { room_id: 1 });
    bob.expect_system("방제[lobby] 방에 입장했습니다.");
    assert!(matches!(bob.recv(), Response::History { lines, .. } if lines.is_empty()));
    alice.expect_system(&entered("bob"));
    let mut on_b = Vec::new();
    for text in ["one", "two"] {
        alice.chat(text);
        match bob.recv() {
            Response::TimedChat { text, seq, .. } => on_b.push((seq, text.into_owned())),
            other => panic!("expected a timed chat, got {other:?}"),
        }
    }
    assert!(on_b[0].0 < on_b[1].0);
    // Carol enters on node A after the two chats in the log: her page holds them,
    // numbered as on node B.
    let mut carol = a.client(WireFormat::Json);
    carol.set_name("carol");
    opt_in(&mut carol);
    carol.send(&Request::JoinRoom { room_id: 1 });
    carol.expect_system("방제[lobby] 방에 입장했습니다.");
    let Response::History { lines, more, .. } = carol.recv() else {
        panic!("expected SCHistory on node A");
    };
    let on_a: Vec<(i64, String)> = lines.into_iter().map(|l| (l.seq, l.text)).collect();
    assert_eq!(
        (on_a, more),
        (on_b, false),
        "the same numbers on both nodes"
    );
}
