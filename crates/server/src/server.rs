//! The server as a whole: who gets which handle, and the start/stop sequence.
//!
//! [`Server::bind`] binds the listener; [`Server::run`] starts the worker pool, runs
//! the reactor on the calling thread until a shutdown is requested, then stops in
//! this order: stop accepting and reading → let the workers handle every frame
//! already read (at most [`SHUTDOWN_DRAIN`]; anything left then is counted and
//! logged) and join them → flush what can be flushed within [`SHUTDOWN_FLUSH`] →
//! close every connection. When `run` returns, no thread it started is left.
//!
//! This is the only module that sees every part; each thread is handed just the
//! handles it uses (the reactor its registry, queue, metrics and shutdown flag; a
//! worker its broker, metrics, queue, reactor handle and shutdown flag; the metrics
//! endpoint the counters and two gauges; a [`ShutdownHandle`] the flag).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chat_cluster::ClusterBroker;
use chat_core::{
    AccountBackend, AccountKeeper, AccountSink, LocalBroker, MessageBroker, Transport,
};
use mio::net::TcpListener;
use mio::{Interest, Poll, Waker};
use socket2::{Domain, Protocol, Socket, Type};

use crate::accounts::Accounts;
use crate::budget::MemoryBudget;
use crate::config::ServerConfig;
use crate::delivery::SessionTransport;
use crate::kept_accounts::{StoreAccounts, kept_accounts, kept_tokens};
use crate::kept_rooms::{StoreRooms, kept_rooms, store_stats};
use crate::metrics::{GaugeValues, Metrics};
use crate::metrics_endpoint::MetricsServer;
use crate::pool::{Staged, ThreadPool, WorkQueue};
use crate::reactor::{
    LISTENER, Listeners, Reactor, ReactorHandle, ReactorHandles, TLS_LISTENER, WAKER, WEB_LISTENER,
};
use crate::room_push::RoomPusher;
use crate::session::Session;
use crate::shutdown::{Shutdown, ShutdownHandle};
use crate::worker::{SessionWorker, WorkerHandles};
use chat_store::Store;

/// How long a shutdown waits for clients to take their last bytes.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(1);
/// How long a shutdown lets workers handle input already read.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(2);
/// The listen backlog asked for (the kernel caps it at `net.core.somaxconn`): room
/// for a thousand clients connecting at once without SYN retries.
const LISTEN_BACKLOG: i32 = 4096;

/// A bound, not yet running server.
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    poll: Poll,
    listener: TcpListener,
    local_addr: SocketAddr,
    web_listener: Option<TcpListener>,
    /// The chat protocol over TLS (`--tls-port`).
    tls_listener: Option<TcpListener>,
    metrics_listener: Option<std::net::TcpListener>,
    broker: Arc<dyn MessageBroker<Session>>,
    /// The accounts of a server with a store (the local broker's backend).
    accounts: Option<Arc<Accounts>>,
    /// The embedded store, if this server has one (for its metrics).
    store: Option<Arc<Store>>,
    queue: Arc<WorkQueue<Arc<Session>>>,
    metrics: Arc<Metrics>,
    reactor_handle: Arc<ReactorHandle>,
    shutdown: Arc<Shutdown>,
    budget: Arc<MemoryBudget>,
}

impl Server {
    /// Binds the listener (and the metrics endpoint, if configured), with rooms kept
    /// in this process; nothing is accepted until [`Server::run`].
    pub fn bind(config: ServerConfig) -> io::Result<Server> {
        let rooms = LocalBroker::new().with_history(config.history);
        let Some(settings) = config.store.clone() else {
            return Self::with_broker(config, Arc::new(rooms));
        };
        let (store, snapshot) = Store::open(&settings.dir, settings.options).map_err(|e| {
            io::Error::other(format!(
                "cannot use the data directory {}: {e}",
                settings.dir.display()
            ))
        })?;
        tracing::info!(
            accounts = snapshot.accounts.len(),
            rooms = snapshot.rooms.len(),
            chats = snapshot.chats.len(),
            "store: {}",
            store.path().display()
        );
        let store = Arc::new(store);
        let kept = kept_rooms(snapshot.rooms, snapshot.chats, snapshot.moderation);
        let accounts = Accounts::new(
            Arc::new(StoreAccounts::new(Arc::clone(&store))),
            kept_accounts(snapshot.accounts),
            kept_tokens(snapshot.sessions),
        );
        let broker = rooms
            .with_kept_rooms(kept)
            .with_keeper(Arc::new(StoreRooms::new(Arc::clone(&store))))
            .with_accounts(Arc::clone(&accounts) as Arc<dyn AccountBackend<Session>>);
        let mut server = Self::with_broker(config, Arc::new(broker))?;
        server.accounts = Some(accounts);
        server.store = Some(store);
        Ok(server)
    }

    /// Like [`Server::bind`], as one node of the cluster `broker` joined: rooms are
    /// shared through its Redis and, with `keep`, so are accounts, login tokens,
    /// registered rooms and their history (Redis is the cluster's store; without
    /// `keep`, `--no-store`, nothing is kept and accounts are not offered).
    pub fn with_cluster(
        config: ServerConfig,
        broker: ClusterBroker<Session>,
        keep: bool,
    ) -> io::Result<Server> {
        if !keep {
            return Self::with_broker(config, Arc::new(broker));
        }
        let (kept, tokens) = broker.kept_accounts().map_err(io::Error::other)?;
        tracing::info!(accounts = kept.len(), "cluster: accounts read from Redis");
        let keeper: Arc<dyn AccountKeeper> = broker.account_keeper();
        let accounts = Accounts::new(keeper, kept, tokens);
        let sink: Arc<dyn AccountSink> = Arc::clone(&accounts) as Arc<dyn AccountSink>;
        let broker = broker.with_accounts(
            Arc::clone(&accounts) as Arc<dyn AccountBackend<Session>>,
            Arc::downgrade(&sink),
        );
        let mut server = Self::with_broker(config, Arc::new(broker))?;
        server.accounts = Some(accounts);
        Ok(server)
    }

    /// Like [`Server::bind`], with rooms kept by `broker` (for example one shared by
    /// several servers).
    pub fn with_broker(
        config: ServerConfig,
        broker: Arc<dyn MessageBroker<Session>>,
    ) -> io::Result<Server> {
        crate::metrics::note_start();
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        // Errors name the address that failed: the chat port or the metrics endpoint.
        let mut listener = listen(config.bind).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot listen on {} (chat): {e}", config.bind),
            )
        })?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let local_addr = listener.local_addr()?;
        let metrics_listener = config
            .metrics
            .map(|addr| {
                std::net::TcpListener::bind(addr).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot listen on {addr} (metrics): {e}"))
                })
            })
            .transpose()?;
        let web_listener = match config.web {
            Some(addr) => {
                let mut web = listen(addr).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot listen on {addr} (web): {e}"))
                })?;
                poll.registry()
                    .register(&mut web, WEB_LISTENER, Interest::READABLE)?;
                Some(web)
            }
            None => None,
        };
        let tls_listener = match config.tls_bind {
            Some(addr) => {
                if config.tls.is_none() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "a TLS listener needs a certificate and key",
                    ));
                }
                let mut tls = listen(addr).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot listen on {addr} (TLS): {e}"))
                })?;
                poll.registry()
                    .register(&mut tls, TLS_LISTENER, Interest::READABLE)?;
                Some(tls)
            }
            None => None,
        };
        Ok(Server {
            poll,
            listener,
            local_addr,
            web_listener,
            tls_listener,
            metrics_listener,
            broker,
            accounts: None,
            store: None,
            queue: Arc::new(WorkQueue::new()),
            metrics: Arc::new(Metrics::named(config.node_name.clone())),
            reactor_handle: Arc::new(ReactorHandle::new(Arc::clone(&waker))),
            shutdown: Arc::new(Shutdown::new(waker)),
            budget: Arc::new(MemoryBudget::new(config.memory_budget)),
            config,
        })
    }

    /// The address actually bound (the real port when the config asked for 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the web client (`--web`), if one was asked for.
    pub fn web_addr(&self) -> Option<SocketAddr> {
        self.web_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The address of the chat protocol's TLS listener, if one was asked for.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The certificate in use, for reloading it (SIGHUP in the binary), if TLS is on.
    pub fn tls_acceptor(&self) -> Option<Arc<crate::tls::TlsAcceptor>> {
        self.config.tls.clone()
    }

    /// The address of the metrics endpoint, if one was asked for.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// A handle that stops this server from any thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(Arc::clone(&self.shutdown))
    }

    /// Serves until shut down (`/shutdown`, a [`ShutdownHandle`], a signal in the
    /// binary); returns after every thread it started is joined.
    pub fn run(self) -> io::Result<()> {
        let Server {
            config,
            poll,
            listener,
            web_listener,
            tls_listener,
            local_addr,
            metrics_listener,
            broker,
            accounts,
            store,
            queue,
            metrics,
            reactor_handle,
            shutdown,
            budget,
        } = self;
        let workers = config.workers.max(1);
        let worker_handles = WorkerHandles {
            broker: Arc::clone(&broker),
            metrics: Arc::clone(&metrics),
            queue: Arc::clone(&queue),
            reactor: Arc::clone(&reactor_handle),
            shutdown: Arc::clone(&shutdown),
            shutdown_from: config.shutdown_from,
        };
        // A broker with threads of its own (a cluster's log reader) writes to sessions
        // the way a worker does.
        let transport = Arc::new(SessionTransport::new(
            Arc::clone(&queue),
            Arc::clone(&metrics),
        ));
        broker.start(Arc::clone(&transport) as Arc<dyn Transport<Session>>);
        if let Some(accounts) = &accounts {
            accounts.start(transport);
        }
        let pool = ThreadPool::new(workers, Arc::clone(&queue), |_| {
            SessionWorker::new(worker_handles.clone())
        })?;
        let room_pusher = RoomPusher::start(
            Arc::clone(&broker),
            Arc::clone(&queue),
            Arc::clone(&metrics),
        )?;
        let metrics_server = match metrics_listener {
            Some(listener) => {
                let gauges = {
                    let (broker, queue) = (Arc::clone(&broker), Arc::clone(&queue));
                    let budget = Arc::clone(&budget);
                    let store = store.clone();
                    Box::new(move || {
                        let mut stats = broker.stats();
                        if let Some(store) = &store {
                            stats.extend(store_stats(store));
                        }
                        GaugeValues {
                            rooms: broker.room_count() as u64,
                            queue_depth: queue.len() as u64,
                            budget_used: budget.used() as u64,
                            broker: stats,
                        }
                    })
                };
                let server = MetricsServer::start(listener, Arc::clone(&metrics), gauges)?;
                tracing::info!("metrics on http://{}/metrics", server.addr());
                Some(server)
            }
            None => None,
        };
        tracing::info!(
            "listening on {local_addr} (format: {}, workers: {workers}, max connections: {})",
            config.format,
            config.max_connections
        );

        let handles = ReactorHandles {
            queue: Staged::new(queue),
            metrics,
            inbox: reactor_handle,
            shutdown: Arc::clone(&shutdown),
            budget,
            own_worker: Box::new(SessionWorker::new(worker_handles)),
        };
        if let Some(addr) = web_listener.as_ref().and_then(|l| l.local_addr().ok()) {
            let scheme = if config.tls.is_some() {
                "https"
            } else {
                "http"
            };
            tracing::info!("web client on {scheme}://{addr}/");
        }
        if let Some(addr) = tls_listener.as_ref().and_then(|l| l.local_addr().ok()) {
            tracing::info!("chat over TLS on {addr} (both formats)");
        }
        log_how_to_connect(
            local_addr,
            web_listener.as_ref().and_then(|l| l.local_addr().ok()),
            config.tls.is_some(),
        );
        // Every listener (chat, TLS, web, metrics) is bound: reachable from now on.
        crate::sd_notify::notify(&format!("READY=1\nSTATUS=listening on {local_addr}"));
        let listeners = Listeners {
            chat: listener,
            web: web_listener,
            tls: tls_listener,
        };
        let mut reactor = Reactor::new(poll, listeners, handles, &config);
        let result = reactor.run();
        if let Err(e) = &result {
            tracing::error!("reactor failed: {e}; shutting down");
        }
        tracing::info!(connections = reactor.connection_count(), "shutting down");
        crate::sd_notify::notify("STOPPING=1\nSTATUS=shutting down");
        reactor.stop_accepting();
        shutdown.begin_drain(SHUTDOWN_DRAIN);
        reactor.release_held();
        pool.finish();
        room_pusher.stop();
        // Every request was handled: hashing jobs still queued are finished (their
        // sessions are closing).
        if let Some(accounts) = &accounts {
            accounts.stop();
        }
        // Every request read was handled: a shared broker may now take this process's
        // members out of their rooms (the others are told) before they are closed.
        broker.stop();
        // Nothing more is written: the store commits what it holds now, not when its
        // last holder happens to let go of it (that could be after the process ends).
        if let Some(store) = &store {
            store.shutdown();
        }
        reactor.close_all(SHUTDOWN_FLUSH);
        if let Some(metrics_server) = metrics_server {
            metrics_server.stop();
        }
        tracing::info!("stopped");
        result
    }
}

/// A non-blocking listener on `addr` with [`LISTEN_BACKLOG`] (the standard library and
/// mio ask for 128, which makes a burst of connects wait for SYN retries).
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As mio and std do: a restarted server can bind again at once.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Where a client on this machine reaches `addr`: an unspecified bind address
/// (0.0.0.0, ::) is reached through the loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

/// The startup log's last word: the command that reaches this server and, with
/// --web, the page's URL, so a first run needs no reading of the flags; plus one
/// warning per plain-text listener bound to every interface, since chats (and,
/// with accounts, passwords) then cross the network unencrypted.
fn log_how_to_connect(chat: SocketAddr, web: Option<SocketAddr>, web_tls: bool) {
    let to = reachable(chat);
    tracing::info!(
        "connect with: chat-client --ip={} --port={}",
        to.ip(),
        to.port()
    );
    if let Some(web) = web {
        let scheme = if web_tls { "https" } else { "http" };
        tracing::info!("open in a browser: {scheme}://{}/", reachable(web));
    }
    let mut open = Vec::new();
    if chat.ip().is_unspecified() {
        open.push(format!("the chat port {chat}"));
    }
    if let Some(web) = web.filter(|web| web.ip().is_unspecified() && !web_tls) {
        open.push(format!("the web port {web}"));
    }
    if !open.is_empty() {
        tracing::warn!(
            "{} listens on every interface without TLS: chats (and passwords) travel \
             in clear text; serve TLS with --tls-cert/--tls-key/--tls-port, or listen \
             on this machine only with --bind=127.0.0.1",
            open.join(" and ")
        );
    }
}
