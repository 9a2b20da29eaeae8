#!/usr/bin/env node
// Proxy CPU per byte of large bodies, for A/B runs of two builds (or any CHP-like proxies already
// running, each in its own process group, routing /user/u1 to bench/backend.js):
//
//   MB=300 ROUNDS=3 node bench/body-cpu.mjs name=PORT:PGID [name=PORT:PGID ...]
//
// Per round and target, interleaved: one MB MiB download (GET /user/u1/bytes/N) and one MB MiB
// upload (PUT, 1 MiB writes with backpressure), each on a new connection. Reports medians of the
// rate and of the CPU time (utime + stime from /proc, whole process group: primary and workers)
// the proxy spent on it. CPU per byte moves far less than the rate on a shared, noisy machine.
// DIRS=down (or up) runs one direction only (e.g. under a profiler).
import http from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';

const targets = process.argv.slice(2);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const MB = Number(process.env.MB ?? 100);
const DIRS = (process.env.DIRS ?? 'down,up').split(',');
const TICK_MS = 10; // 1000 / CLK_TCK (100 on Linux)
const bytes = MB * 1048576;
const block = Buffer.alloc(1 << 20, 'u');

function groupCpuMs(pgid) {
  let t = 0;
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      const st = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      if (Number(f[2]) === pgid) t += (Number(f[11]) + Number(f[12])) * TICK_MS;
    } catch {
      // gone
    }
  }
  return t;
}

function download(port) {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    http
      .get({ host: '127.0.0.1', port, path: `/user/u1/bytes/${bytes}`, agent: false }, (r) => {
        let n = 0;
        r.on('data', (c) => (n += c.length));
        r.on('end', () => (n === bytes ? resolve(performance.now() - t) : reject(new Error(`short download: ${n}`))));
      })
      .on('error', reject);
  });
}

function upload(port) {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const q = http.request({ host: '127.0.0.1', port, path: '/user/u1/up', method: 'PUT', agent: false, headers: { 'content-length': bytes } }, (r) => {
      r.resume();
      r.on('end', () => resolve(performance.now() - t));
    });
    q.on('error', reject);
    let left = MB;
    const pump = () => {
      while (left > 0) {
        left--;
        if (!q.write(block)) return void q.once('drain', pump);
      }
      q.end();
    };
    pump();
  });
}

const results = {};
for (let r = 0; r < ROUNDS; r++) {
  for (const t of targets) {
    const [name, rest] = t.split('=');
    const [port, pgid] = rest.split(':').map(Number);
    for (const dir of DIRS) {
      const c0 = groupCpuMs(pgid);
      const ms = await (dir === 'down' ? download(port) : upload(port));
      ((results[name] ??= {})[dir] ??= []).push({ ms, cpuMs: groupCpuMs(pgid) - c0 });
    }
  }
}
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
console.log(`| target | download MiB/s | download CPU ms per ${MB} MiB | upload MiB/s | upload CPU ms per ${MB} MiB |`);
console.log('|---|---:|---:|---:|---:|');
for (const [name, d] of Object.entries(results)) {
  const rate = (dir) => (d[dir] ? (MB / (median(d[dir].map((x) => x.ms)) / 1000)).toFixed(0) : '-');
  const cpu = (dir) => (d[dir] ? median(d[dir].map((x) => x.cpuMs)).toFixed(0) : '-');
  console.log(`| ${name} | ${rate('down')} | ${cpu('down')} | ${rate('up')} | ${cpu('up')} |`);
}
