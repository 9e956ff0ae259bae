"""Turns bench/run.sh's raw results (bench/results/*.json) into BENCHMARKS.md.

Called by bench/run.sh with its settings in the environment; not meant to be run by
hand (but it can be re-run on the same results directory to rewrite the file).
Fixed-rate scenarios: the median of each figure over the runs; losses, duplicates
and reordering are totals over all runs. find-max: the median best rate; the other
figures are those of the step at that rate, from the run with the median best rate.
Hostile scenarios (KIND hostile) are fixed-rate rows too, and each gets a section of
the hostile population's figures (medians over the runs) with its targets checked.
Two hand-written files are kept across runs: bench/RECORDED.md (sections measured by
other runs, each with its command) right after the table, and bench/ANALYSIS.md at the
end.
"""

import glob
import json
import re
import os
import statistics

env = os.environ
RESULTS = env["RESULTS"]
SCENARIOS = env["SCENARIOS"].split()
FORMATS = env["FORMATS"].split()


def key(s):
    return s.replace("-", "_")


def load(scenario, fmt):
    runs, errors = [], []
    for path in sorted(glob.glob(f"{RESULTS}/{scenario}-{fmt}-*.json")):
        if path.endswith(".cluster.json"):
            continue  # a cluster run's side figures (Redis CPU), read separately
        if re.search(r"\.part\d+\.json$", path):
            continue  # one process of a split bench; the merged report is the run's
        with open(path) as f:
            runs.append(json.load(f))
    for path in sorted(glob.glob(f"{RESULTS}/{scenario}-{fmt}-*.error")):
        with open(path) as f:
            errors.append(f.read().strip())
    return runs, errors


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt_num(v, digits=0, suffix=""):
    if v is None:
        return "–"
    if digits == 0:
        return f"{v:,.0f}{suffix}"
    return f"{v:,.{digits}f}{suffix}"


def row_fixed(runs):
    results = [r["result"] for r in runs if r.get("result")]
    lat = lambda q: med([r["latency_ms"][q] for r in results if r.get("latency_ms")])
    return {
        "conns": runs[0]["setup"]["connections"],
        "rate": med([r["rate"] for r in results]),
        "dps": med([r["deliveries_per_s"] for r in results]),
        "p50": lat("p50"),
        "p99": lat("p99"),
        "p999": lat("p999"),
        "max": lat("max"),
        "lost": sum(r["lost"] for r in results),
        "dup": sum(r["duplicated"] for r in results),
        "ooo": sum(r["out_of_order"] for r in results),
        "cpu": med([r.get("server_cpu_pct") for r in results]),
        "bench_cpu": med([r.get("bench_cpu_pct") for r in results]),
        "lag": med([(r.get("send_lag_ms") or {}).get("p99") for r in results]),
        "peak": max(
            (r["server_memory_end"]["peak_rss_kb"] for r in runs if r.get("server_memory_end")),
            default=None,
        ),
        "per_conn": med([r["setup"].get("server_rss_per_connection_bytes") for r in runs]),
    }


def row_find_max(runs):
    bests = [(r["find_max"]["best_rate"] or 0, i) for i, r in enumerate(runs)]
    bests.sort()
    rate, idx = bests[(len(bests) - 1) // 2]
    run = runs[idx]
    best = run.get("result")
    row = row_fixed([run]) if best else {"conns": run["setup"]["connections"]}
    row["rate"] = statistics.median([b for b, _ in bests]) if bests else None
    # Loss at the best step is zero by definition; report what every step saw.
    steps = [s for r in runs for s in r["steps"]]
    row["lost"] = sum(s["lost"] for s in steps)
    row["dup"] = sum(s["duplicated"] for s in steps)
    row["ooo"] = sum(s["out_of_order"] for s in steps)
    row["steps"] = [
        (s["rate"], s["passed"], (s.get("latency_ms") or {}).get("p99"), s["lost"],
         s.get("bench_cpu_pct"))
        for s in run["steps"]
    ]
    row["stopped"] = run["find_max"].get("stopped_early")
    row["all_best"] = [r["find_max"]["best_rate"] for r in runs]
    # Capacity regardless of latency: the most deliveries/s any step achieved with
    # nothing lost, duplicated or reordered (over every search).
    clean = [s for s in steps if s["lost"] == 0 and s["duplicated"] == 0
             and s["out_of_order"] == 0 and s["chats_skipped"] == 0]
    if clean:
        top = max(clean, key=lambda s: s["deliveries_per_s"])
        row["capacity"] = (top["deliveries_per_s"], top["rate"],
                           (top.get("latency_ms") or {}).get("p99"))
    if best and best.get("bench_cpu_pct") and best["deliveries"]:
        # The bench's own CPU time per delivery at the best step (sending included).
        row["bench_us"] = best["bench_cpu_pct"] / 100 * best["elapsed_s"] / best["deliveries"] * 1e6
    return row


def kib_mib(v):
    return None if v is None else v / 1024


def dig(run, *path):
    """run[path[0]][path[1]]…, or None where anything is missing."""
    v = run
    for p in path:
        if not isinstance(v, dict) or v.get(p) is None:
            return None
        v = v[p]
    return v


def verdict(ok):
    return "–" if ok is None else ("✓" if ok else "✗")


def hostile_section(scenario, fmt, runs):
    """Markdown lines for one hostile scenario in one format."""
    out = []
    n = len(runs)
    m = lambda *path: med([dig(r, *path) for r in runs])
    results = [r["result"] for r in runs if r.get("result")]
    p99 = med([dig(r, "latency_ms", "p99") for r in results])
    lost = sum(r["lost"] for r in results)
    out.append(f"* **{fmt}** ({n} run{'s' if n != 1 else ''}; medians): measured rooms p99 "
               f"{fmt_num(p99, 2)} ms, {lost} lost; bench send lag p99 "
               f"{fmt_num(med([dig(r, 'send_lag_ms', 'p99') for r in results]), 2)} ms")
    h = [r.get("hostile") or {} for r in runs]
    setup = m("setup", "connect_to_joined_ms", "p50"), m("setup", "connect_to_joined_ms", "p99"), \
        m("setup", "connect_to_joined_ms", "max")
    if setup[0] is not None:
        slow = sum(1 for r in runs if (dig(r, "setup", "connect_to_joined_ms", "max") or 0) >= 1000)
        out.append(f"  * setup: {fmt_num(m('setup', 'seconds'), 2)} s for {runs[0]['setup']['connections']:,} "
                   f"connections; connect → joined p50 {fmt_num(setup[0], 1)} ms, p99 {fmt_num(setup[1], 1)} ms, "
                   f"max {fmt_num(setup[2], 1)} ms ({slow} of {n} runs had a connect ≥ 1 s: SYN retransmits)")
    if any(h):
        out.append(f"  * hostile and slow clients: {fmt_num(m('hostile', 'connections'))} connections, "
                   f"set up in {fmt_num(m('hostile', 'setup_s'), 2)} s after the measured rooms")
    if any(x.get("idle_rooms") for x in h):
        out.append(f"  * idle rooms: {fmt_num(m('hostile', 'idle_rooms', 'rooms'))} created, "
                   f"{fmt_num(m('hostile', 'idle_rooms', 'closed_by_server'))} closed by the server, "
                   f"{fmt_num(m('hostile', 'idle_rooms', 'open_at_end'))} open at the end")
    if any(x.get("rooms_flooders") for x in h):
        cut_after = med([f.get("disconnected_after_s") for x in h
                         for f in (x.get("rooms_flooders") or {}).get("per_flooder", [])])
        out.append(f"  * /rooms flooders (batches of {fmt_num(m('hostile', 'rooms_flooders', 'batch'))}): "
                   f"{fmt_num(m('hostile', 'rooms_flooders', 'requests_sent'))} requests sent, "
                   f"{fmt_num(m('hostile', 'rooms_flooders', 'rooms_results_received'))} SCRoomsResult received "
                   f"({fmt_num(kib_mib(kib_mib(m('hostile', 'rooms_flooders', 'bytes_received'))), 1)} MiB), "
                   f"{fmt_num(m('hostile', 'rooms_flooders', 'disconnected'))} of "
                   f"{len((h[0].get('rooms_flooders') or {}).get('per_flooder', []))} disconnected by the server"
                   + (f" (median {fmt_num(cut_after, 2)} s into the run)" if cut_after is not None else ""))
    if any(x.get("flood") for x in h):
        f0 = next(x["flood"] for x in h if x.get("flood"))
        out.append(f"  * flood room ({f0['slow_readers']:,} slow readers at {f0['read_bps']:,} B/s, "
                   f"{f0['never_readers']:,} never-readers, {f0['rate']:,} chats/s of {f0['pad']} B pad): "
                   f"{fmt_num(m('hostile', 'flood', 'chats_sent'))} flood chats sent; slow readers read "
                   f"{fmt_num(kib_mib(kib_mib(m('hostile', 'flood', 'slow_bytes_read'))), 1)} MiB in all")
        out.append(f"  * disconnected by the server: slow readers "
                   f"{fmt_num(m('hostile', 'flood', 'slow_readers_cut'))} of {f0['slow_readers']:,}"
                   + (f" (median {fmt_num(m('hostile', 'flood', 'slow_readers_cut_after_s', 'p50'), 2)} s, max "
                      f"{fmt_num(m('hostile', 'flood', 'slow_readers_cut_after_s', 'max'), 2)} s into the run)"
                      if m('hostile', 'flood', 'slow_readers_cut_after_s', 'p50') is not None else "")
                   + f", never-readers {fmt_num(m('hostile', 'flood', 'never_readers_cut'))} of {f0['never_readers']:,}"
                   + (f" (median {fmt_num(m('hostile', 'flood', 'never_readers_cut_after_s', 'p50'), 2)} s, max "
                      f"{fmt_num(m('hostile', 'flood', 'never_readers_cut_after_s', 'max'), 2)} s)"
                      if m('hostile', 'flood', 'never_readers_cut_after_s', 'p50') is not None else "")
                   + f"; leave notices to the sender (members the server removed) "
                   f"{fmt_num(m('hostile', 'flood', 'leave_notices'))}")
    if any(x.get("slowloris") for x in h):
        out.append(f"  * slowloris: {fmt_num(m('hostile', 'slowloris', 'cut'))} of "
                   f"{fmt_num(m('hostile', 'slowloris', 'connections'))} cut"
                   + (f" (after median {fmt_num(m('hostile', 'slowloris', 'cut_after_s', 'p50'), 2)} s, max "
                      f"{fmt_num(m('hostile', 'slowloris', 'cut_after_s', 'max'), 2)} s)"
                      if m('hostile', 'slowloris', 'cut_after_s', 'p50') is not None else "")
                   + f", {fmt_num(m('hostile', 'slowloris', 'open_at_end'))} still open at the end")
    for label, key_ in (("kernel TCP memory", "kernel_tcp_mem_kb"), ("server RSS", "server_rss_kb")):
        if not any(x.get(key_) for x in h):
            continue
        parts = [f"{name} {fmt_num(kib_mib(m('hostile', key_, field)), 1)}"
                 for name, field in (("before", "before"), ("peak", "peak"), ("end", "end"),
                                     ("+2 s", "after_2s"), ("after leaving", "after_leave"))
                 if m("hostile", key_, field) is not None]
        out.append(f"  * {label} MiB: " + ", ".join(parts))
    # Targets, where the scenario states some (medians over the runs).
    checks = []
    rss = lambda field: kib_mib(m("hostile", "server_rss_kb", field))
    kern = lambda field: m("hostile", "kernel_tcp_mem_kb", field)
    if scenario == "rooms-dos":
        checks.append(("measured p99 ≤ 20 ms", None if p99 is None else p99 <= 20))
    elif scenario == "flood-slow-readers":
        checks.append(("server peak RSS ≤ 512 MiB", None if rss("peak") is None else rss("peak") <= 512))
        checks.append(("RSS after leaving within 64 MiB of before",
                       None if rss("after_leave") is None or rss("before") is None
                       else rss("after_leave") - rss("before") <= 64))
        checks.append(("measured p99 ≤ 50 ms", None if p99 is None else p99 <= 50))
    elif scenario == "flood-never-read":
        cut, never = m("hostile", "flood", "never_readers_cut"), m("hostile", "flood", "never_readers")
        checks.append((f"all never-readers cut", None if cut is None else cut >= never))
        # Back to baseline: within 10 % (or 1 MiB) of the figure before the flood.
        before, after = kern("before"), kern("after_2s")
        checks.append(("kernel TCP memory back to baseline 2 s after the end (within 10 % or 1 MiB)",
                       None if before is None or after is None
                       else after <= max(before * 1.1, before + 1024)))
    elif scenario == "slowloris":
        cut, total = m("hostile", "slowloris", "cut"), m("hostile", "slowloris", "connections")
        worst = m("hostile", "slowloris", "cut_after_s", "max")
        checks.append(("all cut within 15 s", None if cut is None else
                       cut >= total and worst is not None and worst <= 15))
        checks.append(("measured rooms served (nothing lost)", lost == 0 and bool(results)))
    elif scenario == "flooder":
        cut = m("hostile", "flood", "sender_disconnected")
        checks.append(("the flooder cut", None if cut is None else bool(cut)))
        checks.append(("measured p99 ≤ 20 ms", None if p99 is None else p99 <= 20))
    elif scenario == "connect-burst":
        checks.append(("every connect joined within 1 s",
                       None if setup[2] is None else setup[2] < 1000))
    if checks:
        out.append("  * targets: " + "; ".join(f"{name} {verdict(ok)}" for name, ok in checks))
    return out


lines = []
w = lines.append
w("# Benchmarks")
w("")
w(f"Generated by `bench/run.sh` on {env['STARTED']} (suite took {env['ELAPSED']} s), "
  f"commit {env['COMMIT']}.")
w("")
w(f"* Machine: {env['MACHINE_NPROC']} cores ({env['CPU_MODEL']}), Linux {env['MACHINE_KERNEL']}.")
w(f"* Other processes (not this suite's servers and benches) used about {env['OTHER_CPU']} "
  "during the suite (from /proc/stat minus the children's CPU time; approximate). "
  f"Load average before / after: {env['LOAD_BEFORE']} / {env['LOAD_AFTER']}.")
w(f"* Server: `chat-server --port=0 --workers={env['WORKERS']}` plus each scenario's "
  "server flags (below; flood control off unless the scenario is about it), a fresh one "
  "per run, stopped with SIGTERM.")
w("* Load: `chat-bench` (one thread, mio) on the same machine, so bench and server share "
  "the cores; the figures describe the pair on this machine.")
w(f"* Fixed-rate rows: median of {env['RUNS']} runs per figure; lost/dup/reordered are "
  f"totals over all runs. find-max rows: {env['FINDMAX_RUNS']} search(es); figures are "
  "the step at the best rate, lost/dup/reordered are totals over every step (failing "
  "steps included).")
w("")
w("How it measures: open loop. Every chat has an intended send time on a fixed schedule "
  "(total rate spread evenly over all clients); latency runs from that intended time to "
  "receipt by each other member of the room, so a server that falls behind cannot hide "
  "its queueing. Every receiver checks it gets each other member's chats exactly once and "
  "in order. find-max doubles the rate until a step fails (p99 above the bound, or "
  "anything lost, duplicated or reordered), then bisects to within 5 %.")
w("")
w("| scenario | format | conns | chats/s | deliveries/s | p50 ms | p99 ms | p99.9 ms | max ms "
  "| lost | dup | reordered | server CPU | server peak RSS | RSS / conn | bench CPU | bench lag p99 ms |")
w("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
details = []
failures = []
for scenario in SCENARIOS:
    kind = env[f"KIND_{key(scenario)}"]
    for fmt in FORMATS:
        runs, errors = load(scenario, fmt)
        for e in errors:
            failures.append(f"{scenario} {fmt}: {e}")
        if not runs and env.get(f"WEB_CLIENTS_{key(scenario)}") and fmt != "json":
            continue  # web clients speak JSON only
        if not runs:
            w(f"| {scenario} | {fmt} | failed: see notes |" + " |" * 14)
            continue
        row = row_find_max(runs) if kind == "find-max" else row_fixed(runs)
        peak = row.get("peak")
        label = scenario + (" (max)" if kind == "find-max" else "")
        w("| " + " | ".join([
            label, fmt, fmt_num(row.get("conns")),
            # A median search that found no passing rate is not "0 chats/s".
            "none passed" if kind == "find-max" and not row.get("rate") else fmt_num(row.get("rate")),
            fmt_num(row.get("dps")), fmt_num(row.get("p50"), 3), fmt_num(row.get("p99"), 3),
            fmt_num(row.get("p999"), 3), fmt_num(row.get("max"), 3),
            str(row.get("lost", "–")), str(row.get("dup", "–")), str(row.get("ooo", "–")),
            fmt_num(row.get("cpu"), 0, " %"),
            fmt_num(peak / 1024 if peak else None, 1, " MiB"),
            fmt_num(row.get("per_conn"), 0, " B"),
            fmt_num(row.get("bench_cpu"), 0, " %"), fmt_num(row.get("lag"), 3),
        ]) + " |")
        if kind == "find-max":
            steps = ", ".join(
                f"{rate} {'✓' if ok else '✗'} (p99 {fmt_num(p99, 2)} ms"
                + (f", lost {lost}" if lost else "")
                + (f", bench CPU {fmt_num(bcpu)} %" if bcpu is not None else "") + ")"
                for rate, ok, p99, lost, bcpu in row["steps"])
            details.append(f"* {scenario} {fmt}: {steps}"
                           + (f" — stopped early: {row['stopped']}" if row.get("stopped") else ""))
            bests = ", ".join("none" if b is None else f"{b:,}" for b in row["all_best"])
            details.append(f"  * best rate of each search: {bests} (the table shows the median search).")
            if row.get("capacity"):
                dps, rate, p99 = row["capacity"]
                details.append(
                    f"  * most deliveries/s of any step with nothing lost, whatever its latency (the "
                    f"search does not go far past its first failure, so not a capacity): "
                    f"{dps:,.0f} (at {rate:,} chats/s, p99 {fmt_num(p99, 1)} ms).")
            per_room = runs[0]["per_room"]
            if per_room >= 100 and row.get("bench_us"):
                spread = row["bench_us"] * (per_room - 1) / 1000
                details.append(
                    f"  * Each chat here is a burst of {per_room - 1} deliveries, which the one bench "
                    f"thread reads socket by socket at ≈{row['bench_us']:.1f} µs of its CPU each: "
                    f"≈{spread:.1f} ms per burst of the measured latency is the bench's own reading "
                    "time (an estimate from its CPU use), so this result is sensitive to noise.")

w("")
w("CPU figures are shares of one core over the measured phase (200 % = both cores). "
  "RSS / conn = (server RSS after setup − before) / connections. \"bench lag\" is how late "
  "the bench itself queued chats versus their schedule: when it or bench CPU is high, the "
  "bench, not the server, may be the limit.")
w("")
if details:
    w("find-max steps of the median search (rate chats/s, pass ✓ / fail ✗):")
    w("")
    lines.extend(details)
    w("")
if env.get("PIN"):
    floor = json.loads(env["FLOOR"]) if env.get("FLOOR") else {}
    w("## Per core (pinned: server on CPU 0, bench on CPU 1)")
    w("")
    w("With `BENCH_PIN=1` the server runs under `taskset -c 0` and the bench under "
      "`taskset -c 1`, so the server's figures are one core's. Deliveries/s per server core "
      "= deliveries/s ÷ the share of CPU 0 the server used; CPU per delivery is the server's "
      "user and system time over the measured phase ÷ deliveries (for find-max rows, at the "
      "best step of the median search). The floor is `loopback-floor --writer-cpu=0 "
      f"--reader-cpu=1`: one loopback `write` of {floor.get('bytes', 64)} bytes per message, "
      f"median of 3 (runs: {', '.join(f'{v:.2f}' for v in floor.get('runs', []))} µs): "
      f"**{floor.get('cpu_us_per_write', float('nan')):.2f} µs** "
      f"({floor.get('user_us_per_write', float('nan')):.2f} user + "
      f"{floor.get('sys_us_per_write', float('nan')):.2f} system).")
    w("")
    w("| scenario | format | deliveries/s | server CPU | deliveries/s per server core | user µs / delivery | system µs / delivery | total µs / delivery | × floor |")
    w("|---|---|--:|--:|--:|--:|--:|--:|--:|")
    for scenario in SCENARIOS:
        kind = env[f"KIND_{key(scenario)}"]
        for fmt in FORMATS:
            runs, _ = load(scenario, fmt)
            if not runs:
                continue
            if kind == "find-max":
                bests = sorted(((r["find_max"]["best_rate"] or 0, i) for i, r in enumerate(runs)))
                results = [runs[bests[(len(bests) - 1) // 2][1]].get("result")]
            else:
                results = [r.get("result") for r in runs]
            results = [r for r in results if r and r.get("deliveries") and r.get("server_user_s") is not None]
            if not results:
                continue
            per_core = med([r["deliveries_per_s"] / (r["server_cpu_pct"] / 100) for r in results if r.get("server_cpu_pct")])
            user = med([r["server_user_s"] / r["deliveries"] * 1e6 for r in results])
            system = med([r["server_system_s"] / r["deliveries"] * 1e6 for r in results])
            total = (user or 0) + (system or 0)
            times = total / floor["cpu_us_per_write"] if floor.get("cpu_us_per_write") else None
            w("| " + " | ".join([scenario, fmt, fmt_num(med([r["deliveries_per_s"] for r in results])),
                                 fmt_num(med([r.get("server_cpu_pct") for r in results]), 0, " %"),
                                 fmt_num(per_core), fmt_num(user, 2), fmt_num(system, 2),
                                 fmt_num(total, 2), fmt_num(times, 2)]) + " |")
    w("")
cluster_scenarios = [s for s in SCENARIOS if env.get(f"CLUSTER_NODES_{key(s)}")]
if cluster_scenarios:
    w("## Cluster")
    w("")
    w("Every node, Redis and the bench share this machine's 2 cores. Redis's CPU per chat "
      "is its CPU time (utime + stime from `/proc`) during a step divided by the chats sent "
      "in it (the bench's `--also-pid`); \"whole run\" divides its CPU over the whole bench "
      "invocation (every step, plus setting up and closing 1,000 clients) by every chat sent. "
      "The nodes' CPU is summed the same way. The table's \"server CPU\" column shows the "
      "first node only.")
    w("")
    for scenario in cluster_scenarios:
        for fmt in FORMATS:
            runs, _ = load(scenario, fmt)
            sides = []
            for path in sorted(glob.glob(f"{RESULTS}/{scenario}-{fmt}-*.cluster.json")):
                with open(path) as f:
                    sides.append(json.load(f))
            if not runs or not sides:
                w(f"* **{scenario} {fmt}**: no result (see the problems below)")
                continue
            whole = []
            for run, side in zip(runs, sides):
                chats = sum(st["chats_sent"] for st in run["steps"])
                if chats:
                    whole.append(side["redis_cpu_s"] / chats * 1e6)
            if env[f"KIND_{key(scenario)}"] == "find-max":
                row = row_find_max(runs)
                # The median search's best step, and every step of every search.
                bests = sorted(((r["find_max"]["best_rate"] or 0, i) for i, r in enumerate(runs)))
                best_run = runs[bests[(len(bests) - 1) // 2][1]]
            else:
                row = row_fixed(runs)
                best_run = runs[(len(runs) - 1) // 2]
            def redis_us(step):
                others = step.get("others_cpu_s") or []
                if not others or others[0] is None or not step["chats_sent"]:
                    return None
                return others[0] / step["chats_sent"] * 1e6
            def nodes_us(step):
                others = step.get("others_cpu_s") or []
                parts = [step.get("server_cpu_s")] + others[1:]
                if any(p is None for p in parts) or not step["chats_sent"]:
                    return None
                return sum(parts) / step["chats_sent"] * 1e6
            best = best_run.get("result") or {}
            by_rate = ", ".join(f"{st['rate']:,}: {fmt_num(redis_us(st), 1)}"
                                for st in best_run["steps"])
            procs = runs[0].get("processes")
            line = (f"* **{scenario} {fmt}** ({sides[0]['nodes']} nodes, Redis {sides[0].get('redis_version', '?')}"
                    + (f", {procs} bench processes, {fmt_num(row.get('conns'))} connections; latency figures are the worst process's" if procs else "")
                    + f"): {'best ' if env[f'KIND_{key(scenario)}'] == 'find-max' else ''}{fmt_num(row.get('rate'))} chats/s, {fmt_num(row.get('dps'))} deliveries/s at "
                    f"p99 {fmt_num(row.get('p99'), 2)} ms; at that step Redis used "
                    f"{fmt_num(redis_us(best) if best else None, 1)} µs of CPU per chat and the nodes together "
                    f"{fmt_num(nodes_us(best) if best else None, 1)} µs; whole run "
                    f"{fmt_num(med(whole), 1)} µs per chat")
            if "small-rooms" in SCENARIOS:
                single, _ = load("small-rooms", fmt)
                if single:
                    base = row_find_max(single).get("rate")
                    if base and row.get("rate"):
                        line += (f"; {100 * row['rate'] / base:.0f} % of the single node's small-rooms "
                                 f"best ({fmt_num(base)} chats/s, same suite)")
            w(line + ".")
            w(f"  * Redis µs of CPU per chat by step rate (chats/s: µs): {by_rate}")
    w("")
# Sections recorded by hand from other runs (each with its command) follow the table.
recorded = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RECORDED.md")
if os.path.exists(recorded):
    with open(recorded) as f:
        text = f.read()
    # The file's leading comment is for its editors, not the readers.
    if text.startswith("<!--"):
        text = text[text.index("-->") + 3:]
    if lines and lines[-1] != "":
        w("")
    lines.append(text.strip("\n"))
    w("")
hostile_scenarios = [s for s in SCENARIOS if env[f"KIND_{key(s)}"] == "hostile"]
if hostile_scenarios:
    w("## Hostile and slow clients")
    w("")
    w("Measured rooms (the table's figures) beside a hostile population; see "
      "`crates/bench/README.md` for what each population does and how cuts are detected. "
      "Kernel TCP memory is the machine's (`/proc/net/sockstat`, both ends of loopback); "
      "\"before\" is at the start of the run with every population set up, \"peak\" the "
      "highest 100 ms sample during it, \"+2 s\" two seconds after its end, \"after "
      "leaving\" `--flood-leave-wait` seconds after the bench closed the flood room's "
      "connections.")
    w("")
    for scenario in hostile_scenarios:
        w(f"### {scenario}")
        w("")
        w(env[f"TITLE_{key(scenario)}"])
        w("")
        for fmt in FORMATS:
            runs, _ = load(scenario, fmt)
            if not runs:
                w(f"* **{fmt}**: no result (see the problems below)")
                continue
            lines.extend(hostile_section(scenario, fmt, runs))
        w("")
w("## Scenarios and commands")
w("")
for scenario in SCENARIOS:
    w(f"* {env[f'TITLE_{key(scenario)}']}:  ")
    if env.get(f"CLUSTER_NODES_{key(scenario)}"):
        w(f"  `redis-server --port P --save \"\" --appendonly no`; "
          f"{env[f'CLUSTER_NODES_{key(scenario)}']} × "
          f"`chat-server --port=0 --workers={env['WORKERS']} "
          f"{env.get(f'SERVER_FLAGS_{key(scenario)}', '')} --cluster=redis://127.0.0.1:P`; "
          f"bench: `chat-bench --ports=PORT1,PORT2,PORT3 --format=json|protobuf --server-pid=PID1 --json "
          f"{env[f'FLAGS_{key(scenario)}']}`")
        continue
    target = ("--ports=WEB_PORT --web --format=json" if env.get(f"WEB_CLIENTS_{key(scenario)}")
              else "--port=PORT --format=json|protobuf")
    w(f"  server: `chat-server --port=0 --workers={env['WORKERS']} "
      f"{env.get(f'SERVER_FLAGS_{key(scenario)}', '')}`; "
      f"bench: `chat-bench {target} --server-pid=PID --json "
      f"{env[f'FLAGS_{key(scenario)}']}`")
w("")
w("Run it all with `bench/run.sh` (see the script's header for its knobs); raw JSON of "
  "each run lands in `bench/results/`.")
server_failures = [l for l in env.get("SERVER_FAILURES_TEXT", "").splitlines() if l.strip()]
if failures or server_failures:
    w("")
    w("## Problems during this run")
    w("")
    for f in failures + server_failures:
        w(f"* {f}")

# The hand-written analysis (where the time goes, targets) follows the generated part.
analysis = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ANALYSIS.md")
if os.path.exists(analysis):
    w("")
    with open(analysis) as f:
        lines.append(f.read().rstrip("\n"))

with open(env["OUT"], "w") as f:
    f.write("\n".join(lines) + "\n")
