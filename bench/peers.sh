#!/usr/bin/env bash
# Our server beside production chat servers under the same load generator (issue #24):
# InspIRCd 3 and ngIRCd (IRC, chat-bench --protocol=irc) and nats-server
# (--protocol=nats), at fixed open-loop rates in three room shapes, a fresh server
# process per run, the servers alternating within each round (the order rotates from
# round to round), median of RUNS rounds per figure.
#
#   bench/peers.sh                              # the full measurement (quiet machine!)
#   BENCH_SCENARIOS=peers bench/run.sh          # the same, through the suite's driver
#   RUNS=1 RATES=2000 SHAPES=10x5 DURATION=3 DRAIN=1 bench/peers.sh   # a functional check
#   SERVERS="ours inspircd" bench/peers.sh      # a subset (ours inspircd ngircd nats)
#
# Settings (environment):
#   RUNS      rounds (default 3); every figure is the median over rounds, lost and
#             reordered are totals
#   RATES     chats/s offered (default "25000 50000 75000 100000")
#   SHAPES    ROOMSxMEMBERS (default "10x5 100x10 1x200")
#   DURATION  seconds of sending per run (default 10), DRAIN seconds to wait after (3)
#   WORKERS   our server's --workers (default: the server's own, one fewer than the
#             cores, at least 1)
#   OURS_FLAGS  more flags for our server (e.g. --max-connections=19500 for the
#             c19k shape, SHAPES=1900x10 RATES=5000)
#   SENDQ     per-client outbound queue in bytes, the same for every server that lets
#             it be set (default 4194304, our server's default --outbound-cap): ours
#             --outbound-cap, InspIRCd <connect hardsendq softsendq>, nats-server
#             max_pending. ngIRCd's is a compile-time constant.
#   SERVER    our chat-server (default target/release/chat-server; built if missing)
#   OUT       the markdown table (default bench/results/peers.md); raw JSON beside it
#   INSTALL   0: do not apt-get install missing peers (they are then skipped)
#
# Installing: the peers come from Debian (`apt-get install --no-install-recommends
# inspircd ngircd nats-server`, once, only if a binary is missing; needs root). This is
# for the bench only: CI (.ci/run) never calls this script. Ergo has no Debian package
# (Debian's `ergo` is a quantum chemistry program), so it is not run.
#
# Every peer runs as the current user (InspIRCd needs --runasroot when that is root)
# from a config written into a temporary directory, listening on a free loopback port.
# The configs below say, setting by setting, what differs from the package's defaults
# and why; BENCHMARKS.md ("Beside the peers") says the same.
#
# TCP_NODELAY: InspIRCd and ngIRCd do not set it on client sockets, so Nagle holds a
# reply back until the client ACKs the previous one, and Linux delays ACKs up to 40 ms.
# chat-bench sets TCP_NODELAY on its own sockets and, with --quickack (the default for
# --protocol=irc|nats), TCP_QUICKACK after every read so its ACKs go at once. This
# script passes --quickack to every run, ours included, so every server is measured
# with the same client.
#
# The machine's 2 cores are shared by the server and the bench: the figures describe
# the pair on this machine. Run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { printf '[peers.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
# shellcheck source=bench/lib.sh
source bench/lib.sh

RUNS="${RUNS:-3}"
RATES="${RATES:-25000 50000 75000 100000}"
SHAPES="${SHAPES:-10x5 100x10 1x200}"
DURATION="${DURATION:-10}"
DRAIN="${DRAIN:-3}"
CORES="$(nproc)"
WORKERS="${WORKERS:-$((CORES > 1 ? CORES - 1 : 1))}"
SENDQ="${SENDQ:-4194304}"
SERVERS="${SERVERS:-ours inspircd ngircd nats}"
SERVER="${SERVER:-${CARGO_TARGET_DIR:-target}/release/chat-server}"
BENCH="${CARGO_TARGET_DIR:-target}/release/chat-bench"
OUT="${OUT:-bench/results/peers.md}"
INSTALL="${INSTALL:-1}"

[[ -x $SERVER && -x $BENCH ]] || cargo build --release --quiet -p chat-server -p chat-bench
ulimit -n "$(ulimit -Hn)" || log "warning: cannot raise the open-file limit ($(ulimit -n))"

# ----- installing the peers ------------------------------------------------------
declare -A BINARY=([inspircd]=inspircd [ngircd]=ngircd [nats]=nats-server)
declare -A PACKAGE=([inspircd]=inspircd [ngircd]=ngircd [nats]=nats-server)
missing=()
for s in $SERVERS; do
    [[ $s == ours ]] && continue
    [[ -n ${BINARY[$s]:-} ]] || { log "unknown server $s"; exit 2; }
    command -v "${BINARY[$s]}" >/dev/null || missing+=("${PACKAGE[$s]}")
done
if (( ${#missing[@]} > 0 )) && [[ $INSTALL != 0 ]]; then
    log "installing ${missing[*]} from Debian"
    apt-get update -qq
    for p in "${missing[@]}"; do
        apt-cache show "$p" >/dev/null 2>&1 || { log "no Debian package $p"; exit 2; }
    done
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
    # The packages start system-wide services on their default ports; this script runs
    # its own processes on other ports and leaves the services as the packages set them.
fi
active=()
for s in $SERVERS; do
    if [[ $s == ours ]] || command -v "${BINARY[$s]}" >/dev/null; then
        active+=("$s")
    else
        log "skipping $s: ${BINARY[$s]} is not installed"
    fi
done

TMP="$(mktemp -d)"
RESULTS="$(dirname "$OUT")/peers"
mkdir -p "$RESULTS"
rm -f "$RESULTS"/*.json
SERVER_PID=""
cleanup() {
    if [[ -n $SERVER_PID ]]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT: until something accepts on 127.0.0.1:PORT (15 s at most).
wait_port() {
    local deadline=$((SECONDS + 15))
    until python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$1" 2>/dev/null; do
        kill -0 "$SERVER_PID" 2>/dev/null || { log "server died at start"; return 1; }
        (( SECONDS < deadline )) || { log "nothing listens on port $1 after 15 s"; return 1; }
        sleep 0.05 # polling, bounded by the deadline
    done
}

# ----- the peers' configurations --------------------------------------------------
# InspIRCd 3.15 (Debian's inspircd): a config of our own instead of
# /etc/inspircd/inspircd.conf, so only the core modules are loaded. (Its comments are
# `#` lines; InspIRCd does not take XML comments.)
inspircd_conf() { # DIR PORT
    cat <<EOF
<server name="irc.bench.local" description="chat-bench peer" network="Bench">
<admin name="bench" nick="bench" email="bench@localhost">
<bind address="127.0.0.1" port="$2" type="clients">
# One connect class for the bench; "Debian" below is the package's
# /etc/inspircd/inspircd.conf, which we do not use. Changed from it:
# localmax/globalmax (Debian 3 clients per IP): every client comes from 127.0.0.1.
# limit (not in Debian's): room for every client, explicitly.
# maxconnwarn: no, it would log every one.
# softsendq/hardsendq (Debian 8,192 B / 262,144 B): SENDQ, the queue every server
# gets (a client past hardsendq is cut; softsendq is what one write pass may send).
# recvq (Debian 8,192 B): 1 MiB, so a sender's burst of queued chats is never cut.
# threshold/commandrate/fakelag (Debian threshold 10; compiled-in commandrate 1,000
# milli-commands/s, fakelag yes): the flood
# penalty and its fake lag off, as our server runs with --flood-control=off; with
# them a client sending hundreds of chats/s would be slowed to one per second.
# pingfreq (Debian 120 s): 600 s, so no PING lands in a measured run.
# timeout (registration): 60 s, as Debian's.
# resolvehostnames/useident (compiled-in yes / no module loaded): no DNS lookup of
# 127.0.0.1 (InspIRCd still finishes registrations on its 1 s timer: connect →
# joined is about 1 s, during setup only).
<connect name="bench" allow="127.0.0.1"
  timeout="60" pingfreq="600"
  localmax="1000000" globalmax="1000000" maxconnwarn="no" limit="1000000"
  softsendq="$SENDQ" hardsendq="$SENDQ" recvq="1048576"
  threshold="1000000" commandrate="1000000000" fakelag="no"
  resolvehostnames="no" useident="no">
# Channels per user: each bench client joins one.
<channels users="20" opers="20">
# Nicks up to 30 (the bench's are u<N>, with a tag).
<limits maxnick="30">
# somaxconn (compiled-in: the system's SOMAXCONN): 4,096 so a connect burst is not
# refused; netbuffersize (compiled-in 10,240): 65,536 per read, as our server reads.
# softlimit: as many descriptors as the process may open. clonesonconnect
# (compiled-in yes): no, localmax above already allows every clone.
# No <power> (Debian's die/restart passwords), opers or classes: nothing uses them.
<performance somaxconn="4096" clonesonconnect="no" netbuffersize="65536" softlimit="1000000">
<pid file="$1/inspircd.pid">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="$1/inspircd.log">
<files motd="$1/motd.txt">
EOF
}

# ngIRCd 26.1 (Debian's ngircd).
ngircd_conf() { # DIR PORT
    cat <<EOF
[Global]
	Name = irc.bench.local
	Info = chat-bench peer
	AdminInfo1 = chat-bench
	AdminInfo2 = localhost
	AdminEMail = bench@localhost
	Listen = 127.0.0.1
	Ports = $2
	PidFile = $1/ngircd.pid
	MotdPhrase = chat-bench
[Limits]
	# Default 0 already (no limit); explicit.
	MaxConnections = 0
	# Default 5 per IP: every client comes from 127.0.0.1.
	MaxConnectionsIP = 0
	# Default 10 channels per client: unchanged need, 0 = no limit.
	MaxJoins = 0
	# Default 9: the bench's nicks may be longer with a tag.
	MaxNickLength = 30
	# Default -1 (no cap): every command adds penalty time and a client sending more
	# than a few per second is throttled to about one a second, which makes any load
	# test impossible. 0 disables penalties; ngIRCd logs that this "is not recommended".
	MaxPenaltyTime = 0
	# Defaults 120 s / 20 s: no PING in a measured run.
	PingTimeout = 600
	PongTimeout = 600
	# The per-client write buffer is a compile-time limit (WRITEBUFFER_MAX_LEN), not
	# configurable: SENDQ does not apply.
[Options]
	# Defaults yes / yes / yes: no lookups or PAM for 127.0.0.1 clients.
	DNS = no
	Ident = no
	PAM = no
EOF
}

# nats-server 2.9 (Debian's nats-server).
nats_conf() { # DIR PORT
    cat <<EOF
listen: 127.0.0.1:$2
# Default 64 MiB: SENDQ, the per-client queue every server gets (a subscriber past it
# is cut as a slow consumer).
max_pending: $SENDQ
# Default 10 s in 2.9 (explicit): how long a write to a client may block.
write_deadline: "10s"
# Default 2 min: no PING in a measured run.
ping_interval: "10m"
# max_payload (1 MiB), max_connections (64 Ki) and everything else: defaults.
EOF
}

# start NAME DIR: starts server NAME with its config in DIR; sets SERVER_PID, SERVER_PORT.
start() {
    local name="$1" dir="$2" port
    mkdir -p "$dir"
    case $name in
        ours)
            # shellcheck disable=SC2086 # OURS_FLAGS is split into flags on purpose
            launch_server "$dir/server.log" "$SERVER" --port=0 --workers="$WORKERS" \
                --flood-control=off --no-store --outbound-cap="$SENDQ" ${OURS_FLAGS:-}
            return
            ;;
        inspircd)
            port="$(free_port)"
            inspircd_conf "$dir" "$port" >"$dir/inspircd.conf"
            echo "chat-bench" >"$dir/motd.txt"
            local root=()
            [[ $(id -u) != 0 ]] || root=(--runasroot)
            inspircd --config="$dir/inspircd.conf" --nofork "${root[@]}" >"$dir/server.log" 2>&1 &
            ;;
        ngircd)
            port="$(free_port)"
            ngircd_conf "$dir" "$port" >"$dir/ngircd.conf"
            ngircd --nodaemon --config "$dir/ngircd.conf" >"$dir/server.log" 2>&1 &
            ;;
        nats)
            port="$(free_port)"
            nats_conf "$dir" "$port" >"$dir/nats.conf"
            nats-server --config "$dir/nats.conf" >"$dir/server.log" 2>&1 &
            ;;
    esac
    SERVER_PID=$!
    SERVER_PORT="$port"
    wait_port "$port"
}

protocol_of() { case $1 in ours) echo chat ;; inspircd | ngircd) echo irc ;; nats) echo nats ;; esac; }

# ----- the runs -------------------------------------------------------------------
RUN_NO=0
STARTED="$(date -u '+%Y-%m-%d %H:%M UTC')"
n=${#active[@]}
for ((round = 1; round <= RUNS; round++)); do
    for shape in $SHAPES; do
        rooms="${shape%x*}" members="${shape#*x}"
        for rate in $RATES; do
            for ((i = 0; i < n; i++)); do
                # Alternating: the order rotates by one server every round.
                s="${active[$(((i + round - 1) % n))]}"
                RUN_NO=$((RUN_NO + 1))
                dir="$TMP/run-$RUN_NO"
                base="$RESULTS/$s-$shape-$rate-$round"
                if ! start "$s" "$dir"; then
                    echo "start failed" >"$base.error"
                    SERVER_PID=""
                    continue
                fi
                log "round $round: $s $shape at $rate chats/s (port $SERVER_PORT)"
                status=0
                "$BENCH" --port="$SERVER_PORT" --protocol="$(protocol_of "$s")" --quickack \
                    --rooms="$rooms" --per-room="$members" --rate="$rate" \
                    --duration="$DURATION" --drain="$DRAIN" --server-pid="$SERVER_PID" --json \
                    >"$base.json" 2>"$base.stderr" || status=$?
                if [[ $status -ne 0 ]]; then
                    log "chat-bench failed ($status): $(tail -1 "$base.stderr")"
                    rm -f "$base.json"
                fi
                kill -TERM "$SERVER_PID" 2>/dev/null || true
                wait "$SERVER_PID" 2>/dev/null || true
                SERVER_PID=""
            done
        done
    done
done

# ----- the table ------------------------------------------------------------------
versions() {
    local s
    for s in "${active[@]}"; do
        case $s in
            ours) echo "ours: $("$SERVER" --version 2>/dev/null | head -1)" ;;
            inspircd) echo "InspIRCd: $(inspircd --version 2>/dev/null | head -1)" ;;
            ngircd) echo "ngIRCd: $(ngircd --version 2>/dev/null | head -1 | cut -d- -f1)" ;;
            nats) echo "nats-server: $(nats-server --version 2>/dev/null | head -1)" ;;
        esac
    done
}
VERSIONS="$(versions | paste -sd';' -)" STARTED="$STARTED" RUNS="$RUNS" \
    DURATION="$DURATION" DRAIN="$DRAIN" SENDQ="$SENDQ" WORKERS="$WORKERS" SHAPES="$SHAPES" \
    python3 - "$RESULTS" "${active[@]}" >"$OUT" <<'PY'
import glob, json, os, statistics, sys

results, servers = sys.argv[1], sys.argv[2:]
rows = {}
for path in glob.glob(os.path.join(results, "*.json")):
    server, shape, rate, _round = os.path.basename(path)[:-5].rsplit("-", 3)
    report = json.load(open(path))
    step = report.get("result")
    if not step:
        continue
    rows.setdefault((shape, int(rate), server), []).append((report, step))

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

def fmt(x, digits=3):
    return "–" if x is None else f"{x:,.{digits}f}"

def shape_key(shape):
    r, m = shape.split("x")
    return (int(r) * int(m), int(r))

print(f"Peers, {os.environ['STARTED']}: median of {os.environ['RUNS']} round(s), "
      f"--duration={os.environ['DURATION']} --drain={os.environ['DRAIN']}, "
      f"per-client queue {int(os.environ['SENDQ']):,} B, ours --workers={os.environ['WORKERS']}.")
print()
print("Versions: " + os.environ["VERSIONS"].replace(";", "; ") + ".")
print()
print("| shape | chats/s | server | p50 ms | p99 ms | p99.9 ms | max ms | delivered/s | lost | reordered | cut "
      "| server CPU µs / delivery | server + bench CPU µs / delivery | server peak RSS MiB | p99 / ours |")
print("|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
order = os.environ["SHAPES"].split()
for shape in sorted({k[0] for k in rows}, key=lambda s: (order.index(s) if s in order else len(order), shape_key(s))):
    for rate in sorted({k[1] for k in rows if k[0] == shape}):
        ours = med([s["latency_ms"]["p99"] for _, s in rows.get((shape, rate, "ours"), []) if s.get("latency_ms")])
        for server in servers:
            runs = rows.get((shape, rate, server))
            if not runs:
                print(f"| {shape} | {rate:,} | {server} | no run |  |  |  |  |  |  |  |  |  |  |  |")
                continue
            lat = lambda k: med([s["latency_ms"][k] for _, s in runs if s.get("latency_ms")])
            cpu = med([s["server_cpu_s"] * 1e6 / s["deliveries"] for _, s in runs
                       if s.get("server_cpu_s") is not None and s["deliveries"]])
            # The bench's CPU too: a server that leaves Nagle on (InspIRCd, ngIRCd)
            # has part of its transmits run when the bench's ACK arrives, in the
            # bench's system calls (loopback runs both ends' TCP in the caller).
            total = med([(s["server_cpu_s"] + s["bench_cpu_pct"] / 100 * s["elapsed_s"]) * 1e6 / s["deliveries"]
                         for _, s in runs
                         if s.get("server_cpu_s") is not None and s.get("bench_cpu_pct") is not None
                         and s["deliveries"]])
            cut = sum(((r.get("errors") or {}).get("closed_by_server") or 0) for r, _ in runs)
            rss = med([(r.get("server_memory_end") or {}).get("peak_rss_kb") for r, _ in runs])
            p99 = lat("p99")
            ratio = p99 / ours if p99 is not None and ours else None
            print(f"| {shape} | {rate:,} | {server} | {fmt(lat('p50'))} | {fmt(p99)} | {fmt(lat('p999'))} "
                  f"| {fmt(lat('max'))} | {fmt(med([s['deliveries_per_s'] for _, s in runs]), 0)} "
                  f"| {sum(s['lost'] for _, s in runs)} | {sum(s['out_of_order'] for _, s in runs)} | {cut} "
                  f"| {fmt(cpu, 2)} | {fmt(total, 2)} | {fmt(None if rss is None else rss / 1024, 1)} | {fmt(ratio, 2)} |")
PY
log "wrote $OUT (raw JSON in $RESULTS)"
