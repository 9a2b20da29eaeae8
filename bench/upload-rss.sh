#!/usr/bin/env bash
# RSS and rate of 100 MiB transfers (bench/transfer.js: one download then one upload, RSS of the
# proxy's process group sampled every 50 ms) through Switchyard variants side by side, rounds
# interleaved (variant order rotated each round), nginx as the rate reference.
#   bash bench/upload-rss.sh            # from the repository root, after npm run build
# Knobs (env): ROUNDS=6 TRANSFER_MB=100 WARM_MB=100 OUTDIR=bench/results/upload-rss-<timestamp>
#   VARIANTS="name|env|args;..." (default below: reused vs Node's own client reads
#   (SWITCHYARD_CLIENT_READS=node), each with --worker-mode threads and processes) SKIP_NGINX=0
# Each variant runs in its own session (its pgid is its pid: transfer.js sums the group's RSS).
# One warm-up transfer per variant first (not counted): a proxy's RSS grows on its first large
# transfers (heap, free lists) and run.sh measures after a whole benchmark run.
# Ports 127.0.0.1:18700-18799. Every process started here is killed on exit.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
ROUNDS=${ROUNDS:-6}
TRANSFER_MB=${TRANSFER_MB:-100}
WARM_MB=${WARM_MB:-100}
SKIP_NGINX=${SKIP_NGINX:-0}
OUTDIR=${OUTDIR:-$ROOT/bench/results/upload-rss-$(date -u +%Y%m%d-%H%M%S)}
VARIANTS=${VARIANTS:-"reused-threads||--worker-mode threads;node-threads|SWITCHYARD_CLIENT_READS=node|--worker-mode threads;reused-processes||--worker-mode processes;node-processes|SWITCHYARD_CLIENT_READS=node|--worker-mode processes"}
IP=127.0.0.1
P_BACKEND=18700
P_NGINX=18701
TOKEN=upload-rss
mkdir -p "$OUTDIR/logs"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -- "-$p" 2>/dev/null || true; done
  [ -z "${NGX:-}" ] || rm -rf "$NGX"
}
trap cleanup EXIT

wait_port() { # PORT
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/$IP/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "port $1 did not open" >&2
  return 1
}

echo "node $(node --version), load average $(cut -d' ' -f1-3 /proc/loadavg) (start)" | tee "$OUTDIR/env.txt"
setsid node "$HERE/backend.js" $P_BACKEND A >"$OUTDIR/logs/backend.log" 2>&1 &
PIDS+=($!)
wait_port $P_BACKEND

NAMES=()
declare -A PG BASE
port=18710
IFS=';' read -r -a _variants <<<"$VARIANTS"
for v in "${_variants[@]}"; do
  IFS='|' read -r name envs args <<<"$v"
  # shellcheck disable=SC2086
  CONFIGPROXY_AUTH_TOKEN=$TOKEN setsid env $envs node "$ROOT/dist/src/main.js" --ip $IP --port $port --api-ip $IP --api-port $((port + 1)) --log-level debug $args \
    >"$OUTDIR/logs/$name.log" 2>&1 &
  PG[$name]=$!
  PIDS+=($!)
  wait_port $((port + 1))
  curl -sf -X POST -H "Authorization: token $TOKEN" -d "{\"target\":\"http://$IP:$P_BACKEND\"}" "http://$IP:$((port + 1))/api/routes/user/u1" >/dev/null
  BASE[$name]="http://$IP:$port/user/u1"
  NAMES+=("$name")
  port=$((port + 10))
done

if [ "$SKIP_NGINX" != 1 ]; then
  NGX=$(mktemp -d /tmp/upload-rss-nginx.XXXXXX)
  mkdir -p "$NGX/tmp"; chmod a+rx "$NGX"; chmod 1777 "$NGX/tmp"
  cat >"$NGX/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $NGX/nginx.pid;
error_log $NGX/error.log warn;
events { worker_connections 4000; }
http {
  access_log off;
  client_max_body_size 0;
  client_body_temp_path $NGX/tmp/body;
  proxy_temp_path $NGX/tmp/proxy;
  fastcgi_temp_path $NGX/tmp/fastcgi;
  uwsgi_temp_path $NGX/tmp/uwsgi;
  scgi_temp_path $NGX/tmp/scgi;
  upstream backend { server $IP:$P_BACKEND; keepalive 16; }
  server {
    listen $IP:$P_NGINX;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host \$host; }
  }
}
EOF
  cp "$NGX/nginx.conf" "$OUTDIR/nginx.conf"
  setsid nginx -p "$NGX" -c "$NGX/nginx.conf" -e "$NGX/error.log" >"$OUTDIR/logs/nginx.log" 2>&1 &
  PG[nginx]=$!
  PIDS+=($!)
  wait_port $P_NGINX
  BASE[nginx]="http://$IP:$P_NGINX/user/u1"
  NAMES+=(nginx)
fi

for name in "${NAMES[@]}"; do
  grep -h "client sockets" "$OUTDIR/logs/$name.log" 2>/dev/null | sed "s/^/$name: /" | head -1 || true
  node "$HERE/transfer.js" --base "${BASE[$name]}" --mb "$WARM_MB" --pgid "${PG[$name]}" >"$OUTDIR/warmup.$name.json"
done | tee "$OUTDIR/modes.txt"

n=${#NAMES[@]}
for ((r = 1; r <= ROUNDS; r++)); do
  for ((k = 0; k < n; k++)); do
    name=${NAMES[$(((k + r) % n))]}
    node "$HERE/transfer.js" --base "${BASE[$name]}" --mb "$TRANSFER_MB" --pgid "${PG[$name]}" >"$OUTDIR/transfer.$name.r$r.json"
    echo "round $r $name $(cat "$OUTDIR/transfer.$name.r$r.json")"
  done
done | tee "$OUTDIR/rounds.txt"
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) (end)" | tee -a "$OUTDIR/env.txt"

# Summary: per variant, medians over the rounds; upload growth = upload peak vs the RSS before
# the round's transfers (as run.sh's rss_growth_pct, for the upload alone), download likewise.
node -e '
const fs = require("fs"); const dir = process.argv[1];
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const by = {};
for (const f of fs.readdirSync(dir).filter((f) => /^transfer\..*\.r\d+\.json$/.test(f))) {
  const name = f.replace(/^transfer\./, "").replace(/\.r\d+\.json$/, "");
  (by[name] ??= []).push(JSON.parse(fs.readFileSync(dir + "/" + f, "utf8")));
}
const pct = (peak, start) => (start ? (peak / start - 1) * 100 : 0);
console.log("| variant | rounds | upload MiB/s (median) | upload RSS peak vs start: median / max | download MiB/s | download RSS: median / max | RSS at start (median, MiB) |");
console.log("|---|---:|---:|---:|---:|---:|---:|");
for (const [name, rs] of Object.entries(by)) {
  const up = rs.map((r) => pct(r.upload.rss_peak_kb, r.rss_start_kb));
  const down = rs.map((r) => pct(r.download.rss_peak_kb, r.rss_start_kb));
  const f = (x) => (x >= 0 ? "+" : "") + x.toFixed(1) + "%";
  console.log(`| ${name} | ${rs.length} | ${med(rs.map((r) => r.upload.mib_per_s))} | ${f(med(up))} / ${f(Math.max(...up))} | ${med(rs.map((r) => r.download.mib_per_s))} | ${f(med(down))} / ${f(Math.max(...down))} | ${(med(rs.map((r) => r.rss_start_kb)) / 1024).toFixed(1)} |`);
}' "$OUTDIR" | tee "$OUTDIR/summary.md"
