#!/usr/bin/env bash
# Idle websockets' memory, side by side and interleaved (issue 15: "10,000 idle websockets:
# <= 150 MB RSS above baseline"), without the rest of run.sh.
#
#   OUTDIR=bench/reference/ws-mem-X REPS=3 CONNS=10000 bash bench/ws-mem.sh \
#     "after|node dist/src/main.js" "before|node /path/to/old/dist/src/main.js" \
#     "node-min|node bench/node-min-proxy.js" "chp|node_modules/.bin/configurable-http-proxy"
#
# Every config is a CHP-compatible command (run.sh's PROXY_CMD contract: --ip/--port/--api-ip/
# --api-port/--default-target appended, CONFIGPROXY_AUTH_TOKEN read). Per rep, per config in
# order: start it in its own session, route /user/w1 to bench/backend.js in ws mode, run
# bench/ws_bench.js --conns CONNS --pgid (RSS of the whole process group before opening, with
# every websocket open and idle, after closing), stop it. One JSON line per run in
# OUTDIR/ws-mem.jsonl (plus the config name, rep and load average), a table on stdout.
# Knobs: REPS=3 CONNS=10000 CONC=200 RTT=200 PORT=18500 WS_BACKEND_PORT=18503
set -Eeuo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPS=${REPS:-3}
CONNS=${CONNS:-10000}
CONC=${CONC:-200}
RTT=${RTT:-200}
PORT=${PORT:-18500}
WSB=${WS_BACKEND_PORT:-18503}
IP=127.0.0.1
TOKEN=wsmem-bench-token
OUTDIR=${OUTDIR:-$HERE/results/ws-mem-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUTDIR/logs"
export CONFIGPROXY_AUTH_TOKEN=$TOKEN
STARTED=()
cleanup() { for g in "${STARTED[@]}"; do kill -- "-$g" 2>/dev/null || true; done; }
trap cleanup EXIT
die() { echo "ws-mem: $*" >&2; exit 1; }

wait_http() { # PORT PGID
  local i
  for ((i = 0; i < 400; i++)); do
    curl -s -o /dev/null -m 1 "http://$IP:$1/" && return 0
    kill -0 -- "-$2" 2>/dev/null || die "process group $2 died before port $1 answered"
    sleep 0.05
  done
  die "port $1 did not answer in 20 s"
}

setsid node "$HERE/backend.js" "$WSB" W ws >"$OUTDIR/logs/backend.log" 2>&1 </dev/null &
BACKEND=$!
STARTED+=("$BACKEND")
wait_http "$WSB" "$BACKEND"
{ echo "started $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg) node $(node -v) REPS=$REPS CONNS=$CONNS CONC=$CONC"
  for c in "$@"; do echo "config: $c"; done; } | tee "$OUTDIR/meta.txt"

for ((rep = 1; rep <= REPS; rep++)); do
  for c in "$@"; do
    name=${c%%|*}
    cmd=${c#*|}
    # shellcheck disable=SC2086 # word-split the command on purpose
    setsid $cmd --ip "$IP" --port "$PORT" --api-ip "$IP" --api-port $((PORT + 1)) \
      --default-target "http://$IP:$WSB" >"$OUTDIR/logs/$name.$rep.log" 2>&1 </dev/null &
    pg=$!
    STARTED+=("$pg")
    wait_http "$PORT" "$pg"
    wait_http $((PORT + 1)) "$pg"
    code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 -X POST -H "Authorization: token $TOKEN" \
      -H 'Content-Type: application/json' -d "{\"target\": \"http://$IP:$WSB\"}" "http://$IP:$((PORT + 1))/api/routes/user/w1")
    [ "$code" = 201 ] || [ "$code" = 200 ] || die "$name: POST route -> $code"
    load=$(cut -d' ' -f1 /proc/loadavg)
    out=$(timeout 300 node "$HERE/ws_bench.js" --url "ws://$IP:$PORT/user/w1/ws" --conns "$CONNS" --conc "$CONC" \
      --rtt "$RTT" --pgid "$pg" 2>"$OUTDIR/logs/$name.$rep.bench.err") || out='{"error":"ws_bench failed"}'
    echo "$out" | node -e '
      const [name, rep, load, load2] = process.argv.slice(1);
      const j = JSON.parse(require("fs").readFileSync(0, "utf8"));
      Object.assign(j, { config: name, rep: +rep, load_start: +load, load_end: +load2 });
      console.log(JSON.stringify(j));' "$name" "$rep" "$load" "$(cut -d' ' -f1 /proc/loadavg)" >>"$OUTDIR/ws-mem.jsonl"
    kill -- "-$pg" 2>/dev/null || true
    for ((i = 0; i < 200; i++)); do kill -0 -- "-$pg" 2>/dev/null || break; sleep 0.05; done
  done
done
echo "finished $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUTDIR/meta.txt"
node -e '
  const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => JSON.parse(l));
  console.log("config\trep\topened\tfailed\tbefore MiB\tidle MiB\tgrowth MiB\tKiB/ws\tafter close MiB\tload");
  for (const j of lines) {
    const r = j.rss || {}, m = (k) => (k / 1024).toFixed(1);
    console.log([j.config, j.rep, j.conns - ((j.open || {}).failed || 0), (j.open || {}).failed, m(r.before_kb), m(r.open_idle_kb),
      m(r.open_idle_kb - r.before_kb), r.per_conn_kb, m(r.after_close_kb), j.load_start + "/" + j.load_end].join("\t"));
  }' "$OUTDIR/ws-mem.jsonl" | tee "$OUTDIR/summary.tsv"
