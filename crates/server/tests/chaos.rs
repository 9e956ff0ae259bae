//! Chaos: many clients in many rooms chat while about a third of them die abruptly in
//! the middle of a frame (half a message written, then the socket closed, half of
//! them with a reset). The survivors must not notice anything but the leave notices:
//!
//! * every survivor receives every chat of every other survivor in its room, exactly
//!   once, in each sender's order, and exactly one `[NAME] 님이 퇴장했습니다.` per
//!   killed room-mate; every complete chat a killed client sent before dying arrives,
//!   in order, before its leave notice (data read before a reset is still handled);
//!   nothing else arrives;
//! * afterwards the server is back to baseline: `/rooms` lists only survivors (rooms
//!   whose members all died are gone), `chat_connections` equals the survivors and
//!   then 0, `chat_rooms` 0, and the process (server in-process, so its sockets are
//!   ours) has exactly the descriptors it had before the first client connected.
//!
//! Run at 200 clients and at the 1,000 (about 2 s together in debug, so both
//! are in the default suite).
//!
//! Descriptor counts are process-wide, so the tests in this file take a lock and never
//! overlap.

mod support;

use std::collections::HashMap;
use std::sync::Mutex;
use std::thread;

use chat_proto::{Response, WireFormat};
use support::*;

/// Members per room.
const ROOM_SIZE: usize = 10;
/// Chats each survivor sends once the killing starts.
const SURVIVOR_CHATS: usize = 20;
/// Complete chats each victim sends before dying mid-frame.
const VICTIM_CHATS: usize = 5;

/// Serialises the tests of this file: they count the process's descriptors.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn chaos_200_clients() {
    chaos(200);
}

#[test]
fn chaos_1000_clients() {
    chaos(1000);
}

/// Who is who: client `i` is in room `i / ROOM_SIZE` (id `i / ROOM_SIZE + 1`). In a
/// room whose index ends in 9 every member dies (so the room must disappear); in the
/// others the members at positions 2, 5 and 8 die (30%).
fn is_victim(i: usize) -> bool {
    (i / ROOM_SIZE) % 10 == 9 || matches!(i % ROOM_SIZE, 2 | 5 | 8)
}

fn name(i: usize) -> String {
    format!("c{i}")
}

fn title(room: usize) -> String {
    format!("room-{room}")
}

fn chaos(clients: usize) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    chat_server::limits::raise_open_file_limit().expect("raise RLIMIT_NOFILE");
    assert_eq!(clients % ROOM_SIZE, 0);
    let rooms = clients / ROOM_SIZE;

    let server = TestServer::with_config(config_with_metrics(4));
    let metrics = server.metrics_addr();
    let baseline_fds = baseline_fds(&server);

    // Setup, one client at a time: names, rooms, and every entry notice consumed.
    let mut all: Vec<Client> = Vec::with_capacity(clients);
    for i in 0..clients {
        let mut client = server.client(WireFormat::ALL[i % 2]);
        client.set_name(&name(i));
        let room = i / ROOM_SIZE;
        if i % ROOM_SIZE == 0 {
            client.create(&title(room));
        } else {
            client.join(room as i64 + 1, &title(room));
            for earlier in &mut all[room * ROOM_SIZE..i] {
                earlier.expect_system(&entered(&name(i)));
            }
        }
        all.push(client);
    }
    metric_eventually(metrics, "chat_connections", clients as u64);

    // Survivors chat on their own threads and check what they receive; the main
    // thread meanwhile kills the victims.
    let mut survivors = Vec::new();
    let mut victims = Vec::new();
    for (i, client) in all.into_iter().enumerate() {
        if is_victim(i) {
            victims.push((i, client));
        } else {
            survivors.push((i, client));
        }
    }
    let survivor_count = survivors.len();
    let threads: Vec<_> = survivors
        .into_iter()
        .map(|(me, client)| thread::spawn(move || survive(me, client)))
        .collect();
    for (i, mut victim) in victims {
        for n in 0..VICTIM_CHATS {
            victim.chat(&format!("{n} from {}", name(i)));
        }
        victim.kill_mid_frame(i % 2 == 0);
    }
    let mut survivors: Vec<(usize, Client)> = threads
        .into_iter()
        .map(|t| t.join().expect("a survivor saw something wrong"))
        .collect();

    // Back to baseline, as far as the survivors are concerned.
    for (_, survivor) in &mut survivors {
        survivor.expect_silence();
    }
    let want: Vec<_> = (0..rooms)
        .filter(|room| (room * ROOM_SIZE..(room + 1) * ROOM_SIZE).any(|i| !is_victim(i)))
        .map(|room| {
            let members: Vec<String> = (room * ROOM_SIZE..(room + 1) * ROOM_SIZE)
                .filter(|&i| !is_victim(i))
                .map(name)
                .collect();
            let members: Vec<&str> = members.iter().map(String::as_str).collect();
            support::room(room as i64 + 1, &title(room), &members)
        })
        .collect();
    assert!(want.len() < rooms, "some rooms must have died entirely");
    rooms_eventually(&mut survivors[0].1, &want);
    metric_eventually(metrics, "chat_connections", survivor_count as u64);
    metric_eventually(metrics, "chat_rooms", want.len() as u64);

    // And once everyone is gone, nothing is left: no connection, no room, no socket.
    for (_, survivor) in survivors {
        survivor.disconnect();
    }
    metric_eventually(metrics, "chat_connections", 0);
    metric_eventually(metrics, "chat_rooms", 0);
    fds_eventually(baseline_fds);
    server.stop().expect("run() returns Ok");
}

/// A survivor: sends its chats, then reads until it has every chat of the other
/// survivors in its room and a leave notice for each victim there, checking order
/// and exactness on the way. Returns its client, still connected.
fn survive(me: usize, mut client: Client) -> (usize, Client) {
    let room = me / ROOM_SIZE;
    let mates: Vec<usize> = (room * ROOM_SIZE..(room + 1) * ROOM_SIZE)
        .filter(|&i| i != me)
        .collect();
    for n in 0..SURVIVOR_CHATS {
        client.chat(&format!("{n} from {}", name(me)));
    }

    // Next chat number expected from each mate, and whether a victim's leave notice
    // was seen.
    let mut next: HashMap<String, usize> = mates.iter().map(|&i| (name(i), 0)).collect();
    let mut gone: HashMap<String, bool> = mates
        .iter()
        .filter(|&&i| is_victim(i))
        .map(|&i| (name(i), false))
        .collect();
    let done = |next: &HashMap<String, usize>, gone: &HashMap<String, bool>| {
        gone.values().all(|&g| g)
            && mates
                .iter()
                .filter(|&&i| !is_victim(i))
                .all(|&i| next[&name(i)] == SURVIVOR_CHATS)
    };
    let who = name(me);
    while !done(&next, &gone) {
        match client.recv() {
            Response::Chat { member, text } => {
                let member = member.into_owned();
                let n = next
                    .get_mut(&member)
                    .unwrap_or_else(|| panic!("{who}: a chat from {member:?}, not a room-mate"));
                assert!(
                    !gone.get(&member).copied().unwrap_or(false),
                    "{who}: a chat from {member} after its leave notice: {text:?}"
                );
                assert_eq!(text, format!("{n} from {member}"), "{who}: out of order");
                *n += 1;
                let limit = if gone.contains_key(&member) {
                    VICTIM_CHATS
                } else {
                    SURVIVOR_CHATS
                };
                assert!(*n <= limit, "{who}: more chats from {member} than sent");
            }
            Response::SystemMessage { text } => {
                let member = text
                    .strip_prefix('[')
                    .and_then(|t| t.strip_suffix("] 님이 퇴장했습니다."))
                    .unwrap_or_else(|| panic!("{who}: unexpected system message {text:?}"));
                let seen = gone
                    .get_mut(member)
                    .unwrap_or_else(|| panic!("{who}: a leave notice for {member}, no victim"));
                assert!(!*seen, "{who}: two leave notices for {member}");
                *seen = true;
                assert_eq!(
                    next[member], VICTIM_CHATS,
                    "{who}: {member}'s complete chats before it died"
                );
            }
            other => panic!("{who}: unexpected {other:?}"),
        }
    }
    (me, client)
}
