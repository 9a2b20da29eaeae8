#!/usr/bin/env bash
# Quick side-by-side of the default workers (2 here) as threads vs as processes: c64 keep-alive,
# one route, wrk -t2 5 s per run after a 2 s warm-up, ROUNDS rounds interleaved (order rotated).
# CPU per request: utime+stime of the primary (all its threads) plus its worker processes, from
# /proc. Loopback ports 18621-18623. A smoke check, not bench/run.sh (nginx, CHP, reps).
#   bash scripts/with-node.sh 24 bash bench/worker-mode-quick.sh [ROUNDS=3]
set -u
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
node bench/backend.js 18621 A & B=$!
sleep 0.5
cpu_ticks() { # primary + its children
  local t=0 p
  for p in $1 $(cat /proc/$1/task/$1/children 2>/dev/null); do t=$((t + $(awk '{print $14+$15}' /proc/$p/stat))); done
  echo $t
}
run() {
  local mode=$1
  CONFIGPROXY_AUTH_TOKEN=t node dist/src/main.js --workers 2 --worker-mode $mode --ip 127.0.0.1 --port 18622 --api-ip 127.0.0.1 --api-port 18623 --log-level warn >/dev/null 2>&1 & P=$!
  for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:18623/api/routes -H 'Authorization: token t' && break; sleep 0.1; done
  curl -s -X POST -H 'Authorization: token t' -d '{"target":"http://127.0.0.1:18621"}' http://127.0.0.1:18623/api/routes/user/u1 >/dev/null
  wrk -t2 -c64 -d2s http://127.0.0.1:18622/user/u1/api >/dev/null 2>&1
  local t0 t1 out reqs rps
  t0=$(cpu_ticks $P)
  out=$(wrk -t2 -c64 -d5s --latency http://127.0.0.1:18622/user/u1/api 2>&1)
  t1=$(cpu_ticks $P)
  reqs=$(echo "$out" | awk '/requests in/{print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
  p99=$(echo "$out" | awk '$1=="99%"{print $2}')
  echo "$mode req/s=$rps requests=$reqs p99=$p99 cpu_us_per_req=$(( (t1-t0)*10000/reqs )) non2xx=$(echo "$out" | awk "/Non-2xx/{print \$NF}")"
  kill $P; wait $P 2>/dev/null
}
echo "node $(node --version); load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq $ROUNDS); do
  if [ $((r % 2)) = 1 ]; then run threads; run processes; else run processes; run threads; fi
done
echo "load at end $(cut -d' ' -f1-3 /proc/loadavg)"
kill $B
