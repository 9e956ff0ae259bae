//! `chat-server`: the command line on top of the library.
//!
//! Parses flags (from the command line, `CHAT_SERVER_<FLAG>` variables and a
//! `--config` file: `flag_sources.rs`), sets up logging (`RUST_LOG`, default `info`,
//! to stderr), turns SIGINT/SIGTERM into the same shutdown as `/shutdown` and SIGHUP
//! into a reload of the TLS certificate, runs the server, and exits 0 after every
//! thread has been joined. `chat-server cert --self-signed HOST` writes a pair for
//! trying TLS out.

#![forbid(unsafe_code)]

mod flag_sources;

use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chat_cluster::{ClusterBroker, ClusterConfig};
use chat_core::{FloodLimits, Rate};
use chat_proto::WireFormat;
use chat_server::config::StoreSettings;
use chat_server::{FormatPolicy, Server, ServerConfig, ShutdownPolicy, TlsAcceptor, TlsFiles};
use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// A chat server (rooms, nicknames, chat fan-out) speaking the course's protocol,
/// JSON and protobuf on one port. Logs go to stderr; set RUST_LOG (e.g. debug) for more.
#[derive(Parser, Debug)]
#[command(version, about, after_help = SOURCES_HELP)]
struct Args {
    /// Read settings from this TOML file: its keys are the flags' long names
    /// (port = 9000, web = "127.0.0.1:8080", web-host = ["a", "b"], no-store = true).
    /// The command line and the environment win over it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// TCP port to listen on; 0 picks a free one (the log says which).
    #[arg(long, default_value_t = 9000)]
    port: u16,

    /// Address to listen on: an IP address or a host name (e.g. localhost), looked
    /// up once at start; a name with several addresses binds the first.
    #[arg(long, default_value = "0.0.0.0", value_parser = resolve_host)]
    bind: IpAddr,

    /// Worker threads handling client messages [default: one fewer than the cores,
    /// at least 1: the reactor thread needs a core of its own under load].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    workers: Option<u16>,

    /// Wire format: auto detects each connection's format from its first message, so
    /// JSON and protobuf clients share one port (and rooms).
    #[arg(long, value_enum, default_value_t = Format::Auto)]
    format: Format,

    /// Bytes that may wait for one client before it counts as a slow consumer and is
    /// disconnected.
    #[arg(long, default_value_t = chat_server::config::DEFAULT_OUTBOUND_CAP)]
    outbound_cap: usize,

    /// Who may stop the server with /shutdown: clients on this machine run by the
    /// server's own user or root (owner), any client on this machine (local), anyone
    /// (any, like the reference server), or nobody (none: signals only).
    #[arg(long, value_enum, default_value_t = ShutdownFrom::Owner)]
    shutdown_from: ShutdownFrom,

    /// Per-client flood control: over the limit a client's messages wait (it is told
    /// once); one that stays over it for --flood-grace is disconnected. off is for
    /// load generators.
    #[arg(long, value_enum, default_value_t = OnOff::On)]
    flood_control: OnOff,

    /// Chat lines per second a client may send, after a burst of --chat-burst.
    #[arg(long, default_value_t = FloodLimits::default().chat.per_second)]
    chat_rate: f64,

    /// Chat lines a client may send at once.
    #[arg(long, default_value_t = FloodLimits::default().chat.burst)]
    chat_burst: f64,

    /// Other commands (/name, /create, /join, /leave, /rooms, /shutdown) per second,
    /// after a burst of --command-burst.
    #[arg(long, default_value_t = FloodLimits::default().command.per_second)]
    command_rate: f64,

    /// Other commands a client may send at once.
    #[arg(long, default_value_t = FloodLimits::default().command.burst)]
    command_burst: f64,

    /// Seconds a client may stay over its flood limit before it is disconnected.
    #[arg(long, default_value_t = FloodLimits::default().grace.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    flood_grace: u64,

    /// Connections served at once; more are closed at accept. The open-file limit is
    /// raised as far as the system allows to make room.
    #[arg(long, default_value_t = chat_server::config::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,

    /// Connections served at once from one IP address (0: no limit); more are told
    /// why and closed. Loopback addresses are exempt unless --per-ip-include-loopback.
    #[arg(long, default_value_t = chat_server::config::DEFAULT_MAX_CONNECTIONS_PER_IP)]
    max_connections_per_ip: usize,

    /// Count loopback clients against --max-connections-per-ip too (by default local
    /// tools and a local reverse proxy, which share one address, are exempt).
    #[arg(long)]
    per_ip_include_loopback: bool,

    /// Disconnect clients that send no complete message for this many seconds (0:
    /// never, the default; the reference client sends nothing while its user is quiet).
    #[arg(long, default_value_t = 0)]
    idle_timeout: u64,

    /// Seconds a client may take from a frame's first byte to its last before it is
    /// cut off (slow-drip attacks).
    #[arg(long, default_value_t = chat_server::config::DEFAULT_FRAME_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    frame_timeout: u64,

    /// Seconds a client with output waiting may take none of it before it is cut off
    /// as a slow consumer.
    #[arg(long, default_value_t = chat_server::config::DEFAULT_WRITE_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    write_timeout: u64,

    /// Bytes of queued output and buffered input the whole server may hold; past it,
    /// the clients with the largest queues are cut off and reading pauses.
    #[arg(long, default_value_t = chat_server::config::DEFAULT_MEMORY_BUDGET)]
    memory_budget: usize,

    /// SO_SNDBUF for each client socket, bytes (0: the kernel's default, which grows
    /// to megabytes per socket).
    #[arg(long, default_value_t = chat_server::config::DEFAULT_SEND_BUFFER)]
    send_buffer: usize,

    /// Log lines as text (default) or one JSON object per line, for log shippers.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9100 or
    /// localhost:9100; a name with several addresses binds the first).
    #[arg(long, value_name = "ADDR", value_parser = resolve_addr)]
    metrics: Option<SocketAddr>,

    /// Serve the web client on ADDR (e.g. 0.0.0.0:8080): the page at http://ADDR/ and
    /// its WebSocket at /ws; web clients share rooms with TCP clients. A host name
    /// (localhost:8080) is looked up at start; with several addresses, the first.
    #[arg(long, value_name = "ADDR", value_parser = resolve_addr)]
    web: Option<SocketAddr>,

    /// Web: also let pages from ORIGIN (e.g. https://chat.example.org) open the
    /// WebSocket; the page's own origin always may. Repeat for several.
    #[arg(long, value_name = "ORIGIN")]
    web_allow_origin: Vec<String>,

    /// Web: a name the page is reached by (e.g. chat.example.org, behind a proxy),
    /// besides this server's address, localhost and loopback addresses: requests
    /// whose Host names anything else are refused (421), so a DNS-rebinding page
    /// cannot reach the chat; pages of http:// or https:// on it may open the
    /// WebSocket. Repeat for several.
    #[arg(long, value_name = "NAME")]
    web_host: Vec<String>,

    /// Web: a reverse proxy in front of the web port (its address as the server sees
    /// it, e.g. 127.0.0.1): the X-Forwarded-For it sends names the client, for the
    /// logs and --max-connections-per-ip (the proxy's own address is not limited).
    /// From any other address the header is ignored. Repeat for several.
    #[arg(long, value_name = "IP")]
    web_trusted_proxy: Vec<std::net::IpAddr>,

    /// TLS: the certificate chain (PEM, leaf first). With --tls-key, the web port
    /// serves only https:// and wss://, and --tls-port can be served. SIGHUP reloads
    /// both files (new connections get the new pair; a pair that fails to load is
    /// logged and the old one kept). `chat-server cert --self-signed HOST` makes one.
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// TLS: the private key (PEM: PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Also serve the chat protocol (both formats) over TLS on this port, beside the
    /// plain --port (the reference client speaks only plain TCP); 0 picks a free one
    /// (the log says which). Needs --tls-cert and --tls-key.
    #[arg(long, value_name = "PORT", requires = "tls_cert")]
    tls_port: Option<u16>,

    /// Keep accounts (and, as they come, registered rooms and history) in an
    /// embedded database (SQLite) in this directory, made if missing. One server per
    /// directory. Not used in cluster mode (Redis keeps them there).
    #[arg(long, value_name = "DIR", default_value = "chat-data")]
    data_dir: PathBuf,

    /// Keep nothing: no data directory, no accounts (in a cluster, nothing kept in
    /// Redis but the shared rooms: no accounts, registered rooms or kept history).
    #[arg(long, conflicts_with = "data_dir")]
    no_store: bool,

    /// Store: `normal` survives the server being killed (a commit is in the
    /// database file's log before it is answered); `full` also survives the machine
    /// losing power (an fsync per commit, slower).
    #[arg(long, value_enum, default_value_t = SyncArg::Normal)]
    sync: SyncArg,

    /// Store: how long chats may wait to be committed together, in ms (what a
    /// `kill -9` may lose of them). Accounts are committed at once.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    commit_window_ms: u64,

    /// Chats kept per room for clients that ask for history (the `history`
    /// extension): the last N lines (at most 512 KiB a room); 0 keeps none.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    history: u64,

    /// Run as one node of a cluster whose shared rooms live in this Redis
    /// (redis://HOST:PORT[/DB]); without it, rooms are this process's own.
    #[arg(long, value_name = "URL")]
    cluster: Option<String>,

    /// Cluster: the prefix of every Redis key (several clusters may share one Redis).
    #[arg(long, default_value = "chat", value_name = "NAME")]
    cluster_prefix: String,

    /// Cluster: this node's name in its log lines, its metrics
    /// (chat_cluster_node_info) and its Redis connections' names; only a label beside
    /// the node's random id, which stays what Redis keys use (two nodes with one name
    /// are two nodes) [default: the host name and --port, e.g. web1:9001].
    #[arg(long, value_name = "NAME", requires = "cluster")]
    node_name: Option<String>,

    /// Cluster: how often this node renews its deadline, in ms.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=60_000), hide_short_help = true)]
    cluster_heartbeat_ms: u64,

    /// Cluster: how long after its last renewal a silent node is declared dead and
    /// its members leave their rooms, in ms.
    #[arg(long, default_value_t = 3000, value_parser = clap::value_parser!(u64).range(50..=600_000), hide_short_help = true)]
    cluster_node_ttl_ms: u64,

    /// Cluster: how much of the shared log Redis keeps, in ms; a node whose reader
    /// falls further behind resynchronises (its in-room clients are disconnected).
    #[arg(long, default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(2_000..=3_600_000), hide_short_help = true)]
    cluster_log_retention_ms: u64,

    /// Cluster: the least time between two pipelines to Redis, in µs (the log reader
    /// waits twice this between reads); trades latency for Redis CPU.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=100_000), hide_short_help = true)]
    cluster_batch_us: u64,

    /// Print shell completions for SHELL (bash, zsh, fish, elvish, powershell) and exit.
    #[arg(long, value_name = "SHELL")]
    completions: Option<clap_complete::Shell>,

    /// Print the man page (roff; `chat-server --man | man -l -`) and exit.
    #[arg(long)]
    man: bool,

    #[command(subcommand)]
    command: Option<Command>,
}

/// What `chat-server` does besides serving.
#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Write a certificate and key for trying TLS out: cert.pem and key.pem (the key
    /// readable by its owner only). Self-signed, so clients must be told to trust it
    /// (chat-client --tls --ca=cert.pem); use a CA's certificate on the internet.
    Cert {
        /// The host names (or IP addresses) it is for; repeat for several.
        #[arg(long = "self-signed", value_name = "HOSTNAME", required = true)]
        self_signed: Vec<String>,

        /// Where to write the two files.
        #[arg(long, default_value = ".", value_name = "DIR")]
        out_dir: PathBuf,

        /// Replace files of those names that are already there.
        #[arg(long)]
        force: bool,
    },
    /// Copy the store of a data directory to a file, while a server may be running on
    /// it (a consistent copy of the last commit). To restore: stop the server, put the
    /// copy in an empty data directory as chat.db, start the server on it.
    Backup {
        /// The data directory to copy [default: the server's --data-dir, which may
        /// come from CHAT_SERVER_DATA_DIR or --config].
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,

        /// The file to write (it must not exist).
        #[arg(value_name = "FILE")]
        out: PathBuf,
    },
}

/// The end of `--help`: where else flags come from, and which source wins.
const SOURCES_HELP: &str = "\
Every flag may also be set in the environment as CHAT_SERVER_<FLAG> (CHAT_SERVER_PORT=9000, \
CHAT_SERVER_WEB_HOST=a,b for a repeatable flag, CHAT_SERVER_NO_STORE=true for a switch) \
or in the TOML file given by --config (or CHAT_SERVER_CONFIG). Precedence: the command \
line, then the environment, then the config file, then the defaults; a repeatable flag \
takes all its values from the first of these that gives any.";

/// The command line's definition: the flags, each with its environment variable.
fn command() -> clap::Command {
    flag_sources::with_env(Args::command())
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ShutdownFrom {
    Owner,
    Local,
    Any,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SyncArg {
    Normal,
    Full,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Auto,
    Json,
    Protobuf,
}

/// The reference server takes absl flags, which accept `-port=N` as well as
/// `--port=N`; scripts written for it keep working: a single-dash word of two or more
/// letters is read as the long flag.
/// `--bind`: an IP address, or a host name looked up (std's resolver: /etc/hosts,
/// then DNS) once at start, so `localhost` works like it does for the client. A name
/// with several addresses binds the first; one that does not resolve is a usage error
/// (clap's, exit status 2) naming it.
fn resolve_host(host: &str) -> Result<IpAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    first_address((host, 0).to_socket_addrs(), host).map(|addr| addr.ip())
}

/// `--web`/`--metrics`: `IP:PORT`, `[IPv6]:PORT` or `NAME:PORT`, resolved like
/// [`resolve_host`].
fn resolve_addr(addr: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = addr.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if !addr.contains(':') {
        return Err(format!("{addr:?} has no port (e.g. localhost:8080)"));
    }
    first_address(addr.to_socket_addrs(), addr)
}

fn first_address(
    found: std::io::Result<std::vec::IntoIter<SocketAddr>>,
    name: &str,
) -> Result<SocketAddr, String> {
    match found {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("{name:?} resolves to no address")),
        Err(e) => Err(format!("cannot resolve {name:?}: {e}")),
    }
}

fn reference_style_args() -> Vec<std::ffi::OsString> {
    std::env::args_os()
        .enumerate()
        .map(|(i, arg)| match arg.to_str() {
            Some(s) if i > 0 && is_single_dash_long(s) => format!("-{s}").into(),
            _ => arg,
        })
        .collect()
}

/// `-port=9000` or `-workers`: one dash, then a name of at least two characters.
fn is_single_dash_long(arg: &str) -> bool {
    let Some(rest) = arg.strip_prefix('-') else {
        return false;
    };
    let name = rest.split('=').next().unwrap_or_default();
    !rest.starts_with('-')
        && name.len() >= 2
        && name.chars().all(|c| c.is_ascii_lowercase() || c == '-')
}

/// Writes `text` to standard output. A reader that stopped early (`| head`) is not an
/// error: what it wanted it got.
fn print(text: &[u8]) -> ExitCode {
    use std::io::Write as _;
    match std::io::stdout().lock().write_all(text) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-server: cannot write to standard output: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes a self-signed certificate for `names` and its key into `dir` (the key
/// readable by its owner only); answers the two paths. Files already there are kept
/// unless `force`.
fn write_self_signed(
    names: &[String],
    dir: &Path,
    force: bool,
) -> Result<(PathBuf, PathBuf), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let pair = rcgen::generate_simple_self_signed(names.to_vec())
        .map_err(|e| format!("cannot make a certificate for {names:?}: {e}"))?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    for (path, text, mode) in [
        (&cert, pair.cert.pem(), 0o644),
        (&key, pair.signing_key.serialize_pem(), 0o600),
    ] {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).mode(mode);
        if force {
            options.create(true).truncate(true);
        } else {
            options.create_new(true);
        }
        options
            .open(path)
            .and_then(|mut file| file.write_all(text.as_bytes()))
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => {
                    format!("{} exists; pass --force to replace it", path.display())
                }
                _ => format!("cannot write {}: {e}", path.display()),
            })?;
    }
    Ok((cert, key))
}

/// Whether `name` may be a `--node-name`: what a Redis connection's name, a log field
/// and a metrics label all take as it is.
fn is_node_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(is_node_name_char)
}

fn is_node_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':')
}

/// `--node-name`'s default: the host name and the port (`web1:9001`; the host name
/// alone with `--port=0`, whose port is not known yet), made fit for
/// [`is_node_name`]; `node` if the host name cannot be read.
fn default_node_name(port: u16) -> String {
    let host: String = chat_server::config::host_name()
        .unwrap_or_else(|| "node".to_owned())
        .chars()
        .map(|c| if is_node_name_char(c) { c } else { '-' })
        .take(58)
        .collect();
    let host = if host.is_empty() {
        "node".to_owned()
    } else {
        host
    };
    if port == 0 {
        host
    } else {
        format!("{host}:{port}")
    }
}

/// Settings that would serve nobody, refused before anything starts.
fn check_settings(args: &Args) -> Result<(), String> {
    // One maximal message: a protobuf Type frame and a 65,535-byte body, with the
    // queue's per-message overhead.
    const ONE_MESSAGE: usize = 4 + 2 + 65_535 + 2 * 32;
    if args.max_connections == 0 {
        return Err("--max-connections=0 would refuse every client".into());
    }
    if args.cluster_node_ttl_ms < 2 * args.cluster_heartbeat_ms {
        return Err(format!(
            "--cluster-node-ttl-ms={} must be at least twice --cluster-heartbeat-ms={}: one late beat would declare a live node dead",
            args.cluster_node_ttl_ms, args.cluster_heartbeat_ms
        ));
    }
    if let Some(name) = &args.node_name
        && !is_node_name(name)
    {
        return Err(format!(
            "--node-name={name:?} must be 1 to 64 letters, digits, '.', '-', '_' or ':' (it names the node's Redis connections and labels its metrics)"
        ));
    }
    if args.cluster_prefix.is_empty() || args.cluster_prefix.contains(['{', '}']) {
        return Err(format!(
            "--cluster-prefix={:?} must be non-empty and without braces (it becomes the keys' {{hash tag}})",
            args.cluster_prefix
        ));
    }
    if args.outbound_cap < ONE_MESSAGE {
        return Err(format!(
            "--outbound-cap={} is below one maximal message ({ONE_MESSAGE} bytes): such a message would cut its recipient off",
            args.outbound_cap
        ));
    }
    if args.memory_budget < args.outbound_cap {
        return Err(format!(
            "--memory-budget={} is below --outbound-cap={}: one client could spend it all",
            args.memory_budget, args.outbound_cap
        ));
    }
    for (flag, value, least) in [
        ("--chat-rate", args.chat_rate, f64::MIN_POSITIVE),
        ("--chat-burst", args.chat_burst, 1.0),
        ("--command-rate", args.command_rate, f64::MIN_POSITIVE),
        ("--command-burst", args.command_burst, 1.0),
    ] {
        // NaN fails this comparison too.
        if !(value >= least && value.is_finite()) {
            return Err(format!(
                "{flag} must be a number of at least {least}, not {value}"
            ));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match flag_sources::parse(command, reference_style_args()) {
        Ok(matches) => Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit()),
        Err(why) => {
            eprintln!("chat-server: {why}");
            return ExitCode::from(2);
        }
    };
    if let Some(shell) = args.completions {
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut command(), "chat-server", &mut text);
        return print(&text);
    }
    if let Some(Command::Backup { data_dir, out }) = &args.command {
        let data_dir = data_dir.as_ref().unwrap_or(&args.data_dir);
        return match chat_store::backup(data_dir, out) {
            Ok(()) => {
                println!("wrote {}", out.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("chat-server backup: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(Command::Cert {
        self_signed,
        out_dir,
        force,
    }) = &args.command
    {
        return match write_self_signed(self_signed, out_dir, *force) {
            Ok((cert, key)) => {
                println!(
                    "wrote {} and {}\nserve with: chat-server --tls-cert={} --tls-key={} --tls-port=9443\n\
                     connect with: chat-client --tls --port=9443 --ca={} --server-name={}",
                    cert.display(),
                    key.display(),
                    cert.display(),
                    key.display(),
                    cert.display(),
                    self_signed[0]
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("chat-server cert: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.man {
        let mut text = Vec::new();
        if let Err(e) = clap_mangen::Man::new(command()).render(&mut text) {
            eprintln!("chat-server: cannot make the man page: {e}");
            return ExitCode::FAILURE;
        }
        return print(&text);
    }
    if let Err(why) = check_settings(&args) {
        eprintln!("chat-server: {why}");
        return ExitCode::from(2);
    }

    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A log reader that went away (`chat-server 2>&1 | head`) costs the lines, not
        // the thread that logs: the default reports the failed write with eprintln!,
        // which panics on that same closed stderr.
        .log_internal_errors(false);
    match args.log_format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        // One JSON object per line, for log shippers.
        LogFormat::Json => logs.json().with_ansi(false).init(),
    }
    for name in flag_sources::unknown_variables(&command()) {
        tracing::warn!(
            "{name} is set but sets no flag ({}<FLAG>, e.g. {}); ignored",
            flag_sources::ENV_PREFIX,
            flag_sources::env_name("port")
        );
    }

    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let files = TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            };
            match TlsAcceptor::load(files) {
                Ok(acceptor) => Some(Arc::new(acceptor)),
                Err(e) => {
                    eprintln!("chat-server: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        _ => None,
    };
    // Only a cluster's nodes have names.
    let node_name = match (&args.cluster, &args.node_name) {
        (None, _) => String::new(),
        (Some(_), Some(name)) => name.clone(),
        (Some(_), None) => default_node_name(args.port),
    };
    let defaults = ServerConfig::default();
    let history = chat_core::HistoryLimit {
        lines: usize::try_from(args.history).unwrap_or(usize::MAX),
        ..chat_core::HistoryLimit::default()
    };
    let config = ServerConfig {
        node_name: (!node_name.is_empty()).then(|| node_name.clone()),
        bind: SocketAddr::new(args.bind, args.port),
        workers: args.workers.map_or(defaults.workers, usize::from),
        format: match args.format {
            Format::Auto => FormatPolicy::Auto,
            Format::Json => FormatPolicy::Only(WireFormat::Json),
            Format::Protobuf => FormatPolicy::Only(WireFormat::Protobuf),
        },
        outbound_cap: args.outbound_cap,
        shutdown_from: match args.shutdown_from {
            ShutdownFrom::Owner => ShutdownPolicy::Owner,
            ShutdownFrom::Local => ShutdownPolicy::Local,
            ShutdownFrom::Any => ShutdownPolicy::Any,
            ShutdownFrom::None => ShutdownPolicy::None,
        },
        flood_control: (args.flood_control == OnOff::On).then_some(FloodLimits {
            chat: Rate {
                per_second: args.chat_rate,
                burst: args.chat_burst,
            },
            command: Rate {
                per_second: args.command_rate,
                burst: args.command_burst,
            },
            grace: Duration::from_secs(args.flood_grace),
        }),
        max_connections: args.max_connections,
        max_connections_per_ip: args.max_connections_per_ip,
        per_ip_exempt_loopback: !args.per_ip_include_loopback,
        idle_timeout: (args.idle_timeout > 0).then(|| Duration::from_secs(args.idle_timeout)),
        frame_timeout: Duration::from_secs(args.frame_timeout),
        write_timeout: Duration::from_secs(args.write_timeout),
        memory_budget: args.memory_budget,
        send_buffer: args.send_buffer,
        metrics: args.metrics,
        web: args.web,
        web_policy: chat_server::WebPolicy {
            allowed_origins: args.web_allow_origin.clone(),
            allowed_hosts: args.web_host.clone(),
            trusted_proxies: args.web_trusted_proxy.clone(),
        },
        tls,
        tls_bind: args.tls_port.map(|port| SocketAddr::new(args.bind, port)),
        history,
        // Redis keeps the cluster's data.
        store: (!args.no_store && args.cluster.is_none()).then(|| StoreSettings {
            dir: args.data_dir.clone(),
            options: chat_store::StoreOptions {
                commit_window: Duration::from_millis(args.commit_window_ms),
                sync: match args.sync {
                    SyncArg::Normal => chat_store::SyncMode::Normal,
                    SyncArg::Full => chat_store::SyncMode::Full,
                },
                // A registered room keeps on disk what it keeps in memory.
                history_limit: usize::try_from(args.history).unwrap_or(usize::MAX),
            },
        }),
    };
    match chat_server::limits::raise_open_file_limit() {
        Ok((before, after)) => {
            tracing::info!("open-file limit: {after} (was {before})");
            // Each connection is one descriptor; a few more are the server's own.
            if after < config.max_connections as u64 + 64 {
                tracing::warn!(
                    "the open-file limit ({after}) is below --max-connections ({}); \
                     connections past the limit will be refused",
                    config.max_connections
                );
            }
        }
        Err(e) => tracing::warn!("could not raise the open-file limit: {e}"),
    }
    let cluster = args.cluster.as_ref().map(|url| {
        let mut cluster = ClusterConfig::new(url.clone());
        cluster.node_name.clone_from(&node_name);
        cluster.prefix.clone_from(&args.cluster_prefix);
        cluster.heartbeat = Duration::from_millis(args.cluster_heartbeat_ms);
        cluster.node_ttl = Duration::from_millis(args.cluster_node_ttl_ms);
        cluster.retention = Duration::from_millis(args.cluster_log_retention_ms);
        cluster.batch_window = Duration::from_micros(args.cluster_batch_us);
        cluster.history = history;
        cluster
    });
    match serve(config, cluster, !args.no_store) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Serves until stopped: on one node, or as a node of `cluster`; `keep` is false for
/// `--no-store` (a cluster's nodes then keep no accounts in Redis either).
fn serve(config: ServerConfig, cluster: Option<ClusterConfig>, keep: bool) -> Result<(), String> {
    let server = match cluster {
        None => Server::bind(config),
        Some(cluster) => {
            let broker = ClusterBroker::connect(cluster)?;
            Server::with_cluster(config, broker, keep)
        }
    }
    .map_err(|e| e.to_string())?;
    let shutdown = server.shutdown_handle();
    let tls = server.tls_acceptor();

    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let signal_handle = signals.handle();
    let signal_thread = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if signal != SIGHUP {
                    tracing::info!(signal, "signal received, shutting down");
                    shutdown.shutdown();
                    return;
                }
                match &tls {
                    Some(tls) => match tls.reload() {
                        Ok(()) => tracing::info!("SIGHUP: TLS certificate and key reloaded"),
                        Err(e) => tracing::warn!(
                            "SIGHUP: TLS reload failed, keeping the certificate in use: {e}"
                        ),
                    },
                    None => tracing::info!("SIGHUP: no TLS certificate to reload"),
                }
            }
        })
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;

    let result = server.run().map_err(|e| format!("server failed: {e}"));
    signal_handle.close();
    if signal_thread.join().is_err() {
        tracing::error!("the signal thread panicked");
    }
    result
}
