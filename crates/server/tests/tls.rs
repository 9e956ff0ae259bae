//! TLS against the real binary, with certificates made in the test (rcgen): the chat
//! protocol over `--tls-port` in both formats and beside plain clients, a SIGHUP that
//! swaps the certificate for new connections while an open one keeps chatting,
//! plain text on the TLS port, a handshake that never comes, and the web port over
//! https. A rustls client stands for the user; `chat-client --tls` has its own tests
//! in `crates/client/tests`.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_proto::frame::FrameBuf;
use chat_proto::{Request, Response, ResponseDecoder, WireFormat};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use support::{BinaryServer, TIMEOUT, entered, room};

/// A directory with a self-signed pair for `names`, removed on drop.
struct Pair {
    dir: PathBuf,
    /// The certificate, DER, for a client to trust.
    der: Vec<u8>,
}

impl Pair {
    fn new(tag: &str, names: &[&str]) -> Pair {
        let dir = std::env::temp_dir().join(format!("chat-tls-test-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let pair = Pair {
            dir,
            der: Vec::new(),
        };
        pair.write(names)
    }

    /// Makes a new pair for `names` in the same files.
    fn write(mut self, names: &[&str]) -> Pair {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let made = rcgen::generate_simple_self_signed(names).expect("a certificate");
        std::fs::write(self.cert(), made.cert.pem()).expect("write cert");
        std::fs::write(self.key(), made.signing_key.serialize_pem()).expect("write key");
        self.der = made.cert.der().to_vec();
        self
    }

    fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    fn flags(&self) -> [String; 2] {
        [
            format!("--tls-cert={}", self.cert().display()),
            format!("--tls-key={}", self.key().display()),
        ]
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn trusting(der: &[u8]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(der.to_vec()))
        .expect("a usable certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// The server's line `chat over TLS on ADDR` → ADDR (on loopback).
fn tls_addr(server: &BinaryServer) -> SocketAddr {
    let line = server.log_line("chat over TLS on ");
    let rest = &line[line.find("chat over TLS on ").unwrap() + "chat over TLS on ".len()..];
    let addr: SocketAddr = rest.split_whitespace().next().unwrap().parse().unwrap();
    SocketAddr::from(([127, 0, 0, 1], addr.port()))
}

/// A chat client over TLS.
struct TlsClient {
    stream: StreamOwned<ClientConnection, TcpStream>,
    format: WireFormat,
    inbox: FrameBuf,
    decoder: ResponseDecoder,
}

impl TlsClient {
    /// Connects and completes the handshake, or answers rustls's reason.
    fn connect(addr: SocketAddr, trust: &[u8], format: WireFormat) -> Result<Self, String> {
        let socket = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        socket.set_read_timeout(Some(TIMEOUT)).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let conn = ClientConnection::new(trusting(trust), name).map_err(|e| e.to_string())?;
        let mut stream = StreamOwned::new(conn, socket);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| e.to_string())?;
        }
        Ok(TlsClient {
            stream,
            format,
            inbox: FrameBuf::new(),
            decoder: ResponseDecoder::new(format),
        })
    }

    fn send(&mut self, request: &Request) {
        let bytes = support::encode(self.format, request);
        self.stream.write_all(&bytes).expect("send over TLS");
        self.stream.flush().expect("flush TLS");
    }

    fn recv(&mut self) -> Response<'static> {
        loop {
            while let Some(frame) = self.inbox.next_frame() {
                if let Some(decoded) = self.decoder.feed(frame) {
                    return decoded.expect("a valid message").into_owned();
                }
            }
            let n = self
                .inbox
                .read_from(&mut self.stream)
                .expect("read over TLS");
            assert!(n > 0, "the server closed the TLS connection");
        }
    }

    fn expect_system(&mut self, text: &str) {
        assert_eq!(self.recv(), Response::system(text.to_owned()));
    }
}

#[test]
fn the_tls_port_speaks_both_formats_beside_plain_clients() {
    let pair = Pair::new("formats", &["localhost"]);
    let [cert, key] = pair.flags();
    let server = BinaryServer::start(&[&cert, &key, "--tls-port=0"]);
    let addr = tls_addr(&server);
    let mut json = TlsClient::connect(addr, &pair.der, WireFormat::Json).unwrap();
    let mut proto = TlsClient::connect(addr, &pair.der, WireFormat::Protobuf).unwrap();
    let mut plain = server.client(WireFormat::Json);

    json.send(&Request::Name {
        name: "secure".into(),
    });
    json.expect_system("이름이 secure 으로 변경되었습니다.");
    json.send(&Request::CreateRoom {
        title: "tls".into(),
    });
    json.expect_system("방제[tls] 방에 입장했습니다.");
    proto.send(&Request::Name {
        name: "proto".into(),
    });
    proto.expect_system("이름이 proto 으로 변경되었습니다.");
    proto.send(&Request::JoinRoom { room_id: 1 });
    proto.expect_system("방제[tls] 방에 입장했습니다.");
    json.expect_system(&entered("proto"));
    plain.set_name("plain");
    plain.join(1, "tls");
    json.expect_system(&entered("plain"));
    proto.expect_system(&entered("plain"));

    plain.chat("in the clear");
    let chat = Response::Chat {
        member: "plain".into(),
        text: "in the clear".into(),
    };
    assert_eq!(json.recv(), chat);
    assert_eq!(proto.recv(), chat);
    json.send(&Request::Chat {
        text: "encrypted 암호".into(),
    });
    plain.expect_chat("secure", "encrypted 암호");
    assert_eq!(
        proto.recv(),
        Response::Chat {
            member: "secure".into(),
            text: "encrypted 암호".into()
        }
    );
    proto.send(&Request::Rooms);
    assert_eq!(
        proto.recv(),
        Response::RoomsResult {
            rooms: vec![room(1, "tls", &["secure", "proto", "plain"])]
        }
    );
}

#[test]
fn sighup_swaps_the_certificate_for_new_connections_and_open_ones_keep_chatting() {
    let pair = Pair::new("reload", &["localhost"]);
    let old = pair.der.clone();
    let [cert, key] = pair.flags();
    let server = BinaryServer::start(&[&cert, &key, "--tls-port=0"]);
    let addr = tls_addr(&server);
    let mut before = TlsClient::connect(addr, &old, WireFormat::Json).unwrap();
    before.send(&Request::CreateRoom { title: "r".into() });
    before.expect_system("방제[r] 방에 입장했습니다.");

    let pair = pair.write(&["localhost"]);
    assert_ne!(pair.der, old, "a new certificate");
    // SAFETY: kill(2) on a child we spawned and still own.
    assert_eq!(unsafe { libc::kill(server.pid(), libc::SIGHUP) }, 0);
    server.log_line("TLS certificate and key reloaded");

    let error = TlsClient::connect(addr, &old, WireFormat::Json)
        .err()
        .expect("a new connection is offered the new certificate");
    assert!(error.contains("certificate"), "{error}");
    let mut after = TlsClient::connect(addr, &pair.der, WireFormat::Json).unwrap();
    after.send(&Request::JoinRoom { room_id: 1 });
    after.expect_system("방제[r] 방에 입장했습니다.");
    before.expect_system(&entered(&format!(
        "(127.0.0.1, {})",
        after.stream.sock.local_addr().unwrap().port()
    )));
    after.send(&Request::Chat { text: "hi".into() });
    assert!(matches!(before.recv(), Response::Chat { text, .. } if text == "hi"));

    // A reload that fails keeps the pair in use, and says why.
    std::fs::write(pair.cert(), "garbage").unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(server.pid(), libc::SIGHUP) }, 0);
    let warning = server.log_line("TLS reload failed");
    assert!(warning.contains("cert.pem"), "{warning}");
    TlsClient::connect(addr, &pair.der, WireFormat::Json).expect("the last good pair");
}

/// Reads until the server closes; answers what came.
fn read_to_close(mut socket: TcpStream) -> Vec<u8> {
    socket.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match socket.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("the server kept the connection open: {e}"),
        }
    }
}

#[test]
fn plain_text_on_the_tls_port_gets_an_alert_and_the_close() {
    let pair = Pair::new("plain", &["localhost"]);
    let [cert, key] = pair.flags();
    let server = BinaryServer::start(&[&cert, &key, "--tls-port=0"]);
    let mut socket = TcpStream::connect(tls_addr(&server)).unwrap();
    socket
        .write_all(&support::encode(WireFormat::Json, &Request::Rooms))
        .unwrap();
    let got = read_to_close(socket);
    assert_eq!(got.first(), Some(&0x15), "a TLS alert record: {got:?}");
    // The plain port is unaffected.
    let mut plain = server.client(WireFormat::Json);
    assert_eq!(plain.rooms(), vec![]);
}

#[test]
fn a_handshake_that_never_comes_is_cut_at_the_frame_timeout() {
    let pair = Pair::new("stall", &["localhost"]);
    let [cert, key] = pair.flags();
    let server = BinaryServer::start(&[&cert, &key, "--tls-port=0", "--frame-timeout=1"]);
    let started = Instant::now();
    let socket = TcpStream::connect(tls_addr(&server)).unwrap();
    // Half a ClientHello's record header, then silence.
    (&socket).write_all(&[0x16, 0x03, 0x01]).unwrap();
    read_to_close(socket);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "cut after {took:?}"
    );
}

#[test]
fn a_bad_certificate_file_stops_the_server_at_start_naming_it() {
    let dir = std::env::temp_dir().join(format!("chat-tls-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("cert.pem");
    std::fs::write(&cert, "not a certificate").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .arg("--port=0")
        .arg(format!("--tls-cert={}", cert.display()))
        .arg(format!(
            "--tls-key={}",
            Path::new(&dir).join("key.pem").display()
        ))
        .arg("--tls-port=0")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cert.pem"), "{stderr}");
}

#[test]
fn cert_writes_a_pair_the_server_can_use() {
    let dir = std::env::temp_dir().join(format!("chat-tls-cert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .args([
                "cert",
                "--self-signed",
                "localhost",
                "--self-signed",
                "127.0.0.1",
            ])
            .arg(format!("--out-dir={}", dir.display()))
            .output()
            .unwrap()
    };
    let out = run();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("--tls-cert="), "{said}");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir.join("key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the key is its owner's alone");
    let again = run();
    assert!(!again.status.success(), "no silent overwrite");
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));

    let cert = format!("--tls-cert={}", dir.join("cert.pem").display());
    let key = format!("--tls-key={}", dir.join("key.pem").display());
    let server = BinaryServer::start(&[&cert, &key, "--tls-port=0"]);
    let pem = std::fs::read(dir.join("cert.pem")).unwrap();
    let der = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
        .next()
        .unwrap()
        .unwrap();
    let mut client = TlsClient::connect(tls_addr(&server), &der, WireFormat::Json).unwrap();
    client.send(&Request::Rooms);
    assert!(matches!(client.recv(), Response::RoomsResult { .. }));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
