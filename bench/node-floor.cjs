#!/usr/bin/env node
// What Node itself costs before any Switchyard code (issue 15's footprint targets): a node:cluster
// primary with N idle workers (the shape of --worker-mode processes, Node 20's default), measured
// as RSS summed over the processes and as the time until the port accepts a connection when each
// worker listens through cluster (the primary binds on the first worker's listen).
//
//   node bench/node-floor.cjs [N=2] [RUNS=7]        (loopback only, port 18990)
//
// Compare with bench/startup.mjs's CHP figures on the same Node: if the floor alone is above the
// target, no Switchyard change can meet it with that many processes.
'use strict';
const cluster = require('node:cluster');
const fs = require('node:fs');
const net = require('node:net');
const { spawn } = require('node:child_process');

const N = Number(process.argv[2] ?? 2);
const RUNS = Number(process.argv[3] ?? 7);
const PORT = 18990;
const rssMiB = (pid) => (Number(fs.readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * 4096) / 1048576;

if (process.env.FLOOR_ROLE === 'cluster') {
  // A bare cluster: workers listen (http, answering nothing of interest) and report.
  if (cluster.isPrimary) {
    let up = 0;
    for (let i = 0; i < N; i++) {
      cluster.fork().on('listening', () => {
        if (++up === N) setTimeout(() => process.send?.([process.pid, ...Object.values(cluster.workers).map((w) => w.process.pid)].map(rssMiB)), 300);
      });
    }
  } else require('node:http').createServer((q, s) => s.end('ok')).listen(PORT, '127.0.0.1');
  return;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const accepts = () =>
  new Promise((r) => {
    const s = net.connect(PORT, '127.0.0.1');
    s.on('connect', () => (s.destroy(), r(true)));
    s.on('error', () => r(false));
  });

async function once() {
  const t0 = process.hrtime.bigint();
  const c = spawn(process.execPath, [__filename, String(N)], { env: { ...process.env, FLOOR_ROLE: 'cluster' }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'], detached: true });
  const rss = new Promise((r) => c.once('message', r));
  const deadline = Date.now() + 10_000;
  while (!(await accepts())) {
    if (Date.now() > deadline) throw new Error('the bare cluster never listened');
    await new Promise((r) => setTimeout(r, 2));
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const mem = await rss;
  process.kill(-c.pid, 'SIGKILL');
  await new Promise((r) => c.once('exit', r));
  return { ms, mem };
}

(async () => {
  const runs = [];
  for (let i = 0; i < RUNS; i++) runs.push(await once());
  const total = runs.map((r) => r.mem.reduce((a, b) => a + b, 0));
  console.log(`${process.version}: primary + ${N} idle cluster workers, ${RUNS} runs (medians)`);
  console.log(`  port accepts after ${median(runs.map((r) => r.ms)).toFixed(0)} ms (${runs.map((r) => r.ms.toFixed(0)).join(' ')})`);
  console.log(`  RSS ${median(total).toFixed(1)} MiB (per process, last run: ${runs.at(-1).mem.map((m) => m.toFixed(1)).join(' + ')})`);
})();
