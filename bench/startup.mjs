#!/usr/bin/env node
// Start time and footprint, side by side and interleaved: configurable-http-proxy (CHP 5.3, from
// bench/node_modules) vs Switchyard (dist/src/main.js) with --workers 1, at its default workers
// (threads where supported: --worker-mode auto) and at its default workers as processes.
//
//   node bench/startup.mjs [RUNS=7] [OUT=path.json]      (env: RUNS, OUT, BASE_MAIN, SWITCHYARD_MAIN, COMPILE_CACHE)
//
// Each run starts every config once (rotating the order between runs), each in its own process
// group, with CHP's flags and a --default-target backend (bench/backend.js, started once here):
//   ready_ms    spawn -> first 200 proxied through the proxy port (GET /startup, polled every 5 ms,
//               a new connection each)
//   rss_mib     VmRSS summed over the process group (primary + workers, from /proc) at that moment
//   rss1_mib    the same 1 s later (workers may still be settling; the API is up by then)
//   uss_mib     private memory summed over the group (Private_Clean + Private_Dirty from
//               /proc/PID/smaps_rollup, at the first 200): RSS without the pages of the node binary
//               and libraries that every process maps and the kernel shares (~40 MiB each)
// and stops it (SIGTERM to the group, SIGKILL after 5 s). Reports medians and ratios to CHP.
// Ports: 127.0.0.1:18450-18459 (loopback only; bench/run.sh uses others in 18000-18999).

import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const RUNS = Number(process.env.RUNS ?? process.argv[2] ?? 7);
const OUT = process.env.OUT ?? process.argv[3];
const IP = '127.0.0.1';
const P_BACKEND = 18450;
const P_PROXY = 18452; // API on +1
const CHP_BIN = resolve(HERE, 'node_modules/configurable-http-proxy/bin/configurable-http-proxy');
const SWITCHYARD = process.env.SWITCHYARD_MAIN ?? resolve(HERE, '../dist/src/main.js');
const TOKEN = 'startuptoken';

const common = ['--ip', IP, '--port', String(P_PROXY), '--api-ip', IP, '--api-port', String(P_PROXY + 1), '--default-target', `http://${IP}:${P_BACKEND}`];
const CONFIGS = [
  { name: 'chp', argv: [CHP_BIN, ...common] },
  { name: 'switchyard-w1', argv: [SWITCHYARD, ...common, '--workers', '1'] },
  { name: 'switchyard', argv: [SWITCHYARD, ...common] },
  // The default workers as node:cluster processes (the default is threads where supported).
  { name: 'switchyard-procs', argv: [SWITCHYARD, ...common, '--worker-mode', 'processes'] },
];
// COMPILE_CACHE=dir: also CHP and Switchyard (default workers, and --workers 1) with Node's on-disk
// compile cache (NODE_COMPILE_CACHE=dir, Node 22.1+; the first start of each fills it).
if (process.env.COMPILE_CACHE) {
  const env = { NODE_COMPILE_CACHE: process.env.COMPILE_CACHE };
  CONFIGS.push(
    { name: 'chp-cc', argv: [CHP_BIN, ...common], env },
    { name: 'switchyard-w1-cc', argv: [SWITCHYARD, ...common, '--workers', '1'], env },
    { name: 'switchyard-cc', argv: [SWITCHYARD, ...common], env },
  );
}
// BASE_MAIN=path/to/dist/src/main.js: another build measured alongside (e.g. before a change).
if (process.env.BASE_MAIN) {
  CONFIGS.push({ name: 'base-w1', argv: [process.env.BASE_MAIN, ...common, '--workers', '1'] }, { name: 'base', argv: [process.env.BASE_MAIN, ...common] });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** VmRSS (KiB) summed over every process in process group `pgid`; with `uss`, private KiB instead. */
function groupRssKb(pgid, uss = false) {
  let total = 0;
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) !== pgid) continue;
      if (uss) {
        const r = readFileSync(`/proc/${p}/smaps_rollup`, 'utf8');
        for (const m of r.matchAll(/^Private_(?:Clean|Dirty):\s+(\d+)/gm)) total += Number(m[1]);
        continue;
      }
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) total += Number(m[1]);
    } catch {
      // the process went away
    }
  }
  return total;
}

function get(port, path) {
  return new Promise((res) => {
    const req = http.get({ host: IP, port, path, agent: false }, (r) => {
      r.resume();
      r.on('end', () => res(r.statusCode));
      r.on('error', () => res(0));
    });
    req.on('error', () => res(0));
    req.setTimeout(2000, () => req.destroy());
  });
}

async function waitFor(cond, ms, what) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await cond()) return;
    await sleep(5);
  }
  throw new Error(`timed out: ${what}`);
}

function exited(child) {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', r));
}

async function stopGroup(child) {
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    return;
  }
  const t = setTimeout(() => {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }, 5000);
  await exited(child);
  // workers of the group: wait until none is left (bounded)
  const until = Date.now() + 6000;
  while (groupRssKb(child.pid) > 0 && Date.now() < until) await sleep(20);
  clearTimeout(t);
}

async function measure(cfg) {
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, cfg.argv, {
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore'],
    env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: TOKEN, ...cfg.env },
  });
  try {
    await waitFor(async () => child.exitCode === null && (await get(P_PROXY, '/startup')) === 200, 30_000, `${cfg.name} proxy port`);
    const readyMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const rss = groupRssKb(child.pid);
    const uss = groupRssKb(child.pid, true);
    await sleep(1000);
    const rss1 = groupRssKb(child.pid);
    return { readyMs, rssMiB: rss / 1024, rss1MiB: rss1 / 1024, ussMiB: uss / 1024 };
  } finally {
    await stopGroup(child);
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

async function main() {
  const backend = spawn(process.execPath, [resolve(HERE, 'backend.js'), String(P_BACKEND), 'S'], { detached: true, stdio: 'ignore' });
  const cleanup = () => {
    try {
      process.kill(-backend.pid, 'SIGKILL');
    } catch {
      // gone
    }
  };
  process.on('exit', cleanup);
  await waitFor(async () => (await get(P_BACKEND, '/')) === 200, 10_000, 'backend');
  const results = Object.fromEntries(CONFIGS.map((c) => [c.name, []]));
  for (let run = 0; run < RUNS; run++) {
    for (let i = 0; i < CONFIGS.length; i++) {
      const cfg = CONFIGS[(i + run) % CONFIGS.length];
      const r = await measure(cfg);
      results[cfg.name].push(r);
      console.error(`run ${run + 1}/${RUNS} ${cfg.name.padEnd(14)} ready ${r.readyMs.toFixed(0).padStart(5)} ms  rss ${r.rssMiB.toFixed(1).padStart(6)} MiB  +1s ${r.rss1MiB.toFixed(1).padStart(6)} MiB  private ${r.ussMiB.toFixed(1).padStart(6)} MiB`);
    }
  }
  cleanup();
  const summary = {};
  for (const c of CONFIGS) {
    const rs = results[c.name];
    summary[c.name] = {
      readyMs: median(rs.map((r) => r.readyMs)),
      rssMiB: median(rs.map((r) => r.rssMiB)),
      rss1MiB: median(rs.map((r) => r.rss1MiB)),
      ussMiB: median(rs.map((r) => r.ussMiB)),
    };
  }
  const chp = summary.chp;
  const lines = [
    `| config | ready ms (median of ${RUNS}) | RSS MiB at first 200 | RSS MiB 1 s later | private MiB | ready / CHP | RSS / CHP | RSS 1 s / CHP | private / CHP |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const c of CONFIGS) {
    const s = summary[c.name];
    lines.push(
      `| ${c.name} | ${s.readyMs.toFixed(0)} | ${s.rssMiB.toFixed(1)} | ${s.rss1MiB.toFixed(1)} | ${s.ussMiB.toFixed(1)} | ${(s.readyMs / chp.readyMs).toFixed(2)}× | ${(s.rssMiB / chp.rssMiB).toFixed(2)}× | ${(s.rss1MiB / chp.rss1MiB).toFixed(2)}× | ${(s.ussMiB / chp.ussMiB).toFixed(2)}× |`,
    );
  }
  console.log(lines.join('\n'));
  if (OUT) writeFileSync(OUT, JSON.stringify({ node: process.version, runs: RUNS, at: new Date().toISOString(), summary, results }, null, 2) + '\n');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
