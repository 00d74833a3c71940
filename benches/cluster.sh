#!/usr/bin/env bash
# The cluster benchmark, one command from a fresh clone:
#
#   benches/cluster.sh                      # 100,000 customers
#   CUSTOMERS=20000 benches/cluster.sh      # a quicker run
#
# Starts a real local PostgreSQL and three release nodes on it with
# cluster/local.sh (in WORK), the reference model scaled by SCALE, and
# drives the cluster through ONE node with `handoff loadgen` (every node
# forwards a call to its customer's shard owner), in two phases:
#   1. batch:    CUSTOMERS customers, IngestBatch of BATCH, BATCH_CONCURRENCY
#                in flight, flat out: events/s, call latency, escalations
#                exact, lateness;
#   2. failover: TIMER_CUSTOMERS customers whose SLAs are never met, so each
#                leaves timers on every shard; KILL_AFTER seconds in, node 2
#                is SIGKILLed: its shards move when their leases end and the
#                new owners fire what came due meanwhile. The lateness max
#                of this phase is the failover time (from the kill to the
#                first overdue escalation, plus at most the deadline's own
#                offset); loadgen still checks every escalation exactly.
# Then the database's size per customer. One table at the end; the JSON
# reports, the nodes' logs and PostgreSQL's stay in WORK.
#
# Needs: cargo, python3, PostgreSQL's server programs (apt-get install -y
# postgresql), curl or bash's /dev/tcp.
set -euo pipefail
cd "$(dirname "$0")/.."

CUSTOMERS=${CUSTOMERS:-100000}
TIMER_CUSTOMERS=${TIMER_CUSTOMERS:-5000}
SCALE=${SCALE:-300}
BATCH=${BATCH:-1000}
BATCH_CONCURRENCY=${BATCH_CONCURRENCY:-8}
KILL_AFTER=${KILL_AFTER:-5}
WORK=${WORK:-target/cluster-bench/$(date +%Y%m%d-%H%M%S)}
WORK=$(mkdir -p "$WORK" && cd "$WORK" && pwd)

echo "== building the release binary" >&2
cargo build --release --quiet --bin handoff
BIN=$PWD/target/release/handoff
"$BIN" model scale examples/saas.toml --by "$SCALE" > "$WORK/model.toml"

export HANDOFF_BIN=$BIN HANDOFF_CLUSTER_DIR=$WORK/cluster
# Where the database's time goes, per statement (printed after the batch
# phase): pg_stat_statements, Debian's postgresql package ships it.
export HANDOFF_PG_CONF="shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = 'all'"
cleanup() { cluster/local.sh down > /dev/null 2>&1 || true; }
trap cleanup EXIT
cluster/local.sh up --model "$WORK/model.toml" >&2
TARGET=127.0.0.1:20061
METRICS=127.0.0.1:9471
PSQL=(psql -h 127.0.0.1 -p "$(cat "$WORK/cluster/pg/port" 2>/dev/null || echo 55432)" -U postgres -d handoff -At)
# The first node up takes every shard; wait until the three share them.
for _ in $(seq 1 60); do
  [[ $("${PSQL[@]}" -c "SELECT count(DISTINCT owner) FROM shards WHERE lease_until > now()") == 3 ]] && break
  sleep 0.5
done

LOADGEN_FAILED=0
loadgen() {
  local phase=$1
  shift
  echo "== $phase: handoff loadgen $*" >&2
  if ! "$BIN" loadgen --target "$TARGET" --metrics "$METRICS" --model "$WORK/model.toml" \
      --json "$@" > "$WORK/$phase.json"; then
    echo "loadgen's $phase phase did not pass; its report: $WORK/$phase.json" >&2
    LOADGEN_FAILED=1
  fi
}

"${PSQL[@]}" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()" \
  > /dev/null 2>&1 || echo "(pg_stat_statements unavailable: no per-statement table)" >&2
loadgen batch --customers "$CUSTOMERS" --batch "$BATCH" --concurrency "$BATCH_CONCURRENCY" --seed 1
# The batch phase's statements by the database time they took.
"${PSQL[@]}" -F ' | ' -c "SELECT round(total_exec_time)::int8 AS ms, calls, rows, \
    round((100 * total_exec_time / sum(total_exec_time) OVER ())::numeric, 1) AS pct, \
    left(regexp_replace(query, '\s+', ' ', 'g'), 90) \
  FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 12" \
  > "$WORK/statements.txt" 2>/dev/null || true

# Calls in flight at the kill wait out the failover (seconds, retried by
# loadgen), so more of their events cross a tier coming due than under
# steady load: those customers are toss-ups, set aside and counted (up
# to 10% here, 1% in the batch phase); every other one is checked exactly.
loadgen failover --customers "$TIMER_CUSTOMERS" --batch 100 --concurrency 4 \
  --failures 100 --failure-kinds never-stopped --seed 3 --max-set-aside 10 &
FAILOVER=$!
sleep "$KILL_AFTER"
KILLED_AT=$(date +%s.%N)
cluster/local.sh kill 2 >&2
wait "$FAILOVER" || LOADGEN_FAILED=1

DB_BYTES=$("${PSQL[@]}" -c "SELECT pg_database_size('handoff')" 2>/dev/null || echo 0)
CUSTOMER_ROWS=$("${PSQL[@]}" -c "SELECT count(*) FROM customers" 2>/dev/null || echo 0)

python3 - "$WORK" "$DB_BYTES" "$CUSTOMER_ROWS" "$KILLED_AT" <<'PY'
import json, sys
work, db_bytes, customers, killed_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
b = json.load(open(f"{work}/batch.json"))
f = json.load(open(f"{work}/failover.json"))
def esc(p):
    e = p["escalations"]
    return (f"{e['expected']:,} expected: {e['missing']} missing, {e['unexpected']} unexpected, "
            f"{e['duplicated']} duplicated; {e['set_aside_customers']} of {p['customers']:,} "
            f"customers set aside as toss-ups")
rows = [
    ("durable ingest through one node, IngestBatch", ">= half of single-node fjall",
     f"{b['events_per_s']:,.0f} events/s ({b['customers']:,} customers, batch {b['batch']}, "
     f"{b['concurrency']} in flight), call p50 {b['latency_ms']['p50']:.0f} ms, p99 {b['latency_ms']['p99']:.0f} ms"),
    ("escalations, batch phase", "exactly the expected set", esc(b)),
    ("escalation lateness, batch phase", "", f"p50 {b['lateness_ms']['p50']:.1f} ms, p99 {b['lateness_ms']['p99']:.1f} ms"),
    ("escalations across a SIGKILL", "exactly the expected set", esc(f)),
    ("lateness across a SIGKILL (max = failover)", "within 5 s",
     f"p50 {f['lateness_ms']['p50']:.0f} ms, p99 {f['lateness_ms']['p99']:.0f} ms, max {f['lateness_ms']['max']:.0f} ms"),
    ("database size per customer", "", f"{db_bytes / max(customers, 1):,.0f} B ({db_bytes / 2**20:,.0f} MiB, {customers:,} customers)"),
]
w0 = max(len(r[0]) for r in rows); w1 = max(len(r[1]) for r in rows)
print(f"\nhandoff cluster benchmark: 3 nodes on one local PostgreSQL, results in {work}\n")
print(f"| {'measure':<{w0}} | {'target':<{w1}} | measured")
print(f"|{'-' * (w0 + 2)}|{'-' * (w1 + 2)}|{'-' * 40}")
for m, t, g in rows:
    print(f"| {m:<{w0}} | {t:<{w1}} | {g}")
PY
if [[ -s $WORK/statements.txt ]]; then
  echo
  echo "the database's time in the batch phase, by statement (ms | calls | rows | % | statement):"
  cat "$WORK/statements.txt"
fi
exit "$LOADGEN_FAILED"
