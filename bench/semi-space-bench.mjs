// Throughput and worker RSS with the data-plane workers' pinned young generation (worker-pool.ts,
// WORKER_SEMI_SPACE_MB) against V8's default sizing, side by side on this machine.
//
//   npx tsc -p tsconfig.json && node bench/semi-space-bench.mjs
//
// Two Switchyard processes (the CLI from dist/, default --workers, one route to one bench/backend.js),
// identical except that one runs with NODE_OPTIONS=--max-semi-space-size=16: an operator's own
// semi-space option, so its workers get no pinned size and V8 sizes the new space as it would by
// default (16 MiB is V8's default maximum on 64-bit). wrk (-t2 -c64, DURATION s each) alternates
// between them REPS times; prints req/s per rep, the medians, their ratio, and each worker's RSS
// after each rep, and the CPU time (user + system, primary and workers, /proc) per request: on a
// shared machine req/s moves with other tenants' load, CPU per request less), and the workers' GC
// pauses per 1,000 requests (bench/memory-probe.mjs in every process): what a semi-space size
// changes is GC work, and that is measured directly. Loopback only; every process started here is killed at the end.
// Knobs: DURATION (s, 10), REPS (5), CONNS (64), EXTRA (more pinned sizes to compare, MiB: "4,8").

import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import net from 'node:net';

const here = dirname(fileURLToPath(import.meta.url));
const MAIN = join(here, '..', 'dist', 'src', 'main.js');
const DURATION = Number(process.env.DURATION ?? 10);
const REPS = Number(process.env.REPS ?? 5);
const CONNS = Number(process.env.CONNS ?? 64);
const TOKEN = 'semi';
// Every process gets bench/memory-probe.mjs (1-s lines): the workers' GC counts and times per rep.
const probeDir = mkdtempSync(join(tmpdir(), 'semi-space-bench-'));
const probeImport = `--import=${join(here, 'memory-probe.mjs')}`;

const procs = [];
const cleanup = () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  rmSync(probeDir, { recursive: true, force: true });
};
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => process.exit(130));

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
/** Resolves with the matches of every regexp once the process's output contains them all. */
const waitLines = (proc, res, ms = 60_000) =>
  new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no ${res.join(' and ')} within ${ms} ms:\n${buf}`)), ms);
    const on = (c) => {
      buf += c;
      const ms = res.map((re) => re.exec(buf));
      if (ms.every(Boolean)) {
        clearTimeout(timer);
        resolve(ms);
      }
    };
    proc.stdout.on('data', on);
    proc.stderr.on('data', on);
  });

const backendPort = await freePort();
const backend = spawn(process.execPath, [join(here, 'backend.js'), String(backendPort), 'A'], { stdio: ['ignore', 'pipe', 'pipe'] });
procs.push(backend);
for (let i = 0; i < 100; i++) {
  const ok = await new Promise((r) => net.connect(backendPort, '127.0.0.1').once('connect', function () { this.destroy(); r(true); }).once('error', () => r(false)));
  if (ok) break;
  await new Promise((r) => setTimeout(r, 100));
}

async function startProxy(name, nodeOptions, nodeArgs = []) {
  const env = { ...process.env, CONFIGPROXY_AUTH_TOKEN: TOKEN, MEM_PROBE_DIR: probeDir, PROBE_MS: '1000' };
  env.NODE_OPTIONS = [probeImport, nodeOptions].filter(Boolean).join(' ');
  const p = spawn(process.execPath, [...nodeArgs, MAIN, '--ip', '127.0.0.1', '--port', '0', '--api-ip', '127.0.0.1', '--api-port', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(p);
  const [[, proxyPort], [, apiPort]] = await waitLines(p, [/Proxying https?:\/\/[^\s]*:(\d+) to/, /Proxy API at https?:\/\/[^\s]*:(\d+)\/api\/routes/]);
  const res = await fetch(`http://127.0.0.1:${apiPort}/api/routes/user/u1`, { method: 'POST', headers: { authorization: `token ${TOKEN}` }, body: JSON.stringify({ target: `http://127.0.0.1:${backendPort}` }) });
  if (res.status !== 201) throw new Error(`${name}: POST route ${res.status}`);
  return { name, proc: p, url: `http://127.0.0.1:${proxyPort}/user/u1/api` };
}

const workersOf = (pid) => {
  const out = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
};
/** CPU seconds (user + system) a process has used so far. */
const cpuS = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const x = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(x[11]) + Number(x[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
};
/** A worker's GC totals so far, from its probe file's last line. */
const gcOf = (pid) => {
  const f = join(probeDir, `${pid}-worker.jsonl`);
  if (!existsSync(f)) return { minor: 0, minorMs: 0, major: 0, majorMs: 0 };
  const lines = readFileSync(f, 'utf8').trim().split('\n');
  return JSON.parse(lines[lines.length - 1]).gc;
};
const gcSum = (pids) => pids.map(gcOf).reduce((a, g) => ({ minor: a.minor + g.minor, minorMs: a.minorMs + g.minorMs, major: a.major + g.major, majorMs: a.majorMs + g.majorMs }), { minor: 0, minorMs: 0, major: 0, majorMs: 0 });
const rssMiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

// EXTRA="4,8": also workers pinned at those semi-space sizes (MiB), through the primary's command line
// (workers inherit it; NODE_OPTIONS does not allow --min-semi-space-size).
const variants = [await startProxy('pinned (default now)', undefined), await startProxy('V8 default sizing', '--max-semi-space-size=16')];
for (const mb of (process.env.EXTRA ?? '').split(',').filter(Boolean)) variants.push(await startProxy(`pinned ${mb} MiB`, undefined, [`--min-semi-space-size=${mb}`, `--max-semi-space-size=${mb}`]));
const results = new Map(variants.map((v) => [v.name, { rps: [], cpuUsPerReq: [], scavengesPer1k: [], gcMsPer1k: [], rss: [] }]));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
for (let rep = 1; rep <= REPS; rep++) {
  for (const v of rep % 2 ? variants : [...variants].reverse()) { // interleaved, order alternating
    const pids = [v.proc.pid, ...workersOf(v.proc.pid)];
    await sleep(1100); // a fresh probe line before and after the rep
    const gc0 = gcSum(pids.slice(1));
    const cpu0 = pids.reduce((a, p) => a + cpuS(p), 0);
    const out = execFileSync('wrk', ['-t2', `-c${CONNS}`, `-d${DURATION}s`, v.url], { encoding: 'utf8' });
    const cpu = pids.reduce((a, p) => a + cpuS(p), 0) - cpu0;
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
    const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
    const cpuUs = (cpu / requests) * 1e6;
    await sleep(1100);
    const gc1 = gcSum(pids.slice(1));
    const scav = ((gc1.minor - gc0.minor) / requests) * 1000;
    const gcMs = ((gc1.minorMs + gc1.majorMs - gc0.minorMs - gc0.majorMs) / requests) * 1000;
    const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
    const rss = workersOf(v.proc.pid).map(rssMiB);
    results.get(v.name).rps.push(rps);
    results.get(v.name).cpuUsPerReq.push(Math.round(cpuUs * 10) / 10);
    results.get(v.name).scavengesPer1k.push(Math.round(scav * 100) / 100);
    results.get(v.name).gcMsPer1k.push(Math.round(gcMs * 100) / 100);
    results.get(v.name).rss.push(rss);
    console.log(`rep ${rep} ${v.name}: ${rps.toFixed(0)} req/s, ${cpuUs.toFixed(1)} CPU-µs/request (proxy processes), ${scav.toFixed(2)} scavenges and ${gcMs.toFixed(2)} ms of GC pauses per 1,000 requests (workers)${non2xx ? ` (${non2xx} non-2xx)` : ''}; worker RSS ${rss.map((x) => x.toFixed(1)).join(', ')} MiB`);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const base = median(results.get(variants[1].name).rps);
const baseCpu = median(results.get(variants[1].name).cpuUsPerReq);
for (const v of variants) {
  const m = median(results.get(v.name).rps);
  const c = median(results.get(v.name).cpuUsPerReq);
  const g = median(results.get(v.name).gcMsPer1k);
  const sc = median(results.get(v.name).scavengesPer1k);
  console.log(`median ${v.name}: ${m.toFixed(0)} req/s (ratio to V8 default sizing ${(m / base).toFixed(3)}), ${c.toFixed(1)} CPU-µs/request (ratio ${(c / baseCpu).toFixed(3)}: requests per CPU-second ${(baseCpu / c).toFixed(3)}x); ${sc.toFixed(2)} scavenges and ${g.toFixed(2)} ms GC pauses per 1,000 requests`);
}
console.log(JSON.stringify(Object.fromEntries(results)));
cleanup();
