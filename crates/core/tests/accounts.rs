//! The `accounts` extension's rules (`command/account.rs`) against a local broker
//! with an in-memory backend that answers at once or later: who may register what,
//! the password rules, a registered name (and its look-alikes) kept for its account,
//! `/login` giving it back, `/logout` taking it away, `/password`, and a client that
//! did not opt in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chat_core::{
    AccountBackend, BrokerError, Client, ClientId, Completion, Fanout, LocalBroker, Member,
    Outcome, Reply, Turn, texts,
};
use chat_proto::{Request, Response, WireFormat};

mod support;
use support::Recorder;

/// Accounts in a map, passwords kept as they are (this is a test of the rules, not of
/// hashing). With `deferred`, every operation answers `Pending` and its outcome waits
/// in `held` for the test to hand it over.
#[derive(Debug, Default)]
struct Backend {
    accounts: Mutex<HashMap<String, (String, String)>>,
    deferred: bool,
    held: Mutex<Vec<Completion>>,
}

impl Backend {
    fn answer(&self, outcome: Result<(), BrokerError>) -> Reply<()> {
        if self.deferred {
            self.held.lock().unwrap().push(outcome.map(|()| 0));
            Reply::Pending
        } else {
            Reply::Done(outcome)
        }
    }
}

impl AccountBackend<Recorder> for Backend {
    fn is_registered(&self, key: &str) -> bool {
        self.accounts.lock().unwrap().contains_key(key)
    }

    fn registered_name(&self, key: &str) -> Option<String> {
        self.accounts
            .lock()
            .unwrap()
            .get(key)
            .map(|(name, _)| name.clone())
    }

    fn register(&self, member: Member<'_, Recorder>, key: &str, password: &str) -> Reply<()> {
        let mut accounts = self.accounts.lock().unwrap();
        if accounts.contains_key(key) {
            return self.answer(Err(BrokerError::NameTaken));
        }
        accounts.insert(key.into(), (member.name.into(), password.into()));
        drop(accounts);
        self.answer(Ok(()))
    }

    fn login(&self, _: Member<'_, Recorder>, key: &str, password: &str) -> Reply<()> {
        let right = self
            .accounts
            .lock()
            .unwrap()
            .get(key)
            .is_some_and(|(_, p)| p == password);
        self.answer(if right {
            Ok(())
        } else {
            Err(BrokerError::BadCredentials)
        })
    }

    fn change_password(
        &self,
        _: Member<'_, Recorder>,
        key: &str,
        old: &str,
        new: &str,
    ) -> Reply<()> {
        let mut accounts = self.accounts.lock().unwrap();
        let Some((_, password)) = accounts.get_mut(key).filter(|(_, p)| p == old) else {
            drop(accounts);
            return self.answer(Err(BrokerError::BadCredentials));
        };
        *password = new.into();
        drop(accounts);
        self.answer(Ok(()))
    }
}

struct Peer {
    client: Client,
    mailbox: Arc<Recorder>,
}

impl Peer {
    fn new(id: ClientId) -> Self {
        Peer {
            client: Client::new(id, format!("(127.0.0.1, {id})"), Some(WireFormat::Json)),
            mailbox: Arc::new(Recorder::default()),
        }
    }

    fn send(&mut self, broker: &LocalBroker<Recorder>, request: Request) -> Outcome {
        let mut out = Fanout::new();
        let mut turn = Turn {
            mailbox: &self.mailbox,
            broker,
            out: &mut out,
            now: std::time::Instant::now(),
        };
        self.client.handle_request(request, &mut turn)
    }

    fn complete(&mut self, broker: &LocalBroker<Recorder>, outcome: Completion) -> Outcome {
        let mut out = Fanout::new();
        let mut turn = Turn {
            mailbox: &self.mailbox,
            broker,
            out: &mut out,
            now: std::time::Instant::now(),
        };
        self.client.complete(outcome, &mut turn)
    }

    fn texts(&self) -> Vec<String> {
        self.mailbox.lines(WireFormat::Json)
    }

    fn hello(&mut self, broker: &LocalBroker<Recorder>) {
        self.send(
            broker,
            Request::Hello {
                features: vec!["accounts".into()],
            },
        );
        match &self.mailbox.take(WireFormat::Json)[..] {
            [Response::Hello { features, .. }] => assert_eq!(features, &["accounts"]),
            other => panic!("{other:?}"),
        }
    }
}

fn broker(backend: &Arc<Backend>) -> LocalBroker<Recorder> {
    LocalBroker::new().with_accounts(Arc::clone(backend) as Arc<dyn AccountBackend<Recorder>>)
}

fn register(password: &str) -> Request {
    Request::Register {
        password: password.into(),
    }
}

fn login(name: &str, password: &str) -> Request {
    Request::Login {
        name: name.into(),
        password: password.into(),
    }
}

fn name(name: &str) -> Request {
    Request::Name { name: name.into() }
}

#[test]
fn registering_keeps_the_name_for_its_account() {
    let backend = Arc::new(Backend::default());
    let broker = broker(&backend);
    let mut alice = Peer::new(1);
    // Not opted in: told how, and nothing happens.
    alice.send(&broker, register("correct horse"));
    assert_eq!(alice.texts(), [texts::ACCOUNTS_NOT_ENABLED]);
    alice.hello(&broker);
    alice.send(&broker, register("correct horse"));
    assert_eq!(alice.texts(), [texts::REGISTER_NEEDS_NAME]);
    alice.send(&broker, name("Alice"));
    alice.send(&broker, register("short"));
    alice.send(&broker, register(&"x".repeat(129)));
    alice.send(&broker, register("correct horse"));
    assert_eq!(
        alice.texts(),
        [
            "이름이 Alice 으로 변경되었습니다.",
            texts::PASSWORD_TOO_SHORT,
            texts::PASSWORD_TOO_LONG,
            "이름 Alice 을 계정으로 등록했습니다. 이제 이 이름은 로그인해야 쓸 수 있습니다.",
        ]
    );
    alice.send(&broker, register("another one"));
    assert_eq!(alice.texts(), [texts::REGISTER_WHILE_LOGGED_IN]);

    // Gone: the name is free of its holder, but still the account's.
    let mut out = Fanout::new();
    let mut turn = Turn {
        mailbox: &alice.mailbox,
        broker: &broker,
        out: &mut out,
        now: std::time::Instant::now(),
    };
    alice.client.disconnect(&mut turn);
    let mut mallory = Peer::new(2);
    // The name and its look-alikes (capital I for l, Cyrillic А): the same key.
    for look_alike in ["Alice", "AIice", "Аlice"] {
        mallory.send(&broker, name(look_alike));
    }
    assert_eq!(mallory.texts(), [texts::NAME_REGISTERED; 3]);
    // Another name is anybody's.
    mallory.send(&broker, name("alice"));
    assert_eq!(mallory.texts(), ["이름이 alice 으로 변경되었습니다."]);
    // Even one that opted in, with a wrong password (the same answer as for a name
    // nobody registered).
    mallory.hello(&broker);
    mallory.send(&broker, login("Alice", "wrong password"));
    mallory.send(&broker, login("nobody at all", "wrong password"));
    mallory.send(&broker, login("(1, 2)", "wrong password"));
    assert_eq!(mallory.texts(), [texts::BAD_CREDENTIALS; 3]);

    // A later connection logs in (by any look-alike of the name) and gets the name
    // as registered.
    let mut back = Peer::new(3);
    back.hello(&broker);
    back.send(&broker, login("AIice", "correct horse"));
    assert_eq!(
        back.texts(),
        [
            "Alice 으로 로그인했습니다.",
            "이름이 Alice 으로 변경되었습니다."
        ]
    );
    assert_eq!(back.client.name(), "Alice");
    // `/password`, then `/logout` gives the default name back.
    back.send(
        &broker,
        Request::ChangePassword {
            old: "wrong".into(),
            new: "battery staple".into(),
        },
    );
    back.send(
        &broker,
        Request::ChangePassword {
            old: "correct horse".into(),
            new: "short".into(),
        },
    );
    back.send(
        &broker,
        Request::ChangePassword {
            old: "correct horse".into(),
            new: "battery staple".into(),
        },
    );
    back.send(&broker, Request::Logout);
    back.send(&broker, Request::Logout);
    assert_eq!(
        back.texts(),
        [
            texts::BAD_CREDENTIALS,
            texts::PASSWORD_TOO_SHORT,
            texts::PASSWORD_CHANGED,
            texts::LOGGED_OUT,
            "이름이 (127.0.0.1, 3) 으로 변경되었습니다.",
            texts::NOT_LOGGED_IN,
        ]
    );
    // Only the new password works now, and nobody else got the name meanwhile.
    back.send(&broker, login("Alice", "correct horse"));
    back.send(&broker, name("Alice"));
    back.send(&broker, login("Alice", "battery staple"));
    assert_eq!(
        back.texts(),
        [
            texts::BAD_CREDENTIALS,
            texts::NAME_REGISTERED,
            "Alice 으로 로그인했습니다.",
            "이름이 Alice 으로 변경되었습니다.",
        ]
    );
    // The name registered twice: refused.
    let mut second = Peer::new(4);
    second.hello(&broker);
    second.send(&broker, name("Bob"));
    second.send(&broker, register("bob's password"));
    second.send(&broker, Request::Logout);
    second.texts();
    assert!(backend.is_registered(&chat_core::validate::name_key("Bob")));
}

#[test]
fn a_backend_that_answers_later_ends_the_same() {
    let backend = Arc::new(Backend {
        deferred: true,
        ..Backend::default()
    });
    let broker = broker(&backend);
    let mut alice = Peer::new(1);
    alice.hello(&broker);
    alice.send(&broker, name("Alice"));
    alice.texts();
    assert_eq!(
        alice.send(&broker, register("correct horse")),
        Outcome::Waiting
    );
    assert!(alice.texts().is_empty(), "nothing said before the outcome");
    let held = backend.held.lock().unwrap().pop().unwrap();
    assert_eq!(alice.complete(&broker, held), Outcome::Continue);
    assert_eq!(
        alice.texts(),
        ["이름 Alice 을 계정으로 등록했습니다. 이제 이 이름은 로그인해야 쓸 수 있습니다."]
    );
    alice.send(&broker, Request::Logout);
    alice.texts();
    // A login that waits, then takes the name (the local broker claims at once).
    assert_eq!(
        alice.send(&broker, login("Alice", "correct horse")),
        Outcome::Waiting
    );
    let held = backend.held.lock().unwrap().pop().unwrap();
    alice.complete(&broker, held);
    assert_eq!(
        alice.texts(),
        [
            "Alice 으로 로그인했습니다.",
            "이름이 Alice 으로 변경되었습니다."
        ]
    );
    // A failure that comes later is told as one that comes at once.
    alice.send(
        &broker,
        Request::ChangePassword {
            old: "nope".into(),
            new: "battery staple".into(),
        },
    );
    let held = backend.held.lock().unwrap().pop().unwrap();
    alice.complete(&broker, held);
    assert_eq!(alice.texts(), [texts::BAD_CREDENTIALS]);
    // Throttled and unavailable, as a backend says them.
    alice.send(&broker, Request::Logout);
    alice.texts();
    alice.send(&broker, login("alice", "x"));
    backend.held.lock().unwrap().clear();
    alice.complete(&broker, Err(BrokerError::Throttled));
    alice.send(&broker, login("alice", "x"));
    backend.held.lock().unwrap().clear();
    alice.complete(&broker, Err(BrokerError::Unavailable));
    assert_eq!(
        alice.texts(),
        [texts::TOO_MANY_ATTEMPTS, texts::UNAVAILABLE]
    );
}

#[test]
fn without_a_backend_the_feature_is_not_offered() {
    let broker = LocalBroker::<Recorder>::new();
    let mut alice = Peer::new(1);
    alice.send(
        &broker,
        Request::Hello {
            features: vec!["accounts".into(), "rooms".into()],
        },
    );
    match &alice.mailbox.take(WireFormat::Json)[..] {
        [Response::Hello { features, .. }] => assert_eq!(features, &["rooms"]),
        other => panic!("{other:?}"),
    }
    alice.send(&broker, register("correct horse"));
    assert_eq!(alice.texts(), [texts::ACCOUNTS_NOT_ENABLED]);
}
