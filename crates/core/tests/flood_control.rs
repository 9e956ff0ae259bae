//! Flood control in the core: a client over its limit is slowed down (its request
//! waits, it is told once), and one that stays over it is disconnected; others in the
//! room see nothing of it but its messages, later, and finally its departure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::{Client, EndReason, Fanout, FloodLimits, LocalBroker, Outcome, Rate, Turn, texts};
use chat_proto::{Request, Response, WireFormat};

mod support;
use support::Recorder;

const LIMITS: FloodLimits = FloodLimits {
    chat: Rate {
        per_second: 10.0,
        burst: 2.0,
    },
    command: Rate {
        per_second: 1.0,
        burst: 1.0,
    },
    grace: Duration::from_secs(5),
};

fn chat(text: &str) -> Request {
    Request::Chat { text: text.into() }
}

/// Room `t`, created by the flood-limited client `f` and joined by a reader `r`, with
/// both mailboxes emptied.
struct Room {
    broker: LocalBroker<Recorder>,
    out: Fanout<Recorder>,
    flooder: Client,
    flooder_box: Arc<Recorder>,
    reader_box: Arc<Recorder>,
}

impl Room {
    /// The room at `t0`, and what the flooder's `/create` came to.
    fn new(t0: Instant) -> (Room, Outcome) {
        let mut room = Room {
            broker: LocalBroker::new(),
            out: Fanout::new(),
            flooder: Client::new(1, "f".into(), Some(WireFormat::Json))
                .with_flood_limits(LIMITS, t0),
            flooder_box: Arc::new(Recorder::default()),
            reader_box: Arc::new(Recorder::default()),
        };
        let created = room.send(Request::CreateRoom { title: "t".into() }, t0);
        let mut reader = Client::new(2, "r".into(), Some(WireFormat::Json));
        let mut turn = Turn {
            mailbox: &room.reader_box,
            broker: &room.broker,
            out: &mut room.out,
            now: t0,
        };
        reader.handle_request(Request::JoinRoom { room_id: 1 }, &mut turn);
        room.flooder_box.take(WireFormat::Json);
        room.reader_box.take(WireFormat::Json);
        (room, created)
    }

    /// The flooder sends `request` at `now`.
    fn send(&mut self, request: Request, now: Instant) -> Outcome {
        let mut turn = Turn {
            mailbox: &self.flooder_box,
            broker: &self.broker,
            out: &mut self.out,
            now,
        };
        self.flooder.handle_request(request, &mut turn)
    }

    /// The flooder's waiting request is tried again at `now`.
    fn resume(&mut self, now: Instant) -> Outcome {
        let mut turn = Turn {
            mailbox: &self.flooder_box,
            broker: &self.broker,
            out: &mut self.out,
            now,
        };
        self.flooder.resume(&mut turn)
    }
}

#[test]
fn over_the_limit_a_chat_waits_and_the_sender_is_told_once() {
    let t0 = Instant::now();
    let (mut room, created) = Room::new(t0);
    assert_eq!(created, Outcome::Continue);

    for n in 0..2 {
        let outcome = room.send(chat(&n.to_string()), t0);
        assert_eq!(outcome, Outcome::Continue, "within the burst");
    }
    let Outcome::Throttled(until) = room.send(chat("2"), t0) else {
        panic!("the third chat at once is over the limit");
    };
    assert_eq!(until, t0 + Duration::from_millis(100));
    assert!(room.flooder.is_waiting());
    assert_eq!(
        room.flooder_box.take(WireFormat::Json),
        vec![Response::system(texts::FLOOD_SLOW_DOWN)]
    );
    // Too early: still waiting, and not told again.
    let early = t0 + Duration::from_millis(50);
    assert!(matches!(room.resume(early), Outcome::Throttled(_)));
    assert_eq!(room.flooder_box.take(WireFormat::Json), vec![]);
    assert_eq!(room.resume(until), Outcome::Continue);
    assert!(!room.flooder.is_waiting());
    let texts: Vec<_> = room
        .reader_box
        .take(WireFormat::Json)
        .into_iter()
        .map(|r| match r {
            Response::Chat { text, .. } => text.into_owned(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(texts, ["0", "1", "2"], "all delivered, in order");
}

#[test]
fn a_client_that_stays_over_the_limit_is_disconnected() {
    let t0 = Instant::now();
    let (mut room, _) = Room::new(t0);

    // A request every 10 ms at a rate of 10/s: throttled all along.
    let mut now = t0;
    let mut sent = 0;
    let ended = loop {
        let outcome = if room.flooder.is_waiting() {
            room.resume(now)
        } else {
            sent += 1;
            room.send(chat("x"), now)
        };
        match outcome {
            Outcome::Ended(reason) => break (reason, now),
            Outcome::Continue | Outcome::Throttled(_) => {}
            other => panic!("{other:?}"),
        }
        now += Duration::from_millis(10);
        assert!(now < t0 + Duration::from_secs(60), "never disconnected");
    };
    assert_eq!(ended.0, EndReason::Flooding);
    assert!(ended.1 >= t0 + LIMITS.grace, "not before the grace ran out");
    assert!(room.flooder.is_ended() && room.flooder.room().is_none());
    let told = room.flooder_box.take(WireFormat::Json);
    assert_eq!(
        told.first(),
        Some(&Response::system(texts::FLOOD_SLOW_DOWN))
    );
    assert_eq!(
        told.last(),
        Some(&Response::system(texts::FLOOD_DISCONNECT))
    );
    let seen = room.reader_box.take(WireFormat::Json);
    assert_eq!(
        seen.last(),
        Some(&Response::system(texts::left_others("f")))
    );
    assert!(sent > 2);
}
