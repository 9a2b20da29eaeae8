#!/usr/bin/env node
// xDS propagation: how long from a REST API write (201) until a connected ADS client holds a route
// configuration containing it. Starts a real Switchyard (dist/) with --xds-port, connects N ADS
// clients that ACK every response, preloads BASE routes, then makes CHANGES writes one at a time
// and reports p50/p99 of (RDS with the new route received) - (POST sent), over all clients.
//   node bench/xds-bench.mjs [--clients 5] [--changes 300] [--base 1000] [--verify]
// Writes bench/results/xds-<timestamp>.json and prints it.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const require = createRequire(join(ROOT, 'package.json'));
const grpc = require('@grpc/grpc-js');
const { TYPE, messageType } = await import(join(ROOT, 'dist/src/dataplane/envoy/protos.js'));

const arg = (n, d) => { const i = process.argv.indexOf('--' + n); return i >= 0 ? Number(process.argv[i + 1]) : d; };
const CLIENTS = arg('clients', 5), CHANGES = arg('changes', 300), BASE = arg('base', 1000);
const checkDecode = process.argv.includes('--verify');
const [PORT, API, XDS] = [18700, 18701, 18702];
const TOKEN = 'xdsbench';
const now = () => Number(process.hrtime.bigint()) / 1e6;

const proc = spawn(process.execPath, [join(ROOT, 'dist/src/main.js'), '--ip', '127.0.0.1', '--port', String(PORT), '--api-ip', '127.0.0.1',
  '--api-port', String(API), '--xds-ip', '127.0.0.1', '--xds-port', String(XDS), '--log-level', 'warn'], { env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: TOKEN }, stdio: 'inherit' });
const stop = () => { try { proc.kill('SIGTERM'); } catch { /* gone */ } };
process.on('exit', stop);
setTimeout(() => { console.error('xds-bench: time limit reached'); process.exit(1); }, 300_000).unref();

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
function api(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: API, method, path, agent, headers: { authorization: `token ${TOKEN}`, 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}
for (let i = 0; i < 100; i++) {
  try { if ((await api('GET', '/api/routes')) === 200) break; } catch { /* not yet */ }
  await new Promise((r) => setTimeout(r, 100));
}
for (let i = 0; i < BASE; i++) await api('POST', `/api/routes/base/u${i}`, { target: `http://10.1.${i >> 8}.${i & 255}:8888` });

const Req = messageType('envoy.service.discovery.v3.DiscoveryRequest');
const Res = messageType('envoy.service.discovery.v3.DiscoveryResponse');
const RC = messageType(TYPE.route);
const waiting = new Map(); // route path -> { t0, pending clients }
const lat = [];
function client(idx) {
  const c = new grpc.Client(`127.0.0.1:${XDS}`, grpc.credentials.createInsecure());
  const call = c.makeBidiStreamRequest('/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources', (b) => b, (b) => b);
  const send = (o) => call.write(Buffer.from(Req.encode(Req.fromObject(o)).finish()));
  call.on('data', (b) => {
    const t = now();
    const r = Res.decode(b);
    send({ type_url: r.type_url, version_info: r.version_info, response_nonce: r.nonce, resource_names: r.type_url === TYPE.route ? ['switchyard'] : [] });
    if (r.type_url !== TYPE.route) return;
    // Arrival check without decoding the whole RouteConfiguration (5 clients share this process:
    // decoding 2,000 entries each would measure the bench, not the control plane). The route's
    // entry name is a length-prefixed string inside the encoded message.
    const bytes = r.resources[0].value;
    if (checkDecode) RC.decode(bytes); // --verify: make sure it is a valid RouteConfiguration
    for (const [p, w] of waiting) {
      if (w.clients.has(idx) && bytes.indexOf(`${p} (exact)`) !== -1) {
        w.clients.delete(idx);
        lat.push(t - w.t0);
        if (w.clients.size === 0) { waiting.delete(p); w.done(); }
      }
    }
  });
  call.on('error', () => {});
  send({ node: { id: `bench-${idx}`, cluster: 'bench' }, type_url: TYPE.route, resource_names: ['switchyard'] });
  return c;
}
const clients = Array.from({ length: CLIENTS }, (_, i) => client(i));
await new Promise((r) => setTimeout(r, 1000));
const t0 = now();
for (let i = 0; i < CHANGES; i++) {
  const p = `/churn/c${i}`;
  const done = new Promise((resolve) => waiting.set(p, { t0: now(), clients: new Set(clients.map((_, k) => k)), done: resolve }));
  const st = await api('POST', `/api/routes${p}`, { target: `http://10.2.${i >> 8}.${i & 255}:9000` });
  if (st !== 201) throw new Error(`POST ${p}: ${st}`);
  await Promise.race([done, new Promise((r) => setTimeout(r, 5000))]);
}
const total = now() - t0;
lat.sort((a, b) => a - b);
const q = (x) => +lat[Math.min(lat.length - 1, Math.floor(x * lat.length))].toFixed(2);
const out = { date: new Date().toISOString(), node: process.version, clients: CLIENTS, changes: CHANGES, base_routes: BASE, samples: lat.length,
  expected_samples: CLIENTS * CHANGES, p50_ms: q(0.5), p90_ms: q(0.9), p99_ms: q(0.99), max_ms: q(1), changes_per_s: Math.round(CHANGES / (total / 1000)) };
mkdirSync(join(HERE, 'results'), { recursive: true });
writeFileSync(join(HERE, 'results', `xds-${Date.now()}.json`), JSON.stringify(out, null, 2) + '\n');
console.log(JSON.stringify(out, null, 2));
clients.forEach((c) => c.close());
stop();
process.exit(0);
