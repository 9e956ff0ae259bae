//! The ordering guarantees, checked in memory: no sockets, no timing.
//!
//! Clients of the core, with test mailboxes that keep every frame they get, run random
//! scripts of create / join / leave / rename / chat / `/rooms` / disconnect over a few
//! rooms. Two tests:
//!
//! * [`matches_the_model`] runs one random interleaving on one thread and compares
//!   every client's whole stream, message by message, with what a small model of the
//!   protocol (`docs/PROTOCOL.md` §4) says it must be.
//! * [`concurrent_clients_keep_the_guarantees`] runs scripts on several threads at
//!   once against one shared broker, where no single expected stream exists, and checks
//!   the guarantees themselves on what arrived.
//!
//! Both check, for every run ([`check_guarantees`], written in
//! `support/guarantees.rs` and shared with the cluster crate's replica tests): all
//! members of a room see its events in one order; a member gets nothing from a room
//! after its own leave notice and misses nothing sent after its entry notice; each
//! sender's chats arrive in order; nobody receives their own chat.
//!
//! Conventions that make every event recognisable in a stream: room titles are unique
//! (`t{n}`), every name is used once (a client takes a fresh name before each join),
//! and a chat's text is `{name}#{seq}` with a per-client sequence number.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chat_core::{Client, Fanout, LocalBroker, Mailbox, MessageBroker, Turn, texts};
use chat_proto::{Request, Response, RoomInfo, WireFormat};
use proptest::prelude::*;

mod support;
use support::Recorder;
use support::guarantees::{self, Entry};

/// One test client: its core state, its mailbox, its format.
struct Peer {
    client: Client,
    mailbox: Arc<Recorder>,
    format: WireFormat,
    /// Chats sent so far (the next chat's sequence number).
    chats: u32,
    /// Names taken so far (the next fresh name's suffix).
    names: u32,
    /// Each time it entered a room: the name it entered under, and whether it created
    /// the room. The n-th entry is the n-th entry notice in its stream.
    entries: Vec<Entry>,
}

impl Peer {
    fn new(index: usize, format: WireFormat) -> Self {
        Peer {
            client: Client::new(index as u64 + 1, format!("p{index}"), Some(format)),
            mailbox: Arc::new(Recorder::default()),
            format,
            chats: 0,
            names: 0,
            entries: Vec::new(),
        }
    }

    fn index(&self) -> usize {
        self.client.id() as usize - 1
    }

    fn fresh_name(&mut self) -> String {
        self.names += 1;
        guarantees::fresh_name(self.index(), self.names)
    }

    fn next_chat(&mut self) -> String {
        self.chats += 1;
        guarantees::chat_text(self.client.name(), self.chats)
    }
}

/// What a script step asks a client to do. Room choices are indices into the rooms
/// created so far (or past them: a room that does not exist).
#[derive(Debug, Clone)]
enum Step {
    Create,
    /// A fresh name, then `/join`.
    Join(usize),
    Leave,
    Rename,
    Chat,
    Rooms,
    Disconnect,
}

/// One thread's clients and the steps it runs for them (`(client index, step)`).
type ThreadScript = (Vec<Peer>, Vec<(usize, Step)>);

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => Just(Step::Create),
        4 => (0usize..8).prop_map(Step::Join),
        2 => Just(Step::Leave),
        2 => Just(Step::Rename),
        6 => Just(Step::Chat),
        1 => Just(Step::Rooms),
        1 => Just(Step::Disconnect),
    ]
}

fn format() -> impl Strategy<Value = WireFormat> {
    prop_oneof![Just(WireFormat::Json), Just(WireFormat::Protobuf)]
}

/// What a step turns into: requests, or the connection going away.
#[derive(Debug, Clone)]
enum Action {
    Send(Request),
    Disconnect,
}

/// The actions for `step`; `next_title` hands out unique titles.
fn actions(peer: &mut Peer, step: &Step, next_title: &AtomicUsize) -> Vec<Action> {
    match step {
        Step::Create => {
            let title = format!("t{}", next_title.fetch_add(1, Ordering::Relaxed));
            vec![Action::Send(Request::CreateRoom { title })]
        }
        // Ids are handed out from 1 in creation order, so `choice` names a room that
        // exists, existed, or never did.
        Step::Join(choice) => vec![
            Action::Send(Request::Name {
                name: peer.fresh_name(),
            }),
            Action::Send(Request::JoinRoom {
                room_id: *choice as i64 + 1,
            }),
        ],
        Step::Leave => vec![Action::Send(Request::LeaveRoom)],
        Step::Rename => vec![Action::Send(Request::Name {
            name: peer.fresh_name(),
        })],
        Step::Chat => vec![Action::Send(Request::Chat {
            text: peer.next_chat(),
        })],
        Step::Rooms => vec![Action::Send(Request::Rooms)],
        Step::Disconnect => vec![Action::Disconnect],
    }
}

/// Performs `action` for `peer`, recording the name it enters a room under.
fn perform(
    peer: &mut Peer,
    action: Action,
    broker: &dyn MessageBroker<Recorder>,
    out: &mut Fanout<Recorder>,
) {
    let was_in_room = peer.client.room().is_some();
    let mut turn = Turn {
        mailbox: &peer.mailbox,
        broker,
        out,
        now: std::time::Instant::now(),
    };
    match action {
        Action::Send(request) => {
            let created = matches!(request, Request::CreateRoom { .. });
            peer.client.handle_request(request, &mut turn);
            if !was_in_room && peer.client.room().is_some() {
                peer.entries.push(Entry {
                    name: peer.client.name().to_owned(),
                    created,
                });
            }
        }
        Action::Disconnect => peer.client.disconnect(&mut turn),
    }
}

// ---------------------------------------------------------------------------------
// The model: what each client must receive, for one sequential run.
// ---------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Model {
    /// id → (title, member indices in join order).
    rooms: BTreeMap<i64, (String, Vec<usize>)>,
    last_id: i64,
    names: Vec<String>,
    room_of: Vec<Option<i64>>,
    expected: Vec<Vec<Response<'static>>>,
}

impl Model {
    fn new(peers: usize) -> Self {
        Model {
            names: (0..peers).map(|i| format!("p{i}")).collect(),
            room_of: vec![None; peers],
            expected: vec![Vec::new(); peers],
            ..Model::default()
        }
    }

    fn system(&mut self, to: usize, text: impl Into<String>) {
        self.expected[to].push(Response::system(text.into()));
    }

    fn others(&mut self, room: i64, except: usize, response: Response<'static>) {
        let members = self.rooms[&room].1.clone();
        for member in members.into_iter().filter(|&m| m != except) {
            self.expected[member].push(response.clone());
        }
    }

    fn request(&mut self, who: usize, request: &Request) {
        match request {
            Request::CreateRoom { title } => {
                if self.room_of[who].is_some() {
                    return self.system(who, texts::CREATE_WHILE_IN_ROOM);
                }
                self.last_id += 1;
                self.rooms.insert(self.last_id, (title.clone(), vec![who]));
                self.room_of[who] = Some(self.last_id);
                self.system(who, texts::entered_self(title));
            }
            Request::JoinRoom { room_id } => {
                if self.room_of[who].is_some() {
                    return self.system(who, texts::JOIN_WHILE_IN_ROOM);
                }
                let Some((title, _)) = self.rooms.get(room_id) else {
                    return self.system(who, texts::NO_SUCH_ROOM);
                };
                let title = title.clone();
                let notice = Response::system(texts::entered_others(&self.names[who]));
                self.others(*room_id, who, notice);
                self.rooms.get_mut(room_id).unwrap().1.push(who);
                self.room_of[who] = Some(*room_id);
                self.system(who, texts::entered_self(&title));
            }
            Request::LeaveRoom => {
                let Some(room) = self.room_of[who] else {
                    return self.system(who, texts::NOT_IN_ROOM);
                };
                let title = self.rooms[&room].0.clone();
                self.leave(who, room);
                self.system(who, texts::left_self(&title));
            }
            Request::Name { name } => {
                let old = std::mem::replace(&mut self.names[who], name.clone());
                if let Some(room) = self.room_of[who] {
                    let notice = Response::system(texts::renamed_others(&old, name));
                    self.others(room, who, notice);
                }
                self.system(who, texts::renamed_self(name));
            }
            Request::Chat { text } => {
                let Some(room) = self.room_of[who] else {
                    return self.system(who, texts::NOT_IN_ROOM);
                };
                let chat = Response::Chat {
                    member: self.names[who].clone().into(),
                    text: text.clone().into(),
                };
                self.others(room, who, chat);
            }
            Request::Rooms => {
                let rooms = self
                    .rooms
                    .iter()
                    .map(|(&room_id, (title, members))| RoomInfo {
                        room_id,
                        title: title.clone(),
                        members: members.iter().map(|&m| self.names[m].clone()).collect(),
                        topic: None,
                    })
                    .collect();
                self.expected[who].push(Response::RoomsResult { rooms });
            }
            Request::Shutdown
            | Request::Hello { .. }
            | Request::Register { .. }
            | Request::Login { .. }
            | Request::Logout
            | Request::ChangePassword { .. }
            | Request::History { .. }
            | Request::DeleteRoom { .. }
            | Request::Resume { .. }
            | Request::Direct { .. }
            | Request::Ignore { .. }
            | Request::Op { .. }
            | Request::Owner { .. }
            | Request::Kick { .. }
            | Request::Ban { .. }
            | Request::Topic { .. } => unreachable!("not generated"),
        }
    }
}

impl Model {
    fn leave(&mut self, who: usize, room: i64) {
        let notice = Response::system(texts::left_others(&self.names[who]));
        self.others(room, who, notice);
        let entry = self.rooms.get_mut(&room).unwrap();
        entry.1.retain(|&m| m != who);
        if entry.1.is_empty() {
            self.rooms.remove(&room);
        }
        self.room_of[who] = None;
    }

    fn disconnect(&mut self, who: usize) {
        if let Some(room) = self.room_of[who] {
            self.leave(who, room);
        }
    }
}

// ---------------------------------------------------------------------------------
// The guarantees, checked on what arrived (`support/guarantees.rs`).
// ---------------------------------------------------------------------------------

/// Every guarantee, on the streams of `peers`.
fn check_guarantees(peers: &[Peer]) {
    let received: Vec<_> = peers
        .iter()
        .map(|peer| {
            let stream = peer.mailbox.received(peer.format);
            (peer.index(), stream, peer.entries.as_slice())
        })
        .collect();
    guarantees::check_guarantees(&received);
}

// ---------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// One thread, one random interleaving: every stream is exactly the model's.
    #[test]
    fn matches_the_model(
        formats in proptest::collection::vec(format(), 2..6),
        script in proptest::collection::vec((0usize..6, step()), 1..120),
    ) {
        let broker = LocalBroker::new();
        let mut out = Fanout::new();
        let titles = AtomicUsize::new(1);
        let mut peers: Vec<Peer> =
            formats.iter().enumerate().map(|(i, &f)| Peer::new(i, f)).collect();
        let mut connected = vec![true; peers.len()];
        let mut model = Model::new(peers.len());
        for (who, step) in &script {
            let who = who % peers.len();
            if !connected[who] {
                continue;
            }
            for action in actions(&mut peers[who], step, &titles) {
                match &action {
                    Action::Send(request) => model.request(who, request),
                    Action::Disconnect => {
                        model.disconnect(who);
                        connected[who] = false;
                    }
                }
                perform(&mut peers[who], action, &broker, &mut out);
            }
        }
        for (who, peer) in peers.iter().enumerate() {
            let got = peer.mailbox.received(peer.format);
            prop_assert_eq!(&got, &model.expected[who], "peer {}", who);
        }
        prop_assert_eq!(broker.room_count(), model.rooms.len());
        check_guarantees(&peers);
    }

    /// Several threads at once on one broker: no single expected stream exists, but
    /// the guarantees must hold for whatever interleaving the threads produced.
    #[test]
    fn concurrent_clients_keep_the_guarantees(
        groups in proptest::collection::vec(
            (
                proptest::collection::vec(format(), 1..4),
                proptest::collection::vec((0usize..3, step()), 10..80),
            ),
            2..4,
        ),
    ) {
        let broker = LocalBroker::new();
        let titles = AtomicUsize::new(1);
        let mut next_index = 0;
        let groups: Vec<ThreadScript> = groups
            .into_iter()
            .map(|(formats, script)| {
                let peers = formats
                    .into_iter()
                    .map(|format| {
                        next_index += 1;
                        Peer::new(next_index - 1, format)
                    })
                    .collect();
                (peers, script)
            })
            .collect();
        let peers: Vec<Peer> = std::thread::scope(|scope| {
            let threads: Vec<_> = groups
                .into_iter()
                .map(|(mut peers, script)| {
                    let (broker, titles) = (&broker, &titles);
                    scope.spawn(move || {
                        let mut out = Fanout::new();
                        let mut connected = vec![true; peers.len()];
                        for (who, step) in &script {
                            let who = who % peers.len();
                            if !connected[who] {
                                continue;
                            }
                            connected[who] = !matches!(step, Step::Disconnect);
                            for action in actions(&mut peers[who], step, titles) {
                                perform(&mut peers[who], action, broker, &mut out);
                            }
                        }
                        peers
                    })
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().expect("a client thread panicked"))
                .collect()
        });
        check_guarantees(&peers);
    }
}

/// The checks themselves must catch a broken stream, or the tests above prove nothing.
#[test]
fn the_checks_catch_a_reordered_room() {
    let mut a = Peer::new(0, WireFormat::Json);
    let mut b = Peer::new(1, WireFormat::Json);
    let c = Peer::new(2, WireFormat::Json);
    let chat = |member: &str, text: &str| Response::Chat {
        member: member.to_owned().into(),
        text: text.to_owned().into(),
    };
    let push = |peer: &Peer, responses: &[Response<'_>]| {
        for response in responses {
            let encoded = chat_core::Encoded::one(WireFormat::Json, response).unwrap();
            peer.mailbox
                .deliver(encoded.frames(WireFormat::Json).unwrap());
        }
    };
    // p0 created t1, p1 joined as p1n1; p2 chats twice but p1 sees them swapped.
    a.entries.push(Entry {
        name: "p0".into(),
        created: true,
    });
    b.entries.push(Entry {
        name: "p1n1".into(),
        created: false,
    });
    let entered = Response::system(texts::entered_self("t1"));
    let joined = Response::system(texts::entered_others("p1n1"));
    let (first, second) = (chat("p2", "p2#1"), chat("p3", "p3#1"));
    push(
        &a,
        &[entered.clone(), joined, first.clone(), second.clone()],
    );
    push(&b, &[entered, second, first]);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_guarantees(&[a, b, c]);
    }));
    let message = outcome
        .expect_err("a reordering must fail the check")
        .downcast::<String>()
        .expect("a formatted assertion");
    assert!(message.contains("disagree"), "{message}");
}
