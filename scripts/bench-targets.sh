#!/bin/bash
# Every issue-22 target bench in a row, each with the workload its docs/benchmarks.md line quotes
# (npm run build first). Output: one file per bench in $1 (default bench-out/), last lines echoed.
# Run it on an otherwise idle machine: the paired rounds warn when it is not.
# A second build to pair the in-session figure against: BASE=/path/to/other/checkout/dist; and the
# idle-device Gets: BASE_IDLE=/path/to/other/checkout (its dist/bench/e2e.js must take --idle-only).
set -u
out=${1:-bench-out}
mkdir -p "$out"
run() {
  local name=$1
  shift
  echo "== $name $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)"
  node "$@" >"$out/$name.txt" 2>&1 || echo "   $name failed (see $out/$name.txt)"
  tail -2 "$out/$name.txt" | cut -c1-400
}
run usp-1 dist/bench/usp.js --mqtt-only --agents 1
run usp-1000 dist/bench/usp.js --mqtt-only --agents 1000
run e2e dist/bench/e2e.js
[ -n "${BASE_IDLE:-}" ] && run e2e-pair dist/bench/e2e.js --pair "$BASE_IDLE" --pair-rounds 6
run insession dist/bench/insession.js ${BASE:+--main "$BASE"}
run informs dist/bench/inform-storm.js --devices 2000 --memory ''
run lanes dist/bench/decode-lanes.js --rate 500
run bigbody dist/bench/big-body.js
run memory dist/bench/inform-storm.js --memory-only --memory 1000,10000 --settle 30
run cluster dist/bench/cluster.js --devices 500 --seconds 5 --sqlite --instances 1,2 --balance round-robin,sticky
