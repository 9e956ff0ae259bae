//! What a node's cluster threads and its workers share: the replica, this node's
//! members, the operation queue and the waiters, the flags that say whether the
//! cluster can be used now, and the counters.
//!
//! Lock order: `replica` before `locals` (the reader resolves mailboxes while it
//! applies entries); nobody holds `locals` while taking `replica`. The operation
//! queue's lock before `pending` (a waiter is registered as its operation is
//! queued). A settlement (`complete`, `expire`, `abandon`, `fail_pending`) takes
//! `pending` alone, then runs its follow-up with no lock held, so it must never be
//! called with the replica locked (`reader::apply_reply` collects its completions
//! and settles them after unlocking).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};

use std::time::{Duration, Instant};

use chat_core::{
    AccountSink, BrokerError, ClientId, Completion, Fanout, Mailbox, Recipient, RoomId, Transport,
    texts,
};

use crate::config::ClusterConfig;
use crate::entry::{AccountChange, MemberId};
use crate::link::Scripts;
use crate::ops::{OpKind, OpQueue, Then, Waiter};
use crate::replica::Replica;
use crate::sync::{bump, lock};

/// A client of this node that is in a room (or on its way into one).
#[derive(Debug)]
pub(crate) struct LocalMember<M> {
    pub(crate) client: ClientId,
    /// The node id it joined under (a reset changes the node's id).
    pub(crate) node: u64,
    /// The room (0 while its creation is on its way).
    pub(crate) room: RoomId,
    pub(crate) boxed: Recipient<M>,
}

/// The cluster's counters, shown on the metrics endpoint.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) round_trips: AtomicU64,
    pub(crate) ops_sent: AtomicU64,
    pub(crate) entries_applied: AtomicU64,
    pub(crate) log_lag_ms: AtomicU64,
    pub(crate) redis_errors: AtomicU64,
    pub(crate) resets: AtomicU64,
    pub(crate) resyncs: AtomicU64,
    pub(crate) reaped_members: AtomicU64,
    pub(crate) chats_maybe_lost: AtomicU64,
    pub(crate) timeouts: AtomicU64,
}

/// A name key this node asked Redis to hold for one of its clients, and where to
/// tell the client should the name be lost (a re-claim after a reset that fails).
#[derive(Debug)]
pub(crate) struct Claimed<M> {
    pub(crate) key: String,
    pub(crate) to: Recipient<M>,
    /// The client opted in to `direct`: direct messages reach it as `SCDirect`.
    pub(crate) direct: bool,
}

/// See the module doc.
pub(crate) struct Shared<M> {
    pub(crate) config: ClusterConfig,
    /// `{prefix}`.
    pub(crate) prefix: String,
    pub(crate) redis: redis::Client,
    pub(crate) scripts: Scripts,
    pub(crate) replica: Mutex<Replica<M>>,
    /// This node's clients in rooms, by client id.
    pub(crate) locals: Mutex<HashMap<ClientId, LocalMember<M>>>,
    /// The name keys this node's clients hold or are claiming (re-claimed after a
    /// reset).
    pub(crate) claimed: Mutex<HashMap<ClientId, Claimed<M>>>,
    /// This node's id in the cluster (a new one after each reset).
    node: AtomicU64,
    pub(crate) ops: OpQueue<M>,
    /// Clients awaiting an outcome, by operation number: settled by whoever learns
    /// the outcome first (the reader, the command thread, the timer), exactly once —
    /// whoever takes the waiter out of this map.
    pub(crate) pending: Mutex<HashMap<u64, Arc<Waiter<M>>>>,
    pub(crate) transport: OnceLock<Arc<dyn Transport<M>>>,
    /// This node's accounts, told every change the log brings (weak: they hold
    /// this node's keeper, which holds this).
    accounts: OnceLock<Weak<dyn AccountSink>>,
    /// The command connection works.
    pub(crate) link_up: AtomicBool,
    /// The last heartbeat reached Redis (an outage is noticed within a heartbeat even
    /// when no command was sent meanwhile, so the next one fails at once).
    pub(crate) beating: AtomicBool,
    /// The replica is a faithful copy (false during a reset, until the reader has a
    /// new snapshot).
    pub(crate) in_sync: AtomicBool,
    /// The reader must load a snapshot before applying anything more.
    pub(crate) needs_snapshot: AtomicBool,
    /// The command thread reads the log in its pipelines (it is busy sending): the
    /// reader thread stands aside until it stops (`handover` is signalled then).
    pub(crate) log_in_pipelines: Mutex<bool>,
    pub(crate) handover: Condvar,
    /// When the log was last read, by either thread (for the reader's resync rule).
    pub(crate) log_read_at: Mutex<Instant>,
    /// The epoch this node's state belongs to.
    pub(crate) epoch: Mutex<String>,
    pub(crate) stopping: AtomicBool,
    pub(crate) stats: Stats,
}

impl<M> std::fmt::Debug for Shared<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("node", &self.node.load(Ordering::Relaxed))
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl<M: Mailbox> Shared<M> {
    pub(crate) fn new(config: ClusterConfig, redis: redis::Client) -> Self {
        let history = config.history;
        Shared {
            prefix: config.key_prefix(),
            config,
            redis,
            scripts: Scripts::new(),
            replica: Mutex::new(Replica::new(history)),
            locals: Mutex::new(HashMap::new()),
            claimed: Mutex::new(HashMap::new()),
            node: AtomicU64::new(new_node_id()),
            ops: OpQueue::new(),
            pending: Mutex::new(HashMap::new()),
            transport: OnceLock::new(),
            accounts: OnceLock::new(),
            link_up: AtomicBool::new(true),
            beating: AtomicBool::new(true),
            in_sync: AtomicBool::new(false),
            needs_snapshot: AtomicBool::new(false),
            log_in_pipelines: Mutex::new(false),
            handover: Condvar::new(),
            log_read_at: Mutex::new(Instant::now()),
            epoch: Mutex::new(String::new()),
            stopping: AtomicBool::new(false),
            stats: Stats::default(),
        }
    }

    /// This node's id now.
    pub(crate) fn node(&self) -> u64 {
        self.node.load(Ordering::Acquire)
    }

    /// Tells this node's accounts of the log's changes from now on (once).
    pub(crate) fn set_account_sink(&self, sink: Weak<dyn AccountSink>) {
        let _ = self.accounts.set(sink);
    }

    /// This node's accounts, if it has any (and they are still there).
    pub(crate) fn account_sink(&self) -> Option<Arc<dyn AccountSink>> {
        self.accounts.get()?.upgrade()
    }

    /// Queues direct messages (client, sender's name, text, time) to this node's
    /// clients in `out`, each in the form its client reads; one whose client let go
    /// of its name meanwhile is dropped (its sender was told it was delivered: it
    /// was, to the name's holder when Redis took it).
    pub(crate) fn deliver_directs(
        &self,
        directs: Vec<(ClientId, String, String, u64)>,
        out: &mut Fanout<M>,
    ) {
        if directs.is_empty() {
            return;
        }
        let claimed = lock(&self.claimed);
        for (client, from, text, time_ms) in directs {
            let Some(held) = claimed.get(&client) else {
                continue;
            };
            let to = &held.to;
            if let Some(message) =
                chat_core::direct::encode(to.format, held.direct, &from, &text, time_ms)
            {
                out.send(&to.mailbox, to.format, &message);
            }
        }
    }

    /// Tells this node's accounts of `change` (an entry of the log).
    pub(crate) fn tell_accounts(&self, change: AccountChange) {
        let Some(sink) = self.account_sink() else {
            return;
        };
        match change {
            AccountChange::Account(account) => sink.account(account),
            AccountChange::Password { key, hash } => sink.password(&key, &hash),
            AccountChange::Token(token) => sink.token(token),
            AccountChange::TokenGone(hash) => sink.token_gone(&hash),
        }
    }

    /// This node's id now and its name (empty if it has none), as Redis connections
    /// are named.
    pub(crate) fn identity(&self) -> (u64, &str) {
        (self.node(), &self.config.node_name)
    }

    /// Takes a new node id (after being fenced, the old one is dead for good).
    pub(crate) fn renew_node_id(&self) -> u64 {
        let id = new_node_id();
        self.node.store(id, Ordering::Release);
        id
    }

    /// Whether commands can use the cluster right now.
    pub(crate) fn ready(&self) -> Result<(), BrokerError> {
        if self.link_up.load(Ordering::Acquire)
            && self.beating.load(Ordering::Acquire)
            && self.in_sync.load(Ordering::Acquire)
        {
            Ok(())
        } else {
            Err(BrokerError::Unavailable)
        }
    }

    /// The mailbox of `member`, if it is a client of this node in (or entering) a room.
    pub(crate) fn recipient(&self, member: MemberId) -> Option<Recipient<M>> {
        if member.node != self.node() {
            return None;
        }
        lock(&self.locals)
            .get(&member.client)
            .filter(|local| local.node == member.node)
            .map(|local| local.boxed.clone())
    }

    /// Hands `outcome` to the client awaiting this node's operation `seq`, if one
    /// still does. Never called with the replica locked (the follow-up reads it).
    pub(crate) fn complete(&self, seq: u64, outcome: Completion) {
        let waiter = lock(&self.pending).remove(&seq);
        if let Some(waiter) = waiter {
            self.settle(&waiter, outcome);
        }
    }

    /// The broker's follow-up, then the outcome to the client's session (once).
    pub(crate) fn settle(&self, waiter: &Waiter<M>, outcome: Completion) {
        if !waiter.settle() {
            return;
        }
        self.follow_up(&waiter.then, outcome);
        if let Some(transport) = self.transport.get() {
            transport.complete(&waiter.to, outcome);
        }
    }

    /// What the broker does with an outcome before the client sees it (see [`Then`]).
    pub(crate) fn follow_up(&self, then: &Then, outcome: Completion) {
        match (then, outcome) {
            (&Then::Enter { client, .. }, Ok(room)) => {
                if let Some(local) = lock(&self.locals).get_mut(&client) {
                    local.room = room;
                }
            }
            (&Then::Enter { client, node }, Err(_)) => {
                lock(&self.locals).remove(&client);
                // A timeout may still be applied later; the reader then takes the
                // member out again (an orphan). If it already was, do it now.
                let rooms = lock(&self.replica).rooms_of(MemberId { node, client });
                for room in rooms {
                    self.submit_kept(OpKind::Leave {
                        client,
                        room,
                        notify_self: false,
                    });
                }
            }
            (&Then::Leave { client }, Err(BrokerError::NoSuchRoom)) => {
                lock(&self.locals).remove(&client);
            }
            (
                Then::Claim {
                    client,
                    key,
                    previous,
                },
                Err(_),
            ) => {
                let mut claimed = lock(&self.claimed);
                if let Some(held) = claimed.get_mut(client).filter(|held| held.key == *key) {
                    match previous {
                        Some(previous) => previous.clone_into(&mut held.key),
                        None => {
                            claimed.remove(client);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Every client whose wait passed its deadline is told "unavailable".
    pub(crate) fn expire(&self, now: Instant) {
        let expired: Vec<Arc<Waiter<M>>> = {
            let mut pending = lock(&self.pending);
            let seqs: Vec<u64> = pending
                .iter()
                .filter(|(_, waiter)| waiter.deadline <= now)
                .map(|(&seq, _)| seq)
                .collect();
            seqs.iter().filter_map(|seq| pending.remove(seq)).collect()
        };
        for waiter in expired {
            bump(&self.stats.timeouts);
            self.settle(&waiter, Err(BrokerError::Unavailable));
        }
    }

    /// Client `client` is gone: its awaited operations are settled as failed, which
    /// undoes what they did (see [`ClusterBroker::abandon`](crate::ClusterBroker)).
    pub(crate) fn abandon(&self, client: ClientId) {
        let abandoned: Vec<Arc<Waiter<M>>> = {
            let mut pending = lock(&self.pending);
            let seqs: Vec<u64> = pending
                .iter()
                .filter(|(_, waiter)| waiter.then.client() == Some(client))
                .map(|(&seq, _)| seq)
                .collect();
            seqs.iter().filter_map(|seq| pending.remove(seq)).collect()
        };
        for waiter in abandoned {
            self.settle(&waiter, Err(BrokerError::Unavailable));
        }
    }

    /// Every waiter gets "unavailable" (a reset: their operations belong to a node
    /// id that is gone).
    pub(crate) fn fail_pending(&self) {
        let all: Vec<Arc<Waiter<M>>> = lock(&self.pending).drain().map(|(_, w)| w).collect();
        for waiter in all {
            self.settle(&waiter, Err(BrokerError::Unavailable));
        }
    }

    /// Says whether the command thread reads the log in its pipelines now; when it
    /// stops, the reader thread takes over.
    pub(crate) fn set_log_in_pipelines(&self, on: bool) {
        let mut current = lock(&self.log_in_pipelines);
        if *current != on {
            *current = on;
            if !on {
                self.handover.notify_all();
            }
        }
    }

    /// For the reader thread: waits up to `timeout` while the command thread reads
    /// the log; answers whether it still does.
    pub(crate) fn log_read_elsewhere(&self, timeout: Duration) -> bool {
        let current = lock(&self.log_in_pipelines);
        let (current, _) = self
            .handover
            .wait_timeout_while(current, timeout, |on| *on)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *current
    }

    /// Queues an operation nobody waits for, kept through outages.
    pub(crate) fn submit_kept(&self, kind: OpKind) {
        let _ = self.ops.submit(kind, self.node(), None, None, true, |_| {});
    }

    /// Writes out what `out` queued.
    pub(crate) fn flush(&self, out: &mut Fanout<M>) {
        if let Some(transport) = self.transport.get() {
            transport.flush(out);
        }
    }

    /// Disconnects every client of this node that is in a room, telling it why:
    /// after a reset its view of its room has a gap the protocol cannot express.
    /// Their leaves are queued (they matter when only this node's reader fell behind;
    /// after a fence the scripts refuse them, the reaper having done it already).
    pub(crate) fn reset_members(&self) {
        let mut from_replica = lock(&self.replica).local_members();
        let locals: Vec<LocalMember<M>> = lock(&self.locals).drain().map(|(_, m)| m).collect();
        for local in &locals {
            if local.room != 0 {
                self.submit_kept(OpKind::Leave {
                    client: local.client,
                    room: local.room,
                    notify_self: false,
                });
            }
        }
        from_replica.extend(locals.into_iter().map(|m| m.boxed));
        self.disconnect_with_notice(&from_replica);
    }

    /// Tells each of `members` its place in the cluster was lost, then disconnects it
    /// (each once, whatever the repeats).
    pub(crate) fn disconnect_with_notice(&self, members: &[Recipient<M>]) {
        let mut members: Vec<&Recipient<M>> = members.iter().collect();
        members.sort_by_key(|b| Arc::as_ptr(&b.mailbox) as usize);
        members.dedup_by_key(|b| Arc::as_ptr(&b.mailbox) as usize);
        let mut out = Fanout::new();
        for to in &members {
            to.notify(texts::CLUSTER_RESET, &mut out);
        }
        self.flush(&mut out);
        if let Some(transport) = self.transport.get() {
            for to in &members {
                transport.disconnect(&to.mailbox);
            }
        }
    }
}

/// A random node id (below 2^53, so it survives any Lua number conversion).
fn new_node_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.write_u32(std::process::id());
    (hasher.finish() & ((1 << 53) - 1)).max(1)
}
