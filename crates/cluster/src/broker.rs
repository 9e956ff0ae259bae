//! ClusterBroker: a [`MessageBroker`] whose rooms live in Redis and are shared by
//! every node connected to it.
//!
//! A worker's call becomes an operation on the node's FIFO (`ops.rs`), sent by the
//! command thread. No worker ever waits for Redis: a command that changes rooms
//! (create, join, leave, rename) or claims a name answers [`Reply::Pending`], the
//! transport parks the client's session, and the outcome is handed back through
//! [`Transport::complete`] — for a change, once this node's reader has *applied* its
//! log entry, so the client's next request (say `/rooms`) already sees it and its
//! replies stay in order; for a refusal, as soon as the command thread reads it; and
//! if neither came within [`ClusterConfig::op_timeout`], the timer thread tells the
//! client the cluster is unavailable. Chats are not awaited: they go in order on the
//! same FIFO and are delivered, to everyone on every node, by the readers. `/rooms`
//! answers from the replica, with no round trip, even while Redis is away.
//!
//! The `out` fan-out of the trait's methods stays empty: deliveries happen where the
//! log is read (the reader thread, or the command thread while it reads the log in its
//! pipelines), at the entry's position in the log (the single-node broker
//! delivers under a room lock instead; see `chat_core::broker` for the contract both
//! keep).

use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chat_core::{
    AccountBackend, AccountRecord, AccountSink, BrokerError, BrokerStat, ClientId, Encoded, Fanout,
    Leaving, Listing, Mailbox, Member, MessageBroker, Recipient, Reply, RoomId, TokenRecord,
    Transport, Unregistered,
};

use crate::accounts::{self, ClusterAccounts};
use crate::commands;
use crate::config::ClusterConfig;
use crate::control;
use crate::entry::MemberId;
use crate::link::{self, Role};
use crate::ops::{OpKind, Then, Waiter};
use crate::reader;
use crate::shared::{Claimed, LocalMember, Shared};
use crate::sync::lock;

/// Rooms shared through Redis; see the module doc.
pub struct ClusterBroker<M> {
    shared: Arc<Shared<M>>,
    threads: std::sync::Mutex<Vec<JoinHandle<()>>>,
    /// The control connection opened at start-up, handed to the control thread.
    control: std::sync::Mutex<Option<redis::Connection>>,
    /// This node's clients that are pushed the room list when it changes (the
    /// listing is the replica's, the same on every node).
    watch: chat_core::ListingWatch<M>,
    /// The accounts (the transport's, kept in Redis through [`Self::account_keeper`]).
    accounts: Option<Arc<dyn AccountBackend<M>>>,
    /// Writes accounts to Redis, once asked for.
    keeper: OnceLock<Arc<ClusterAccounts<M>>>,
}

impl<M> std::fmt::Debug for ClusterBroker<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterBroker")
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

/// `Reply<RoomId>` for an operation whose success carries nothing.
fn unit(reply: Reply<RoomId>) -> Reply<()> {
    match reply {
        Reply::Done(outcome) => Reply::Done(outcome.map(|_| ())),
        Reply::Pending => Reply::Pending,
    }
}

impl<M: Mailbox> ClusterBroker<M> {
    /// Joins the cluster whose state lives at `config.url`: registers this node and
    /// loads the rooms. Fails if Redis cannot be reached now (later outages are
    /// survived; see the crate doc). Nothing is delivered until
    /// [`MessageBroker::start`].
    pub fn connect(config: ClusterConfig) -> Result<Self, String> {
        let redis = redis::Client::open(config.url.as_str())
            .map_err(|e| format!("bad cluster address {:?}: {e}", config.url))?;
        let shared = Arc::new(Shared::new(config, redis));
        let mut connection = link::open(
            &shared.redis,
            &shared.scripts,
            Role::Control,
            shared.identity(),
            shared.config.node_ttl,
        )
        .map_err(|e| format!("cannot reach Redis at {}: {e}", shared.config.url))?;
        let epoch = control::register(&shared, &mut connection)
            .map_err(|e| format!("cannot register with Redis: {e}"))?;
        reader::load_snapshot(&shared, &mut connection)
            .map_err(|e| format!("cannot load the rooms from Redis: {e}"))?;
        shared.in_sync.store(true, Ordering::Release);
        tracing::info!(
            node = shared.node(),
            node_name = shared.config.node_name,
            epoch,
            rooms = lock(&shared.replica).room_count(),
            "cluster: joined through {}",
            shared.config.url
        );
        Ok(ClusterBroker {
            shared,
            threads: std::sync::Mutex::new(Vec::new()),
            control: std::sync::Mutex::new(Some(connection)),
            watch: chat_core::ListingWatch::default(),
            accounts: None,
            keeper: OnceLock::new(),
        })
    }

    /// Where this node's accounts are to be kept: Redis, shared by every node.
    pub fn account_keeper(&self) -> Arc<ClusterAccounts<M>> {
        Arc::clone(
            self.keeper
                .get_or_init(|| ClusterAccounts::new(Arc::clone(&self.shared))),
        )
    }

    /// Every account and login token Redis keeps now, to start the accounts with
    /// (before [`MessageBroker::start`]: changes after this are in the log, which
    /// the reader follows from before it).
    pub fn kept_accounts(&self) -> Result<(Vec<AccountRecord>, Vec<TokenRecord>), String> {
        let mut control = lock(&self.control);
        let link = control
            .as_mut()
            .ok_or_else(|| "the cluster is running already".to_owned())?;
        accounts::fetch(&self.shared, link).map_err(|e| format!("cannot read the accounts: {e}"))
    }

    /// The same broker, offering `accounts` (the `accounts` extension), which are
    /// told through `sink` of every change the log brings (the same object, as the
    /// trait it is told through; weak, as it holds this node's keeper).
    pub fn with_accounts(
        mut self,
        accounts: Arc<dyn AccountBackend<M>>,
        sink: Weak<dyn AccountSink>,
    ) -> Self {
        self.accounts = Some(accounts);
        self.shared.set_account_sink(sink);
        self
    }

    /// This node's id in the cluster now.
    pub fn node_id(&self) -> u64 {
        self.shared.node()
    }

    /// Submits `kind` for the client whose mailbox is `to`; the outcome comes later
    /// (see the module doc), after the broker's own follow-up `then`. Answers at once
    /// only if the cluster cannot be used now.
    fn call(&self, kind: OpKind, to: &Arc<M>, then: Then) -> Reply<RoomId> {
        let shared = &self.shared;
        if let Err(e) = shared.ready() {
            shared.follow_up(&then, Err(e));
            return Reply::Done(Err(e));
        }
        let deadline = Instant::now() + shared.config.op_timeout;
        let waiter = Arc::new(Waiter::new(Arc::clone(to), then, deadline));
        let pending = &shared.pending;
        let submitted = shared.ops.submit(
            kind,
            shared.node(),
            Some(Arc::clone(&waiter)),
            None,
            false,
            |seq| {
                lock(pending).insert(seq, Arc::clone(&waiter));
            },
        );
        if submitted.is_none() {
            // Stopping: nothing more is sent.
            shared.follow_up(&waiter.then, Err(BrokerError::Unavailable));
            return Reply::Done(Err(BrokerError::Unavailable));
        }
        Reply::Pending
    }

    /// Enters `member` into a room through `kind` (create or join): registered as a
    /// local member first, so the reader finds its mailbox when the entry comes.
    fn enter(&self, member: Member<'_, M>, room: RoomId, kind: OpKind) -> Reply<RoomId> {
        if let Err(e) = self.shared.ready() {
            return Reply::Done(Err(e));
        }
        let node = self.shared.node();
        lock(&self.shared.locals).insert(
            member.id,
            LocalMember {
                client: member.id,
                node,
                room,
                boxed: Recipient {
                    mailbox: Arc::clone(member.mailbox),
                    format: member.format,
                    history: member.history,
                    topics: member.moderation,
                },
            },
        );
        let then = Then::Enter {
            client: member.id,
            node,
        };
        self.call(kind, member.mailbox, then)
    }

    /// Whether `client` is this node's member of `room`.
    fn is_local_member(&self, client: ClientId, room: RoomId) -> bool {
        lock(&self.shared.locals)
            .get(&client)
            .is_some_and(|local| local.room == room && local.node == self.shared.node())
    }

    /// Settles, as "unavailable", every wait past its deadline, until the broker
    /// stops. Its own thread: every other cluster thread can be stuck in a Redis call
    /// for longer than the timeout.
    fn run_timer(shared: &Shared<M>) {
        let tick = (shared.config.op_timeout / 8)
            .clamp(Duration::from_millis(5), Duration::from_millis(100));
        while !shared.stopping.load(Ordering::Acquire) {
            std::thread::sleep(tick);
            shared.expire(Instant::now());
        }
    }
}

impl<M: Mailbox> MessageBroker<M> for ClusterBroker<M> {
    fn create_room(
        &self,
        creator: Member<'_, M>,
        title: &str,
        _out: &mut Fanout<M>,
    ) -> Reply<RoomId> {
        let kind = OpKind::Create {
            client: creator.id,
            name: creator.name.to_owned(),
            title: title.to_owned(),
            owner: creator.account.map(str::to_owned),
        };
        self.enter(creator, 0, kind)
    }

    fn join_room(&self, room: RoomId, member: Member<'_, M>, _out: &mut Fanout<M>) -> Reply<()> {
        // The room's bans are checked where the join's entry is applied (the log's
        // order decides, on every node alike: a ban or an unban a moment ago on
        // another node counts exactly when it comes before the join).
        let kind = OpKind::Join {
            client: member.id,
            room,
            name: member.name.to_owned(),
            account: member.account.map(str::to_owned),
            address: member.address,
        };
        unit(self.enter(member, room, kind))
    }

    fn leave_room(
        &self,
        room: RoomId,
        member: Member<'_, M>,
        why: Leaving,
        _out: &mut Fanout<M>,
    ) -> Reply<()> {
        if !self.is_local_member(member.id, room) {
            // Taken out already (a reset, or the reaper): nothing left to do.
            return Reply::Done(match why {
                Leaving::Asked => Err(BrokerError::NoSuchRoom),
                Leaving::Disconnected => Ok(()),
            });
        }
        let kind = OpKind::Leave {
            client: member.id,
            room,
            notify_self: why == Leaving::Asked,
        };
        match why {
            Leaving::Asked => {
                unit(self.call(kind, member.mailbox, Then::Leave { client: member.id }))
            }
            Leaving::Disconnected => {
                // Nobody waits, and it must not be lost: kept through outages.
                self.shared.submit_kept(kind);
                Reply::Done(Ok(()))
            }
        }
    }

    fn rename(
        &self,
        room: RoomId,
        member: Member<'_, M>,
        _old: &str,
        _out: &mut Fanout<M>,
    ) -> Reply<()> {
        if !self.is_local_member(member.id, room) {
            return Reply::Done(Err(BrokerError::NoSuchRoom));
        }
        let kind = OpKind::Rename {
            client: member.id,
            room,
            name: member.name.to_owned(),
        };
        unit(self.call(kind, member.mailbox, Then::Nothing))
    }

    fn chat(
        &self,
        room: RoomId,
        sender: Member<'_, M>,
        text: &str,
        _chat: &Encoded,
        _out: &mut Fanout<M>,
    ) -> Result<usize, BrokerError> {
        self.shared.ready()?;
        let id = MemberId {
            node: self.shared.node(),
            client: sender.id,
        };
        let (members, kept) = {
            let replica = lock(&self.shared.replica);
            let members = replica
                .members_if_in(room, id)
                .ok_or(BrokerError::NoSuchRoom)?;
            // A registered room's chats are kept in Redis too (unless `--history=0`
            // keeps none anywhere).
            let kept = replica.is_registered(room) && self.shared.config.history.lines > 0;
            (members, kept)
        };
        let kind = OpKind::Chat {
            client: sender.id,
            room,
            text: text.to_owned(),
            kept,
        };
        let boxed = Recipient {
            mailbox: Arc::clone(sender.mailbox),
            format: sender.format,
            history: sender.history,
            topics: sender.moderation,
        };
        self.shared
            .ops
            .submit(kind, id.node, None, Some(boxed), false, |_| {})
            .ok_or(BrokerError::Unavailable)?;
        Ok(members.saturating_sub(1))
    }

    fn listing(&self) -> Result<Arc<Listing>, BrokerError> {
        Ok(lock(&self.shared.replica).listing())
    }

    fn listing_watch(&self) -> Option<&chat_core::ListingWatch<M>> {
        Some(&self.watch)
    }

    fn history(
        &self,
        room: RoomId,
        count: usize,
        before: Option<u64>,
    ) -> Result<(Vec<chat_core::ChatLine>, bool), BrokerError> {
        lock(&self.shared.replica)
            .history(room, count, before)
            .ok_or(BrokerError::NoSuchRoom)
    }

    fn claim_name(&self, member: Member<'_, M>, key: &str) -> Reply<()> {
        if let Err(e) = self.shared.ready() {
            return Reply::Done(Err(e));
        }
        // Recorded before it is sent, so that a release (the client leaving before
        // the outcome) is always sent after it; a refusal puts back what was held.
        let claimed = Claimed {
            key: key.to_owned(),
            to: Recipient {
                mailbox: Arc::clone(member.mailbox),
                format: member.format,
                history: member.history,
                topics: member.moderation,
            },
            direct: member.direct,
        };
        let previous = lock(&self.shared.claimed)
            .insert(member.id, claimed)
            .map(|held| held.key);
        let kind = OpKind::Claim {
            client: member.id,
            key: key.to_owned(),
            account: member.account.map(str::to_owned),
        };
        let then = Then::Claim {
            client: member.id,
            key: key.to_owned(),
            previous,
        };
        unit(self.call(kind, member.mailbox, then))
    }

    fn release_name(&self, id: ClientId) {
        if lock(&self.shared.claimed).remove(&id).is_some() {
            self.shared.submit_kept(OpKind::Release { client: id });
        }
    }

    fn offers_direct(&self) -> bool {
        true
    }

    fn offers_moderation(&self) -> bool {
        true
    }

    fn moderate(
        &self,
        room: RoomId,
        actor: Member<'_, M>,
        action: chat_core::moderation::Action,
        _out: &mut Fanout<M>,
    ) -> Reply<()> {
        let kind = OpKind::Moderate {
            client: actor.id,
            room,
            account: actor.account.map(str::to_owned),
            action,
        };
        unit(self.call(kind, actor.mailbox, Then::Nothing))
    }

    fn is_member(&self, room: RoomId, id: ClientId) -> bool {
        let member = MemberId {
            node: self.shared.node(),
            client: id,
        };
        lock(&self.shared.replica)
            .members_if_in(room, member)
            .is_some()
    }

    fn direct(&self, from: Member<'_, M>, to: &str, text: &str, _out: &mut Fanout<M>) -> Reply<()> {
        let kind = OpKind::Direct {
            client: from.id,
            to_key: to.to_owned(),
            from_key: chat_core::validate::name_key(from.name),
            from_name: from.name.to_owned(),
            text: text.to_owned(),
        };
        unit(self.call(kind, from.mailbox, Then::Nothing))
    }

    fn set_ignored(&self, member: Member<'_, M>, key: &str, ignore: bool) -> Reply<bool> {
        let kind = OpKind::Ignore {
            client: member.id,
            key: key.to_owned(),
            ignore,
        };
        match self.call(kind, member.mailbox, Then::Nothing) {
            Reply::Done(outcome) => Reply::Done(outcome.map(|changed| changed == 1)),
            Reply::Pending => Reply::Pending,
        }
    }

    fn refresh(&self, member: Member<'_, M>) {
        if let Some(held) = lock(&self.shared.claimed).get_mut(&member.id) {
            held.to.format = member.format;
            held.to.history = member.history;
            held.direct = member.direct;
        }
    }

    fn forget(&self, id: ClientId) {
        // Its ignore set goes (kept through outages: it must not outlive the client).
        self.shared.submit_kept(OpKind::Unignore { client: id });
    }

    /// The client is gone: its awaited operation is settled as failed at once, which
    /// takes it out of a room it was entering (the reader takes out an entry that is
    /// applied later, as an orphan).
    fn abandon(&self, id: ClientId) {
        self.shared.abandon(id);
    }

    fn delete_room(
        &self,
        room: RoomId,
        owner: &str,
        to: &Arc<M>,
        _out: &mut Fanout<M>,
    ) -> Reply<Unregistered> {
        let kind = OpKind::DeleteRoom {
            room,
            owner: owner.to_owned(),
        };
        match self.call(kind, to, Then::Nothing) {
            Reply::Done(outcome) => Reply::Done(outcome.map(Unregistered::from_completion)),
            Reply::Pending => Reply::Pending,
        }
    }

    fn accounts(&self) -> Option<&dyn AccountBackend<M>> {
        self.accounts.as_deref()
    }

    fn room_count(&self) -> usize {
        lock(&self.shared.replica).room_count()
    }

    fn start(&self, transport: Arc<dyn Transport<M>>) {
        if self.shared.transport.set(transport).is_err() {
            return;
        }
        let mut threads = lock(&self.threads);
        let spawn = |name: &str, body: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(body)
                .map_err(|e| tracing::error!("cluster: cannot start {name}: {e}"))
                .ok()
        };
        let shared = Arc::clone(&self.shared);
        threads.extend(spawn(
            "cluster-commands",
            Box::new(move || commands::run(shared)),
        ));
        let shared = Arc::clone(&self.shared);
        threads.extend(spawn(
            "cluster-reader",
            Box::new(move || reader::run(shared)),
        ));
        let shared = Arc::clone(&self.shared);
        threads.extend(spawn(
            "cluster-timer",
            Box::new(move || Self::run_timer(&shared)),
        ));
        if let Some(keeper) = self.keeper.get() {
            keeper.start();
        }
        let shared = Arc::clone(&self.shared);
        let connection = lock(&self.control).take();
        threads.extend(spawn(
            "cluster-control",
            Box::new(move || control::run(shared, connection)),
        ));
    }

    fn stop(&self) {
        let shared = &self.shared;
        // Accounts' writes queued so far go out first, while Redis is in reach.
        if let Some(keeper) = self.keeper.get() {
            keeper.stop();
        }
        shared.ops.close();
        shared.stopping.store(true, Ordering::Release);
        let threads: Vec<JoinHandle<()>> = lock(&self.threads).drain(..).collect();
        // The command thread first: what the workers queued is sent before the node
        // takes its members out.
        let mut threads = threads.into_iter();
        if let Some(commands) = threads.next() {
            let _ = commands.join();
        }
        match link::open(
            &shared.redis,
            &shared.scripts,
            Role::Control,
            shared.identity(),
            shared.config.node_ttl,
        ) {
            Ok(mut link) => match control::reap(shared, &mut link, &shared.node().to_string()) {
                Ok(_) => tracing::info!(
                    node = shared.node(),
                    node_name = shared.config.node_name,
                    "cluster: left the cluster; members' leaves announced"
                ),
                Err(e) => tracing::warn!(
                    "cluster: leaving the cluster failed: {e}; the others will reap this node"
                ),
            },
            Err(e) => tracing::warn!(
                "cluster: cannot reach Redis to leave ({e}); the others will reap this node"
            ),
        }
        for thread in threads {
            let _ = thread.join();
        }
    }

    fn stats(&self) -> Vec<BrokerStat> {
        let s = &self.shared.stats;
        let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let stat = |name, help, counter, value| BrokerStat {
            name,
            help,
            counter,
            value,
        };
        vec![
            stat(
                "cluster_redis_round_trips",
                "Pipelines sent to Redis by the command thread.",
                true,
                get(&s.round_trips),
            ),
            stat(
                "cluster_ops_sent",
                "Operations (chats, scripts) sent to Redis.",
                true,
                get(&s.ops_sent),
            ),
            stat(
                "cluster_log_entries_applied",
                "Shared-log entries this node applied.",
                true,
                get(&s.entries_applied),
            ),
            stat(
                "cluster_log_lag_ms",
                "Age of the last applied log entry when it was read, in ms.",
                false,
                get(&s.log_lag_ms),
            ),
            stat(
                "cluster_redis_errors",
                "Failed Redis calls (connects, replies).",
                true,
                get(&s.redis_errors),
            ),
            stat(
                "cluster_resets",
                "Times this node was fenced or saw Redis lose its data, and rejoined.",
                true,
                get(&s.resets),
            ),
            stat(
                "cluster_resyncs",
                "Times the reader fell behind the log's retention and resynchronised.",
                true,
                get(&s.resyncs),
            ),
            stat(
                "cluster_reaped_members",
                "Members of dead nodes this node took out of their rooms.",
                true,
                get(&s.reaped_members),
            ),
            stat(
                "cluster_chats_maybe_lost",
                "Chats whose senders were told Redis went away under them.",
                true,
                get(&s.chats_maybe_lost),
            ),
            stat(
                "cluster_op_timeouts",
                "Commands whose outcome did not come within the timeout (answered unavailable).",
                true,
                get(&s.timeouts),
            ),
            stat(
                "cluster_node_id",
                "This node's id in the cluster now (random; a new one after each reset)",
                false,
                self.shared.node(),
            ),
            stat(
                "cluster_available",
                "1 if commands can use the cluster now.",
                false,
                u64::from(self.shared.ready().is_ok()),
            ),
        ]
    }
}
