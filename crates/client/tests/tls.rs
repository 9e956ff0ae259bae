//! `chat-client --tls` against the real server's TLS listener, with a certificate made
//! in the test: it chats with a plain-TCP peer when told to trust the certificate, and
//! refuses a server it cannot verify (wrong name, or not trusted) unless `--insecure`.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;

use chat_proto::{Request, WireFormat};
use chat_server::{Server, ServerConfig, ShutdownHandle, TlsAcceptor, TlsFiles};
use common::{ChatClient, Peer};

/// A server with a TLS listener and the certificate it offers; stopped on drop.
struct TlsServer {
    plain: SocketAddr,
    tls: SocketAddr,
    cert: PathBuf,
    dir: PathBuf,
    handle: ShutdownHandle,
    done: mpsc::Receiver<()>,
}

impl TlsServer {
    fn start(tag: &str) -> TlsServer {
        let dir =
            std::env::temp_dir().join(format!("chat-client-tls-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let files = TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        std::fs::write(&files.cert, made.cert.pem()).unwrap();
        std::fs::write(&files.key, made.signing_key.serialize_pem()).unwrap();
        let cert = files.cert.clone();
        let config = ServerConfig {
            tls: Some(Arc::new(TlsAcceptor::load(files).unwrap())),
            tls_bind: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            ..ServerConfig::local(2)
        };
        let server = Server::bind(config).unwrap();
        let (plain, tls) = (server.local_addr(), server.tls_addr().unwrap());
        let handle = server.shutdown_handle();
        let (tx, done) = mpsc::channel();
        thread::spawn(move || {
            let _ = server.run();
            let _ = tx.send(());
        });
        TlsServer {
            plain,
            tls,
            cert,
            dir,
            handle,
            done,
        }
    }

    fn ca_flag(&self) -> String {
        format!("--ca={}", self.cert.display())
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        let _ = self.done.recv_timeout(std::time::Duration::from_secs(10));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn chats_over_tls_with_a_plain_peer(format: WireFormat) {
    let server = TlsServer::start(&format!("chat-{}", format.name()));
    let ca = server.ca_flag();
    let mut client = ChatClient::connect(
        server.tls,
        format,
        &["--tls", &ca, "--server-name=localhost"],
    );
    client.type_line("/name 보안");
    client.expect("[시스템 메시지] 이름이 보안 으로 변경되었습니다.");
    client.type_line("/create 암호방");
    client.expect("[시스템 메시지] 방제[암호방] 방에 입장했습니다.");
    let mut peer = Peer::connect(server.plain, format);
    peer.name("plain");
    peer.send(Request::JoinRoom { room_id: 1 });
    peer.expect_system("방제[암호방] 방에 입장했습니다.");
    client.expect("[시스템 메시지] [plain] 님이 입장했습니다.");
    client.type_line("over tls");
    assert_eq!(
        peer.recv(),
        chat_proto::Response::Chat {
            member: "보안".into(),
            text: "over tls".into()
        }
    );
    peer.send(Request::Chat {
        text: "in the clear".into(),
    });
    client.expect("[plain] in the clear");
    let (_, status) = client.finish();
    assert!(status.success(), "{status:?}");
}

#[test]
fn chats_over_tls_with_a_plain_peer_json() {
    chats_over_tls_with_a_plain_peer(WireFormat::Json);
}

#[test]
fn chats_over_tls_with_a_plain_peer_protobuf() {
    chats_over_tls_with_a_plain_peer(WireFormat::Protobuf);
}

/// Runs the client against `server` with `flags` and answers its exit status and
/// standard error, typing nothing (it must stop on its own).
fn refused(server: &TlsServer, flags: &[&str]) -> (bool, String) {
    let mut client = ChatClient::spawn(server.tls, WireFormat::Json, flags);
    let (lines, status) = client.wait();
    assert!(
        !lines.iter().any(|l| l.starts_with("Connected to")),
        "connected: {lines:?}"
    );
    (status.success(), client.stderr_after_exit())
}

#[test]
fn a_server_it_cannot_verify_is_refused() {
    let server = TlsServer::start("refuse");
    let ca = server.ca_flag();
    // The right certificate, the wrong name.
    let (ok, stderr) = refused(&server, &["--tls", &ca, "--server-name=chat.example.org"]);
    assert!(!ok);
    assert!(stderr.contains("서버에 연결할 수 없음"), "{stderr}");
    assert!(stderr.contains("certificate"), "{stderr}");
    // The system's roots do not know a self-signed certificate.
    let (ok, stderr) = refused(&server, &["--tls", "--server-name=localhost"]);
    assert!(!ok);
    assert!(
        stderr.contains("certificate") || stderr.contains("root"),
        "{stderr}"
    );
}

#[test]
fn insecure_connects_to_any_certificate() {
    let server = TlsServer::start("insecure");
    let mut client = ChatClient::connect(
        server.tls,
        WireFormat::Json,
        &["--tls", "--insecure", "--server-name=chat.example.org"],
    );
    client.type_line("/rooms");
    client.expect("---");
    let (_, status) = client.finish();
    assert!(status.success(), "{status:?}");
}
