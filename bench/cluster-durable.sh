#!/usr/bin/env bash
# What keeping a cluster's history in Redis costs (issue #21): the same cluster (NODES
# nodes sharing one redis-server) at the same load (ROOMS × PER_ROOM, every room's
# members spread over the nodes, RATE chats/s for DURATION s), side by side in two modes.
# Every round runs each mode once, alternating which goes first, each against a fresh
# redis-server and fresh nodes:
#
#   guest       the bench's usual guest rooms: a chat is one XADD to the shared log
#   registered  chat-bench --registered-rooms: one extra connection registers an
#               account (on the first node) and creates every room under it before the
#               members join, so every chat of the run goes through the CHAT_KEPT script
#               (the XADD, plus an RPUSH and LTRIM to the room's `{PREFIX}:room:<id>:history`
#               list, which Redis keeps after the run)
#
# The nodes are the same in both modes (accounts on: no --no-store, which would leave a
# node no accounts and so no registered rooms); only the bench's flag differs. For each
# run: the nodes' CPU time (user + system, all nodes) per chat sent and Redis's, over
# the measured run only (chat-bench's --server-pid and --also-pid), the latency, what
# was lost, duplicated or reordered, and Redis's memory: INFO memory's used_memory once
# the bench is set up (it waits with --start-when until the script has read it) and
# again once the bench has exited (its clients' leaves included: a few hundred bytes a
# room, against the run's chats), the growth divided by the chats sent and by the chats
# kept (LLEN summed over the history lists; the chats sent unless --history trimmed
# them), and the history lists' own MEMORY USAGE per kept chat. Both modes' growth
# includes the shared log's entries (kept for --cluster-log-retention-ms, 60 s by
# default, longer than a run); the difference between the modes is what the kept
# history adds. The closing lines give the medians and the registered/guest ratios.
#
#   bench/cluster-durable.sh
#   RUNS=5 RATE=4000 NODES=3 bench/cluster-durable.sh
#   RUNS=1 DURATION=2 RATE=1000 NODES=2 bench/cluster-durable.sh   # a functional check
#   HISTORY=100 bench/cluster-durable.sh          # --history=100: kept < sent, trimmed
#   NODE_FLAGS="--cluster-batch-us=2000" bench/cluster-durable.sh   # extra node flags
#
# Settings (environment): RUNS (3), RATE (4000), ROOMS (100), PER_ROOM (10), NODES (3),
# DURATION (8), DRAIN (2), FORMAT (json), WORKERS (2, per node), HISTORY (the nodes'
# --history; the server's default, 1000, if empty), PREFIX (chat, the nodes'
# --cluster-prefix), NODE_FLAGS (more flags for every node), SERVER, BENCH (default
# target/release/chat-server, chat-bench; built if missing), RAW (a directory to keep
# every run's files in: bench reports, node and Redis logs, runs.jsonl). RATE × DURATION / ROOMS
# chats a room (320 by default) stay under --history, so every chat is kept.
# Needs redis-server and redis-cli. The machine's cores are shared by the nodes, Redis
# and the bench: run it on a quiet machine (the header says how busy the rest was).
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[cluster-durable.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
# shellcheck source=bench/lib.sh
source bench/lib.sh
RUNS="${RUNS:-3}"
RATE="${RATE:-4000}"
ROOMS="${ROOMS:-100}"
PER_ROOM="${PER_ROOM:-10}"
NODES="${NODES:-3}"
DURATION="${DURATION:-8}"
DRAIN="${DRAIN:-2}"
FORMAT="${FORMAT:-json}"
WORKERS="${WORKERS:-2}"
HISTORY="${HISTORY:-}"
PREFIX="${PREFIX:-chat}"
NODE_FLAGS="${NODE_FLAGS:-}"
SERVER="${SERVER:-${CARGO_TARGET_DIR:-target}/release/chat-server}"
BENCH="${BENCH:-${CARGO_TARGET_DIR:-target}/release/chat-bench}"
RAW="${RAW:-}"
[[ -x $SERVER && -x $BENCH ]] || cargo build --release --quiet -p chat-server -p chat-bench
for tool in redis-server redis-cli; do
    command -v "$tool" >/dev/null || { log "$tool is not installed"; exit 1; }
done
ulimit -n "$(ulimit -Hn)" || log "warning: cannot raise the open-file limit ($(ulimit -n))"

TMP="$(mktemp -d)"
PIDS=()
REDIS_PID=""
BENCH_PID=""
SERVER_PID=""
cleanup() {
    local p
    for p in $BENCH_PID "${PIDS[@]}" $SERVER_PID $REDIS_PID; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ -n $RAW ]]; then mkdir -p "$RAW" && cp -r "$TMP"/. "$RAW"/ && log "kept the runs' files in $RAW"; fi
    rm -rf "$TMP"
}
trap cleanup EXIT

NODE_ARGS=(--port=0 --workers="$WORKERS" --flood-control=off --cluster-prefix="$PREFIX")
[[ -z $HISTORY ]] || NODE_ARGS+=(--history="$HISTORY")
# shellcheck disable=SC2206 # NODE_FLAGS are meant to split into words
NODE_ARGS+=($NODE_FLAGS)
FLAGS=(--rooms="$ROOMS" --per-room="$PER_ROOM" --rate="$RATE" --duration="$DURATION"
    --drain="$DRAIN" --format="$FORMAT" --json)
HISTORY_KEYS="{$PREFIX}:room:*:history"

rcli() { redis-cli -p "$REDIS_PORT" "$@"; }
used_memory() { rcli info memory | awk -F: '/^used_memory:/ { print $2 + 0 }'; }

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

# run_once MODE ROUND: a fresh redis-server and NODES nodes, one bench run; appends one
# JSON line of figures to $TMP/runs.jsonl.
run_once() {
    local mode="$1" round="$2" ports=() i deadline status=0 before after
    local base="$TMP/$mode-$round" bench_flags=()
    if [[ $mode == registered ]]; then bench_flags+=(--registered-rooms); fi
    REDIS_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --protected-mode no --logfile "$base.redis.log" &
    REDIS_PID=$!
    deadline=$((SECONDS + 10))
    until rcli ping >/dev/null 2>&1; do
        (( SECONDS < deadline )) || { log "redis-server did not start"; exit 1; }
        sleep 0.05 # polling, bounded by the deadline
    done
    for ((i = 1; i <= NODES; i++)); do
        launch_server "$base.node$i.log" "$SERVER" "${NODE_ARGS[@]}" \
            --cluster="redis://127.0.0.1:$REDIS_PORT" || exit 1
        PIDS+=("$SERVER_PID") ports+=("$SERVER_PORT")
        SERVER_PID=""
    done
    rm -f "$TMP/go"
    : >"$base.stderr"
    "$BENCH" --ports="$(IFS=,; echo "${ports[*]}")" --server-pid="${PIDS[0]}" \
        --also-pid="$(IFS=,; echo "$REDIS_PID,${PIDS[*]:1}")" "${FLAGS[@]}" "${bench_flags[@]}" \
        --start-when="$TMP/go" >"$base.json" 2>"$base.stderr" &
    BENCH_PID=$!
    # Set up (rooms registered, every member in its room): Redis's memory before the run.
    until grep -qs 'set up; waiting for' "$base.stderr"; do
        if ! kill -0 "$BENCH_PID" 2>/dev/null; then
            wait "$BENCH_PID" || true
            BENCH_PID=""
            log "chat-bench ($mode) failed during setup:"; cat "$base.stderr" >&2
            exit 1
        fi
        sleep 0.05 # polling the bench's stderr, bounded by its --setup-timeout
    done
    before="$(used_memory)"
    touch "$TMP/go"
    wait "$BENCH_PID" || status=$?
    BENCH_PID=""
    if [[ $status -ne 0 ]]; then log "chat-bench ($mode) failed: $(tail -3 "$base.stderr")"; exit 1; fi
    after="$(used_memory)"
    # The history lists: their chats and their own bytes (SAMPLES 0: every element).
    rcli --scan --pattern "$HISTORY_KEYS" >"$base.keys"
    awk '{ print "LLEN", $0; print "MEMORY", "USAGE", $0, "SAMPLES", "0" }' "$base.keys" \
        | rcli >"$base.history"
    local lists kept list_bytes log_len log_bytes
    lists="$(wc -l <"$base.keys")"
    kept="$(awk 'NR % 2 == 1 { n += $1 } END { print n + 0 }' "$base.history")"
    list_bytes="$(awk 'NR % 2 == 0 { n += $1 } END { print n + 0 }' "$base.history")"
    log_len="$(rcli xlen "{$PREFIX}:log")"
    log_bytes="$(rcli memory usage "{$PREFIX}:log" samples 0)"
    stop_all
    python3 - "$mode" "$round" "$base.json" "$before" "$after" "$lists" "$kept" "$list_bytes" \
        "$log_len" "${log_bytes:-0}" >>"$TMP/runs.jsonl" <<'PY'
import json, sys
mode, run, path = sys.argv[1:4]
before, after, lists, kept, list_bytes, log_len, log_bytes = (int(x or 0) for x in sys.argv[4:11])
rep = json.load(open(path))
r = rep["result"]
chats = r["chats_sent"]
others = r.get("others_cpu_s") or []
# Redis is the first --also-pid; the other nodes follow.
redis = others[0] if others else None
nodes = r["server_cpu_s"] + sum(x or 0 for x in others[1:]) if r.get("server_cpu_s") is not None else None
lat = r.get("latency_ms") or {}
reg = rep.get("registered_rooms") or {}
print(json.dumps({
    "mode": mode, "round": int(run), "chats": chats,
    "p50": lat.get("p50"), "p99": lat.get("p99"),
    "nodes_us": 1e6 * nodes / chats if nodes is not None and chats else None,
    "redis_us": 1e6 * redis / chats if redis is not None and chats else None,
    "lost": r["lost"], "dup": r["duplicated"], "reordered": r["out_of_order"],
    "before": before, "after": after, "growth": after - before,
    "growth_per_chat": (after - before) / chats if chats else None,
    "lists": lists, "kept": kept,
    "growth_per_kept": (after - before) / kept if kept else None,
    "list_per_kept": list_bytes / kept if kept else None,
    "log_len": log_len, "log_per_entry": log_bytes / log_len if log_len else None,
    "owner_s": reg.get("seconds"),
}))
PY
}

# Machine-wide busy time and this script's children's CPU time, to tell how much else
# ran meanwhile (as bench/durable-history.sh does). `times` not in a subshell.
busy_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
children_seconds() {
    times >"$TMP/times"
    CHILDREN_S="$(awk 'NR == 2 { total = 0
        for (i = 1; i <= 2; i++) { split($i, t, /[ms]/); total += t[1] * 60 + t[2] }
        print total }' "$TMP/times")"
}
BUSY_BEFORE="$(busy_ticks)"
children_seconds
CHILDREN_BEFORE="$CHILDREN_S"
STARTED_AT="$(date -u '+%Y-%m-%d %H:%M UTC')"
STARTED=$SECONDS
: >"$TMP/runs.jsonl"
for round in $(seq "$RUNS"); do
    modes="guest registered"
    # Alternate which mode goes first, so drift over the run falls on both.
    (( round % 2 == 1 )) || modes="registered guest"
    for mode in $modes; do
        log "round $round: $mode"
        run_once "$mode" "$round"
    done
done
children_seconds
OTHER="$(awk -v b0="$BUSY_BEFORE" -v b1="$(busy_ticks)" -v hz="$(getconf CLK_TCK)" -v c0="$CHILDREN_BEFORE" \
    -v c1="$CHILDREN_S" -v wall="$((SECONDS - STARTED))" -v n="$(nproc)" \
    'BEGIN { other = (b1 - b0) / hz - (c1 - c0); if (other < 0) other = 0
             printf "about %.0f CPU-s of the %.0f available during the %d s (%.0f %%; /proc/stat minus the children'"'"'s CPU time, approximate)", other, wall * n, wall, 100 * other / (wall * n) }')"
COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git status --porcelain -- crates 2>/dev/null)" ]]; then COMMIT="$COMMIT (with uncommitted changes)"; fi
REDIS_VERSION="$(redis-server --version | grep -o 'v=[^ ]*' | cut -d= -f2)"
MACHINE="$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), Linux $(uname -r)"
echo "Cluster history kept in Redis against guest rooms: \`bench/cluster-durable.sh\`, $STARTED_AT, commit $COMMIT;" \
    "$MACHINE; Redis $REDIS_VERSION; $NODES nodes; $RUNS round$([[ $RUNS == 1 ]] || echo s) (the modes alternating" \
    "which goes first), each run against a fresh Redis and fresh nodes. Other processes used $OTHER."
echo
echo "* Redis: \`redis-server --port PORT --bind 127.0.0.1 --save \"\" --appendonly no --protected-mode no\`"
echo "* each node: \`chat-server ${NODE_ARGS[*]} --cluster=redis://127.0.0.1:PORT\`"
echo "* guest: \`chat-bench --ports=P1,…,P$NODES --server-pid=NODE1 --also-pid=REDIS,NODE2,… ${FLAGS[*]} --start-when=FILE\`"
echo "* registered: the same with \`--registered-rooms\`"
echo
echo "Nodes' and Redis's CPU: user + system over the measured run, per chat sent (nodes: all of them)." \
    "Memory: Redis's used_memory after setup → after the bench exited; kept: LLEN summed over \`$HISTORY_KEYS\`;" \
    "history lists: their MEMORY USAGE (SAMPLES 0) per kept chat."
echo
python3 - "$TMP/runs.jsonl" "$HISTORY_KEYS" <<'PY'
import json, statistics, sys
runs = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
def med(rows, key):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else None
def f(v, spec=",.0f"):
    return "–" if v is None else format(v, spec)
def ratio(a, b):
    return "–" if a is None or not b else f"{a / b:.2f} ×"
print("| mode | round | chats sent | kept | p50 ms | p99 ms | nodes µs / chat | Redis µs / chat "
      "| Redis used_memory MB | growth B / chat sent | growth B / kept chat | history lists B / kept chat "
      "| log B / entry | lost | dup | reordered |")
print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
for r in sorted(runs, key=lambda r: (r["round"], r["mode"])):
    print(f"| {r['mode']} | {r['round']} | {f(r['chats'])} | {f(r['kept'])} | {f(r['p50'], '.2f')} "
          f"| {f(r['p99'], '.2f')} | {f(r['nodes_us'], '.1f')} | {f(r['redis_us'], '.1f')} "
          f"| {r['before'] / 1e6:.2f} → {r['after'] / 1e6:.2f} | {f(r['growth_per_chat'], '.1f')} "
          f"| {f(r['growth_per_kept'], '.1f')} | {f(r['list_per_kept'], '.1f')} | {f(r['log_per_entry'], '.1f')} "
          f"| {r['lost']} | {r['dup']} | {r['reordered']} |")
print()
fig = {}
for m in ("guest", "registered"):
    rows = [r for r in runs if r["mode"] == m]
    if not rows:
        continue
    fig[m] = {k: med(rows, k) for k in ("nodes_us", "redis_us", "p50", "p99", "growth_per_chat",
                                          "growth_per_kept", "list_per_kept", "kept", "chats")}
    fm = fig[m]
    losses = sum(r["lost"] + r["dup"] + r["reordered"] for r in rows)
    kept = (f"; {f(fm['kept'])} of {f(fm['chats'])} chats kept, Redis grew {f(fm['growth_per_kept'], '.1f')} B "
            f"per kept chat (the history lists alone {f(fm['list_per_kept'], '.1f')} B)") if m == "registered" else ""
    print(f"* **{m}** (median of {len(rows)}): nodes {f(fm['nodes_us'], '.1f')} µs / chat, Redis "
          f"{f(fm['redis_us'], '.1f')} µs / chat, p50 {f(fm['p50'], '.2f')} ms, p99 {f(fm['p99'], '.2f')} ms, "
          f"Redis grew {f(fm['growth_per_chat'], '.1f')} B per chat sent{kept}; lost + dup + reordered over "
          f"all runs: {losses}.")
if len(fig) == 2:
    a, b = fig["registered"], fig["guest"]
    extra = (a["growth_per_chat"] - b["growth_per_chat"]) if None not in (a["growth_per_chat"], b["growth_per_chat"]) else None
    print(f"* **registered / guest**: Redis CPU per chat {ratio(a['redis_us'], b['redis_us'])}, nodes' CPU per chat "
          f"{ratio(a['nodes_us'], b['nodes_us'])}, p99 {ratio(a['p99'], b['p99'])}; Redis memory per chat sent "
          f"{f(extra, '+.1f')} B (what the kept history adds; used_memory moves by some tens of kB "
          f"besides, so a short run's figure is noise).")
    if any(r["kept"] < r["chats"] for r in runs if r["mode"] == "registered"):
        print("* **trimmed**: the history lists kept fewer chats than were sent (--history), so growth per kept "
              "chat also counts the shared log's entries of chats no longer kept.")
PY
