//! Cluster mode: many chat-server nodes sharing one chat through Redis.
//!
//! One Redis Stream is the single order of every room event; Lua scripts change the
//! shared state and append to that log atomically; every node applies the log in
//! order to its own replica of the rooms and delivers to its own clients at each
//! entry's position. So the single node's ordering guarantees (`chat_core::broker`)
//! hold across nodes: one order per room, contiguous views, per-sender order, replies
//! in order. Nodes beat a deadline kept by Redis's clock; a node that misses it is
//! reaped by the others (its members leave, with notices) and, if it comes back,
//! fenced: it disconnects its in-room clients and rejoins under a new id.
//!
//! What this crate does not do: speak to clients (the transport does), or survive the
//! loss of acknowledged writes silently — a Redis that comes back empty is detected
//! (its epoch) and every node resets.
//!
//! # Layout
//!
//! * `broker.rs` — [`ClusterBroker`], the `MessageBroker` the transport calls.
//! * `ops.rs` — the FIFO of operations and the waiters; `commands.rs` — the thread
//!   that sends them, pipelined, on one connection.
//! * `reader.rs` — the thread that follows the log; `replica.rs` — the rooms as of
//!   the last applied entry, applied through `chat_core::Room` (the same room rules
//!   as a single node), with no I/O.
//! * `control.rs` — heartbeat, reaper, reset.
//! * `accounts.rs` — accounts and login tokens in Redis: [`ClusterAccounts`] writes
//!   them (the server's accounts' keeper); the log tells every node.
//! * `shared.rs` — what those threads share, and how an awaited outcome is settled
//!   (exactly once: by the reader, the command thread or the timer thread);
//!   `config.rs` — [`ClusterConfig`]; `sync.rs` — the lock and counter helpers.
//! * `scripts.rs` — the Lua scripts and the key layout; `entry.rs` — the log entry
//!   format; `link.rs` — opening connections; `values.rs` — reading replies.
//! * `log_props.rs` (tests only) — property tests of the replicas without Redis: nodes
//!   fed one in-memory log at their own pace, checked with the core's ordering checker.
//!
//! Threads of its own, no async runtime: the `redis` crate's synchronous API.

#![forbid(unsafe_code)]

mod accounts;
mod broker;
mod commands;
mod config;
mod control;
mod entry;
mod link;
#[cfg(test)]
mod log_props;
mod ops;
mod reader;
mod replica;
mod scripts;
mod shared;
mod sync;
/// The core's test support (a recording mailbox, the ordering checker), shared with
/// the replica's tests.
#[cfg(test)]
#[path = "../../core/tests/support/mod.rs"]
mod test_support;
mod values;

pub use accounts::ClusterAccounts;
pub use broker::ClusterBroker;
pub use config::ClusterConfig;
