//! The command thread: drains the operation queue into pipelines on this node's one
//! command connection, and hands each reply to whoever waits for it.
//!
//! A pipeline is everything queued (up to [`MAX_BATCH`]), so under load many chats
//! cost one round trip. Pipelines are at least the batch window apart, and a
//! pipeline's replies are read when the next one is due (or the window has passed with
//! nothing new): by then they have arrived, so the thread wakes once per pipeline. Chats are `XADD`s; everything else is a script (`scripts.rs`).
//! A script that changed something answers `ok` and its waiter is completed by the
//! reader when it applies the log entry (so the client's next request sees the
//! change); a refusal is answered here at once.
//!
//! When the connection breaks mid-pipeline, the same operations are sent again on a
//! new one: the scripts recognise what they already did and the readers skip chats
//! they already have (`entry.rs`), so nothing is lost or doubled. If Redis cannot be
//! reached, waiting operations fail ("unavailable"; a chat's sender is told it may
//! not have arrived), except the kept ones (disconnect leaves, name releases), sent
//! when Redis is back.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chat_core::broker::MAX_ROOM_ID;
use chat_core::{BrokerError, Fanout, Mailbox, texts};
use redis::{Connection, RedisResult, Value};

use crate::entry;
use crate::link::{self, Role};
use crate::ops::{Op, OpKind};
use crate::reader;
use crate::shared::Shared;
use crate::sync::bump;
use crate::values::status;

/// Operations in one pipeline at most.
pub(crate) const MAX_BATCH: usize = 512;
/// How long a reply may take before the connection counts as broken.
const REPLY_TIMEOUT: Duration = Duration::from_millis(700);
/// Sends of one batch before its operations are failed.
const MAX_ATTEMPTS: u32 = 3;

pub(crate) fn run<M: Mailbox>(shared: Arc<Shared<M>>) {
    let mut connection: Option<Connection> = None;
    // Queued, not sent yet (or to be sent again on a new connection).
    let mut batch: Vec<Op<M>> = Vec::new();
    // Sent on `connection`, replies not read yet.
    let mut inflight: Vec<Op<M>> = Vec::new();
    // The pipeline in flight ends with a read of the log.
    // When the pipeline in flight was sent, if it reads the log.
    let mut reads_log: Option<Instant> = None;
    let mut out = Fanout::new();
    let mut attempts = 0;
    let mut last_send = Instant::now();
    let pace = shared.config.batch_window;
    loop {
        if batch.is_empty() {
            let more = if inflight.is_empty() {
                // Idle: wait to be told of the next operation; the reader thread
                // follows the log meanwhile.
                shared.set_log_in_pipelines(false);
                shared
                    .ops
                    .take(&mut batch, MAX_BATCH, Duration::from_millis(200))
            } else {
                // Busy: sleep to the end of the window (workers need not wake this
                // thread, which saves them a system call per operation and this
                // thread a wake-up per pipeline), then read the replies and take what
                // came meanwhile.
                std::thread::sleep(pace.saturating_sub(last_send.elapsed()));
                shared.ops.take(&mut batch, MAX_BATCH, Duration::ZERO)
            };
            if !more && inflight.is_empty() {
                break;
            }
        }
        batch.retain(|op| !op.waiter.as_ref().is_some_and(|w| w.is_settled()));
        // With nothing to do, reconnect anyway while the link is down: the workers
        // refuse commands until it is up again.
        let link_down = !shared.link_up.load(Ordering::Acquire);
        if batch.is_empty() && inflight.is_empty() && !(link_down && connection.is_none()) {
            continue;
        }
        let Some(link) = connection.as_mut() else {
            match link::open(
                &shared.redis,
                &shared.scripts,
                Role::Commands,
                shared.identity(),
                REPLY_TIMEOUT,
            ) {
                Ok(link) => {
                    if !shared.link_up.swap(true, Ordering::AcqRel) {
                        tracing::info!("cluster: command connection to Redis is back");
                    }
                    connection = Some(link);
                }
                Err(e) => {
                    if shared.link_up.swap(false, Ordering::AcqRel) {
                        tracing::warn!(
                            "cluster: cannot reach Redis ({e}); commands that need it fail until it is back"
                        );
                    }
                    bump(&shared.stats.redis_errors);
                    fail(&shared, &mut batch, shared.stopping.load(Ordering::Acquire));
                    // Meanwhile, what is queued fails at once rather than wait.
                    let _ = shared
                        .ops
                        .take(&mut batch, MAX_BATCH, Duration::from_millis(100));
                    fail(&shared, &mut batch, shared.stopping.load(Ordering::Acquire));
                    if shared.stopping.load(Ordering::Acquire) && batch.is_empty() {
                        // Stopping with Redis gone: nothing more can be sent.
                        let mut rest = Vec::new();
                        while shared.ops.take(&mut rest, MAX_BATCH, Duration::ZERO)
                            && !rest.is_empty()
                        {
                            fail(&shared, &mut rest, true);
                        }
                        break;
                    }
                }
            }
            continue;
        };
        // Pipelines are at least the batch window apart: what arrives meanwhile goes
        // in the next one (Redis's cost is per round trip far more than per command;
        // an awaited outcome comes this much later at most). The window is also when
        // the last pipeline's replies arrive, so reading them after it seldom waits:
        // one wake-up per pipeline, not two.
        let since = last_send.elapsed();
        if !batch.is_empty() && since < pace && batch.len() < MAX_BATCH {
            std::thread::sleep(pace - since);
            let room = MAX_BATCH - batch.len();
            let _ = shared.ops.take(&mut batch, room, Duration::ZERO);
        }
        let outcome = exchange(
            &shared,
            link,
            &mut inflight,
            &mut reads_log,
            &mut batch,
            &mut out,
        );
        match outcome {
            Ok(sent) => {
                if sent {
                    last_send = Instant::now();
                }
                attempts = 0;
            }
            Err(e) => {
                bump(&shared.stats.redis_errors);
                connection = None;
                reads_log = None;
                shared.set_log_in_pipelines(false);
                attempts += 1;
                // Everything unanswered is sent again, in its order, on a new
                // connection: the scripts and the readers recognise what was done.
                inflight.append(&mut batch);
                std::mem::swap(&mut inflight, &mut batch);
                let broken = e.is_io_error() || e.is_connection_dropped() || e.is_timeout();
                tracing::warn!(
                    ops = batch.len(),
                    attempt = attempts,
                    "cluster: pipeline failed: {e}"
                );
                if !broken || attempts >= MAX_ATTEMPTS {
                    // A refusal by Redis itself (a bug, or out of memory) or an outage:
                    // the waiting clients are told. The kept ones wait for Redis.
                    fail(&shared, &mut batch, !broken);
                    attempts = 0;
                }
            }
        }
    }
}

/// Reads the replies of the pipeline in flight and answers them, then sends `batch`
/// as the next one (it is in flight afterwards). Answers whether anything was sent.
/// On an error, what was not answered is left in `inflight` and `batch`.
///
/// While the replica is in sync, a pipeline also reads the log (after its own
/// operations, so it sees them): the reader thread then stands aside (`reader.rs`).
fn exchange<M: Mailbox>(
    shared: &Shared<M>,
    link: &mut Connection,
    inflight: &mut Vec<Op<M>>,
    reads_log: &mut Option<Instant>,
    batch: &mut Vec<Op<M>>,
    out: &mut Fanout<M>,
) -> RedisResult<bool> {
    if !inflight.is_empty() {
        let mut replies = Vec::with_capacity(inflight.len());
        for _ in 0..inflight.len() {
            replies.push(link.recv_response()?);
        }
        if let Some(asked_at) = reads_log.take() {
            let log = link.recv_response()?;
            // A reset may have begun since it was sent: the snapshot then rules.
            let usable = shared.in_sync.load(Ordering::Acquire)
                && !shared.needs_snapshot.load(Ordering::Acquire);
            if usable && reader::apply_reply(shared, &log, asked_at, out) >= reader::READ_COUNT {
                // Behind the log: the reader thread catches up at full speed.
                shared.set_log_in_pipelines(false);
            }
        }
        bump(&shared.stats.round_trips);
        shared
            .stats
            .ops_sent
            .fetch_add(inflight.len() as u64, Ordering::Relaxed);
        for (op, reply) in inflight.drain(..).zip(&replies) {
            answer(shared, op, reply);
        }
    }
    if batch.is_empty() {
        return Ok(false);
    }
    let mut pipe = redis::pipe();
    for op in batch.iter() {
        pipe.add_command(command(shared, op));
    }
    let read_log =
        shared.in_sync.load(Ordering::Acquire) && !shared.needs_snapshot.load(Ordering::Acquire);
    if read_log {
        pipe.add_command(reader::log_read(shared, None));
    }
    let sent_at = Instant::now();
    link.send_packed_command(&pipe.get_packed_pipeline())?;
    shared.set_log_in_pipelines(read_log);
    *reads_log = read_log.then_some(sent_at);
    std::mem::swap(inflight, batch);
    Ok(true)
}

/// The Redis command for `op`, as the node it was submitted under.
fn command<M>(shared: &Shared<M>, op: &Op<M>) -> redis::Cmd {
    let (scripts, prefix, seq, node) = (&shared.scripts, shared.prefix.as_str(), op.seq, op.node);
    match &op.kind {
        OpKind::Chat {
            client,
            room,
            text,
            kept: false,
        } => {
            let mut cmd = redis::cmd("XADD");
            cmd.arg(format!("{prefix}:log"))
                .arg("*")
                .arg("e")
                .arg(entry::chat(node, seq, *client, *room, text));
            cmd
        }
        OpKind::Chat {
            client,
            room,
            text,
            kept: true,
        } => {
            let mut cmd = scripts.chat_kept.call(prefix, node, seq);
            cmd.arg(entry::chat(node, seq, *client, *room, text))
                .arg(room)
                .arg(client)
                .arg(text)
                .arg(shared.config.history.lines.max(1));
            cmd
        }
        OpKind::Create {
            client,
            name,
            title,
            owner,
        } => {
            let mut cmd = scripts.create.call(prefix, node, seq);
            cmd.arg(client)
                .arg(name)
                .arg(title)
                .arg(MAX_ROOM_ID)
                .arg(owner.as_deref().unwrap_or(""));
            cmd
        }
        OpKind::Direct {
            client,
            to_key,
            from_key,
            from_name,
            text,
        } => {
            let mut cmd = scripts.direct.call(prefix, node, seq);
            cmd.arg(client)
                .arg(to_key)
                .arg(from_key)
                .arg(text)
                .arg(from_name);
            cmd
        }
        OpKind::Ignore {
            client,
            key,
            ignore,
        } => {
            let mut cmd = scripts.ignore.call(prefix, node, seq);
            cmd.arg(client)
                .arg(key)
                .arg(if *ignore { "1" } else { "0" });
            cmd
        }
        OpKind::Unignore { client } => {
            let mut cmd = scripts.ignore.call(prefix, node, seq);
            cmd.arg(client).arg("").arg("clear");
            cmd
        }
        OpKind::DeleteRoom { room, owner } => {
            let mut cmd = scripts.delete_room.call(prefix, node, seq);
            cmd.arg(room).arg(owner);
            cmd
        }
        OpKind::Join {
            client,
            room,
            name,
            account,
            address,
        } => {
            let mut cmd = scripts.join.call(prefix, node, seq);
            cmd.arg(client)
                .arg(room)
                .arg(name)
                .arg(account.as_deref().unwrap_or(""))
                .arg(address.map(|a| a.to_string()).unwrap_or_default());
            cmd
        }
        OpKind::Moderate {
            client,
            room,
            account,
            action,
        } => {
            let mut cmd = redis::cmd("XADD");
            cmd.arg(format!("{prefix}:log"))
                .arg("*")
                .arg("e")
                .arg(entry::moderation(
                    node,
                    seq,
                    *client,
                    *room,
                    account.as_deref(),
                    action,
                ));
            cmd
        }
        OpKind::SaveModeration {
            room,
            owner,
            at,
            text,
        } => {
            let mut cmd = scripts.save_moderation.call(prefix, node, seq);
            cmd.arg(room).arg(owner).arg(at.0).arg(at.1).arg(text);
            cmd
        }
        OpKind::Leave {
            client,
            room,
            notify_self,
        } => {
            let mut cmd = scripts.leave.call(prefix, node, seq);
            cmd.arg(client)
                .arg(room)
                .arg(if *notify_self { "1" } else { "0" });
            cmd
        }
        OpKind::Rename { client, room, name } => {
            let mut cmd = scripts.rename.call(prefix, node, seq);
            cmd.arg(client).arg(room).arg(name);
            cmd
        }
        OpKind::Claim {
            client,
            key,
            account,
        } => {
            let mut cmd = scripts.claim.call(prefix, node, seq);
            cmd.arg(client)
                .arg(key)
                .arg("0")
                .arg(account.as_deref().unwrap_or(""));
            cmd
        }
        OpKind::Release { client } => {
            let mut cmd = scripts.release.call(prefix, node, seq);
            cmd.arg(client);
            cmd
        }
    }
}

/// Hands `reply` to whoever waits for `op`.
fn answer<M: Mailbox>(shared: &Shared<M>, op: Op<M>, reply: &Value) {
    // A moderation request is answered where its entry is applied, like a room
    // change (its reply is only the entry's id).
    if matches!(
        op.kind,
        OpKind::Chat { .. }
            | OpKind::Release { .. }
            | OpKind::Unignore { .. }
            | OpKind::Moderate { .. }
            | OpKind::SaveModeration { .. }
    ) {
        return;
    }
    let (answer, rest) = status(reply);
    let outcome = match answer {
        // Done: the reader completes the waiter when it applies the entry (a claim
        // or an ignore writes none, so it is answered here: an ignore with 1 if it
        // changed anything).
        "ok" | "dup" => match op.kind {
            OpKind::Claim { .. } => Ok(0),
            OpKind::Ignore { .. } => Ok(rest.first().and_then(crate::values::int).unwrap_or(0)),
            _ => return,
        },
        "nomember" => Err(BrokerError::NoSuchMember),
        "ignored" => Err(BrokerError::Ignored),
        "toomany" => Err(BrokerError::TooMany),
        "nosuch" => Err(BrokerError::NoSuchRoom),
        "notowner" => Err(BrokerError::NotOwner),
        "taken" => Err(BrokerError::NameTaken),
        "registered" => Err(BrokerError::NameRegistered),
        "exhausted" => Err(BrokerError::RoomIdsExhausted),
        // Fenced, or a new claim while names are being re-claimed after Redis lost
        // its data (`scripts::CLAIM`).
        "fenced" | "busy" => Err(BrokerError::Unavailable),
        other => {
            tracing::error!(?op.kind, reply = other, "cluster: unexpected script reply");
            Err(BrokerError::Unavailable)
        }
    };
    // Every waiter is registered under its operation's number (`ClusterBroker::call`).
    shared.complete(op.seq, outcome);
}

/// Fails the operations of `batch` that clients wait for (and, with `all`, the kept
/// ones too); the kept ones otherwise stay for the next attempt.
fn fail<M: Mailbox>(shared: &Shared<M>, batch: &mut Vec<Op<M>>, all: bool) {
    let mut out = Fanout::new();
    batch.retain_mut(|op| {
        if op.keep && !all {
            return true;
        }
        shared.complete(op.seq, Err(BrokerError::Unavailable));
        if let Some(sender) = op.sender.take() {
            bump(&shared.stats.chats_maybe_lost);
            sender.notify(texts::CHAT_MAYBE_LOST, &mut out);
        }
        false
    });
    shared.flush(&mut out);
}
