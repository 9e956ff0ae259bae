#!/usr/bin/env bash
# What TLS costs per delivery, against plain TCP, side by side: every round runs each
# scenario once over plain TCP and once over TLS (chat-bench --tls), alternating which
# goes first, each against a fresh server started the same way (it serves both ports;
# only the port the bench uses differs). A broadcast cannot share one encrypted
# payload — every recipient's stream has its own keys — so the server encrypts once per
# delivery, and the bench decrypts once per delivery.
#
#   bench/tls-cost.sh                       # 3 rounds of the three scenarios below
#   RUNS=5 SCENARIOS="small-rooms" bench/tls-cost.sh
#   BIG_RATE=100 SCENARIOS=big-room bench/tls-cost.sh
#   BENCHES="before=/tmp/old/chat-bench after=target/release/chat-bench" MODES=plain \
#       bench/tls-cost.sh                   # the plain path before/after a bench change
#
# Scenarios (flags as bench/run.sh's, --format=$FORMAT, --server-pid):
#   small-rooms  100 rooms × 10, find-max with p99 ≤ 10 ms (the suite's small-rooms)
#   small-fixed  100 rooms × 10 at fixed rates stepping up, SMALL_RATES (default 4,000,
#                8,000, 12,000 and 16,000 chats/s), each its own run: the same load in
#                both modes, for CPU per delivery at equal batching and where the
#                latency turns up
#   big-room     1 room × 1,000 at a fixed BIG_RATE (default 20 chats/s, 19,980
#                deliveries/s: bursts seldom overlap, see bench/burst-cost.sh)
# Per run: chats/s and deliveries/s (find-max: at the best passing step), p50/p99, the
# server's CPU (user + system, /proc, over the measured step) and the bench's per
# delivery, the server's RSS growth per connection over setup and its peak RSS, the
# setup's connect → joined p50 (the TLS handshake is in it, never in the latency), and
# lost/duplicated/reordered (find-max: totals over every step). The closing lines give
# the medians and the TLS/plain ratios. BENCHES lists LABEL=BINARY pairs of chat-bench
# (default: this tree's); the server is SERVER (default target/release/chat-server),
# started with `--port=0 --workers=$WORKERS --flood-control=off --tls-cert --tls-key
# --tls-port=0` and a self-signed pair for localhost (`chat-server cert`), trusted with
# --tls-ca. Raw JSON reports go to KEEP (a directory) if set.
#
# The bench and the server share this machine's cores (the bench's decryption too):
# the figures describe the pair on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[tls-cost.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
# shellcheck source=bench/lib.sh
source bench/lib.sh
RUNS="${RUNS:-3}"
MODES="${MODES:-plain tls}"
SCENARIOS="${SCENARIOS:-small-rooms small-fixed big-room}"
SMALL_RATES="${SMALL_RATES:-4000 8000 12000 16000}"
BIG_RATE="${BIG_RATE:-20}"
FORMAT="${FORMAT:-json}"
WORKERS="${WORKERS:-2}"
SERVER="${SERVER:-target/release/chat-server}"
BENCHES="${BENCHES:-this=target/release/chat-bench}"
KEEP="${KEEP:-}"
[[ -x $SERVER && -x target/release/chat-bench ]] \
    || cargo build --release --quiet -p chat-server -p chat-bench
ulimit -n "$(ulimit -Hn)" || log "warning: cannot raise the open-file limit ($(ulimit -n))"
TMP="$(mktemp -d)"
SERVER_PID=""
RUN_NO=0
cleanup() {
    if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
[[ -z $KEEP ]] || mkdir -p "$KEEP"
mkdir -p "$TMP/pair"
"$SERVER" cert --self-signed localhost --out-dir="$TMP/pair" >/dev/null

declare -A FLAGS
FLAGS[small-rooms]="--rooms=100 --per-room=10 --find-max --rate=1000 --duration=2 --drain=2 --p99-max-ms=10"
FLAGS[small-fixed]="--rooms=100 --per-room=10 --rate=RATE --duration=5 --drain=2"
FLAGS[big-room]="--rooms=1 --per-room=1000 --rate=$BIG_RATE --duration=5 --drain=3"
for s in $SCENARIOS; do [[ -n "${FLAGS[$s]:-}" ]] || { log "unknown scenario $s"; exit 2; }; done

run_once() { # BENCH SCENARIO MODE → one JSON report on stdout
    local bench="$1" scenario="$2" mode="$3" rate="${4:-}" port tls=() status=0 flags
    RUN_NO=$((RUN_NO + 1))
    launch_server "$TMP/server-$RUN_NO.log" "$SERVER" --port=0 --workers="$WORKERS" --flood-control=off --no-store \
        --tls-cert="$TMP/pair/cert.pem" --tls-key="$TMP/pair/key.pem" --tls-port=0 || exit 1
    port="$SERVER_PORT"
    if [[ $mode == tls ]]; then
        log_port "$TMP/server-$RUN_NO.log" "chat over TLS on" || exit 1
        port="$LOG_PORT"
        tls=(--tls --tls-ca="$TMP/pair/cert.pem")
    fi
    flags="${FLAGS[$scenario]//RATE/$rate}"
    # shellcheck disable=SC2086 # the flags are meant to split into words
    "$bench" --port="$port" "${tls[@]}" --format="$FORMAT" --server-pid="$SERVER_PID" --json \
        $flags 2>"$TMP/bench.stderr" || status=$?
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    if [[ $status -ne 0 ]]; then log "chat-bench failed: $(tail -1 "$TMP/bench.stderr")"; exit 1; fi
}

# Machine-wide busy time (clock ticks) and this script's children's CPU time, to tell
# how much else ran meanwhile (as bench/run.sh does). `times` not in a subshell.
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
STARTED=$SECONDS
echo "TLS against plain TCP, $FORMAT, server --workers=$WORKERS, $RUNS rounds (order alternating), $(nproc) cores shared by server and bench"
echo
for s in $SCENARIOS; do
    if [[ $s == small-fixed ]]; then
        echo "* $s: \`${FLAGS[$s]}\`, RATE = $SMALL_RATES"
    else
        echo "* $s: \`${FLAGS[$s]}\`"
    fi
done
echo
echo "| scenario | bench | mode | round | chats/s | deliveries/s | p50 ms | p99 ms | server µs / delivery (user + sys) | bench µs / delivery | busy | RSS / conn | peak RSS | connect → joined p50 ms | lost | dup | reordered |"
echo "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
for round in $(seq "$RUNS"); do
    modes="$MODES" benches="$BENCHES"
    # Alternate which mode (and bench) goes first, so drift over the run falls on both.
    if (( round % 2 == 0 )); then
        modes="$(echo "$MODES" | tr ' ' '\n' | tac | tr '\n' ' ')"
        benches="$(echo "$BENCHES" | tr ' ' '\n' | tac | tr '\n' ' ')"
    fi
    for scenario in $SCENARIOS; do
      rates=-
      [[ $scenario == small-fixed ]] && rates="$SMALL_RATES"
      for rate in $rates; do
        name="$scenario"
        [[ $rate == - ]] || name="$scenario@$rate"
        for pair in $benches; do
            label="${pair%%=*}" bench="${pair#*=}"
            for mode in $modes; do
                log "round $round: $name, $label, $mode"
                run_once "$bench" "$scenario" "$mode" "$rate" >"$TMP/report.json"
                [[ -z $KEEP ]] || cp "$TMP/report.json" "$KEEP/$name-$label-$mode-$round.json"
                python3 - "$name" "$label" "$mode" "$round" "$TMP/report.json" "$(nproc)" <<'EOF' | tee -a "$TMP/rows"
import json, sys
scenario, label, mode, run, path, cores = sys.argv[1:7]
rep = json.load(open(path))
steps = rep["steps"]
lost = sum(s["lost"] for s in steps)
dup = sum(s["duplicated"] for s in steps)
reordered = sum(s["out_of_order"] for s in steps)
rss = rep["setup"]["server_rss_per_connection_bytes"]
peak = (rep.get("server_memory_end") or {}).get("peak_rss_kb")
cj = rep["setup"]["connect_to_joined_ms"]["p50"]
r = rep["result"]
tail = (f"| {rss:,.0f} B | {peak / 1024:.1f} MiB | {cj:.2f} | {lost} | {dup} | {reordered} |")
if r is None:
    print(f"| {scenario} | {label} | {mode} | {run} | none passed | – | – | – | – | – | – {tail}")
    sys.exit()
d = r["deliveries"]
user, system = r["server_user_s"], r["server_system_s"]
bench = r["bench_cpu_pct"] / 100 * r["elapsed_s"]
lat = r["latency_ms"]
# The share of both cores the pair used over the step (the drain included).
busy = (user + system + bench) / (r["elapsed_s"] * int(cores))
print(f"| {scenario} | {label} | {mode} | {run} | {r['rate']:,} | {r['deliveries_per_s']:,.0f} "
      f"| {lat['p50']:.2f} | {lat['p99']:.2f} | {1e6 * (user + system) / d:.2f} "
      f"({1e6 * user / d:.2f} + {1e6 * system / d:.2f}) | {1e6 * bench / d:.2f} | {100 * busy:.0f} % {tail}")
EOF
            done
        done
      done
    done
done
echo
python3 - "$TMP/rows" <<'EOF'
import re, statistics, sys
def num(cell):
    m = re.match(r"[\d,.]+", cell.strip())
    return float(m.group(0).replace(",", "")) if m else None
by = {}
for line in open(sys.argv[1]):
    c = [x.strip() for x in line.strip().strip("|").split("|")]
    by.setdefault((c[0], c[1], c[2]), []).append(c)
def med(rows, i):
    vals = [num(r[i]) for r in rows if num(r[i]) is not None]
    return statistics.median(vals) if vals else None
def fmt(v, spec):
    return "–" if v is None else format(v, spec)
def ratio(a, b):
    return "–" if a is None or not b else f"{a / b:.2f} ×"
for (scenario, label) in dict.fromkeys((k[0], k[1]) for k in by):
    m = {mode: by.get((scenario, label, mode), []) for mode in ("plain", "tls")}
    fig = {mode: {name: med(rows, i) for name, i in
                  (("deliveries", 5), ("p99", 7), ("server", 8), ("bench", 9), ("busy", 10), ("rss", 11),
                   ("peak", 12), ("cj", 13))}
           for mode, rows in m.items()}
    for mode, rows in m.items():
        if not rows:
            continue
        f = fig[mode]
        losses = sum(int(r[14]) + int(r[15]) + int(r[16]) for r in rows)
        print(f"* **{scenario}, {label}, {mode}** (median of {len(rows)}): {fmt(f['deliveries'], ',.0f')} deliveries/s, "
              f"p99 {fmt(f['p99'], '.2f')} ms, server {fmt(f['server'], '.2f')} µs / delivery, bench "
              f"{fmt(f['bench'], '.2f')} µs / delivery, {fmt(f['busy'], '.0f')} % of the cores busy, RSS {fmt(f['rss'], ',.0f')} B / connection, peak "
              f"{fmt(f['peak'], '.1f')} MiB, connect → joined p50 {fmt(f['cj'], '.2f')} ms; "
              f"lost + dup + reordered over all runs: {losses}.")
    if m["plain"] and m["tls"]:
        p, t = fig["plain"], fig["tls"]
        print(f"* **{scenario}, {label}: TLS / plain** — deliveries/s {ratio(t['deliveries'], p['deliveries'])}, "
              f"server CPU per delivery {ratio(t['server'], p['server'])}, bench CPU per delivery "
              f"{ratio(t['bench'], p['bench'])}, RSS per connection {ratio(t['rss'], p['rss'])}.")
EOF
children_seconds
awk -v b0="$BUSY_BEFORE" -v b1="$(busy_ticks)" -v hz="$(getconf CLK_TCK)" -v c0="$CHILDREN_BEFORE" \
    -v c1="$CHILDREN_S" -v wall="$((SECONDS - STARTED))" -v n="$(nproc)" \
    'BEGIN { other = (b1 - b0) / hz - (c1 - c0); if (other < 0) other = 0
             printf "* Other processes (not these servers and benches) used about %.0f CPU-s of the %.0f available during the %d s (%.0f %%; /proc/stat minus the children'"'"'s CPU time, approximate).\n", other, wall * n, wall, 100 * other / (wall * n) }'
