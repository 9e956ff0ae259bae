//! The `history` extension over the wire (PROTOCOL.md §7.3), in both formats: a
//! client that opted in gets a room's recent chats after its entry notice and chats
//! with their numbers and times, pages on request, a clear text for every bad
//! request; a client that did not (the reference client) sees exactly what it saw.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use chat_proto::{HistoryLine, Request, Response, WireFormat};
use support::*;

in_both_formats!(
    entry_sends_the_recent_chats_and_chats_carry_numbers,
    pages_on_request_and_bad_requests_are_told,
);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn hello(client: &mut Client, features: &[&str]) {
    client.send(&Request::Hello {
        features: features.iter().map(|f| (*f).to_owned()).collect(),
    });
    assert!(matches!(client.recv(), Response::Hello { .. }));
}

/// The lines of a page, without their times (checked apart).
fn texts(lines: &[HistoryLine]) -> Vec<(i64, &str, &str)> {
    lines
        .iter()
        .map(|l| (l.seq, l.member.as_str(), l.text.as_str()))
        .collect()
}

fn entry_sends_the_recent_chats_and_chats_carry_numbers(format: WireFormat) {
    let server = TestServer::start();
    let mut plain = server.client(format);
    plain.send(&Request::Name {
        name: "plain".into(),
    });
    plain.expect_system("이름이 plain 으로 변경되었습니다.");
    plain.send(&Request::CreateRoom {
        title: "방".into()
    });
    plain.expect_system("방제[방] 방에 입장했습니다.");
    let before = now_ms();
    for text in ["하나", "둘", "셋"] {
        plain.chat(text);
    }
    // A barrier: the three are taken (and kept) before anyone else asks.
    plain.expect_silence();
    let mut timed = server.client(format);
    hello(&mut timed, &["history"]);
    timed.send(&Request::JoinRoom { room_id: 1 });
    timed.expect_system("방제[방] 방에 입장했습니다.");
    let Response::History {
        room_id,
        lines,
        more,
    } = timed.recv()
    else {
        panic!("expected SCHistory");
    };
    assert_eq!((room_id, more), (1, false));
    assert_eq!(
        texts(&lines),
        [(1, "plain", "하나"), (2, "plain", "둘"), (3, "plain", "셋")]
    );
    let after = now_ms();
    assert!(
        lines.iter().all(|l| (before..=after).contains(&l.time)),
        "{lines:?}"
    );
    plain.expect_system(&format!("[{}] 님이 입장했습니다.", timed.default_name()));
    // Live chats: numbered and timed for the client that asked, unchanged for the
    // other (the reference client's SCChat, byte for byte).
    plain.chat("넷");
    match timed.recv() {
        Response::TimedChat {
            member,
            text,
            seq,
            time,
        } => {
            assert_eq!((member.as_ref(), text.as_ref(), seq), ("plain", "넷", 4));
            assert!((before..=now_ms()).contains(&time));
        }
        other => panic!("expected a timed chat, got {other:?}"),
    }
    timed.chat("다섯");
    let frame = plain.recv_frame();
    match format {
        WireFormat::Json => assert_eq!(
            String::from_utf8_lossy(&frame),
            format!(
                r#"{{"type": "SCChat", "member": "{}", "text": "다섯"}}"#,
                timed.default_name()
            )
        ),
        WireFormat::Protobuf => {
            assert_eq!(frame, [0x08, 0x08], "the Type frame of SC_CHAT");
            let body = plain.recv_frame();
            let mut want = vec![0x0a, timed.default_name().len() as u8];
            want.extend_from_slice(timed.default_name().as_bytes());
            want.extend_from_slice(&[0x12, 6]);
            want.extend_from_slice("다섯".as_bytes());
            assert_eq!(body, want, "member and text only");
        }
    }
    plain.expect_silence();
}

fn pages_on_request_and_bad_requests_are_told(format: WireFormat) {
    let server = TestServer::start();
    let mut a = server.client(format);
    // Not opted in: told how.
    a.send(&Request::History {
        count: None,
        before: None,
    });
    a.expect_system("대화 기록을 보려면 먼저 CSHello 로 history 기능을 켜야 합니다.");
    hello(&mut a, &["history"]);
    a.send(&Request::History {
        count: None,
        before: None,
    });
    a.expect_system("현재 대화방에 들어가 있지 않습니다.");
    a.send(&Request::CreateRoom { title: "t".into() });
    a.expect_system("방제[t] 방에 입장했습니다.");
    let mut b = server.client(format);
    b.send(&Request::JoinRoom { room_id: 1 });
    b.expect_system("방제[t] 방에 입장했습니다.");
    assert!(
        matches!(a.recv(), Response::SystemMessage { .. }),
        "b entered"
    );
    for i in 1..=250 {
        b.chat(&format!("line {i}"));
        assert!(matches!(a.recv(), Response::TimedChat { .. }));
    }
    let page = |a: &mut Client, count, before| {
        a.send(&Request::History { count, before });
        match a.recv() {
            Response::History { lines, more, .. } => (
                lines.first().map(|l| l.seq),
                lines.last().map(|l| l.seq),
                lines.len(),
                more,
            ),
            other => panic!("expected SCHistory, got {other:?}"),
        }
    };
    assert_eq!(page(&mut a, None, None), (Some(201), Some(250), 50, true));
    assert_eq!(
        page(&mut a, Some(200), None),
        (Some(51), Some(250), 200, true)
    );
    assert_eq!(
        page(&mut a, Some(200), Some(51)),
        (Some(1), Some(50), 50, false)
    );
    assert_eq!(page(&mut a, Some(5), Some(1)), (None, None, 0, false));
    for (count, before) in [
        (Some(0), None),
        (Some(201), None),
        (Some(-3), None),
        (None, Some(0)),
        (None, Some(-1)),
    ] {
        a.send(&Request::History { count, before });
        a.expect_system("대화 기록은 한 번에 1줄부터 200줄까지, 1번 줄 이후로 요청할 수 있습니다.");
    }
    a.expect_silence();
}
