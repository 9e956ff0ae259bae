//! The ordering guarantees across nodes, checked in memory: several replicas fed one
//! log, no Redis (as `quinn` tests two endpoints without a network).
//!
//! Each node has real [`chat_core::Client`]s (so commands, validation and texts are
//! the real ones), its own [`Replica`] and a [`NodeBroker`] that does what
//! [`crate::ClusterBroker`] does, with Redis replaced by [`Redis`]: the shared state
//! as the Lua scripts (`scripts.rs`) keep it, and the log as a `Vec` of entry fields
//! written in the scripts' layout (chats through [`entry::chat`], as the command
//! thread writes them). What the reader thread does — apply the next entry, deliver
//! to this node's members, complete this node's operations — happens when the test
//! says so, one node at a time, so nodes lag behind one another at random. As in the
//! cluster, a create, join, leave, rename or name claim answers [`Reply::Pending`]: a
//! refusal (and a claim) is completed at once, as the command thread does, and a
//! change once the caller's own node has applied its entry; a disconnect's leave is
//! not awaited. The test hands each completion to its client (`Transport::complete`).
//!
//! After a run every node applies the whole log, then:
//! * the core's guarantee checker (`crates/core/tests/support/guarantees.rs`) holds
//!   on every client of every node;
//! * every client's room notices are exactly what the log says they must be (one
//!   order per room on every node, no gaps, each stay a contiguous slice);
//! * every replica lists the same rooms, titles and members in order as the shared
//!   state; every client is in the room the shared state says (a disconnected one in
//!   none, holding no name), and none still waits.
//!
//! The conventions of `tests/ordering.rs` make every event recognisable: unique titles
//! (`t{n}`), every name used once (`p{index}`, `p{index}n{k}`), chats `{name}#{seq}`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chat_core::broker::MAX_ROOM_ID;
use chat_core::{
    BrokerError, Client, ClientId, Completion, Encoded, Fanout, Leaving, Listing, Member,
    MessageBroker, Recipient, Reply, RoomId, Turn, texts,
};
use chat_proto::{Request, Response, RoomInfo, WireFormat};
use proptest::prelude::*;

use crate::entry::{self, Entry, Event, MemberId, SEP};
use crate::replica::Replica;
use crate::sync::lock;

use crate::test_support::Recorder;
use crate::test_support::guarantees::{self, Entry as Entered, Seen, classify};

// ---------------------------------------------------------------------------------
// Redis, in memory: what the scripts decide, and the log.
// ---------------------------------------------------------------------------------

/// The shared state as the Lua scripts keep it, and the log; see the module doc.
#[derive(Debug, Default)]
struct Redis {
    /// `P:room_seq`: the last room id handed out.
    room_seq: RoomId,
    /// `P:rooms` with each room's title and members in join order.
    rooms: BTreeMap<RoomId, SharedRoom>,
    /// `P:names`: name key → the member holding it.
    names: HashMap<String, MemberId>,
    /// `P:node:<node>:names`: the key each member holds.
    held: HashMap<MemberId, String>,
    /// `P:log`: each entry's `e` field, in order.
    log: Vec<String>,
}

/// One room of the shared state.
#[derive(Debug)]
struct SharedRoom {
    title: String,
    /// In join order, with display names.
    members: Vec<(MemberId, String)>,
}

impl Redis {
    /// Appends an entry as the scripts' `log` function writes it.
    fn log(&mut self, kind: char, seq: u64, member: MemberId, room: RoomId, rest: &str) {
        let (node, client) = (member.node, member.client);
        self.log.push(format!(
            "{kind}{SEP}{node}{SEP}{seq}{SEP}{node}{SEP}{client}{SEP}{room}{SEP}{rest}"
        ));
    }

    /// `scripts::CREATE`.
    fn create(&mut self, seq: u64, member: MemberId, name: &str, title: &str) -> Completion {
        if self.room_seq >= MAX_ROOM_ID {
            return Err(BrokerError::RoomIdsExhausted);
        }
        self.room_seq += 1;
        let room = self.room_seq;
        let members = vec![(member, name.to_owned())];
        let title = title.to_owned();
        self.log('n', seq, member, room, &format!("{name}{SEP}{title}"));
        self.rooms.insert(room, SharedRoom { title, members });
        Ok(room)
    }

    /// `scripts::JOIN`.
    fn join(&mut self, seq: u64, member: MemberId, room: RoomId, name: &str) -> Completion {
        let Some(shared) = self.rooms.get_mut(&room) else {
            return Err(BrokerError::NoSuchRoom);
        };
        // A new join number: a member already there moves to the end.
        shared.members.retain(|(m, _)| *m != member);
        shared.members.push((member, name.to_owned()));
        self.log('j', seq, member, room, name);
        Ok(room)
    }

    /// `scripts::LEAVE`.
    fn leave(&mut self, seq: u64, member: MemberId, room: RoomId, notify_self: bool) -> Completion {
        let Some(shared) = self.rooms.get_mut(&room) else {
            return Err(BrokerError::NoSuchRoom);
        };
        let Some(at) = shared.members.iter().position(|(m, _)| *m == member) else {
            return Err(BrokerError::NoSuchRoom);
        };
        shared.members.remove(at);
        if shared.members.is_empty() {
            self.rooms.remove(&room);
        }
        self.log('l', seq, member, room, if notify_self { "1" } else { "0" });
        Ok(room)
    }

    /// `scripts::RENAME`.
    fn rename(&mut self, seq: u64, member: MemberId, room: RoomId, name: &str) -> Completion {
        let shared = self.rooms.get_mut(&room);
        let Some(held) = shared.and_then(|r| r.members.iter_mut().find(|(m, _)| *m == member))
        else {
            return Err(BrokerError::NoSuchRoom);
        };
        name.clone_into(&mut held.1);
        self.log('r', seq, member, room, name);
        Ok(room)
    }

    /// `scripts::CLAIM` (no entry: answered at once).
    fn claim(&mut self, member: MemberId, key: &str) -> Completion {
        if self.names.get(key).is_some_and(|holder| *holder != member) {
            return Err(BrokerError::NameTaken);
        }
        if let Some(old) = self.held.get(&member).filter(|old| *old != key)
            && self.names.get(old) == Some(&member)
        {
            let old = old.clone();
            self.names.remove(&old);
        }
        self.names.insert(key.to_owned(), member);
        self.held.insert(member, key.to_owned());
        Ok(0)
    }

    /// `scripts::RELEASE`.
    fn release(&mut self, member: MemberId) {
        if let Some(old) = self.held.remove(&member)
            && self.names.get(&old) == Some(&member)
        {
            self.names.remove(&old);
        }
    }

    /// A chat's `XADD`: appended unconditionally (the readers drop non-members').
    fn chat(&mut self, seq: u64, member: MemberId, room: RoomId, text: &str) {
        let field = entry::chat(member.node, seq, member.client, room, text);
        self.log.push(field);
    }

    /// The rooms as `/rooms` must list them.
    fn listing(&self) -> Vec<RoomInfo> {
        self.rooms
            .iter()
            .map(|(&room_id, room)| RoomInfo {
                room_id,
                title: room.title.clone(),
                members: room.members.iter().map(|(_, n)| n.clone()).collect(),
                topic: None,
            })
            .collect()
    }

    /// The room `member` is in, if any.
    fn room_of(&self, member: MemberId) -> Option<RoomId> {
        self.rooms
            .iter()
            .find(|(_, room)| room.members.iter().any(|(m, _)| *m == member))
            .map(|(&id, _)| id)
    }
}

// ---------------------------------------------------------------------------------
// One node: `ClusterBroker` over the in-memory Redis, and the reader's work.
// ---------------------------------------------------------------------------------

/// The broker's own follow-up to an outcome (`ops::Then`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    Enter,
    Leave,
    Claim,
    Nothing,
}

/// One node's broker; see the module doc.
#[derive(Debug)]
struct NodeBroker {
    node: u64,
    redis: Arc<Mutex<Redis>>,
    replica: Mutex<Replica<Recorder>>,
    /// This node's clients in a room or entering one (`Shared::locals`): the room (0
    /// while a create is under way) and the mailbox.
    locals: Mutex<HashMap<ClientId, (RoomId, Recipient<Recorder>)>>,
    /// The last operation number handed out.
    seq: Mutex<u64>,
    /// Operations that wrote an entry, by number: the client awaiting the outcome
    /// (until this node applies the entry), and the follow-up.
    waiting: Mutex<HashMap<u64, (ClientId, Then)>>,
    /// Outcomes ready for their clients (what `Transport::complete` is handed).
    completions: Mutex<Vec<(ClientId, Completion)>>,
    /// How many log entries this node has applied.
    applied: Mutex<usize>,
}

/// `Reply<RoomId>` for an operation whose success carries nothing.
fn unit(reply: Reply<RoomId>) -> Reply<()> {
    match reply {
        Reply::Done(outcome) => Reply::Done(outcome.map(|_| ())),
        Reply::Pending => Reply::Pending,
    }
}

impl NodeBroker {
    fn new(node: u64, redis: &Arc<Mutex<Redis>>) -> Self {
        NodeBroker {
            node,
            redis: Arc::clone(redis),
            replica: Mutex::new(Replica::default()),
            locals: Mutex::new(HashMap::new()),
            seq: Mutex::new(0),
            waiting: Mutex::new(HashMap::new()),
            completions: Mutex::new(Vec::new()),
            applied: Mutex::new(0),
        }
    }

    fn member(&self, client: ClientId) -> MemberId {
        MemberId {
            node: self.node,
            client,
        }
    }

    fn next_seq(&self) -> u64 {
        let mut seq = lock(&self.seq);
        *seq += 1;
        *seq
    }

    /// Runs `script` on Redis for `client`: a refusal (or a claim) is completed at
    /// once, a change when this node applies its entry.
    fn call(
        &self,
        client: ClientId,
        then: Then,
        script: impl FnOnce(&mut Redis, u64) -> Completion,
    ) -> Reply<RoomId> {
        let seq = self.next_seq();
        let outcome = script(&mut lock(&self.redis), seq);
        if outcome.is_ok() && then != Then::Claim {
            lock(&self.waiting).insert(seq, (client, then));
        } else {
            self.settle(client, then, outcome);
        }
        Reply::Pending
    }

    /// A create or join: the member is registered as local first, so that applying
    /// the entry finds its mailbox.
    fn enter(
        &self,
        member: Member<'_, Recorder>,
        room: RoomId,
        script: impl FnOnce(&mut Redis, u64) -> Completion,
    ) -> Reply<RoomId> {
        let recipient = Recipient {
            mailbox: Arc::clone(member.mailbox),
            format: member.format,
            history: member.history,
            topics: member.moderation,
        };
        lock(&self.locals).insert(member.id, (room, recipient));
        self.call(member.id, Then::Enter, script)
    }

    /// The follow-up (`Shared::follow_up`), then the outcome to the client.
    fn settle(&self, client: ClientId, then: Then, outcome: Completion) {
        match (then, outcome) {
            (Then::Enter, Ok(room)) => {
                if let Some(local) = lock(&self.locals).get_mut(&client) {
                    local.0 = room;
                }
            }
            (Then::Enter, Err(_)) | (Then::Leave, Err(BrokerError::NoSuchRoom)) => {
                lock(&self.locals).remove(&client);
            }
            _ => {}
        }
        lock(&self.completions).push((client, outcome));
    }

    fn is_local_member(&self, client: ClientId, room: RoomId) -> bool {
        lock(&self.locals)
            .get(&client)
            .is_some_and(|(r, _)| *r == room)
    }

    /// The mailbox of `member` if it is a client of this node (`Shared::recipient`).
    fn recipient(&self, member: MemberId) -> Option<Recipient<Recorder>> {
        if member.node != self.node {
            return None;
        }
        lock(&self.locals)
            .get(&member.client)
            .map(|(_, to)| to.clone())
    }

    /// What the reader does with the next log entry (`reader::apply_reply`); false if
    /// this node has applied the whole log.
    fn apply_next(&self) -> bool {
        let at = *lock(&self.applied);
        let Some(field) = lock(&self.redis).log.get(at).cloned() else {
            return false;
        };
        *lock(&self.applied) = at + 1;
        let entry = Entry::parse(&field).expect("entries as the scripts write them");
        let mut out = Fanout::new();
        let at_stamp = chat_core::room::Stamp {
            time_ms: at as u64,
            seq: Some(at as u64 + 1),
        };
        let applied = lock(&self.replica).apply(
            &entry,
            at_stamp,
            |member| self.recipient(member),
            |member| member.node == self.node,
            &mut out,
        );
        assert!(!applied.orphan, "no client stops waiting: {entry:?}");
        assert!(applied.evicted.is_none(), "nobody is reaped: {entry:?}");
        if entry.member.node == self.node && applied.local_left {
            let mut locals = lock(&self.locals);
            if locals
                .get(&entry.member.client)
                .is_some_and(|(room, _)| *room == entry.room)
            {
                locals.remove(&entry.member.client);
            }
        }
        if entry.writer == self.node && entry.seq != 0 {
            let waiter = lock(&self.waiting).remove(&entry.seq);
            if let Some((client, then)) = waiter {
                self.settle(client, then, Ok(entry.room));
            }
        }
        true
    }
}

impl MessageBroker<Recorder> for NodeBroker {
    fn create_room(
        &self,
        creator: Member<'_, Recorder>,
        title: &str,
        _out: &mut Fanout<Recorder>,
    ) -> Reply<RoomId> {
        let (member, name) = (self.member(creator.id), creator.name);
        self.enter(creator, 0, |redis, seq| {
            redis.create(seq, member, name, title)
        })
    }

    fn join_room(
        &self,
        room: RoomId,
        joiner: Member<'_, Recorder>,
        _out: &mut Fanout<Recorder>,
    ) -> Reply<()> {
        let (member, name) = (self.member(joiner.id), joiner.name);
        unit(self.enter(joiner, room, |redis, seq| {
            redis.join(seq, member, room, name)
        }))
    }

    fn leave_room(
        &self,
        room: RoomId,
        leaver: Member<'_, Recorder>,
        why: Leaving,
        _out: &mut Fanout<Recorder>,
    ) -> Reply<()> {
        if !self.is_local_member(leaver.id, room) {
            return Reply::Done(match why {
                Leaving::Asked => Err(BrokerError::NoSuchRoom),
                Leaving::Disconnected => Ok(()),
            });
        }
        let member = self.member(leaver.id);
        match why {
            Leaving::Asked => unit(self.call(leaver.id, Then::Leave, |redis, seq| {
                redis.leave(seq, member, room, true)
            })),
            Leaving::Disconnected => {
                // Nobody waits for it.
                let seq = self.next_seq();
                let _ = lock(&self.redis).leave(seq, member, room, false);
                Reply::Done(Ok(()))
            }
        }
    }

    fn rename(
        &self,
        room: RoomId,
        renamed: Member<'_, Recorder>,
        _old: &str,
        _out: &mut Fanout<Recorder>,
    ) -> Reply<()> {
        if !self.is_local_member(renamed.id, room) {
            return Reply::Done(Err(BrokerError::NoSuchRoom));
        }
        let (member, name) = (self.member(renamed.id), renamed.name);
        unit(self.call(renamed.id, Then::Nothing, |redis, seq| {
            redis.rename(seq, member, room, name)
        }))
    }

    fn chat(
        &self,
        room: RoomId,
        sender: Member<'_, Recorder>,
        text: &str,
        _chat: &Encoded,
        _out: &mut Fanout<Recorder>,
    ) -> Result<usize, BrokerError> {
        let member = self.member(sender.id);
        let members = lock(&self.replica)
            .members_if_in(room, member)
            .ok_or(BrokerError::NoSuchRoom)?;
        let seq = self.next_seq();
        lock(&self.redis).chat(seq, member, room, text);
        Ok(members.saturating_sub(1))
    }

    fn listing(&self) -> Result<Arc<Listing>, BrokerError> {
        Ok(lock(&self.replica).listing())
    }

    fn claim_name(&self, claimer: Member<'_, Recorder>, key: &str) -> Reply<()> {
        let member = self.member(claimer.id);
        unit(self.call(claimer.id, Then::Claim, |redis, _| redis.claim(member, key)))
    }

    fn release_name(&self, id: ClientId) {
        lock(&self.redis).release(self.member(id));
    }

    fn abandon(&self, id: ClientId) {
        panic!("client {id} gone while awaiting: the runner never disconnects one");
    }

    fn room_count(&self) -> usize {
        lock(&self.replica).room_count()
    }
}

// ---------------------------------------------------------------------------------
// Clients, nodes, the cluster.
// ---------------------------------------------------------------------------------

/// What a client's step turns into: requests, or the connection going away.
#[derive(Debug, Clone)]
enum Action {
    Send(Request),
    Disconnect,
}

/// One test client on one node.
#[derive(Debug)]
struct Peer {
    client: Client,
    mailbox: Arc<Recorder>,
    format: WireFormat,
    /// Chats sent so far (the next chat's sequence number).
    chats: u32,
    /// Names taken so far (the next fresh name's suffix).
    names: u32,
    /// Each time it entered a room: the name it entered under, and whether it created
    /// the room (recorded when its room becomes `Some`, after a completion).
    entries: Vec<Entered>,
    /// The rest of its step, sent once it no longer awaits an outcome.
    backlog: VecDeque<Action>,
    /// Whether the last create or join it sent was a create.
    creating: bool,
    connected: bool,
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
            backlog: VecDeque::new(),
            creating: false,
            connected: true,
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

    /// Whether it may start a new step: connected, and done with the last one.
    fn idle(&self) -> bool {
        self.connected && !self.client.is_awaiting() && self.backlog.is_empty()
    }
}

/// One node: its broker (with its replica) and its clients.
#[derive(Debug)]
struct Node {
    broker: NodeBroker,
    peers: Vec<Peer>,
}

impl Node {
    /// Calls into the client of peer `at` with a turn on this node, recording an
    /// entry when its room becomes `Some`.
    fn drive(&mut self, at: usize, call: impl FnOnce(&mut Client, &mut Turn<'_, Recorder>)) {
        let peer = &mut self.peers[at];
        let was_in_room = peer.client.room().is_some();
        let mut out = Fanout::new();
        let mut turn = Turn {
            mailbox: &peer.mailbox,
            broker: &self.broker,
            out: &mut out,
            now: Instant::now(),
        };
        call(&mut peer.client, &mut turn);
        if !was_in_room && peer.client.room().is_some() {
            peer.entries.push(Entered {
                name: peer.client.name().to_owned(),
                created: peer.creating,
            });
        }
    }

    fn perform(&mut self, at: usize, action: Action) {
        match action {
            Action::Send(request) => {
                match &request {
                    Request::CreateRoom { .. } => self.peers[at].creating = true,
                    Request::JoinRoom { .. } => self.peers[at].creating = false,
                    Request::Rooms => self.check_listing_shows(at),
                    _ => {}
                }
                self.drive(at, |client, turn| {
                    client.handle_request(request, turn);
                });
            }
            Action::Disconnect => {
                self.drive(at, |client, turn| client.disconnect(turn));
                self.peers[at].connected = false;
            }
        }
    }

    /// Read your writes: a client's own room, under its own name, is in its node's
    /// listing (its entry was applied before it was told it entered).
    fn check_listing_shows(&self, at: usize) {
        let client = &self.peers[at].client;
        let Some(room) = client.room() else { return };
        let listing = lock(&self.broker.replica).listing();
        let info = listing.rooms().iter().find(|r| r.room_id == room);
        assert!(
            info.is_some_and(|r| r.members.iter().any(|m| m == client.name())),
            "{} is not listed in room {room} on its own node: {:?}",
            client.name(),
            listing.rooms()
        );
    }

    /// Hands outcomes to their clients and sends what their steps still hold, until
    /// neither is left; answers whether anything happened.
    fn settle(&mut self) -> bool {
        let mut any = false;
        loop {
            let ready = std::mem::take(&mut *lock(&self.broker.completions));
            let mut progress = !ready.is_empty();
            for (client, outcome) in ready {
                let at = self
                    .peers
                    .iter()
                    .position(|p| p.client.id() == client)
                    .expect("a client of this node");
                self.drive(at, |client, turn| {
                    client.complete(outcome, turn);
                });
            }
            for at in 0..self.peers.len() {
                if self.peers[at].client.is_awaiting() {
                    continue;
                }
                if let Some(action) = self.peers[at].backlog.pop_front() {
                    self.perform(at, action);
                    progress = true;
                }
            }
            if !progress {
                return any;
            }
            any = true;
        }
    }
}

/// What a script step asks a client to do (as in `tests/ordering.rs`).
#[derive(Debug, Clone)]
enum Act {
    Create,
    /// A fresh name, then `/join`: with `Some(k)`, of the `k`-th room that exists now
    /// (modulo their number), which may be gone by the time the join reaches the
    /// shared state; with `None` (or no room), of the next id, which does not exist.
    Join(Option<usize>),
    Leave,
    Rename,
    Chat,
    Rooms,
    Disconnect,
}

/// One step of a script.
#[derive(Debug, Clone)]
enum Step {
    /// Client `.0` (modulo the number of clients) does `.1`, if it is idle.
    Act(usize, Act),
    /// Node `.0` (modulo the number of nodes) applies up to `.1` more log entries.
    Apply(usize, usize),
}

/// Nodes sharing one in-memory Redis.
#[derive(Debug)]
struct Cluster {
    redis: Arc<Mutex<Redis>>,
    nodes: Vec<Node>,
    /// Client index → (node, position among the node's peers).
    place: Vec<(usize, usize)>,
    /// The next title's number.
    titles: usize,
}

impl Cluster {
    /// Nodes 1, 2, …, each with clients in the given formats; client indices run on
    /// across nodes.
    fn new(layout: &[Vec<WireFormat>]) -> Self {
        let redis = Arc::new(Mutex::new(Redis::default()));
        let mut place = Vec::new();
        let nodes = layout
            .iter()
            .enumerate()
            .map(|(n, formats)| Node {
                broker: NodeBroker::new(n as u64 + 1, &redis),
                peers: formats
                    .iter()
                    .enumerate()
                    .map(|(at, &format)| {
                        place.push((n, at));
                        Peer::new(place.len() - 1, format)
                    })
                    .collect(),
            })
            .collect();
        Cluster {
            redis,
            nodes,
            place,
            titles: 1,
        }
    }

    fn peer(&self, who: usize) -> &Peer {
        let (node, at) = self.place[who];
        &self.nodes[node].peers[at]
    }

    /// Client `who` does `act`, if it is idle (else the step is skipped).
    fn act(&mut self, who: usize, act: &Act) {
        let (node, at) = self.place[who % self.place.len()];
        let room_to_join = |choice: Option<usize>| {
            let redis = lock(&self.redis);
            let count = redis.rooms.len();
            let exists = choice.and_then(|k| redis.rooms.keys().nth(k % count.max(1)));
            exists.copied().unwrap_or(redis.room_seq + 1)
        };
        let peer = &mut self.nodes[node].peers[at];
        if !peer.idle() {
            return;
        }
        let actions = match act {
            Act::Create => {
                let title = format!("t{}", self.titles);
                self.titles += 1;
                vec![Action::Send(Request::CreateRoom { title })]
            }
            Act::Join(choice) => vec![
                Action::Send(Request::Name {
                    name: peer.fresh_name(),
                }),
                Action::Send(Request::JoinRoom {
                    room_id: room_to_join(*choice),
                }),
            ],
            Act::Leave => vec![Action::Send(Request::LeaveRoom)],
            Act::Rename => vec![Action::Send(Request::Name {
                name: peer.fresh_name(),
            })],
            Act::Chat => vec![Action::Send(Request::Chat {
                text: peer.next_chat(),
            })],
            Act::Rooms => vec![Action::Send(Request::Rooms)],
            Act::Disconnect => vec![Action::Disconnect],
        };
        peer.backlog.extend(actions);
        self.nodes[node].settle();
    }

    /// Client `who` sends `request` (it must be idle).
    fn send(&mut self, who: usize, request: Request) {
        let (node, at) = self.place[who];
        let peer = &mut self.nodes[node].peers[at];
        assert!(peer.idle(), "p{who} is busy");
        peer.backlog.push_back(Action::Send(request));
        self.nodes[node].settle();
    }

    /// Node `node` applies up to `count` more log entries.
    fn apply(&mut self, node: usize, count: usize) {
        let count_of_nodes = self.nodes.len();
        let node = &mut self.nodes[node % count_of_nodes];
        for _ in 0..count {
            if !node.broker.apply_next() {
                break;
            }
        }
        node.settle();
    }

    fn run(&mut self, step: &Step) {
        match step {
            Step::Act(who, act) => self.act(*who, act),
            Step::Apply(node, count) => self.apply(*node, *count),
        }
    }

    /// Every node applies the whole log, and every outcome reaches its client, until
    /// nothing is left to do.
    fn finish(&mut self) {
        loop {
            let mut any = false;
            for node in &mut self.nodes {
                while node.broker.apply_next() {
                    any = true;
                }
                any |= node.settle();
            }
            if !any {
                return;
            }
        }
    }

    /// Everything the module doc promises, after [`Cluster::finish`].
    fn check(&self) {
        let redis = lock(&self.redis);
        let log_len = redis.log.len();
        let peers: Vec<&Peer> = (0..self.place.len()).map(|who| self.peer(who)).collect();

        // Nobody waits, every node is at the log's end, with nothing left over.
        for (n, node) in self.nodes.iter().enumerate() {
            assert_eq!(*lock(&node.broker.applied), log_len, "node {n} applied all");
            assert!(
                lock(&node.broker.waiting).is_empty(),
                "node {n}: waiters left"
            );
            assert!(lock(&node.broker.completions).is_empty());
        }
        for peer in &peers {
            assert!(
                !peer.client.is_awaiting() && peer.backlog.is_empty(),
                "p{} still waits",
                peer.index()
            );
        }

        // The guarantees, on every client of every node.
        let received: Vec<_> = peers
            .iter()
            .map(|peer| {
                let stream = peer.mailbox.received(peer.format);
                (peer.index(), stream, peer.entries.as_slice())
            })
            .collect();
        guarantees::check_guarantees(&received);

        // Every client's room notices are exactly the log's.
        let expected = room_notices(&redis.log, peers.len());
        for ((index, stream, _), expected) in received.iter().zip(&expected) {
            let got: Vec<Seen> = stream
                .iter()
                .map(classify)
                .filter(|seen| *seen != Seen::Reply)
                .collect();
            assert_eq!(&got, expected, "p{index}'s room notices");
        }

        // One state everywhere: every replica lists what Redis holds, and every client
        // is where Redis says it is.
        let shared = redis.listing();
        for (n, node) in self.nodes.iter().enumerate() {
            let listing = lock(&node.broker.replica).listing();
            assert_eq!(listing.rooms(), shared.as_slice(), "node {n}'s replica");
        }
        for (n, node) in self.nodes.iter().enumerate() {
            for peer in &node.peers {
                let member = node.broker.member(peer.client.id());
                let (room, name) = (redis.room_of(member), redis.held.get(&member));
                if peer.connected {
                    assert_eq!(peer.client.room(), room, "p{} on node {n}", peer.index());
                } else {
                    assert!(
                        room.is_none() && name.is_none(),
                        "a ghost of p{}",
                        peer.index()
                    );
                }
            }
        }
    }
}

/// What each client (by index) must be told about its rooms, from the log alone, as
/// `docs/PROTOCOL.md` §4 says: its entry and leave notices, and every event of its
/// room between them, in the log's order (its own rename notice and its replies are
/// not room notices).
fn room_notices(log: &[String], clients: usize) -> Vec<Vec<Seen>> {
    /// Title, and members (client index, name) in join order.
    type Room = (String, Vec<(usize, String)>);
    let mut rooms: BTreeMap<RoomId, Room> = BTreeMap::new();
    let mut told = vec![Vec::new(); clients];
    let others = |room: &Room, who: usize, event: guarantees::Event, told: &mut [Vec<Seen>]| {
        for (member, _) in room.1.iter().filter(|(m, _)| *m != who) {
            told[*member].push(Seen::Event(event.clone()));
        }
    };
    for field in log {
        let entry = Entry::parse(field).expect("entries as the scripts write them");
        let who = entry.member.client as usize - 1;
        if let Event::Created { name, title, .. } = entry.event {
            rooms.insert(entry.room, (title.to_owned(), vec![(who, name.to_owned())]));
            told[who].push(Seen::Entered(title.to_owned()));
            continue;
        }
        let Some(room) = rooms.get_mut(&entry.room) else {
            continue;
        };
        let at = room.1.iter().position(|(m, _)| *m == who);
        match (entry.event, at) {
            (Event::Joined { name, .. }, None) => {
                others(
                    room,
                    who,
                    guarantees::Event::Joined(name.to_owned()),
                    &mut told,
                );
                room.1.push((who, name.to_owned()));
                told[who].push(Seen::Entered(room.0.clone()));
            }
            (Event::Left { notify_self }, Some(at)) => {
                let (_, name) = room.1.remove(at);
                others(room, who, guarantees::Event::Left(name), &mut told);
                if notify_self {
                    told[who].push(Seen::LeftRoom(room.0.clone()));
                }
                if room.1.is_empty() {
                    rooms.remove(&entry.room);
                }
            }
            (Event::Renamed { name }, Some(at)) => {
                let old = std::mem::replace(&mut room.1[at].1, name.to_owned());
                let event = guarantees::Event::Renamed {
                    old,
                    new: name.to_owned(),
                };
                others(room, who, event, &mut told);
            }
            (Event::Chat { text }, Some(at)) => {
                let event = guarantees::Event::Chat {
                    member: room.1[at].1.clone(),
                    text: text.to_owned(),
                };
                others(room, who, event, &mut told);
            }
            // Not a member at this point of the log: every node drops it.
            (Event::Chat { .. }, None) => {}
            (event, _) => panic!("the model never writes {event:?} for p{who} there"),
        }
    }
    told
}

// ---------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        4 => Just(Act::Create),
        10 => proptest::option::weighted(0.85, 0usize..4).prop_map(Act::Join),
        3 => Just(Act::Leave),
        3 => Just(Act::Rename),
        12 => Just(Act::Chat),
        2 => Just(Act::Rooms),
        1 => Just(Act::Disconnect),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0usize..12, act()).prop_map(|(who, act)| Step::Act(who, act)),
        2 => (0usize..3, 1usize..10).prop_map(|(node, count)| Step::Apply(node, count)),
    ]
}

fn format() -> impl Strategy<Value = WireFormat> {
    prop_oneof![Just(WireFormat::Json), Just(WireFormat::Protobuf)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Two or three nodes, each applying the one log at its own pace: every client on
    /// every node gets its rooms' events in the log's order, and every replica ends
    /// with the same rooms.
    #[test]
    fn replicas_fed_one_log_keep_the_guarantees(
        layout in proptest::collection::vec(proptest::collection::vec(format(), 1..5), 2..4),
        script in proptest::collection::vec(step(), 1..250),
    ) {
        let mut cluster = Cluster::new(&layout);
        for step in &script {
            cluster.run(step);
        }
        cluster.finish();
        cluster.check();
    }
}

/// Everything peer `who` was sent so far, as text (`[name] text` for chats).
fn heard(cluster: &Cluster, who: usize) -> Vec<String> {
    let peer = cluster.peer(who);
    peer.mailbox
        .received(peer.format)
        .into_iter()
        .map(|response| match response {
            Response::SystemMessage { text } => text.into_owned(),
            Response::Chat { member, text } => format!("[{member}] {text}"),
            other => format!("{other:?}"),
        })
        .collect()
}

/// Node A's client creates a room and chats; node B's joins and leaves while B lags
/// behind the log: B's client is told each event when B applies it, A's when A does.
#[test]
fn a_lagging_node_delivers_the_same_events_when_it_catches_up() {
    const A: usize = 0;
    const B: usize = 1;
    let (a, b) = (0, 1);
    let mut cluster = Cluster::new(&[vec![WireFormat::Json], vec![WireFormat::Protobuf]]);
    let in_room = |cluster: &Cluster, who| cluster.peer(who).client.room();
    let awaiting = |cluster: &Cluster, who| cluster.peer(who).client.is_awaiting();

    cluster.send(a, Request::CreateRoom { title: "t1".into() });
    assert!(awaiting(&cluster, a), "the create waits for A to apply it");
    cluster.apply(A, 1);
    assert_eq!(in_room(&cluster, a), Some(1));

    // B has applied nothing; the join still succeeds (Redis has the room) but waits
    // until B applies it.
    cluster.send(b, Request::JoinRoom { room_id: 1 });
    assert!(awaiting(&cluster, b));
    cluster.apply(A, 1);
    cluster.send(
        a,
        Request::Chat {
            text: "p0#1".into(),
        },
    );
    cluster.apply(A, 1);
    assert_eq!(
        heard(&cluster, a),
        [texts::entered_self("t1"), texts::entered_others("p1")]
    );
    assert!(heard(&cluster, b).is_empty(), "B lags: nothing yet");
    assert!(awaiting(&cluster, b));

    cluster.apply(B, 3);
    assert_eq!(in_room(&cluster, b), Some(1));
    assert_eq!(
        heard(&cluster, b),
        [texts::entered_self("t1"), "[p0] p0#1".to_owned()]
    );

    cluster.send(b, Request::LeaveRoom);
    cluster.apply(A, 1);
    assert_eq!(
        heard(&cluster, a)[2..],
        [texts::left_others("p1")],
        "A applies the leave before B does"
    );
    assert!(awaiting(&cluster, b), "still in until B applies its leave");
    assert_eq!(heard(&cluster, b).len(), 2);
    cluster.apply(B, 1);
    assert_eq!(in_room(&cluster, b), None);
    assert_eq!(heard(&cluster, b)[2..], [texts::left_self("t1")]);

    cluster.finish();
    cluster.check();
    let listing = lock(&cluster.nodes[B].broker.replica).listing();
    assert_eq!(listing.rooms()[0].members, ["p0"]);
}
