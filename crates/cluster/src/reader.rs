//! The reader thread: follows the shared log with `XREAD BLOCK` from the last entry
//! it applied, applies each entry to the replica in order and delivers to this
//! node's members, then writes the batch out.
//!
//! A broken connection is reopened and reading resumes from the same entry: nothing
//! is skipped or repeated (a stream, unlike pub/sub, keeps what a reader has not
//! read). While the node is busy sending, its command thread reads the log in the
//! same pipelines (one round trip and one wake-up for both) and this thread stands
//! aside; entries are applied once, in order, by whichever thread reads them first
//! (the replica keeps the position). A reader that could not read for longer than half the log's retention may
//! have missed entries Redis has since trimmed; it resynchronises from a snapshot,
//! and disconnects this node's in-room clients, whose view would otherwise have a
//! silent gap.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chat_core::{Fanout, Mailbox};
use redis::{Connection, Value};

use crate::entry::{AccountChange, Entry, Event, MemberId, StreamId, history_line};
use crate::link::{self, Role};
use crate::ops::OpKind;
use crate::replica::SnapshotRoom;
use crate::shared::Shared;
use crate::sync::{bump, lock};
use crate::values::{int, items, text};

/// How long one `XREAD` blocks (also how soon a stop or a reset is noticed).
const BLOCK_MS: u64 = 500;
/// Entries one `XREAD` returns at most.
pub(crate) const READ_COUNT: usize = 1000;

pub(crate) fn run<M: Mailbox>(shared: Arc<Shared<M>>) {
    let mut connection: Option<Connection> = None;
    // Since when every read returned a full batch (the reader is behind the log).
    let mut behind_since: Option<Instant> = None;
    let mut out = Fanout::new();
    while !shared.stopping.load(Ordering::Acquire) {
        let Some(link) = connection.as_mut() else {
            match link::open(
                &shared.redis,
                &shared.scripts,
                Role::Reader,
                shared.identity(),
                Duration::from_millis(BLOCK_MS) + Duration::from_secs(2),
            ) {
                Ok(link) => connection = Some(link),
                Err(_) => {
                    bump(&shared.stats.redis_errors);
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            continue;
        };
        // Away, or reading full batches without catching up, for half the retention:
        // entries it has not read may be trimmed soon, or already. Resynchronise
        // rather than skip them silently. (Measured on this node's monotonic clock, so
        // no clock skew between nodes and Redis matters.)
        let half = shared.config.retention / 2;
        let last_read = *lock(&shared.log_read_at);
        if last_read.elapsed() > half || behind_since.is_some_and(|t| t.elapsed() > half) {
            behind_since = None;
            resync(
                &shared,
                "the log reader was away or behind for half the log's retention",
            );
        }
        if shared.needs_snapshot.load(Ordering::Acquire) {
            match load_snapshot(&shared, link) {
                Ok(_) => {
                    shared.needs_snapshot.store(false, Ordering::Release);
                    shared.in_sync.store(true, Ordering::Release);
                    tracing::info!(
                        node = shared.node(),
                        node_name = shared.config.node_name,
                        "cluster: snapshot loaded; in sync"
                    );
                }
                Err(e) => {
                    tracing::warn!("cluster: snapshot failed: {e}");
                    connection = None;
                }
            }
            continue;
        }
        // While the command thread reads the log in its pipelines, reading here too
        // would only wake this thread for entries already applied.
        if shared.log_read_elsewhere(Duration::from_millis(BLOCK_MS)) {
            behind_since = None;
            continue;
        }
        let asked_at = Instant::now();
        let reply = log_read(&shared, Some(BLOCK_MS)).query::<Value>(link);
        match reply {
            Ok(reply) => {
                let read_at = Instant::now();
                let count = apply_reply(&shared, &reply, asked_at, &mut out);
                if count < READ_COUNT {
                    behind_since = None;
                } else {
                    behind_since.get_or_insert(read_at);
                }
                // Two reads that found entries are at least two batch windows apart:
                // Redis's cost is per call far more than per entry (a wake-up, a read
                // and a write on a socket), and a trickle of chats would otherwise cost
                // a call each, on every node. The first entry after a quiet spell still
                // comes at once (the read blocks for it).
                if count > 0 && count < READ_COUNT {
                    let pace = shared.config.batch_window * 2;
                    std::thread::sleep(pace.saturating_sub(read_at.elapsed()));
                }
            }
            Err(e) => {
                tracing::debug!("cluster: log read failed: {e}");
                bump(&shared.stats.redis_errors);
                connection = None;
            }
        }
    }
}

/// Starts over from a snapshot (once: a resync already asked for is not asked again),
/// saying `why`: this node's members are taken out and told (`Shared::reset_members`).
fn resync<M: Mailbox>(shared: &Shared<M>, why: &str) {
    if shared.needs_snapshot.load(Ordering::Acquire) {
        return;
    }
    tracing::warn!("cluster: {why}; resynchronising");
    bump(&shared.stats.resyncs);
    // Members out first, then the snapshot: the one loaded must not still hold them.
    shared.reset_members();
    shared.needs_snapshot.store(true, Ordering::Release);
}

/// `XREAD` of what follows the replica's position, [`READ_COUNT`] entries at most,
/// blocking up to `block_ms` if given (else it answers at once, nil if there is
/// nothing new).
pub(crate) fn log_read<M: Mailbox>(shared: &Shared<M>, block_ms: Option<u64>) -> redis::Cmd {
    let from = lock(&shared.replica).position();
    let mut cmd = redis::cmd("XREAD");
    cmd.arg("COUNT").arg(READ_COUNT);
    if let Some(block_ms) = block_ms {
        cmd.arg("BLOCK").arg(block_ms);
    }
    cmd.arg("STREAMS")
        .arg(format!("{}:log", shared.prefix))
        .arg(from.to_string());
    cmd
}

/// Loads a snapshot into the replica, and with it the log position it is true at.
pub(crate) fn load_snapshot<M: Mailbox>(
    shared: &Shared<M>,
    link: &mut Connection,
) -> redis::RedisResult<()> {
    let reply: Value = shared
        .scripts
        .snapshot
        .call(&shared.prefix, shared.node(), 0)
        .query(link)?;
    let (epoch, room_seq, at, rooms) = parse_snapshot(&reply)
        .ok_or_else(|| redis::RedisError::from((redis::ErrorKind::Parse, "malformed snapshot")))?;
    let epoch_changed = {
        let mut known = lock(&shared.epoch);
        let changed = !known.is_empty() && *known != epoch;
        *known = epoch;
        changed
    };
    if epoch_changed {
        tracing::warn!("cluster: Redis's epoch changed under the reader");
    }
    let orphans = {
        let mut replica = lock(&shared.replica);
        replica.load(rooms, room_seq, at, |member| shared.recipient(member));
        replica.orphans(shared.node())
    };
    // Accounts after the rooms: whatever changed in between follows the snapshot's
    // position in the log and is applied again, idempotently.
    crate::accounts::reload(shared, link)?;
    // What the skipped part of the log would have shown as orphans (`apply_reply`).
    for (room, member) in orphans {
        shared.submit_kept(OpKind::Leave {
            client: member.client,
            room,
            notify_self: false,
        });
    }
    *lock(&shared.log_read_at) = Instant::now();
    Ok(())
}

type Snapshot = (String, chat_core::RoomId, StreamId, Vec<SnapshotRoom>);

fn parse_snapshot(reply: &Value) -> Option<Snapshot> {
    let parts = items(reply);
    let epoch = text(parts.first()?)?.to_owned();
    let room_seq = int(parts.get(1)?)?;
    let at = StreamId::parse(text(parts.get(2)?)?)?;
    let mut rooms = Vec::new();
    let mut rest = parts.get(3..)?.iter();
    while let Some(id) = rest.next() {
        let id = int(id)?;
        let title = text(rest.next()?)?.to_owned();
        let owner = Some(text(rest.next()?)?)
            .filter(|owner| !owner.is_empty())
            .map(str::to_owned);
        // Unreadable (written by a foreign hand): the room starts without any.
        let moderation =
            chat_core::moderation::Moderation::from_text(text(rest.next()?)?).unwrap_or_default();
        let count = usize::try_from(int(rest.next()?)?).ok()?;
        let mut members = Vec::with_capacity(count.min(parts.len()));
        for _ in 0..count {
            let member = parse_member(text(rest.next()?)?)?;
            let name = text(rest.next()?)?.to_owned();
            let (account, address) = match text(rest.next()?)?.split_once(crate::entry::SEP) {
                Some((account, address)) => (
                    Some(account).filter(|a| !a.is_empty()).map(str::to_owned),
                    address.parse().ok(),
                ),
                None => (None, None),
            };
            members.push((member, name, account, address));
        }
        let lines = usize::try_from(int(rest.next()?)?).ok()?;
        let mut history = Vec::with_capacity(lines.min(parts.len()));
        for _ in 0..lines {
            history.push(history_line(text(rest.next()?)?)?);
        }
        rooms.push(SnapshotRoom {
            id,
            title,
            members,
            owner,
            history,
            moderation,
        });
    }
    Some((epoch, room_seq, at, rooms))
}

/// `node:client`.
fn parse_member(text: &str) -> Option<MemberId> {
    let (node, client) = text.split_once(':')?;
    Some(MemberId {
        node: node.parse().ok()?,
        client: client.parse().ok()?,
    })
}

/// Applies the entries of an `XREAD` reply that follow the replica's position (the
/// reader and the command thread both read the log: what one applied, the other
/// skips) and writes out what they delivered; answers how many entries the reply had.
pub(crate) fn apply_reply<M: Mailbox>(
    shared: &Shared<M>,
    reply: &Value,
    asked_at: Instant,
    out: &mut Fanout<M>,
) -> usize {
    // [[key, [[id, [field, value, ...]], ...]]] (nil when the block timed out)
    let entries = items(reply)
        .first()
        .and_then(|stream| items(stream).get(1))
        .map(items)
        .unwrap_or(&[]);
    // The log is known to be read up to when the read was asked, not when its reply
    // was taken: a node stopped while a read was under way (SIGSTOP, a stalled VM)
    // must count the stop as time away. And a read asked more than half the
    // retention after the one before (reads are asked at least every BLOCK_MS while
    // the node runs) means the node was away in between, whichever thread notices
    // first: entries it has not read may be trimmed, so it resynchronises instead of
    // applying what follows a gap it cannot see.
    {
        let mut read_at = lock(&shared.log_read_at);
        let away = asked_at.saturating_duration_since(*read_at);
        *read_at = (*read_at).max(asked_at);
        if away > shared.config.retention / 2 {
            drop(read_at);
            resync(
                shared,
                "the node did not read the log for half its retention",
            );
            return 0;
        }
    }
    let node = shared.node();
    let mut last = None;
    let mut evicted = Vec::new();
    // This node's operations the entries complete: settled once the replica is
    // unlocked (a settlement's follow-up reads it) and the deliveries are written.
    let mut completed = Vec::new();
    // Told to the accounts once the replica is unlocked (they take locks of theirs).
    let mut account_changes = Vec::new();
    // Direct messages to this node's clients, delivered once the replica is unlocked.
    let mut directs = Vec::new();
    // What this node's moderation requests came to, for their actors; and the writes
    // they need (a saved state, the leaves of members put out).
    let mut moderated = Vec::new();
    let mut saves = Vec::new();
    let mut replica = lock(&shared.replica);
    for raw in entries {
        let parts = items(raw);
        let Some(id) = parts.first().and_then(text).and_then(StreamId::parse) else {
            continue;
        };
        if !replica.advance(id) {
            continue;
        }
        last = Some(id);
        let fields = parts.get(1).map(items).unwrap_or(&[]);
        let Some(field) = fields.get(1).and_then(text) else {
            tracing::warn!(%id, "cluster: log entry without a field; skipped");
            continue;
        };
        let Some(entry) = Entry::parse(field) else {
            tracing::warn!(%id, "cluster: malformed log entry; skipped");
            continue;
        };
        if let Some(change) = AccountChange::of(&entry.event) {
            account_changes.push(change);
            continue;
        }
        if let Event::Direct { from, text } = entry.event {
            // For one client, of this node or another: no room is involved.
            if entry.member.node == node {
                directs.push((entry.member.client, from.to_owned(), text.to_owned(), id.ms));
            }
            if entry.writer == node && entry.seq != 0 {
                completed.push((entry.seq, Ok(0)));
            }
            continue;
        }
        // The entry's place in the log stamps a chat: its time, and a number the
        // same on every node.
        let at = id.stamp();
        let applied = replica.apply(
            &entry,
            at,
            |member| shared.recipient(member),
            |member| member.node == node,
            out,
        );
        bump(&shared.stats.entries_applied);
        if let Some(done) = applied.moderated {
            if entry.member.node == node {
                // The actor is told, in the room's order, before it is answered.
                let text = done.unwrap_or_else(str::to_owned);
                moderated.push((entry.member, text));
            }
            if let (true, Some((owner, text))) = (
                entry.writer == node && entry.seq != 0,
                replica.moderation_of(entry.room),
            ) {
                // This node's request: it saves what every node now holds.
                saves.push(OpKind::SaveModeration {
                    room: entry.room,
                    owner,
                    at: (id.ms, id.seq),
                    text,
                });
            }
        }
        for gone in applied.put_out.iter().filter(|gone| gone.node == node) {
            // Put out here (a kick, a ban): Redis still lists it until its leave.
            let mut locals = lock(&shared.locals);
            if locals
                .get(&gone.client)
                .is_some_and(|local| local.room == entry.room)
            {
                locals.remove(&gone.client);
            }
            drop(locals);
            saves.push(OpKind::Leave {
                client: gone.client,
                room: entry.room,
                notify_self: false,
            });
        }
        if entry.member.node == node {
            evicted.extend(applied.evicted);
            if applied.local_left {
                let mut locals = lock(&shared.locals);
                if locals
                    .get(&entry.member.client)
                    .is_some_and(|local| local.room == entry.room)
                {
                    locals.remove(&entry.member.client);
                }
            }
            if applied.orphan || applied.banned.is_some() {
                // Its client stopped waiting before the join was applied, and was told
                // it failed: take it out again.
                shared.submit_kept(OpKind::Leave {
                    client: entry.member.client,
                    room: entry.room,
                    notify_self: false,
                });
            }
        }
        if entry.writer == node && entry.seq != 0 {
            // A give-up completes with what became of the room; anything else with
            // its room (a create's new id).
            let done = match entry.event {
                Event::GivenUp { deleted: true } => {
                    Ok(chat_core::Unregistered::Deleted.completion())
                }
                Event::GivenUp { deleted: false } => {
                    Ok(chat_core::Unregistered::WhenEmpty.completion())
                }
                // A join the room's bans refused, at this place in the log.
                _ if applied.banned.is_some() => Err(chat_core::BrokerError::Banned {
                    minutes_left: applied.banned.flatten(),
                }),
                _ => Ok(entry.room),
            };
            completed.push((entry.seq, done));
        }
    }
    drop(replica);
    for change in account_changes {
        shared.tell_accounts(change);
    }
    shared.deliver_directs(directs, out);
    for (actor, text) in moderated {
        if let Some(to) = shared.recipient(actor) {
            to.notify(&text, out);
        }
    }
    for save in saves {
        shared.submit_kept(save);
    }
    shared.flush(out);
    for (seq, outcome) in completed {
        shared.complete(seq, outcome);
    }
    if !evicted.is_empty() {
        tracing::warn!(
            members = evicted.len(),
            "cluster: another node took this node's members out of their rooms (declared dead); disconnecting them"
        );
        shared.disconnect_with_notice(&evicted);
    }
    if let Some(id) = last {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        shared
            .stats
            .log_lag_ms
            .store(now.saturating_sub(id.ms), Ordering::Relaxed);
    }
    entries.len()
}
