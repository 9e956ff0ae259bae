//! TLS on a connection: rustls's state machine between the socket and the session.
//!
//! rustls does no I/O of its own, like our codecs: this module hands it the ciphertext
//! the reactor reads and hands back plaintext ([`TlsSession::read`]), and gives the
//! outbound flusher a [`Write`] that encrypts what it takes and sends the records
//! ([`TlsSession::writer`]). Everything above — frames, the web's HTTP and WebSocket,
//! the chat — sees plaintext and does not know TLS is there; the chat core never does.
//!
//! * **One lock per connection.** The reactor reads and a worker (or a cluster thread)
//!   flushes, so the rustls state sits behind a mutex; both hold it only for one
//!   `read`/`write` and no blocking call (the socket is non-blocking).
//! * **Bounded.** rustls buffers at most [`SEND_BUFFER_LIMIT`] of unsent records (it
//!   takes no more plaintext past that); plaintext is only handed to it once what it
//!   buffered has been written, so the outbound queue, not rustls, is where output
//!   waits, under the outbound cap. On the way in, rustls holds at most one record
//!   (it reads more ciphertext only when the plaintext before it was taken). What it
//!   buffers on the way out is charged to the memory budget.
//! * **Handshakes** are driven by reads: whatever rustls wants to send in answer (its
//!   hello, certificate, alerts) is written at once, and a writable event finishes
//!   what the socket did not take ([`TlsSession::flush_pending`]). A handshake that
//!   stalls is cut by the reactor like a frame that stalls (`event_handler.rs`).
//! * **Bad input** — a plain-text client on the TLS port, a corrupt record — is an
//!   error rustls answers with an alert, which is sent before the error is returned;
//!   the connection then ends like any that failed.
//!
//! Certificates come from PEM files ([`TlsFiles`]) and are loaded into a
//! [`TlsAcceptor`], which SIGHUP reloads: new connections get the new pair, open ones
//! keep theirs, and a pair that fails to load leaves the old one in place.

use std::io::{self, IoSlice, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use mio::net::TcpStream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection};

use crate::budget::MemoryBudget;
use crate::pool::lock;

/// The most unsent TLS records rustls keeps for one connection.
pub(crate) const SEND_BUFFER_LIMIT: usize = 64 * 1024;

/// Where the server's certificate chain and private key are (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl TlsFiles {
    /// A rustls server configuration of these files, or why not (naming the file).
    fn load(&self) -> Result<Arc<ServerConfig>, String> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert)
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .map_err(|e| format!("cannot read certificates from {}: {e}", self.cert.display()))?;
        if certs.is_empty() {
            return Err(format!("no certificate in {}", self.cert.display()));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .map_err(|e| format!("cannot read a private key from {}: {e}", self.key.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| {
                format!(
                    "{} and {} do not make a usable pair: {e}",
                    self.cert.display(),
                    self.key.display()
                )
            })?;
        Ok(Arc::new(config))
    }
}

/// The certificate new connections are offered; see the module doc.
#[derive(Debug)]
pub struct TlsAcceptor {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
}

impl TlsAcceptor {
    /// Loads `files`; fails (saying which file and why) if they do not make a pair.
    pub fn load(files: TlsFiles) -> Result<Self, String> {
        let config = files.load()?;
        Ok(TlsAcceptor {
            files,
            current: RwLock::new(config),
        })
    }

    /// Reads the files again: new connections get the new pair. On failure the old
    /// pair stays, and the error says why.
    pub fn reload(&self) -> Result<(), String> {
        let config = self.files.load()?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = config;
        Ok(())
    }

    /// The TLS side of a connection just accepted, charging `budget`.
    pub(crate) fn accept(&self, budget: Arc<MemoryBudget>) -> io::Result<TlsSession> {
        let config = Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let mut conn = ServerConnection::new(config).map_err(io::Error::other)?;
        conn.set_buffer_limit(Some(SEND_BUFFER_LIMIT));
        Ok(TlsSession {
            conn: Mutex::new(conn),
            budget,
            charged: AtomicUsize::new(0),
            written: AtomicU64::new(0),
        })
    }
}

/// One connection's TLS state; see the module doc.
#[derive(Debug)]
pub(crate) struct TlsSession {
    conn: Mutex<ServerConnection>,
    budget: Arc<MemoryBudget>,
    /// Charged to the budget for records rustls holds unsent (an upper bound).
    charged: AtomicUsize,
    /// Ciphertext bytes ever written to the socket.
    written: AtomicU64,
}

impl TlsSession {
    /// Reads plaintext into `buf`: what rustls already decrypted, else what the
    /// socket has, decrypted. `Ok(0)` is the end of the stream (the peer's
    /// close_notify, or the socket's end), `WouldBlock` means nothing more for now,
    /// `InvalidData` a TLS error (its alert was sent).
    pub(crate) fn read(&self, socket: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        let mut conn = lock(&self.conn);
        loop {
            match conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The peer closed the TCP stream without a close_notify.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            let mut from: &TcpStream = socket;
            if conn.read_tls(&mut from)? == 0 {
                return Ok(0);
            }
            let processed = conn.process_new_packets();
            // Whatever rustls answers (handshake messages, an alert) goes out now; a
            // socket that is full takes the rest on its next writable event.
            let sent = self.send_records(&mut conn, socket);
            if let Err(e) = processed {
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            if let Err(e) = sent
                && e.kind() != io::ErrorKind::WouldBlock
            {
                return Err(e);
            }
        }
    }

    /// A writer that encrypts what the outbound flusher hands it, for `socket`.
    pub(crate) fn writer<'a>(&'a self, socket: &'a TcpStream) -> TlsWriter<'a> {
        TlsWriter { tls: self, socket }
    }

    /// Writes the records rustls holds. Answers whether some still wait (the socket
    /// is full); errors other than that are the socket's.
    pub(crate) fn flush_pending(&self, socket: &TcpStream) -> io::Result<bool> {
        let mut conn = lock(&self.conn);
        match self.send_records(&mut conn, socket) {
            Ok(()) => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Whether the handshake is still under way.
    pub(crate) fn is_handshaking(&self) -> bool {
        lock(&self.conn).is_handshaking()
    }

    /// Whether records wait unsent, and how many ciphertext bytes were ever written.
    pub(crate) fn progress(&self) -> (bool, u64) {
        let pending = lock(&self.conn).wants_write();
        (pending, self.written.load(Ordering::Relaxed))
    }

    /// Queues a close_notify (sent by the next flush): the peer can tell our end
    /// of the stream from a cut connection.
    pub(crate) fn close_notify(&self) {
        lock(&self.conn).send_close_notify();
    }

    /// Writes records until none waits (`Ok`) or the socket is full (`WouldBlock`),
    /// then charges the budget for what is left.
    fn send_records(&self, conn: &mut ServerConnection, socket: &TcpStream) -> io::Result<()> {
        let mut to: &TcpStream = socket;
        let mut outcome = Ok(());
        while conn.wants_write() {
            match conn.write_tls(&mut to) {
                Ok(0) => {
                    outcome = Err(io::ErrorKind::WriteZero.into());
                    break;
                }
                Ok(n) => {
                    self.written.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            }
        }
        // rustls says neither how much it holds nor takes more than the limit: charge
        // the limit while anything waits, nothing once it is all sent.
        let holds = if conn.wants_write() {
            SEND_BUFFER_LIMIT
        } else {
            0
        };
        let before = self.charged.swap(holds, Ordering::Relaxed);
        self.budget.charge(holds.saturating_sub(before));
        self.budget.release(before.saturating_sub(holds));
        outcome
    }
}

impl Drop for TlsSession {
    fn drop(&mut self) {
        self.budget.release(*self.charged.get_mut());
    }
}

/// [`TlsSession::writer`]: plaintext in, records out to the socket.
#[derive(Debug)]
pub(crate) struct TlsWriter<'a> {
    tls: &'a TlsSession,
    socket: &'a TcpStream,
}

impl Write for TlsWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    /// Takes plaintext only once rustls has sent what it held (else `WouldBlock`, as
    /// a full socket would say), so output waits in the outbound queue, not here.
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let tls = self.tls;
        let mut conn = lock(&tls.conn);
        tls.send_records(&mut conn, self.socket)?;
        let taken = conn.writer().write_vectored(bufs)?;
        match tls.send_records(&mut conn, self.socket) {
            Ok(()) => Ok(taken),
            // Taken and encrypted; the records go on the next writable event.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(taken),
            Err(e) => Err(e),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::time::Duration;

    use super::*;

    /// A self-signed pair for `localhost` in a fresh directory.
    fn pair() -> (tempdir::Dir, TlsFiles, Vec<u8>) {
        let dir = tempdir::Dir::new();
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let files = TlsFiles {
            cert: dir.path.join("cert.pem"),
            key: dir.path.join("key.pem"),
        };
        std::fs::write(&files.cert, cert.cert.pem()).unwrap();
        std::fs::write(&files.key, cert.signing_key.serialize_pem()).unwrap();
        (dir, files, cert.cert.der().to_vec())
    }

    mod tempdir {
        /// A directory removed on drop.
        pub(super) struct Dir {
            pub(super) path: std::path::PathBuf,
        }
        impl Dir {
            pub(super) fn new() -> Self {
                use std::sync::atomic::{AtomicU32, Ordering};
                static NEXT: AtomicU32 = AtomicU32::new(0);
                let path = std::env::temp_dir().join(format!(
                    "chat-tls-{}-{}",
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                ));
                std::fs::create_dir_all(&path).unwrap();
                Dir { path }
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.path);
            }
        }
    }

    fn client_config(trusted: &[u8]) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(trusted.to_vec())).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }

    /// A non-blocking accepted socket and the blocking client end.
    fn sockets() -> (TcpStream, std::net::TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        (TcpStream::from_std(server), client)
    }

    /// Reads until `want` plaintext bytes came, pumping the server side meanwhile.
    fn pump_read(tls: &TlsSession, socket: &TcpStream, want: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while got.len() < want {
            assert!(std::time::Instant::now() < deadline, "no plaintext came");
            match tls.read(socket, &mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        got
    }

    #[test]
    fn plaintext_both_ways_through_a_real_handshake() {
        let (_dir, files, der) = pair();
        let acceptor = TlsAcceptor::load(files).unwrap();
        let budget = Arc::new(MemoryBudget::new(1 << 30));
        let tls = acceptor.accept(Arc::clone(&budget)).unwrap();
        let (server, client) = sockets();
        let name = "localhost".try_into().unwrap();
        let conn = rustls::ClientConnection::new(client_config(&der), name).unwrap();
        let mut client = rustls::StreamOwned::new(conn, client);
        let writer = std::thread::spawn(move || {
            client.write_all(b"hello over tls").unwrap();
            client.flush().unwrap();
            let mut reply = [0u8; 5];
            client.read_exact(&mut reply).unwrap();
            reply
        });
        assert_eq!(pump_read(&tls, &server, 14), b"hello over tls");
        assert!(!tls.is_handshaking());
        let mut out = tls.writer(&server);
        assert_eq!(out.write(b"reply").unwrap(), 5);
        while tls.flush_pending(&server).unwrap() {
            std::thread::yield_now();
        }
        assert_eq!(&writer.join().unwrap(), b"reply");
        assert!(tls.progress().1 > 5, "ciphertext was counted");
        drop(tls);
        assert_eq!(budget.used(), 0, "nothing stays charged");
    }

    #[test]
    fn plain_text_on_the_tls_port_is_an_error_not_a_hang() {
        let (_dir, files, _) = pair();
        let acceptor = TlsAcceptor::load(files).unwrap();
        let tls = acceptor
            .accept(Arc::new(MemoryBudget::new(1 << 30)))
            .unwrap();
        let (server, mut client) = sockets();
        client
            .write_all(b"\x00\x1b{\"type\": \"CSRooms\"}")
            .unwrap();
        let mut buf = [0u8; 64];
        let error = loop {
            match tls.read(&server, &mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                other => break other,
            }
        };
        assert_eq!(error.map_err(|e| e.kind()), Err(io::ErrorKind::InvalidData));
        // The alert went out before the error: the client reads a TLS record header.
        let mut alert = [0u8; 1];
        client.read_exact(&mut alert).unwrap();
        assert_eq!(alert[0], 0x15, "an alert record");
    }

    #[test]
    fn a_bad_pair_says_which_file_and_a_failed_reload_keeps_the_old() {
        let (dir, files, _) = pair();
        let acceptor = TlsAcceptor::load(files.clone()).unwrap();
        std::fs::write(&files.cert, "not a certificate").unwrap();
        let error = acceptor.reload().unwrap_err();
        assert!(error.contains("cert.pem"), "{error}");
        // Connections are still accepted with the old pair.
        assert!(acceptor.accept(Arc::new(MemoryBudget::new(1))).is_ok());
        let missing = TlsFiles {
            cert: dir.path.join("nope.pem"),
            key: files.key.clone(),
        };
        let error = TlsAcceptor::load(missing).unwrap_err();
        assert!(error.contains("nope.pem"), "{error}");
    }
}
