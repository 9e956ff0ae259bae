#!/usr/bin/env bash
# What one round trip costs Redis on this machine: its CPU time (utime + stime from
# /proc) per command for PING and for an XADD shaped like a cluster chat, at pipeline
# depths 1, 4, 16 and 64, one client on loopback (redis-benchmark, Debian's
# redis-tools). The cluster's Redis CPU per chat (BENCHMARKS.md) is bounded below by
# these figures divided by how many chats share a call.
#
#   bench/redis-cost.sh            # prints a markdown table
set -euo pipefail
command -v redis-server >/dev/null || { echo "redis-server is not installed" >&2; exit 2; }
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --logfile /dev/null &
PID=$!
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true' EXIT
deadline=$((SECONDS + 10))
until redis-cli -p "$PORT" ping >/dev/null 2>&1; do
    (( SECONDS < deadline )) || { echo "redis-server did not start" >&2; exit 1; }
    sleep 0.05 # polling, bounded by the deadline
done
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$PID/stat"; }
CHAT="c$(printf '\037')1234567890123$(printf '\037')42$(printf '\037')1234567890123$(printf '\037')7$(printf '\037')3$(printf '\037')hello there, a chat line of ordinary length"
echo "Redis $(redis-server --version | grep -o 'v=[^ ]*' | cut -d= -f2), one client on loopback, $(nproc) cores"
echo
echo "| command | pipeline depth | commands | Redis CPU µs per command | per round trip |"
echo "|---|--:|--:|--:|--:|"
for depth in 1 4 16 64; do
    n=$((20000 * depth))
    (( n > 400000 )) && n=400000
    for what in ping xadd; do
        before="$(cpu)"
        if [[ $what == ping ]]; then
            redis-benchmark -p "$PORT" -c 1 -P "$depth" -n "$n" -q PING >/dev/null
        else
            redis-cli -p "$PORT" del '{chat}:log' >/dev/null
            redis-benchmark -p "$PORT" -c 1 -P "$depth" -n "$n" -q XADD '{chat}:log' '*' e "$CHAT" >/dev/null
        fi
        after="$(cpu)"
        awk -v a="$before" -v b="$after" -v n="$n" -v d="$depth" -v w="$what" \
            'BEGIN { per = (b - a) / n * 1e6; printf "| %s | %d | %d | %.2f | %.1f |\n", w, d, n, per, per * d }'
    done
done
