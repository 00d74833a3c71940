#!/usr/bin/env bash
# The load benchmark, one command from a fresh clone:
#
#   benches/load.sh                         # 1,000,000 customers
#   CUSTOMERS=50000 benches/load.sh         # a quicker run
#
# It builds the release binary, scales the reference model (SCALE: an hour
# becomes 3600/SCALE seconds) with `handoff model scale`, starts a release
# node on a fresh data directory with that file, and drives it with
# `handoff loadgen` given the same file, in three phases:
#   1. batch:  CUSTOMERS customers, IngestBatch of BATCH, BATCH_CONCURRENCY
#              calls in flight, flat out;
#   2. timers, DURING the batch phase (TIMERS_AFTER seconds into it):
#              TIMER_CUSTOMERS customers planned with an SLA that is never
#              met, so each leaves a timer pending (its re-escalation
#              repeats) that comes due while the batch ingest is still
#              flat out: the lateness of escalations under full load;
#              those whose journey starts no SLA short enough get a
#              duplicate delivery instead (the table says how many);
#   3. unary:  UNARY_CUSTOMERS customers, one Ingest per event, 64 in flight;
# then kills the node (SIGKILL), leaves it down DOWN seconds so those timers
# come due, restarts it, and times recovery: until it prints that it serves,
# until it answers a gRPC call, and until the escalations that came due
# while it was down are out (their fired_at, read back from the log).
# Finally stops it and compacts the data directory (`handoff store
# compact`) for the disk use per customer.
# Each loadgen phase must find exactly the escalations the engine expects.
# One table at the end; every JSON report and the node's logs stay in WORK.
#
# Needs: cargo, python3 (to read the JSON reports), coreutils.
set -euo pipefail
cd "$(dirname "$0")/.."

CUSTOMERS=${CUSTOMERS:-1000000}
UNARY_CUSTOMERS=${UNARY_CUSTOMERS:-$(( CUSTOMERS / 10 > 1000 ? CUSTOMERS / 10 : 1000 ))}
# The lateness target is for 10,000 deadlines within one second: about
# what 10,000 customers sent flat out in the timers phase produce.
TIMER_CUSTOMERS=${TIMER_CUSTOMERS:-10000}
SCALE=${SCALE:-300}
BATCH=${BATCH:-1000}
BATCH_CONCURRENCY=${BATCH_CONCURRENCY:-8}
UNARY_CONCURRENCY=${UNARY_CONCURRENCY:-64}
# Seconds into the batch phase at which the timers phase starts (the batch
# phase must still be running when its deadlines come due).
TIMERS_AFTER=${TIMERS_AFTER:-20}
DOWN=${DOWN:-3}
WORK=${WORK:-target/load-bench/$(date +%Y%m%d-%H%M%S)}

mkdir -p "$WORK"
DATA="$WORK/data"
rm -rf "$DATA"
echo "== building the release binary" >&2
cargo build --release --quiet --bin handoff
BIN=target/release/handoff
"$BIN" model scale examples/saas.toml --by "$SCALE" > "$WORK/model.toml"

NODE_PID=""
ADDR=""
METRICS=""
stop_node() {
  if [[ -n "$NODE_PID" ]] && kill -0 "$NODE_PID" 2>/dev/null; then
    kill -TERM "$NODE_PID" 2>/dev/null || true
    wait "$NODE_PID" 2>/dev/null || true
  fi
  NODE_PID=""
}
trap stop_node EXIT

now_ns() { date +%s%N; }

# Starts the node on $DATA; sets NODE_PID, ADDR, METRICS, SERVE_MS (from
# launch to its "handoff serving" line).
start_node() {
  local log="$WORK/node-$1.out" t0 line
  : > "$log"
  t0=$(now_ns)
  RUST_LOG=${RUST_LOG:-warn} "$BIN" serve --model "$WORK/model.toml" --data "$DATA" \
    --listen 127.0.0.1:0 --metrics 127.0.0.1:0 > "$log" 2>> "$WORK/node.err" &
  NODE_PID=$!
  for _ in $(seq 1 12000); do
    line=$(grep -m1 '^handoff serving ' "$log" || true)
    if [[ -n "$line" ]]; then
      SERVE_MS=$(( ($(now_ns) - t0) / 1000000 ))
      ADDR=$(echo "$line" | awk '{print $3}')
      METRICS=$(echo "$line" | sed -E 's|.*metrics http://([^/]+)/metrics.*|\1|')
      return 0
    fi
    if ! kill -0 "$NODE_PID" 2>/dev/null; then
      echo "the node exited; see $WORK/node.err" >&2
      exit 1
    fi
    sleep 0.01
  done
  echo "the node did not start within 120 s; see $WORK/node.err" >&2
  exit 1
}

# loadgen PHASE ARGS...: runs a phase, keeps its JSON; the check must pass.
loadgen() {
  local phase=$1
  shift
  echo "== $phase: handoff loadgen $*" >&2
  if ! "$BIN" loadgen --target "$ADDR" --metrics "$METRICS" --model "$WORK/model.toml" \
      --json "$@" > "$WORK/$phase.json"; then
    echo "loadgen's $phase phase did not pass; its report: $WORK/$phase.json" >&2
    LOADGEN_FAILED=1
  fi
}
LOADGEN_FAILED=0

start_node first
loadgen batch --customers "$CUSTOMERS" --batch "$BATCH" --concurrency "$BATCH_CONCURRENCY" --seed 1 &
BATCH_PID=$!
sleep "$TIMERS_AFTER"
if ! kill -0 "$BATCH_PID" 2>/dev/null; then
  echo "the batch phase ended before the timers phase began: raise CUSTOMERS or lower TIMERS_AFTER" >&2
fi
scrape() { curl -s "http://$METRICS/metrics" > "$WORK/metrics-$1.txt" 2>/dev/null || python3 - "$METRICS" "$WORK/metrics-$1.txt" <<'PY'
import sys, urllib.request
open(sys.argv[2], "w").write(urllib.request.urlopen(f"http://{sys.argv[1]}/metrics", timeout=10).read().decode())
PY
}
scrape timers-start
loadgen timers --customers "$TIMER_CUSTOMERS" --batch "$BATCH" --concurrency 2 \
  --failures 100 --failure-kinds never-stopped --seed 3
scrape timers-end
TIMERS_DONE_NS=$(now_ns)
wait "$BATCH_PID" || LOADGEN_FAILED=1
BATCH_DONE_NS=$(now_ns)
loadgen unary --customers "$UNARY_CUSTOMERS" --concurrency "$UNARY_CONCURRENCY" --seed 2

CURSOR=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["escalations"]["cursor"])' "$WORK/timers.json")
PROBE=$(python3 -c 'import json,sys; print("lg-%s-0" % json.load(open(sys.argv[1]))["run_id"])' "$WORK/timers.json")

echo "== recovery: SIGKILL, $DOWN s down, restart" >&2
kill -KILL "$NODE_PID"
wait "$NODE_PID" 2>/dev/null || true
NODE_PID=""
sleep "$DOWN"
RESTART_NS=$(now_ns)
start_node restart
RESTART_SERVE_MS=$SERVE_MS
READY_MS=""
for _ in $(seq 1 3000); do
  if "$BIN" customer get "$PROBE" --target "$ADDR" --json > /dev/null 2>&1; then
    READY_MS=$(( ($(now_ns) - RESTART_NS) / 1000000 ))
    break
  fi
  sleep 0.01
done
# Everything logged after the timers phase's last cursor, for a while.
timeout "$(( DOWN + 10 ))" "$BIN" escalations tail --target "$ADDR" --cursor "$CURSOR" --json \
  > "$WORK/after-restart.jsonl" 2>> "$WORK/node.err" || true
# Timers pending in the store after the restart (the node counts them in
# the background once each shard's first window has fired).
PENDING=$(python3 - "$METRICS" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics", timeout=10).read().decode()
print(int(sum(float(l.split()[-1]) for l in text.splitlines()
              if l.startswith("handoff_timers_pending"))))
PY
)
stop_node

echo "== compaction: handoff store compact" >&2
COMPACT_START=$(now_ns)
COMPACTED=$("$BIN" store compact --data "$DATA" | awk '{print $(NF-2)}')
COMPACT_MS=$(( ($(now_ns) - COMPACT_START) / 1000000 ))

python3 - "$WORK" "$RESTART_NS" "$RESTART_SERVE_MS" "${READY_MS:-}" "$CUSTOMERS" "$UNARY_CUSTOMERS" \
  "$TIMER_CUSTOMERS" "$SCALE" "$COMPACTED" "$COMPACT_MS" "${PENDING:-0}" "$TIMERS_DONE_NS" \
  "$BATCH_DONE_NS" <<'PY'
import json, sys
from datetime import datetime, timezone

work, restart_ns, serve_ms, ready_ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
customers, unary_customers, timer_customers, scale, compacted, compact_ms, pending = (
    int(a) for a in sys.argv[5:12])
timers_done, batch_done = int(sys.argv[12]) / 1e9, int(sys.argv[13]) / 1e9
phase = {p: json.load(open(f"{work}/{p}.json")) for p in ("batch", "unary", "timers")}

def ts(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

restart = restart_ns / 1e9
overdue = []
for line in open(f"{work}/after-restart.jsonl"):
    e = json.loads(line)
    if not e.get("due") or not e.get("fired_at"):
        continue
    due, fired = ts(e["due"]), ts(e["fired_at"])
    if due < restart and fired >= restart:
        overdue.append(fired)
out_ms = (max(overdue) - restart) * 1000 if overdue else None

def esc(p):
    e = phase[p]["escalations"]
    verdict = "exact" if phase[p]["exact"] else "NOT EXACT"
    return (f"{verdict}: {e['expected']} expected, {e['missing']} missing, "
            f"{e['unexpected']} unexpected, {e['duplicated']} duplicated")

total = customers + unary_customers + timer_customers
rss = max((phase[p]["node"]["peak_rss_bytes"] or 0) for p in phase)
disk = phase["timers"]["node"]["disk_bytes"] or 0
b, u, t = phase["batch"], phase["unary"], phase["timers"]
rows = [
    ("customers through a full journey", "1,000,000 (>= 3 events each)",
     f"{total:,} ({b['events'] + u['events'] + t['events']:,} events)"),
    ("durable ingest, IngestBatch", ">= 50,000 events/s",
     f"{b['events_per_s']:,.0f} events/s (batch {b['batch']}, {b['concurrency']} in flight), "
     f"call p50 {b['latency_ms']['p50']:.0f} ms, p99 {b['latency_ms']['p99']:.0f} ms"),
    ("durable ingest, unary, 64 in flight", ">= 15,000 events/s, p99 <= 20 ms",
     f"{u['events_per_s']:,.0f} events/s, p99 {u['latency_ms']['p99']:.1f} ms"),
    ("escalations, batch phase", "exactly the expected set", esc("batch")),
    ("escalations, unary phase", "exactly the expected set", esc("unary")),
    ("escalations, timers phase", "exactly the expected set", esc("timers")),
    ("escalation lateness during batch ingest (timers phase)", "p99 <= 50 ms",
     f"p50 {t['lateness_ms']['p50']:.1f} ms, p99 {t['lateness_ms']['p99']:.1f} ms "
     f"({timer_customers:,} customers' deadlines, sent in {t['events'] / max(t['events_per_s'], 1):.1f} s; "
     f"the batch phase ran {batch_done - timers_done:.0f} s past the timers phase's end)"),
    ("escalation lateness (batch phase)", "p99 <= 50 ms",
     f"p50 {b['lateness_ms']['p50']:.1f} ms, p99 {b['lateness_ms']['p99']:.1f} ms"),
    ("node peak resident memory", "<= 1.5 GB at 1,000,000",
     f"{rss / 2**20:,.0f} MiB with {total:,} customers"),
    ("disk per customer", "<= 1 KB after compaction",
     f"{compacted / max(total, 1):,.0f} B after `handoff store compact` ({compacted / 2**20:,.0f} MiB, "
     f"{compact_ms / 1000:.1f} s); {disk / max(total, 1):,.0f} B live before it"),
    ("restart: serving", "<= 3 s",
     f"{serve_ms / 1000:.2f} s to serve, {int(ready_ms) / 1000 if ready_ms else float('nan'):.2f} s to answer "
     f"({total:,} customers, {pending:,} timers pending)"),
    ("restart: overdue escalations out", "<= 1 s after serving",
     f"{(out_ms - serve_ms) / 1000:.2f} s after serving ({len(overdue):,} overdue of "
     f"{t['failures'].get('never_stopped', 0):,} customers left with a timer)"
     if out_ms is not None else "none came due"),
]
def hist(name, which):
    """Cumulative buckets of a histogram (every label set summed)."""
    buckets = {}
    for line in open(f"{work}/metrics-{which}.txt"):
        if line.startswith(name + "_bucket"):
            le = line.split('le="')[1].split('"')[0]
            buckets[le] = buckets.get(le, 0) + float(line.split()[-1])
    return buckets

def p99_between(name):
    """The bucket bound under which 99% of the observations made during the
    timers phase fall (the histograms' buckets, so an upper bound)."""
    a, b = hist(name, "timers-start"), hist(name, "timers-end")
    delta = {le: b.get(le, 0) - a.get(le, 0) for le in b}
    total = delta.get("+Inf", 0)
    if total <= 0:
        return "no observations"
    for le in sorted((k for k in delta if k != "+Inf"), key=float):
        if delta[le] >= 0.99 * total:
            return f"p99 <= {float(le) * 1000:g} ms ({total:,.0f} observations)"
    return f"p99 > {max(float(k) for k in delta if k != '+Inf') * 1000:g} ms"

rows.insert(7, ("  of it node-side, from due to decided", "", p99_between("handoff_timer_lateness_seconds")))
rows.insert(8, ("  of it node-side, from due to durable", "", p99_between("handoff_firing_durable_seconds")))
rows.insert(9, ("  journal group commit, during the timers phase", "", p99_between("handoff_store_sync_seconds")))
rows.insert(10, ("  of it node-side, from due to the subscriber's stream", "", p99_between("handoff_escalation_stream_lag_seconds")))
w0 = max(len(r[0]) for r in rows)
w1 = max(len(r[1]) for r in rows)
print(f"\nhandoff load benchmark: reference model scaled by {scale}, results in {work}\n")
print(f"| {'measure':<{w0}} | {'target':<{w1}} | measured")
print(f"|{'-' * (w0 + 2)}|{'-' * (w1 + 2)}|{'-' * 40}")
for m, target, got in rows:
    print(f"| {m:<{w0}} | {target:<{w1}} | {got}")
PY
exit "$LOADGEN_FAILED"
