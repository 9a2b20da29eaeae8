#!/usr/bin/env bash
# A/B of proxy CPU per byte for large bodies (bench/body-cpu.mjs) between builds, side by side.
#
#   BUILDS="before=/path/to/dist-a after=$PWD/dist" MB=200 ROUNDS=5 WORKERS=1 bash bench/body-cpu-ab.sh
#
# Starts bench/backend.js and one Switchyard per build (`node <dist>/src/main.js`, --workers
# $WORKERS, each in its own session/process group), routes /user/u1 to the backend on each, then
# runs body-cpu.mjs over all of them (rounds interleaved) and prints its table. TRANSFERS=N (default
# 0) then runs bench/transfer.js N times per build, interleaved (one JSON line each: rates and RSS
# peak vs start of the whole process group). WRK_ROUNDS=N (default 0) then runs wrk -t2 -c$WRK_C
# (64) -d$WRK_D (5s) against $WRK_PATH (/user/u1/api) on each build, N interleaved rounds: req/s
# and proxy CPU µs per request (small responses: to see that nothing regressed there). Every
# process started here is killed on exit (by process group). Loopback only, ports 18700-18799.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILDS=${BUILDS:?BUILDS=\"name=dist-dir ...\"}
WORKERS=${WORKERS:-1}
TRANSFERS=${TRANSFERS:-0}
WRK_ROUNDS=${WRK_ROUNDS:-0}
WRK_C=${WRK_C:-64}
WRK_D=${WRK_D:-5s}
WRK_PATH=${WRK_PATH:-/user/u1/api}
P_BACKEND=18701
pgs=()
cleanup() { for g in "${pgs[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done; }
trap cleanup EXIT
pg_ticks() {
  local t=0 p
  for p in $(ps -e -o pid=,pgid= | awk -v g="$1" '$2 == g {print $1}'); do
    t=$((t + $(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 did not open" >&2; return 1; }

setsid node "$HERE/backend.js" $P_BACKEND A >/dev/null 2>&1 </dev/null &
pgs+=($!)
wait_port $P_BACKEND
targets=()
port=18710
for b in $BUILDS; do
  name=${b%%=*} dist=${b#*=}
  CONFIGPROXY_AUTH_TOKEN=ab setsid node "$dist/src/main.js" --workers "$WORKERS" --ip 127.0.0.1 --port $port \
    --api-ip 127.0.0.1 --api-port $((port + 1)) --log-level warn >/dev/null 2>&1 </dev/null &
  pg=$!
  pgs+=($pg)
  wait_port $port
  wait_port $((port + 1))
  curl -sf -X POST -H 'Authorization: token ab' -d "{\"target\":\"http://127.0.0.1:$P_BACKEND\"}" \
    "http://127.0.0.1:$((port + 1))/api/routes/user/u1" >/dev/null
  targets+=("$name=$port:$pg")
  port=$((port + 10))
done
node "$HERE/body-cpu.mjs" "${targets[@]}"
for ((i = 1; i <= TRANSFERS; i++)); do
  for t in "${targets[@]}"; do
    name=${t%%=*} rest=${t#*=}
    echo "$name $(node "$HERE/transfer.js" --base "http://127.0.0.1:${rest%%:*}/user/u1" --mb "${MB:-100}" --pgid "${rest#*:}")"
  done
done
for ((i = 1; i <= WRK_ROUNDS; i++)); do
  for t in "${targets[@]}"; do
    name=${t%%=*} rest=${t#*=}
    c0=$(pg_ticks "${rest#*:}")
    rps=$(wrk -t2 -c"$WRK_C" -d"$WRK_D" "http://127.0.0.1:${rest%%:*}$WRK_PATH" | awk '/Requests\/sec/ {print $2}')
    c1=$(pg_ticks "${rest#*:}")
    dur=${WRK_D%s}
    echo "wrk $name round $i: $rps req/s, proxy CPU $(awk -v c=$((c1 - c0)) -v r="$rps" -v d="$dur" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", c / hz * 1e6 / (r * d) }') us/req"
  done
done
