//! The web side of a connection accepted on `--web`: HTTP for the page, then the
//! WebSocket that carries the chat — as a state machine fed with bytes, no I/O.
//!
//! The reactor's EventHandler hands this whatever it reads from a web connection and
//! gets back, in [`WebInput`], what to do: chat frames for the session's inbox (each
//! WebSocket text message becomes one JSON frame of the TCP protocol, with its
//! 2-byte length), where binary messages stood among them, bytes to send (an HTTP
//! response, a WebSocket pong or close) and whether the connection ends after them.
//!
//! * **HTTP** (until the upgrade): one request, headers at most [`MAX_REQUEST`] bytes.
//!   `GET /` (and the page's `/app.js`, `/app.css`) are served from the binary and the
//!   connection closes; `GET /ws` with a valid WebSocket handshake *and* an `Origin`
//!   that is the page's own (`http://HOST` for the request's `Host`) or one the
//!   operator allowed is upgraded (RFC 6455 §4.2); any other Origin, or none, gets 403:
//!   another site open in the user's browser must not drive the chat (cross-site
//!   WebSocket hijacking). Anything else: 404, 405 or 400.
//! * **WebSocket**: framing, masking rules, fragmentation (reassembled up to 65,535
//!   bytes, the TCP protocol's frame limit), ping/pong and the close handshake are
//!   `tungstenite`'s, run over an in-memory pipe, never over the socket. A violation
//!   gets the RFC's close code (1002 protocol, 1007 bad UTF-8, 1009 too big) and ends
//!   the connection.
//!
//! Server-to-client chat messages do not pass through here: a session's mailbox frames
//! each already encoded JSON message itself ([`text_frame_header`]), sharing the
//! payload bytes among all recipients.
//!
//! A binary message is not for the chat, and is not a frame: [`WebInput`] carries it
//! as a place among the text messages' frames (`binary_at`), the session's inbox
//! keeps it as a typed item there, and the worker refuses it with a system message
//! (`DecodeError::BinaryMessage`) between the replies to the messages around it.
//! Frames are never special, so a text message is handed over as it is — an empty one
//! as an empty frame, answered exactly as the TCP side answers an empty frame on a
//! JSON connection (as JSON that does not parse).

use std::collections::VecDeque;
use std::io::{self, Read, Write};

use bytes::Bytes;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::{CloseFrame, FrameHeader};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Error as WsError, Message, WebSocket};

/// The longest HTTP request (line and headers) read before answering 431.
pub(crate) const MAX_REQUEST: usize = 8 * 1024;
/// The longest WebSocket message: what one TCP frame can carry.
pub(crate) const MAX_MESSAGE: usize = u16::MAX as usize;

const PAGE: &str = include_str!("web/index.html");
const SCRIPT: &str = include_str!("web/app.js");
const STYLE: &str = include_str!("web/app.css");

/// Who may open the chat's WebSocket, besides the page itself.
#[derive(Debug, Clone, Default)]
pub struct WebPolicy {
    /// Origins allowed in addition to the page's own, exactly as browsers send them
    /// (`https://chat.example.org`).
    pub allowed_origins: Vec<String>,
}

/// What the reactor must do after feeding bytes in.
#[derive(Debug, Default)]
pub(crate) struct WebInput {
    /// Complete chat frames (2-byte length + JSON), for the session's inbox: one per
    /// text message.
    pub(crate) frames: Vec<u8>,
    /// How many frames `frames` holds.
    pub(crate) count: usize,
    /// The binary messages (refused by the worker): where each stood among the
    /// messages read (text and binary, in arrival order, from 0), ascending.
    pub(crate) binary_at: Vec<usize>,
    /// Bytes to send now, before anything the session queues later.
    pub(crate) reply: Vec<u8>,
    /// The connection ends once `reply` is sent.
    pub(crate) close: bool,
    /// The WebSocket was just opened.
    pub(crate) upgraded: bool,
}

/// One web connection's protocol state.
#[derive(Debug)]
pub(crate) struct WebSide {
    state: State,
    policy: std::sync::Arc<WebPolicy>,
}

#[derive(Debug)]
enum State {
    /// Reading the HTTP request.
    Http(Vec<u8>),
    /// The WebSocket is open.
    Open(Box<WebSocket<Pipe>>),
    /// Answered or closed: input is ignored.
    Done,
}

/// The in-memory stream tungstenite runs over: what was read from the socket, and
/// what it wants written.
#[derive(Debug, Default)]
struct Pipe {
    input: VecDeque<u8>,
    output: Vec<u8>,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.input.read(buf)
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
    pub(crate) fn new(policy: std::sync::Arc<WebPolicy>) -> Self {
        WebSide {
            state: State::Http(Vec::new()),
            policy,
        }
    }

    /// Whether the WebSocket is open (the connection is a chat client).
    #[cfg(test)]
    pub(crate) fn is_open(&self) -> bool {
        matches!(self.state, State::Open(_))
    }

    /// Whether an HTTP request or a WebSocket message is half-received (for the frame
    /// deadline: a slowloris gets no more time here than on TCP).
    pub(crate) fn is_partial(&self) -> bool {
        match &self.state {
            State::Http(buf) => !buf.is_empty(),
            State::Open(ws) => !ws.get_ref().input.is_empty(),
            State::Done => false,
        }
    }

    /// Bytes the buffers hold (charged to the memory budget by the caller).
    pub(crate) fn buffered(&self) -> usize {
        match &self.state {
            State::Http(buf) => buf.len(),
            State::Open(ws) => ws.get_ref().input.len(),
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
                match answer_http(buf, &self.policy) {
                    Http::Incomplete if buf.len() > MAX_REQUEST => {
                        input.reply = response(
                            431,
                            "Request Header Fields Too Large",
                            "text/plain",
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
                    Http::Upgrade { reply, rest } => {
                        input.reply = reply;
                        input.upgraded = true;
                        // Small buffers: tungstenite allocates its read buffer up
                        // front, per connection; it grows for a big message and reads
                        // from the in-memory pipe are only copies.
                        let config = WebSocketConfig::default()
                            .read_buffer_size(512)
                            .write_buffer_size(0)
                            .max_write_buffer_size(64 * 1024)
                            .max_message_size(Some(MAX_MESSAGE))
                            .max_frame_size(Some(MAX_MESSAGE));
                        let ws =
                            WebSocket::from_raw_socket(Pipe::default(), Role::Server, Some(config));
                        self.state = State::Open(Box::new(ws));
                        if !rest.is_empty() {
                            let more = self.take(&rest);
                            input.absorb(more);
                        }
                    }
                }
            }
            State::Open(ws) => {
                ws.get_mut().input.extend(data);
                let closed = read_messages(ws, &mut input);
                input.reply.append(&mut ws.get_mut().output);
                if closed {
                    input.close = true;
                    self.state = State::Done;
                }
            }
        }
        input
    }
}

impl WebInput {
    /// How many messages were read: text (frames) and binary.
    pub(crate) fn messages(&self) -> usize {
        self.count + self.binary_at.len()
    }

    fn absorb(&mut self, more: WebInput) {
        let base = self.messages();
        self.binary_at
            .extend(more.binary_at.iter().map(|&at| base + at));
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

    fn push_binary(&mut self) {
        self.binary_at.push(self.messages());
    }
}

/// Reads every complete message; answers whether the connection is over.
fn read_messages(ws: &mut WebSocket<Pipe>, input: &mut WebInput) -> bool {
    loop {
        match ws.read() {
            Ok(Message::Text(text)) => input.push_frame(text.as_bytes()),
            Ok(Message::Binary(_)) => input.push_binary(),
            // Pongs are answered by tungstenite (queued in the pipe's output).
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
            Ok(Message::Close(_)) => {
                // The close reply is queued; tungstenite reports the end next.
                let _ = ws.flush();
            }
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                let _ = ws.flush();
                return false;
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
                let _ = ws.close(Some(CloseFrame {
                    code,
                    reason: reason.into(),
                }));
                let _ = ws.flush();
                return true;
            }
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
    Upgrade { reply: Vec<u8>, rest: Vec<u8> },
}

/// Answers a complete HTTP request in `buf`, if there is one.
fn answer_http(buf: &[u8], policy: &WebPolicy) -> Http {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    let consumed = match request.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Http::Incomplete,
        Err(_) => {
            return Http::Respond(response(400, "Bad Request", "text/plain", b"bad request\n"));
        }
    };
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
    };
    if request.method != Some("GET") {
        return Http::Respond(response(
            405,
            "Method Not Allowed",
            "text/plain",
            b"only GET\n",
        ));
    }
    let path = request.path.unwrap_or("/");
    let path = path.split('?').next().unwrap_or(path);
    match path {
        "/" | "/index.html" => Http::Respond(response(
            200,
            "OK",
            "text/html; charset=utf-8",
            PAGE.as_bytes(),
        )),
        "/app.js" => Http::Respond(response(
            200,
            "OK",
            "text/javascript; charset=utf-8",
            SCRIPT.as_bytes(),
        )),
        "/app.css" => Http::Respond(response(
            200,
            "OK",
            "text/css; charset=utf-8",
            STYLE.as_bytes(),
        )),
        "/ws" => {
            let upgrade = header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
            let connection = header("connection").is_some_and(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            });
            let version = header("sec-websocket-version") == Some("13");
            let Some(key) =
                header("sec-websocket-key").filter(|_| upgrade && connection && version)
            else {
                return Http::Respond(response(
                    400,
                    "Bad Request",
                    "text/plain",
                    b"a WebSocket handshake is expected here\n",
                ));
            };
            let host = header("host").unwrap_or("");
            let origin = header("origin");
            let allowed = origin.is_some_and(|origin| {
                origin == format!("http://{host}")
                    || origin == format!("https://{host}")
                    || policy.allowed_origins.iter().any(|o| o == origin)
            });
            if !allowed {
                tracing::info!(
                    origin = origin.unwrap_or("(none)"),
                    host,
                    "web socket refused: foreign origin"
                );
                return Http::Respond(response(
                    403,
                    "Forbidden",
                    "text/plain",
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
            }
        }
        _ => Http::Respond(response(404, "Not Found", "text/plain", b"not found\n")),
    }
}

/// A complete response that closes the connection.
fn response(status: u16, reason: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
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

    fn side() -> WebSide {
        WebSide::new(std::sync::Arc::new(WebPolicy::default()))
    }

    fn handshake(origin: Option<&str>) -> String {
        let origin = origin
            .map(|o| format!("Origin: {o}\r\n"))
            .unwrap_or_default();
        format!(
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origin}\r\n"
        )
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
            Some("http://127.0.0.1:9999"),
        ] {
            let mut web = side();
            let out = web.take(handshake(origin).as_bytes());
            assert!(
                String::from_utf8_lossy(&out.reply).starts_with("HTTP/1.1 403 "),
                "{origin:?}"
            );
            assert!(out.close && !web.is_open());
        }
        let mut web = WebSide::new(std::sync::Arc::new(WebPolicy {
            allowed_origins: vec!["https://chat.example.org".into()],
        }));
        let out = web.take(handshake(Some("https://chat.example.org")).as_bytes());
        assert!(out.upgraded, "an allowed origin");
    }

    #[test]
    fn pages_and_errors() {
        for (request, status) in [
            ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "200"),
            ("GET /app.js HTTP/1.1\r\nHost: x\r\n\r\n", "200"),
            ("GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n", "404"),
            ("POST / HTTP/1.1\r\nHost: x\r\n\r\n", "405"),
            ("GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", "400"),
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

    #[test]
    fn messages_become_frames_fragments_are_joined_and_binary_is_placed() {
        let mut bytes = handshake(Some("http://127.0.0.1:8080")).into_bytes();
        bytes.extend(client_frame(0x2, true, b"\xff")); // binary first
        bytes.extend(client_frame(0x1, true, br#"{"type":"CSRooms"}"#));
        bytes.extend(client_frame(0x1, false, b"{\"type\":"));
        bytes.extend(client_frame(0x9, true, b"ping!")); // a ping between fragments
        bytes.extend(client_frame(0x0, true, b"\"CSLeaveRoom\"}"));
        bytes.extend(client_frame(0x2, true, b"\x00\x01"));
        bytes.extend(client_frame(0x2, false, b"")); // a fragmented binary message
        bytes.extend(client_frame(0x0, true, b"\x02"));
        bytes.extend(client_frame(0x1, true, b""));
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
            // binary, Rooms, LeaveRoom, binary, binary, "", binary
            assert_eq!(all.binary_at, [0, 3, 4, 6]);
            assert_eq!(all.messages(), 7);
        }
        // The pong: an unmasked frame echoing the ping's payload.
        assert!(
            all.reply.windows(7).any(|w| w == b"\x8a\x05ping!"),
            "{:?}",
            all.reply
        );
        assert!(!all.close);
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
        ] {
            let mut web = side();
            web.take(handshake(Some("http://127.0.0.1:8080")).as_bytes());
            let out = web.take(&frame);
            assert!(out.close, "{code}");
            let reply = out.reply;
            assert!(
                reply.len() >= 4 && reply[0] == 0x88,
                "a close frame: {reply:?}"
            );
            assert_eq!(u16::from_be_bytes([reply[2], reply[3]]), code);
        }
    }

    #[test]
    fn a_close_is_answered_and_ends_the_connection() {
        let mut web = side();
        web.take(handshake(Some("http://127.0.0.1:8080")).as_bytes());
        let out = web.take(&client_frame(0x8, true, &1000u16.to_be_bytes()));
        assert!(out.close);
        assert_eq!(&out.reply[..4], b"\x88\x02\x03\xe8");
    }

    #[test]
    fn text_frame_headers() {
        assert_eq!(&text_frame_header(5)[..], b"\x81\x05");
        assert_eq!(&text_frame_header(300)[..], b"\x81\x7e\x01\x2c");
    }
}
