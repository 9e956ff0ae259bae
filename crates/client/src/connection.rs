//! The connection to the server: a non-blocking socket, `chat-proto`'s framing and
//! codecs, a write queue, and the `--verbosity` trace of every frame.
//!
//! The socket is non-blocking so that the event loop ([`crate::session`]) never stops
//! reading the server while it writes: requests are queued and written as far as the
//! kernel takes them; the rest waits for `POLLOUT`. Reading takes what one `recv`
//! gives and hands out every complete message.
//!
//! With `--tls` the socket is wrapped in rustls ([`Link::Tls`]): the handshake is
//! done, blocking and bounded, before the socket turns non-blocking, so a server
//! whose certificate is refused stops the client at once with rustls's reason.
//! Afterwards encrypted records that the socket did not take count as queued, so the
//! session keeps asking `poll` for writability until they are sent, and a read drains
//! every record the socket holds (plaintext waiting inside rustls raises no `POLLIN`).
//!
//! What this module does not do: decide what to print for a response (see
//! [`crate::render`]), or poll (the session owns the one `poll` call).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use chat_proto::codec::{EncodeError, encode_request};
use chat_proto::frame::{FrameBuf, Frames};
use chat_proto::{DecodeError, Request, Response, ResponseDecoder, WireFormat};

use crate::trace::{self, Direction, Plus};

/// Something received: a trace line or a message, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A `--verbosity` line.
    Trace(String),
    /// A decoded message from the server.
    Response(Response<'static>),
}

/// Why the connection cannot go on.
#[derive(Debug)]
pub enum ConnectionError {
    /// The server closed the socket (end of stream, reset, or broken pipe).
    Closed,
    /// Any other socket error.
    Io(io::Error),
    /// The server sent something that is not a valid message.
    Protocol(DecodeError),
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The reference client's words.
            ConnectionError::Closed => f.write_str("서버가 소켓을 닫았음"),
            ConnectionError::Io(e) => write!(f, "소켓 에러: {e}"),
            ConnectionError::Protocol(DecodeError::MissingType) => {
                f.write_str("서버가 보낸 메시지에 type 필드가 없음")
            }
            ConnectionError::Protocol(DecodeError::UnknownType(kind)) => write!(
                f,
                "서버가 핸들러에 등록되지 않은 메시지 타입을 보내옴: 타입={}",
                crate::render::escape(kind)
            ),
            // The reference crashes here; we say what was wrong, escaped because the
            // parser's words may quote the server's bytes.
            ConnectionError::Protocol(e) => write!(
                f,
                "서버가 잘못된 메시지를 보내옴: {}",
                crate::render::escape(&e.to_string())
            ),
        }
    }
}

impl ConnectionError {
    fn from_io(error: io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => ConnectionError::Closed,
            _ => ConnectionError::Io(error),
        }
    }
}

/// Why a request was not sent.
#[derive(Debug)]
pub enum SendError {
    /// The request does not fit in a frame; nothing was queued, the connection is fine.
    TooLarge(EncodeError),
    /// The connection failed while writing.
    Connection(ConnectionError),
}

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The socket, plain or wrapped in TLS.
#[derive(Debug)]
pub enum Link {
    /// Plain TCP, as the reference client.
    Plain(TcpStream),
    /// TLS over TCP (`--tls`).
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Link {
    fn tcp(&self) -> &TcpStream {
        match self {
            Link::Plain(stream) => stream,
            Link::Tls(tls) => tls.get_ref(),
        }
    }

    /// Whether encrypted records wait for the socket.
    fn records_waiting(&self) -> bool {
        matches!(self, Link::Tls(tls) if tls.conn.wants_write())
    }

    /// Writes the records rustls holds, as far as the socket takes them.
    fn send_records(&mut self) -> io::Result<()> {
        if let Link::Tls(tls) = self {
            while tls.conn.wants_write() {
                tls.conn.write_tls(&mut tls.sock)?;
            }
        }
        Ok(())
    }
}

impl Read for Link {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Link::Plain(stream) => stream.read(buf),
            Link::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Link {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Link::Plain(stream) => stream.write(buf),
            Link::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Link::Plain(stream) => stream.flush(),
            Link::Tls(tls) => tls.flush(),
        }
    }
}

/// What `--tls` asks for: whom to trust, and the name the certificate must carry.
#[derive(Debug, Clone)]
pub struct TlsSetup {
    /// The trust (roots, or any certificate).
    pub config: Arc<ClientConfig>,
    /// The server's name to check.
    pub server_name: ServerName<'static>,
}

/// A connected server.
#[derive(Debug)]
pub struct Connection {
    stream: Link,
    format: WireFormat,
    verbosity: u8,
    inbox: FrameBuf,
    decoder: ResponseDecoder,
    /// Encoded frames the kernel has not taken yet.
    outbox: Vec<u8>,
    /// Protobuf only, and only when tracing: the `Type` frame whose body has not
    /// arrived. Its trace line is printed with the body's, because only the decoded
    /// pair tells which type it was.
    pending_type: Option<Vec<u8>>,
}

impl Connection {
    /// Connects to `host:port` (blocking; with `tls`, the handshake too), then
    /// switches the socket to non-blocking.
    pub fn connect(
        host: &str,
        port: u16,
        format: WireFormat,
        verbosity: u8,
        tls: Option<TlsSetup>,
    ) -> io::Result<Self> {
        let mut last_error = None;
        for addr in (host, port).to_socket_addrs()? {
            match TcpStream::connect(addr) {
                Ok(stream) => {
                    let link = match &tls {
                        None => Link::Plain(stream),
                        Some(setup) => handshake(stream, setup)?,
                    };
                    return Self::from_link(link, format, verbosity);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address for this host")))
    }

    /// Wraps a connected stream.
    pub fn from_stream(stream: TcpStream, format: WireFormat, verbosity: u8) -> io::Result<Self> {
        Self::from_link(Link::Plain(stream), format, verbosity)
    }

    /// Wraps a connected link (TLS already past its handshake).
    pub fn from_link(stream: Link, format: WireFormat, verbosity: u8) -> io::Result<Self> {
        stream.tcp().set_nonblocking(true)?;
        // Requests are small and typed by a person: send each at once.
        stream.tcp().set_nodelay(true)?;
        Ok(Self {
            stream,
            format,
            verbosity,
            inbox: FrameBuf::new(),
            decoder: ResponseDecoder::new(format),
            outbox: Vec::new(),
            pending_type: None,
        })
    }

    /// The socket's descriptor, for `poll`.
    pub fn fd(&self) -> RawFd {
        self.stream.tcp().as_raw_fd()
    }

    /// Bytes queued but not yet taken by the kernel (encrypted records waiting count
    /// as one).
    pub fn queued(&self) -> usize {
        self.outbox.len() + usize::from(self.stream.records_waiting())
    }

    /// Encodes `request`, queues it and writes as much as the socket takes now.
    /// Trace lines (frames sent, and at level 2 each `send`) are appended to `trace`.
    pub fn send(&mut self, request: &Request, trace: &mut Vec<String>) -> Result<(), SendError> {
        let mut wire = Vec::new();
        encode_request(self.format, request, &mut wire).map_err(SendError::TooLarge)?;
        let texts = match self.format {
            WireFormat::Protobuf if self.verbosity >= 1 => trace::protobuf_request_texts(request),
            _ => Default::default(),
        };
        let mut frames = Frames::new(&wire);
        let mut start = 0;
        let mut index = 0;
        while let Some(payload) = frames.next() {
            let end = frames.consumed();
            if self.verbosity >= 1 {
                let text = match self.format {
                    WireFormat::Json => trace::json_request_text(request, payload),
                    WireFormat::Protobuf => texts.get(index).cloned().unwrap_or_default(),
                };
                trace.extend(trace::frame_lines(
                    Direction::ClientToServer,
                    payload.len(),
                    &text,
                    Plus::IfText,
                ));
            }
            // Frame by frame, like the reference, so level 2 shows each frame's sends.
            self.outbox.extend_from_slice(&wire[start..end]);
            start = end;
            index += 1;
            self.flush(trace).map_err(SendError::Connection)?;
        }
        Ok(())
    }

    /// Writes queued bytes until the queue is empty or the socket would block.
    pub fn flush(&mut self, trace: &mut Vec<String>) -> Result<(), ConnectionError> {
        let mut attempt = 0;
        while !self.outbox.is_empty() {
            match self.stream.write(&self.outbox) {
                Ok(0) => {
                    self.outbox.clear();
                    return Err(ConnectionError::Closed);
                }
                Ok(n) => {
                    self.outbox.drain(..n);
                    attempt += 1;
                    if self.verbosity >= 2 {
                        trace.push(trace::send_line(attempt, n));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Nothing queued can be delivered any more.
                    self.outbox.clear();
                    return Err(ConnectionError::from_io(e));
                }
            }
        }
        match self.stream.send_records() {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(ConnectionError::from_io(e)),
        }
    }

    /// Reads once and appends what arrived, in order, to `out`. A spurious wake-up
    /// (nothing to read) is not an error. On a protocol error, `out` holds everything
    /// that came before the bad message.
    pub fn receive(&mut self, out: &mut Vec<Incoming>) -> Result<(), ConnectionError> {
        loop {
            let read = self.receive_once(out)?;
            // Plain TCP: one read per wake-up (`poll` says when there is more). TLS:
            // until the socket is empty, as rustls keeps what it decrypted and `poll`
            // cannot see that.
            if !read || matches!(self.stream, Link::Plain(_)) {
                return Ok(());
            }
        }
    }

    /// One read; answers whether something was read (more may follow).
    fn receive_once(&mut self, out: &mut Vec<Incoming>) -> Result<bool, ConnectionError> {
        let got = match self.inbox.read_from(&mut self.stream) {
            Ok(0) => return Err(ConnectionError::Closed),
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                return Ok(false);
            }
            Err(e) => return Err(ConnectionError::from_io(e)),
        };
        if self.verbosity >= 2 {
            out.push(Incoming::Trace(trace::recv_line(got)));
        }
        while let Some(payload) = self.inbox.next_frame() {
            if self.verbosity >= 1 {
                trace_received(self.format, &mut self.pending_type, payload, out);
            }
            match self.decoder.feed(payload) {
                None => {}
                Some(Ok(response)) => {
                    if self.verbosity >= 1 && self.format == WireFormat::Protobuf {
                        trace_protobuf_pair(&mut self.pending_type, payload, &response, out);
                    }
                    out.push(Incoming::Response(response.into_owned()));
                }
                Some(Err(error)) => {
                    if self.verbosity >= 1 && self.format == WireFormat::Protobuf {
                        trace_undecodable_pair(&mut self.pending_type, payload, out);
                    }
                    return Err(ConnectionError::Protocol(error));
                }
            }
        }
        Ok(true)
    }

    /// Tells the server we will send nothing more (a TCP half-close); it answers what
    /// it already received and then closes its side.
    pub fn shutdown_write(&mut self) -> Result<(), ConnectionError> {
        if let Link::Tls(tls) = &mut self.stream {
            // The end of our stream, authenticated; then the TCP half-close.
            tls.conn.send_close_notify();
            let _ = self.stream.send_records();
        }
        match self.stream.tcp().shutdown(Shutdown::Write) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Err(ConnectionError::Closed),
            Err(e) => Err(ConnectionError::from_io(e)),
        }
    }
}

/// The TLS handshake on a fresh blocking socket, bounded by [`HANDSHAKE_TIMEOUT`]. A
/// certificate that is not trusted, or does not name the server, is an
/// `InvalidData` error saying why.
fn handshake(mut stream: TcpStream, setup: &TlsSetup) -> io::Result<Link> {
    stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT))?;
    let mut conn = ClientConnection::new(Arc::clone(&setup.config), setup.server_name.clone())
        .map_err(io::Error::other)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut stream).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                io::Error::new(io::ErrorKind::TimedOut, "the TLS handshake took too long")
            }
            _ => e,
        })?;
    }
    stream.set_read_timeout(None)?;
    stream.set_write_timeout(None)?;
    Ok(Link::Tls(Box::new(StreamOwned::new(conn, stream))))
}

/// Traces a frame as soon as it arrives where the format allows: every JSON frame,
/// and protobuf `Type` frames are only remembered (see [`Connection::pending_type`]).
fn trace_received(
    format: WireFormat,
    pending_type: &mut Option<Vec<u8>>,
    payload: &[u8],
    out: &mut Vec<Incoming>,
) {
    match format {
        WireFormat::Json => {
            // Printed before decoding, as the reference does: garbage is shown too.
            let lines = trace::frame_lines(
                Direction::ServerToClient,
                payload.len(),
                &trace::json_text(payload),
                Plus::Always,
            );
            out.extend(lines.into_iter().map(Incoming::Trace));
        }
        WireFormat::Protobuf => {
            if pending_type.is_none() {
                *pending_type = Some(payload.to_vec());
            }
        }
    }
}

/// Traces a decoded protobuf `Type` + body pair.
fn trace_protobuf_pair(
    pending_type: &mut Option<Vec<u8>>,
    body: &[u8],
    response: &Response<'_>,
    out: &mut Vec<Incoming>,
) {
    let type_len = pending_type.take().map_or(0, |t| t.len());
    let [type_text, body_text] = trace::protobuf_response_texts(response);
    let lines = trace::frame_lines(
        Direction::ServerToClient,
        type_len,
        &type_text,
        Plus::Always,
    )
    .into_iter()
    .chain(trace::frame_lines(
        Direction::ServerToClient,
        body.len(),
        &body_text,
        Plus::IfText,
    ));
    out.extend(lines.map(Incoming::Trace));
}

/// Traces a protobuf pair that did not decode, as raw bytes.
fn trace_undecodable_pair(
    pending_type: &mut Option<Vec<u8>>,
    body: &[u8],
    out: &mut Vec<Incoming>,
) {
    let type_frame = pending_type.take().unwrap_or_default();
    for payload in [&type_frame[..], body] {
        let lines = trace::frame_lines(
            Direction::ServerToClient,
            payload.len(),
            &trace::hex_text(payload),
            Plus::Always,
        );
        out.extend(lines.into_iter().map(Incoming::Trace));
    }
}
