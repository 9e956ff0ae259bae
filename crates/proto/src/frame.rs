//! Framing: bytes ↔ frames.
//!
//! Every message on the wire is one or more frames: a 2-byte big-endian unsigned
//! length, then that many payload bytes. Zero-length frames are legal (an empty
//! protobuf body is one). Because the length is a `u16`, no frame can be larger than
//! [`MAX_FRAME_LEN`] bytes, so a reader's buffer for one incomplete frame is bounded by
//! construction: nothing a peer sends can make it grow past that.
//!
//! This module does not know what a payload means; see [`crate::codec`] for that.
//! "Incomplete" is never an error here: [`check`] answers `None` and the caller waits
//! for more bytes.

use std::fmt;

/// Bytes of the length header in front of every payload.
pub const HEADER_LEN: usize = 2;

/// The largest payload a frame can carry (the header is a `u16`).
pub const MAX_PAYLOAD: usize = u16::MAX as usize;

/// The largest frame on the wire, header included.
pub const MAX_FRAME_LEN: usize = HEADER_LEN + MAX_PAYLOAD;

/// A payload that does not fit in one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameTooLarge {
    /// The payload length that was refused.
    pub len: usize,
}

impl fmt::Display for FrameTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "payload of {} bytes exceeds the frame limit of {MAX_PAYLOAD} bytes",
            self.len
        )
    }
}

impl std::error::Error for FrameTooLarge {}

/// If `buf` starts with a complete frame, returns its total length (header included).
///
/// Cheap: it looks at the header only.
#[inline]
pub fn check(buf: &[u8]) -> Option<usize> {
    let header: [u8; HEADER_LEN] = buf.get(..HEADER_LEN)?.try_into().ok()?;
    let total = HEADER_LEN + usize::from(u16::from_be_bytes(header));
    (buf.len() >= total).then_some(total)
}

/// Appends one frame carrying `payload` to `out`.
pub fn write_frame(out: &mut Vec<u8>, payload: &[u8]) -> Result<(), FrameTooLarge> {
    let len = u16::try_from(payload.len()).map_err(|_| FrameTooLarge { len: payload.len() })?;
    out.reserve(HEADER_LEN + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(())
}

/// Starts a frame whose payload will be written straight into `out` (no copy).
///
/// Returns the position of the header; pass it to [`finish_frame`] once the payload
/// has been appended.
#[inline]
pub fn begin_frame(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    start
}

/// Completes a frame started with [`begin_frame`] by writing its length header.
///
/// If the payload is too large, `out` is truncated back to where the frame started, so
/// a failed encode never leaves half a frame behind.
pub fn finish_frame(out: &mut Vec<u8>, start: usize) -> Result<(), FrameTooLarge> {
    let len = out.len() - start - HEADER_LEN;
    match u16::try_from(len) {
        Ok(len) => {
            out[start..start + HEADER_LEN].copy_from_slice(&len.to_be_bytes());
            Ok(())
        }
        Err(_) => {
            out.truncate(start);
            Err(FrameTooLarge { len })
        }
    }
}

/// Iterates over the payloads of the complete frames at the front of a byte slice.
///
/// After the iterator is exhausted, [`Frames::consumed`] tells how many bytes were
/// whole frames; the rest is the start of an incomplete frame.
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    buf: &'a [u8],
    consumed: usize,
}

impl<'a> Frames<'a> {
    /// Frames found in `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, consumed: 0 }
    }

    /// Bytes taken up by the frames yielded so far.
    pub fn consumed(&self) -> usize {
        self.consumed
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = &self.buf[self.consumed..];
        let total = check(rest)?;
        self.consumed += total;
        Some(&rest[HEADER_LEN..total])
    }
}

/// A growable receive buffer that hands out whole frames.
///
/// For blocking or event-loop peers (the client, the load generator, tests): append
/// what the socket gave with [`FrameBuf::extend`] or [`FrameBuf::read_from`], then take
/// frames with [`FrameBuf::next_frame`] until it answers `None`.
///
/// The bytes `buf[start..end]` are received and not yet handed out; `buf[end..]` is
/// initialised spare room, so reading into it zeroes nothing (only growth does, once).
#[derive(Debug, Default)]
pub struct FrameBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl FrameBuf {
    /// Spare room guaranteed to [`FrameBuf::read_from`].
    const READ_CHUNK: usize = 64 * 1024;

    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.make_room(bytes.len());
        self.buf[self.end..self.end + bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
    }

    /// Reads once from `reader` into the buffer; returns what `read` returned
    /// (`Ok(0)` is end of stream).
    pub fn read_from<R: std::io::Read>(&mut self, reader: &mut R) -> std::io::Result<usize> {
        self.make_room(Self::READ_CHUNK);
        let n = reader.read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok(n)
    }

    /// The next complete frame's payload, if one has arrived.
    pub fn next_frame(&mut self) -> Option<&[u8]> {
        let rest = &self.buf[self.start..self.end];
        let total = check(rest)?;
        let payload = self.start + HEADER_LEN..self.start + total;
        self.start += total;
        Some(&self.buf[payload])
    }

    /// Bytes received but not yet handed out as frames.
    pub fn pending(&self) -> usize {
        self.end - self.start
    }

    /// Moves pending bytes to the front and makes sure `room` bytes fit after them.
    fn make_room(&mut self, room: usize) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < self.end + room {
            self.buf.resize(self.end + room, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_needs_header_and_payload() {
        assert_eq!(check(&[]), None);
        assert_eq!(check(&[0]), None);
        assert_eq!(check(&[0, 0]), Some(2));
        assert_eq!(check(&[0, 3, b'a', b'b']), None);
        assert_eq!(check(&[0, 3, b'a', b'b', b'c', 9]), Some(5));
        assert_eq!(check(&[1, 0]), None, "256-byte payload, none present");
    }

    #[test]
    fn write_frame_is_big_endian() {
        let mut out = Vec::new();
        write_frame(&mut out, &[7; 300]).unwrap();
        assert_eq!(&out[..2], &[1, 44]);
        assert_eq!(out.len(), 302);
        write_frame(&mut out, &[]).unwrap();
        assert_eq!(&out[302..], &[0, 0]);
    }

    #[test]
    fn oversized_payload_is_refused_and_leaves_nothing() {
        let mut out = vec![9];
        assert_eq!(
            write_frame(&mut out, &vec![0; MAX_PAYLOAD + 1]),
            Err(FrameTooLarge {
                len: MAX_PAYLOAD + 1
            })
        );
        let start = begin_frame(&mut out);
        out.extend(std::iter::repeat_n(1, MAX_PAYLOAD + 1));
        assert!(finish_frame(&mut out, start).is_err());
        assert_eq!(out, vec![9]);
        write_frame(&mut out, &vec![0; MAX_PAYLOAD]).unwrap();
        assert_eq!(&out[1..3], &[0xff, 0xff]);
    }

    #[test]
    fn frames_iterates_and_reports_remainder() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"ab").unwrap();
        write_frame(&mut buf, b"").unwrap();
        write_frame(&mut buf, b"xyz").unwrap();
        buf.extend_from_slice(&[0, 5, b'p']);
        let mut frames = Frames::new(&buf);
        let got: Vec<&[u8]> = frames.by_ref().collect();
        assert_eq!(got, vec![&b"ab"[..], b"", b"xyz"]);
        assert_eq!(frames.consumed(), buf.len() - 3);
    }

    #[test]
    fn frame_buf_reassembles_byte_by_byte() {
        let mut wire = Vec::new();
        write_frame(&mut wire, b"hello").unwrap();
        write_frame(&mut wire, b"").unwrap();
        let mut fb = FrameBuf::new();
        let mut got = Vec::new();
        for byte in &wire {
            fb.extend(std::slice::from_ref(byte));
            while let Some(frame) = fb.next_frame() {
                got.push(frame.to_vec());
            }
        }
        assert_eq!(got, vec![b"hello".to_vec(), Vec::new()]);
        assert_eq!(fb.pending(), 0);
    }

    #[test]
    fn frame_buf_reads_and_keeps_partial_frames() {
        let mut wire = Vec::new();
        write_frame(&mut wire, b"one").unwrap();
        write_frame(&mut wire, &[7; 1000]).unwrap();
        let mut fb = FrameBuf::new();
        let mut reader = &wire[..600];
        assert_eq!(fb.read_from(&mut reader).unwrap(), 600);
        assert_eq!(fb.next_frame(), Some(&b"one"[..]));
        assert_eq!(fb.next_frame(), None);
        assert_eq!(fb.pending(), 595);
        let mut reader = &wire[600..];
        assert_eq!(fb.read_from(&mut reader).unwrap(), wire.len() - 600);
        assert_eq!(fb.next_frame(), Some(&[7; 1000][..]));
        assert_eq!(fb.pending(), 0);
        assert_eq!(fb.read_from(&mut &[][..]).unwrap(), 0);
    }
}
