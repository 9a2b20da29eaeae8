#!/usr/bin/env bash
# On-CPU profile of the data plane with Linux perf (cpu-clock samples of the proxy process, kernel
# and user stacks, JS frames named through node --perf-basic-prof), under wrk -t2 -c$CONNS.
# Unlike bench/profile.sh (V8's --cpu-prof, wall-clock ticks: a thread descheduled inside a
# syscall is still sampled there), only CPU time is counted, so kernel time (the socket writes'
# loopback delivery) and user time are told apart.
#
#   flock /work/wt/bench.lock env OUT=bench/results/perf-x bash scripts/with-node.sh 24 bash bench/perf-profile.sh
#   DIST=/other/dist ARGS="--workers 1" DURATION=5 bash bench/perf-profile.sh
#
# Writes $OUT/summary.md (bench/perf-summary.mjs); the raw `perf script` text ($OUT/perf.txt,
# tens of MiB) is deleted unless KEEP_RAW=1. Needs perf (linux-perf) and permission to profile
# the process. Loopback only, ports 18651-18653; perf-<pid>.map files in /tmp are removed.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIST=${DIST:-$HERE/../dist}
ARGS=${ARGS:---workers 1}
DURATION=${DURATION:-5}
CONNS=${CONNS:-64}
OUT=${OUT:-$HERE/results/perf-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; rm -f "/tmp/perf-$p.map"; done; }
trap cleanup EXIT
node "$HERE/backend.js" 18651 A >/dev/null 2>&1 &
pids+=($!)
# shellcheck disable=SC2086
CONFIGPROXY_AUTH_TOKEN=t node --perf-basic-prof "$DIST/src/main.js" $ARGS --ip 127.0.0.1 --port 18652 --api-ip 127.0.0.1 --api-port 18653 --log-level warn >/dev/null 2>&1 &
P=$!
pids+=($P)
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:18653/api/routes -H 'Authorization: token t' && break; sleep 0.1; done
curl -sf -X POST -H 'Authorization: token t' -d '{"target":"http://127.0.0.1:18651"}' http://127.0.0.1:18653/api/routes/user/u1 >/dev/null
wrk -t2 -c"$CONNS" -d2s http://127.0.0.1:18652/user/u1/api >/dev/null
perf record -F 999 -e cpu-clock -g -p "$P" -o "$OUT/perf.data" -- sleep "$DURATION" >/dev/null 2>&1 &
R=$!
wrk -t2 -c"$CONNS" -d"${DURATION}s" http://127.0.0.1:18652/user/u1/api | tee "$OUT/wrk.txt" | grep Requests/sec
wait $R
perf script -i "$OUT/perf.data" -F comm,tid,ip,sym,dso 2>/dev/null >"$OUT/perf.txt"
rm -f "$OUT/perf.data"
node "$HERE/perf-summary.mjs" "$OUT/perf.txt" "$(node --version) $ARGS, wrk -c$CONNS ${DURATION}s" >"$OUT/summary.md"
[ "${KEEP_RAW:-0}" = 1 ] || rm -f "$OUT/perf.txt"
echo "profile: $OUT/summary.md"
