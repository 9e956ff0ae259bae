//! One client connection: its socket, its outbound buffer and its inbound framing.
//!
//! Writes never block: requests are encoded into a per-connection outbound buffer,
//! and [`Conn::flush`] writes as much as the socket takes, keeping the rest for the
//! next writable event. Many chats queued between two flushes go out in one `write`
//! (writes are coalesced).
//!
//! Reads go through one scratch buffer shared by every connection (the caller's), and
//! frames are taken straight out of it with [`chat_proto::frame::Frames`]; only the
//! tail of an incomplete frame is copied into the connection's own `partial` buffer.
//! So an idle connection holds no receive buffer at all, which matters with 10,000
//! of them. (`FrameBuf::read_from` would zero 64 KiB per read and keep a buffer per
//! connection.)
//!
//! Following mio's rules, writes go on until `WouldBlock` after a readiness event, and
//! `Interrupted` is retried. Reads go on until `WouldBlock` too, with one documented
//! shortcut (epoll(7)): on a stream socket, a read that returns less than the buffer
//! has drained the receive queue, and any data arriving later raises a new edge, so
//! the final `read` that would only say `WouldBlock` is skipped. That saves one system
//! call per event, which is most of them at 10,000 connections. When the event also
//! reported the peer's FIN (`read_closed`), reads go on until end of stream, since no
//! later event would announce it.
//!
//! A *web* connection ([`Conn::new_web`]) speaks the same JSON messages over the
//! server's WebSocket (`--web`): it queues the HTTP upgrade first, then each request
//! as one masked text frame; it reads the `101` response, then unmasked frames whose
//! payloads are JSON messages. Requests may follow the upgrade request at once (the
//! server takes bytes after the handshake as WebSocket frames).
//!
//! A *TLS* connection ([`Conn::with_tls`], `--tls`) puts a rustls `ClientConnection`
//! between the socket and all of the above (frames, or the web's HTTP and WebSocket,
//! which then is `wss`). [`Conn::flush`] hands the outbound buffer's bytes to rustls in
//! one call (one record per 16 KiB, so coalesced writes stay one record) and writes its
//! records until `WouldBlock`; rustls keeps what is written before the handshake ends
//! and sends it once it has. [`Conn::read`] reads ciphertext into the first half of the
//! scratch buffer with one `read` as for plain TCP (so the short-read shortcut holds),
//! hands it to rustls, and takes frames straight out of each decrypted record; after
//! that it writes whatever rustls has to answer (the handshake's next flight). The
//! plain path pays one branch per read pass and per flush for this, not per message.
//!
//! This module does not know what the messages mean, nor which phase of the run it is
//! in.

use std::io::{self, BufRead, Read, Write};
use std::time::Instant;

use chat_proto::codec::{DecodeError, ResponseDecoder, WireFormat, encode_request};
use chat_proto::frame::Frames;
use chat_proto::{EncodeError, Request, Response};
use mio::net::TcpStream;
use rustls::ClientConnection;

use crate::peer::{PeerEvent, PeerState, Protocol};

/// What a read pass found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadEnd {
    /// The socket has nothing more for now.
    WouldBlock,
    /// The server closed the connection.
    Eof,
}

/// A client connection.
#[derive(Debug)]
pub struct Conn {
    /// The socket, registered with the driver's poll.
    pub stream: TcpStream,
    format: WireFormat,
    /// Encoded requests not yet written; `out[written..]` is still to go.
    out: Vec<u8>,
    written: usize,
    /// Start of an incomplete frame carried over from the last read.
    partial: Vec<u8>,
    decoder: ResponseDecoder,
    /// Frames handed to the decoder so far (in protobuf, an odd count means the
    /// decoder holds a Type frame and the next frame is its body).
    frames_fed: u64,
    /// For a web connection: whether the HTTP response is still to come, and the
    /// state of the masking keys.
    web: Option<WebState>,
    /// For a TLS connection: its rustls state (boxed: about 1 KiB, and plain
    /// connections should not carry it).
    tls: Option<Box<ClientConnection>>,
    /// For a peer's protocol (`--protocol=irc|nats`): its state; requests and
    /// replies are translated by [`crate::peer`] instead of framed.
    peer: Option<Box<PeerState>>,
    /// `--quickack`: set `TCP_QUICKACK` after every read (see [`quick_ack`]).
    quickack: bool,
}

/// A web connection's own state.
#[derive(Debug)]
struct WebState {
    /// The server's `101` response has not been read yet.
    handshaking: bool,
    /// A xorshift state for the masking keys (RFC 6455 wants them unpredictable to
    /// the network; any varying key will do for a load generator).
    mask_seed: u32,
}

impl Conn {
    /// Wraps a (possibly still connecting) stream.
    pub fn new(stream: TcpStream, format: WireFormat) -> Self {
        Self {
            stream,
            format,
            out: Vec::new(),
            written: 0,
            partial: Vec::new(),
            decoder: ResponseDecoder::new(format),
            frames_fed: 0,
            web: None,
            tls: None,
            peer: None,
            quickack: false,
        }
    }

    /// Makes this connection speak a peer's protocol (IRC or NATS).
    pub fn with_peer(mut self, protocol: Protocol) -> Self {
        self.peer = Some(Box::new(PeerState::new(protocol)));
        self
    }

    /// Sets `TCP_QUICKACK` again after every read (`--quickack`).
    pub fn with_quickack(mut self, on: bool) -> Self {
        self.quickack = on;
        self
    }

    /// Makes this connection speak TLS through `tls` (whose `ClientHello` goes out on
    /// the first [`Conn::flush`]); whatever was queued goes through it too.
    pub fn with_tls(mut self, tls: ClientConnection) -> Self {
        self.tls = Some(Box::new(tls));
        self
    }

    /// For a TLS connection whose handshake is over: the protocol version and cipher
    /// suite negotiated, as rustls names them.
    pub fn tls_session(&self) -> Option<(String, String)> {
        let tls = self.tls.as_deref()?;
        if tls.is_handshaking() {
            return None;
        }
        let version = tls.protocol_version().map(|v| format!("{v:?}"))?;
        let suite = tls
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))?;
        Some((version, suite))
    }

    /// A web connection to `host` (`IP:PORT`, for the `Host` and `Origin` headers):
    /// JSON over the server's WebSocket. The upgrade request is queued first; its
    /// `Origin` is `https://` when `secure` (`--web --tls`), else `http://`.
    pub fn new_web(stream: TcpStream, host: &str, seed: u32, secure: bool) -> Self {
        let mut conn = Self::new(stream, WireFormat::Json);
        let scheme = if secure { "https" } else { "http" };
        conn.out.extend_from_slice(
            format!(
                "GET /ws HTTP/1.1\r\nHost: {host}\r\nOrigin: {scheme}://{host}\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: Y2hhdC1iZW5jaC1rZXkwMQ==\r\n\r\n"
            )
            .as_bytes(),
        );
        conn.web = Some(WebState {
            handshaking: true,
            mask_seed: seed | 1,
        });
        conn
    }

    /// For a connection whose reads stop going through [`Conn::read`] (a hostile
    /// client that only counts what it gets): the bytes of the incomplete frame read
    /// so far, and whether the frame after them is a protobuf body whose Type frame
    /// the decoder already took.
    pub fn take_raw_tail(&mut self) -> (Vec<u8>, bool) {
        let body_pending = self.format == WireFormat::Protobuf && self.frames_fed % 2 == 1;
        (std::mem::take(&mut self.partial), body_pending)
    }

    /// Appends `request` to the outbound buffer; [`Conn::flush`] sends it.
    pub fn queue(&mut self, request: &Request) -> Result<(), EncodeError> {
        if let Some(peer) = &mut self.peer {
            peer.encode(request, &mut self.out);
            return Ok(());
        }
        let Some(web) = &mut self.web else {
            return encode_request(self.format, request, &mut self.out);
        };
        // The JSON frame, then rewritten as a masked text frame of the same payload.
        let start = self.out.len();
        encode_request(WireFormat::Json, request, &mut self.out)?;
        let payload: Vec<u8> = self.out.drain(start..).skip(2).collect();
        let mut x = web.mask_seed;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        web.mask_seed = x;
        let mask = x.to_be_bytes();
        self.out.push(0x81);
        match payload.len() {
            n if n < 126 => self.out.push(0x80 | n as u8),
            n => {
                self.out.push(0x80 | 126);
                // A JSON frame's payload fits a u16 by construction.
                self.out.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        self.out.extend_from_slice(&mask);
        self.out
            .extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        Ok(())
    }

    /// Bytes queued but not yet written.
    pub fn unsent(&self) -> usize {
        self.out.len() - self.written
    }

    /// Writes queued bytes until they are all gone or the socket is full.
    /// `Ok(true)` when nothing is left.
    pub fn flush(&mut self) -> io::Result<bool> {
        if self.tls.is_some() {
            return self.flush_tls();
        }
        while self.written < self.out.len() {
            match self.stream.write(&self.out[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out.clear();
        self.written = 0;
        Ok(true)
    }

    /// Reads until the socket is drained or at end of stream, handing each decoded
    /// message (or decode error) to `on_message` with the time its bytes were read.
    /// `peer_closed`: the readiness event reported the peer's FIN, so read on until
    /// end of stream.
    pub fn read<F>(
        &mut self,
        scratch: &mut [u8],
        peer_closed: bool,
        mut on_message: F,
    ) -> io::Result<ReadEnd>
    where
        F: FnMut(Result<Response<'_>, DecodeError>, Instant),
    {
        if self.tls.is_some() {
            return self.read_tls(scratch, peer_closed, on_message);
        }
        loop {
            match self.stream.read(scratch) {
                Ok(0) => return Ok(ReadEnd::Eof),
                Ok(n) => {
                    let now = Instant::now();
                    if self.quickack {
                        quick_ack(&self.stream);
                    }
                    self.take_frames(&scratch[..n], |m| on_message(m, now));
                    if self.peer.is_some() && self.unsent() > 0 {
                        // A PONG or a held JOIN: out now, not at the next chat.
                        self.flush()?;
                    }
                    if n < scratch.len() && !peer_closed {
                        // A short read drained the socket (see the module docs).
                        return Ok(ReadEnd::WouldBlock);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadEnd::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Splits received bytes into frames and feeds them to the decoder.
    fn take_frames<F>(&mut self, data: &[u8], mut on_message: F)
    where
        F: FnMut(Result<Response<'_>, DecodeError>),
    {
        if self.web.is_some() {
            return self.take_web(data, on_message);
        }
        if self.peer.is_some() {
            return self.take_peer(data, on_message);
        }
        if self.partial.is_empty() {
            // The common case: decode straight from the scratch buffer.
            let mut frames = Frames::new(data);
            for payload in frames.by_ref() {
                self.frames_fed += 1;
                if let Some(message) = self.decoder.feed(payload) {
                    on_message(message);
                }
            }
            self.partial.extend_from_slice(&data[frames.consumed()..]);
        } else {
            self.partial.extend_from_slice(data);
            let mut frames = Frames::new(&self.partial);
            for payload in frames.by_ref() {
                self.frames_fed += 1;
                if let Some(message) = self.decoder.feed(payload) {
                    on_message(message);
                }
            }
            let used = frames.consumed();
            self.partial.drain(..used);
            if self.partial.is_empty() && self.partial.capacity() > 64 * 1024 {
                // One big reply (a long /rooms list) should not pin memory for the
                // rest of the run.
                self.partial = Vec::new();
            }
        }
    }
}

/// Linux's `TCP_QUICKACK`: acknowledge at once instead of delaying the ACK.
///
/// InspIRCd and ngIRCd do not set `TCP_NODELAY` on their sockets, so Nagle holds
/// their next small write until our ACK of the previous one arrives; with Linux's
/// delayed ACK that is up to 40 ms, a floor the bench would measure as the server's
/// latency. The flag is not sticky (the kernel may fall back to delayed ACKs), so it
/// is set again after every read: one `setsockopt` per read pass. `--quickack`
/// (on by default for `--protocol=irc|nats`) turns it on; `bench/peers.sh` passes it
/// for every server, ours included, so all pay the same cost. Errors are ignored:
/// without it the run is still valid, only slower on such servers.
fn quick_ack(stream: &TcpStream) {
    use std::os::fd::AsRawFd as _;
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads `one` (an int, as TCP_QUICKACK expects) on an open fd.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&raw const one).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

impl Conn {
    /// `take_frames` for a peer's protocol: lines (and NATS payloads) through
    /// [`PeerState::decode`]; answers it writes go out on the next flush.
    fn take_peer<F>(&mut self, data: &[u8], mut on_message: F)
    where
        F: FnMut(Result<Response<'_>, DecodeError>),
    {
        let Some(peer) = self.peer.as_deref_mut() else {
            return;
        };
        let mut handle = |event: PeerEvent<'_>| match event {
            PeerEvent::Message(m) => on_message(Ok(m)),
            PeerEvent::Error(why) => on_message(Err(DecodeError::InvalidJson(format!(
                "the server said: {why}"
            )))),
        };
        if self.partial.is_empty() {
            let used = peer.decode(data, &mut self.out, &mut handle);
            self.partial.extend_from_slice(&data[used..]);
        } else {
            self.partial.extend_from_slice(data);
            let used = peer.decode(&self.partial, &mut self.out, &mut handle);
            self.partial.drain(..used);
        }
    }

    /// [`Conn::flush`] through TLS: plaintext to rustls, records to the socket.
    fn flush_tls(&mut self) -> io::Result<bool> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return Ok(true);
        };
        loop {
            let handed = if self.written < self.out.len() {
                // Takes what its buffer limit allows: all of it unless records are
                // piling up unsent (before the handshake ends it keeps plaintext).
                let n = tls.writer().write(&self.out[self.written..])?;
                self.written += n;
                n
            } else {
                0
            };
            let mut sent = false;
            while tls.wants_write() {
                match tls.write_tls(&mut self.stream) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(_) => sent = true,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if self.written == self.out.len() {
                self.out.clear();
                self.written = 0;
                return Ok(true);
            }
            if handed == 0 && !sent {
                // Handshaking with rustls's plaintext buffer full: the rest goes
                // once the handshake is over (the read that ends it flushes).
                return Ok(false);
            }
        }
    }

    /// [`Conn::read`] through TLS. Ciphertext is read into the first half of
    /// `scratch`, one `read` per pass as for plain TCP; rustls decrypts it and frames
    /// are taken straight out of each decrypted record.
    fn read_tls<F>(
        &mut self,
        scratch: &mut [u8],
        peer_closed: bool,
        mut on_message: F,
    ) -> io::Result<ReadEnd>
    where
        F: FnMut(Result<Response<'_>, DecodeError>, Instant),
    {
        let Some(mut tls) = self.tls.take() else {
            return Ok(ReadEnd::WouldBlock);
        };
        let half = (scratch.len() / 2).max(1);
        let result =
            self.read_records(&mut tls, &mut scratch[..half], peer_closed, &mut on_message);
        self.tls = Some(tls);
        let end = result?;
        // The handshake's next flight, or requests rustls held until it ended.
        if end == ReadEnd::WouldBlock && (self.written < self.out.len() || self.wants_tls_write()) {
            self.flush_tls()?;
        }
        Ok(end)
    }

    fn wants_tls_write(&self) -> bool {
        self.tls.as_deref().is_some_and(|tls| tls.wants_write())
    }

    fn read_records<F>(
        &mut self,
        tls: &mut ClientConnection,
        cipher: &mut [u8],
        peer_closed: bool,
        on_message: &mut F,
    ) -> io::Result<ReadEnd>
    where
        F: FnMut(Result<Response<'_>, DecodeError>, Instant),
    {
        loop {
            let n = match self.stream.read(cipher) {
                Ok(0) => return Ok(ReadEnd::Eof),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(ReadEnd::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let now = Instant::now();
            let mut rest = &cipher[..n];
            while !rest.is_empty() {
                if tls.read_tls(&mut rest)? == 0 {
                    // A close_notify came before: nothing more is read.
                    return Ok(ReadEnd::Eof);
                }
                let state = match tls.process_new_packets() {
                    Ok(state) => state,
                    Err(e) => {
                        // Its alert goes out if it can; the error ends the connection.
                        let _ = tls.write_tls(&mut self.stream);
                        return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                    }
                };
                let mut reader = tls.reader();
                loop {
                    match reader.fill_buf() {
                        Ok([]) => break,
                        Ok(record) => {
                            let len = record.len();
                            self.take_frames(record, |m| on_message(m, now));
                            reader.consume(len);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                if state.peer_has_closed() {
                    return Ok(ReadEnd::Eof);
                }
            }
            if n < cipher.len() && !peer_closed {
                // A short read drained the socket (see the module docs).
                return Ok(ReadEnd::WouldBlock);
            }
        }
    }

    /// `take_frames` for a web connection: the HTTP response, then WebSocket frames
    /// (unmasked, from the server) whose payloads are JSON messages.
    fn take_web<F>(&mut self, data: &[u8], mut on_message: F)
    where
        F: FnMut(Result<Response<'_>, DecodeError>),
    {
        self.partial.extend_from_slice(data);
        let mut used = 0;
        if let Some(web) = &mut self.web
            && web.handshaking
        {
            let Some(end) = self.partial.windows(4).position(|w| w == b"\r\n\r\n") else {
                return;
            };
            if !self.partial.starts_with(b"HTTP/1.1 101 ") {
                // Not upgraded: the server's answer goes to the caller as an error.
                let status = String::from_utf8_lossy(&self.partial[..end]).into_owned();
                self.partial.clear();
                on_message(Err(DecodeError::InvalidJson(format!(
                    "no WebSocket: {status}"
                ))));
                return;
            }
            web.handshaking = false;
            used = end + 4;
        }
        loop {
            let rest = &self.partial[used..];
            if rest.len() < 2 {
                break;
            }
            let (len, header): (usize, usize) = match rest[1] & 0x7f {
                126 if rest.len() >= 4 => (usize::from(u16::from_be_bytes([rest[2], rest[3]])), 4),
                126 => break,
                127 if rest.len() >= 10 => {
                    let mut n = [0u8; 8];
                    n.copy_from_slice(&rest[2..10]);
                    (
                        usize::try_from(u64::from_be_bytes(n)).unwrap_or(usize::MAX),
                        10,
                    )
                }
                127 => break,
                n => (usize::from(n), 2),
            };
            if rest.len() < header.saturating_add(len) {
                break;
            }
            let opcode = rest[0] & 0x0f;
            if opcode == 0x1 {
                self.frames_fed += 1;
                if let Some(message) = self.decoder.feed(&rest[header..header + len]) {
                    on_message(message);
                }
            }
            used += header + len;
        }
        self.partial.drain(..used);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_proto::codec::encode_response;
    use std::net::TcpListener;

    /// A connected pair: our `Conn` and the std socket of the "server" side.
    fn pair(format: WireFormat) -> (Conn, std::net::TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client.set_nonblocking(true).unwrap();
        (Conn::new(TcpStream::from_std(client), format), server)
    }

    #[test]
    fn frames_split_anywhere_are_reassembled() {
        for format in WireFormat::ALL {
            let (mut conn, _server) = pair(format);
            let mut wire = Vec::new();
            let responses = [
                Response::system("방제[t] 방에 입장했습니다."),
                Response::Chat {
                    member: "u1".into(),
                    text: "b1:0:5:0".into(),
                },
            ];
            for r in &responses {
                encode_response(format, r, &mut wire).unwrap();
            }
            // Every split point, including inside the length headers.
            for cut in 0..=wire.len() {
                let mut got = Vec::new();
                conn.take_frames(&wire[..cut], |m| got.push(m.unwrap().into_owned()));
                conn.take_frames(&wire[cut..], |m| got.push(m.unwrap().into_owned()));
                assert_eq!(got, responses, "{format} cut at {cut}");
                assert!(conn.partial.is_empty());
            }
        }
    }

    #[test]
    fn queued_requests_reach_the_peer_and_eof_is_seen() {
        use std::io::Read as _;
        let (mut conn, mut server) = pair(WireFormat::Json);
        conn.queue(&Request::Rooms).unwrap();
        conn.queue(&Request::Chat { text: "hi".into() }).unwrap();
        assert!(conn.unsent() > 0);
        assert!(conn.flush().unwrap());
        assert_eq!(conn.unsent(), 0);
        let mut expected = Vec::new();
        encode_request(WireFormat::Json, &Request::Rooms, &mut expected).unwrap();
        encode_request(
            WireFormat::Json,
            &Request::Chat { text: "hi".into() },
            &mut expected,
        )
        .unwrap();
        let mut got = vec![0; expected.len()];
        server.read_exact(&mut got).unwrap();
        assert_eq!(got, expected);

        let mut wire = Vec::new();
        encode_response(WireFormat::Json, &Response::system("x"), &mut wire).unwrap();
        server.write_all(&wire).unwrap();
        drop(server);
        let mut scratch = [0; 1024];
        let mut got = Vec::new();
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let end = conn
                .read(&mut scratch, true, |m, _| got.push(m.unwrap().into_owned()))
                .unwrap();
            if end == ReadEnd::Eof {
                break;
            }
            assert!(Instant::now() < deadline, "no EOF");
            std::thread::yield_now();
        }
        assert_eq!(got, vec![Response::system("x")]);
    }
}
