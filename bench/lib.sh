# Shell functions shared by bench/run.sh, bench/burst-cost.sh and bench/tls-cost.sh (sourced,
# not run).
# The caller defines `log MESSAGE…` (to standard error).

# launch_server LOGFILE COMMAND…: starts COMMAND, a chat-server with --port=0, in the
# background with its standard error in LOGFILE, and sets SERVER_PID and SERVER_PORT
# from its "listening on" line. Returns 1 (having said why) if the server died at start
# or did not report its port within 15 s.
launch_server() {
    local logfile="$1"
    shift
    # Emptied here, not only by the redirection below: that one happens in the child,
    # which may run after the loop's first look, and a reused LOGFILE would still hold
    # the previous server's port.
    : >"$logfile"
    NO_COLOR=1 "$@" 2>"$logfile" &
    SERVER_PID=$!
    local deadline=$((SECONDS + 15))
    SERVER_PORT=""
    while [[ -z "$SERVER_PORT" ]]; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            log "server died at start:"; cat "$logfile" >&2
            wait "$SERVER_PID" || true
            SERVER_PID=""
            return 1
        fi
        if (( SECONDS > deadline )); then
            log "server did not report its port within 15 s"; return 1
        fi
        SERVER_PORT="$(sed 's/\x1b\[[0-9;]*m//g' "$logfile" \
            | grep -o 'listening on [^ ]*' | head -1 | sed 's/.*://')" || true
        [[ -n "$SERVER_PORT" ]] || sleep 0.05 # polling the log, bounded by the deadline
    done
}

# log_port LOGFILE PREFIX: once the server's log (LOGFILE) has a line with PREFIX
# followed by an address (e.g. "chat over TLS on"), sets LOG_PORT to that address's
# port. Returns 1 (having said why) if it does not appear within 15 s.
log_port() {
    local logfile="$1" prefix="$2" deadline=$((SECONDS + 15))
    LOG_PORT=""
    while [[ -z "$LOG_PORT" ]]; do
        if (( SECONDS > deadline )); then
            log "the server did not log \"$prefix ADDR\" within 15 s"; return 1
        fi
        LOG_PORT="$(sed 's/\x1b\[[0-9;]*m//g' "$logfile" \
            | grep -o "$prefix [^ ]*" | head -1 | sed 's/.*://')" || true
        [[ -n "$LOG_PORT" ]] || sleep 0.05 # polling the log, bounded by the deadline
    done
}
