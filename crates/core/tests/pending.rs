//! Commands whose broker answers later ([`Reply::Pending`]): the client waits, takes
//! the outcome through `Client::complete`, and ends exactly where an immediate answer
//! would have left it — including `/name`'s second step and its way back.
//!
//! The broker here wraps a [`LocalBroker`]: it does each operation at once (so the
//! deliveries are the real ones) but keeps the outcome and answers `Pending`, as a
//! cluster does while its round trip is under way.

use std::sync::{Arc, Mutex};

use chat_core::{
    BrokerError, Client, ClientId, Completion, Encoded, Fanout, Leaving, Listing, LocalBroker,
    Member, MessageBroker, Outcome, Reply, RoomId, Turn, texts,
};
use chat_proto::{Request, Response, WireFormat};

mod support;
use support::Recorder;

/// See the module doc.
#[derive(Debug, Default)]
struct Deferred {
    inner: LocalBroker<Recorder>,
    /// The outcome of the operation that answered `Pending`.
    held: Mutex<Option<Completion>>,
    /// The next rename fails as if the shared state were out of reach.
    fail_rename: Mutex<bool>,
    abandoned: Mutex<Vec<ClientId>>,
}

impl Deferred {
    fn hold<T>(&self, reply: Reply<T>, to_completion: impl FnOnce(T) -> RoomId) -> Reply<T> {
        let Reply::Done(outcome) = reply else {
            panic!("the local broker never waits")
        };
        let previous = self
            .held
            .lock()
            .unwrap()
            .replace(outcome.map(to_completion));
        assert!(previous.is_none(), "one operation at a time per client");
        Reply::Pending
    }

    fn take(&self) -> Completion {
        self.held
            .lock()
            .unwrap()
            .take()
            .expect("an operation waits")
    }
}

impl MessageBroker<Recorder> for Deferred {
    fn create_room(
        &self,
        creator: Member<'_, Recorder>,
        title: &str,
        out: &mut Fanout<Recorder>,
    ) -> Reply<RoomId> {
        self.hold(self.inner.create_room(creator, title, out), |id| id)
    }
    fn join_room(
        &self,
        room: RoomId,
        m: Member<'_, Recorder>,
        out: &mut Fanout<Recorder>,
    ) -> Reply<()> {
        self.hold(self.inner.join_room(room, m, out), |()| 0)
    }
    fn leave_room(
        &self,
        room: RoomId,
        m: Member<'_, Recorder>,
        why: Leaving,
        out: &mut Fanout<Recorder>,
    ) -> Reply<()> {
        let reply = self.inner.leave_room(room, m, why, out);
        if why == Leaving::Disconnected {
            return reply;
        }
        self.hold(reply, |()| 0)
    }
    fn rename(
        &self,
        room: RoomId,
        m: Member<'_, Recorder>,
        old: &str,
        out: &mut Fanout<Recorder>,
    ) -> Reply<()> {
        if std::mem::take(&mut *self.fail_rename.lock().unwrap()) {
            return self.hold(Reply::Done(Err(BrokerError::Unavailable)), |()| 0);
        }
        self.hold(self.inner.rename(room, m, old, out), |()| 0)
    }
    fn chat(
        &self,
        room: RoomId,
        sender: Member<'_, Recorder>,
        text: &str,
        chat: &Encoded,
        out: &mut Fanout<Recorder>,
    ) -> Result<usize, BrokerError> {
        self.inner.chat(room, sender, text, chat, out)
    }
    fn listing(&self) -> Result<Arc<Listing>, BrokerError> {
        self.inner.listing()
    }
    fn claim_name(&self, member: Member<'_, Recorder>, key: &str) -> Reply<()> {
        self.hold(self.inner.claim_name(member, key), |()| 0)
    }
    fn release_name(&self, id: ClientId) {
        self.inner.release_name(id);
    }
    fn abandon(&self, id: ClientId) {
        self.abandoned.lock().unwrap().push(id);
    }
    fn room_count(&self) -> usize {
        self.inner.room_count()
    }
}

struct Peer {
    client: Client,
    mailbox: Arc<Recorder>,
}

impl Peer {
    fn new(id: ClientId, name: &str) -> Self {
        Peer {
            client: Client::new(id, name.into(), Some(WireFormat::Json)),
            mailbox: Arc::new(Recorder::default()),
        }
    }

    fn send(&mut self, broker: &Deferred, request: Request) -> Outcome {
        let mut out = Fanout::new();
        let mut turn = Turn {
            mailbox: &self.mailbox,
            broker,
            out: &mut out,
            now: std::time::Instant::now(),
        };
        self.client.handle_request(request, &mut turn)
    }

    fn complete(&mut self, broker: &Deferred) -> Outcome {
        let mut out = Fanout::new();
        let mut turn = Turn {
            mailbox: &self.mailbox,
            broker,
            out: &mut out,
            now: std::time::Instant::now(),
        };
        let outcome = broker.take();
        self.client.complete(outcome, &mut turn)
    }

    fn texts(&self) -> Vec<String> {
        self.mailbox
            .take(WireFormat::Json)
            .into_iter()
            .map(|response| match response {
                Response::SystemMessage { text } => text.into_owned(),
                other => format!("{other:?}"),
            })
            .collect()
    }
}

#[test]
fn create_join_rename_and_leave_finish_when_the_outcome_comes() {
    let broker = Deferred::default();
    let (mut a, mut b) = (Peer::new(1, "a"), Peer::new(2, "b"));

    let create = Request::CreateRoom { title: "t".into() };
    assert_eq!(a.send(&broker, create), Outcome::Waiting);
    assert!(a.client.is_awaiting());
    assert_eq!(
        a.client.room(),
        None,
        "not in the room until the outcome says so"
    );
    assert_eq!(a.complete(&broker), Outcome::Continue);
    assert!(!a.client.is_awaiting());
    assert_eq!(a.client.room(), Some(1));

    assert_eq!(
        b.send(&broker, Request::JoinRoom { room_id: 1 }),
        Outcome::Waiting
    );
    assert_eq!(b.complete(&broker), Outcome::Continue);
    assert_eq!(b.client.room(), Some(1));

    // `/name` is two steps: the claim, then the rename in the room.
    assert_eq!(
        b.send(&broker, Request::Name { name: "bee".into() }),
        Outcome::Waiting
    );
    assert_eq!(
        b.complete(&broker),
        Outcome::Waiting,
        "the claim, then the rename"
    );
    assert_eq!(b.complete(&broker), Outcome::Continue);
    assert_eq!(b.client.name(), "bee");

    assert_eq!(b.send(&broker, Request::LeaveRoom), Outcome::Waiting);
    assert_eq!(b.client.room(), Some(1), "still in until the leave is done");
    assert_eq!(b.complete(&broker), Outcome::Continue);
    assert_eq!(b.client.room(), None);

    assert_eq!(
        a.texts(),
        [
            texts::entered_self("t"),
            texts::entered_others("b"),
            texts::renamed_others("b", "bee"),
            texts::left_others("bee"),
        ]
    );
    assert_eq!(
        b.texts(),
        [
            texts::entered_self("t"),
            texts::renamed_self("bee"),
            texts::left_self("t"),
        ]
    );
}

#[test]
fn refusals_that_come_later_read_as_refusals_at_once_do() {
    let broker = Deferred::default();
    let (mut a, mut b) = (Peer::new(1, "a"), Peer::new(2, "b"));
    assert_eq!(
        a.send(&broker, Request::Name { name: "x".into() }),
        Outcome::Waiting
    );
    a.complete(&broker);
    assert_eq!(
        b.send(&broker, Request::Name { name: "x".into() }),
        Outcome::Waiting
    );
    b.complete(&broker);
    assert_eq!(b.client.name(), "b");
    assert_eq!(
        b.send(&broker, Request::JoinRoom { room_id: 9 }),
        Outcome::Waiting
    );
    b.complete(&broker);
    assert_eq!(b.client.room(), None);
    assert_eq!(b.texts(), [texts::NAME_TAKEN, texts::NO_SUCH_ROOM]);
}

#[test]
fn a_rename_the_room_could_not_take_gives_the_old_name_back() {
    let broker = Deferred::default();
    let (mut a, mut b) = (Peer::new(1, "a"), Peer::new(2, "b"));
    a.send(&broker, Request::CreateRoom { title: "t".into() });
    a.complete(&broker);
    a.texts();
    *broker.fail_rename.lock().unwrap() = true;
    assert_eq!(
        a.send(&broker, Request::Name { name: "new".into() }),
        Outcome::Waiting
    );
    assert_eq!(a.complete(&broker), Outcome::Waiting, "the rename");
    assert_eq!(
        a.complete(&broker),
        Outcome::Waiting,
        "the old name, claimed back"
    );
    assert_eq!(a.complete(&broker), Outcome::Continue);
    assert_eq!(a.client.name(), "a");
    assert_eq!(a.texts(), [texts::UNAVAILABLE]);
    // The new name was given up: someone else can take it.
    b.send(&broker, Request::Name { name: "new".into() });
    b.complete(&broker);
    assert_eq!(b.client.name(), "new");
}

#[test]
fn a_client_gone_while_waiting_abandons_its_operation() {
    let broker = Deferred::default();
    let mut a = Peer::new(1, "a");
    a.send(&broker, Request::CreateRoom { title: "t".into() });
    let mut out = Fanout::new();
    let mut turn = Turn {
        mailbox: &a.mailbox,
        broker: &broker,
        out: &mut out,
        now: std::time::Instant::now(),
    };
    a.client.disconnect(&mut turn);
    assert_eq!(*broker.abandoned.lock().unwrap(), [1]);
    // A late outcome changes nothing.
    let late = broker.take();
    assert_eq!(a.client.complete(late, &mut turn), Outcome::Continue);
    assert_eq!(a.client.room(), None);
}
