//! The frame splitter under arbitrary bytes and arbitrary chunkings.
//!
//! # Input layout
//!
//! `data[0] & 0x0f` is a count `k`; the next `k` bytes are chunk sizes (used in turn,
//! cycling; `0` means an empty read); the rest is the byte stream. With `k = 0` the
//! stream arrives in one piece. A seed for this target is therefore `00` followed by
//! wire bytes.
//!
//! # Properties
//!
//! [`Frames`] over the whole stream is the reference. Then, fed in the chosen chunks,
//! in one piece and one byte at a time:
//!
//! * [`FrameBuf`] hands out, after each piece, exactly the reference frames that end
//!   inside what has been fed, with the same payloads, and `pending()` is the bytes
//!   after the last of them;
//! * the server's pattern (`take_bytes` + `count_frames` in `crates/server/src/
//!   event_handler.rs`: a `partial` buffer, [`Frames::consumed`] and a drain) delivers the same
//!   bytes as whole frames and keeps exactly the incomplete tail.
//!
//! And the reference itself is sound: re-framing its payloads rebuilds the consumed
//! prefix byte for byte, and what is left is not a complete frame.

use chat_proto::frame::{self, FrameBuf, Frames, HEADER_LEN, MAX_PAYLOAD};

/// Splits fuzz input into chunk sizes and the stream (see the module docs).
pub fn parse(data: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return (Vec::new(), &[]);
    };
    let k = usize::from(first & 0x0f).min(rest.len());
    let (sizes, stream) = rest.split_at(k);
    (sizes.iter().map(|&s| usize::from(s)).collect(), stream)
}

/// Runs every check on one fuzz input.
pub fn check(data: &[u8]) {
    let (sizes, stream) = parse(data);
    let reference = reference_frames(stream);
    let pieces = pieces(stream.len(), &sizes);
    check_frame_buf(stream, &pieces, &reference);
    check_server_pattern(stream, &pieces, &reference);
    check_frame_buf(stream, &[stream.len()], &reference);
    let byte_at_a_time: Vec<usize> = (1..=stream.len()).collect();
    check_frame_buf(stream, &byte_at_a_time, &reference);
    check_server_pattern(stream, &byte_at_a_time, &reference);
}

/// The end offsets of the pieces: cycles through `sizes` (zero = an empty read) until
/// the stream is covered. Always ends with `len`.
fn pieces(len: usize, sizes: &[usize]) -> Vec<usize> {
    let mut ends = Vec::new();
    if sizes.iter().sum::<usize>() == 0 {
        // No progress possible from these sizes (or none given): one piece, after
        // the empty reads they ask for.
        ends.extend(sizes.iter().map(|_| 0));
        ends.push(len);
        return ends;
    }
    let mut at = 0;
    // Bounded: each full cycle advances by at least one byte.
    for size in sizes.iter().cycle() {
        at = (at + size).min(len);
        ends.push(at);
        if at == len {
            break;
        }
    }
    ends
}

/// The reference split: the end offset of every complete frame, checked for soundness.
fn reference_frames(stream: &[u8]) -> Vec<usize> {
    let mut frames = Frames::new(stream);
    let mut ends = Vec::new();
    let mut rebuilt = Vec::new();
    let mut last = 0;
    while let Some(payload) = frames.next() {
        assert!(payload.len() <= MAX_PAYLOAD);
        let end = frames.consumed();
        assert_eq!(
            end - last,
            HEADER_LEN + payload.len(),
            "consumed moves by one frame"
        );
        assert_eq!(frame::check(&stream[last..]), Some(end - last));
        frame::write_frame(&mut rebuilt, payload).expect("a received payload fits a frame");
        ends.push(end);
        last = end;
    }
    assert_eq!(frames.consumed(), last);
    assert_eq!(
        rebuilt,
        &stream[..last],
        "re-framing rebuilds the consumed prefix"
    );
    assert_eq!(
        frame::check(&stream[last..]),
        None,
        "the tail is incomplete"
    );
    assert!(
        frames.next().is_none(),
        "an exhausted Frames stays exhausted"
    );
    ends
}

/// [`FrameBuf`] fed the pieces ending at `ends` agrees with the reference after each.
fn check_frame_buf(stream: &[u8], ends: &[usize], reference: &[usize]) {
    let mut buf = FrameBuf::new();
    let mut fed = 0;
    let mut taken = 0; // reference frames handed out so far
    let mut due = 0; // reference frames complete in what has been fed
    for &end in ends {
        buf.extend(&stream[fed..end]);
        fed = end;
        // Bounded: each frame handed out is checked against the next reference frame.
        while let Some(payload) = buf.next_frame() {
            let frame_end = *reference
                .get(taken)
                .expect("no more frames than the reference");
            let frame_start = if taken == 0 { 0 } else { reference[taken - 1] };
            assert!(
                frame_end <= fed,
                "a frame handed out before it fully arrived"
            );
            assert_eq!(payload, &stream[frame_start + HEADER_LEN..frame_end]);
            taken += 1;
        }
        // Bounded by the reference's length; linear over the whole feed.
        while due < reference.len() && reference[due] <= fed {
            due += 1;
        }
        assert_eq!(taken, due, "every complete frame is handed out");
        let boundary = if taken == 0 { 0 } else { reference[taken - 1] };
        assert_eq!(
            buf.pending(),
            fed - boundary,
            "pending = bytes after the last frame"
        );
    }
    assert_eq!(fed, stream.len());
}

/// The server's splitting pattern, as in `event_handler.rs`: frames delivered as one byte
/// range with a count, the incomplete tail kept in `partial`.
///
/// Each step compares only what is new (delivered bytes, the tail's length) so that a
/// byte-at-a-time feed stays linear; the tail's content is compared at the end.
fn check_server_pattern(stream: &[u8], ends: &[usize], reference: &[usize]) {
    fn count_frames(data: &[u8]) -> (usize, usize) {
        let mut frames = Frames::new(data);
        let count = frames.by_ref().count();
        (frames.consumed(), count)
    }
    let mut partial: Vec<u8> = Vec::new();
    let mut delivered = 0; // bytes delivered as whole frames so far
    let mut count_total = 0;
    let mut due = 0;
    let mut fed = 0;
    for &end in ends {
        let data = &stream[fed..end];
        fed = end;
        // As `take_bytes`: deliver whole frames straight from the read when nothing
        // is pending, else from `partial`, then keep (or drain to) the tail.
        let (consumed, count) = if partial.is_empty() {
            let (consumed, count) = count_frames(data);
            check_delivery(stream, &mut delivered, &data[..consumed]);
            partial.extend_from_slice(&data[consumed..]);
            (consumed, count)
        } else {
            partial.extend_from_slice(data);
            let (consumed, count) = count_frames(&partial);
            check_delivery(stream, &mut delivered, &partial[..consumed]);
            partial.drain(..consumed);
            (consumed, count)
        };
        assert!(consumed <= fed);
        count_total += count;
        while due < reference.len() && reference[due] <= fed {
            due += 1;
        }
        assert_eq!(count_total, due, "frames delivered after {fed} bytes");
        let boundary = if due == 0 { 0 } else { reference[due - 1] };
        assert_eq!(delivered, boundary, "delivered bytes are whole frames");
        assert_eq!(
            partial.len(),
            fed - boundary,
            "partial is the incomplete tail"
        );
        assert!(
            partial.len() < frame::MAX_FRAME_LEN,
            "partial is bounded by one frame"
        );
    }
    assert_eq!(
        partial,
        &stream[delivered..],
        "partial is the incomplete tail"
    );
}

/// Checks that `frames`, delivered next, are the stream's next bytes.
fn check_delivery(stream: &[u8], delivered: &mut usize, frames: &[u8]) {
    assert_eq!(frames, &stream[*delivered..*delivered + frames.len()]);
    *delivered += frames.len();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_cover_the_stream_and_terminate() {
        assert_eq!(pieces(5, &[]), vec![5]);
        assert_eq!(pieces(5, &[0, 0]), vec![0, 0, 5]);
        assert_eq!(pieces(5, &[2]), vec![2, 4, 5]);
        assert_eq!(pieces(5, &[0, 3]), vec![0, 3, 3, 5]);
        assert_eq!(pieces(0, &[1]), vec![0]);
    }

    #[test]
    fn parse_takes_the_sizes_first() {
        assert_eq!(parse(&[]), (vec![], &[][..]));
        assert_eq!(parse(&[0x02, 1, 2, 9, 9]), (vec![1, 2], &[9, 9][..]));
        assert_eq!(
            parse(&[0x0f, 1]),
            (vec![1], &[][..]),
            "k is capped by the input"
        );
    }

    #[test]
    fn small_inputs() {
        for data in [
            &[][..],
            &[0],
            &[0, 0, 0],
            &[0, 0, 0, 0, 1],
            &[1, 1, 0, 2, b'a', b'b', 0],
            &[3, 0, 0, 1, 0xff, 0xff, 1],
        ] {
            check(data);
        }
    }
}
