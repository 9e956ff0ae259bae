//! Ordering under contention: 8 workers, many rooms of 10, every member pipelining all
//! its chats in a single `write` at the same moment (JSON and protobuf mixed). At every
//! receiver, each sender's chats must arrive in the order sent, none missing, none
//! doubled, none echoed, none from another room — and nothing else.
//!
//! This is the README's ordering rule (one session is handled by one worker at a time,
//! in arrival order; a room's notices are queued under its lock) under the most
//! pressure a test can put on it: inboxes fill past their bound (so reading pauses and
//! resumes), sessions are requeued between turns, and with 8 workers on 2 cores turns
//! are preempted at random points.
//!
//! Sizes: the 200 clients × 500 chats (about 3 s in debug), and a small
//! 50 × 200 variant that fails fast when something is plainly broken.

mod support;

use std::sync::{Arc, Barrier};
use std::thread;

use chat_proto::{Request, Response, WireFormat};
use support::*;

const ROOM_SIZE: usize = 10;
const WORKERS: usize = 8;

#[test]
fn fifty_clients_pipelining_200_chats_each() {
    ordering(5, 200);
}

#[test]
fn two_hundred_clients_pipelining_500_chats_each() {
    ordering(20, 500);
}

fn name(i: usize) -> String {
    format!("m{i}")
}

fn ordering(rooms: usize, chats: usize) {
    let server = TestServer::with_config(chat_server::ServerConfig::local(WORKERS));
    let clients = rooms * ROOM_SIZE;
    let mut all: Vec<Client> = Vec::with_capacity(clients);
    for i in 0..clients {
        let mut client = server.client(WireFormat::ALL[i % 2]);
        client.set_name(&name(i));
        let room = i / ROOM_SIZE;
        let title = format!("r{room}");
        if i % ROOM_SIZE == 0 {
            client.create(&title);
        } else {
            client.join(room as i64 + 1, &title);
            for earlier in &mut all[room * ROOM_SIZE..i] {
                earlier.expect_system(&entered(&name(i)));
            }
        }
        all.push(client);
    }

    let start = Arc::new(Barrier::new(clients));
    let threads: Vec<_> = all
        .into_iter()
        .enumerate()
        .map(|(me, mut client)| {
            let start = Arc::clone(&start);
            thread::spawn(move || {
                let mut burst = Vec::new();
                for n in 0..chats {
                    let chat = Request::Chat {
                        text: format!("{n} from {}", name(me)),
                    };
                    burst.extend_from_slice(&encode(client.format(), &chat));
                }
                start.wait();
                client.send_raw(&burst);
                receive_all(me, &mut client, chats);
                client
            })
        })
        .collect();
    let mut done: Vec<Client> = threads
        .into_iter()
        .map(|t| t.join().expect("a receiver saw reordering or loss"))
        .collect();
    // Exactness: after everything expected, nothing more (no duplicates) is queued.
    for client in &mut done {
        client.expect_silence();
    }
}

/// Reads `chats` chats from each of the 9 room-mates of client `me`, checking that
/// each sender's arrive as `0 from mX`, `1 from mX`, … in order.
fn receive_all(me: usize, client: &mut Client, chats: usize) {
    let room = me / ROOM_SIZE;
    let first = room * ROOM_SIZE;
    let mut next = [0usize; ROOM_SIZE];
    for _ in 0..(ROOM_SIZE - 1) * chats {
        let (member, text) = match client.recv() {
            Response::Chat { member, text } => (member, text),
            other => panic!("{}: expected only chats, got {other:?}", name(me)),
        };
        let sender: usize = member
            .strip_prefix('m')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{}: a chat from {member:?}", name(me)));
        assert!(
            (first..first + ROOM_SIZE).contains(&sender) && sender != me,
            "{}: a chat from {member}, not a room-mate (echo or wrong room)",
            name(me)
        );
        let n = &mut next[sender - first];
        assert_eq!(
            text,
            format!("{n} from {member}"),
            "{}: {member}'s chats out of order",
            name(me)
        );
        *n += 1;
    }
}
