//! Joins and leaves racing with chat, and connection slots reused by new clients.
//!
//! **The race.** Three *stayers* sit in one room and chat in batches for as long as
//! four *churners* keep joining and leaving it; each churn round is one `write` of
//! `/join`, a chat and `/leave`, so the server handles them back to back while the
//! stayers' chats are being fanned out. The README promises that a room's notices are
//! queued under its lock, so every member sees one order of events. What each stream
//! must satisfy:
//!
//! * a **churner** gets nothing from the room while it is out: between its own
//!   `방제[race] 대화 방에서 퇴장했습니다.` (or before its first entry) and its next
//!   `방제[race] 방에 입장했습니다.` no chat and no notice may arrive. While it is in,
//!   each stayer's chats arrive in order with no gap (consecutive numbers within one
//!   membership period), and no chat is seen twice across periods;
//! * a **stayer** is in the room throughout, so it sees everything: every chat of the
//!   other stayers (complete, in order), for each churner exactly `ROUNDS` entry and
//!   leave notices, alternating and starting with an entry, and each churner's chat
//!   exactly once *between* that churner's entry and leave notices.
//!
//! **Reused slots.** The reactor reuses connection slots and the kernel reuses
//! descriptors; a client that disconnects (cleanly, or dies mid-frame with or without
//! a reset) must leave nothing behind that a successor on the same slot inherits: the
//! successor, which never joins, must get no room traffic (checked with the `/rooms`
//! probe) and `/rooms` must not list the departed client.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Instant;

use chat_proto::{Request, Response, WireFormat};
use support::*;

const STAYERS: usize = 3;
const CHURNERS: usize = 4;
const ROUNDS: usize = 300;
/// Chats a stayer sends between two of its `/rooms` probes.
const BATCH: usize = 10;
const TITLE: &str = "race";

fn stayer(k: usize) -> String {
    format!("s{k}")
}

fn churner(k: usize) -> String {
    format!("c{k}")
}

fn entered_self() -> String {
    format!("방제[{TITLE}] 방에 입장했습니다.")
}

fn left_self() -> String {
    format!("방제[{TITLE}] 대화 방에서 퇴장했습니다.")
}

/// `"{n} from {name}"` → `(name, n)`.
fn parse_chat(text: &str) -> Option<(&str, usize)> {
    let (n, name) = text.split_once(" from ")?;
    Some((name, n.parse().ok()?))
}

#[test]
fn members_joining_and_leaving_never_see_chats_from_outside_their_membership() {
    let server = TestServer::start();
    let mut stayers: Vec<Client> = (0..STAYERS)
        .map(|k| {
            let mut c = server.client(WireFormat::ALL[k % 2]);
            c.set_name(&stayer(k));
            c
        })
        .collect();
    stayers[0].create(TITLE);
    for k in 1..STAYERS {
        stayers[k].join(1, TITLE);
        for earlier in &mut stayers[..k] {
            earlier.expect_system(&entered(&stayer(k)));
        }
    }
    let churners: Vec<Client> = (0..CHURNERS)
        .map(|k| {
            let mut c = server.client(WireFormat::ALL[(k + 1) % 2]);
            c.set_name(&churner(k));
            c
        })
        .collect();

    let churning_done = Arc::new(AtomicBool::new(false));
    let stayer_threads: Vec<_> = stayers
        .into_iter()
        .enumerate()
        .map(|(k, client)| {
            let done = Arc::clone(&churning_done);
            thread::spawn(move || stay(k, client, &done))
        })
        .collect();
    let churner_threads: Vec<_> = churners
        .into_iter()
        .enumerate()
        .map(|(k, client)| thread::spawn(move || churn(k, client)))
        .collect();
    let mut churners: Vec<Client> = churner_threads
        .into_iter()
        .map(|t| {
            t.join()
                .expect("a churner saw a chat from outside its membership")
        })
        .collect();
    churning_done.store(true, Ordering::SeqCst);
    let mut stayers: Vec<Client> = stayer_threads
        .into_iter()
        .map(|t| t.join().expect("a stayer saw a wrong stream"))
        .collect();

    for client in churners.iter_mut().chain(&mut stayers) {
        client.expect_silence();
    }
    assert_eq!(
        stayers[0].rooms(),
        vec![room(1, TITLE, &["s0", "s1", "s2"])]
    );
}

/// A churner: `ROUNDS` times, join + chat + leave in one write, then read up to its
/// own leave notice, checking the stream.
fn churn(k: usize, mut client: Client) -> Client {
    let me = churner(k);
    // The last chat seen from each stayer, and whether it was in the current period.
    let mut last_seen: HashMap<String, (usize, bool)> = HashMap::new();
    let mut last_churner_chat: HashMap<String, usize> = HashMap::new();
    for round in 0..ROUNDS {
        let mut burst = encode(client.format(), &Request::JoinRoom { room_id: 1 });
        let chat = Request::Chat {
            text: format!("{round} from {me}"),
        };
        burst.extend_from_slice(&encode(client.format(), &chat));
        burst.extend_from_slice(&encode(client.format(), &Request::LeaveRoom));
        client.send_raw(&burst);

        // Out of the room: the only thing that may come is our entry notice.
        match client.recv() {
            Response::SystemMessage { text } if text == entered_self() => {}
            other => panic!("{me}, round {round}: got {other:?} while out of the room"),
        }
        for seen in last_seen.values_mut() {
            seen.1 = false; // a new membership period
        }
        // In the room, until our leave notice.
        loop {
            match client.recv() {
                Response::SystemMessage { text } if text == left_self() => break,
                Response::SystemMessage { text } => {
                    let about_a_churner = text.strip_prefix("[c").is_some_and(|t| {
                        t.ends_with("] 님이 입장했습니다.") || t.ends_with("] 님이 퇴장했습니다.")
                    });
                    assert!(about_a_churner, "{me}: unexpected notice {text:?}");
                }
                Response::Chat { member, text } => {
                    let (from, n) = parse_chat(&text)
                        .filter(|(from, _)| *from == member)
                        .unwrap_or_else(|| panic!("{me}: odd chat {member}: {text:?}"));
                    if from.starts_with('s') {
                        match last_seen.insert(from.to_owned(), (n, true)) {
                            Some((last, true)) => assert_eq!(
                                n,
                                last + 1,
                                "{me}: a gap or reordering in {from}'s chats"
                            ),
                            Some((last, false)) => assert!(
                                n > last,
                                "{me}: {from}'s chat #{n} again or out of order (last #{last})"
                            ),
                            None => {}
                        }
                    } else {
                        let last = last_churner_chat.insert(from.to_owned(), n);
                        assert!(
                            last.is_none_or(|last| n > last),
                            "{me}: {from}'s chats out of order"
                        );
                    }
                }
                other => panic!("{me}: unexpected {other:?}"),
            }
        }
    }
    client
}

/// What a stayer knows about one churner from its own stream.
#[derive(Default)]
struct ChurnerSeen {
    in_room: bool,
    entries: usize,
    leaves: usize,
    chats: usize,
}

/// A stayer's view of the room, built from its stream and checked message by message.
struct StayerView {
    me: String,
    /// Next chat number expected from each other stayer.
    next: HashMap<String, usize>,
    /// Whether each other stayer's `end N` marker arrived.
    ended: HashMap<String, bool>,
    churners: HashMap<String, ChurnerSeen>,
}

impl StayerView {
    fn new(k: usize) -> Self {
        let next: HashMap<String, usize> = (0..STAYERS)
            .filter(|&j| j != k)
            .map(|j| (stayer(j), 0))
            .collect();
        StayerView {
            me: stayer(k),
            ended: next.keys().map(|s| (s.clone(), false)).collect(),
            next,
            churners: (0..CHURNERS)
                .map(|j| (churner(j), ChurnerSeen::default()))
                .collect(),
        }
    }

    /// Everything expected has arrived.
    fn complete(&self) -> bool {
        self.ended.values().all(|&e| e)
            && self
                .churners
                .values()
                .all(|c| c.entries == ROUNDS && c.leaves == ROUNDS && c.chats == ROUNDS)
    }

    /// Checks one message; answers whether it was the reply to our own probe.
    fn take(&mut self, message: Response<'static>) -> bool {
        let me = &self.me;
        match message {
            Response::RoomsResult { .. } => return true,
            Response::Hello { .. }
            | Response::History { .. }
            | Response::TimedChat { .. }
            | Response::Session { .. }
            | Response::Direct { .. }
            | Response::Topic { .. } => {
                panic!("{me}: an extension's message without a hello: {message:?}")
            }
            Response::Chat { member, text } => {
                let member = member.as_ref();
                if let Some(c) = self.churners.get_mut(member) {
                    assert!(c.in_room, "{me}: {member} chatted outside its membership");
                    assert_eq!(text, format!("{} from {member}", c.chats), "{me}");
                    c.chats += 1;
                } else if let Some(n) = text.strip_prefix("end ") {
                    assert_eq!(
                        n.parse().ok(),
                        self.next.get(member).copied(),
                        "{me}: {member}'s end"
                    );
                    self.ended.insert(member.to_owned(), true);
                } else {
                    let n = self
                        .next
                        .get_mut(member)
                        .unwrap_or_else(|| panic!("{me}: a chat from {member}"));
                    assert!(!self.ended[member], "{me}: {member} chatted after its end");
                    assert_eq!(
                        text,
                        format!("{n} from {member}"),
                        "{me}: a gap or reordering"
                    );
                    *n += 1;
                }
            }
            Response::SystemMessage { text } => {
                let (name, entering) = if let Some(t) = text.strip_suffix(" 님이 입장했습니다.")
                {
                    (t, true)
                } else if let Some(t) = text.strip_suffix(" 님이 퇴장했습니다.") {
                    (t, false)
                } else {
                    panic!("{me}: unexpected notice {text:?}")
                };
                let name = name.trim_start_matches('[').trim_end_matches(']');
                let c = self
                    .churners
                    .get_mut(name)
                    .unwrap_or_else(|| panic!("{me}: a notice about {name}: {text:?}"));
                assert_ne!(c.in_room, entering, "{me}: {text:?} twice in a row");
                c.in_room = entering;
                if entering {
                    c.entries += 1;
                } else {
                    c.leaves += 1;
                }
            }
        }
        false
    }
}

/// A stayer: chats in batches, each followed by a `/rooms` probe whose reply it waits
/// for (its own flow control), until the churners are done; then sends `end N` and
/// reads until every other stayer's end marker and all the churners' traffic arrived.
fn stay(k: usize, mut client: Client, churning_done: &AtomicBool) -> Client {
    let mut view = StayerView::new(k);
    let deadline = Instant::now() + TIMEOUT * 3;
    let mut sent = 0;
    while !churning_done.load(Ordering::SeqCst) {
        assert!(
            Instant::now() < deadline,
            "{}: the churners never finished",
            view.me
        );
        for _ in 0..BATCH {
            client.chat(&format!("{sent} from {}", view.me));
            sent += 1;
        }
        client.send(&Request::Rooms);
        while !view.take(client.recv()) {}
    }
    client.chat(&format!("end {sent}"));
    while !view.complete() {
        let probe_reply = view.take(client.recv());
        assert!(!probe_reply, "{}: a /rooms reply nobody asked for", view.me);
    }
    client
}

/// How the departing client goes.
#[derive(Debug, Clone, Copy)]
enum Departure {
    /// `shutdown(Both)`: a FIN.
    Disconnect,
    /// Half a chat frame, then a close (a reset, since unread data is waiting).
    MidFrame,
    /// Half a chat frame, then a close with `SO_LINGER` 0: a reset.
    MidFrameReset,
}

#[test]
fn a_successor_on_a_reused_slot_never_gets_the_departed_clients_messages() {
    let server = TestServer::start();
    let mut host = server.client(WireFormat::Json);
    host.set_name("host");
    host.create("slot");
    let departures = [
        Departure::Disconnect,
        Departure::MidFrame,
        Departure::MidFrameReset,
    ];
    for round in 0..30 {
        let format = WireFormat::ALL[round % 2];
        let mut gone = server.client(format);
        let name = gone.default_name();
        gone.join(1, "slot");
        host.expect_system(&entered(&name));
        host.chat(&format!("to {name}"));
        gone.expect_chat("host", &format!("to {name}"));
        match departures[round % departures.len()] {
            Departure::Disconnect => gone.disconnect(),
            Departure::MidFrame => gone.kill_mid_frame(false),
            Departure::MidFrameReset => gone.kill_mid_frame(true),
        }
        host.expect_system(&left(&name));

        // Most likely on the slot (and descriptor) just freed; never joins.
        let mut successor = server.client(WireFormat::ALL[(round + 1) % 2]);
        host.chat(&format!("after {name} left"));
        // Barrier: the chat is handled, so anything it sent the successor is queued
        // in front of the successor's probe reply.
        host.expect_silence();
        successor.expect_silence();
        assert_eq!(
            successor.rooms(),
            vec![room(1, "slot", &["host"])],
            "round {round}: the departed client is still listed"
        );
        successor.disconnect();
    }
}
