//! The server as a whole: what the threads share, and the start/stop sequence.
//!
//! [`Server::bind`] binds the listener; [`Server::run`] starts the worker pool, runs
//! the reactor on the calling thread until a shutdown is requested, then stops in
//! this order: stop accepting → close the work queue and join every worker (each
//! finishes the job in hand) → flush what can be flushed within a short bound →
//! close every connection. When `run` returns, no thread it started is left.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mio::net::TcpListener;
use mio::{Interest, Poll, Waker};

use crate::broker::{LocalBroker, MessageBroker};
use crate::config::{ServerConfig, ShutdownPolicy};
use crate::dispatch::SessionWorker;
use crate::metrics::{Metrics, MetricsServer};
use crate::pool::{ThreadPool, WorkQueue};
use crate::reactor::{LISTENER, Reactor, ReactorHandle, WAKER};
use crate::session::Session;
use crate::shutdown::{Shutdown, ShutdownHandle};

/// How long a shutdown waits for clients to take their last bytes.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(1);

/// What the reactor and the workers share.
pub struct Shared {
    /// Rooms and fan-out.
    pub broker: Box<dyn MessageBroker>,
    /// The producer–consumer queue of sessions with input to handle.
    pub queue: Arc<WorkQueue<Arc<Session>>>,
    /// Workers' commands to the reactor.
    pub reactor: ReactorHandle,
    /// The shutdown flag.
    pub shutdown: Shutdown,
    /// Who may use `/shutdown`.
    pub shutdown_from: ShutdownPolicy,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
}

/// A bound, not yet running server.
pub struct Server {
    config: ServerConfig,
    poll: Poll,
    listener: TcpListener,
    local_addr: SocketAddr,
    metrics_listener: Option<std::net::TcpListener>,
    shared: Arc<Shared>,
}

impl Server {
    /// Binds the listener (and the metrics endpoint, if configured); nothing is
    /// accepted until [`Server::run`].
    pub fn bind(config: ServerConfig) -> io::Result<Server> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut listener = TcpListener::bind(config.bind)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let local_addr = listener.local_addr()?;
        let metrics_listener = config
            .metrics
            .map(std::net::TcpListener::bind)
            .transpose()?;
        let shared = Arc::new(Shared {
            broker: Box::new(LocalBroker::new()),
            queue: Arc::new(WorkQueue::new()),
            reactor: ReactorHandle::new(Arc::clone(&waker)),
            shutdown: Shutdown::new(waker),
            shutdown_from: config.shutdown_from,
            metrics: Metrics::default(),
        });
        Ok(Server {
            config,
            poll,
            listener,
            local_addr,
            metrics_listener,
            shared,
        })
    }

    /// The address actually bound (the real port when the config asked for 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the metrics endpoint, if one was asked for.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// A handle that stops this server from any thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(Arc::clone(&self.shared))
    }

    /// Serves until shut down (`/shutdown`, a [`ShutdownHandle`], a signal in the
    /// binary); returns after every thread it started is joined.
    pub fn run(self) -> io::Result<()> {
        let Server {
            config,
            poll,
            listener,
            local_addr,
            metrics_listener,
            shared,
        } = self;
        let workers = config.workers.max(1);
        let pool = ThreadPool::new(workers, Arc::clone(&shared.queue), |_| {
            SessionWorker::new(Arc::clone(&shared))
        })?;
        let metrics = match metrics_listener {
            Some(listener) => {
                let server = MetricsServer::start(listener, Arc::clone(&shared))?;
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

        let mut reactor = Reactor::new(poll, listener, Arc::clone(&shared), &config);
        let result = reactor.run();
        if let Err(e) = &result {
            tracing::error!("reactor failed: {e}; shutting down");
        }
        tracing::info!(connections = reactor.connection_count(), "shutting down");
        reactor.stop_accepting();
        pool.join();
        reactor.close_all(SHUTDOWN_FLUSH);
        if let Some(metrics) = metrics {
            metrics.stop();
        }
        tracing::info!("stopped");
        result
    }
}
