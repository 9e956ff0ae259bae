//! Many members talking at once, each on its own thread, JSON and protobuf mixed: every
//! chat reaches every other member exactly once, each sender's chats in the order
//! sent, none echoed, none lost. With 4 workers this exercises hand-offs between
//! workers that the one-client-at-a-time tests never do.

mod support;

use std::collections::HashMap;
use std::thread;

use chat_proto::{Response, WireFormat};
use support::*;

const MEMBERS: usize = 6;
const CHATS_EACH: usize = 200;

#[test]
fn members_chatting_at_once_each_get_everything_in_sender_order() {
    let server = TestServer::start();
    let mut members: Vec<Client> = (0..MEMBERS)
        .map(|i| server.client(WireFormat::ALL[i % 2]))
        .collect();
    let names: Vec<String> = (0..MEMBERS).map(|i| format!("member-{i}")).collect();
    for (member, name) in members.iter_mut().zip(&names) {
        member.set_name(name);
    }
    members[0].create("busy");
    for i in 1..MEMBERS {
        members[i].join(1, "busy");
        for earlier in &mut members[..i] {
            earlier.expect_system(&entered(&names[i]));
        }
    }

    let threads: Vec<_> = members
        .into_iter()
        .enumerate()
        .map(|(me, mut client)| {
            let names = names.clone();
            thread::spawn(move || {
                for n in 0..CHATS_EACH {
                    client.chat(&format!("{n} from {}", names[me]));
                }
                // Next chat index expected from each other member.
                let mut next: HashMap<String, usize> = names
                    .iter()
                    .enumerate()
                    .filter(|&(i, _)| i != me)
                    .map(|(_, name)| (name.clone(), 0))
                    .collect();
                for _ in 0..(MEMBERS - 1) * CHATS_EACH {
                    let (member, text) = match client.recv() {
                        Response::Chat { member, text } => (member, text),
                        other => panic!("{}: expected only chats, got {other:?}", names[me]),
                    };
                    let n = next.get_mut(member.as_ref()).unwrap_or_else(|| {
                        panic!("{}: a chat from {member:?} (an echo?)", names[me])
                    });
                    assert_eq!(text, format!("{n} from {member}"), "{}", names[me]);
                    *n += 1;
                }
                client.expect_silence();
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
