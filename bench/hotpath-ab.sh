#!/usr/bin/env bash
# Interleaved A/B of two Switchyard builds on the small-response hot path (c64 keep-alive, one
# route), proxy CPU per request split into user and system time. Both proxies run side by side
# (each with its own backend), measured in turns A B A B ...; wrk -t2 -c$CONNS, $DUR per turn.
#
#   flock /work/wt/bench.lock env DIST_A=/path/to/before/dist DIST_B=$PWD/dist ROUNDS=4 \
#     ARGS="--workers 1" bash scripts/with-node.sh 24 bash bench/hotpath-ab.sh
#
# CPU per request: utime+stime of every process of the proxy's session (threads included) from
# /proc/<pid>/stat, before and after each wrk run; also minor page faults and context switches
# (voluntary + involuntary, every thread) per request. NGINX=1 adds nginx (keep-alive upstream,
# configured as bench/run.sh does) as a third side N. Loopback only, ports 18621-18628.
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
NGINX=${NGINX:-0}
OUT=${OUT:-}
TICK=$(getconf CLK_TCK)
sids=()
NGX=""
cleanup() {
  for p in "${sids[@]}"; do kill -- -"$p" 2>/dev/null || true; done
  [ -z "$NGX" ] || rm -rf "$NGX"
}
trap cleanup EXIT
wait_http() { for _ in $(seq 1 150); do curl -s -o /dev/null "$1" -H 'Authorization: token t' && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }

start() { # name dist backendPort proxyPort apiPort args
  setsid node "$HERE/backend.js" "$3" A >/dev/null 2>&1 &
  sids+=($!)
  # shellcheck disable=SC2086
  CONFIGPROXY_AUTH_TOKEN=t setsid node "$2/src/main.js" $6 --ip 127.0.0.1 --port "$4" --api-ip 127.0.0.1 --api-port "$5" --log-level warn >/dev/null 2>&1 &
  sids+=($!)
  eval "SID_$1=$!"
  wait_http "http://127.0.0.1:$5/api/routes"
  curl -sf -X POST -H 'Authorization: token t' -d "{\"target\":\"http://127.0.0.1:$3\"}" "http://127.0.0.1:$5/api/routes/user/u1" >/dev/null
  wait_http "http://127.0.0.1:$4/user/u1/api"
}
start_nginx() {
  NGX=$(mktemp -d "${TMPDIR:-/tmp}/hotpath-nginx.XXXXXX")
  chmod a+rx "$NGX"
  setsid node "$HERE/backend.js" 18627 A >/dev/null 2>&1 &
  sids+=($!)
  cat >"$NGX/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $NGX/nginx.pid;
error_log $NGX/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $NGX/body; proxy_temp_path $NGX/proxy; fastcgi_temp_path $NGX/fastcgi;
  uwsgi_temp_path $NGX/uwsgi; scgi_temp_path $NGX/scgi;
  keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:18627; keepalive 128; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:18628 reuseport;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
EOF
  setsid nginx -p "$NGX" -c "$NGX/nginx.conf" >/dev/null 2>&1 &
  sids+=($!)
  SID_N=$!
  wait_http "http://127.0.0.1:18628/user/u1/api"
}
# utime stime (ticks), minor faults, context switches: summed over the session's processes and threads
cpu() {
  local u=0 s=0 f=0 c=0 p a b m x
  for p in $(ps -o pid= -s "$1"); do
    read -r a b m < <(awk '{print $14, $15, $10}' "/proc/$p/stat" 2>/dev/null || echo "0 0 0")
    x=$(cat /proc/"$p"/task/*/status 2>/dev/null | awk '/ctxt_switches/{n += $2} END {print n + 0}')
    u=$((u + a)); s=$((s + b)); f=$((f + m)); c=$((c + x))
  done
  echo "$u $s $f $c"
}

start A "$DIST_A" 18621 18622 18623 "$ARGS_A"
start B "$DIST_B" 18624 18625 18626 "$ARGS_B"
SIDES="A B"
if [ "$NGINX" = 1 ]; then start_nginx; SIDES="A B N"; fi
port_of() { case $1 in A) echo 18622 ;; B) echo 18625 ;; N) echo 18628 ;; esac; }
echo "node $(node --version); A=$DIST_A ($ARGS_A); B=$DIST_B ($ARGS_B)$([ "$NGINX" = 1 ] && echo "; N=$(nginx -v 2>&1)"); load: $(cut -d' ' -f1-3 /proc/loadavg)"
for side in $SIDES; do wrk -t2 -c"$CONNS" -d2s "http://127.0.0.1:$(port_of "$side")/user/u1/api" >/dev/null; done
res=()
for r in $(seq 1 "$ROUNDS"); do
  for side in $SIDES; do
    port=$(port_of "$side")
    eval "sid=\$SID_$side"
    read -r u0 s0 f0 c0 < <(cpu "$sid")
    out=$(wrk -t2 -c"$CONNS" -d"$DUR" --latency "http://127.0.0.1:$port/user/u1/api")
    read -r u1 s1 f1 c1 < <(cpu "$sid")
    reqs=$(echo "$out" | awk '/requests in/{print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
    p99=$(echo "$out" | awk '$1=="99%"{print $2}')
    non2xx=$(echo "$out" | awk '/Non-2xx/{print $NF}')
    line=$(awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v f=$((f1 - f0)) -v c=$((c1 - c0)) -v n="$reqs" -v t="$TICK" -v side="$side" -v r="$r" -v rps="$rps" -v p99="$p99" -v bad="${non2xx:-0}" \
      'BEGIN { printf "round %d %s req/s %s p99 %s us/req %.2f user %.2f sys %.2f minflt/req %.3f ctxsw/req %.3f non2xx %s", r, side, rps, p99, (u+s)*1e6/t/n, u*1e6/t/n, s*1e6/t/n, f/n, c/n, bad }')
    echo "$line"
    res+=("$line")
  done
done
summary=$(printf '%s\n' "${res[@]}" | awk '
  function med(arr, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (arr[j] < arr[i]) { t = arr[i]; arr[i] = arr[j]; arr[j] = t } return n % 2 ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2 }
  { s = $3; k = ++n[s]; v[s, "rps", k] = $5; v[s, "us", k] = $9; v[s, "user", k] = $11; v[s, "sys", k] = $13; v[s, "flt", k] = $15; v[s, "csw", k] = $17 }
  END {
    split("rps us user sys flt csw", keys, " ")
    for (side in n) {
      for (q = 1; q <= 6; q++) { for (i = 1; i <= n[side]; i++) a[i] = v[side, keys[q], i]; m[side, keys[q]] = med(a, n[side]) }
      printf "median %s: req/s %.0f, us/req %.2f (user %.2f, sys %.2f), minflt/req %.3f, ctxsw/req %.3f\n", side, m[side, "rps"], m[side, "us"], m[side, "user"], m[side, "sys"], m[side, "flt"], m[side, "csw"]
    }
    printf "B/A: req/s %.3f, us/req %.3f\n", m["B", "rps"] / m["A", "rps"], m["B", "us"] / m["A", "us"]
    if ("N" in n) printf "B/N: req/s %.3f, us/req %.3f; A/N: req/s %.3f, us/req %.3f\n", m["B", "rps"] / m["N", "rps"], m["B", "us"] / m["N", "us"], m["A", "rps"] / m["N", "rps"], m["A", "us"] / m["N", "us"]
  }')
echo "$summary"
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "$OUT" ]; then mkdir -p "$(dirname "$OUT")"; { printf '%s\n' "${res[@]}"; echo "$summary"; } >"$OUT"; fi
