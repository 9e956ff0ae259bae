//! `chat-client` against the real server (in-process), in both formats: every line it
//! prints is compared exactly with `docs/PROTOCOL.md` §5, while a second client
//! ([`Peer`], raw frames) shares a room with it.

mod common;

use chat_proto::codec::encode_response;
use chat_proto::{Request, Response, WireFormat};
use common::{ChatClient, EOF_LINE, Peer, TestServer, in_both_formats};

const HELP: [&str; 7] = [
    "/help: 사용 가능 명령어를 나열한다.",
    "/name: 채팅 이름을 지정한다.",
    "/rooms: 채팅 방 목록을 출력한다.",
    "/create: 채팅 방을 만든다.",
    "/join: 채팅 방에 들어간다.",
    "/leave: 채팅 방을 나간다.",
    "/shutdown: 채팅 서버를 종료한다.",
];

const NO_ROOMS: [&str; 5] = ["---", "[방목록]", "방ID | 방제목 | 멤버들", "(없음)", "---"];

fn help_and_local_errors(format: WireFormat) {
    let server = TestServer::start();
    let mut client = ChatClient::connect(server.addr, format, &[]);
    client.type_line("/help");
    client.expect_lines(&HELP);
    client.type_line("/x 1 2");
    client.expect("Invalid command: /x");
    for line in ["/join", "/join 0", "/join -3", "/join abc"] {
        client.type_line(line);
        client.expect("방 번호를 입력해야 됩니다.");
    }
    client.type_line("/create   ");
    client.expect("방 제목을 지정해야 됩니다.");
    // Blank lines print nothing: the next line out is the reply to /rooms.
    client.type_line("");
    client.type_line("   \t");
    client.type_line("/rooms");
    client.expect_lines(&NO_ROOMS);
    let (rest, status) = client.finish();
    assert_eq!(rest, [EOF_LINE]);
    assert!(status.success(), "{status:?}");
}

fn chatting_with_a_peer(format: WireFormat) {
    let server = TestServer::start();
    let mut client = ChatClient::connect(server.addr, format, &[]);
    let mut peer = Peer::connect(server.addr, format);

    client.type_line("/name  앨리스   A ");
    client.expect("[시스템 메시지] 이름이 앨리스 A 으로 변경되었습니다.");
    client.type_line("/create 첫   방");
    client.expect("[시스템 메시지] 방제[첫 방] 방에 입장했습니다.");

    peer.name("bob");
    peer.send(Request::JoinRoom { room_id: 1 });
    peer.expect_system("방제[첫 방] 방에 입장했습니다.");
    client.expect("[시스템 메시지] [bob] 님이 입장했습니다.");

    client.type_line("/rooms");
    client.expect_lines(&[
        "---",
        "[방목록]",
        "방ID | 방제목 | 멤버들",
        "1 | 첫 방 | 앨리스 A,bob",
        "---",
    ]);

    peer.send(Request::Chat {
        text: "안녕 😀 \\ok".into(),
    });
    client.expect("[bob] 안녕 😀 \\ok");

    client.type_line("  hello   there  ");
    assert_eq!(
        peer.recv(),
        Response::Chat {
            member: "앨리스 A".into(),
            text: "hello   there".into()
        }
    );

    client.type_line("/name alice");
    client.expect("[시스템 메시지] 이름이 alice 으로 변경되었습니다.");
    peer.expect_system("앨리스 A 의 이름이 alice 으로 변경되었습니다.");

    client.type_line("/join 1");
    client.expect("[시스템 메시지] 대화 방에 있을 때는 다른 방에 들어갈 수 없습니다.");
    client.type_line("/create other");
    client.expect("[시스템 메시지] 대화 방에 있을 때는 방을 개설 할 수 없습니다.");

    peer.send(Request::LeaveRoom);
    peer.expect_system("방제[첫 방] 대화 방에서 퇴장했습니다.");
    client.expect("[시스템 메시지] [bob] 님이 퇴장했습니다.");

    client.type_line("/leave");
    client.expect("[시스템 메시지] 방제[첫 방] 대화 방에서 퇴장했습니다.");
    client.type_line("/leave");
    client.expect("[시스템 메시지] 현재 대화방에 들어가 있지 않습니다.");
    client.type_line("anyone?");
    client.expect("[시스템 메시지] 현재 대화방에 들어가 있지 않습니다.");
    client.type_line("/join 1");
    client.expect("[시스템 메시지] 대화방이 존재하지 않습니다.");
    client.type_line("/rooms");
    client.expect_lines(&NO_ROOMS);

    // The peer sees the client's departure when it quits.
    peer.send(Request::CreateRoom {
        title: "bob's".into(),
    });
    peer.expect_system("방제[bob's] 방에 입장했습니다.");
    client.type_line("/join 2");
    client.expect("[시스템 메시지] 방제[bob's] 방에 입장했습니다.");
    peer.expect_system("[alice] 님이 입장했습니다.");
    let (rest, status) = client.finish();
    assert_eq!(rest, [EOF_LINE]);
    assert!(status.success(), "{status:?}");
    peer.expect_system("[alice] 님이 퇴장했습니다.");
}

/// A whole script piped at once, stdin closed right away: every reply still arrives
/// (in order) before the EOF line.
fn piped_script_keeps_every_reply(format: WireFormat) {
    let server = TestServer::start();
    let mut client = ChatClient::spawn(server.addr, format, &[]);
    client.type_raw(b"/name p\n/rooms\n/create r\r\n/rooms\n/leave\n/name q");
    let (lines, status) = client.finish();
    let port = server.addr.port();
    let expected: Vec<String> = [
        &format!("Connected to 127.0.0.1:{port}") as &str,
        "[시스템 메시지] 이름이 p 으로 변경되었습니다.",
        "---",
        "[방목록]",
        "방ID | 방제목 | 멤버들",
        "(없음)",
        "---",
        "[시스템 메시지] 방제[r] 방에 입장했습니다.",
        "---",
        "[방목록]",
        "방ID | 방제목 | 멤버들",
        "1 | r | p",
        "---",
        "[시스템 메시지] 방제[r] 대화 방에서 퇴장했습니다.",
        "[시스템 메시지] 이름이 q 으로 변경되었습니다.",
        EOF_LINE,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(lines, expected);
    assert!(status.success(), "{status:?}");
}

fn shutdown_closes_the_socket(format: WireFormat) {
    let server = TestServer::start();
    let mut client = ChatClient::connect(server.addr, format, &[]);
    client.type_line("/shutdown");
    let (rest, status) = client.wait();
    // Everyone connected hears why the socket is about to close (a system
    // message, which the reference client knows), then the close itself.
    assert_eq!(
        rest,
        ["[시스템 메시지] 서버가 종료됩니다.", "서버가 소켓을 닫았음"]
    );
    assert!(status.success(), "{status:?}");
    server.wait_for_exit().expect("the server stops cleanly");
}

/// A direct message to this client, which never says hello on piped input, arrives
/// as a system message; piped `/msg` is not a command (the reference's rules).
fn direct_message_to_a_client_that_never_opted_in(format: WireFormat) {
    let server = TestServer::start();
    let mut client = ChatClient::connect(server.addr, format, &[]);
    let mut peer = Peer::connect(server.addr, format);
    client.type_line("/name carol");
    client.expect("[시스템 메시지] 이름이 carol 으로 변경되었습니다.");
    client.type_line("/msg bob hi");
    client.expect("Invalid command: /msg");

    peer.send(Request::Hello {
        features: vec!["direct".into()],
    });
    assert!(
        matches!(peer.recv(), Response::Hello { features, .. } if features == ["direct"]),
        "the server offers direct"
    );
    peer.name("bob");
    peer.send(Request::Direct {
        name: "carol".into(),
        text: "안녕  😀 \\ok".into(),
    });
    client.expect("[시스템 메시지] [bob] 님의 귓속말: 안녕  😀 \\ok");
    assert!(matches!(
        peer.recv(),
        Response::Direct { member, outgoing: true, .. } if member == "carol"
    ));
    let (rest, status) = client.finish();
    assert_eq!(rest, [EOF_LINE]);
    assert!(status.success(), "{status:?}");
}

in_both_formats!(
    direct_message_to_a_client_that_never_opted_in,
    help_and_local_errors,
    chatting_with_a_peer,
    piped_script_keeps_every_reply,
    shutdown_closes_the_socket,
);

/// `--verbosity=1/2` in JSON: the exact frame lines, both directions.
#[test]
fn json_verbosity_shows_frames_and_socket_counts() {
    let server = TestServer::start();
    let mut client = ChatClient::connect(server.addr, WireFormat::Json, &["--verbosity=2"]);
    client.type_line("/name 철수");
    let sent = r#"{"type": "CSName", "name": "\ucca0\uc218"}"#;
    client.expect(&format!(
        "[C->S:총길이={}바이트] 0x{:04x}(메시지크기) + {sent}",
        sent.len() + 2,
        sent.len()
    ));
    client.expect(&format!(
        "  - send() 시도 #1: {}바이트 전송 완료",
        sent.len() + 2
    ));
    let mut reply = Vec::new();
    encode_response(
        WireFormat::Json,
        &Response::system("이름이 철수 으로 변경되었습니다."),
        &mut reply,
    )
    .unwrap();
    let payload = std::str::from_utf8(&reply[2..]).unwrap();
    client.expect(&format!("  - recv(): {}바이트 읽음", reply.len()));
    client.expect(&format!(
        "[S->C:총길이={}바이트] 0x{:04x}(메시지크기) + {payload}",
        reply.len(),
        reply.len() - 2
    ));
    client.expect("[시스템 메시지] 이름이 철수 으로 변경되었습니다.");
    let (rest, status) = client.finish();
    assert_eq!(rest, [EOF_LINE]);
    assert!(status.success());
}

/// `--verbosity=1` in protobuf: `Type` and body frames in Python's text format.
#[test]
fn protobuf_verbosity_shows_text_format() {
    let server = TestServer::start();
    let mut client = ChatClient::connect(server.addr, WireFormat::Protobuf, &["--verbosity=1"]);
    client.type_line("/create 방");
    client.expect_lines(&[
        "[C->S:총길이=4바이트] 0x0002(메시지크기) + type: CS_CREATE_ROOM",
        r#"[C->S:총길이=7바이트] 0x0005(메시지크기) + title: "\353\260\251""#,
        "[S->C:총길이=4바이트] 0x0002(메시지크기) + type: SC_SYSTEM_MESSAGE",
    ]);
    let text = "방제[방] 방에 입장했습니다.";
    let octal: String = text
        .bytes()
        .map(|b| {
            if b.is_ascii() {
                char::from(b).to_string()
            } else {
                format!("\\{b:03o}")
            }
        })
        .collect();
    let body_len = text.len() + 2; // tag + one-byte length
    client.expect(&format!(
        "[S->C:총길이={}바이트] 0x{body_len:04x}(메시지크기) + text: \"{octal}\"",
        body_len + 2
    ));
    client.expect(&format!("[시스템 메시지] {text}"));
    client.type_line("/rooms");
    client.expect_lines(&[
        "[C->S:총길이=4바이트] 0x0002(메시지크기) + type: CS_ROOMS",
        "[C->S:총길이=2바이트] 0x0000(메시지크기) ",
        "[S->C:총길이=4바이트] 0x0002(메시지크기) + type: SC_ROOMS_RESULT",
    ]);
    let line = client.next_line();
    assert!(
        line.starts_with("[S->C:총길이=") && line.ends_with("(메시지크기) + rooms {"),
        "{line}"
    );
    client.expect_lines(&["  roomId: 1", r#"  title: "\353\260\251""#]);
    let member = client.next_line();
    assert!(
        member.starts_with(r#"  members: "(127.0.0.1, "#) && member.ends_with(r#")""#),
        "{member}"
    );
    client.expect("}");
    client.expect_lines(&["---", "[방목록]", "방ID | 방제목 | 멤버들"]);
    let row = client.next_line();
    assert!(row.starts_with("1 | 방 | (127.0.0.1, "), "{row}");
    client.expect("---");
    let (rest, status) = client.finish();
    assert_eq!(rest, [EOF_LINE]);
    assert!(status.success());
}
