//! The control thread: this node's heartbeat, the reaper of dead nodes, and the
//! reset when this node lost its place in the cluster.
//!
//! * **Beat** (every `heartbeat`): renews this node's deadline by Redis's clock (so
//!   node clocks never matter) and trims the log to its retention. The answer also
//!   says whether this node was declared dead meanwhile (*fenced*: it stalled past
//!   its deadline and another node reaped its members) or Redis lost its data (the
//!   epoch is missing or different). Either way the node *resets*.
//! * **Reap**: removes the members of nodes whose deadline passed, with leave notices
//!   to the rest, a bounded number per call. A node reaps only after it has been
//!   connected for one time-to-live with its own beats succeeding: after an outage,
//!   every deadline has passed, and the others must get their chance to beat first.
//! * **Reset**: every client of this node in a room is told and disconnected (the
//!   others were already told they left, or their view has a gap), pending commands
//!   fail, the node registers again under a new id (raising the room counter to the
//!   highest id it has seen, so ids are never reused even if Redis restarted empty),
//!   re-claims its clients' names (if Redis lost its data, every node does so within
//!   a window in which new claims are refused, so no name is ever held twice), and
//!   the reader loads a fresh snapshot.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chat_core::Mailbox;
use redis::{Connection, RedisResult, Value};

use crate::link::{self, Role};
use crate::shared::Shared;
use crate::sync::{bump, lock};
use crate::values::{int, items, status, text};

/// Members one reap call removes at most (keeps each script short for Redis).
const REAP_BATCH: usize = 200;
/// Reap calls per heartbeat at most.
const REAP_CALLS: usize = 50;

pub(crate) fn run<M: Mailbox>(shared: Arc<Shared<M>>, mut connection: Option<Connection>) {
    let heartbeat = shared.config.heartbeat;
    let ttl = shared.config.node_ttl;
    let mut connected_since = Instant::now();
    let mut last_beat: Instant;
    let mut next = Instant::now() + heartbeat;
    while !shared.stopping.load(Ordering::Acquire) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(100)));
            continue;
        }
        next = now + heartbeat;
        let Some(link) = connection.as_mut() else {
            match link::open(
                &shared.redis,
                &shared.scripts,
                Role::Control,
                shared.identity(),
                ttl,
            ) {
                Ok(link) => {
                    connection = Some(link);
                    connected_since = Instant::now();
                    next = Instant::now();
                }
                Err(_) => {
                    shared.beating.store(false, Ordering::Release);
                    bump(&shared.stats.redis_errors);
                }
            }
            continue;
        };
        let outcome = beat(&shared, link);
        shared.beating.store(outcome.is_ok(), Ordering::Release);
        match outcome {
            Ok(Beat::Alive) => last_beat = Instant::now(),
            Ok(Beat::Reset(why)) => {
                tracing::warn!(
                    node = shared.node(),
                    node_name = shared.config.node_name,
                    "cluster: {why}; disconnecting this node's members in rooms and rejoining"
                );
                if let Err(e) = reset(&shared, link) {
                    tracing::warn!("cluster: rejoining failed: {e}; retrying");
                    connection = None;
                    continue;
                }
                last_beat = Instant::now();
                connected_since = Instant::now();
            }
            Err(e) => {
                tracing::debug!("cluster: beat failed: {e}");
                bump(&shared.stats.redis_errors);
                connection = None;
                continue;
            }
        }
        // Reap only with a fresh beat of our own, and after the others had a full
        // time-to-live since we came back to beat theirs.
        if connected_since.elapsed() >= ttl
            && last_beat.elapsed() < heartbeat * 2
            && let Err(e) = reap(&shared, link, "")
        {
            tracing::debug!("cluster: reap failed: {e}");
            connection = None;
        }
    }
}

enum Beat {
    Alive,
    Reset(&'static str),
}

fn beat<M: Mailbox>(shared: &Shared<M>, link: &mut Connection) -> RedisResult<Beat> {
    let reply: Value = shared
        .scripts
        .beat
        .call(&shared.prefix, shared.node(), 0)
        .arg(shared.config.node_ttl.as_millis() as u64)
        .arg(shared.config.retention.as_millis() as u64)
        .query(link)?;
    let (state, rest) = status(&reply);
    let epoch = rest.first().and_then(text).unwrap_or("");
    Ok(match state {
        "ok" if epoch == *lock(&shared.epoch) => Beat::Alive,
        "ok" => Beat::Reset("Redis's data was replaced (new epoch)"),
        "fenced" => Beat::Reset("this node was declared dead (it stalled past its deadline)"),
        _ => Beat::Reset("Redis lost its data (no epoch)"),
    })
}

/// Registers this node (again), raising the room counter to `floor`; answers the
/// epoch.
pub(crate) fn register<M: Mailbox>(
    shared: &Shared<M>,
    link: &mut Connection,
) -> RedisResult<String> {
    let floor = lock(&shared.replica).highest_room();
    let known = lock(&shared.epoch).clone();
    let candidate = format!("{:x}", shared.renew_node_id() ^ 0x5eed);
    let reply: Value = shared
        .scripts
        .register
        .call(&shared.prefix, shared.node(), 0)
        .arg(shared.config.node_ttl.as_millis() as u64)
        .arg(floor)
        .arg(candidate)
        .arg(known)
        .query(link)?;
    let epoch = status(&reply)
        .1
        .first()
        .and_then(text)
        .unwrap_or("")
        .to_owned();
    *lock(&shared.epoch) = epoch.clone();
    Ok(epoch)
}

fn reset<M: Mailbox>(shared: &Shared<M>, link: &mut Connection) -> RedisResult<()> {
    shared.in_sync.store(false, Ordering::Release);
    bump(&shared.stats.resets);
    shared.reset_members();
    shared.fail_pending();
    register(shared, link)?;
    reclaim_names(shared, link)?;
    shared.needs_snapshot.store(true, Ordering::Release);
    Ok(())
}

/// Claims this node's clients' names again under its new id. If Redis lost its data,
/// every node does this within the re-claim window `register` opened, during which
/// Redis refuses new claims (`scripts::CLAIM`), so a name held before cannot be taken
/// by someone else first. A name that was taken all the same (this node came back
/// too late) is not held twice: its client is told and disconnected.
fn reclaim_names<M: Mailbox>(shared: &Shared<M>, link: &mut Connection) -> RedisResult<()> {
    let claimed: Vec<(u64, String)> = lock(&shared.claimed)
        .iter()
        .map(|(&client, held)| (client, held.key.clone()))
        .collect();
    let mut lost = Vec::new();
    for (client, key) in claimed {
        let reply: Value = shared
            .scripts
            .claim
            .call(&shared.prefix, shared.node(), 0)
            .arg(client)
            .arg(&key)
            .arg("1")
            .query(link)?;
        if status(&reply).0 != "ok" {
            let mut claimed = lock(&shared.claimed);
            if claimed.get(&client).is_some_and(|held| held.key == key)
                && let Some(held) = claimed.remove(&client)
            {
                lost.push(held.to);
            }
        }
    }
    if !lost.is_empty() {
        tracing::warn!(
            clients = lost.len(),
            "cluster: names held here were taken while this node was away; disconnecting their clients"
        );
        shared.disconnect_with_notice(&lost);
    }
    Ok(())
}

/// Runs the reaper for `target` (a node id, or "" for any dead one) until it has
/// nothing left this round. Answers whether it finished the target.
pub(crate) fn reap<M: Mailbox>(
    shared: &Shared<M>,
    link: &mut Connection,
    target: &str,
) -> RedisResult<bool> {
    for _ in 0..REAP_CALLS {
        let reply: Value = shared
            .scripts
            .reap
            .call(&shared.prefix, shared.node(), 0)
            .arg(target)
            .arg(REAP_BATCH)
            .query(link)?;
        let parts = items(&reply);
        let removed = parts.first().and_then(int).unwrap_or(0);
        let Some(node) = parts.get(1).and_then(text) else {
            return Ok(true);
        };
        // A node stopping cleanly reaps itself (`ClusterBroker::stop`): that is
        // leaving, not a death, and its log says so.
        let own = node == shared.node().to_string();
        if removed > 0 {
            shared
                .stats
                .reaped_members
                .fetch_add(removed as u64, Ordering::Relaxed);
            if own {
                tracing::info!(
                    members = removed,
                    "cluster: this node's members left their rooms"
                );
            } else {
                tracing::info!(
                    dead = node,
                    members = removed,
                    "cluster: removed a dead node's members from their rooms"
                );
            }
        } else {
            if own {
                tracing::info!(
                    node,
                    node_name = shared.config.node_name,
                    "cluster: this node left the cluster cleanly"
                );
            } else {
                tracing::info!(dead = node, "cluster: a dead node is gone");
            }
            if !target.is_empty() {
                return Ok(true);
            }
        }
    }
    Ok(false)
}
