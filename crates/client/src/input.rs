//! Standard input, read without blocking the event loop.
//!
//! [`Stdin`] reads raw bytes from descriptor 0 — never through `std::io::Stdin`'s own
//! buffer, which would hide bytes from `poll` — one `read` per readiness event.
//! [`LineSplitter`] turns those bytes into lines when input is a pipe, a file or a
//! terminal in ordinary (cooked) mode; a terminal in raw mode goes to
//! [`crate::editor`] instead.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, RawFd};

/// Descriptor 0, for reading.
#[derive(Debug)]
pub struct Stdin {
    /// A duplicate of descriptor 0 (same open file), so reads are plain `read(2)`s.
    file: File,
}

impl Stdin {
    /// Opens standard input for unbuffered reads.
    pub fn open() -> io::Result<Self> {
        let fd = io::stdin().as_fd().try_clone_to_owned()?;
        Ok(Self {
            file: File::from(fd),
        })
    }

    /// The descriptor to poll.
    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// One `read`: `Ok(0)` is end of input. Retries when interrupted by a signal.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.file.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                result => return result,
            }
        }
    }
}

/// An input line that is not UTF-8; the reference client ignores such lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotUtf8;

/// Splits a byte stream into lines (`\n`-terminated; a `\r` before it is left for the
/// command parser's trim).
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    /// An empty splitter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes bytes; returns the lines they completed, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Result<String, NotUtf8>> {
        let mut lines = Vec::new();
        let mut rest = bytes;
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&rest[..newline]);
            lines.push(take_line(&mut self.partial));
            rest = &rest[newline + 1..];
        }
        self.partial.extend_from_slice(rest);
        lines
    }

    /// At end of input: the last line if it had no line ending (Python's `readline`
    /// returns it too).
    pub fn finish(&mut self) -> Option<Result<String, NotUtf8>> {
        (!self.partial.is_empty()).then(|| take_line(&mut self.partial))
    }
}

fn take_line(partial: &mut Vec<u8>) -> Result<String, NotUtf8> {
    String::from_utf8(std::mem::take(partial)).map_err(|_| NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_reads() {
        let mut s = LineSplitter::new();
        assert_eq!(s.push(b"/na"), vec![]);
        assert_eq!(
            s.push(b"me a\r\nhi\n\nlast"),
            vec![
                Ok("/name a\r".to_owned()),
                Ok("hi".to_owned()),
                Ok(String::new())
            ]
        );
        assert_eq!(s.finish(), Some(Ok("last".to_owned())));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn utf8_split_across_reads_is_kept() {
        let mut s = LineSplitter::new();
        let bytes = "안녕\n".as_bytes();
        assert_eq!(s.push(&bytes[..2]), vec![]);
        assert_eq!(s.push(&bytes[2..]), vec![Ok("안녕".to_owned())]);
    }

    #[test]
    fn invalid_utf8_lines_are_flagged_alone() {
        let mut s = LineSplitter::new();
        assert_eq!(
            s.push(b"\xff\xfe\nok\n"),
            vec![Err(NotUtf8), Ok("ok".to_owned())]
        );
    }
}
