#!/usr/bin/env bash
# Instructions per ingested event, counted by callgrind: within about 2%
# from run to run, so two builds compare on a machine whose timed runs
# vary by up to 30% (README, "Instructions per event"). Run it on an
# otherwise idle machine: how many events share a group commit depends
# on timing (a compile alongside added 5%).
#
#   benches/instructions.sh                    # the release build of this tree
#   benches/instructions.sh BIN [BIN ...]      # given binaries, one after another
#   CUSTOMERS=5000 benches/instructions.sh     # quicker (20,000 by default)
#
# For each binary: a release node under `valgrind --tool=callgrind` on a
# fresh data directory with the reference model scaled by 300, driven by
# `handoff loadgen` (IngestBatch of 500, 4 in flight, seed 1) and stopped
# with SIGTERM (loadgen's own check of the escalations is not the point
# here: under callgrind the node is ~50 times slower, so some escalations
# come too late for it to be conclusive); the node's instructions (every thread, start and shutdown
# included) divided by the events it took. The callgrind file stays in
# WORK for `callgrind_annotate` (where the instructions go).
#
# Needs: cargo, valgrind, python3.
set -euo pipefail
cd "$(dirname "$0")/.."

CUSTOMERS=${CUSTOMERS:-20000}
WORK=${WORK:-target/instructions/$(date +%Y%m%d-%H%M%S)}
command -v valgrind > /dev/null || { echo "needs valgrind (apt-get install -y valgrind)" >&2; exit 1; }
if [[ $# -eq 0 ]]; then
  echo "== building the release binary" >&2
  cargo build --release --quiet --bin handoff
  set -- target/release/handoff
fi

NODE=""
# A node left under valgrind by an interrupted run would go on counting.
trap '[[ -n "$NODE" ]] && kill -KILL "$NODE" 2>/dev/null; true' EXIT
n=0
for BIN in "$@"; do
  n=$((n + 1))
  W="$WORK/$n"
  mkdir -p "$W"
  "$BIN" model scale examples/saas.toml --by 300 > "$W/model.toml"
  valgrind --tool=callgrind --callgrind-out-file="$W/callgrind.out" "$BIN" serve \
    --model "$W/model.toml" --data "$W/data" --listen 127.0.0.1:0 --metrics 127.0.0.1:0 \
    > "$W/node.out" 2> "$W/node.err" &
  NODE=$!
  line=""
  for _ in $(seq 1 30000); do
    line=$(grep -m1 '^handoff serving ' "$W/node.out" || true)
    [[ -n "$line" ]] && break
    kill -0 "$NODE" 2>/dev/null || { echo "the node exited; see $W/node.err" >&2; exit 1; }
    sleep 0.01
  done
  [[ -n "$line" ]] || { echo "the node did not start; see $W/node.err" >&2; kill "$NODE"; exit 1; }
  ADDR=$(echo "$line" | awk '{print $3}')
  METRICS=$(echo "$line" | sed -E 's|.*metrics http://([^/]+)/metrics.*|\1|')
  "$BIN" loadgen --target "$ADDR" --metrics "$METRICS" --model "$W/model.toml" --json \
    --customers "$CUSTOMERS" --batch 500 --concurrency 4 --seed 1 --max-wait 5 \
    > "$W/loadgen.json" || true  # under callgrind the node is ~50x slower: counts, not checks
  kill -TERM "$NODE"
  wait "$NODE" || true
  NODE=""
  rm -rf "$W/data"
  python3 - "$W" "$BIN" <<'PY'
import json, sys
w, binary = sys.argv[1], sys.argv[2]
events = json.load(open(f"{w}/loadgen.json"))["events"]
total = sum(int(l.split()[1]) for l in open(f"{w}/callgrind.out") if l.startswith("summary:"))
print(f"{binary}: {total:,} instructions for {events:,} events, {total / events:,.0f} per event ({w})")
PY
done
