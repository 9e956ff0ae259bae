//! A chat server: a reactor thread multiplexes every socket with epoll, a pool of
//! worker threads runs each client's messages through the chat core, and rooms fan
//! chat lines out. Speaks the course's protocol in JSON and protobuf, on one port.
//!
//! This crate is the *transport*: sockets, threads, the queue between them, metrics
//! and the shutdown sequence. What the chat means — rooms, commands, texts,
//! validation, ordering — is the I/O-free `chat-core` crate, which this one drives;
//! wire formats, framing and codecs are `chat-proto`.
//!
//! # Layout
//!
//! * `server.rs` — [`Server`]: bind, run, the shutdown sequence; hands each thread
//!   the narrow handles it uses.
//! * `reactor.rs` — **Reactor**: the only thread that polls; accepts, passes
//!   readiness to each connection's EventHandler, runs workers' requests (resume,
//!   close).
//! * `admission.rs` — **Admission**: serve or refuse each new connection; its counts.
//! * `event_handler.rs` — **EventHandler**: one connection's readable/writable
//!   events: read, split frames, fill the inbox, pause when it is full, finish
//!   closing.
//! * `pool.rs` — **ThreadPool**, **Worker** and the **WorkQueue** (mutex + condvar).
//! * `worker.rs` — the worker's job: feed one session's frames, in order, to its
//!   `chat_core::Client`; log, count, close; flush in batches.
//! * `session.rs` — **ClientSession** ([`Session`]): inbox (scheduling), chat state,
//!   outbound queue; a `chat_core::Mailbox`.
//! * `delivery.rs` — writing out a turn's deliveries (workers), and the same for a
//!   broker that delivers from threads of its own (`chat_core::Transport`).
//! * `accounts.rs` — accounts: both brokers' `AccountBackend`, kept through a
//!   `chat_core::AccountKeeper` (the store, or a cluster's Redis), passwords hashed
//!   (Argon2id) on a thread of its own.
//! * `kept_accounts.rs` — the store as that keeper on one node, and reading accounts
//!   and tokens back at start.
//! * `kept_rooms.rs` — registered rooms on one node: the local broker's
//!   `chat_core::RoomKeeper`, handing their registrations and chats to the store,
//!   and reading them back at start.
//! * `room_push.rs` — the timer that pushes the room list to clients that opted in
//!   to the `rooms` extension (`chat_core::ListingWatch`), on a thread of its own.
//! * `web.rs` — a connection on the `--web` port: HTTP for the page (served from the
//!   binary), then the WebSocket (tungstenite's framing over an in-memory pipe) whose
//!   text messages become the session's JSON frames. No I/O of its own.
//! * `outbound.rs` — a queue of shared frames written with non-blocking `writev`,
//!   capped per client.
//! * `budget.rs` — one memory budget for all queued output and buffered input.
//! * `log_limit.rs` — per-connection limits on the log lines a client can cause.
//! * `peer_owner.rs` — which local user owns a connection's other end (for
//!   `--shutdown-from=owner`), from the kernel's TCP tables.
//! * `shutdown.rs`, `config.rs` — the shutdown flag; the start-up settings.
//! * `metrics.rs`, `metrics_endpoint.rs`, `limits.rs` — counters; the `/metrics`
//!   endpoint (its own thread and poll); the open-file limit.
//!
//! Imports only point down this list's dependencies (no module cycles); the test
//! `tests/module_graph.rs` checks that.
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

mod accounts;
mod admission;
mod budget;
pub mod config;
mod delivery;
mod event_handler;
mod kept_accounts;
mod kept_rooms;
pub mod limits;
mod log_limit;
mod metrics;
mod metrics_endpoint;
mod outbound;
mod peer_owner;
mod pool;
mod reactor;
mod room_push;
mod sd_notify;
mod server;
mod session;
mod shutdown;
pub mod tls;
mod web;
mod worker;

pub use config::WebPolicy;
pub use config::{FormatPolicy, ServerConfig, ShutdownPolicy};
pub use server::Server;
pub use session::Session;
pub use shutdown::ShutdownHandle;
pub use tls::{TlsAcceptor, TlsFiles};
