//! Graceful shutdown under load: 1,000 connected clients (a fifth in rooms of two,
//! the rest idle) plus one stalled reader whose outbound queue holds megabytes it will
//! never read.
//! A shutdown must still finish promptly: the server waits at most its short flush
//! bound (1 s) for clients that do not read, then closes everything.
//!
//! * library server: `ShutdownHandle::shutdown()` → `run()` returns `Ok` within 5 s;
//! * the binary: `SIGTERM` → exit status 0 within 5 s;
//!
//! and in both cases every client's connection ends, the stalled reader's too (it may
//! end mid-frame: what could not be sent is dropped), and the port stops accepting.
//!
//! The stalled reader: 8 MiB of chats are sent into its room with `outbound_cap` at
//! 16 MiB, so it is not cut off as a slow consumer; the kernel's socket buffers take
//! about 4 MiB of it (measured in `slow_consumer.rs`), the rest waits in the server's
//! queue when the shutdown starts.

mod support;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use chat_proto::{Request, WireFormat};
use chat_server::ServerConfig;
use support::*;

const CLIENTS: usize = 1000;
const OUTBOUND_CAP: usize = 16 * 1024 * 1024;
/// 512 chats of 16 KiB: 8 MiB for the stalled reader.
const FLOOD_CHATS: usize = 512;
const CHAT_BYTES: usize = 16 * 1024;
/// How long a shutdown may take.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(5);

/// The load: `CLIENTS` clients (every fifth pair in a room of its own, having
/// chatted; the rest idle), and a stalled reader with megabytes queued for it.
struct Load {
    clients: Vec<Client>,
    stalled: Client,
}

impl Load {
    fn connect(addr: SocketAddr) -> Load {
        chat_server::limits::raise_open_file_limit().expect("raise RLIMIT_NOFILE");
        let mut clients: Vec<Client> = (0..CLIENTS)
            .map(|i| Client::connect(addr, WireFormat::ALL[i % 2]))
            .collect();
        // Every fifth pair shares a room (ids 1, 2, …), and says something.
        for (room, pair) in clients.chunks_mut(2).step_by(5).enumerate() {
            let title = format!("busy-{room}");
            pair[0].create(&title);
            pair[1].join(room as i64 + 1, &title);
            let name = pair[1].default_name();
            pair[0].expect_system(&entered(&name));
            pair[1].chat("hello");
            pair[0].expect_chat(&name, "hello");
        }
        let rooms = CLIENTS.div_ceil(10) as i64;

        let mut stalled = Client::connect(addr, WireFormat::Json);
        let mut flooder = Client::connect(addr, WireFormat::Protobuf);
        stalled.set_name("stalled");
        stalled.create("stall");
        flooder.join(rooms + 1, "stall");
        // From here on the stalled client reads nothing.
        let text = "x".repeat(CHAT_BYTES);
        let mut burst = Vec::new();
        for _ in 0..FLOOD_CHATS {
            burst.extend_from_slice(&encode(
                flooder.format(),
                &Request::Chat { text: text.clone() },
            ));
        }
        flooder.send_raw(&burst);
        flooder.expect_silence(); // every chat handled and queued for the stalled client
        clients.push(flooder);
        Load { clients, stalled }
    }

    /// Every connection must end; the stalled reader's may end mid-frame.
    fn expect_all_closed(mut self) {
        for client in &mut self.clients {
            client.expect_eof();
        }
        let drained = self.stalled.drain_until_closed();
        assert!(
            drained.responses.len() < FLOOD_CHATS,
            "the stalled reader got all {} messages: nothing was left queued",
            drained.responses.len()
        );
    }
}

#[track_caller]
fn assert_not_accepting(addr: SocketAddr) {
    assert!(
        TcpStream::connect(addr).is_err(),
        "{addr} still accepts connections after shutdown"
    );
}

#[test]
fn library_shutdown_with_1000_clients_and_a_stalled_reader_is_prompt() {
    let server = TestServer::with_config(ServerConfig {
        outbound_cap: OUTBOUND_CAP,
        ..config_with_metrics(4)
    });
    let m = server.metrics_addr();
    let load = Load::connect(server.addr);
    metric_eventually(m, "chat_connections", CLIENTS as u64 + 2);
    // The stalled reader is still connected: its queue is under the cap.
    metric_eventually(m, "chat_slow_consumer_disconnects_total", 0);

    let started = Instant::now();
    server.stop().expect("run() returns Ok");
    let took = started.elapsed();
    assert!(
        took < SHUTDOWN_BOUND,
        "run() took {took:?} to return after shutdown()"
    );
    eprintln!("shutdown under load took {took:?}");
    load.expect_all_closed();
    assert_not_accepting(server.addr);
}

#[test]
fn binary_sigterm_with_1000_clients_and_a_stalled_reader_exits_zero_promptly() {
    let cap = format!("--outbound-cap={OUTBOUND_CAP}");
    let mut server = BinaryServer::start(&[&cap]);
    let load = Load::connect(server.addr);

    let started = Instant::now();
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    let rc = unsafe { libc::kill(server.pid(), libc::SIGTERM) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    let status = server.wait_for_exit();
    let took = started.elapsed();
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert!(took < SHUTDOWN_BOUND, "exit took {took:?} after SIGTERM");
    eprintln!("shutdown under load took {took:?}");
    load.expect_all_closed();
    assert_not_accepting(server.addr);
}
