//! A slow consumer: one member of a room never reads while two others flood the room.
//!
//! The server must cut the stalled client off once its outbound queue passes
//! `outbound_cap` (here 256 KiB, so it happens early), and nobody else may notice more
//! than its departure:
//!
//! * the stalled client's connection ends (EOF or reset; what it got before is an
//!   in-order prefix of the room's traffic, possibly ending mid-frame);
//! * the room gets `[slow] 님이 퇴장했습니다.` exactly once, `/rooms` no longer lists it;
//! * the flooders receive every chat of each other, in order, none lost;
//! * `chat_slow_consumer_disconnects_total` is 1;
//! * memory stays bounded: the server runs in this process, and 32 MiB are flooded at
//!   the stalled client. The kernel's socket buffers take a few MiB (not counted in
//!   VmRSS); without the cap the server's queue for it would hold the rest, so VmRSS
//!   growing by less than 16 MiB over the flood (about 2 MiB is typical) shows that
//!   neither the stalled client's queue nor anything else kept the flood.
//!
//! The flooders pace themselves (each keeps at most [`WINDOW`] chats unread by the
//! other), so the healthy readers are never near the cap themselves, however slow the
//! machine. Memory is process-wide, so nothing else in this file runs in parallel.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Instant;

use chat_proto::{Response, WireFormat};
use chat_server::ServerConfig;
use support::*;

const OUTBOUND_CAP: usize = 256 * 1024;
/// Bytes of each chat text.
const CHAT_BYTES: usize = 16 * 1024;
/// Chats each flooder sends: 2 × 1,024 × 16 KiB = 32 MiB at the stalled client.
const CHATS: usize = 1024;
/// Chats a flooder may have sent that the other flooder has not read yet.
const WINDOW: usize = 4;
/// The bound on VmRSS growth (see the module doc).
const RSS_GROWTH_BOUND: u64 = 16 * 1024 * 1024;

fn text(n: usize, from: &str) -> String {
    let mut text = format!("{n} from {from} ");
    text.extend(std::iter::repeat_n('x', CHAT_BYTES - text.len()));
    text
}

#[test]
fn a_reader_that_stops_is_cut_off_and_nobody_else_notices() {
    let server = TestServer::with_config(ServerConfig {
        outbound_cap: OUTBOUND_CAP,
        ..config_with_metrics(4)
    });
    let metrics = server.metrics_addr();

    let mut slow = server.client(WireFormat::Json);
    slow.set_name("slow");
    slow.create("flood");
    let mut a = server.client(WireFormat::Json);
    let mut b = server.client(WireFormat::Protobuf);
    a.set_name("a");
    b.set_name("b");
    a.join(1, "flood");
    b.join(1, "flood");
    a.expect_system(&entered("b"));
    // From here on `slow` reads nothing until it has been cut off.

    let rss_before = vm_rss_bytes();
    // Chats each flooder has read from the other: the other's pacing.
    let read_by = [Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0))];
    let flooders = [(a, "a", "b"), (b, "b", "a")]
        .into_iter()
        .enumerate()
        .map(|(me, (client, name, other))| {
            let mine = Arc::clone(&read_by[me]);
            let theirs = Arc::clone(&read_by[1 - me]);
            thread::spawn(move || flood(client, name, other, &mine, &theirs))
        })
        .collect::<Vec<_>>();
    let mut flooders: Vec<Client> = flooders
        .into_iter()
        .map(|t| t.join().expect("a flooder saw something wrong"))
        .collect();
    let rss_after = vm_rss_bytes();

    for flooder in &mut flooders {
        flooder.expect_silence();
    }
    assert_eq!(flooders[0].rooms(), vec![room(1, "flood", &["a", "b"])]);
    metric_eventually(metrics, "chat_slow_consumer_disconnects_total", 1);
    metric_eventually(metrics, "chat_connections", 2);

    // The stalled client: cut off, and what it did get is an in-order prefix.
    let drained = slow.drain_until_closed();
    let mut next = [0usize; 2];
    let mut messages = drained.responses.into_iter();
    assert_eq!(messages.next(), Some(Response::system(entered("a"))));
    assert_eq!(messages.next(), Some(Response::system(entered("b"))));
    for message in messages {
        let Response::Chat { member, text: got } = message else {
            panic!("slow: expected only chats, got {message:?}");
        };
        let who = usize::from(member == "b");
        assert!(
            got == text(next[who], &member),
            "slow: chat from {member} out of order (expected #{})",
            next[who]
        );
        next[who] += 1;
    }
    assert!(
        next[0] + next[1] < 2 * CHATS,
        "the stalled client got everything: it was never cut off"
    );

    let growth = rss_after.saturating_sub(rss_before);
    assert!(
        growth < RSS_GROWTH_BOUND,
        "VmRSS grew by {} KiB while 32 MiB were flooded at a stalled client \
         (bound {} KiB): something holds the flood",
        growth / 1024,
        RSS_GROWTH_BOUND / 1024
    );
    eprintln!(
        "slow consumer: VmRSS {} → {} KiB; the stalled client read {} chats before the cut ({})",
        rss_before / 1024,
        rss_after / 1024,
        next[0] + next[1],
        if drained.reset { "reset" } else { "EOF" },
    );
    server.stop().expect("run() returns Ok");
}

/// One flooder: a writer thread sends [`CHATS`] chats, paced by what the other
/// flooder has read; this thread reads the other's chats (in order, all of them) and
/// the stalled client's leave notice (exactly once).
fn flood(
    mut client: Client,
    me: &'static str,
    other: &'static str,
    mine: &AtomicUsize,
    theirs: &Arc<AtomicUsize>,
) -> Client {
    let mut stream = client.stream();
    let format = client.format();
    let theirs = Arc::clone(theirs);
    let writer = thread::spawn(move || {
        use std::io::Write;
        let deadline = Instant::now() + TIMEOUT * 3;
        for n in 0..CHATS {
            while n >= theirs.load(Ordering::Acquire) + WINDOW {
                assert!(Instant::now() < deadline, "{me}: {other} stopped reading");
                thread::yield_now();
            }
            let chat = chat_proto::Request::Chat { text: text(n, me) };
            stream
                .write_all(&encode(format, &chat))
                .expect("send a chat");
        }
    });

    let mut slow_left = false;
    let mut got = 0;
    while got < CHATS || !slow_left {
        match client.recv() {
            Response::Chat { member, text: t } => {
                assert_eq!(member, other, "{me}: a chat from {member}");
                assert!(t == text(got, other), "{me}: chat #{got} of {other} wrong");
                got += 1;
                mine.store(got, Ordering::Release);
            }
            Response::SystemMessage { text } if text == left("slow") => {
                assert!(!slow_left, "{me}: two leave notices for slow");
                slow_left = true;
            }
            other => panic!("{me}: unexpected {other:?}"),
        }
    }
    writer.join().expect("the writer failed");
    client
}
