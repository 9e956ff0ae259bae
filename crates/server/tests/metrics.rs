//! The `/metrics` endpoint, scraped with a plain std `TcpStream` HTTP GET: after a
//! scripted session of one JSON and one protobuf client, every counter must have moved
//! by exactly what the session did — connections accepted and open, messages in by
//! type and format, messages out by type and format, bytes in (everything the clients
//! wrote) and out (the encoded size of everything they received), protocol errors
//! after a bad message, and the rooms gauge up and down. A web (WebSocket) client's
//! messages count under `transport="web"`, a TCP client's under `transport="tcp"`.
//! Other paths answer 404.
//!
//! Counters are folded in at the end of a worker's turn, possibly just after the
//! replies left, so every check polls the page until it matches (bounded).

mod support;

use chat_proto::codec::encode_response;
use chat_proto::{Request, Response, WireFormat};
use support::*;

/// A client that remembers the bytes it sent and the messages it received.
struct Counted {
    client: Client,
    sent: usize,
    received: Vec<Response<'static>>,
}

impl Counted {
    fn new(client: Client) -> Self {
        Counted {
            client,
            sent: 0,
            received: Vec::new(),
        }
    }

    fn send(&mut self, request: &Request) {
        self.send_raw(&encode(self.client.format(), request));
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.sent += bytes.len();
        self.client.send_raw(bytes);
    }

    fn recv(&mut self) -> Response<'static> {
        let response = self.client.recv();
        self.received.push(response.clone());
        response
    }

    #[track_caller]
    fn expect_system(&mut self, text: &str) {
        assert_eq!(self.recv(), Response::system(text.to_owned()));
    }

    /// Bytes the server queued for this client: what it received, re-encoded.
    fn received_bytes(&self) -> usize {
        let mut out = Vec::new();
        for response in &self.received {
            encode_response(self.client.format(), response, &mut out).unwrap();
        }
        out.len()
    }
}

/// The series of `name` for plain TCP clients of `format`.
fn series(name: &str, kind: &str, format: WireFormat) -> String {
    series_via(name, kind, format, "tcp")
}

/// The series of `name` for clients of `format` connected by `transport`.
fn series_via(name: &str, kind: &str, format: WireFormat, transport: &str) -> String {
    format!(
        "{name}{{type=\"{kind}\",format=\"{}\",transport=\"{transport}\"}}",
        format.name()
    )
}

#[test]
fn counters_move_by_exactly_what_clients_did() {
    let server = TestServer::with_config(config_with_metrics(2));
    let m = server.metrics_addr();
    let page = scrape(m);
    for zero in [
        "chat_connections",
        "chat_connections_accepted_total",
        "chat_rooms",
        "chat_bytes_in_total",
        "chat_bytes_out_total",
        "chat_protocol_errors_total",
    ] {
        assert_eq!(metric(&page, zero), 0, "{zero} at start");
    }

    let mut j = Counted::new(server.client(WireFormat::Json));
    let mut p = Counted::new(server.client(WireFormat::Protobuf));
    metric_eventually(m, "chat_connections_accepted_total", 2);
    metric_eventually(m, "chat_connections", 2);

    j.send(&Request::Name { name: "jay".into() });
    j.expect_system("이름이 jay 으로 변경되었습니다.");
    p.send(&Request::Name { name: "pea".into() });
    p.expect_system("이름이 pea 으로 변경되었습니다.");
    j.send(&Request::CreateRoom { title: "m".into() });
    j.expect_system("방제[m] 방에 입장했습니다.");
    metric_eventually(m, "chat_rooms", 1);
    p.send(&Request::JoinRoom { room_id: 1 });
    p.expect_system("방제[m] 방에 입장했습니다.");
    j.expect_system(&entered("pea"));
    p.send(&Request::Chat {
        text: "hello".into(),
    });
    assert!(matches!(j.recv(), Response::Chat { .. }));
    j.send(&Request::Chat { text: "hi".into() });
    assert!(matches!(p.recv(), Response::Chat { .. }));
    j.send(&Request::Rooms);
    assert!(matches!(j.recv(), Response::RoomsResult { .. }));
    p.send(&Request::Rooms);
    assert!(matches!(p.recv(), Response::RoomsResult { .. }));
    // Not JSON: an error reply, and the connection stays usable.
    j.send_raw(&frame(b"{not json"));
    assert!(matches!(j.recv(), Response::SystemMessage { .. }));
    metric_eventually(m, "chat_protocol_errors_total", 1);

    let (json, protobuf) = (WireFormat::Json, WireFormat::Protobuf);
    let messages_in = [
        ("CSName", json, 1),
        ("CSName", protobuf, 1),
        ("CSCreateRoom", json, 1),
        ("CSCreateRoom", protobuf, 0),
        ("CSJoinRoom", json, 0),
        ("CSJoinRoom", protobuf, 1),
        ("CSChat", json, 1),
        ("CSChat", protobuf, 1),
        ("CSRooms", json, 1),
        ("CSRooms", protobuf, 1),
        ("CSLeaveRoom", json, 0),
        ("CSShutdown", json, 0),
    ];
    for (kind, format, want) in messages_in {
        metric_eventually(m, &series("chat_messages_in_total", kind, format), want);
    }
    let messages_out = [
        // jay: its rename, create, pea's entry, the error.
        ("SCSystemMessage", json, 4),
        // pea: its rename, its join.
        ("SCSystemMessage", protobuf, 2),
        ("SCChat", json, 1),
        ("SCChat", protobuf, 1),
        ("SCRoomsResult", json, 1),
        ("SCRoomsResult", protobuf, 1),
    ];
    for (kind, format, want) in messages_out {
        metric_eventually(m, &series("chat_messages_out_total", kind, format), want);
    }
    metric_eventually(m, "chat_bytes_in_total", (j.sent + p.sent) as u64);
    metric_eventually(
        m,
        "chat_bytes_out_total",
        (j.received_bytes() + p.received_bytes()) as u64,
    );

    // The rooms gauge follows the last member out.
    p.send(&Request::LeaveRoom);
    p.expect_system("방제[m] 대화 방에서 퇴장했습니다.");
    j.expect_system(&left("pea"));
    metric_eventually(m, "chat_rooms", 1);
    j.send(&Request::LeaveRoom);
    j.expect_system("방제[m] 대화 방에서 퇴장했습니다.");
    metric_eventually(m, "chat_rooms", 0);
    metric_eventually(
        m,
        &series("chat_messages_in_total", "CSLeaveRoom", protobuf),
        1,
    );

    j.client.disconnect();
    p.client.disconnect();
    metric_eventually(m, "chat_connections", 0);
    metric_eventually(m, "chat_connections_accepted_total", 2);
    let page = scrape(m);
    assert_eq!(metric(&page, "chat_protocol_errors_total"), 1);
    assert_eq!(metric(&page, "chat_slow_consumer_disconnects_total"), 0);
    assert_eq!(metric(&page, "chat_error_disconnects_total"), 0);
}

/// Messages are counted by how the client is connected: a web client's (JSON over a
/// WebSocket) under `transport="web"`, a TCP client's under `transport="tcp"`, each
/// beside zeros for the other; the names and the `type` and `format` labels are the
/// same as ever. A web client never speaks protobuf, so there is no such series.
#[test]
fn web_and_tcp_clients_are_counted_under_their_transport() {
    use tungstenite::client::IntoClientRequest;
    let server = TestServer::with_config(chat_server::ServerConfig {
        web: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
        ..config_with_metrics(2)
    });
    let m = server.metrics_addr();
    let web = server.web.expect("a web port");

    let stream = std::net::TcpStream::connect(web).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut request = format!("ws://{web}/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Origin", format!("http://{web}").parse().unwrap());
    let (mut ws, _) = tungstenite::client::client(request, stream).expect("the WebSocket");
    let mut tcp = server.client(WireFormat::Json);

    ws.send(tungstenite::Message::text(
        r#"{"type":"CSCreateRoom","title":"w"}"#,
    ))
    .unwrap();
    let reply: serde_json::Value =
        serde_json::from_str(ws.read().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(
        reply,
        serde_json::json!({"type": "SCSystemMessage", "text": "방제[w] 방에 입장했습니다."})
    );
    tcp.send(&Request::Rooms);
    assert!(matches!(tcp.recv(), Response::RoomsResult { .. }));
    tcp.send(&Request::Rooms);
    assert!(matches!(tcp.recv(), Response::RoomsResult { .. }));

    let json = WireFormat::Json;
    let (i, o) = ("chat_messages_in_total", "chat_messages_out_total");
    for (series, want) in [
        (series_via(i, "CSCreateRoom", json, "web"), 1),
        (series_via(i, "CSCreateRoom", json, "tcp"), 0),
        (series_via(i, "CSRooms", json, "tcp"), 2),
        (series_via(i, "CSRooms", json, "web"), 0),
        (series_via(i, "CSRooms", json, "tls"), 0),
        (series_via(o, "SCSystemMessage", json, "web"), 1),
        (series_via(o, "SCSystemMessage", json, "tcp"), 0),
        (series_via(o, "SCRoomsResult", json, "tcp"), 2),
        (series_via(o, "SCRoomsResult", json, "web"), 0),
    ] {
        metric_eventually(m, &series, want);
    }
    let page = scrape(m);
    assert!(
        !page.contains(r#"format="protobuf",transport="web""#),
        "{page}"
    );
    assert_eq!(
        metric(
            &page,
            &series_via(i, "CSRooms", WireFormat::Protobuf, "tcp")
        ),
        0
    );
}

#[test]
fn other_paths_are_not_found() {
    let server = TestServer::with_config(config_with_metrics(1));
    let m = server.metrics_addr();
    for path in ["/", "/metricsx", "/metrics/extra", "/favicon.ico"] {
        let (status, body) = http_get(m, path);
        assert_eq!(status, 404, "GET {path}: {body}");
    }
    let (status, body) = http_get(m, "/metrics");
    assert_eq!(status, 200);
    assert!(body.contains("chat_connections "), "{body}");
}

/// The build and the process: `chat_build_info` with the version, and the figures
/// Prometheus client libraries export under their usual names, read from /proc/self.
#[test]
fn build_info_and_process_figures_are_served() {
    let server = TestServer::with_config(config_with_metrics(1));
    let body = scrape(server.metrics_addr());
    let line = |name: &str| -> f64 {
        let line = body
            .lines()
            .find(|l| l.starts_with(name) && !l.starts_with('#'))
            .unwrap_or_else(|| panic!("no {name} in:\n{body}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        body.lines().any(|l| l
            .starts_with(&format!("chat_build_info{{version=\"{version}\",commit=\""))
            && l.ends_with("} 1")),
        "{body}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = line("process_start_time_seconds ");
    assert!(
        started <= now && started > now - 3600.0,
        "{started} vs {now}"
    );
    assert!(line("process_uptime_seconds ") >= 0.0);
    assert!(line("process_cpu_seconds_total ") >= 0.0);
    assert!(line("process_resident_memory_bytes ") > 0.0);
    let open = line("process_open_fds ");
    // The listeners and the poll are open, at least.
    assert!(open >= 3.0, "{open}");
    assert!(line("process_max_fds ") >= open);
}

/// A scraper that trickles its request a byte at a time holds the (single) metrics
/// thread only until the per-request deadline: other scrapes are served after it, and
/// a shutdown that joins the metrics thread still completes in bounded time.
#[test]
fn a_trickling_scraper_cannot_hold_the_endpoint_or_the_shutdown() {
    use std::io::Write;
    use std::net::TcpStream;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    let server = TestServer::with_config(config_with_metrics(2));
    let addr = server.metrics_addr();
    let mut trickler = TcpStream::connect(addr).unwrap();
    trickler.write_all(b"G").unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let trickling = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            // One byte every 200 ms until the server closes on us or the test ends;
            // the pace is the point of this client, not a synchronisation.
            while !done.load(Ordering::SeqCst) && trickler.write_all(b"E").is_ok() {
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };

    // Served once the trickler's deadline (2 s) has passed.
    let started = Instant::now();
    let (status, _) = http_get(addr, "/metrics");
    assert_eq!(status, 200);
    assert!(started.elapsed() < TIMEOUT);

    let stopping = Instant::now();
    server.stop().expect("run() returns Ok");
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        stopping.elapsed()
    );
    done.store(true, Ordering::SeqCst);
    trickling.join().unwrap();
}
