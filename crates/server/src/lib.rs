//! The chat server as a library: bind, run, shut down. `main.rs` is a thin CLI on top.
//!
//! ```no_run
//! use chat_server::{Server, ServerConfig};
//! let server = Server::bind(ServerConfig::local(4)).unwrap();
//! let addr = server.local_addr();
//! let shutdown = server.shutdown_handle();
//! let thread = std::thread::spawn(move || server.run());
//! // ... talk to `addr` ...
//! shutdown.shutdown();
//! thread.join().unwrap().unwrap();
//! ```

pub mod config;

pub use config::{FormatPolicy, ServerConfig};

use std::io;
use std::net::SocketAddr;

/// A bound, not yet running server.
pub struct Server {
    config: ServerConfig,
    local_addr: SocketAddr,
}

/// Asks a running server to stop, from any thread.
#[derive(Clone)]
pub struct ShutdownHandle {}

impl ShutdownHandle {
    /// Starts a shutdown; [`Server::run`] returns once everything is joined.
    pub fn shutdown(&self) {}
}

impl Server {
    /// Binds the listener; the server accepts nothing until [`Server::run`].
    pub fn bind(config: ServerConfig) -> io::Result<Server> {
        let local_addr = config.bind;
        Ok(Server { config, local_addr })
    }

    /// The address actually bound (the real port when the config asked for 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle that stops this server.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {}
    }

    /// Serves until shut down (by `/shutdown`, a signal in the binary, or a handle);
    /// returns after every thread is joined.
    pub fn run(self) -> io::Result<()> {
        let _ = self.config;
        Err(io::Error::other("not implemented yet"))
    }
}
