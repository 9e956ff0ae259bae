#!/usr/bin/env bash
# What a chat costs a cluster against a single server, at the same load, side by side:
# small rooms (ROOMS × PER_ROOM, every room's members spread over the nodes) at a
# fixed RATE, once on one chat-server and once on NODES nodes sharing one redis-server,
# alternating, RUNS times. For each run: the servers' CPU time (user + system) per chat
# sent, their threads' context switches per chat (both from /proc, over the measured
# run only), Redis's CPU per chat, the latency, and what was lost or reordered. The
# closing lines give the medians and the cluster/single ratio of CPU per chat.
#
#   bench/cluster-cost.sh
#   RUNS=5 RATE=4000 bench/cluster-cost.sh
#   SERVERS="before=/tmp/old/chat-server after=target/release/chat-server" bench/cluster-cost.sh
#   NODE_FLAGS="--cluster-batch-us=2000" bench/cluster-cost.sh   # extra flags for the nodes
#
# SERVERS lists LABEL=BINARY pairs (default: after=target/release/chat-server); every
# binary is run in every round, so before/after comparisons share the machine's
# conditions. The bench is this tree's chat-bench for all of them. Needs redis-server.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[cluster-cost.sh] %s\n' "$*" >&2; }
# shellcheck source=bench/lib.sh
source bench/lib.sh
RUNS="${RUNS:-3}"
RATE="${RATE:-4000}"
ROOMS="${ROOMS:-100}"
PER_ROOM="${PER_ROOM:-10}"
NODES="${NODES:-3}"
DURATION="${DURATION:-8}"
FORMAT="${FORMAT:-json}"
WORKERS="${WORKERS:-2}"
NODE_FLAGS="${NODE_FLAGS:-}"
SERVERS="${SERVERS:-after=target/release/chat-server}"
BENCH="${BENCH_BIN:-target/release/chat-bench}"
[[ -x target/release/chat-server && -x $BENCH ]] || cargo build --release --quiet -p chat-server -p chat-bench
command -v redis-server >/dev/null || { log "redis-server is not installed"; exit 1; }
TMP="$(mktemp -d)"
PIDS=()
REDIS_PID=""
SERVER_PID=""
cleanup() {
    local p
    for p in "${PIDS[@]}" $SERVER_PID $REDIS_PID; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
FLAGS=(--rooms="$ROOMS" --per-room="$PER_ROOM" --rate="$RATE" --duration="$DURATION" --drain=2
    --format="$FORMAT" --json)

stop_all() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    PIDS=()
    if [[ -n $REDIS_PID ]]; then
        kill -TERM "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
        REDIS_PID=""
    fi
}

single() { # BINARY → one bench report on stdout
    launch_server "$TMP/single.log" "$1" --port=0 --workers="$WORKERS" --flood-control=off --no-store || exit 1
    PIDS=("$SERVER_PID")
    SERVER_PID=""
    "$BENCH" --port="$SERVER_PORT" --server-pid="${PIDS[0]}" "${FLAGS[@]}"
    stop_all
}

cluster() { # BINARY → one bench report on stdout (Redis is the first --also-pid)
    local port ports=() i deadline
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
        --protected-mode no --logfile "$TMP/redis.log" &
    REDIS_PID=$!
    deadline=$((SECONDS + 10))
    until redis-cli -p "$port" ping >/dev/null 2>&1; do
        (( SECONDS < deadline )) || { log "redis-server did not start"; exit 1; }
        sleep 0.05 # polling, bounded by the deadline
    done
    for ((i = 1; i <= NODES; i++)); do
        # shellcheck disable=SC2086 # NODE_FLAGS are meant to split into words
        launch_server "$TMP/node$i.log" "$1" --port=0 --workers="$WORKERS" --flood-control=off \
            --cluster="redis://127.0.0.1:$port" $NODE_FLAGS || exit 1
        PIDS+=("$SERVER_PID") ports+=("$SERVER_PORT")
        SERVER_PID=""
    done
    "$BENCH" --ports="$(IFS=,; echo "${ports[*]}")" --server-pid="${PIDS[0]}" \
        --also-pid="$(IFS=,; echo "$REDIS_PID,${PIDS[*]:1}")" "${FLAGS[@]}"
    stop_all
}

echo "$ROOMS rooms × $PER_ROOM, $RATE chats/s for $DURATION s, $FORMAT, --workers=$WORKERS per server, cluster of $NODES nodes${NODE_FLAGS:+ ($NODE_FLAGS)} + Redis $(redis-server --version | grep -o 'v=[^ ]*' | cut -d= -f2), $RUNS rounds, $(nproc) cores"
echo
echo "| server | mode | round | chats | p50 ms | p99 ms | server µs / chat | context switches / chat | Redis µs / chat | lost | reordered |"
echo "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
for run in $(seq "$RUNS"); do
    for pair in $SERVERS; do
        label="${pair%%=*}" binary="${pair#*=}"
        for mode in single cluster; do
            log "round $run: $label $mode"
            "$mode" "$binary" >"$TMP/report.json"
            python3 - "$label" "$mode" "$run" "$TMP/report.json" <<'EOF' | tee -a "$TMP/rows"
import json, sys
label, mode, run, path = sys.argv[1:5]
r = json.load(open(path))["result"]
chats = r["chats_sent"]
others = r.get("others_cpu_s", [])
switches = r.get("others_context_switches", [])
# Redis is the first --also-pid of a cluster run; the other nodes follow.
redis = others[0] if mode == "cluster" else None
nodes_cpu = r["server_cpu_s"] + sum(others[1:] if mode == "cluster" else others)
nodes_sw = r["server_context_switches"] + sum(switches[1:] if mode == "cluster" else switches)
lat = r["latency_ms"]
redis_us = f"{1e6 * redis / chats:.1f}" if redis is not None else "–"
print(f"| {label} | {mode} | {run} | {chats} | {lat['p50']:.2f} | {lat['p99']:.2f} "
      f"| {1e6 * nodes_cpu / chats:.1f} | {nodes_sw / chats:.2f} | {redis_us} "
      f"| {r['lost']} | {r['out_of_order']} |")
EOF
        done
    done
done
echo
python3 - "$TMP/rows" <<'EOF'
import statistics, sys
rows = [line.strip().strip("|").split("|") for line in open(sys.argv[1])]
by = {}
for cells in rows:
    label, mode = cells[0].strip(), cells[1].strip()
    by.setdefault((label, mode), []).append((float(cells[6]), float(cells[7])))
for label in dict.fromkeys(k[0] for k in by):
    single = by.get((label, "single"), [])
    cluster = by.get((label, "cluster"), [])
    if not single or not cluster:
        continue
    s_cpu = statistics.median(c for c, _ in single)
    c_cpu = statistics.median(c for c, _ in cluster)
    s_sw = statistics.median(s for _, s in single)
    c_sw = statistics.median(s for _, s in cluster)
    print(f"* **{label}**: median server CPU per chat {s_cpu:.1f} µs single, {c_cpu:.1f} µs "
          f"cluster (all nodes) — **{c_cpu / s_cpu:.2f} ×**; context switches per chat "
          f"{s_sw:.2f} single, {c_sw:.2f} cluster.")
EOF
