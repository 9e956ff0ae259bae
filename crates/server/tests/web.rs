//! The web side (`--web`): the page over HTTP and the chat over WebSocket, against the
//! real server on `127.0.0.1:0`, with TCP clients of both formats in the same rooms.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use chat_proto::WireFormat;
use chat_server::ServerConfig;
use support::{TIMEOUT, TestServer, entered, frame, left, room};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket, client::IntoClientRequest};

/// What a binary message is answered with.
const BINARY_REFUSED: &str =
    "잘못된 메시지입니다: 바이너리 메시지는 받지 않습니다. JSON 텍스트 메시지로 보내 주세요.";

fn server() -> TestServer {
    TestServer::with_config(ServerConfig {
        web: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..ServerConfig::local(4)
    })
}

/// A raw HTTP exchange: the whole response (the server closes after it).
fn http(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// A web client, as a browser on the page's own origin connects.
struct Web {
    ws: WebSocket<TcpStream>,
    /// `(127.0.0.1, PORT)`: the name the server gives it.
    default_name: String,
}

impl Web {
    fn connect(addr: SocketAddr) -> Web {
        Self::connect_from(addr, Some(&format!("http://{addr}"))).expect("the page's own origin")
    }

    fn connect_from(addr: SocketAddr, origin: Option<&str>) -> Result<Web, tungstenite::Error> {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let local = stream.local_addr().unwrap();
        let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("Origin", origin.parse().unwrap());
        }
        let (ws, _) = tungstenite::client::client(request, stream).map_err(|e| match e {
            tungstenite::HandshakeError::Failure(e) => e,
            tungstenite::HandshakeError::Interrupted(_) => panic!("blocking handshake interrupted"),
        })?;
        Ok(Web {
            ws,
            default_name: format!("({}, {})", local.ip(), local.port()),
        })
    }

    fn send(&mut self, json: &str) {
        self.ws.send(Message::text(json)).unwrap();
    }

    /// Sends `messages` in one write, so that the server reads them together (one
    /// inbox, one turn, as far as its share goes).
    fn send_at_once(&mut self, messages: Vec<Message>) {
        for message in messages {
            self.ws.write(message).unwrap();
        }
        self.ws.flush().unwrap();
    }

    /// The next chat message (pings and pongs skipped), as JSON.
    fn recv(&mut self) -> serde_json::Value {
        loop {
            match self.ws.read().expect("a message from the server") {
                Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    fn expect_system(&mut self, text: &str) {
        let got = self.recv();
        assert_eq!(
            got,
            serde_json::json!({"type": "SCSystemMessage", "text": text})
        );
    }

    fn expect_chat(&mut self, member: &str, text: &str) {
        let got = self.recv();
        assert_eq!(
            got,
            serde_json::json!({"type": "SCChat", "member": member, "text": text})
        );
    }

    /// `/rooms`, as a barrier: everything sent to this client before comes first.
    fn expect_silence(&mut self) {
        self.send(r#"{"type":"CSRooms"}"#);
        let got = self.recv();
        assert_eq!(
            got["type"], "SCRoomsResult",
            "expected nothing before the probe's reply, got {got}"
        );
    }
}

#[test]
fn the_page_is_served_and_everything_else_is_404() {
    let server = server();
    let web = server.web.unwrap();
    let get = |path: &str| http(web, &format!("GET {path} HTTP/1.1\r\nHost: {web}\r\n\r\n"));
    let page = get("/");
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(page.contains("Content-Type: text/html; charset=utf-8"));
    assert!(page.contains("<script src=\"/app.js\" defer></script>"));
    assert!(get("/app.js").contains("new WebSocket("));
    for path in ["/nothing", "/ws/", "/../etc/passwd"] {
        let reply = get(path);
        assert!(reply.starts_with("HTTP/1.1 404 "), "{path}: {reply}");
    }
    assert!(get("/ws").starts_with("HTTP/1.1 400 "));
    // Only for a name this server answers to (tests/web_hostile.rs has the rest).
    let foreign = http(web, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        foreign.starts_with("HTTP/1.1 421 Misdirected Request\r\n"),
        "{foreign}"
    );
}

#[test]
fn a_foreign_or_missing_origin_is_refused() {
    let server = server();
    let web = server.web.unwrap();
    for origin in [None, Some("http://evil.example"), Some("null")] {
        match Web::connect_from(web, origin) {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 403, "{origin:?}")
            }
            Err(e) => panic!("{origin:?}: {e}"),
            Ok(_) => panic!("{origin:?} was let in"),
        }
    }
    let allowed = TestServer::with_config(ServerConfig {
        web: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        web_policy: chat_server::WebPolicy {
            allowed_origins: vec!["https://chat.example.org".into()],
            ..chat_server::WebPolicy::default()
        },
        ..ServerConfig::local(4)
    });
    assert!(Web::connect_from(allowed.web.unwrap(), Some("https://chat.example.org")).is_ok());
}

#[test]
fn web_and_tcp_clients_of_both_formats_share_a_room() {
    let server = server();
    let mut browser = Web::connect(server.web.unwrap());
    let mut json = server.client(WireFormat::Json);
    let mut proto = server.client(WireFormat::Protobuf);

    browser.send(r#"{"type":"CSName","name":"웹"}"#);
    browser.expect_system("이름이 웹 으로 변경되었습니다.");
    browser.send(r#"{"type":"CSCreateRoom","title":"섞인 방"}"#);
    browser.expect_system("방제[섞인 방] 방에 입장했습니다.");
    json.join(1, "섞인 방");
    browser.expect_system(&entered(&json.default_name()));
    proto.join(1, "섞인 방");
    browser.expect_system(&entered(&proto.default_name()));
    json.expect_system(&entered(&proto.default_name()));

    browser.send(r#"{"type":"CSChat","text":"안녕 😀 <b>html</b>"}"#);
    json.expect_chat("웹", "안녕 😀 <b>html</b>");
    proto.expect_chat("웹", "안녕 😀 <b>html</b>");
    proto.chat("from protobuf");
    browser.expect_chat(&proto.default_name(), "from protobuf");
    json.expect_chat(&proto.default_name(), "from protobuf");

    browser.send(r#"{"type":"CSRooms"}"#);
    let rooms = browser.recv();
    assert_eq!(
        rooms,
        serde_json::json!({"type": "SCRoomsResult", "rooms": [
            {"roomId": 1, "title": "섞인 방", "members": ["웹", json.default_name(), proto.default_name()]}
        ]})
    );
    // Closing the page: the others see the web member leave.
    browser.ws.close(None).unwrap();
    while browser.ws.read().is_ok() {}
    json.expect_system(&left("웹"));
    proto.expect_system(&left("웹"));
    assert_eq!(
        json.rooms(),
        vec![room(
            1,
            "섞인 방",
            &[&json.default_name(), &proto.default_name()]
        )]
    );
}

#[test]
fn a_web_client_gets_the_default_name_and_the_same_validation() {
    let server = server();
    let mut browser = Web::connect(server.web.unwrap());
    browser.send(r#"{"type":"CSCreateRoom","title":"t"}"#);
    browser.expect_system("방제[t] 방에 입장했습니다.");
    let mut tcp = server.client(WireFormat::Json);
    assert_eq!(tcp.rooms(), vec![room(1, "t", &[&browser.default_name])]);
    browser.send(r#"{"type":"CSName","name":"[시스템 메시지]"}"#);
    let refusal = browser.recv();
    assert_eq!(refusal["type"], "SCSystemMessage");
    assert_ne!(
        refusal["text"],
        "이름이 [시스템 메시지] 으로 변경되었습니다."
    );
}

#[test]
fn bad_messages_get_an_explanation_and_the_connection_stays() {
    let server = server();
    let mut browser = Web::connect(server.web.unwrap());
    browser.ws.send(Message::binary(vec![0u8, 1, 2])).unwrap();
    browser.expect_system(BINARY_REFUSED);
    browser.send("not json");
    let got = browser.recv();
    assert!(
        got["text"]
            .as_str()
            .unwrap()
            .starts_with("잘못된 메시지입니다: JSON 으로 해석할 수 없습니다"),
        "{got}"
    );
    browser.send(r#"{"type":"CSNope"}"#);
    browser.expect_system("잘못된 메시지입니다: 알 수 없는 메시지 종류 CSNope 입니다.");
    browser.send("");
    assert_eq!(browser.recv()["type"], "SCSystemMessage");
    browser.expect_silence();
}

/// A binary message is refused exactly where it arrived: between the replies to the
/// text messages around it, even when all arrive in one read.
#[test]
fn a_binary_message_is_refused_between_the_messages_around_it() {
    let server = server();
    let mut browser = Web::connect(server.web.unwrap());
    browser.send_at_once(vec![
        Message::text(r#"{"type":"CSName","name":"앞"}"#),
        Message::binary(vec![1u8, 2, 3]),
        Message::text(r#"{"type":"CSName","name":"뒤"}"#),
    ]);
    browser.expect_system("이름이 앞 으로 변경되었습니다.");
    browser.expect_system(BINARY_REFUSED);
    browser.expect_system("이름이 뒤 으로 변경되었습니다.");
    // Binary first and last, two in a row, and empty ones.
    browser.send_at_once(vec![
        Message::binary(Vec::new()),
        Message::text(r#"{"type":"CSName","name":"가"}"#),
        Message::binary(vec![0u8]),
        Message::binary(vec![0u8; 300]),
        Message::text(r#"{"type":"CSName","name":"나"}"#),
        Message::binary(vec![7u8]),
    ]);
    browser.expect_system(BINARY_REFUSED);
    browser.expect_system("이름이 가 으로 변경되었습니다.");
    browser.expect_system(BINARY_REFUSED);
    browser.expect_system(BINARY_REFUSED);
    browser.expect_system("이름이 나 으로 변경되었습니다.");
    browser.expect_system(BINARY_REFUSED);
    browser.expect_silence();
}

/// More messages at once than one turn handles: the rest is given back and handled
/// later, each binary message still in its place.
#[test]
fn binary_messages_keep_their_places_across_turns() {
    let server = server();
    let mut browser = Web::connect(server.web.unwrap());
    let count = 300;
    let binary = |i: usize| i % 3 == 1 || i.is_multiple_of(7);
    browser.send_at_once(
        (0..count)
            .map(|i| {
                if binary(i) {
                    Message::binary(vec![i as u8])
                } else {
                    Message::text(format!(r#"{{"type":"CSName","name":"n{i}"}}"#))
                }
            })
            .collect(),
    );
    for i in 0..count {
        if binary(i) {
            browser.expect_system(BINARY_REFUSED);
        } else {
            browser.expect_system(&format!("이름이 n{i} 으로 변경되었습니다."));
        }
    }
    browser.expect_silence();
}

/// An empty text message is an empty frame, answered as the TCP side answers one on a
/// JSON connection.
#[test]
fn an_empty_text_message_is_answered_as_an_empty_tcp_frame() {
    let server = server();
    let mut browser = Web::connect(server.web.unwrap());
    browser.send("");
    let web = browser.recv();
    let mut tcp = server.client(WireFormat::Json);
    tcp.rooms(); // the connection's format is now JSON, as a web client's always is
    tcp.send_raw(&frame(b""));
    let text = tcp.recv_system();
    assert!(
        text.starts_with("잘못된 메시지입니다: JSON 으로 해석할 수 없습니다"),
        "{text}"
    );
    assert_eq!(
        web,
        serde_json::json!({"type": "SCSystemMessage", "text": text})
    );
    browser.expect_silence();
}

#[test]
fn ping_is_answered_and_fragments_are_joined() {
    let server = server();
    let mut browser = Web::connect(server.web.unwrap());
    browser
        .ws
        .send(Message::Ping(b"are you there".to_vec().into()))
        .unwrap();
    match browser.ws.read().unwrap() {
        Message::Pong(payload) => assert_eq!(&payload[..], b"are you there"),
        other => panic!("expected the pong, got {other:?}"),
    }
    // A fragmented text message, written frame by frame on the raw socket.
    use tungstenite::protocol::frame::{
        Frame,
        coding::{Data, OpCode},
    };
    for (i, part) in [r#"{"type":"CSName","#, r#""name":"조각"}"#]
        .iter()
        .enumerate()
    {
        let opcode = if i == 0 {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        let mut frame = Frame::message(part.as_bytes().to_vec(), opcode, i == 1);
        frame.header_mut().mask = Some([9, 8, 7, 6]);
        let mut bytes = Vec::new();
        frame.format(&mut bytes).unwrap();
        browser.ws.get_mut().write_all(&bytes).unwrap();
    }
    browser.expect_system("이름이 조각 으로 변경되었습니다.");
}

#[test]
fn an_oversized_message_is_closed_with_1009() {
    let server = server();
    let mut browser = Web::connect(server.web.unwrap());
    browser.ws.send(Message::text("x".repeat(70_000))).unwrap();
    let close = match browser.ws.read() {
        Ok(Message::Close(frame)) => frame,
        Ok(other) => panic!("expected a close frame, got {other:?}"),
        Err(e) => panic!("no close frame: {e}"),
    };
    assert_eq!(close.map(|f| f.code), Some(CloseCode::Size));
}

#[test]
fn shutdown_from_a_web_page_is_refused_by_default() {
    let server = server();
    let mut browser = Web::connect(server.web.unwrap());
    browser.send(r#"{"type":"CSShutdown"}"#);
    browser.expect_system("서버를 종료할 권한이 없습니다.");
    let mut tcp = server.client(WireFormat::Json);
    tcp.expect_silence();
}

/// A web client that stops reading is cut off at its outbound cap like a TCP one; the
/// room sees it leave, and the others keep getting everything.
#[test]
fn a_web_client_that_stops_reading_is_cut_off() {
    let server = TestServer::with_config(ServerConfig {
        web: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        outbound_cap: 256 * 1024,
        ..ServerConfig::local(4)
    });
    let mut stalled = Web::connect(server.web.unwrap());
    stalled.send(r#"{"type":"CSName","name":"stalled"}"#);
    stalled.expect_system("이름이 stalled 으로 변경되었습니다.");
    stalled.send(r#"{"type":"CSCreateRoom","title":"flood"}"#);
    stalled.expect_system("방제[flood] 방에 입장했습니다.");
    let mut sender = server.client(WireFormat::Json);
    sender.join(1, "flood");
    let mut watcher = server.client(WireFormat::Json);
    watcher.join(1, "flood");
    sender.expect_system(&entered(&watcher.default_name()));
    let big = "x".repeat(16 * 1024);
    // At most 32 MiB at the stalled client; the watcher reads every chat (a pace).
    for n in 0..2048 {
        sender.chat(&big);
        match watcher.recv() {
            chat_proto::Response::Chat { text, .. } => {
                assert_eq!(text.len(), big.len(), "chat {n}")
            }
            chat_proto::Response::SystemMessage { text } if text == left("stalled") => {
                watcher.expect_chat(&sender.default_name(), &big);
                assert_eq!(
                    watcher.rooms(),
                    vec![room(
                        1,
                        "flood",
                        &[&sender.default_name(), &watcher.default_name()]
                    )]
                );
                return;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    panic!("the stalled web client was never cut off");
}

/// A shutdown tells a web client too, as a text frame in JSON, before the end.
#[test]
fn a_web_client_is_told_of_the_shutdown() {
    let server = server();
    let mut web = Web::connect(server.web.expect("a web port"));
    // A round trip: the WebSocket is open and idle when the shutdown comes.
    web.expect_silence();
    server.stop().expect("a clean stop");
    web.expect_system("서버가 종료됩니다.");
    loop {
        match web.ws.read() {
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(other) => panic!("after the notice only the end, got {other:?}"),
        }
    }
}
