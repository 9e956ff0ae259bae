//! `--processes=N`: one run over several bench processes, for more connections than one
//! process may hold (20,000 open files here).
//!
//! The parent starts N copies of itself, each with a share of the rooms and of the
//! rate, its own name tag (names are unique server- or cluster-wide) and a file to wait
//! for after setup (`--start-when`). When every child has said it is set up (a line on
//! its stderr), the parent creates the file, so all runs start together; then it merges
//! the children's JSON reports: counts and rates are summed, connections too, setup
//! takes the slowest child's time, and **each latency figure is the worst child's** —
//! an upper bound of the merged percentile, not the percentile itself.
//!
//! Fixed-rate runs only (a find-max search cannot be split this way), without the
//! hostile populations. Overriding flags are appended after the parent's own: clap
//! lets a later flag win.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use serde_json::Value;

use crate::cli::Args;

/// Runs `args` over `args.processes` children; answers the merged report as JSON.
pub fn run(args: &Args) -> Result<Value, String> {
    let n = args.processes as usize;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find the bench binary: {e}"))?;
    let parent_args: Vec<String> = std::env::args().skip(1).collect();
    let go = std::env::temp_dir().join(format!("chat-bench-go-{}", std::process::id()));
    let _ = std::fs::remove_file(&go);
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut children = Vec::new();
    let mut assigned = 0;
    for i in 0..n {
        // An even split of the rooms; the rate in proportion.
        let rooms = (args.rooms * (i + 1)) / n - (args.rooms * i) / n;
        let rate = (args.rate as usize * rooms).div_ceil(args.rooms.max(1));
        assigned += rooms;
        let tag = format!("{}{}", args.name_tag, char::from(b'a' + (i % 26) as u8));
        let mut child = Command::new(&exe)
            .args(&parent_args)
            .arg(format!("--rooms={rooms}"))
            .arg(format!("--rate={rate}"))
            .arg(format!("--name-tag={tag}"))
            .arg(format!("--start-when={}", go.display()))
            .args(["--processes=1", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start bench process {i}: {e}"))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let tx = ready_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("set up; waiting for") {
                    let _ = tx.send(Ok(i));
                } else {
                    eprintln!("[process {i}] {line}");
                    if line.contains("error:") {
                        let _ = tx.send(Err(line));
                    }
                }
            }
        });
        children.push(child);
    }
    debug_assert_eq!(assigned, args.rooms);
    drop(ready_tx);
    let deadline = Instant::now() + args.setup_timeout();
    let mut ready = 0;
    while ready < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match ready_rx.recv_timeout(left) {
            Ok(Ok(_)) => ready += 1,
            Ok(Err(line)) => {
                kill_all(&mut children);
                return Err(format!("a bench process failed: {line}"));
            }
            Err(_) => {
                kill_all(&mut children);
                return Err(format!(
                    "only {ready} of {n} bench processes were set up in time"
                ));
            }
        }
    }
    std::fs::write(&go, b"go").map_err(|e| format!("cannot create {}: {e}", go.display()))?;
    let mut reports = Vec::new();
    for (i, child) in children.into_iter().enumerate() {
        let out = child
            .wait_with_output()
            .map_err(|e| format!("bench process {i}: {e}"))?;
        if !out.status.success() {
            let _ = std::fs::remove_file(&go);
            return Err(format!("bench process {i} exited with {}", out.status));
        }
        let report: Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("bench process {i}'s report: {e}"))?;
        reports.push(report);
    }
    let _ = std::fs::remove_file(&go);
    Ok(merge(&reports))
}

fn kill_all(children: &mut [std::process::Child]) {
    for child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The children's reports as one (see the module doc).
pub fn merge(reports: &[Value]) -> Value {
    let Some(first) = reports.first() else {
        return Value::Null;
    };
    let mut merged = first.clone();
    let sum = |path: &[&str]| sum_at(reports.iter(), path);
    merged["processes"] = Value::from(reports.len());
    merged["rooms"] = sum(&["rooms"]);
    merged["setup"]["connections"] = sum(&["setup", "connections"]);
    if let Some(Value::Object(quantiles)) = first
        .get("setup")
        .and_then(|s| s.get("connect_to_joined_ms"))
        .cloned()
    {
        for (q, _) in quantiles {
            let worst = reports
                .iter()
                .filter_map(|r| dig(r, &["setup", "connect_to_joined_ms", &q])?.as_f64())
                .fold(0.0, f64::max);
            merged["setup"]["connect_to_joined_ms"][&q] = Value::from(worst);
        }
    }
    merged["setup"]["seconds"] = Value::from(
        reports
            .iter()
            .filter_map(|r| dig(r, &["setup", "seconds"]).and_then(Value::as_f64))
            .fold(0.0, f64::max),
    );
    if first.get("registered_rooms").is_some() {
        // `--registered-rooms`: each process registered its own rooms to an account of
        // its own (names carry the process's tag); `owner` names them all.
        let owners: Vec<&str> = reports
            .iter()
            .filter_map(|r| dig(r, &["registered_rooms", "owner"])?.as_str())
            .collect();
        let reg = &mut merged["registered_rooms"];
        reg["rooms"] = sum(&["registered_rooms", "rooms"]);
        reg["owner"] = Value::from(owners.join(", "));
        for key in ["register_account_s", "seconds"] {
            reg[key] = Value::from(
                reports
                    .iter()
                    .filter_map(|r| dig(r, &["registered_rooms", key]).and_then(Value::as_f64))
                    .fold(0.0, f64::max),
            );
        }
        for (key, pick) in [
            ("first_room_id", i64::min as fn(i64, i64) -> i64),
            ("last_room_id", i64::max),
        ] {
            let ids = reports
                .iter()
                .filter_map(|r| dig(r, &["registered_rooms", key]).and_then(Value::as_i64));
            reg[key] = ids.reduce(pick).map_or(Value::Null, Value::from);
        }
    }
    let results: Vec<&Value> = reports.iter().filter_map(|r| r.get("result")).collect();
    let mut result = first.get("result").cloned().unwrap_or(Value::Null);
    for key in [
        "rate",
        "chats_sent",
        "chats_skipped",
        "expected_deliveries",
        "deliveries",
        "lost",
        "duplicated",
        "out_of_order",
        "misdelivered",
        "stale",
        "unexpected_messages",
        "deliveries_per_s",
        "unsent_bytes_at_end",
        "connections_alive_at_end",
        "bench_cpu_pct",
    ] {
        if result.get(key).is_some() {
            result[key] = sum_at(results.iter().copied(), &[key]);
        }
    }
    for key in ["latency_ms", "send_lag_ms"] {
        if let Some(Value::Object(quantiles)) = result.get(key).cloned() {
            for (q, _) in quantiles {
                let worst = results
                    .iter()
                    .filter_map(|r| r.get(key)?.get(&q)?.as_f64())
                    .fold(0.0, f64::max);
                result[key][&q] = Value::from(worst);
            }
        }
    }
    merged["steps"] = Value::Array(vec![result.clone()]);
    merged["result"] = result;
    merged
}

/// The sum of the numbers at `path` in `values`: an integer if all of them are.
fn sum_at<'a>(values: impl Iterator<Item = &'a Value> + Clone, path: &[&str]) -> Value {
    let total: f64 = values.clone().filter_map(|v| dig(v, path)?.as_f64()).sum();
    if values
        .clone()
        .all(|v| dig(v, path).is_some_and(Value::is_u64))
    {
        Value::from(total as u64)
    } else {
        Value::from(total)
    }
}

fn dig<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(*key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_and_latencies_take_the_worst() {
        let part = |deliveries: u64, p99: f64| {
            serde_json::json!({
                "rooms": 10, "setup": {"connections": 100, "seconds": 1.5},
                "result": {"rate": 500, "deliveries": deliveries, "lost": 0,
                           "deliveries_per_s": 4500.5, "latency_ms": {"p50": 1.0, "p99": p99}},
                "steps": []
            })
        };
        let merged = merge(&[part(1000, 5.0), part(2000, 9.5)]);
        assert_eq!(merged["processes"], 2);
        assert_eq!(merged["rooms"], 20);
        assert_eq!(merged["setup"]["connections"], 200);
        assert_eq!(merged["result"]["deliveries"], 3000);
        assert_eq!(merged["result"]["rate"], 1000);
        assert_eq!(merged["result"]["deliveries_per_s"], 9001.0);
        assert_eq!(merged["result"]["latency_ms"]["p99"], 9.5);
        assert_eq!(merged["steps"].as_array().map(Vec::len), Some(1));
        assert!(merged.get("registered_rooms").is_none());
    }

    #[test]
    fn registered_rooms_list_every_owner() {
        let part = |owner: &str, first: i64, account_s: f64| {
            serde_json::json!({
                "rooms": 3, "setup": {"connections": 9, "seconds": 0.5},
                "registered_rooms": {"owner": owner, "rooms": 3, "register_account_s": account_s,
                                     "seconds": 0.2, "first_room_id": first,
                                     "last_room_id": first + 2},
                "result": {"deliveries": 10}, "steps": []
            })
        };
        let merged = merge(&[
            part("abench-owner-1-x", 4, 0.05),
            part("bbench-owner-2-y", 1, 0.1),
        ]);
        let reg = &merged["registered_rooms"];
        assert_eq!(reg["rooms"], 6);
        assert_eq!(reg["owner"], "abench-owner-1-x, bbench-owner-2-y");
        assert_eq!(reg["register_account_s"], 0.1);
        assert_eq!(
            (&reg["first_room_id"], &reg["last_room_id"]),
            (&1.into(), &6.into())
        );
    }
}
