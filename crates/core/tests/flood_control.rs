//! Flood control in the core: a client over its limit is slowed down (its request
//! waits, it is told once), and one that stays over it is disconnected; others in the
//! room see nothing of it but its messages, later, and finally its departure.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chat_core::{
    Client, Delivered, EndReason, Fanout, FloodLimits, LocalBroker, Mailbox, Outcome, Rate, Turn,
    texts,
};
use chat_proto::frame::Frames;
use chat_proto::{Request, Response, ResponseDecoder, WireFormat};

#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<Bytes>>);

impl Mailbox for Recorder {
    fn deliver(&self, frames: &Bytes) -> Delivered {
        self.0.lock().unwrap().push(frames.clone());
        Delivered::Queued
    }
}

impl Recorder {
    fn take(&self) -> Vec<Response<'static>> {
        let mut decoder = ResponseDecoder::new(WireFormat::Json);
        self.0
            .lock()
            .unwrap()
            .drain(..)
            .flat_map(|m| {
                Frames::new(&m)
                    .filter_map(|f| decoder.feed(f))
                    .map(|r| r.unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

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

#[test]
fn over_the_limit_a_chat_waits_and_the_sender_is_told_once() {
    let t0 = Instant::now();
    let broker = LocalBroker::new();
    let mut out = Fanout::new();
    let (flooder_box, reader_box) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    let mut flooder =
        Client::new(1, "f".into(), Some(WireFormat::Json)).with_flood_limits(LIMITS, t0);
    let mut reader = Client::new(2, "r".into(), Some(WireFormat::Json));
    macro_rules! turn {
        ($mailbox:expr, $now:expr) => {
            Turn {
                mailbox: $mailbox,
                broker: &broker,
                out: &mut out,
                now: $now,
            }
        };
    }
    assert_eq!(
        flooder.handle_request(
            Request::CreateRoom { title: "t".into() },
            &mut turn!(&flooder_box, t0)
        ),
        Outcome::Continue
    );
    reader.handle_request(
        Request::JoinRoom { room_id: 1 },
        &mut turn!(&reader_box, t0),
    );
    flooder_box.take();
    reader_box.take();

    for n in 0..2 {
        let outcome = flooder.handle_request(chat(&n.to_string()), &mut turn!(&flooder_box, t0));
        assert_eq!(outcome, Outcome::Continue, "within the burst");
    }
    let Outcome::Throttled(until) = flooder.handle_request(chat("2"), &mut turn!(&flooder_box, t0))
    else {
        panic!("the third chat at once is over the limit");
    };
    assert_eq!(until, t0 + Duration::from_millis(100));
    assert!(flooder.is_waiting());
    assert_eq!(
        flooder_box.take(),
        vec![Response::system(texts::FLOOD_SLOW_DOWN)]
    );
    // Too early: still waiting, and not told again.
    let early = t0 + Duration::from_millis(50);
    assert!(matches!(
        flooder.resume(&mut turn!(&flooder_box, early)),
        Outcome::Throttled(_)
    ));
    assert_eq!(flooder_box.take(), vec![]);
    assert_eq!(
        flooder.resume(&mut turn!(&flooder_box, until)),
        Outcome::Continue
    );
    assert!(!flooder.is_waiting());
    let texts: Vec<_> = reader_box
        .take()
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
    let broker = LocalBroker::new();
    let mut out = Fanout::new();
    let (flooder_box, reader_box) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
    let mut flooder =
        Client::new(1, "f".into(), Some(WireFormat::Json)).with_flood_limits(LIMITS, t0);
    let mut reader = Client::new(2, "r".into(), Some(WireFormat::Json));
    macro_rules! turn {
        ($mailbox:expr, $now:expr) => {
            Turn {
                mailbox: $mailbox,
                broker: &broker,
                out: &mut out,
                now: $now,
            }
        };
    }
    flooder.handle_request(
        Request::CreateRoom { title: "t".into() },
        &mut turn!(&flooder_box, t0),
    );
    reader.handle_request(
        Request::JoinRoom { room_id: 1 },
        &mut turn!(&reader_box, t0),
    );
    flooder_box.take();
    reader_box.take();

    // A request every 10 ms at a rate of 10/s: throttled all along.
    let mut now = t0;
    let mut sent = 0;
    let ended = loop {
        let outcome = if flooder.is_waiting() {
            flooder.resume(&mut turn!(&flooder_box, now))
        } else {
            sent += 1;
            flooder.handle_request(chat("x"), &mut turn!(&flooder_box, now))
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
    assert!(flooder.is_ended() && flooder.room().is_none());
    let told = flooder_box.take();
    assert_eq!(
        told.first(),
        Some(&Response::system(texts::FLOOD_SLOW_DOWN))
    );
    assert_eq!(
        told.last(),
        Some(&Response::system(texts::FLOOD_DISCONNECT))
    );
    let seen = reader_box.take();
    assert_eq!(
        seen.last(),
        Some(&Response::system(texts::left_others("f")))
    );
    assert!(sent > 2);
}
