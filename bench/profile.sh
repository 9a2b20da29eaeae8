#!/usr/bin/env bash
# CPU profile of Switchyard's data plane under wrk load, with a flamegraph.
#
#   npm run build && bash bench/profile.sh
#   DURATION=10s CONNS=64 OUT=bench/results/profile-<ts> bash bench/profile.sh
#   URL_PATH=/user/u1/bytes/1048576 CONNS=16 bash bench/profile.sh   # 1 MiB responses
#   DOWNLOAD_MB=100 ROUNDS=10 bash bench/profile.sh   # single large downloads (body-cpu.mjs), no wrk
#
# Runs Switchyard with --workers 1 (the proxy in one process, so one profile holds the whole
# data path) under `node --cpu-prof`, one route /user/u1 -> bench/backend.js, wrk -t2 -c$CONNS
# against it, then SIGTERM (the profile is written on exit). bench/profile-summary.mjs turns the
# .cpuprofile into summary.md (self time by category and the top functions), folded.txt (folded
# stacks, the input of any flamegraph tool) and flamegraph.svg. Loopback only, ports 18600-18602.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
DIST=${DIST:-$ROOT/dist}   # another build: DIST=/path/to/dist
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
URL_PATH=${URL_PATH:-/user/u1/api}
OUT=${OUT:-$HERE/results/profile-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
P_PROXY=18600 P_BACKEND=18601 P_API=18602
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 did not open" >&2; return 1; }

node "$HERE/backend.js" $P_BACKEND A >"$OUT/backend.log" 2>&1 &
pids+=($!)
CONFIGPROXY_AUTH_TOKEN=profile node --cpu-prof --cpu-prof-dir "$OUT" "$DIST/src/main.js" \
  --workers 1 --ip 127.0.0.1 --port $P_PROXY --api-ip 127.0.0.1 --api-port $P_API >"$OUT/switchyard.log" 2>&1 &
sy=$!
pids+=($sy)
wait_port $P_BACKEND
wait_port $P_PROXY
curl -sf -X POST -H 'Authorization: token profile' -d "{\"target\":\"http://127.0.0.1:$P_BACKEND\"}" \
  "http://127.0.0.1:$P_API/api/routes/user/u1" >/dev/null
if [ -n "${DOWNLOAD_MB:-}" ]; then
  DIRS=down MB="$DOWNLOAD_MB" ROUNDS="${ROUNDS:-10}" node "$HERE/body-cpu.mjs" "switchyard=$P_PROXY:0" | tee "$OUT/downloads.txt"
else
  wrk -t2 -c"$CONNS" -d2s "http://127.0.0.1:$P_PROXY$URL_PATH" >/dev/null   # warm-up
  wrk -t2 -c"$CONNS" -d"$DURATION" "http://127.0.0.1:$P_PROXY$URL_PATH" | tee "$OUT/wrk.txt"
fi
kill -TERM $sy
wait $sy || true
prof=$(ls "$OUT"/*.cpuprofile | head -1)
node "$HERE/profile-summary.mjs" "$prof" "$OUT"
echo "profile: $OUT (summary.md, folded.txt, flamegraph.svg)"
