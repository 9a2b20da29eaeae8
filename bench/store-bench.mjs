#!/usr/bin/env node
// Store / HA benchmark (issue 3), loopback only, ports from the OS:
//   1. propagation: POST on replica A -> route served by replica C's data plane, N changes (p50/p99)
//   2. startup: time until a replica with 100,000 routes in etcd (and in a file) serves its port
//   3. bulk add: sequential POSTs/s, CHP vs Switchyard (memory, file, etcd)
// Usage: node bench/store-bench.mjs [--changes 1000] [--startup-routes 100000] [--bulk 5000]
// Needs: npm run build (root), bench/setup.sh (CHP), etcd (Debian etcd-server).
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const MAIN = join(HERE, '..', 'dist', 'src', 'main.js');
const CHP = join(HERE, 'node_modules', 'configurable-http-proxy', 'bin', 'configurable-http-proxy');
const { Etcd3 } = createRequire(join(HERE, '..', 'package.json'))('etcd3');
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? def : Number(process.argv[i + 1]);
};
const CHANGES = arg('changes', 1000);
const STARTUP_ROUTES = arg('startup-routes', 100000);
const BULK = arg('bulk', 5000);
const TOKEN = 'benchtoken';
const procs = [];
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

const freePort = () => new Promise((res) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); }); });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function req(port, method, path, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port, method, path, agent, headers: { authorization: `token ${TOKEN}`, ...headers } }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode, body: b }));
    });
    r.on('error', reject);
    r.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
async function waitPort(port, ms = 60000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise((r) => { const s = net.connect(port, '127.0.0.1'); s.once('connect', () => { s.destroy(); r(true); }); s.once('error', () => r(false)); });
    if (ok) return;
    await sleep(5);
  }
  throw new Error(`port ${port} never answered`);
}
function run(cmd, args, env = {}) {
  const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  p.stderr.on('data', () => {});
  procs.push(p);
  return p;
}
const pct = (xs, q) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };
process.on('exit', () => { for (const p of procs) try { p.kill('SIGKILL'); } catch {} });

async function startEtcd() {
  const dir = mkdtempSync(join(tmpdir(), 'swy-bench-etcd-'));
  const [cp, pp] = [await freePort(), await freePort()];
  run('etcd', ['--name', 'b', '--data-dir', dir, '--listen-client-urls', `http://127.0.0.1:${cp}`, '--advertise-client-urls', `http://127.0.0.1:${cp}`,
    '--listen-peer-urls', `http://127.0.0.1:${pp}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${pp}`, '--initial-cluster', `b=http://127.0.0.1:${pp}`,
    '--quota-backend-bytes', String(4 * 1024 ** 3), '--log-level', 'warn', '--logger', 'zap']);
  await waitPort(cp);
  await sleep(300);
  return `127.0.0.1:${cp}`;
}
async function startSwitchyard(extra) {
  const [port, api] = [await freePort(), await freePort()];
  const t0 = performance.now();
  const p = run(process.execPath, [MAIN, '--ip', '127.0.0.1', '--port', String(port), '--api-ip', '127.0.0.1', '--api-port', String(api), '--log-level', 'warn', ...extra], { CONFIGPROXY_AUTH_TOKEN: TOKEN });
  await waitPort(port, 120000);
  return { port, api, proc: p, readyMs: performance.now() - t0 };
}

const backendPort = await freePort();
const backend = http.createServer((q, s) => s.end('ok')).listen(backendPort, '127.0.0.1');
backend.keepAliveTimeout = 60000;
const target = `http://127.0.0.1:${backendPort}`;
const out = { date: new Date().toISOString(), node: process.version, changes: CHANGES, startupRoutes: STARTUP_ROUTES, bulk: BULK };

// ---- 1. propagation
{
  const ep = await startEtcd();
  const reps = [];
  for (const id of ['a', 'b', 'c']) reps.push(await startSwitchyard(['--store', `etcd://${ep}`, '--replica-id', id]));
  const [A, , C] = reps;
  const lat = [];
  const apiLat = [];
  for (let i = 0; i < CHANGES; i++) {
    const path = `/user/p${i}`;
    const t0 = performance.now();
    const r = await req(A.api, 'POST', `/api/routes${path}`, { target });
    apiLat.push(performance.now() - t0);
    if (r.status !== 201) throw new Error(`POST ${r.status} ${r.body}`);
    for (;;) {
      const g = await req(C.port, 'GET', path);
      if (g.status === 200) break;
    }
    lat.push(performance.now() - t0);
  }
  out.propagation = { p50_ms: +pct(lat, 0.5).toFixed(2), p99_ms: +pct(lat, 0.99).toFixed(2), max_ms: +Math.max(...lat).toFixed(2), api_p50_ms: +pct(apiLat, 0.5).toFixed(2), api_p99_ms: +pct(apiLat, 0.99).toFixed(2) };
  console.error('propagation', out.propagation);
  for (const r of reps) r.proc.kill('SIGKILL');
}

// ---- 2. startup with many routes (etcd, file)
{
  const ep = await startEtcd();
  const client = new Etcd3({ hosts: `http://${ep}` });
  const t0 = performance.now();
  const routes = {};
  for (let i = 0; i < STARTUP_ROUTES; i += 128) {
    let txn = client.if('/switchyard/routes', 'Version', '>', -1);
    const ops = [];
    for (let j = i; j < Math.min(i + 128, STARTUP_ROUTES); j++) ops.push(client.put(`/switchyard/routes/user/u${j}`).value(JSON.stringify({ target, jupyterhub: true })));
    await txn.then(...ops).commit();
  }
  for (let j = 0; j < STARTUP_ROUTES; j++) routes[`/user/u${j}`] = { target, jupyterhub: true };
  console.error(`wrote ${STARTUP_ROUTES} routes to etcd in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  client.close();
  const s = await startSwitchyard(['--store', `etcd://${ep}`]);
  const h = JSON.parse((await req(s.api, 'GET', '/api/health')).body);
  const probe = await req(s.port, 'GET', `/user/u${STARTUP_ROUTES - 1}/x`);
  out.startupEtcd = { routes: h.table.routes, ready_ms: Math.round(s.readyMs), probe_status: probe.status };
  console.error('startup etcd', out.startupEtcd);
  s.proc.kill('SIGKILL');
  const dir = mkdtempSync(join(tmpdir(), 'swy-bench-file-'));
  const file = join(dir, 'routes.json');
  writeFileSync(file, JSON.stringify({ routes }));
  const f = await startSwitchyard(['--store', `file:${file}`]);
  const hf = JSON.parse((await req(f.api, 'GET', '/api/health')).body);
  out.startupFile = { routes: hf.table.routes, ready_ms: Math.round(f.readyMs) };
  console.error('startup file', out.startupFile);
  f.proc.kill('SIGKILL');
  const m = await startSwitchyard([]);
  out.startupEmpty = { ready_ms: Math.round(m.readyMs) };
  m.proc.kill('SIGKILL');
}

// ---- 3. bulk add rate
{
  const ep = await startEtcd();
  const dir = mkdtempSync(join(tmpdir(), 'swy-bench-bulk-'));
  const targets = [];
  {
    const [port, api] = [await freePort(), await freePort()];
    const p = run(process.execPath, [CHP, '--ip', '127.0.0.1', '--port', String(port), '--api-ip', '127.0.0.1', '--api-port', String(api), '--log-level', 'warn'], { CONFIGPROXY_AUTH_TOKEN: TOKEN });
    await waitPort(api);
    targets.push({ name: 'chp', api, proc: p });
  }
  for (const [name, extra] of [['switchyard-memory', []], ['switchyard-file', ['--store', `file:${join(dir, 'r.toml')}`]], ['switchyard-etcd', ['--store', `etcd://${ep}`]]]) {
    const s = await startSwitchyard(extra);
    targets.push({ name, api: s.api, proc: s.proc });
  }
  out.bulk = {};
  for (const tg of targets) {
    for (let i = 0; i < 200; i++) await req(tg.api, 'POST', `/api/routes/warm/w${i}`, { target });
    const t0 = performance.now();
    for (let i = 0; i < BULK; i++) {
      const r = await req(tg.api, 'POST', `/api/routes/user/u${i}`, { target, jupyterhub: true });
      if (r.status !== 201) throw new Error(`${tg.name} POST ${r.status}`);
    }
    const s = (performance.now() - t0) / 1000;
    out.bulk[tg.name] = { routes_per_s: Math.round(BULK / s) };
    console.error('bulk', tg.name, out.bulk[tg.name]);
    tg.proc.kill('SIGKILL');
  }
  for (const k of Object.keys(out.bulk)) out.bulk[k].ratio_to_chp = +(out.bulk[k].routes_per_s / out.bulk.chp.routes_per_s).toFixed(2);
}

const resDir = join(HERE, 'results');
mkdirSync(resDir, { recursive: true });
const file = join(resDir, `store-${out.date.replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify(out, null, 2));
console.log(JSON.stringify(out, null, 2));
console.error(`written to ${file}`);
backend.close();
process.exit(0);
