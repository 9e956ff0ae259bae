//! The protocol's opt-in (PROTOCOL.md §7): `CSHello` is answered with `SCHello` in the
//! client's own format, naming the features of its list the server speaks and the
//! server's version; a client that never says hello never sees `SCHello`; a hello
//! too large is refused with a text and the connection stays usable. The `rooms`
//! feature: the room list is pushed to its watchers when it changes, and only then.

mod support;

use chat_proto::codec::encode_response;
use chat_proto::frame::Frames;
use chat_proto::{Request, Response, WireFormat};
use support::*;

in_both_formats!(
    watchers_are_pushed_the_room_list_when_it_changes,
    hello_is_answered_in_the_clients_format,
    a_hello_too_large_is_refused_and_nothing_changes,
    without_a_hello_nothing_new_is_sent,
);

const SERVER: &str = concat!("chat-server/", env!("CARGO_PKG_VERSION"));

fn hello_is_answered_in_the_clients_format(format: WireFormat) {
    let server = TestServer::start();
    let mut client = server.client(format);
    client.send(&Request::Hello {
        features: vec!["no-such-feature".into(), "기능".into()],
    });
    // (`rooms` is spoken, but not asked for here.)
    // Exact bytes: the features this server speaks of the list (none of these), and
    // its name.
    let mut want = Vec::new();
    encode_response(
        format,
        &Response::Hello {
            features: vec![],
            server: SERVER.into(),
        },
        &mut want,
    )
    .unwrap();
    // Frame by frame (JSON: one; protobuf: its Type, then the body).
    for payload in Frames::new(&want) {
        assert_eq!(client.recv_frame(), payload);
    }
    if format == WireFormat::Json {
        assert_eq!(
            String::from_utf8_lossy(&want[2..]),
            format!(r#"{{"type": "SCHello", "features": [], "server": "{SERVER}"}}"#)
        );
    }
    // A second hello is answered again; the session goes on as before.
    client.send(&Request::Hello { features: vec![] });
    assert_eq!(
        client.recv(),
        Response::Hello {
            features: vec![],
            server: SERVER.into()
        }
    );
    client.send(&Request::CreateRoom { title: "t".into() });
    client.expect_system("방제[t] 방에 입장했습니다.");
}

fn a_hello_too_large_is_refused_and_nothing_changes(format: WireFormat) {
    let server = TestServer::start();
    let mut client = server.client(format);
    client.send(&Request::Hello {
        features: vec!["x".into(); 33],
    });
    client.expect_system("기능 목록이 너무 깁니다: 32개까지, 각각 32바이트까지 쓸 수 있습니다.");
    client.send(&Request::Hello {
        features: vec!["x".repeat(33)],
    });
    client.expect_system("기능 목록이 너무 깁니다: 32개까지, 각각 32바이트까지 쓸 수 있습니다.");
    // Not a list of strings: a bad message (§6.1).
    if format == WireFormat::Json {
        client.send_raw(&support::frame(
            br#"{"type": "CSHello", "features": "time"}"#,
        ));
        client.expect_system(
            "잘못된 메시지입니다: CSHello 의 features 필드는 문자열의 배열 이어야 합니다.",
        );
    }
    // At the bounds it is a hello.
    client.send(&Request::Hello {
        features: vec!["x".repeat(32); 32],
    });
    assert!(matches!(client.recv(), Response::Hello { .. }));
}

fn without_a_hello_nothing_new_is_sent(format: WireFormat) {
    // What the reference client does: every command, never a hello. Every reply is
    // one of the three types it knows (the support client's decoder would accept
    // SCHello, so check each reply's type).
    let server = TestServer::start();
    let (mut a, mut b) = server.pair_in_room(format, "방");
    a.send(&Request::Chat {
        text: "안녕".into(),
    });
    b.expect_chat(&a.default_name(), "안녕");
    for client in [&mut a, &mut b] {
        client.send(&Request::Rooms);
        let reply = client.recv();
        assert!(matches!(reply, Response::RoomsResult { .. }), "{reply:?}");
        client.expect_silence();
    }
}

fn hello_with(client: &mut Client, features: &[&str]) -> Vec<String> {
    client.send(&Request::Hello {
        features: features.iter().map(|f| (*f).to_owned()).collect(),
    });
    match client.recv() {
        Response::Hello { features, .. } => features,
        other => panic!("expected SCHello, got {other:?}"),
    }
}

fn watchers_are_pushed_the_room_list_when_it_changes(format: WireFormat) {
    let server = TestServer::start();
    let mut watcher = server.client(format);
    let mut other_watcher = server.client(WireFormat::Json);
    let mut plain = server.client(format);
    assert_eq!(hello_with(&mut watcher, &["rooms", "unknown"]), ["rooms"]);
    assert_eq!(hello_with(&mut other_watcher, &["rooms"]), ["rooms"]);
    // A room is made by a client that never said hello: the watchers are sent the
    // new list, unasked; the client that made it gets only its usual reply.
    plain.send(&Request::CreateRoom {
        title: "새 방".into(),
    });
    plain.expect_system("방제[새 방] 방에 입장했습니다.");
    let pushed = watcher.expect_rooms();
    assert_eq!(pushed.len(), 1);
    assert_eq!((pushed[0].room_id, pushed[0].title.as_str()), (1, "새 방"));
    assert_eq!(pushed[0].members, [plain.default_name()]);
    assert_eq!(other_watcher.expect_rooms(), pushed);
    plain.expect_silence();
    // A chat changes no room: nothing is pushed.
    plain.send(&Request::Chat { text: "hi".into() });
    watcher.expect_silence();
    // A hello without the feature ends the pushes (the other watcher still gets one,
    // in the same tick as the first would have).
    assert!(hello_with(&mut watcher, &[]).is_empty());
    plain.send(&Request::LeaveRoom);
    plain.expect_system("방제[새 방] 대화 방에서 퇴장했습니다.");
    assert!(other_watcher.expect_rooms().is_empty(), "the room is gone");
    watcher.expect_silence();
}
