#!/usr/bin/env bash
# What one burst to a big room costs this machine: the server's CPU time (user and
# system, from /proc) and the bench's per chat sent into one room of MEMBERS clients,
# at a light RATE where bursts seldom overlap, with the latency each run saw. Every
# delivery needs a write by the server and a read by the bench; a burst cannot be
# complete on the machine's cores sooner than their CPU time together divided by the
# cores, so that quotient bounds the p99 any server could reach against this bench
# here (BENCHMARKS.md, "Big room"). At higher rates bursts overlap and the server
# batches (several chats per write); "busy" then shows how full the machine was.
#
#   bench/burst-cost.sh                 # 3 runs each: shared cores, then pinned
#   RUNS=5 RATE=20 MEMBERS=1000 bench/burst-cost.sh
#   MODES=shared RATE=200 bench/burst-cost.sh
#
# Modes: "shared" is the suite's setup (server --workers=2, nothing pinned); "pinned"
# puts the server (--workers=1) on CPU 0 and the bench on CPU 1, as BENCH_PIN=1 does.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[burst-cost.sh] %s\n' "$*" >&2; }
# shellcheck source=bench/lib.sh
source bench/lib.sh
RUNS="${RUNS:-3}"
RATE="${RATE:-20}"
MEMBERS="${MEMBERS:-1000}"
DURATION="${DURATION:-3}"
FORMAT="${FORMAT:-json}"
MODES="${MODES:-shared pinned}"
SERVER="${BENCH_SERVER:-target/release/chat-server}"
BENCH="${BENCH_BIN:-target/release/chat-bench}"
[[ -x $SERVER && -x $BENCH ]] || cargo build --release --quiet -p chat-server -p chat-bench
CORES="$(nproc)"
TMP="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

run_once() { # mode → one JSON report on stdout
    local mode="$1" server_pre=() bench_pre=() workers=2
    if [[ $mode == pinned ]]; then
        server_pre=(taskset -c 0)
        bench_pre=(taskset -c 1)
        workers=1
    fi
    launch_server "$TMP/server.log" "${server_pre[@]}" "$SERVER" --port=0 --workers="$workers" \
        --flood-control=off --no-store --max-connections=$((MEMBERS + 100)) || exit 1
    "${bench_pre[@]}" "$BENCH" --port="$SERVER_PORT" --format="$FORMAT" --rooms=1 \
        --per-room="$MEMBERS" --rate="$RATE" --duration="$DURATION" --drain=2 \
        --server-pid="$SERVER_PID" --json
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

echo "One room × $MEMBERS members, $RATE chats/s for $DURATION s, $FORMAT, $RUNS runs per mode, $CORES cores"
echo
echo "| mode | run | server user ms / burst | server system ms / burst | bench ms / burst | together ms / burst | ÷ $CORES cores | busy | p50 ms | p99 ms | max ms | lost |"
echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
for mode in $MODES; do
    for run in $(seq "$RUNS"); do
        run_once "$mode" >"$TMP/report.json"
        python3 - "$mode" "$run" "$CORES" "$TMP/report.json" <<'EOF'
import json, sys
mode, run, cores, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
r = json.load(open(path))["result"]
bursts = r["chats_sent"]
user = 1000 * r["server_user_s"] / bursts
system = 1000 * r["server_system_s"] / bursts
bench = 1000 * r["bench_cpu_pct"] / 100 * r["elapsed_s"] / bursts
both = user + system + bench
# The share of the machine the pair used while it ran.
busy = both * bursts / 1000 / (r["elapsed_s"] * cores)
lat = r["latency_ms"]
print(f"| {mode} | {run} | {user:.2f} | {system:.2f} | {bench:.2f} | {both:.2f} | {both / cores:.2f} "
      f"| {100 * busy:.0f} % | {lat['p50']:.2f} | {lat['p99']:.2f} | {lat['max']:.2f} | {r['lost']} |")
EOF
    done
done
