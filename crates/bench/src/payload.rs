//! The chat text format: what one benchmark chat carries, written and read back.
//!
//! A chat text is `b<sender>:<seq>:<t_ns>:<step>` followed, when `--pad=B` is given,
//! by exactly `B` more bytes: a space and `B - 1` times `x`. For example
//! `b17:4:1250000:0 xxxx` is sender 17's fifth chat (sequence numbers start at 0) of
//! step 0, meant to be sent 1.25 ms after the bench started, with 5 bytes of padding.
//!
//! * `sender` is the bench's own client index, not the server's member name, so a
//!   receiver can check membership and order without knowing names.
//! * `t_ns` is the *intended* send time in nanoseconds since the bench's start
//!   `Instant`: one process both sends and receives, so no clock sync is needed, and
//!   latency counts from when the chat should have left, not from when it did.
//! * `step` tells find-max steps apart, so a late chat of an earlier step is never
//!   mistaken for one of the current step.
//!
//! This module only formats and parses; it does not decide whether a chat was
//! expected (that is [`crate::tracker`]).

use std::fmt::Write as _;

/// What a benchmark chat says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The sending client's index in the bench.
    pub sender: u32,
    /// The sender's sequence number, from 0, without gaps.
    pub seq: u32,
    /// Intended send time, nanoseconds since the bench's start.
    pub t_ns: u64,
    /// The run (find-max step) this chat belongs to.
    pub step: u32,
}

/// A parsed chat text: the stamp and how many padding bytes followed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed {
    /// Who sent the chat, which one, when and in which step.
    pub stamp: Stamp,
    /// Bytes after the stamp (the space included); `--pad` as sent when intact.
    pub pad_len: usize,
}

/// Writes the chat text for `stamp` with `pad` padding bytes into `out` (cleared
/// first, so one `String` can be reused for every chat without allocating).
pub fn write_text(out: &mut String, stamp: Stamp, pad: usize) {
    out.clear();
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "b{}:{}:{}:{}",
        stamp.sender, stamp.seq, stamp.t_ns, stamp.step
    );
    if pad > 0 {
        out.push(' ');
        out.extend(std::iter::repeat_n('x', pad - 1));
    }
}

/// Reads a chat text back. `None` when it is not a benchmark chat, or the stamp is
/// damaged; padding is only measured, its content is checked to be `x`s.
pub fn parse(text: &str) -> Option<Parsed> {
    let rest = text.strip_prefix('b')?;
    let (head, pad_len) = match rest.find(' ') {
        Some(space) => {
            let pad = &rest[space + 1..];
            if !pad.bytes().all(|b| b == b'x') {
                return None;
            }
            (&rest[..space], rest.len() - space)
        }
        None => (rest, 0),
    };
    let mut fields = head.split(':');
    let sender = number(fields.next()?)?;
    let seq = number(fields.next()?)?;
    let t_ns = number(fields.next()?)?;
    let step = number(fields.next()?)?;
    if fields.next().is_some() {
        return None;
    }
    Some(Parsed {
        stamp: Stamp {
            sender,
            seq,
            t_ns,
            step,
        },
        pad_len,
    })
}

/// Plain decimal digits only: `str::parse` would also take a leading `+`.
fn number<T: std::str::FromStr>(field: &str) -> Option<T> {
    if field.is_empty() || !field.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    field.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAMP: Stamp = Stamp {
        sender: 17,
        seq: 4,
        t_ns: 1_250_000,
        step: 0,
    };

    #[test]
    fn writes_the_documented_format() {
        let mut text = String::from("old contents");
        write_text(&mut text, STAMP, 0);
        assert_eq!(text, "b17:4:1250000:0");
        write_text(&mut text, STAMP, 5);
        assert_eq!(text, "b17:4:1250000:0 xxxx");
        write_text(&mut text, STAMP, 1);
        assert_eq!(text, "b17:4:1250000:0 ");
    }

    #[test]
    fn round_trips_with_any_padding() {
        let mut text = String::new();
        for pad in [0, 1, 2, 100, 4000] {
            let stamp = Stamp {
                sender: u32::MAX,
                seq: 123_456,
                t_ns: u64::MAX,
                step: 7,
            };
            write_text(&mut text, stamp, pad);
            assert_eq!(
                text.len(),
                "b4294967295:123456:18446744073709551615:7".len() + pad
            );
            assert_eq!(
                parse(&text),
                Some(Parsed {
                    stamp,
                    pad_len: pad
                })
            );
        }
    }

    #[test]
    fn refuses_what_the_bench_did_not_write() {
        for text in [
            "",
            "hello",
            "b",
            "b1:2:3",
            "b1:2:3:4:5",
            "b1:2:x:4",
            "b+1:2:3:4",
            "b1::3:4",
            "c1:2:3:4",
            "b1:2:3:4 xxyx",
            "b99999999999:2:3:4",
            "안녕하세요",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }
}
