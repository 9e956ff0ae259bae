//! A chat server: a reactor thread multiplexes every socket with epoll, a pool of
//! worker threads handles each client's messages, and rooms fan chat lines out.
//! Speaks the course's protocol in JSON and protobuf, on one port.
//!
//! # Layout
//!
//! * `server.rs` — [`Server`]: bind, run, the shutdown sequence; `Shared` state.
//! * `reactor.rs` — **Reactor**: the only thread that polls; accepts, dispatches
//!   readiness, runs workers' commands (resume, close).
//! * `handler.rs` — **EventHandler**: one connection's readable/writable events:
//!   read, split frames, fill the inbox, pause when it is full, finish closing.
//! * `pool.rs` — **ThreadPool**, **Worker** and the **WorkQueue** (mutex + condvar).
//! * `dispatch.rs` — a worker's job: decode one session's frames in order, run them
//!   through the handler table, answer bad input, end sessions, flush.
//! * `cmd/` — the **handler table** and one module per command.
//! * `session.rs` — **ClientSession**: inbox (scheduling), state, outbound queue.
//! * `outbound.rs` — non-blocking, coalescing writes with a per-client cap.
//! * `broker.rs` — **MessageBroker**: rooms, membership, fan-out ordering.
//! * `delivery.rs` — encode once per format, flush once per turn.
//! * `validate.rs`, `texts.rs` — what clients may choose, and every text we send.
//! * `shutdown.rs`, `config.rs` — the shutdown flag; the start-up settings.
//! * `metrics.rs`, `limits.rs` — counters and the `/metrics` endpoint; the
//!   open-file limit.
//!
//! Wire formats, framing and codecs are the `chat-proto` crate: no I/O there.
//!
//! # Example
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

pub mod broker;
mod cmd;
pub mod config;
mod delivery;
mod dispatch;
mod handler;
pub mod limits;
pub mod metrics;
pub mod outbound;
pub mod pool;
mod reactor;
mod server;
mod session;
mod shutdown;
mod texts;
mod validate;

pub use config::{FormatPolicy, ServerConfig, ShutdownPolicy};
pub use server::Server;
pub use shutdown::ShutdownHandle;
