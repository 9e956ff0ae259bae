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
//! This module does not know what the messages mean, nor which phase of the run it is
//! in.

use std::io::{self, Read, Write};
use std::time::Instant;

use chat_proto::codec::{DecodeError, ResponseDecoder, WireFormat, encode_request};
use chat_proto::frame::Frames;
use chat_proto::{EncodeError, Request, Response};
use mio::net::TcpStream;

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
        }
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
        encode_request(self.format, request, &mut self.out)
    }

    /// Bytes queued but not yet written.
    pub fn unsent(&self) -> usize {
        self.out.len() - self.written
    }

    /// Writes queued bytes until they are all gone or the socket is full.
    /// `Ok(true)` when nothing is left.
    pub fn flush(&mut self) -> io::Result<bool> {
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
        F: FnMut(Result<Response<'static>, DecodeError>, Instant),
    {
        loop {
            match self.stream.read(scratch) {
                Ok(0) => return Ok(ReadEnd::Eof),
                Ok(n) => {
                    let now = Instant::now();
                    self.take_frames(&scratch[..n], |m| on_message(m, now));
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
        F: FnMut(Result<Response<'static>, DecodeError>),
    {
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
                conn.take_frames(&wire[..cut], |m| got.push(m.unwrap()));
                conn.take_frames(&wire[cut..], |m| got.push(m.unwrap()));
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
                .read(&mut scratch, true, |m, _| got.push(m.unwrap()))
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
