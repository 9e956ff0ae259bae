//! The reverse-proxy recipe of the README ("TLS elsewhere: a reverse proxy"), tested
//! with a real nginx in front of the web port: nginx terminates TLS (a certificate
//! made in the test) and passes the page and the WebSocket to the server's plain web
//! port; a browser-like client over `wss://` chats with a plain TCP client.
//!
//! Needs `nginx` (Debian's `nginx-light`, which `.ci/run` installs). Without it the
//! test says loudly that it skipped; under `CI=true` it fails.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_proto::WireFormat;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use support::{BinaryServer, TIMEOUT, entered};
use tungstenite::Message;
use tungstenite::client::IntoClientRequest;

const NGINX: &str = "/usr/sbin/nginx";

/// The recipe, as the README gives it (paths and ports filled in).
fn recipe(dir: &Path, listen: u16, web: SocketAddr) -> String {
    let d = dir.display();
    format!(
        r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{}}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{listen} ssl;
        server_name localhost;
        ssl_certificate {d}/cert.pem;
        ssl_certificate_key {d}/key.pem;
        location / {{
            proxy_pass http://{web};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_read_timeout 1h;
        }}
    }}
}}
"#
    )
}

/// nginx running the recipe, killed on drop.
struct Nginx {
    child: Child,
    dir: PathBuf,
    port: u16,
    der: Vec<u8>,
}

impl Nginx {
    fn start(web: SocketAddr) -> Option<Nginx> {
        if !Path::new(NGINX).exists() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but nginx is not installed: .ci/run installs it"
            );
            eprintln!(
                "\n*** SKIPPED: no nginx on this machine (apt-get install nginx-light) ***\n"
            );
            return None;
        }
        // One directory per nginx: the tests run in parallel.
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let nth = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("chat-proxy-test-{}-{nth}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        std::fs::write(dir.join("cert.pem"), made.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), made.signing_key.serialize_pem()).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        std::fs::write(dir.join("nginx.conf"), recipe(&dir, port, web)).unwrap();
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let mut nginx = Nginx {
            child,
            dir,
            port,
            der: made.cert.der().to_vec(),
        };
        let deadline = Instant::now() + TIMEOUT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                let log = std::fs::read_to_string(nginx.dir.join("error.log")).unwrap_or_default();
                panic!("nginx exited ({status}):\n{log}");
            }
            assert!(Instant::now() < deadline, "nginx did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(nginx)
    }

    /// A TLS connection to nginx, trusting the test's certificate.
    fn connect(&self) -> StreamOwned<ClientConnection, TcpStream> {
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from(self.der.clone())).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let socket = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        socket.set_read_timeout(Some(TIMEOUT)).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let conn = ClientConnection::new(Arc::new(config), name).unwrap();
        StreamOwned::new(conn, socket)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The web port of `server`, from its log line `web client on http://ADDR/`.
fn web_addr(server: &BinaryServer) -> SocketAddr {
    let line = server.log_line("web client on http://");
    let rest = &line[line.find("http://").unwrap() + "http://".len()..];
    rest.split('/').next().unwrap().parse().unwrap()
}

#[test]
fn nginx_in_front_serves_the_page_and_the_websocket_over_tls() {
    let server = BinaryServer::start(&["--web=127.0.0.1:0"]);
    let Some(nginx) = Nginx::start(web_addr(&server)) else {
        return;
    };

    // The page, over https through nginx.
    let mut stream = nginx.connect();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut page = Vec::new();
    let _ = stream.read_to_end(&mut page);
    let page = String::from_utf8_lossy(&page);
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("<html"), "{page}");

    // The WebSocket, over wss through nginx, as the page opens it.
    let mut request = format!("wss://localhost:{}/ws", nginx.port)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Origin",
        format!("https://localhost:{}", nginx.port).parse().unwrap(),
    );
    let (mut ws, _) = tungstenite::client::client(request, nginx.connect())
        .map_err(|e| format!("{e:?}"))
        .expect("the upgrade through nginx");
    let recv = |ws: &mut tungstenite::WebSocket<_>| loop {
        match ws.read().expect("a message through nginx") {
            Message::Text(text) => {
                return serde_json::from_str::<serde_json::Value>(text.as_str()).unwrap();
            }
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    ws.send(Message::text(r#"{"type": "CSName", "name": "proxied"}"#))
        .unwrap();
    assert_eq!(recv(&mut ws)["text"], "이름이 proxied 으로 변경되었습니다.");
    ws.send(Message::text(
        r#"{"type": "CSCreateRoom", "title": "behind nginx"}"#,
    ))
    .unwrap();
    assert_eq!(
        recv(&mut ws)["text"],
        "방제[behind nginx] 방에 입장했습니다."
    );
    let mut tcp = server.client(WireFormat::Json);
    tcp.set_name("direct");
    tcp.join(1, "behind nginx");
    assert_eq!(recv(&mut ws)["text"], entered("direct"));
    ws.send(Message::text(
        r#"{"type": "CSChat", "text": "hello through the proxy"}"#,
    ))
    .unwrap();
    tcp.expect_chat("proxied", "hello through the proxy");
    tcp.chat("and back");
    let chat = recv(&mut ws);
    assert_eq!(chat["member"], "direct");
    assert_eq!(chat["text"], "and back");
}

/// Opens the WebSocket through nginx, the request carrying `X-Forwarded-For:
/// claimed` as a client behind other proxies (or a liar) would send it.
fn open_through(
    nginx: &Nginx,
    claimed: &str,
) -> Result<tungstenite::WebSocket<StreamOwned<ClientConnection, TcpStream>>, tungstenite::Error> {
    let mut request = format!("wss://localhost:{}/ws", nginx.port)
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    headers.insert(
        "Origin",
        format!("https://localhost:{}", nginx.port).parse().unwrap(),
    );
    headers.insert("X-Forwarded-For", claimed.parse().unwrap());
    match tungstenite::client::client(request, nginx.connect()) {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::HandshakeError::Failure(e)) => Err(e),
        Err(tungstenite::HandshakeError::Interrupted(_)) => panic!("a blocking socket"),
    }
}

#[test]
fn a_trusted_proxy_names_the_client_for_the_logs_and_the_per_address_limit() {
    // nginx appends the address it saw (127.0.0.1) to what the client sent: the
    // server trusts that last entry's sender, so the entry before it is the client.
    let server = BinaryServer::start(&[
        "--web=127.0.0.1:0",
        "--web-trusted-proxy=127.0.0.1",
        "--max-connections-per-ip=1",
    ]);
    let Some(nginx) = Nginx::start(web_addr(&server)) else {
        return;
    };
    let _first = open_through(&nginx, "203.0.113.7").expect("the first client");
    let line = server.log_line("web client behind a trusted proxy");
    assert!(line.contains("client=203.0.113.7"), "{line}");
    match open_through(&nginx, "203.0.113.7") {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            let body = response.body().as_deref().unwrap_or_default();
            assert_eq!(body, b"too many connections from your address\n");
        }
        Err(other) => panic!("the second connection from 203.0.113.7 failed otherwise: {other:?}"),
        Ok(_) => panic!("a second connection from 203.0.113.7 was served with a limit of 1"),
    }
    // Another client behind the same proxy is served: the proxy is not limited.
    let _other = open_through(&nginx, "203.0.113.8").expect("another address");
}
