#!/usr/bin/env node
// Where the c64 tail comes from: runs proxies side by side (each with its own backend), measured in
// interleaved turns of wrk -t2 -c$CONNS keep-alive on one route, and records per turn: wrk's
// latency percentiles (p50 ... p99.9, max), the proxy's CPU per request, its threads' run-queue
// wait (/proc/<pid>/task/<tid>/schedstat), and, for Switchyard sides with probe: true, what
// bench/p99/preload.mjs records in each data-plane worker (GC pauses, event-loop delay, client
// connections per worker).
//
//   flock /work/wt/bench.lock env SIDES='[{"name":"a","dist":"/path/dist","probe":true},
//     {"name":"w1","dist":"/path/dist","args":["--workers","1"]},{"name":"nginx","kind":"nginx"}]' \
//     ROUNDS=3 DUR=5 OUT=bench/reference/p99-20261201/x bash scripts/with-node.sh 24 node bench/p99/probe.mjs
//
// A side: {name, kind: "swy" (default) | "nginx" | "chp" | "direct" (wrk to the backend), dist, args: [], env: {}, probe: bool,
//   nice: the proxy's nice and autogroup nice (default BENCH_NICE, -10, as everything else here)}.
// Loopback only, ports 18700 + 10 * side index (+0 backend, +1 proxy, +2 API).
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const HERE = path.dirname(new URL(import.meta.url).pathname);
const BENCH = path.resolve(HERE, '..');
const SIDES = JSON.parse(process.env.SIDES ?? '[]');
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const DUR = Number(process.env.DUR ?? 5);
const CONNS = Number(process.env.CONNS ?? 64);
const OUT = path.resolve(process.env.OUT ?? 'p99-probe-out');
const NICE = process.env.BENCH_NICE ?? '-10';
const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());
fs.mkdirSync(OUT, { recursive: true });
const turns = path.join(OUT, 'turns.jsonl');
const say = (line) => { console.log(line); fs.appendFileSync(path.join(OUT, 'log.txt'), line + '\n'); };
const started = [];
let tmp;

function cleanup() {
  for (const pid of started) { try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ } }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));
try { fs.writeFileSync('/proc/self/autogroup', NICE); } catch { /* not allowed */ }

function svc(cmd, args, env = {}, nice = NICE) {
  const p = spawn('nice', ['-n', String(nice), cmd, ...args], { detached: true, stdio: 'ignore', env: { ...process.env, ...env } });
  started.push(p.pid);
  try { fs.writeFileSync(`/proc/${p.pid}/autogroup`, String(nice)); } catch { /* not allowed */ }
  return p.pid;
}
async function waitHttp(url) {
  const end = Date.now() + 20000;
  while (Date.now() < end) {
    try { const r = await fetch(url, { headers: { authorization: 'token t' } }); await r.arrayBuffer(); return; } catch { await sleep(100); }
  }
  throw new Error(`no answer from ${url}`);
}
function pgPids(pgid) {
  return execFileSync('ps', ['-e', '-o', 'pid=,pgid=']).toString().trim().split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number)).filter(([, g]) => g === pgid).map(([p]) => p);
}
/** utime+stime ticks, and per thread [run ns, run-queue wait ns, timeslices], of a process group. */
function sched(pgid) {
  let ticks = 0;
  const threads = {};
  for (const pid of pgPids(pgid)) {
    try {
      const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(st[11]) + Number(st[12]);
      for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
        const [run, wait, slices] = fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(' ').map(Number);
        const comm = fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
        threads[tid] = { comm, run, wait, slices };
      }
    } catch { /* exited */ }
  }
  return { ticks, threads };
}

async function startSide(s, i) {
  const base = 18700 + 10 * i;
  s.port = base + 1;
  if (s.kind === 'direct') {
    s.port = base;
    s.pgid = svc('node', [path.join(BENCH, 'backend.js'), String(base), 'A']);
    await waitHttp(`http://127.0.0.1:${s.port}/user/u1/api`);
    return;
  }
  if (s.kind === 'nginx') {
    svc('node', [path.join(BENCH, 'backend.js'), String(base), 'A']);
    const dir = fs.mkdtempSync(path.join(tmp, 'nginx-'));
    fs.writeFileSync(path.join(dir, 'nginx.conf'), `worker_processes auto;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:${base}; keepalive 128; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:${s.port} reuseport;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
}
`);
    s.pgid = svc('nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')]);
    await waitHttp(`http://127.0.0.1:${s.port}/user/u1/api`);
    return;
  }
  svc('node', [path.join(BENCH, 'backend.js'), String(base), 'A']);
  const env = { CONFIGPROXY_AUTH_TOKEN: 't', ...(s.env ?? {}) };
  if (s.probe) {
    s.stats = fs.mkdtempSync(path.join(tmp, `${s.name}-`));
    env.P99_STATS = s.stats;
    env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --import=${path.join(HERE, 'preload.mjs')}`.trim();
  }
  const main = s.kind === 'chp'
    ? [path.join(BENCH, 'node_modules/configurable-http-proxy/bin/configurable-http-proxy')]
    : [path.join(s.dist, 'src/main.js')];
  const extra = s.kind === 'chp' ? ['--log-level', 'warn'] : ['--log-level', 'warn'];
  s.pgid = svc('node', [...(s.nodeArgs ?? []), ...main, ...(s.args ?? []), '--ip', '127.0.0.1', '--port', String(s.port),
    '--api-ip', '127.0.0.1', '--api-port', String(base + 2), ...extra], env, s.nice ?? NICE);
  await waitHttp(`http://127.0.0.1:${base + 2}/api/routes`);
  const r = await fetch(`http://127.0.0.1:${base + 2}/api/routes/user/u1`, {
    method: 'POST', headers: { authorization: 'token t' }, body: JSON.stringify({ target: `http://127.0.0.1:${base}` }),
  });
  if (r.status >= 300) throw new Error(`route: ${r.status}`);
  await waitHttp(`http://127.0.0.1:${s.port}/user/u1/api`);
}

/**
 * PERF_SCHED="side ...": in round 1 of those sides, `perf sched record` of the whole machine for
 * 2 s from 1 s into the turn; per task name (comm): wake-ups and their scheduling delay (wake-up
 * to running, perf sched timehist's "sch delay") percentiles in ms; the side's own threads
 * (its process group at the turn's start) are named proxy:<comm>.
 */
const PERF_SCHED = (process.env.PERF_SCHED ?? '').split(' ').filter(Boolean);
async function perfSched(mine) {
  const file = path.join(tmp, 'perf-sched.data');
  // Spawned before wrk starts (wrk runs synchronously): the shell waits 1 s, then records 2 s.
  const p = spawn('bash', ['-c', `sleep 1; exec perf sched record -a -o ${file} -- sleep 2`], { stdio: 'ignore' });
  await new Promise((res) => p.once('exit', res));
  const out = execFileSync('perf', ['sched', 'timehist', '-i', file], { maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  fs.rmSync(file, { force: true });
  const by = {};
  for (const line of out.split('\n')) {
    const m = /^\s*[\d.]+\s+\[\d+\]\s+(.+?)\[(\d+)(?:\/\d+)?\]\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)/.exec(line);
    if (!m) continue;
    const who = mine.has(m[2]) ? `proxy:${m[1].trim()}` : m[1].trim();
    (by[who] ??= []).push(Number(m[4]));
  }
  const q = (a, p) => a[Math.min(a.length - 1, Math.floor((p / 100) * a.length))];
  return Object.entries(by).filter(([, a]) => a.length > 1000).map(([comm, a]) => {
    a.sort((x, y) => x - y);
    const late = (ms) => +((a.filter((x) => x >= ms).length / a.length) * 100).toFixed(3);
    return { comm, n: a.length, p50: q(a, 50), p90: q(a, 90), p99: q(a, 99), p999: q(a, 99.9), max: a.at(-1), pctOver1ms: late(1), pctOver2ms: late(2) };
  });
}

function wrk(port, dur) {
  const out = execFileSync('wrk', ['-t2', `-c${CONNS}`, `-d${dur}s`, '-s', path.join(HERE, 'pct.lua'), `http://127.0.0.1:${port}/user/u1/api`]).toString();
  const m = /P99RESULT (.*)/.exec(out);
  if (!m) throw new Error(out);
  return Object.fromEntries(m[1].split(' ').map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]));
}

/**
 * The preload's short windows [end time, max event-loop delay, on-CPU ms, run-queue wait ms]: how
 * many had a loop stall of >= STALL_MS, how many of those held a GC start, and the stalled windows'
 * mean on-CPU and wait time against all windows' (a stall with little CPU and much wait: the
 * thread waited for a core).
 */
function windows(ws, gcs) {
  const STALL = Number(process.env.STALL_MS ?? 4);
  if (ws.length === 0) return {};
  const len = ws.length > 1 ? (ws.at(-1)[0] - ws[0][0]) / (ws.length - 1) : 100;
  const hasGc = ([t]) => gcs.some(([g]) => g > t - len && g <= t);
  const stalled = ws.filter((w) => w[1] >= STALL);
  const mean = (a, i) => +(a.reduce((x, w) => x + w[i], 0) / (a.length || 1)).toFixed(1);
  return {
    wins: ws.length, stalls: stalled.length, stallsWithGc: stalled.filter(hasGc).length,
    winsWithGc: ws.filter(hasGc).length, cpuAll: mean(ws, 2), waitAll: mean(ws, 3), cpuStalled: mean(stalled, 2), waitStalled: mean(stalled, 3),
    eldWinP50: [...ws].sort((a, b) => a[1] - b[1])[Math.floor(ws.length / 2)][1],
    // The long ones (>= LONG_STALL_MS, default 8) as they were: [end time, delay, on-CPU, wait, GC in it].
    longStalls: ws.filter((w) => w[1] >= Number(process.env.LONG_STALL_MS ?? 8)).map((w) => [...w, hasGc(w)]),
  };
}

/** What the preload recorded in [t0, t1]: per worker (file) GC, event-loop delay, connections. */
function probeStats(s, t0, t1) {
  const workers = [];
  for (const f of fs.readdirSync(s.stats)) {
    const lines = fs.readFileSync(path.join(s.stats, f), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const gcs = lines.flatMap((l) => l.gc).filter(([t]) => t >= t0 && t <= t1);
    const win = lines.filter((l) => l.t > t0 + 1000 && l.t <= t1);
    if (win.length === 0) continue;
    const scav = gcs.filter(([, k]) => k === 1).map(([, , d]) => d);
    const other = gcs.filter(([, k]) => k !== 1).map(([, k, d]) => [k, d]);
    const sum = (a) => a.reduce((x, y) => x + y, 0);
    workers.push({
      file: f, live: Math.max(...win.map((l) => l.live)), elu: +(sum(win.map((l) => l.elu)) / win.length).toFixed(3),
      eldP99max: Math.max(...win.map((l) => l.eld.p99)), eldMax: Math.max(...win.map((l) => l.eld.max)),
      eldMean: +(sum(win.map((l) => l.eld.mean)) / win.length).toFixed(3),
      scavPerS: +(scav.length / ((t1 - t0) / 1000)).toFixed(1), scavMeanMs: +(sum(scav) / (scav.length || 1)).toFixed(3),
      scavMaxMs: scav.length ? Math.max(...scav) : 0, scavMs: +sum(scav).toFixed(1), otherGc: other,
      scavs: gcs.filter(([, k]) => k === 1).map(([t, , d]) => [t - t0, d]),
      ...windows(lines.flatMap((l) => l.wins ?? []).filter(([t]) => t > t0 + 500 && t <= t1), gcs),
    });
  }
  return workers;
}

tmp = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'p99-probe-'));
for (const [i, s] of SIDES.entries()) await startSide(s, i);
const load = () => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
say(`node ${process.version}; sides ${SIDES.map((s) => s.name).join(' ')}; load ${load()}`);
for (const s of SIDES) wrk(s.port, 2);
const rows = [];
for (let r = 1; r <= ROUNDS; r++) {
  for (const s of SIDES) {
    const a = sched(s.pgid);
    const t0 = Date.now();
    const perf = r === 1 && PERF_SCHED.includes(s.name) ? perfSched(new Set(Object.keys(a.threads))) : undefined;
    const w = wrk(s.port, DUR);
    const t1 = Date.now();
    const b = sched(s.pgid);
    const threads = Object.entries(b.threads).map(([tid, x]) => {
      const y = a.threads[tid] ?? { run: 0, wait: 0, slices: 0 };
      return { tid, comm: x.comm, runMs: (x.run - y.run) / 1e6, waitMs: (x.wait - y.wait) / 1e6, slices: x.slices - y.slices };
    }).filter((t) => t.runMs > 50).sort((x, y) => y.runMs - x.runMs);
    const row = {
      round: r, side: s.name, ...w, usPerReq: +(((b.ticks - a.ticks) / TICK) * 1e6 / w.requests).toFixed(2),
      threads: threads.map((t) => ({ ...t, runMs: Math.round(t.runMs), waitMs: Math.round(t.waitMs), waitPerSliceUs: Math.round((t.waitMs * 1000) / (t.slices || 1)) })),
      workers: s.probe ? probeStats(s, t0, t1) : undefined,
      schedDelay: perf ? await perf : undefined,
    };
    rows.push(row);
    fs.appendFileSync(turns, JSON.stringify(row) + '\n');
    const wk = row.workers?.map((x) => `live ${x.live} scav/s ${x.scavPerS} mean ${x.scavMeanMs} max ${x.scavMaxMs} eld max ${x.eldMax.toFixed(1)} stalls ${x.stalls}/${x.wins} gc ${x.stallsWithGc} (all ${x.winsWithGc}) cpu ${x.cpuStalled}/${x.cpuAll} wait ${x.waitStalled}/${x.waitAll}`).join(' | ') ?? '';
    const top = row.threads.slice(0, 4).map((t) => `${t.comm}:${t.runMs}/${t.waitMs}ms/${t.slices}`).join(' ');
    say(`r${r} ${s.name.padEnd(10)} rps ${Math.round(w.rps)} mean ${(w.mean_us / 1000).toFixed(2)} p50 ${(w.p50_us / 1000).toFixed(2)} p90 ${(w.p90_us / 1000).toFixed(2)} p99 ${(w.p99_us / 1000).toFixed(2)} p999 ${(w.p999_us / 1000).toFixed(2)} max ${(w.max_us / 1000).toFixed(1)} us/req ${row.usPerReq} | ${top} ${wk ? '| ' + wk : ''}`);
  }
}
const med = (a) => { const b = [...a].sort((x, y) => x - y); const n = b.length; return n % 2 ? b[(n - 1) / 2] : (b[n / 2 - 1] + b[n / 2]) / 2; };
const summary = SIDES.map((s) => {
  const my = rows.filter((x) => x.side === s.name);
  const f = (k) => med(my.map((x) => x[k]));
  return `median ${s.name}: rps ${Math.round(f('rps'))} mean ${(f('mean_us') / 1000).toFixed(2)} p50 ${(f('p50_us') / 1000).toFixed(2)} p90 ${(f('p90_us') / 1000).toFixed(2)} p99 ${(f('p99_us') / 1000).toFixed(2)} p99.9 ${(f('p999_us') / 1000).toFixed(2)} us/req ${f('usPerReq')}`;
});
summary.push(`load at end ${load()}`);
say(summary.join('\n'));
fs.writeFileSync(path.join(OUT, 'summary.txt'), summary.join('\n') + '\n');
process.exit(0); // the proxies' child handles would keep this process alive; 'exit' kills them
