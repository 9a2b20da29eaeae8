#!/usr/bin/env bash
# Reverse-proxy anchor benchmark (loopback only, ports 18000-18999).
#
#   bash bench/run.sh                      # Switchyard vs direct vs nginx vs configurable-http-proxy (CHP)
#   PROXY_CMD="node /path/to/cli.js" bash bench/run.sh   # another CHP-compatible proxy instead
#
# Configurations measured with wrk against GET /user/u1/api (and /user/u5000/api with 10k routes):
#   direct        wrk -> backend                               (physical-limit reference)
#   nginx         wrk -> nginx (upstream keepalive) -> backend
#   chp           wrk -> CHP (route /user/u1 added via REST API) -> backend
#   chp-10k       same, CHP holding 10,000 routes /user/u0../user/u9999, path /user/u5000/api
#   chp-10k-rand  same as chp-10k, every request to a random /user/uN/api (wrk Lua request())
#   node-min, node-min-10k, node-min-10k-rand   bench/node-min-proxy.js, a naive ~150-line plain-Node
#                 CHP-compatible proxy: what a simple single-threaded Node proxy costs here (a reference,
#                 not a strict floor; SKIP_NODEMIN=1 to skip)
#   $PROXY_NAME, $PROXY_NAME-10k, $PROXY_NAME-10k-rand   when PROXY_CMD is set (treated exactly like CHP)
#   $PROXY2_NAME...   a second proxy under test when PROXY2_CMD is set (e.g. a build of main next to
#                 this one: before and after side by side in one run), treated exactly like CHP
#   EXTRA_TARGETS="name=http://127.0.0.1:18900/user/u1/api,..."  already-running targets (no CPU accounting)
#   $name-100k    CHP and $PROXY_NAME holding ROUTES_HUGE=100,000 routes, path /user/u50000/api (SKIP_100K=1)
# Scenarios on the one-route configs (direct, nginx, chp, node-min, $PROXY_NAME), every rep:
#   1mb      wrk -c16 against .../bytes/1048576: 1 MiB responses
#   close    wrk -c$CONNS with "Connection: close": a new client connection per request
#   churn    wrk -c$CONNS while bench/routes.js adds/removes routes at CHURN_RATE=100 changes/s
#            through the REST API (CHP-like proxies only; results in churn.*.json)
# Once, after the reps:
#   transfer bench/transfer.js: one TRANSFER_MB=100 MiB download and upload, RSS sampled every 50 ms
#   ws-hold  bench/ws_bench.js with WS_HOLD=10000 websockets held open: RSS per connection, echo p99
#            (this machine's hard fd limit is 20,000: a single-process proxy needs 2 fds per
#            websocket, so CHP and node-min cannot hold 10,000 here; failures are reported)
# plus: route-API load rate (POST 10k routes), GET /api/routes latency with 10k routes,
#       websocket open/echo through each proxy (SKIP_WS=1 to skip).
#
# Contract for PROXY_CMD: a command that accepts CHP's flags
#   --ip 127.0.0.1 --port P --api-ip 127.0.0.1 --api-port P+1 --default-target URL
# (more may be added via PROXY_ARGS), reads CONFIGPROXY_AUTH_TOKEN from the environment
# and implements CHP's REST API (POST/GET /api/routes[/path], Authorization: token T).
#
# Knobs (env): DURATION=10s LAT_DURATION=$DURATION THREADS=2 CONNS=64 REPS=3 ROUTES=10000
#   ROUTE_CONC=1 WS_CONNS=1000 WS_CONC=100 WS_RTT=2000 SKIP_WS=0 SKIP_NGINX=0 SKIP_CHP=0
#   SKIP_10K=0 SKIP_RAND=0 SKIP_NODEMIN=0 CHP_LOG_LEVEL=info CHP_ARGS="" PROXY_CMD="" PROXY_NAME=proxy
#   PROXY_ARGS="" EXTRA_TARGETS="" QUIET_MAX=15 QUIET_WAIT=60 BENCH_NICE=-10 OUTDIR=bench/results/<timestamp>
#   ROUTES_HUGE=100000 HUGE_CONC=8 SKIP_100K=0 SKIP_SCENARIOS=0 CHURN_RATE=100 TRANSFER_MB=100
#   WS_HOLD=10000 SKIP_HOLD=0 ONLY_LARGE=0 (1: only the 1 MiB scenario and the 100 MiB transfers)
# other_cpu_pct in the results = machine CPU used by processes not started here during a run
# (this machine can be shared); runs with high values are depressed.
#
# Runs are interleaved (rep 1: all configs, rep 2: all configs, ...) and the summary
# reports medians over REPS. Every process started here is killed on exit (by its
# process-group id, which is its own PID, via setsid).
set -Eeuo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# (no cd: a relative PROXY_CMD resolves against the caller's working directory)

DURATION=${DURATION:-10s}
LAT_DURATION=${LAT_DURATION:-$DURATION}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
REPS=${REPS:-3}
ROUTES=${ROUTES:-10000}
ROUTE_CONC=${ROUTE_CONC:-1}
WS_CONNS=${WS_CONNS:-1000}
WS_CONC=${WS_CONC:-100}
WS_RTT=${WS_RTT:-2000}
SKIP_WS=${SKIP_WS:-0}
SKIP_NGINX=${SKIP_NGINX:-0}
SKIP_CHP=${SKIP_CHP:-0}
SKIP_10K=${SKIP_10K:-0}
SKIP_RAND=${SKIP_RAND:-0}
SKIP_NODEMIN=${SKIP_NODEMIN:-0}
ROUTES_HUGE=${ROUTES_HUGE:-100000}
HUGE_CONC=${HUGE_CONC:-8}
SKIP_100K=${SKIP_100K:-0}
SKIP_SCENARIOS=${SKIP_SCENARIOS:-0}
CHURN_RATE=${CHURN_RATE:-100}
TRANSFER_MB=${TRANSFER_MB:-100}
WS_HOLD=${WS_HOLD:-10000}
SKIP_HOLD=${SKIP_HOLD:-0}
ONLY_LARGE=${ONLY_LARGE:-0}   # 1: per rep only the 1 MiB scenario, then the transfers (no c64/c1/close/churn/ws)
QUIET_MAX=${QUIET_MAX:-15}     # % of machine considered "quiet" before starting
QUIET_WAIT=${QUIET_WAIT:-60}  # max seconds to wait for quiet
# Priority of every process started here (services, wrk, clients). On a shared machine a
# negative value keeps foreign CPU hogs from distorting results; all configs get the same.
BENCH_NICE=${BENCH_NICE:--10}
nice -n "$BENCH_NICE" true 2>/dev/null || BENCH_NICE=0
NICE=(nice -n "$BENCH_NICE")
# With kernel.sched_autogroup_enabled=1 (as here) CPU is shared fairly between *sessions*
# first, so the session's autogroup nice is what counts: set it for this script's session
# (restored on exit) and for each service's own session (see boost()).
AG_OLD=$(awk '{print $3}' /proc/$$/autogroup 2>/dev/null || true)
[ -z "$AG_OLD" ] || echo "$BENCH_NICE" >/proc/$$/autogroup 2>/dev/null || true
CHP_LOG_LEVEL=${CHP_LOG_LEVEL:-info}
CHP_ARGS=${CHP_ARGS:-}
# Switchyard (this repository's build) is the proxy under test unless PROXY_CMD says otherwise;
# PROXY_CMD="" (set but empty) benchmarks only the anchors.
PROXY_CMD=${PROXY_CMD-node $HERE/../dist/src/main.js}
PROXY_NAME=${PROXY_NAME:-switchyard}
PROXY_ARGS=${PROXY_ARGS:-}
PROXY2_CMD=${PROXY2_CMD:-}
PROXY2_NAME=${PROXY2_NAME:-proxy2}
PROXY2_ARGS=${PROXY2_ARGS:-}
EXTRA_TARGETS=${EXTRA_TARGETS:-}
TOKEN=${CONFIGPROXY_AUTH_TOKEN:-benchtoken}
export CONFIGPROXY_AUTH_TOKEN=$TOKEN
OUTDIR=${OUTDIR:-$HERE/results/$(date +%Y%m%d-%H%M%S)}
TEST_PATH=/user/u1/api
BIG_PATH=/user/u$((ROUTES / 2))/api
HUGE_PATH=/user/u$((ROUTES_HUGE / 2))/api

# ---- ports (all 127.0.0.1, 18000-18999) ----
IP=127.0.0.1
P_BACKEND=18001      # backend "A": target of all /user/... routes
P_BACKEND_DEF=18002  # backend "B": --default-target (proves the route table is used)
P_WSBACKEND=18003    # ws echo backend "W"
P_NGINX=18080
P_CHP=18100          # API = +1
P_CHP10K=18110
P_CHP100K=18120
P_PROXY=18200
P_PROXY10K=18210
P_PROXY100K=18220
P_PROXY2=18250
P_PROXY2_10K=18260
P_PROXY2_100K=18270
P_NODEMIN=18300    # bench/node-min-proxy.js (naive plain-Node reference)
P_NODEMIN10K=18310

CHP_BIN="$HERE/node_modules/configurable-http-proxy/bin/configurable-http-proxy"
CLK_TCK=$(getconf CLK_TCK)
RUNDIR=$(mktemp -d /tmp/proxybench.XXXXXX)
mkdir -p "$OUTDIR/raw" "$OUTDIR/logs"
TSV="$OUTDIR/wrk.tsv"
PROC_TSV="$OUTDIR/proc.tsv"

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- processes
declare -A PGID=()      # service name -> pgid (== pid of the process we started)
STARTED=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local pid
  for pid in "${STARTED[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    local alive=0
    for pid in "${STARTED[@]}"; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.2
  done
  for pid in "${STARTED[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -z "${AG_OLD:-}" ] || echo "$AG_OLD" >/proc/$$/autogroup 2>/dev/null || true
  rm -rf "$RUNDIR"
  [ "$rc" = 0 ] || log "exit status $rc (logs in $OUTDIR/logs)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_svc NAME CMD...   (own session/process group; stdout+stderr -> logs/NAME.log)
start_svc() {
  local name=$1; shift
  setsid "${NICE[@]}" "$@" >"$OUTDIR/logs/$name.log" 2>&1 </dev/null &
  local pid=$!
  STARTED+=("$pid")
  PGID[$name]=$pid
}

# boost PGID: give the service's own session (autogroup) the benchmark priority
boost() { [ -z "${AG_OLD:-}" ] || echo "$BENCH_NICE" >"/proc/$1/autogroup" 2>/dev/null || true; }

pg_pids() { ps -e -o pid=,pgid= | awk -v g="$1" '$2==g {print $1}'; }

# sum of utime+stime ticks of every process in the given process groups
pg_ticks() {
  local total=0 g p t
  for g in "$@"; do
    for p in $(pg_pids "$g"); do
      t=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$p/stat" 2>/dev/null || echo 0)
      total=$((total + ${t:-0}))
    done
  done
  echo "$total"
}

pg_rss_kb() {
  local total=0 g p r
  for g in "$@"; do
    for p in $(pg_pids "$g"); do
      r=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
      total=$((total + ${r:-0}))
    done
  done
  echo "$total"
}

# machine: "busy total" jiffies from /proc/stat
machine_jiffies() { awk '/^cpu / {t=0; for (i=2;i<=NF;i++) t+=$i; print t-$5-$6, t; exit}' /proc/stat; }

port_busy() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }

# wait_http PORT PGID [timeout_s]: any HTTP answer on 127.0.0.1:PORT
wait_http() {
  local port=$1 pg=$2 limit=$(( ${3:-20} * 20 )) i
  for ((i = 0; i < limit; i++)); do
    curl -s -o /dev/null -m 1 "http://$IP:$port/" && { boost "$pg"; return 0; }
    kill -0 -- "-$pg" 2>/dev/null || die "process group $pg died before port $port answered"
    sleep 0.05
  done
  die "port $port did not answer in ${3:-20}s"
}

now_ms() { date +%s%3N; }

api_add_route() { # API_PORT PATH TARGET
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 -X POST \
    -H "Authorization: token $TOKEN" -H 'Content-Type: application/json' \
    -d "{\"target\": \"$3\"}" "http://$IP:$1/api/routes$2")
  [ "$code" = 201 ] || [ "$code" = 200 ] || die "POST /api/routes$2 on :$1 -> HTTP $code"
}

expect_body() { # URL EXPECTED
  local got
  got=$(curl -s -m 5 "$1" || true)
  [ "$got" = "$2" ] || die "GET $1: expected '$2', got '$got'"
}

# start_chp_like NAME PORT CMD...   CHP-compatible proxy: flags appended here
start_chp_like() {
  local name=$1 port=$2; shift 2
  for p in "$port" $((port + 1)); do port_busy "$p" && die "port $p already in use"; done
  local t0; t0=$(now_ms)
  start_svc "$name" "$@" \
    --ip "$IP" --port "$port" --api-ip "$IP" --api-port $((port + 1)) \
    --default-target "http://$IP:$P_BACKEND_DEF"
  wait_http "$port" "${PGID[$name]}"
  wait_http $((port + 1)) "${PGID[$name]}"
  local startup=$(( $(now_ms) - t0 ))
  api_add_route $((port + 1)) /user/u1 "http://$IP:$P_BACKEND"
  api_add_route $((port + 1)) /user/w1 "http://$IP:$P_WSBACKEND"
  expect_body "http://$IP:$port$TEST_PATH" "ok A $TEST_PATH"
  expect_body "http://$IP:$port/not/routed" "ok B /not/routed"
  printf '%s\t%s\t%s\n' "$name" "$startup" "$(pg_rss_kb "${PGID[$name]}")" >>"$PROC_TSV.start"
  log "$name up on :$port (api :$((port + 1))) in ${startup} ms, pgid ${PGID[$name]}"
}

load_routes() { # NAME API_PORT [COUNT] [CONC]
  local count=${3:-$ROUTES} conc=${4:-$ROUTE_CONC}
  log "$1: POSTing $count routes (conc $conc) ..."
  "${NICE[@]}" node "$HERE/routes.js" --api "http://$IP:$2" --token "$TOKEN" --count "$count" \
    --conc "$conc" --target "http://$IP:$P_BACKEND" --prefix /user/u >"$OUTDIR/routes.$1.json" \
    || die "routes.js failed for $1"
  log "$1: $(node -e 'const j=require(process.argv[1]); console.log(j.load.routes_per_s+" routes/s, GET /api/routes p50 "+j.get_all.p50_ms+" ms ("+j.get_all.bytes+" B)")' "$OUTDIR/routes.$1.json")"
}

# ---------------------------------------------------------------- measuring
CONFIGS=()   # "name|url|pgids(space sep)|wrk env (space sep)"
register() { CONFIGS+=("$1|$2|${3:-}|${4:-}"); }

echo -e "config\tmode\trep\trps\tmean_us\tp50_us\tp90_us\tp99_us\tmax_us\trequests\tsock_errors\tnon2xx\tproxy_cpu_pct\tbackend_cpu_pct\tmachine_busy_pct\tproxy_us_per_req\tbackend_us_per_req\twrk_cpu_pct\tother_cpu_pct\tthreads\tconns\tduration" >"$TSV"

# run_wrk NAME MODE REP THREADS CONNS DURATION URL "PGIDS" "ENV" ["WRK ARGS" (word-split)]
run_wrk() {
  local name=$1 mode=$2 rep=$3 t=$4 c=$5 d=$6 url=$7 pgs=$8 envs=$9 wargs=${10:-}
  local raw="$OUTDIR/raw/$name.$mode.r$rep.txt"
  local bpg=${PGID[backend]}
  local pt0 bt0 m0 m1 w0 w1
  pt0=$( [ -n "$pgs" ] && pg_ticks $pgs || echo 0 ); bt0=$(pg_ticks "$bpg"); m0=$(machine_jiffies); w0=$(date +%s%N)
  # subshell so that `times` reports exactly wrk's CPU (its only child)
  # shellcheck disable=SC2086
  ( env $envs "${NICE[@]}" wrk -t"$t" -c"$c" -d"$d" --latency $wargs -s "$HERE/wrk-report.lua" "$url" >"$raw" 2>&1; times >"$raw.times" ) || true
  w1=$(date +%s%N); m1=$(machine_jiffies)
  local wt; wt=$(awk -v hz="$CLK_TCK" 'NR==2 { s=0; for (i=1;i<=2;i++) { split($i, a, "m"); sub(/s$/, "", a[2]); s += a[1]*60 + a[2] } printf "%d", s*hz }' "$raw.times" 2>/dev/null || echo 0)
  local pt1 bt1
  pt1=$( [ -n "$pgs" ] && pg_ticks $pgs || echo 0 ); bt1=$(pg_ticks "$bpg")
  local line; line=$(grep '^WRKRESULT' "$raw" || true)
  [ -n "$line" ] || { log "wrk produced no result for $name/$mode (see $raw)"; return 0; }
  # shellcheck disable=SC2086
  local requests rps mean_us p50_us p90_us p99_us max_us err_connect err_read err_write err_status err_timeout
  eval "$(echo "$line" | sed 's/^WRKRESULT //' | tr ' ' '\n' | grep -E '^(requests|rps|mean_us|p50_us|p90_us|p99_us|max_us|err_[a-z]+)=' | sed 's/^/local /')"
  awk -v name="$name" -v mode="$mode" -v rep="$rep" -v rps="$rps" -v mean="$mean_us" -v p50="$p50_us" \
      -v p90="$p90_us" -v p99="$p99_us" -v max="$max_us" -v req="$requests" \
      -v serr=$((err_connect + err_read + err_write + err_timeout)) -v nerr="$err_status" \
      -v pt=$((pt1 - pt0)) -v bt=$((bt1 - bt0)) -v hz="$CLK_TCK" -v wall_ns=$((w1 - w0)) \
      -v mb0="${m0% *}" -v mt0="${m0#* }" -v mb1="${m1% *}" -v mt1="${m1#* }" \
      -v wt="${wt:-0}" -v t="$t" -v c="$c" -v d="$d" 'BEGIN {
        wall = wall_ns / 1e9
        pcpu = pt / hz / wall * 100; bcpu = bt / hz / wall * 100
        mbusy = (mt1 > mt0) ? (mb1 - mb0) / (mt1 - mt0) * 100 : 0
        wcpu = wt / hz / wall * 100
        other = (mt1 > mt0) ? (mb1 - mb0 - pt - bt - wt) / (mt1 - mt0) * 100 : 0
        if (other < 0) other = 0
        pus = req > 0 ? pt / hz * 1e6 / req : 0; bus = req > 0 ? bt / hz * 1e6 / req : 0
        printf "%s\t%s\t%s\t%.0f\t%.1f\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%s\t%s\t%s\n",
          name, mode, rep, rps, mean, p50, p90, p99, max, req, serr, nerr, pcpu, bcpu, mbusy, pus, bus, wcpu, other, t, c, d
      }' >>"$TSV"
  log "$(printf '%-22s %-4s rep%s  %8.0f req/s  mean %7.0f us  p99 %7d us  errors %d/%d  other CPU %s%%' "$name" "$mode" "$rep" "$rps" "$mean_us" "$p99_us" $((err_connect + err_read + err_write + err_timeout)) "$err_status" "$(tail -1 "$TSV" | cut -f19)")"
}

# bench_target NAME URL [PGIDS] [REP] [WRK_ENV]: the unit of measurement.
# Throughput run (THREADS x CONNS) and a single-connection latency run (-t1 -c1).
bench_target() {
  local name=$1 url=$2 pgs=${3:-} rep=${4:-1} envs=${5:-}
  run_wrk "$name" "c$CONNS" "$rep" "$THREADS" "$CONNS" "$DURATION" "$url" "$pgs" "$envs"
  sleep 1
  run_wrk "$name" c1 "$rep" 1 1 "$LAT_DURATION" "$url" "$pgs" "$envs"
  sleep 1
}

# scenarios NAME BASE_URL "PGIDS" API_PORT REP: 1 MiB responses, a connection per request, route churn
scenarios() {
  local name=$1 base=$2 pgs=$3 api=$4 rep=$5
  run_wrk "$name" 1mb "$rep" "$THREADS" 16 "$DURATION" "$base/user/u1/bytes/1048576" "$pgs" ""
  sleep 1
  [ "$ONLY_LARGE" != 1 ] || return 0
  run_wrk "$name" close "$rep" "$THREADS" "$CONNS" "$DURATION" "$base$TEST_PATH" "$pgs" "" "-H Connection:close"
  sleep 2   # let TIME_WAIT sockets from the close run not crowd the next one
  if [ -n "$api" ]; then
    "${NICE[@]}" node "$HERE/routes.js" --api "http://$IP:$api" --token "$TOKEN" --churn "$CHURN_RATE" \
      --seconds "${DURATION%s}" --prefix /churn/c --target "http://$IP:$P_BACKEND" \
      >"$OUTDIR/churn.$name.r$rep.json" 2>"$OUTDIR/logs/churn.$name.r$rep.err" &
    local churn_pid=$!
    run_wrk "$name" churn "$rep" "$THREADS" "$CONNS" "$DURATION" "$base$TEST_PATH" "$pgs" ""
    wait "$churn_pid" || log "churn client failed for $name (see logs)"
    sleep 1
  fi
}

ws_bench() { # NAME URL REP
  "${NICE[@]}" node "$HERE/ws_bench.js" --url "$2" --conns "$WS_CONNS" --conc "$WS_CONC" --rtt "$WS_RTT" \
    >"$OUTDIR/ws.$1.r$3.json" 2>"$OUTDIR/logs/ws.$1.r$3.err" || { log "ws bench failed for $1 (see logs)"; rm -f "$OUTDIR/ws.$1.r$3.json"; return 0; }
  log "ws $1 rep$3: $(node -e 'const j=require(process.argv[1]); console.log("open "+j.conns+" in "+j.open.total_ms+" ms (failed "+j.open.failed+"), echo p50 "+j.echo_seq.p50_ms+" ms p99 "+j.echo_seq.p99_ms+" ms, burst all "+j.echo_burst.all_done_ms+" ms")' "$OUTDIR/ws.$1.r$3.json")"
  sleep 1
}

# busy % of the whole machine (2 cores = 100) over $1 seconds
machine_busy_pct() {
  local a b; a=$(machine_jiffies); sleep "$1"; b=$(machine_jiffies)
  awk -v a0="${a% *}" -v t0="${a#* }" -v a1="${b% *}" -v t1="${b#* }" 'BEGIN { printf "%.0f", (t1 > t0) ? (a1 - a0) / (t1 - t0) * 100 : 0 }'
}
# The machine may be shared: wait (bounded) for other load to calm down, and record it.
quiet_check() {
  local waited=0 busy
  busy=$(machine_busy_pct 3)
  while [ "$busy" -gt "$QUIET_MAX" ] && [ "$waited" -lt "$QUIET_WAIT" ]; do
    log "machine is ${busy}% busy before start (other users' processes); waiting (max ${QUIET_WAIT}s) ..."
    sleep 7; waited=$((waited + 10))
    busy=$(machine_busy_pct 3)
  done
  [ "$busy" -le "$QUIET_MAX" ] || log "WARNING: machine still ${busy}% busy from other processes; results will be depressed (see other_cpu_pct)"
  echo "background load before start: ${busy}% of machine (after waiting ${waited}s)" >>"$OUTDIR/env.txt"
  ps -eo pid,pcpu,etimes,args --sort=-pcpu | head -8 >"$OUTDIR/top-before.txt"
}

# ---------------------------------------------------------------- setup
command -v wrk >/dev/null || die "wrk not installed (apt-get install -y wrk)"
command -v node >/dev/null || die "node not found"
[ -f "$CHP_BIN" ] || [ "$SKIP_CHP" = 1 ] || die "configurable-http-proxy not installed: (cd $HERE && npm install)"
[ "$SKIP_NGINX" = 1 ] || command -v nginx >/dev/null || die "nginx not installed (apt-get install -y nginx-light) or set SKIP_NGINX=1"

{
  echo "date: $(date -Is)"
  echo "kernel: $(uname -r)  cpus: $(nproc)  mem: $(awk '/MemTotal/ {print $2" kB"}' /proc/meminfo)"
  echo "node: $(node --version)"
  echo "wrk: $(wrk -v 2>&1 | head -1)"
  [ "$SKIP_NGINX" = 1 ] || echo "nginx: $(nginx -v 2>&1)"
  echo "configurable-http-proxy: $(node -p 'require(process.argv[1]+"/node_modules/configurable-http-proxy/package.json").version' "$HERE" 2>/dev/null)"
  echo "http-proxy-3: $(node -p 'require(process.argv[1]+"/node_modules/http-proxy-3/package.json").version' "$HERE" 2>/dev/null)"
  echo "ws: $(node -p 'require(process.argv[1]+"/node_modules/ws/package.json").version' "$HERE" 2>/dev/null)"
  echo "knobs: DURATION=$DURATION LAT_DURATION=$LAT_DURATION THREADS=$THREADS CONNS=$CONNS REPS=$REPS ROUTES=$ROUTES ROUTE_CONC=$ROUTE_CONC WS_CONNS=$WS_CONNS WS_CONC=$WS_CONC CHP_LOG_LEVEL=$CHP_LOG_LEVEL BENCH_NICE=$BENCH_NICE"
  echo "scenarios: ROUTES_HUGE=$ROUTES_HUGE SKIP_100K=$SKIP_100K SKIP_SCENARIOS=$SKIP_SCENARIOS CHURN_RATE=$CHURN_RATE TRANSFER_MB=$TRANSFER_MB WS_HOLD=$WS_HOLD SKIP_HOLD=$SKIP_HOLD fd limit: $(ulimit -n)"
  echo "PROXY_CMD: ${PROXY_CMD:-<unset>} PROXY_ARGS: ${PROXY_ARGS:-}"
  [ -z "$PROXY2_CMD" ] || echo "PROXY2_CMD ($PROXY2_NAME): $PROXY2_CMD PROXY2_ARGS: $PROXY2_ARGS"
} >"$OUTDIR/env.txt"
quiet_check
cat "$OUTDIR/env.txt" >&2

for p in $P_BACKEND $P_BACKEND_DEF $P_WSBACKEND; do port_busy "$p" && die "port $p already in use"; done
start_svc backend node "$HERE/backend.js" $P_BACKEND A
start_svc backend_def node "$HERE/backend.js" $P_BACKEND_DEF B
start_svc wsbackend node "$HERE/backend.js" $P_WSBACKEND W ws
wait_http $P_BACKEND "${PGID[backend]}"; wait_http $P_BACKEND_DEF "${PGID[backend_def]}"; wait_http $P_WSBACKEND "${PGID[wsbackend]}"
expect_body "http://$IP:$P_BACKEND$TEST_PATH" "ok A $TEST_PATH"
register direct "http://$IP:$P_BACKEND$TEST_PATH"
BASES_PRE=("direct|http://$IP:$P_BACKEND||")

if [ "$SKIP_NGINX" != 1 ]; then
  port_busy $P_NGINX && die "port $P_NGINX already in use"
  NGX="$RUNDIR/nginx"; mkdir -p "$NGX/tmp"
  # nginx workers run as an unprivileged user: they must reach the temp dir (large responses spill there)
  chmod a+rx "$RUNDIR" "$NGX"; chmod 1777 "$NGX/tmp"
  cat >"$NGX/nginx.conf" <<EOF
worker_processes auto;
worker_rlimit_nofile 20000;
daemon off;
pid $NGX/nginx.pid;
error_log $OUTDIR/logs/nginx-error.log warn;
events { worker_connections 16000; }
http {
  access_log off;
  client_max_body_size 0;   # the 100 MiB upload scenario (default 1m would answer 413)
  client_body_temp_path $NGX/tmp/body;
  proxy_temp_path $NGX/tmp/proxy;
  fastcgi_temp_path $NGX/tmp/fastcgi;
  uwsgi_temp_path $NGX/tmp/uwsgi;
  scgi_temp_path $NGX/tmp/scgi;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  upstream backend {
    server $IP:$P_BACKEND;
    keepalive 128;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }
  upstream wsbackend { server $IP:$P_WSBACKEND; }
  server {
    listen $IP:$P_NGINX reuseport;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
    location /user/w1/ {
      proxy_pass http://wsbackend;
      proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header Host \$host;
      proxy_read_timeout 3600s;
    }
  }
}
EOF
  cp "$NGX/nginx.conf" "$OUTDIR/nginx.conf"
  nginx -t -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/error.log" >"$OUTDIR/logs/nginx-t.log" 2>&1 || die "nginx -t failed: $(cat "$OUTDIR/logs/nginx-t.log")"
  t0=$(now_ms)
  start_svc nginx nginx -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/error.log"
  wait_http $P_NGINX "${PGID[nginx]}"
  printf '%s\t%s\t%s\n' nginx $(( $(now_ms) - t0 )) "$(pg_rss_kb "${PGID[nginx]}")" >>"$PROC_TSV.start"
  expect_body "http://$IP:$P_NGINX$TEST_PATH" "ok A $TEST_PATH"
  register nginx "http://$IP:$P_NGINX$TEST_PATH" "${PGID[nginx]}"
  BASES_PRE+=("nginx|http://$IP:$P_NGINX|${PGID[nginx]}|")
fi

BASES=()     # "name|base url|pgids|api port": the configs the scenarios run on
setup_chp_like() { # NAME PORT PORT10K PORT100K("" = none) CMD...
  local name=$1 port=$2 port10k=$3 port100k=$4; shift 4
  start_chp_like "$name" "$port" "$@"
  register "$name" "http://$IP:$port$TEST_PATH" "${PGID[$name]}"
  if [ "$SKIP_10K" != 1 ]; then
    start_chp_like "$name-10k" "$port10k" "$@"
    load_routes "$name-10k" $((port10k + 1))
    expect_body "http://$IP:$port10k$BIG_PATH" "ok A $BIG_PATH"
    register "$name-10k" "http://$IP:$port10k$BIG_PATH" "${PGID[$name-10k]}"
    [ "$SKIP_RAND" = 1 ] || register "$name-10k-rand" "http://$IP:$port10k/" "${PGID[$name-10k]}" "WRK_RANDOM_USERS=$ROUTES"
  fi
  if [ "$SKIP_100K" != 1 ] && [ -n "$port100k" ]; then
    start_chp_like "$name-100k" "$port100k" "$@"
    load_routes "$name-100k" $((port100k + 1)) "$ROUTES_HUGE" "$HUGE_CONC"
    expect_body "http://$IP:$port100k$HUGE_PATH" "ok A $HUGE_PATH"
    register "$name-100k" "http://$IP:$port100k$HUGE_PATH" "${PGID[$name-100k]}"
  fi
  BASES+=("$name|http://$IP:$port|${PGID[$name]}|$((port + 1))")
}

if [ "$SKIP_CHP" != 1 ]; then
  # shellcheck disable=SC2086
  setup_chp_like chp $P_CHP $P_CHP10K $P_CHP100K node "$CHP_BIN" --log-level "$CHP_LOG_LEVEL" $CHP_ARGS
fi
if [ "$SKIP_NODEMIN" != 1 ]; then
  setup_chp_like node-min $P_NODEMIN $P_NODEMIN10K "" node "$HERE/node-min-proxy.js"
fi
if [ -n "$PROXY_CMD" ]; then
  # word-split PROXY_CMD on purpose (e.g. "node dist/cli.js")
  # shellcheck disable=SC2086
  setup_chp_like "$PROXY_NAME" $P_PROXY $P_PROXY10K $P_PROXY100K $PROXY_CMD $PROXY_ARGS
fi
if [ -n "$PROXY2_CMD" ]; then
  # shellcheck disable=SC2086
  setup_chp_like "$PROXY2_NAME" $P_PROXY2 $P_PROXY2_10K $P_PROXY2_100K $PROXY2_CMD $PROXY2_ARGS
fi
if [ -n "$EXTRA_TARGETS" ]; then
  IFS=',' read -r -a _extra <<<"$EXTRA_TARGETS"
  for kv in "${_extra[@]}"; do register "${kv%%=*}" "${kv#*=}"; done
fi

# ---------------------------------------------------------------- warm-up + runs
log "warm-up (2s each) ..."
for entry in "${CONFIGS[@]}"; do
  IFS='|' read -r name url pgs envs <<<"$entry"
  # shellcheck disable=SC2086
  env $envs "${NICE[@]}" wrk -t"$THREADS" -c"$CONNS" -d2s -s "$HERE/wrk-report.lua" "$url" >"$OUTDIR/raw/$name.warmup.txt" 2>&1 || true
done

WS_TARGETS=()
if [ "$SKIP_WS" != 1 ]; then
  WS_TARGETS+=("direct|ws://$IP:$P_WSBACKEND/user/w1/ws|")
  [ "$SKIP_NGINX" = 1 ] || WS_TARGETS+=("nginx|ws://$IP:$P_NGINX/user/w1/ws|${PGID[nginx]}")
  [ "$SKIP_CHP" = 1 ] || WS_TARGETS+=("chp|ws://$IP:$P_CHP/user/w1/ws|${PGID[chp]}")
  [ "$SKIP_NODEMIN" = 1 ] || WS_TARGETS+=("node-min|ws://$IP:$P_NODEMIN/user/w1/ws|${PGID[node-min]}")
  [ -z "$PROXY_CMD" ] || WS_TARGETS+=("$PROXY_NAME|ws://$IP:$P_PROXY/user/w1/ws|${PGID[$PROXY_NAME]}")
  [ -z "$PROXY2_CMD" ] || WS_TARGETS+=("$PROXY2_NAME|ws://$IP:$P_PROXY2/user/w1/ws|${PGID[$PROXY2_NAME]}")
fi

for ((rep = 1; rep <= REPS; rep++)); do
  log "=== rep $rep/$REPS ==="
  for entry in "${CONFIGS[@]}"; do
    [ "$ONLY_LARGE" != 1 ] || break
    IFS='|' read -r name url pgs envs <<<"$entry"
    bench_target "$name" "$url" "$pgs" "$rep" "$envs"
  done
  for entry in "${WS_TARGETS[@]}"; do
    [ "$ONLY_LARGE" != 1 ] || break
    IFS='|' read -r name url _ <<<"$entry"
    ws_bench "$name" "$url" "$rep"
  done
  if [ "$SKIP_SCENARIOS" != 1 ]; then
    for entry in "${BASES_PRE[@]}" "${BASES[@]}"; do
      IFS='|' read -r name base pgs api <<<"$entry"
      scenarios "$name" "$base" "$pgs" "$api" "$rep"
    done
  fi
done

if [ "$SKIP_SCENARIOS" != 1 ]; then
  for entry in "${BASES_PRE[@]}" "${BASES[@]}"; do
    IFS='|' read -r name base pgs _ <<<"$entry"
    "${NICE[@]}" node "$HERE/transfer.js" --base "$base/user/u1" --mb "$TRANSFER_MB" --pgid "${pgs:-0}" \
      >"$OUTDIR/transfer.$name.json" 2>"$OUTDIR/logs/transfer.$name.err" || { log "transfer failed for $name (see logs)"; rm -f "$OUTDIR/transfer.$name.json"; continue; }
    log "transfer $name: $(node -e 'const j=require(process.argv[1]); console.log("down "+j.download.mib_per_s+" MiB/s, up "+j.upload.mib_per_s+" MiB/s, RSS "+j.rss_start_kb+" -> peak +"+j.rss_growth_pct+"%")' "$OUTDIR/transfer.$name.json")"
    sleep 1
  done
fi
if [ "$SKIP_WS" != 1 ] && [ "$SKIP_HOLD" != 1 ]; then
  for entry in "${WS_TARGETS[@]}"; do
    IFS='|' read -r name url pg <<<"$entry"
    timeout 300 "${NICE[@]}" node "$HERE/ws_bench.js" --url "$url" --conns "$WS_HOLD" --conc 200 --rtt 500 --pgid "${pg:-0}" \
      >"$OUTDIR/wshold.$name.json" 2>"$OUTDIR/logs/wshold.$name.err" || { log "ws-hold failed for $name (see logs)"; rm -f "$OUTDIR/wshold.$name.json"; sleep 5; continue; }
    log "ws-hold $name: $(node -e 'const j=require(process.argv[1]); console.log("opened "+(j.conns-j.open.failed)+"/"+j.conns+", RSS +"+(j.rss ? Math.round((j.rss.open_idle_kb-j.rss.before_kb)/1024) : "-")+" MiB, echo p99 "+j.echo_seq.p99_ms+" ms")' "$OUTDIR/wshold.$name.json")"
    sleep 5   # TIME_WAIT and the proxies' own cleanup
  done
fi

# ---------------------------------------------------------------- wrap up
echo -e "name\tstartup_ms\trss_kb_start\trss_kb_end" >"$PROC_TSV"
while IFS=$'\t' read -r name startup rss; do
  printf '%s\t%s\t%s\t%s\n' "$name" "$startup" "$rss" "$(pg_rss_kb "${PGID[$name]}")" >>"$PROC_TSV"
done <"$PROC_TSV.start"
rm -f "$PROC_TSV.start"
for name in backend backend_def wsbackend; do
  printf '%s\t-\t-\t%s\n' "$name" "$(pg_rss_kb "${PGID[$name]}")" >>"$PROC_TSV"
done
# proxies must not have logged errors; keep their logs
node "$HERE/summarize.js" "$OUTDIR" >"$OUTDIR/summary.md"
case "$OUTDIR" in "$HERE/results/"*) ln -sfn "$(basename "$OUTDIR")" "$HERE/results/latest" ;; esac
cat "$OUTDIR/summary.md"
log "results: $OUTDIR (summary.md, wrk.tsv, routes.*.json, ws.*.json, raw/, logs/)"
