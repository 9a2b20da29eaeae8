#!/usr/bin/env bash
# Interleaved A/B of two Switchyard builds on the small-response hot path (c64 keep-alive, one
# route), proxy CPU per request split into user and system time. Both proxies run side by side
# (each with its own backend), measured in turns A B A B ...; wrk -t2 -c$CONNS, $DUR per turn.
#
#   flock /work/wt/bench.lock env DIST_A=/path/to/before/dist DIST_B=$PWD/dist ROUNDS=4 \
#     ARGS="--workers 1" bash scripts/with-node.sh 24 bash bench/hotpath-ab.sh
#
# CPU per request: utime+stime of every process of the proxy's session (threads included) from
# /proc/<pid>/stat, before and after each wrk run. Loopback only, ports 18621-18626.
# Prints one line per turn and a median summary (also to $OUT if set).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIST_A=${DIST_A:?DIST_A: the dist directory of build A}
DIST_B=${DIST_B:-$HERE/../dist}
ROUNDS=${ROUNDS:-4}
DUR=${DUR:-5s}
CONNS=${CONNS:-64}
ARGS=${ARGS:-}
ARGS_A=${ARGS_A:-$ARGS}
ARGS_B=${ARGS_B:-$ARGS}
OUT=${OUT:-}
TICK=$(getconf CLK_TCK)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -- -"$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_http() { for _ in $(seq 1 150); do curl -s -o /dev/null "$1" -H 'Authorization: token t' && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }

start() { # name dist backendPort proxyPort apiPort args
  setsid node "$HERE/backend.js" "$3" A >/dev/null 2>&1 &
  pids+=($!)
  # shellcheck disable=SC2086
  CONFIGPROXY_AUTH_TOKEN=t setsid node "$2/src/main.js" $6 --ip 127.0.0.1 --port "$4" --api-ip 127.0.0.1 --api-port "$5" --log-level warn >/dev/null 2>&1 &
  pids+=($!)
  eval "SID_$1=$!"
  wait_http "http://127.0.0.1:$5/api/routes"
  curl -sf -X POST -H 'Authorization: token t' -d "{\"target\":\"http://127.0.0.1:$3\"}" "http://127.0.0.1:$5/api/routes/user/u1" >/dev/null
  wait_http "http://127.0.0.1:$4/user/u1/api"
}
# utime stime (ticks) summed over the session's processes
cpu() { local u=0 s=0 p; for p in $(ps -o pid= -s "$1"); do read -r a b < <(awk '{print $14, $15}' "/proc/$p/stat" 2>/dev/null || echo "0 0"); u=$((u + a)); s=$((s + b)); done; echo "$u $s"; }

start A "$DIST_A" 18621 18622 18623 "$ARGS_A"
start B "$DIST_B" 18624 18625 18626 "$ARGS_B"
echo "node $(node --version); A=$DIST_A ($ARGS_A); B=$DIST_B ($ARGS_B); load: $(cut -d' ' -f1-3 /proc/loadavg)"
for port in 18622 18625; do wrk -t2 -c"$CONNS" -d2s "http://127.0.0.1:$port/user/u1/api" >/dev/null; done
res=()
for r in $(seq 1 "$ROUNDS"); do
  for side in A B; do
    if [ "$side" = A ]; then port=18622; sid=$SID_A; else port=18625; sid=$SID_B; fi
    read -r u0 s0 < <(cpu "$sid")
    out=$(wrk -t2 -c"$CONNS" -d"$DUR" --latency "http://127.0.0.1:$port/user/u1/api")
    read -r u1 s1 < <(cpu "$sid")
    reqs=$(echo "$out" | awk '/requests in/{print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
    p99=$(echo "$out" | awk '$1=="99%"{print $2}')
    non2xx=$(echo "$out" | awk '/Non-2xx/{print $NF}')
    line=$(awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v n="$reqs" -v t="$TICK" -v side="$side" -v r="$r" -v rps="$rps" -v p99="$p99" -v bad="${non2xx:-0}" \
      'BEGIN { printf "round %d %s req/s %s p99 %s us/req %.2f (user %.2f sys %.2f) non2xx %s", r, side, rps, p99, (u+s)*1e6/t/n, u*1e6/t/n, s*1e6/t/n, bad }')
    echo "$line"
    res+=("$line")
  done
done
summary=$(printf '%s\n' "${res[@]}" | awk '
  function med(arr, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (arr[j] < arr[i]) { t = arr[i]; arr[i] = arr[j]; arr[j] = t } return n % 2 ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2 }
  { s = $3; n[s]++; rps[s, n[s]] = $5; us[s, n[s]] = $9; usr[s, n[s]] = $11; sys[s, n[s]] = $13 }
  END {
    for (side in n) {
      k = n[side]
      for (i = 1; i <= k; i++) { a[i] = rps[side, i]; b[i] = us[side, i]; c[i] = usr[side, i]; d[i] = sys[side, i] }
      m_rps[side] = med(a, k); m_us[side] = med(b, k); m_usr[side] = med(c, k); m_sys[side] = med(d, k)
      printf "median %s: req/s %.0f, us/req %.2f (user %.2f, sys %.2f)\n", side, m_rps[side], m_us[side], m_usr[side], m_sys[side]
    }
    printf "B/A: req/s %.3f, us/req %.3f\n", m_rps["B"] / m_rps["A"], m_us["B"] / m_us["A"]
  }')
echo "$summary"
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "$OUT" ]; then mkdir -p "$(dirname "$OUT")"; { printf '%s\n' "${res[@]}"; echo "$summary"; } >"$OUT"; fi
