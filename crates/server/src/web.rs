//! The web side of a connection accepted on `--web`: HTTP for the page, then the
//! WebSocket that carries the chat — as a state machine fed with bytes, no I/O.
//!
//! The reactor's EventHandler hands this whatever it reads from a web connection and
//! gets back, in [`WebInput`], what to do: chat frames for the session's inbox (each
//! WebSocket text message becomes one JSON frame of the TCP protocol, with its
//! 2-byte length), where binary messages and control frames stood among them, bytes
//! to send (an HTTP response, a WebSocket pong or close) and whether the connection
//! ends after them.
//!
//! * **HTTP** (until the upgrade): one request, headers at most [`MAX_REQUEST`] bytes.
//!   The `Host` header must name this server (DNS rebinding: a page of
//!   `evil.example`, its name pointed at this machine, would otherwise be
//!   same-origin with us): the address the connection came to, `localhost` or a
//!   loopback literal, or a name the operator gave ([`WebPolicy::allowed_hosts`]),
//!   with or without a port; another name is `421 Misdirected Request`, a missing,
//!   empty, repeated or malformed `Host` is `400` (RFC 9112 §3.2). `GET /` (and the
//!   page's `/app.js`, `/app.css`) are served from the binary and the connection
//!   closes; `GET /ws` with a valid WebSocket handshake *and* an allowed `Origin` is
//!   upgraded (RFC 6455 §4.2); any other Origin, or none, gets 403: another site open
//!   in the user's browser must not drive the chat (cross-site WebSocket hijacking).
//!   An Origin is allowed if the operator listed it (`--web-allow-origin`), or if it
//!   is `http://` or `https://` (the web port may be TLS) of an allowed host — for
//!   the local names on this server's own port or the port the request came through
//!   (a local proxy's; a page on another port of this machine is another site), on
//!   any port for a name the operator gave (a proxy in front decides the public
//!   port). Its name is never compared with the request's own `Host`, which the
//!   requester chooses. Anything else: 404, 405 or 400.
//! * **WebSocket**: framing, masking rules, fragmentation (reassembled up to 65,535
//!   bytes, the TCP protocol's frame limit), ping/pong and the close handshake are
//!   `tungstenite`'s, run over an in-memory pipe, never over the socket. A violation
//!   gets the RFC's close code (1002 protocol, 1007 bad UTF-8, 1009 too big) and ends
//!   the connection.
//!
//! # What a connection may hold, and for how long
//!
//! tungstenite buffers out of sight: its read buffer grows to the frame it reads and
//! keeps that size, and a fragmented message is assembled inside it. So the pipe
//! hands it **one complete frame at a time** ([`Pipe::ready`]): a frame's bytes wait
//! in the pipe, where they are counted, until the last one has arrived, and the frame
//! headers read here say what tungstenite holds after it (the message assembled so
//! far, the largest frame its read buffer has grown to). [`WebSide::buffered`] is all
//! of it — the caller charges it to the server's memory budget — and it is bounded
//! per connection by [`MAX_HELD`]: a frame's declared length is checked against the
//! message limit from its header, before its payload is buffered. Once no message is
//! in progress, a read buffer grown past [`KEEP_CAPACITY`] is dropped (tungstenite is
//! rebuilt, idle, over the same pipe), so an idle connection holds a few hundred
//! bytes. [`WebSide::is_partial`] says when something is unfinished — an HTTP request
//! (from the moment of accept: a connection that sends nothing holds a slot too), a
//! frame, or a message whose fragments have not all come — for the frame deadline,
//! which the EventHandler applies to both ports alike.
//!
//! Server-to-client chat messages do not pass through here: a session's mailbox frames
//! each already encoded JSON message itself ([`text_frame_header`]), sharing the
//! payload bytes among all recipients.
//!
//! A binary message is not for the chat, and is not a frame: [`WebInput`] carries it
//! as a place among the text messages' frames ([`Placed::BinaryMessage`]), the
//! session's inbox keeps it as a typed item there, and the worker refuses it with a
//! system message (`DecodeError::BinaryMessage`) between the replies to the messages
//! around it. A ping, a pong or an empty continuation frame is placed the same way
//! ([`Placed::Control`]): it carries nothing for the chat, but the worker charges it
//! to the client's flood control like a command, so a ping flood is slowed down and
//! cut like a command flood. (Fragments with a payload need no such charge: a
//! message's fragments add up to at most 65,535 bytes, and the message is charged.)
//! Frames are never special, so a text message is handed over as it is — an empty one
//! as an empty frame, answered exactly as the TCP side answers an empty frame on a
//! JSON connection (as JSON that does not parse).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use std::sync::Arc;

use bytes::Bytes;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::{CloseFrame, FrameHeader};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Error as WsError, Message, WebSocket};

use crate::admission::{ForwardedClients, ForwardedTicket};
use crate::config::WebPolicy;

/// The longest HTTP request (line and headers) read before answering 431.
pub(crate) const MAX_REQUEST: usize = 8 * 1024;
/// The longest WebSocket message: what one TCP frame can carry.
pub(crate) const MAX_MESSAGE: usize = u16::MAX as usize;
/// The longest WebSocket frame header (2 bytes, an 8-byte length, a 4-byte mask).
const MAX_HEADER: usize = 14;
/// The most one open WebSocket can make this side hold between reads: a frame in the
/// pipe not yet complete, the message tungstenite assembles, and tungstenite's read
/// buffer, which has grown to the largest frame it read. A frame is refused from its
/// header if it would take its message past [`MAX_MESSAGE`], so the partial frame and
/// the message together stay under one header plus [`MAX_MESSAGE`]; the read buffer
/// is at most one more frame.
pub(crate) const MAX_HELD: usize = 2 * (MAX_HEADER + MAX_MESSAGE);
/// Buffers grown past this are dropped once empty (as the TCP side's partial-frame
/// buffer is): a connection that once sent a large message does not keep its size.
const KEEP_CAPACITY: usize = 4 * 1024;

const PAGE: &str = include_str!("web/index.html");
const SCRIPT: &str = include_str!("web/app.js");
const STYLE: &str = include_str!("web/app.css");

/// Input a worker meets in its place among a web connection's frames, that is not a
/// frame itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placed {
    /// A binary message (refused: not for the chat).
    BinaryMessage,
    /// A ping, a pong or an empty continuation frame (charged to flood control).
    Control,
}

/// What the reactor must do after feeding bytes in.
#[derive(Debug, Default)]
pub(crate) struct WebInput {
    /// Complete chat frames (2-byte length + JSON), for the session's inbox: one per
    /// text message.
    pub(crate) frames: Vec<u8>,
    /// How many frames `frames` holds.
    pub(crate) count: usize,
    /// The binary messages and control frames: where each stood among the items read
    /// (text messages, binary messages and control frames, in arrival order, from 0),
    /// ascending.
    pub(crate) placed: Vec<(usize, Placed)>,
    /// Bytes to send now, before anything the session queues later.
    pub(crate) reply: Vec<u8>,
    /// The connection ends once `reply` is sent.
    pub(crate) close: bool,
    /// The WebSocket was just opened.
    pub(crate) upgraded: bool,
    /// The client's address as a trusted proxy named it, when the WebSocket opened
    /// through one (and the address is not the proxy's own).
    pub(crate) forwarded_for: Option<IpAddr>,
    /// A client a trusted proxy named was refused: its address has as many
    /// connections open as `--max-connections-per-ip` allows (answered `503`).
    pub(crate) refused_forwarded: Option<IpAddr>,
}

/// One web connection's protocol state.
#[derive(Debug)]
pub(crate) struct WebSide {
    state: State,
    policy: std::sync::Arc<WebPolicy>,
    /// The address the connection came to: its `Host` may name it, and a page of the
    /// local names must be on its port.
    local: Option<SocketAddr>,
    /// The address the connection came from (a trusted proxy's may forward another).
    peer: Option<IpAddr>,
    /// Counts the clients trusted proxies name, per address.
    forwarded: Arc<ForwardedClients>,
    /// This connection's place in `forwarded`, held while it is open.
    _ticket: Option<ForwardedTicket>,
}

#[derive(Debug)]
enum State {
    /// Reading the HTTP request.
    Http(Vec<u8>),
    /// The WebSocket is open.
    Open(Box<Socket>),
    /// Answered or closed: input is ignored.
    Done,
}

/// An open WebSocket: tungstenite over the pipe, and what the frame headers said it
/// holds.
#[derive(Debug)]
struct Socket {
    ws: WebSocket<Pipe>,
    /// A data message is in progress (its last fragment has not come): the payload
    /// bytes of its fragments so far, which tungstenite holds.
    message: Option<usize>,
    /// The longest frame (header included) tungstenite read since it was built: its
    /// read buffer keeps that much.
    read_buffer: usize,
}

/// The in-memory stream tungstenite runs over: what was read from the socket, and
/// what it wants written.
#[derive(Debug, Default)]
struct Pipe {
    input: VecDeque<u8>,
    /// How many bytes at the front of `input` tungstenite may read: one complete frame
    /// at a time (see the module doc), 0 between frames.
    ready: usize,
    output: Vec<u8>,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.ready == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let want = buf.len().min(self.ready);
        let n = self.input.read(&mut buf[..want])?;
        self.ready -= n;
        Ok(n)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl WebSide {
    pub(crate) fn new(policy: Arc<WebPolicy>, forwarded: Arc<ForwardedClients>) -> Self {
        WebSide {
            state: State::Http(Vec::new()),
            policy,
            local: None,
            peer: None,
            forwarded,
            _ticket: None,
        }
    }

    /// The same side, for a connection from `peer` that came to `local` (the socket's
    /// own address).
    pub(crate) fn arrived_at(mut self, peer: SocketAddr, local: Option<SocketAddr>) -> Self {
        self.peer = Some(peer.ip());
        self.local = local;
        self
    }

    /// Whether the WebSocket is open (the connection is a chat client).
    #[cfg(test)]
    pub(crate) fn is_open(&self) -> bool {
        matches!(self.state, State::Open(_))
    }

    /// Whether the client has something unfinished: an HTTP request (from the first
    /// moment: a connection that says nothing still holds a slot), a frame, or a
    /// message whose last fragment has not come. The frame deadline applies while it
    /// does: a slowloris gets no more time here than on TCP.
    pub(crate) fn is_partial(&self) -> bool {
        match &self.state {
            State::Http(_) => true,
            State::Open(socket) => {
                socket.message.is_some() || !socket.ws.get_ref().input.is_empty()
            }
            State::Done => false,
        }
    }

    /// Bytes held here and inside tungstenite (charged to the memory budget by the
    /// caller); at most [`MAX_HELD`] for an open WebSocket.
    pub(crate) fn buffered(&self) -> usize {
        match &self.state {
            State::Http(buf) => buf.len(),
            State::Open(socket) => socket.held(),
            State::Done => 0,
        }
    }

    /// Feeds bytes read from the socket.
    pub(crate) fn take(&mut self, data: &[u8]) -> WebInput {
        let mut input = WebInput::default();
        match &mut self.state {
            State::Done => {}
            State::Http(buf) => {
                buf.extend_from_slice(data);
                match answer_http(buf, &self.policy, self.local, self.peer) {
                    Http::Incomplete if buf.len() > MAX_REQUEST => {
                        input.reply = response(
                            431,
                            "Request Header Fields Too Large",
                            b"request too large\n",
                        );
                        input.close = true;
                        self.state = State::Done;
                    }
                    Http::Incomplete => {}
                    Http::Respond(reply) => {
                        input.reply = reply;
                        input.close = true;
                        self.state = State::Done;
                    }
                    Http::Upgrade {
                        reply,
                        rest,
                        client,
                    } => {
                        if let Some(ip) = client {
                            match self.forwarded.admit(ip) {
                                Ok(ticket) => self._ticket = Some(ticket),
                                Err(_) => {
                                    input.reply = response(
                                        503,
                                        "Service Unavailable",
                                        b"too many connections from your address\n",
                                    );
                                    input.close = true;
                                    input.refused_forwarded = Some(ip);
                                    self.state = State::Done;
                                    return input;
                                }
                            }
                        }
                        input.reply = reply;
                        input.upgraded = true;
                        input.forwarded_for = client;
                        self.state = State::Open(Box::new(Socket::new(Pipe::default())));
                        if !rest.is_empty() {
                            let more = self.take(&rest);
                            input.absorb(more);
                        }
                    }
                }
            }
            State::Open(socket) => {
                socket.ws.get_mut().input.extend(data);
                let closed = socket.read_frames(&mut input);
                input.reply.append(&mut socket.ws.get_mut().output);
                if closed {
                    input.close = true;
                    self.state = State::Done;
                } else {
                    socket.trim();
                    debug_assert!(socket.held() <= MAX_HELD, "{}", socket.held());
                }
            }
        }
        input
    }
}

impl WebInput {
    /// How many messages were completed: text (frames) and binary. (Control frames
    /// complete nothing.)
    pub(crate) fn messages(&self) -> usize {
        self.count
            + self
                .placed
                .iter()
                .filter(|(_, what)| *what == Placed::BinaryMessage)
                .count()
    }

    /// How many items there are for the inbox: frames and placed items.
    pub(crate) fn items(&self) -> usize {
        self.count + self.placed.len()
    }

    fn absorb(&mut self, more: WebInput) {
        let base = self.items();
        self.placed
            .extend(more.placed.iter().map(|&(at, what)| (base + at, what)));
        self.frames.extend_from_slice(&more.frames);
        self.count += more.count;
        self.reply.extend_from_slice(&more.reply);
        self.close |= more.close;
    }

    fn push_frame(&mut self, payload: &[u8]) {
        // `MAX_MESSAGE` bounds every message, so the length fits.
        let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
        self.frames.extend_from_slice(&len.to_be_bytes());
        self.frames.extend_from_slice(&payload[..usize::from(len)]);
        self.count += 1;
    }

    fn push_placed(&mut self, what: Placed) {
        self.placed.push((self.items(), what));
    }
}

/// tungstenite's settings for every connection.
fn ws_config() -> WebSocketConfig {
    // Small buffers: tungstenite allocates its read buffer up front, per connection;
    // it grows for a big frame (and is dropped after, see `Socket::trim`), and reads
    // from the in-memory pipe are only copies. Writes go straight to the pipe.
    WebSocketConfig::default()
        .read_buffer_size(512)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// A frame header as read from the pipe, before tungstenite sees the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    fin: bool,
    opcode: u8,
    /// The payload's declared length.
    len: u64,
    /// The header's own length.
    size: usize,
}

impl Header {
    /// The header at the front of `input`, once all of it has arrived.
    fn peek(input: &VecDeque<u8>) -> Option<Header> {
        let mut head = [0u8; MAX_HEADER];
        let got = input.len().min(MAX_HEADER);
        for (slot, byte) in head.iter_mut().zip(input.range(..got)) {
            *slot = *byte;
        }
        if got < 2 {
            return None;
        }
        let (len, mut size) = match head[1] & 0x7f {
            126 => (u64::from(u16::from_be_bytes([head[2], head[3]])), 4),
            127 => (u64::from_be_bytes(head[2..10].try_into().ok()?), 10),
            short => (u64::from(short), 2),
        };
        if head[1] & 0x80 != 0 {
            size += 4; // the mask
        }
        (got >= size).then_some(Header {
            fin: head[0] & 0x80 != 0,
            opcode: head[0] & 0x0f,
            len,
            size,
        })
    }

    fn is_control(self) -> bool {
        self.opcode & 0x08 != 0
    }
}

impl Socket {
    fn new(pipe: Pipe) -> Self {
        Socket {
            ws: WebSocket::from_raw_socket(pipe, Role::Server, Some(ws_config())),
            message: None,
            read_buffer: 0,
        }
    }

    /// What this socket holds: the pipe's bytes (a frame not yet complete) and, while
    /// a message is in progress, what tungstenite holds for it (the fragments so far,
    /// and its read buffer, grown to the largest frame it read). Between messages a
    /// grown read buffer is dropped ([`Socket::trim`]), so it counts only while one
    /// is in progress.
    fn held(&self) -> usize {
        let pipe = self.ws.get_ref();
        let in_tungstenite = self
            .message
            .map_or(0, |assembled| assembled + self.read_buffer);
        pipe.input.len() + pipe.output.len() + in_tungstenite
    }

    /// Hands tungstenite every complete frame in the pipe, one at a time; answers
    /// whether the connection is over.
    fn read_frames(&mut self, input: &mut WebInput) -> bool {
        loop {
            let pipe = self.ws.get_ref();
            let Some(header) = Header::peek(&pipe.input) else {
                break;
            };
            // What can only be refused is refused from the header, before its payload
            // is buffered: a control frame longer than 125 bytes or fragmented, a
            // frame that would take its message past the limit.
            if header.is_control() && (header.len > 125 || !header.fin) {
                return self.fail(CloseCode::Protocol, "WebSocket protocol error");
            }
            let assembled = if header.opcode == 0 {
                self.message.unwrap_or(0)
            } else {
                0
            };
            if assembled as u64 + header.len > MAX_MESSAGE as u64 {
                return self.fail(CloseCode::Size, "message too big (65,535 bytes at most)");
            }
            // Fits a usize: at most `MAX_HEADER + MAX_MESSAGE`.
            let frame = header.size + header.len as usize;
            if pipe.input.len() < frame {
                break;
            }
            self.ws.get_mut().ready = frame;
            self.read_buffer = self.read_buffer.max(frame);
            match header.opcode {
                0 => {
                    if let Some(message) = &mut self.message {
                        *message += frame - header.size;
                        if header.fin {
                            self.message = None;
                        }
                    }
                }
                1 | 2 => self.message = (!header.fin).then_some(frame - header.size),
                _ => {}
            }
            match self.ws.read() {
                Ok(Message::Text(text)) => input.push_frame(text.as_bytes()),
                Ok(Message::Binary(_)) => input.push_placed(Placed::BinaryMessage),
                // Pongs are answered by tungstenite (flushed into the pipe's output).
                Ok(Message::Ping(_) | Message::Pong(_)) => input.push_placed(Placed::Control),
                Ok(Message::Frame(_)) => {}
                Ok(Message::Close(_)) => {
                    // The close reply is queued; the connection ends after it.
                    let _ = self.ws.flush();
                    return true;
                }
                Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    // A fragment taken in: nothing complete yet. An empty one that does
                    // not end its message carries nothing and ends nothing.
                    if header.opcode == 0 && header.len == 0 && !header.fin {
                        input.push_placed(Placed::Control);
                    }
                }
                Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => return true,
                Err(e) => {
                    let (code, reason) = match &e {
                        WsError::Capacity(_) => {
                            (CloseCode::Size, "message too big (65,535 bytes at most)")
                        }
                        WsError::Utf8(_) => (CloseCode::Invalid, "text is not UTF-8"),
                        _ => (CloseCode::Protocol, "WebSocket protocol error"),
                    };
                    tracing::debug!("web socket closed: {e}");
                    return self.fail(code, reason);
                }
            }
            debug_assert_eq!(self.ws.get_ref().ready, 0, "tungstenite read one frame");
        }
        // Pongs queued by the last frames.
        let _ = self.ws.flush();
        false
    }

    /// Closes with `code` (the close frame is queued in the pipe's output); answers
    /// that the connection is over.
    fn fail(&mut self, code: CloseCode, reason: &'static str) -> bool {
        let _ = self.ws.close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        let _ = self.ws.flush();
        true
    }

    /// Between reads: drops buffers that grew for one large frame once they are no
    /// longer needed. tungstenite's read buffer keeps the size of the largest frame it
    /// read and cannot be shrunk, so once no message is in progress (it holds nothing
    /// then: every frame handed to it was read, its replies flushed) it is rebuilt over
    /// the same pipe.
    fn trim(&mut self) {
        if self.message.is_none() && self.read_buffer > KEEP_CAPACITY {
            let pipe = std::mem::take(self.ws.get_mut());
            *self = Socket::new(pipe);
        }
        let pipe = self.ws.get_mut();
        if pipe.input.is_empty() && pipe.input.capacity() > KEEP_CAPACITY {
            pipe.input = VecDeque::new();
        }
        if pipe.output.capacity() > KEEP_CAPACITY {
            pipe.output = Vec::new();
        }
    }
}

/// Headers `[0x81, len]` of unmasked final text frames of 0 to 125 bytes, shared by
/// every recipient: the common short message costs no allocation per recipient.
static SHORT_HEADERS: [[u8; 2]; 126] = {
    let mut table = [[0x81, 0]; 126];
    let mut len = 0;
    while len < 126 {
        table[len][1] = len as u8;
        len += 1;
    }
    table
};

/// The header of an unmasked, final text frame of `len` bytes (server to client).
pub(crate) fn text_frame_header(len: usize) -> Bytes {
    if let Some(short) = SHORT_HEADERS.get(len) {
        return Bytes::from_static(short);
    }
    let header = FrameHeader {
        opcode: tungstenite::protocol::frame::coding::OpCode::Data(
            tungstenite::protocol::frame::coding::Data::Text,
        ),
        ..FrameHeader::default()
    };
    let mut out = Vec::with_capacity(4);
    // Writing to a Vec cannot fail.
    let _ = header.format(len as u64, &mut out);
    Bytes::from(out)
}

enum Http {
    Incomplete,
    Respond(Vec<u8>),
    Upgrade {
        reply: Vec<u8>,
        rest: Vec<u8>,
        /// The client's address, as a trusted proxy named it.
        client: Option<IpAddr>,
    },
}

/// `host [":" port]` of a `Host` header or an origin (RFC 9110 §4.2.3, §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Authority<'a> {
    host: HostName<'a>,
    port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostName<'a> {
    /// An address literal (`127.0.0.1`, `[::1]`).
    Ip(IpAddr),
    /// A registered name (`localhost`, `chat.example.org`).
    Name(&'a str),
}

/// Parses `text` as an authority; `None` if it is anything else (a path, user
/// information, a bad port, nothing at all).
fn parse_authority(text: &str) -> Option<Authority<'_>> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (literal, after) = rest.split_once(']')?;
        let host = HostName::Ip(IpAddr::V6(literal.parse::<Ipv6Addr>().ok()?));
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        let (name, port) = match text.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (text, None),
        };
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !valid {
            return None;
        }
        let host = match name.parse() {
            Ok(ip) => HostName::Ip(IpAddr::V4(ip)),
            Err(_) => HostName::Name(name),
        };
        (host, port)
    };
    let port = match port {
        None => None,
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            Some(digits.parse().ok()?)
        }
        Some(_) => return None,
    };
    Some(Authority { host, port })
}

/// Why a host is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Allowed {
    /// The address the connection came to, `localhost`, a loopback address: this
    /// machine, where a page on another port is another site.
    Local,
    /// A name the operator gave (`--web-host`), on whatever port its proxy serves.
    Named,
}

/// Whether `ip` is a loopback address (`127.0.0.0/8`, `::1`, or IPv4 loopback seen
/// through IPv6).
fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// Whether a request may name `host`, and why.
fn allowed_host(
    host: HostName<'_>,
    policy: &WebPolicy,
    local: Option<SocketAddr>,
) -> Option<Allowed> {
    let local_ip = local.map(|addr| addr.ip().to_canonical());
    let local = match host {
        HostName::Ip(ip) => is_loopback(ip) || Some(ip.to_canonical()) == local_ip,
        HostName::Name(name) => name.eq_ignore_ascii_case("localhost"),
    };
    if local {
        return Some(Allowed::Local);
    }
    let named = policy.allowed_hosts.iter().any(|entry| {
        parse_authority(entry).is_some_and(|allowed| match (allowed.host, host) {
            (HostName::Ip(a), HostName::Ip(b)) => a.to_canonical() == b.to_canonical(),
            (HostName::Name(a), HostName::Name(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        })
    });
    named.then_some(Allowed::Named)
}

/// Whether a page of `origin` may open the WebSocket (see the module doc), for a
/// request whose (allowed) `Host` gave `host_port`.
fn allowed_origin(
    origin: &str,
    policy: &WebPolicy,
    local: Option<SocketAddr>,
    host_port: Option<u16>,
) -> bool {
    if policy.allowed_origins.iter().any(|o| o == origin) {
        return true;
    }
    let (default_port, rest) = if let Some(rest) = origin.strip_prefix("http://") {
        (80, rest)
    } else if let Some(rest) = origin.strip_prefix("https://") {
        (443, rest)
    } else {
        return false;
    };
    let Some(authority) = parse_authority(rest) else {
        return false;
    };
    match allowed_host(authority.host, policy, local) {
        Some(Allowed::Named) => true,
        Some(Allowed::Local) => {
            // This machine's page: on our port, or on the port the browser reached us
            // by (a local proxy in front; only the port of a Host already found to
            // name this server). A page on any other local port is another site.
            let port = authority.port.unwrap_or(default_port);
            local.is_some_and(|local| local.port() == port)
                || host_port.unwrap_or(default_port) == port
        }
        None => false,
    }
}

/// The client a trusted proxy forwards, from its `X-Forwarded-For` values (`None`: the
/// peer is not a trusted proxy, or named nobody else).
///
/// Each proxy appends the address it received the request from, so the list is read
/// from its end: the last entry is what the proxy we trust saw; while that is itself
/// a trusted proxy (a chain), the entry before it is taken, and so on. The first
/// address not trusted is the client: entries before it were written by the client
/// or its side and may be anything. An entry that is not an address ends the walk
/// at the last trusted hop.
fn forwarded_client(
    peer: Option<IpAddr>,
    values: &[Option<&str>],
    trusted: &[IpAddr],
) -> Option<IpAddr> {
    let is_trusted = |ip: IpAddr| {
        trusted
            .iter()
            .any(|t| t.to_canonical() == ip.to_canonical())
    };
    let peer = peer.filter(|&peer| is_trusted(peer))?;
    let mut client = peer;
    let hops = values
        .iter()
        .flat_map(|value| value.unwrap_or_default().split(','))
        .map(str::trim)
        .filter(|hop| !hop.is_empty());
    for hop in hops.collect::<Vec<_>>().into_iter().rev() {
        if !is_trusted(client) {
            break;
        }
        let Some(ip) = parse_forwarded_hop(hop) else {
            break;
        };
        client = ip;
    }
    (client.to_canonical() != peer.to_canonical()).then(|| client.to_canonical())
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`[v6]:port`).
fn parse_forwarded_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
        .or_else(|| {
            hop.strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|v6| v6.parse::<Ipv6Addr>().ok())
                .map(IpAddr::V6)
        })
}

/// Answers a complete HTTP request in `buf`, if there is one; `local` is the address
/// the connection came to, `peer` the one it came from.
fn answer_http(
    buf: &[u8],
    policy: &WebPolicy,
    local: Option<SocketAddr>,
    peer: Option<IpAddr>,
) -> Http {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let consumed = match request.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Http::Incomplete,
        Err(_) => {
            return Http::Respond(response(400, "Bad Request", b"bad request\n"));
        }
    };
    // Every value of a header, trimmed (`None` for one that is not UTF-8).
    let values = |name: &str| -> Vec<Option<&str>> {
        request
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| std::str::from_utf8(h.value).ok().map(str::trim))
            .collect()
    };
    // The one value of a header that must not be repeated.
    let single = |name: &str| match values(name).as_slice() {
        [one] => *one,
        _ => None,
    };
    // Before anything is served: the request must be meant for this server. A page of
    // another name, pointed at this address (DNS rebinding), sends that name.
    let host = match single("host") {
        Some(host) if !host.is_empty() => host,
        _ => {
            return Http::Respond(response(
                400,
                "Bad Request",
                b"one Host header naming this server is required\n",
            ));
        }
    };
    let Some(authority) = parse_authority(host) else {
        return Http::Respond(response(400, "Bad Request", b"bad Host header\n"));
    };
    if allowed_host(authority.host, policy, local).is_none() {
        tracing::debug!(
            host,
            "web request refused: a name this server does not serve"
        );
        return Http::Respond(response(
            421,
            "Misdirected Request",
            b"this server is not reached by that name\n",
        ));
    }
    if request.method != Some("GET") {
        return Http::Respond(response(405, "Method Not Allowed", b"only GET\n"));
    }
    let path = request.path.unwrap_or("/");
    let path = path.split('?').next().unwrap_or(path);
    match path {
        "/" | "/index.html" => Http::Respond(page("text/html; charset=utf-8", PAGE)),
        "/app.js" => Http::Respond(page("text/javascript; charset=utf-8", SCRIPT)),
        "/app.css" => Http::Respond(page("text/css; charset=utf-8", STYLE)),
        "/ws" => {
            let upgrade = single("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
            let connection = single("connection").is_some_and(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            });
            let version = single("sec-websocket-version") == Some("13");
            let Some(key) =
                single("sec-websocket-key").filter(|_| upgrade && connection && version)
            else {
                return Http::Respond(response(
                    400,
                    "Bad Request",
                    b"a WebSocket handshake is expected here\n",
                ));
            };
            // One Origin, of a page this server serves; never compared with `Host`.
            let origin = single("origin");
            let allowed = origin.is_some_and(|o| allowed_origin(o, policy, local, authority.port));
            if !allowed {
                tracing::info!(
                    origin = origin.unwrap_or("(none)"),
                    host,
                    "web socket refused: foreign origin"
                );
                return Http::Respond(response(
                    403,
                    "Forbidden",
                    b"this origin may not open the chat\n",
                ));
            }
            let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
            let reply = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            );
            Http::Upgrade {
                reply: reply.into_bytes(),
                rest: buf[consumed..].to_vec(),
                client: forwarded_client(peer, &values("x-forwarded-for"), &policy.trusted_proxies),
            }
        }
        _ => Http::Respond(response(404, "Not Found", b"not found\n")),
    }
}

/// A page served from the binary.
fn page(content_type: &str, body: &str) -> Vec<u8> {
    with_body(200, "OK", content_type, body.as_bytes())
}

/// A plain-text answer that closes the connection.
fn response(status: u16, reason: &str, body: &[u8]) -> Vec<u8> {
    with_body(status, reason, "text/plain", body)
}

/// A complete response that closes the connection.
fn with_body(status: u16, reason: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Content-Security-Policy: default-src 'self'; connect-src 'self'; img-src 'self' data:\r\n\
         X-Content-Type-Options: nosniff\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The address the test connections came to.
    const LOCAL: &str = "127.0.0.1:8080";

    /// The address the test connections came from.
    const PEER: &str = "127.0.0.1:50000";

    fn side_with(policy: WebPolicy) -> WebSide {
        let config = crate::config::ServerConfig {
            web_policy: policy.clone(),
            ..crate::config::ServerConfig::local(1)
        };
        side_from(PEER, policy, ForwardedClients::new(&config))
    }

    fn side_from(peer: &str, policy: WebPolicy, forwarded: Arc<ForwardedClients>) -> WebSide {
        WebSide::new(Arc::new(policy), forwarded)
            .arrived_at(peer.parse().unwrap(), Some(LOCAL.parse().unwrap()))
    }

    fn side() -> WebSide {
        side_with(WebPolicy::default())
    }

    fn handshake_to(host: &str, origin: Option<&str>) -> String {
        let origin = origin
            .map(|o| format!("Origin: {o}\r\n"))
            .unwrap_or_default();
        format!(
            "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origin}\r\n"
        )
    }

    fn handshake(origin: Option<&str>) -> String {
        handshake_to(LOCAL, origin)
    }

    /// An open WebSocket.
    fn open() -> WebSide {
        let mut web = side();
        assert!(
            web.take(handshake(Some("http://127.0.0.1:8080")).as_bytes())
                .upgraded
        );
        web
    }

    /// The status line of the answer to `request`.
    fn status(web: &mut WebSide, request: &str) -> String {
        let out = web.take(request.as_bytes());
        let reply = String::from_utf8_lossy(&out.reply).into_owned();
        reply.lines().next().unwrap_or_default().to_owned()
    }

    /// A masked client frame.
    fn client_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mask = [1, 2, 3, 4];
        let mut out = vec![opcode | if fin { 0x80 } else { 0 }];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn the_rfc_handshake_example_is_answered() {
        let mut web = side();
        let out = web.take(handshake(Some("http://127.0.0.1:8080")).as_bytes());
        let reply = String::from_utf8(out.reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 101 "), "{reply}");
        // RFC 6455 §1.3's example key and accept value.
        assert!(
            reply.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            "{reply}"
        );
        assert!(out.upgraded && !out.close && web.is_open());
    }

    #[test]
    fn foreign_or_missing_origins_are_refused() {
        for origin in [
            None,
            Some("http://evil.example"),
            Some("http://127.0.0.1:9999"), // another site on this machine
            Some("http://localhost"),      // port 80: another site too
            Some("null"),
            Some("ws://127.0.0.1:8080"),
            Some("http://127.0.0.1:8080/"),
            Some("http://user@127.0.0.1:8080"),
            Some(""),
        ] {
            let mut web = side();
            let out = web.take(handshake(origin).as_bytes());
            assert!(
                String::from_utf8_lossy(&out.reply).starts_with("HTTP/1.1 403 "),
                "{origin:?}"
            );
            assert!(out.close && !web.is_open());
        }
        let mut web = side_with(WebPolicy {
            allowed_origins: vec!["https://chat.example.org".into()],
            ..WebPolicy::default()
        });
        let out = web.take(handshake(Some("https://chat.example.org")).as_bytes());
        assert!(out.upgraded, "an allowed origin");
        // Two Origin headers: which one would the browser have meant?
        let twice = handshake(Some("http://127.0.0.1:8080"))
            .replace("\r\n\r\n", "\r\nOrigin: http://127.0.0.1:8080\r\n\r\n");
        assert_eq!(status(&mut side(), &twice), "HTTP/1.1 403 Forbidden");
    }

    /// The Host must name this server; the Origin is judged by the allowed hosts, never
    /// by the request's own Host (DNS rebinding).
    #[test]
    fn hosts_and_origins() {
        let policy = || WebPolicy {
            allowed_hosts: vec!["chat.example.org".into(), "[2001:db8::1]".into()],
            ..WebPolicy::default()
        };
        for (host, origin, want) in [
            // The rebinding attack: both name the attacker's domain.
            (
                "evil.example",
                "http://evil.example",
                "421 Misdirected Request",
            ),
            (
                "evil.example:8080",
                "http://evil.example:8080",
                "421 Misdirected Request",
            ),
            (
                "127.0.0.1.evil.example",
                "http://127.0.0.1:8080",
                "421 Misdirected Request",
            ),
            (
                "10.0.0.7:8080",
                "http://10.0.0.7:8080",
                "421 Misdirected Request",
            ),
            // Malformed: a path, user information, a bad port, an empty name.
            (
                "127.0.0.1:8080/x",
                "http://127.0.0.1:8080",
                "400 Bad Request",
            ),
            (
                "127.0.0.1:8080?",
                "http://127.0.0.1:8080",
                "400 Bad Request",
            ),
            (
                "u@127.0.0.1:8080",
                "http://127.0.0.1:8080",
                "400 Bad Request",
            ),
            (
                "127.0.0.1:99999",
                "http://127.0.0.1:8080",
                "400 Bad Request",
            ),
            ("127.0.0.1:", "http://127.0.0.1:8080", "400 Bad Request"),
            (":8080", "http://127.0.0.1:8080", "400 Bad Request"),
            ("[::1", "http://127.0.0.1:8080", "400 Bad Request"),
            // Allowed hosts, with or without a port; the Origin on its own.
            (
                "127.0.0.1:8080",
                "http://127.0.0.1:8080",
                "101 Switching Protocols",
            ),
            (
                "127.0.0.1",
                "https://127.0.0.1:8080",
                "101 Switching Protocols",
            ),
            (
                "localhost:8080",
                "http://localhost:8080",
                "101 Switching Protocols",
            ),
            (
                "LocalHost:8080",
                "http://localhost:8080",
                "101 Switching Protocols",
            ),
            (
                "127.9.9.9:1234",
                "http://[::1]:8080",
                "101 Switching Protocols",
            ),
            (
                "[::1]:8080",
                "https://localhost:8080",
                "101 Switching Protocols",
            ),
            // Through a local proxy on another port: the page is on the proxy's port.
            (
                "localhost:8443",
                "https://localhost:8443",
                "101 Switching Protocols",
            ),
            ("localhost", "https://localhost", "101 Switching Protocols"),
            ("localhost:8443", "https://localhost:9443", "403 Forbidden"),
            (
                "[::ffff:127.0.0.1]",
                "http://127.0.0.1:8080",
                "101 Switching Protocols",
            ),
            (
                "chat.example.org",
                "https://chat.example.org",
                "101 Switching Protocols",
            ),
            (
                "CHAT.example.org:443",
                "http://chat.example.org:8443",
                "101 Switching Protocols",
            ),
            (
                "[2001:db8::1]:8080",
                "http://[2001:db8::1]",
                "101 Switching Protocols",
            ),
            // An allowed Host does not make its own name an allowed Origin.
            ("127.0.0.1:8080", "http://evil.example", "403 Forbidden"),
            ("chat.example.org", "http://127.0.0.1:9999", "403 Forbidden"),
            (
                "chat.example.org",
                "http://chat.example.org.evil",
                "403 Forbidden",
            ),
        ] {
            let mut web = side_with(policy());
            let got = status(&mut web, &handshake_to(host, Some(origin)));
            assert_eq!(
                got,
                format!("HTTP/1.1 {want}"),
                "Host: {host}, Origin: {origin}"
            );
        }
        // The address the connection came to, even one that is not loopback.
        let config = crate::config::ServerConfig::local(1);
        let mut web = WebSide::new(Arc::default(), ForwardedClients::new(&config))
            .arrived_at(PEER.parse().unwrap(), Some("192.0.2.5:80".parse().unwrap()));
        let got = status(
            &mut web,
            &handshake_to("192.0.2.5", Some("http://192.0.2.5")),
        );
        assert_eq!(got, "HTTP/1.1 101 Switching Protocols");
    }

    #[test]
    fn x_forwarded_for_names_the_client_only_from_a_trusted_proxy() {
        let trusted = |list: &[&str]| {
            list.iter()
                .map(|ip| ip.parse().unwrap())
                .collect::<Vec<_>>()
        };
        let proxy = Some("10.0.0.2".parse().unwrap());
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let one = trusted(&["10.0.0.2"]);
        // From an untrusted peer the header is ignored, whatever it says.
        assert_eq!(
            forwarded_client(ip("192.0.2.1"), &[Some("203.0.113.7")], &one),
            None
        );
        assert_eq!(forwarded_client(proxy, &[Some("203.0.113.7")], &[]), None);
        // The proxy's own entry is the last one; what the client wrote comes before.
        assert_eq!(
            forwarded_client(proxy, &[Some("203.0.113.7")], &one),
            ip("203.0.113.7")
        );
        assert_eq!(
            forwarded_client(proxy, &[Some("6.6.6.6, 203.0.113.7")], &one),
            ip("203.0.113.7"),
            "a client cannot pass for another address"
        );
        // Repeated headers are one list, in order.
        assert_eq!(
            forwarded_client(proxy, &[Some("6.6.6.6"), Some("203.0.113.7")], &one),
            ip("203.0.113.7")
        );
        // A chain of trusted proxies is walked back to the first address not trusted.
        let chain = trusted(&["10.0.0.2", "10.0.0.3"]);
        assert_eq!(
            forwarded_client(proxy, &[Some("6.6.6.6, 203.0.113.7, 10.0.0.3")], &chain),
            ip("203.0.113.7")
        );
        // Ports and brackets; IPv4 seen through IPv6 is IPv4.
        assert_eq!(
            forwarded_client(proxy, &[Some("[2001:db8::1]:443")], &one),
            ip("2001:db8::1")
        );
        assert_eq!(
            forwarded_client(proxy, &[Some("[2001:db8::1]")], &one),
            ip("2001:db8::1")
        );
        assert_eq!(
            forwarded_client(proxy, &[Some("203.0.113.7:5000")], &one),
            ip("203.0.113.7")
        );
        assert_eq!(
            forwarded_client(proxy, &[Some("::ffff:203.0.113.7")], &one),
            ip("203.0.113.7")
        );
        // Nothing usable: the proxy itself is the client (no forwarded address).
        assert_eq!(forwarded_client(proxy, &[], &one), None);
        assert_eq!(forwarded_client(proxy, &[Some("unknown")], &one), None);
        assert_eq!(forwarded_client(proxy, &[None, Some(" , ")], &one), None);
        assert_eq!(forwarded_client(proxy, &[Some("10.0.0.2")], &one), None);
        // Garbage the proxy passed on before the real entry does not matter.
        assert_eq!(
            forwarded_client(proxy, &[Some("<script>, 203.0.113.7")], &one),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn clients_a_proxy_names_are_limited_per_address() {
        let policy = WebPolicy {
            trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
            ..WebPolicy::default()
        };
        let config = crate::config::ServerConfig {
            max_connections_per_ip: 1,
            web_policy: policy.clone(),
            ..crate::config::ServerConfig::local(1)
        };
        let forwarded = ForwardedClients::new(&config);
        let request = |xff: &str| {
            handshake(Some("http://127.0.0.1:8080"))
                .replace("\r\n\r\n", &format!("\r\nX-Forwarded-For: {xff}\r\n\r\n"))
        };
        let mut first = side_from(PEER, policy.clone(), Arc::clone(&forwarded));
        let input = first.take(request("203.0.113.7").as_bytes());
        assert!(input.upgraded);
        assert_eq!(input.forwarded_for, "203.0.113.7".parse().ok());
        let mut second = side_from(PEER, policy.clone(), Arc::clone(&forwarded));
        let input = second.take(request("203.0.113.7").as_bytes());
        assert!(!input.upgraded && input.close);
        assert_eq!(input.refused_forwarded, "203.0.113.7".parse().ok());
        let reply = String::from_utf8_lossy(&input.reply);
        assert!(
            reply.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{reply}"
        );
        assert!(
            reply.ends_with("\r\n\r\ntoo many connections from your address\n"),
            "{reply}"
        );
        // Another address is served; the first one's place is freed with it.
        let mut other = side_from(PEER, policy.clone(), Arc::clone(&forwarded));
        assert!(other.take(request("203.0.113.8").as_bytes()).upgraded);
        drop(first);
        let mut again = side_from(PEER, policy.clone(), Arc::clone(&forwarded));
        assert!(again.take(request("203.0.113.7").as_bytes()).upgraded);
        // The same header from a peer that is not a trusted proxy names nobody.
        let mut direct = side_from("192.0.2.9:4000", policy, forwarded);
        let input = direct.take(request("203.0.113.7").as_bytes());
        assert!(input.upgraded);
        assert_eq!(input.forwarded_for, None);
    }

    /// A missing, blank or repeated Host is a bad request whatever the path; a foreign
    /// one is misdirected, for the page too.
    #[test]
    fn every_request_needs_one_host_naming_this_server() {
        let origin = "Origin: http://127.0.0.1:8080\r\n";
        let ws = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
        for (request, want) in [
            (
                format!("GET /ws HTTP/1.1\r\n{ws}Origin: http://\r\n\r\n"),
                "400 Bad Request",
            ),
            (
                format!("GET /ws HTTP/1.1\r\nHost:\r\n{ws}{origin}\r\n"),
                "400 Bad Request",
            ),
            (
                format!("GET /ws HTTP/1.1\r\nHost:   \r\n{ws}{origin}\r\n"),
                "400 Bad Request",
            ),
            (
                format!(
                    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nHost: 127.0.0.1:8080\r\n{ws}{origin}\r\n"
                ),
                "400 Bad Request",
            ),
            (
                format!(
                    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nhost: evil.example\r\n{ws}{origin}\r\n"
                ),
                "400 Bad Request",
            ),
            ("GET / HTTP/1.1\r\n\r\n".to_owned(), "400 Bad Request"),
            (
                "GET / HTTP/1.1\r\nHost: evil.example\r\n\r\n".to_owned(),
                "421 Misdirected Request",
            ),
            (
                "GET /app.js HTTP/1.1\r\nHost: evil.example:8080\r\n\r\n".to_owned(),
                "421 Misdirected Request",
            ),
            (
                "POST / HTTP/1.1\r\nHost: evil.example\r\n\r\n".to_owned(),
                "421 Misdirected Request",
            ),
            (
                "GET / HTTP/1.1\r\nHost: localhost:8080\r\n\r\n".to_owned(),
                "200 OK",
            ),
        ] {
            let mut web = side();
            let out = web.take(request.as_bytes());
            let reply = String::from_utf8_lossy(&out.reply).into_owned();
            assert!(
                reply.starts_with(&format!("HTTP/1.1 {want}\r\n")),
                "{request:?}: {reply}"
            );
            assert!(out.close && !web.is_open());
        }
    }

    #[test]
    fn pages_and_errors() {
        for (request, status) in [
            ("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", "200"),
            ("GET /app.js HTTP/1.1\r\nHost: localhost\r\n\r\n", "200"),
            ("GET /nothing HTTP/1.1\r\nHost: localhost\r\n\r\n", "404"),
            ("POST / HTTP/1.1\r\nHost: localhost\r\n\r\n", "405"),
            ("GET /ws HTTP/1.1\r\nHost: localhost\r\n\r\n", "400"),
            ("NOT HTTP\r\n\r\n", "400"),
        ] {
            let out = side().take(request.as_bytes());
            let reply = String::from_utf8_lossy(&out.reply).into_owned();
            assert!(
                reply.starts_with(&format!("HTTP/1.1 {status} ")),
                "{request:?}: {reply}"
            );
            assert!(out.close);
        }
        let mut web = side();
        let out = web.take(&vec![b'a'; MAX_REQUEST + 1]);
        assert!(String::from_utf8_lossy(&out.reply).starts_with("HTTP/1.1 431 "));
    }

    /// The request is unfinished from the first moment (the frame deadline runs from
    /// the accept), and answered or upgraded it is not.
    #[test]
    fn an_unfinished_request_is_partial_even_before_its_first_byte() {
        let mut web = side();
        assert!(web.is_partial(), "nothing sent yet");
        web.take(b"GET / HT");
        assert!(web.is_partial());
        assert_eq!(web.buffered(), 8);
        web.take(b"TP/1.1\r\nHost: localhost\r\n\r\n");
        assert!(!web.is_partial() && web.buffered() == 0, "answered");
        assert!(!open().is_partial(), "upgraded, nothing pending");
    }

    #[test]
    fn messages_become_frames_fragments_are_joined_and_binary_and_controls_are_placed() {
        let mut bytes = handshake(Some("http://127.0.0.1:8080")).into_bytes();
        bytes.extend(client_frame(0x2, true, b"\xff")); // binary first
        bytes.extend(client_frame(0x1, true, br#"{"type":"CSRooms"}"#));
        bytes.extend(client_frame(0x1, false, b"{\"type\":"));
        bytes.extend(client_frame(0x9, true, b"ping!")); // a ping between fragments
        bytes.extend(client_frame(0x0, false, b"")); // an empty continuation
        bytes.extend(client_frame(0x0, true, b"\"CSLeaveRoom\"}"));
        bytes.extend(client_frame(0x2, true, b"\x00\x01"));
        bytes.extend(client_frame(0x2, false, b"")); // a fragmented binary message
        bytes.extend(client_frame(0x0, true, b"\x02"));
        bytes.extend(client_frame(0x1, true, b""));
        bytes.extend(client_frame(0xa, true, b"unsolicited")); // a pong
        bytes.extend(client_frame(0x2, true, b""));
        // Fed at once, or a byte at a time (each input placed after the ones before):
        // the result is the same.
        let mut at_once = side();
        let at_once = at_once.take(&bytes);
        let mut web = side();
        let mut all = WebInput::default();
        for b in &bytes {
            let more = web.take(std::slice::from_ref(b));
            all.absorb(more);
        }
        for all in [&at_once, &all] {
            let frames: Vec<&[u8]> = chat_proto::frame::Frames::new(&all.frames).collect();
            assert_eq!(
                frames,
                [
                    &br#"{"type":"CSRooms"}"#[..],
                    br#"{"type":"CSLeaveRoom"}"#,
                    b"", // an empty text message: an empty frame, nothing special
                ]
            );
            assert_eq!(all.count, 3);
            use Placed::{BinaryMessage as B, Control as C};
            // binary, Rooms, ping, empty continuation, LeaveRoom, binary, binary, "",
            // pong, binary
            assert_eq!(
                all.placed,
                [(0, B), (2, C), (3, C), (5, B), (6, B), (8, C), (9, B)]
            );
            assert_eq!(all.items(), 10);
            assert_eq!(all.messages(), 7);
        }
        // The pong: an unmasked frame echoing the ping's payload.
        assert!(
            all.reply.windows(7).any(|w| w == b"\x8a\x05ping!"),
            "{:?}",
            all.reply
        );
        assert!(!all.close);
        assert!(!web.is_partial());
        assert_eq!(web.buffered(), 0);
    }

    #[test]
    fn violations_close_with_the_rfc_codes() {
        for (frame, code) in [
            (
                client_frame(0x1, true, &vec![b'a'; MAX_MESSAGE + 1]),
                1009u16,
            ),
            (client_frame(0x1, true, b"\xff\xfe"), 1007),
            (b"\x81\x02hi".to_vec(), 1002), // unmasked client frame
            (client_frame(0x9, true, &[0; 126]), 1002), // a control frame too long
            (client_frame(0x9, false, b""), 1002), // a fragmented control frame
            (client_frame(0x0, true, b"x"), 1002), // a continuation of nothing
        ] {
            let mut web = open();
            let out = web.take(&frame);
            assert!(out.close, "{code}");
            let reply = out.reply;
            assert!(
                reply.len() >= 4 && reply[0] == 0x88,
                "a close frame: {reply:?}"
            );
            assert_eq!(u16::from_be_bytes([reply[2], reply[3]]), code);
            assert_eq!(web.buffered(), 0);
        }
    }

    /// A frame that could only be refused is refused from its header, before its
    /// payload is buffered: a message announced past the limit, in one frame or in
    /// fragments that add up.
    #[test]
    fn a_frame_too_long_for_its_message_is_refused_from_its_header() {
        // 2 bytes, an 8-byte length, the mask.
        let header_only = |frame: Vec<u8>| frame[..14].to_vec();
        let mut web = open();
        let out = web.take(&header_only(client_frame(0x1, true, &vec![b'a'; 70_000])));
        assert!(out.close && out.reply[0] == 0x88, "{:?}", out.reply);
        assert_eq!(u16::from_be_bytes([out.reply[2], out.reply[3]]), 1009);
        // 65,000 bytes so far, then a fragment announcing 1,000 more.
        let mut web = open();
        assert!(!web.take(&client_frame(0x1, false, &[b'a'; 65_000])).close);
        let out = web.take(&client_frame(0x0, true, &[b'a'; 1_000])[..8]);
        assert!(out.close);
        assert_eq!(u16::from_be_bytes([out.reply[2], out.reply[3]]), 1009);
        // 2^63 and more: no length is trusted.
        let mut web = open();
        let mut huge = vec![0x81, 0x80 | 127];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        huge.extend_from_slice(&[1, 2, 3, 4]);
        assert!(web.take(&huge).close);
    }

    /// What a connection holds — a frame not yet complete, a message in progress —
    /// is counted, bounded, unfinished (for the deadline), and freed once done.
    #[test]
    fn what_tungstenite_holds_is_counted_bounded_and_freed() {
        let mut web = open();
        // An unfinished fragment: its frame complete, its message not.
        web.take(&client_frame(0x1, false, &[b'a'; 65_000]));
        assert!(web.is_partial(), "a message in progress");
        let held = web.buffered();
        assert!(
            held >= 2 * 65_000,
            "the fragment and the read buffer: {held}"
        );
        assert!(held <= MAX_HELD);
        // A second fragment, half received.
        let second = client_frame(0x0, false, &[b'b'; 535]);
        web.take(&second[..300]);
        assert!(web.is_partial());
        assert_eq!(web.buffered(), held + 300);
        // A ping in between is answered, placed and changes nothing held.
        web.take(&second[300..]);
        let out = web.take(&client_frame(0x9, true, b"p"));
        assert_eq!(out.placed, [(0, Placed::Control)]);
        assert!(out.reply.starts_with(b"\x8a\x01p"));
        // The message ends: it is handed over, and everything is freed.
        let out = web.take(&client_frame(0x0, true, b""));
        assert_eq!(out.count, 1);
        assert_eq!(out.frames.len(), 2 + 65_535);
        assert!(!web.is_partial());
        assert_eq!(web.buffered(), 0);
        let State::Open(socket) = &web.state else {
            panic!("still open");
        };
        assert_eq!(
            socket.read_buffer, 0,
            "tungstenite rebuilt with a small buffer"
        );
        assert!(socket.ws.get_ref().input.capacity() <= KEEP_CAPACITY);
        // A partial frame alone, byte by byte: counted as it grows, never past the bound.
        let big = client_frame(0x1, true, &[b'c'; MAX_MESSAGE]);
        for (n, b) in big[..big.len() - 1].iter().enumerate() {
            web.take(std::slice::from_ref(b));
            assert_eq!(web.buffered(), n + 1);
        }
        assert!(web.is_partial());
        let out = web.take(&big[big.len() - 1..]);
        assert_eq!(out.count, 1);
        assert_eq!(web.buffered(), 0);
        // The worst a client can do stays under the bound.
        let mut web = open();
        web.take(&client_frame(0x1, false, &[b'a'; MAX_MESSAGE - 1]));
        web.take(&client_frame(0x0, false, b"b")[..6]);
        assert!(web.buffered() <= MAX_HELD, "{}", web.buffered());
    }

    #[test]
    fn a_close_is_answered_and_ends_the_connection() {
        let mut web = open();
        let out = web.take(&client_frame(0x8, true, &1000u16.to_be_bytes()));
        assert!(out.close);
        assert_eq!(&out.reply[..4], b"\x88\x02\x03\xe8");
    }

    #[test]
    fn text_frame_headers() {
        assert_eq!(&text_frame_header(5)[..], b"\x81\x05");
        assert_eq!(&text_frame_header(300)[..], b"\x81\x7e\x01\x2c");
    }

    #[test]
    fn authorities() {
        let ip = |s: &str| HostName::Ip(s.parse().unwrap());
        for (text, want) in [
            ("localhost", Some((HostName::Name("localhost"), None))),
            ("a.b-c_d:80", Some((HostName::Name("a.b-c_d"), Some(80)))),
            ("127.0.0.1:8080", Some((ip("127.0.0.1"), Some(8080)))),
            ("[::1]", Some((ip("::1"), None))),
            ("[::1]:9", Some((ip("::1"), Some(9)))),
            ("", None),
            ("::1", None),
            ("[::1]x", None),
            ("[nope]", None),
            ("h:-1", None),
            ("h:65536", None),
            ("h h", None),
            ("h/", None),
            ("h#", None),
        ] {
            let got = parse_authority(text).map(|a| (a.host, a.port));
            assert_eq!(got, want, "{text:?}");
        }
    }
}
