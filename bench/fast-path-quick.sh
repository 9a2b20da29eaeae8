#!/usr/bin/env bash
# Quick side-by-side of the data plane with and without the fast path (--workers 1, c64 keep-alive,
# one route, wrk 4 s each; loopback ports 18611-18613). Proxy CPU per request from /proc/<pid>/stat
# (the one proxy process). Not a substitute for bench/run.sh (nginx, CHP, reps): a smoke check.
set -u
cd /work/wt/fastpath
node bench/backend.js 18611 A & B=$!
sleep 0.5
for mode in fast nofast; do
  extra=""; [ $mode = nofast ] && extra="--no-fast-path"
  CONFIGPROXY_AUTH_TOKEN=t node dist/src/main.js --workers 1 --ip 127.0.0.1 --port 18612 --api-ip 127.0.0.1 --api-port 18613 --log-level warn $extra >/dev/null 2>&1 & P=$!
  for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:18613/api/routes -H 'Authorization: token t' && break; sleep 0.1; done
  curl -s -X POST -H 'Authorization: token t' -d '{"target":"http://127.0.0.1:18611"}' http://127.0.0.1:18613/api/routes/user/u1 >/dev/null
  wrk -t2 -c64 -d2s http://127.0.0.1:18612/user/u1/api >/dev/null 2>&1
  t0=$(awk '{print $14+$15}' /proc/$P/stat)
  out=$(wrk -t2 -c64 -d4s http://127.0.0.1:18612/user/u1/api 2>&1)
  t1=$(awk '{print $14+$15}' /proc/$P/stat)
  reqs=$(echo "$out" | awk '/requests in/{print $1}')
  rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
  echo "$mode req/s=$rps requests=$reqs cpu_us_per_req=$(( (t1-t0)*10000/reqs )) non2xx=$(echo "$out" | awk "/Non-2xx/{print \$NF}")"
  kill $P; wait $P 2>/dev/null
done
out=$(wrk -t2 -c64 -d4s http://127.0.0.1:18611/user/u1/api 2>&1); echo "direct req/s=$(echo "$out" | awk '/Requests\/sec/{print $2}')"
kill $B
