set -e
cd /work/wt/uploadrss
OUT=bench/reference/upload-rss-20261201/small-c64
echo "node $(node --version), load $(cut -d' ' -f1-3 /proc/loadavg) (start)" > $OUT/out.txt
setsid node bench/backend.js 18790 A > /dev/null 2>&1 & B=$!
CONFIGPROXY_AUTH_TOKEN=t setsid node dist/src/main.js --workers 1 --ip 127.0.0.1 --port 18791 --api-ip 127.0.0.1 --api-port 18792 > /dev/null 2>&1 & R=$!
CONFIGPROXY_AUTH_TOKEN=t SWITCHYARD_CLIENT_READS=node setsid node dist/src/main.js --workers 1 --ip 127.0.0.1 --port 18793 --api-ip 127.0.0.1 --api-port 18794 > /dev/null 2>&1 & N=$!
trap "kill -- -$B -$R -$N 2>/dev/null" EXIT
sleep 3
for p in 18792 18794; do curl -sf -X POST -H "Authorization: token t" -d '{"target":"http://127.0.0.1:18790"}' http://127.0.0.1:$p/api/routes/user/u1 > /dev/null; done
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
wrk -t2 -c64 -d2s http://127.0.0.1:18791/user/u1/api > /dev/null; wrk -t2 -c64 -d2s http://127.0.0.1:18793/user/u1/api > /dev/null
for r in 1 2 3 4; do
  for v in reused:$R:18791 node:$N:18793; do
    IFS=: read name pid port <<< "$v"
    c0=$(cpu $pid); line=$(wrk -t2 -c64 -d4s http://127.0.0.1:$port/user/u1/api | grep "Requests/sec"); c1=$(cpu $pid)
    rps=$(echo $line | awk '{print $2}')
    echo "round $r $name req/s $rps cpu_us_per_req $(node -e "console.log(((($c1-$c0)*10000)/($rps*4)).toFixed(1))")" | tee -a $OUT/out.txt
  done
done
echo "load $(cut -d' ' -f1-3 /proc/loadavg) (end)" >> $OUT/out.txt
