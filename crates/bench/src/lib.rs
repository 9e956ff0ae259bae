//! `chat-bench`: an honest open-loop load generator for any server of the chat
//! protocol (`docs/PROTOCOL.md`), as a library with a thin binary on top.
//!
//! # Layout
//!
//! * [`cli`] — the flags and their validation.
//! * [`schedule`] — the open-loop send schedule: who sends chat `i`, and when.
//! * [`payload`] — the chat text format `b<sender>:<seq>:<t_ns>:<step>[ pad]`.
//! * [`peer`] — `--protocol=irc|nats`: the peers' protocols, without I/O.
//! * [`tracker`] — delivery accounting: lost, duplicated, out of order.
//! * [`owner`] — `--registered-rooms`: the dialogue of the account that owns the
//!   rooms, without I/O.
//! * [`conn`] — one connection: socket, outbound buffer, inbound framing (and TLS).
//! * [`tls`] — `--tls`: whom to trust, the client configuration.
//! * [`timer`] — a `timerfd` so the loop wakes when the next chat is due.
//! * [`driver`] — the mio event loop and the phases: setup, run, settle.
//! * [`hostile`] — the optional hostile and slow populations' pure parts (who is
//!   who, slow readers' pace, counting answers without decoding them).
//! * [`findmax`] — the `--find-max` rate search.
//! * [`procstat`] — the server's CPU time and memory from `/proc`.
//! * [`report`] — the results, as text or JSON.
//!
//! [`run`] does one invocation: set up, run once or search, report.
//!
//! # Example
//!
//! ```no_run
//! use clap::Parser;
//! let args = chat_bench::cli::Args::parse_from(["chat-bench", "--port=9000", "--rate=2000"]);
//! let report = chat_bench::run(&args).unwrap();
//! println!("{}", chat_bench::report::render_text(&report));
//! ```

pub mod cli;
pub mod conn;
pub mod driver;
pub mod findmax;
pub mod hostile;
pub mod owner;
pub mod payload;
pub mod peer;
pub mod procstat;
pub mod report;
pub mod schedule;
pub mod split;
pub mod timer;
pub mod tls;
pub mod tracker;

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use cli::Args;
use driver::{Driver, Plan};
use findmax::RateSearch;
use hostile::HostilePlan;
use procstat::Pid;
use report::{FindMaxReport, MemoryReport, Report, SetupReport, StepReport, TlsReport};
use schedule::Layout;

/// Descriptors the bench needs besides one per client (poll, timer, stdio, slack).
const SPARE_FDS: u64 = 64;
/// Between find-max steps: how long nothing must arrive, and the longest wait.
const SETTLE_QUIET: Duration = Duration::from_millis(300);
const SETTLE_LIMIT: Duration = Duration::from_secs(10);

/// Why an invocation could not produce a report.
#[derive(Debug)]
pub enum BenchError {
    /// A flag is invalid or the machine cannot support the run as asked.
    Usage(String),
    /// The server address does not resolve.
    Resolve(String),
    /// Clients could not all connect and join; says which and why.
    Setup(String),
    /// The bench's own event loop failed (what it was doing, the error).
    Io(String, io::Error),
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BenchError::Usage(why) => write!(f, "{why}"),
            BenchError::Resolve(why) => write!(f, "cannot resolve the server address: {why}"),
            BenchError::Setup(why) => write!(f, "setup failed: {why}"),
            BenchError::Io(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

impl std::error::Error for BenchError {}

/// Runs one invocation as `args` describe.
pub fn run(args: &Args) -> Result<Report, BenchError> {
    args.validate().map_err(BenchError::Usage)?;
    let ports = if args.ports.is_empty() {
        vec![args.port]
    } else {
        args.ports.clone()
    };
    let addrs = ports
        .iter()
        .map(|&port| resolve(&args.host, port))
        .collect::<Result<Vec<_>, _>>()?;
    let layout = Layout {
        rooms: args.rooms,
        per_room: args.per_room,
    };
    check_open_file_limit((layout.clients() + args.extra_connections()) as u64)?;
    let server = args.server_pid.map(Pid::Other);
    let server_rss_before = server
        .and_then(|p| procstat::memory(p).ok())
        .map(|m| m.rss_kb);

    let tls = if args.tls {
        let trust = match &args.tls_ca {
            Some(path) => tls::Trust::File(path),
            None => tls::Trust::Anyone,
        };
        Some(tls::TlsPlan::new(trust, &args.tls_server_name).map_err(BenchError::Usage)?)
    } else {
        None
    };
    let mut driver = Driver::new(Plan {
        addrs,
        web: args.web,
        name_tag: args.name_tag.clone(),
        format: args.format.into(),
        layout,
        pad: args.pad,
        connect_concurrency: args.connect_concurrency,
        setup_timeout: args.setup_timeout(),
        drain: args.drain(),
        server_pid: args.server_pid,
        also_pids: args.also_pid.clone(),
        hostile: hostile_plan(args),
        tls,
        peer: args.protocol.peer(),
        quickack: args.quickack(),
        registered_rooms: args.registered_rooms,
    })?;
    let setup_started = Instant::now();
    driver.setup()?;
    let setup_s = setup_started.elapsed().as_secs_f64();
    let tls_report = args.tls.then(|| {
        let session = driver.tls_session();
        TlsReport {
            server_name: args.tls_server_name.clone(),
            trust: if args.tls_ca.is_some() {
                "ca-file"
            } else {
                "insecure"
            },
            version: session.as_ref().map(|s| s.0.clone()),
            cipher_suite: session.map(|s| s.1),
        }
    });
    let server_rss_after = server
        .and_then(|p| procstat::memory(p).ok())
        .map(|m| m.rss_kb);
    let per_connection = match (server_rss_before, server_rss_after) {
        (Some(before), Some(after)) => {
            Some((after as f64 - before as f64) * 1024.0 / layout.clients() as f64)
        }
        _ => None,
    };
    let hostile_setup_started = Instant::now();
    driver.setup_hostile()?;
    let hostile_setup_s = hostile_setup_started.elapsed().as_secs_f64();

    if let Some(path) = &args.start_when {
        // Stderr, so a supervisor can tell every process is ready; stdout stays the
        // report's.
        eprintln!("chat-bench: set up; waiting for {}", path.display());
        let deadline = Instant::now() + args.setup_timeout();
        while !path.exists() {
            if Instant::now() > deadline {
                return Err(BenchError::Usage(format!(
                    "{} did not appear within --setup-timeout",
                    path.display()
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    let mut steps = Vec::new();
    let (result, find_max) = if args.find_max {
        let (best, stopped_early) = search(&mut driver, args, &mut steps)?;
        let result = best.and_then(|rate| {
            steps
                .iter()
                .rev()
                .find(|s| s.rate == rate && s.passed == Some(true))
                .cloned()
        });
        let report = FindMaxReport {
            p99_max_ms: args.p99_max_ms,
            best_rate: best,
            stopped_early,
        };
        (result, Some(report))
    } else {
        let step = driver.run_step(0, args.rate, args.duration)?;
        steps.push(step.clone());
        (Some(step), None)
    };
    let hostile = driver.finish_hostile()?.map(|mut h| {
        h.setup_s = hostile_setup_s;
        h
    });

    Ok(Report {
        target: {
            let ports: Vec<String> = if args.ports.is_empty() {
                vec![args.port.to_string()]
            } else {
                args.ports.iter().map(u16::to_string).collect()
            };
            format!(
                "{}:{}{}",
                args.host,
                ports.join(","),
                match (args.web, args.tls) {
                    (true, true) => " (WebSocket over TLS)",
                    (true, false) => " (WebSocket)",
                    (false, true) => " (TLS)",
                    (false, false) => "",
                }
            )
        },
        format: match args.protocol {
            cli::ProtocolArg::Chat => chat_proto::WireFormat::from(args.format).name(),
            cli::ProtocolArg::Irc => "irc",
            cli::ProtocolArg::Nats => "nats",
        },
        rooms: layout.rooms,
        per_room: layout.per_room,
        pad: args.pad,
        mode: if args.find_max { "find-max" } else { "fixed" },
        setup: SetupReport {
            connections: layout.clients(),
            seconds: setup_s,
            server_rss_before_kb: server_rss_before,
            server_rss_after_kb: server_rss_after,
            server_rss_per_connection_bytes: per_connection,
            connect_to_joined_ms: driver.connect_to_joined(),
        },
        steps,
        result,
        find_max,
        server_memory_end: server
            .and_then(|p| procstat::memory(p).ok())
            .map(|m| MemoryReport {
                rss_kb: m.rss_kb,
                peak_rss_kb: m.peak_rss_kb,
            }),
        errors: driver.errors().clone(),
        hostile,
        tls: tls_report,
        registered_rooms: driver.registered_rooms().cloned(),
    })
}

/// The hostile populations as the flags ask for them.
fn hostile_plan(args: &Args) -> HostilePlan {
    HostilePlan {
        idle_rooms: args.idle_rooms,
        rooms_flooders: args.rooms_flooders,
        rooms_batch: args.rooms_batch,
        flood_members: args.flood_members,
        flood_never_read: args.flood_never_read,
        flood_read_bps: args.flood_read_bps,
        flood_rate: args.flood_rate,
        flood_pad: args.flood_pad,
        flood_leave_wait: args.flood_leave_wait(),
        slowloris: args.slowloris,
        slowloris_interval: std::time::Duration::from_millis(args.slowloris_interval_ms),
    }
}

/// The find-max search over one set of connections. Returns the best rate and why
/// the search stopped early, if it did.
fn search(
    driver: &mut Driver,
    args: &Args,
    steps: &mut Vec<StepReport>,
) -> Result<(Option<u64>, Option<String>), BenchError> {
    let clients = args.rooms * args.per_room;
    let mut search = RateSearch::new(args.rate, args.max_rate, args.precision, args.max_steps);
    let mut step = 0;
    let mut retries_left = MAX_LAGGED_RETRIES;
    while let Some(rate) = search.next_rate() {
        let mut report = driver.run_step(step, rate, args.duration)?;
        let passed = passes(&report, args.p99_max_ms);
        report.passed = Some(passed);
        step += 1;
        // A step that failed while the bench itself sent late (a stall of the bench
        // or of the machine) says nothing about the server: run the rate again rather
        // than let one hiccup end the search far below the real maximum.
        let retry = !passed && bench_lagged(&report, args.p99_max_ms) && retries_left > 0;
        steps.push(report);
        if retry {
            retries_left -= 1;
        } else {
            search.record(rate, passed);
        }
        if driver.alive() < clients {
            // Later steps would run with fewer clients than asked for.
            let why = format!(
                "{} of {clients} connections were lost (see errors)",
                clients - driver.alive()
            );
            return Ok((search.best(), Some(why)));
        }
        driver.settle(SETTLE_QUIET, SETTLE_LIMIT)?;
    }
    Ok((search.best(), None))
}

/// Times a find-max search repeats a failed step because the bench lagged.
const MAX_LAGGED_RETRIES: u32 = 3;

/// Whether the bench's own send lag could explain a step's latency: its p99 took up
/// more than a quarter of the latency bound.
pub fn bench_lagged(step: &StepReport, p99_max_ms: f64) -> bool {
    step.send_lag_ms
        .as_ref()
        .is_some_and(|lag| lag.p99 > p99_max_ms / 4.0)
}

/// A find-max step passes when its p99 is within the bound and every chat reached
/// every member once, in order.
pub fn passes(step: &StepReport, p99_max_ms: f64) -> bool {
    step.lost == 0
        && step.duplicated == 0
        && step.out_of_order == 0
        && step.misdelivered == 0
        && step.chats_skipped == 0
        && step.chats_sent > 0
        && step.latency_ms.is_some_and(|l| l.p99 <= p99_max_ms)
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, BenchError> {
    (host, port)
        .to_socket_addrs()
        .map_err(|e| BenchError::Resolve(format!("{host}:{port}: {e}")))?
        .next()
        .ok_or_else(|| BenchError::Resolve(format!("{host}:{port}: no address")))
}

/// Raises the soft open-file limit to the hard limit; returns the new soft limit.
pub fn raise_open_file_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(io::Error::last_os_error());
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(limit.rlim_cur)
}

/// Fails early, with advice, when `clients` sockets would not fit the limit.
fn check_open_file_limit(clients: u64) -> Result<(), BenchError> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Ok(()); // Unknown: let connect report it if it comes to that.
    }
    let needed = clients + SPARE_FDS;
    if limit.rlim_cur < needed {
        return Err(BenchError::Usage(format!(
            "{clients} connections need about {needed} open files but the limit is {} \
             (hard limit {}); raise it with `ulimit -n` or run fewer clients",
            limit.rlim_cur, limit.rlim_max
        )));
    }
    Ok(())
}
