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
use crate::config::{FormatPolicy, ServerConfig};
use crate::dispatch::SessionWorker;
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
}

/// A bound, not yet running server.
pub struct Server {
    config: ServerConfig,
    poll: Poll,
    listener: TcpListener,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Server {
    /// Binds the listener; nothing is accepted until [`Server::run`].
    pub fn bind(config: ServerConfig) -> io::Result<Server> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut listener = TcpListener::bind(config.bind)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            broker: Box::new(LocalBroker::new()),
            queue: Arc::new(WorkQueue::new()),
            reactor: ReactorHandle::new(Arc::clone(&waker)),
            shutdown: Shutdown::new(waker),
        });
        Ok(Server {
            config,
            poll,
            listener,
            local_addr,
            shared,
        })
    }

    /// The address actually bound (the real port when the config asked for 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
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
            shared,
        } = self;
        let workers = config.workers.max(1);
        let format = match config.format {
            FormatPolicy::Auto => None,
            FormatPolicy::Only(format) => Some(format),
        };
        let pool = ThreadPool::new(workers, Arc::clone(&shared.queue), |_| {
            SessionWorker::new(Arc::clone(&shared))
        })?;
        tracing::info!(
            "listening on {local_addr} (format: {}, workers: {workers})",
            format.map_or("auto", |f| f.name())
        );

        let mut reactor = Reactor::new(
            poll,
            listener,
            Arc::clone(&shared),
            format,
            config.outbound_cap,
        );
        let result = reactor.run();
        if let Err(e) = &result {
            tracing::error!("reactor failed: {e}; shutting down");
        }
        tracing::info!(connections = reactor.connection_count(), "shutting down");
        reactor.stop_accepting();
        pool.join();
        reactor.close_all(SHUTDOWN_FLUSH);
        tracing::info!("stopped");
        result
    }
}
