//! Cluster mode's harness: a real `redis-server` on a free loopback port, and nodes
//! (the `chat-server` binary with `--cluster`) that share it.
//!
//! Each test starts its own Redis (no persistence unless the test needs it) and its
//! own nodes, with fast liveness knobs (100 ms heartbeat, 500 ms time to live) unless
//! the test is about the defaults. Without a `redis-server` [`RedisServer::start`]
//! says loudly that the test skipped; under `CI=true` it fails instead.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{BinaryServer, TIMEOUT};

/// A `redis-server` on a free loopback port, killed on drop.
pub(crate) struct RedisServer {
    child: Option<Child>,
    pub(crate) port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts one, or `None` (after saying so) if there is no `redis-server` here.
    pub(crate) fn start() -> Option<RedisServer> {
        let Some(binary) = redis_binary() else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but redis-server is not installed: .ci/run installs it"
            );
            eprintln!(
                "\n*** SKIPPED: no redis-server on this machine (apt-get install redis-server) ***\n"
            );
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let dir =
            std::env::temp_dir().join(format!("chat-cluster-test-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let mut redis = RedisServer {
            child: None,
            port,
            dir,
        };
        redis.spawn(&binary);
        Some(redis)
    }

    fn spawn(&mut self, binary: &str) {
        let child = Command::new(binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            // `DEBUG SLEEP` stalls Redis for the stall test (refused by default
            // since Redis 7).
            .args(["--enable-debug-command", "local"])
            .args([
                "--dir",
                self.dir.to_str().expect("utf-8 dir"),
                "--dbfilename",
                "dump.rdb",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + TIMEOUT;
        while self.cli(&["PING"]).as_deref() != Some("PONG") {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs one command through `redis-cli`; its output, trimmed (`None` on failure).
    pub(crate) fn cli(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .filter(|s| !s.starts_with("Could not connect"))
    }

    /// Stops Redis; `save` keeps its data for the restart.
    pub(crate) fn stop(&mut self, save: bool) {
        let _ = self.cli(&["SHUTDOWN", if save { "SAVE" } else { "NOSAVE" }]);
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + TIMEOUT;
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                }
                thread::sleep(Duration::from_millis(10));
            }
        }
        if !save {
            let _ = std::fs::remove_file(self.dir.join("dump.rdb"));
        }
    }

    pub(crate) fn restart(&mut self) {
        self.spawn(&redis_binary().expect("redis-server"));
    }

    /// A node (the `chat-server` binary) of this cluster, with fast liveness knobs.
    pub(crate) fn node(&self) -> BinaryServer {
        self.node_with(&[])
    }

    /// A node with `extra` flags; the fast liveness knobs unless `extra` sets the
    /// time to live.
    pub(crate) fn node_with(&self, extra: &[&str]) -> BinaryServer {
        let cluster = format!("--cluster={}", self.url());
        let mut args = vec![cluster.as_str()];
        if !extra.iter().any(|a| a.starts_with("--cluster-node-ttl-ms")) {
            // 2 s, not less: a test binary runs many clusters (debug builds, each
            // with its own Redis) in parallel, and on a loaded 2-core machine a
            // heartbeat late by half a second had a node presumed dead and reset
            // mid-test ("unavailable" answers). Tests about liveness set their own.
            args.extend(["--cluster-heartbeat-ms=100", "--cluster-node-ttl-ms=2000"]);
        }
        args.extend(extra);
        BinaryServer::start(&args)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where `redis-server` is installed, if it is.
pub(crate) fn redis_binary() -> Option<String> {
    ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .map(str::to_owned)
}

/// Sends `signal` to a node.
pub(crate) fn signal(node: &BinaryServer, signal: libc::c_int) {
    // SAFETY: kill(2) on a child we spawned and still own.
    assert_eq!(unsafe { libc::kill(node.pid(), signal) }, 0);
}
