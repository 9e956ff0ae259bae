//! Many members talking at once, each on its own thread, JSON and protobuf mixed: every
//! chat reaches every other member exactly once, each sender's chats in the order
//! sent, none echoed, none lost. With 4 workers this exercises hand-offs between
//! workers that the one-client-at-a-time tests never do; with one worker and bursts,
//! the reactor waiting for the worker's backlog.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Barrier};
use std::thread;

use chat_proto::{Request, Response, WireFormat};
use support::*;

const MEMBERS: usize = 6;
const CHATS_EACH: usize = 200;

/// `members` clients named `member-N`, JSON and protobuf alternating, all in room 1,
/// each having seen everyone after it enter.
fn members_in_one_room(server: &TestServer, members: usize) -> (Vec<Client>, Vec<String>) {
    let mut clients: Vec<Client> = (0..members)
        .map(|i| server.client(WireFormat::ALL[i % 2]))
        .collect();
    let names: Vec<String> = (0..members).map(|i| format!("member-{i}")).collect();
    for (client, name) in clients.iter_mut().zip(&names) {
        client.set_name(name);
    }
    clients[0].create("busy");
    for i in 1..members {
        clients[i].join(1, "busy");
        for earlier in &mut clients[..i] {
            earlier.expect_system(&entered(&names[i]));
        }
    }
    (clients, names)
}

/// Receives `chats_each` chats `"{n} from {sender}"` from every member but `me`,
/// asserting each sender's come in order, none twice, nothing else, no echo.
fn receive_everyones_chats_in_order(
    client: &mut Client,
    me: usize,
    names: &[String],
    chats_each: usize,
) {
    // Next chat index expected from each other member.
    let mut next: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != me)
        .map(|(_, name)| (name.as_str(), 0))
        .collect();
    for _ in 0..(names.len() - 1) * chats_each {
        let (member, text) = match client.recv() {
            Response::Chat { member, text } => (member, text),
            other => panic!("{}: expected only chats, got {other:?}", names[me]),
        };
        let n = next
            .get_mut(member.as_ref())
            .unwrap_or_else(|| panic!("{}: a chat from {member:?} (an echo?)", names[me]));
        assert_eq!(text, format!("{n} from {member}"), "{}", names[me]);
        *n += 1;
    }
    client.expect_silence();
}

#[test]
fn members_chatting_at_once_each_get_everything_in_sender_order() {
    let server = TestServer::start();
    let (members, names) = members_in_one_room(&server, MEMBERS);

    let threads: Vec<_> = members
        .into_iter()
        .enumerate()
        .map(|(me, mut client)| {
            let names = names.clone();
            thread::spawn(move || {
                for n in 0..CHATS_EACH {
                    client.chat(&format!("{n} from {}", names[me]));
                }
                receive_everyones_chats_in_order(&mut client, me, &names, CHATS_EACH);
                client // kept open until every member is done: a leave notice is news
            })
        })
        .collect();
    let done: Vec<Client> = threads
        .into_iter()
        .map(|thread| thread.join().expect("a member saw something wrong"))
        .collect();
    drop(done);
}

/// With one worker, members who each send a burst of chats in one write at the same
/// moment leave sessions queued behind the busy worker, and the reactor then waits
/// for that backlog before polling again (`Staged::wait_while_backlogged`), counted
/// in `chat_reactor_backlog_waits_total`. Nothing is lost or reordered by the wait.
/// A burst may happen to find the worker free throughout, so bursts repeat (each one
/// checked in full) until the reactor has waited, twenty at most.
#[test]
fn bursts_behind_a_busy_worker_make_the_reactor_wait_and_lose_nothing() {
    const BURST_MEMBERS: usize = 24;
    const BURST: usize = 100;
    let server = TestServer::with_config(config_with_metrics(1));
    let (mut members, names) = members_in_one_room(&server, BURST_MEMBERS);
    for burst in 1.. {
        let start = Arc::new(Barrier::new(BURST_MEMBERS));
        let threads: Vec<_> = members
            .into_iter()
            .enumerate()
            .map(|(me, mut client)| {
                let names = names.clone();
                let start = Arc::clone(&start);
                thread::spawn(move || {
                    let bytes: Vec<u8> = (0..BURST)
                        .flat_map(|n| {
                            let text = format!("{n} from {}", names[me]);
                            encode(client.format(), &Request::Chat { text })
                        })
                        .collect();
                    start.wait();
                    client.send_raw(&bytes);
                    receive_everyones_chats_in_order(&mut client, me, &names, BURST);
                    client
                })
            })
            .collect();
        members = threads
            .into_iter()
            .map(|thread| thread.join().expect("a member saw something wrong"))
            .collect();
        let waits = metric(
            &scrape(server.metrics_addr()),
            "chat_reactor_backlog_waits_total",
        );
        if waits > 0 {
            return;
        }
        assert!(
            burst < 20,
            "{burst} bursts and the reactor never waited for the worker's backlog"
        );
    }
}
