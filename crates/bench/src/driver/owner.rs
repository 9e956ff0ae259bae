//! `--registered-rooms`: the rooms' owner inside the event loop. What it says and
//! what the answers mean is [`crate::owner`]; this is its connection.
//!
//! The owner is one extra connection outside the client tables (token [`OWNER`]), to
//! the first server address, speaking what every client speaks (the format, or the
//! web's WebSocket, TLS). It lives only at the start of setup:
//! [`Driver::register_rooms`] connects it, runs the dialogue to its end, a failure or
//! `--setup-timeout`, then closes it and hands the rooms' ids to the members, before
//! any member connects. So it is never in a measured figure, and no member sees it
//! (it has left every room before they join).

use std::io;
use std::time::Instant;

use chat_proto::Request;
use mio::event::Event;
use mio::{Interest, Token};

use super::{Driver, MAX_WAIT};
use crate::BenchError;
use crate::conn::{Conn, ReadEnd};
use crate::owner::Owner;
use crate::report::RegisteredRoomsReport;

/// The owner's token; client tokens are client indices, far below it (the timer's is
/// `usize::MAX - 1`).
pub(super) const OWNER: Token = Token(usize::MAX - 2);
/// Seeds the owner's WebSocket masking keys (clients use their index).
const OWNER_SEED: u32 = 0x6f77_6e72;

/// The owner's connection and dialogue.
#[derive(Debug)]
pub(super) struct OwnerConn {
    conn: Conn,
    dialogue: Owner,
    /// The TCP connect has completed and the hello is on its way.
    connected: bool,
    /// Why the owner cannot go on (ends [`Driver::register_rooms`]).
    failure: Option<String>,
    /// When the server said the account was stored.
    account_at: Option<Instant>,
}

impl Driver {
    /// Registers every measured room to one new account (see [`crate::owner`]) and
    /// sets the rooms' ids; the owner's connection is closed on return.
    pub(super) fn register_rooms(&mut self, deadline: Instant) -> Result<(), BenchError> {
        let addr = self.plan.addrs[0];
        // Unique per invocation (a data directory may outlive many runs, and its
        // accounts with it), and no look-alike of a member's `u<N>`.
        let name = format!(
            "{}bench-owner-{}-{}",
            self.plan.name_tag,
            std::process::id(),
            self.nonce
        );
        // Nobody logs in with it again: the rooms only need an owner.
        let password = format!("bench-{}-{}", self.nonce, std::process::id());
        let dialogue = Owner::new(name.clone(), password, self.titles.clone());
        let fail = |why: String| BenchError::Setup(format!("the rooms' owner {name}: {why}"));
        let mut conn = self.open(addr, OWNER_SEED).map_err(fail)?;
        self.poll
            .registry()
            .register(
                &mut conn.stream,
                OWNER,
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| fail(format!("cannot register the socket: {e}")))?;
        let started = Instant::now();
        self.owner = Some(Box::new(OwnerConn {
            conn,
            dialogue,
            connected: false,
            failure: None,
            account_at: None,
        }));
        let result = self.run_owner(deadline);
        if let Some(mut owner) = self.owner.take() {
            // Closing the socket removes it from the poll anyway.
            let _ = self.poll.registry().deregister(&mut owner.conn.stream);
            if let (Ok(ids), Some(account_at)) = (&result, owner.account_at) {
                self.room_ids = ids.iter().copied().map(Some).collect();
                self.registered = Some(RegisteredRoomsReport {
                    owner: name.clone(),
                    rooms: ids.len(),
                    register_account_s: account_at.duration_since(started).as_secs_f64(),
                    seconds: started.elapsed().as_secs_f64(),
                    first_room_id: ids.first().copied(),
                    last_room_id: ids.last().copied(),
                });
            }
        }
        result.map(drop).map_err(fail)
    }

    /// Polls until the owner is done (the rooms' ids), fails, or `deadline` passes.
    fn run_owner(&mut self, deadline: Instant) -> Result<Vec<i64>, String> {
        loop {
            let Some(owner) = self.owner.as_mut() else {
                return Err("internal: the owner's state vanished".into());
            };
            if let Some(why) = owner.failure.take() {
                return Err(why);
            }
            if let Some(ids) = owner.dialogue.room_ids() {
                return Ok(ids.to_vec());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!(
                    "timed out after --setup-timeout={}s waiting for {}",
                    self.plan.setup_timeout.as_secs_f64(),
                    owner.dialogue.waiting_for()
                ));
            }
            self.poll_once((deadline - now).min(MAX_WAIT))
                .map_err(|e| e.to_string())?;
        }
    }

    /// A readiness event of the owner's socket.
    pub(super) fn on_owner_event(&mut self, event: &Event) {
        let Some(mut owner) = self.owner.take() else {
            return;
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        owner.on_event(event, &mut scratch);
        self.scratch = scratch;
        self.owner = Some(owner);
    }
}

impl OwnerConn {
    fn on_event(&mut self, event: &Event, scratch: &mut [u8]) {
        if self.failure.is_some() {
            return;
        }
        if !self.connected {
            match self.conn.stream.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => return self.fail(format!("cannot connect: {e}")),
            }
            match self.conn.stream.peer_addr() {
                Ok(_) => {
                    self.connected = true;
                    let hello = self.dialogue.start();
                    self.send(&hello);
                }
                // Spurious wake-up: still connecting.
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => return self.fail(format!("cannot connect: {e}")),
            }
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.read(scratch, event.is_read_closed() || event.is_error());
        }
        if event.is_writable() && self.failure.is_none() {
            self.flush();
        }
    }

    fn read(&mut self, scratch: &mut [u8], peer_closed: bool) {
        let mut outgoing: Vec<Request> = Vec::new();
        let mut failure: Option<String> = None;
        let dialogue = &mut self.dialogue;
        let result = self.conn.read(scratch, peer_closed, |message, _at| {
            if failure.is_some() {
                return;
            }
            match message {
                Ok(message) => match dialogue.on_response(&message) {
                    Ok(requests) => outgoing.extend(requests),
                    Err(why) => failure = Some(why),
                },
                Err(e) => failure = Some(format!("undecodable message: {e}")),
            }
        });
        if self.account_at.is_none() && self.dialogue.account_registered() {
            self.account_at = Some(Instant::now());
        }
        if let Some(why) = failure {
            return self.fail(why);
        }
        match result {
            Ok(ReadEnd::WouldBlock) => {}
            Ok(ReadEnd::Eof) => {
                return self.fail(format!(
                    "the server closed the connection while the owner was waiting for {}",
                    self.dialogue.waiting_for()
                ));
            }
            Err(e) => return self.fail(format!("read failed: {e}")),
        }
        self.send(&outgoing);
    }

    /// Queues `requests` and writes what the socket takes (the rest on a writable
    /// event).
    fn send(&mut self, requests: &[Request]) {
        for request in requests {
            if let Err(e) = self.conn.queue(request) {
                return self.fail(format!("cannot encode a setup request: {e}"));
            }
        }
        self.flush();
    }

    fn flush(&mut self) {
        if let Err(e) = self.conn.flush() {
            self.fail(format!("write failed: {e}"));
        }
    }

    fn fail(&mut self, why: String) {
        self.failure.get_or_insert(why);
    }
}
