#!/usr/bin/env node
// What one idle websocket holds inside a Switchyard process (issue 15's idle-websocket target).
//
//   node bench/ws-heap.mjs [--main dist/src/main.js] [--conns 2000] [--port 18600] [--snapshot 1]
//                          [--args "--access-log /dev/null"]   (more proxy flags, split on spaces)
//
// Starts bench/backend.js in ws mode and one Switchyard (`--workers 1`: the proxy runs in the
// process whose inspector is opened), routes /user/w1 to the backend, then reads, after full
// garbage collections (HeapProfiler.collectGarbage + gc via the inspector), process.memoryUsage()
// and /proc/<pid>/smaps_rollup, and optionally a heap snapshot: once before and once with `conns`
// websockets open and idle (each sent one echo, like ws_bench.js). Prints the difference per
// websocket: RSS, V8 heap used, external, and (with --snapshot 1) the heap objects whose count
// grew by at least one per websocket, by type and constructor/function name, with their shallow
// bytes per websocket. Every process it starts is stopped at the end.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import http from 'node:http';
import WebSocket from 'ws';

const here = fileURLToPath(new URL('.', import.meta.url));
const arg = (n, d) => {
  const i = process.argv.indexOf('--' + n);
  return i >= 0 ? process.argv[i + 1] : d;
};
const main = arg('main', here + '../dist/src/main.js');
const conns = Number(arg('conns', 2000));
const port = Number(arg('port', 18600));
const wantSnapshot = arg('snapshot', '1') === '1';
const extraArgs = (arg('args', '') ?? '').split(' ').filter((a) => a !== '');
const token = 'ws-heap-token';
const children = [];
const stopAll = () => { for (const c of children) try { c.kill('SIGKILL'); } catch { /* gone */ } };
process.on('exit', stopAll);

function start(args, env = {}) {
  const c = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(c);
  let out = '';
  c.stdout.on('data', (d) => { out += d; });
  c.stderr.on('data', (d) => { out += d; });
  return { c, output: () => out };
}
async function until(cond, what, ms = 20000) {
  const t0 = Date.now();
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error('timed out waiting for ' + what);
    await sleep(50);
  }
}
const answers = (p) => new Promise((res) => {
  http.get({ host: '127.0.0.1', port: p, path: '/' }, (r) => { r.resume(); res(true); }).on('error', () => res(false));
});
function post(p, path, body) {
  return new Promise((res, rej) => {
    const r = http.request({ host: '127.0.0.1', port: p, path, method: 'POST', headers: { authorization: 'token ' + token, 'content-type': 'application/json' } }, (x) => { x.resume(); res(x.statusCode); });
    r.on('error', rej);
    r.end(JSON.stringify(body));
  });
}

const backend = start([here + 'backend.js', String(port + 3), 'W', 'ws']);
await until(() => answers(port + 3), 'backend');
const proxy = start(['--inspect=127.0.0.1:0', main, '--workers', '1', '--ip', '127.0.0.1', '--port', String(port), '--api-ip', '127.0.0.1', '--api-port', String(port + 1), '--default-target', `http://127.0.0.1:${port + 3}`, ...extraArgs], { CONFIGPROXY_AUTH_TOKEN: token });
const inspectUrl = await until(() => /Debugger listening on (ws:\/\/\S+)/.exec(proxy.output())?.[1], 'inspector url');
await until(() => answers(port), 'proxy');
if ((await post(port + 1, '/api/routes/user/w1', { target: `http://127.0.0.1:${port + 3}` })) > 201) throw new Error('route');

const insp = new WebSocket(inspectUrl, { maxPayload: 1 << 30 });
await new Promise((r, j) => { insp.once('open', r); insp.once('error', j); });
let id = 0;
const pending = new Map();
let chunks = [];
insp.on('message', (m) => {
  const j = JSON.parse(m);
  if (j.method === 'HeapProfiler.addHeapSnapshotChunk') chunks.push(j.params.chunk);
  else if (j.id !== undefined) { pending.get(j.id)?.(j); pending.delete(j.id); }
});
const call = (method, params = {}) => new Promise((res, rej) => {
  const i = ++id;
  pending.set(i, (j) => (j.error ? rej(new Error(method + ': ' + JSON.stringify(j.error))) : res(j.result)));
  insp.send(JSON.stringify({ id: i, method, params }));
});

async function reading() {
  await call('HeapProfiler.collectGarbage');
  await call('HeapProfiler.collectGarbage');
  const r = await call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true });
  const mem = JSON.parse(r.result.value);
  const smaps = {};
  for (const line of readFileSync(`/proc/${proxy.c.pid}/smaps_rollup`, 'utf8').split('\n')) {
    const m = /^(\w+):\s+(\d+) kB/.exec(line);
    if (m) smaps[m[1]] = Number(m[2]) * 1024;
  }
  // Resident bytes of glibc's main arena ([heap], brk) vs every other anonymous mapping (V8's
  // pages, thread arenas, stacks).
  let cur = '';
  smaps.brkHeap = 0;
  smaps.otherAnon = 0;
  for (const line of readFileSync(`/proc/${proxy.c.pid}/smaps`, 'utf8').split('\n')) {
    const h = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (h) { cur = h[1]; continue; }
    const m = /^Anonymous:\s+(\d+) kB/.exec(line);
    if (m) { if (cur === '[heap]') smaps.brkHeap += Number(m[1]) * 1024; else smaps.otherAnon += Number(m[1]) * 1024; }
  }
  let byName;
  if (wantSnapshot) {
    chunks = [];
    await call('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
    byName = summarize(JSON.parse(chunks.join('')));
    chunks = [];
  }
  return { mem, smaps, byName };
}

// Heap snapshot -> Map("type name" -> {count, bytes}) (shallow sizes).
function summarize(s) {
  const f = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const n = f.length;
  const iType = f.indexOf('type'), iName = f.indexOf('name'), iSize = f.indexOf('self_size');
  const out = new Map();
  for (let i = 0; i < s.nodes.length; i += n) {
    const type = types[s.nodes[i + iType]];
    let name = s.strings[s.nodes[i + iName]];
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = '';
    if (type === 'number') name = '';
    if (name.length > 60) name = name.slice(0, 60) + '…';
    const k = `${type} ${name}`;
    const e = out.get(k) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += s.nodes[i + iSize];
    out.set(k, e);
  }
  return out;
}

const before = await reading();
const sockets = [];
let next = 0;
async function opener() {
  while (next < conns) {
    next++;
    const ws = new WebSocket(`ws://127.0.0.1:${port}/user/w1/ws`, { perMessageDeflate: false });
    await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
    await new Promise((r) => { ws.once('message', r); ws.send(Buffer.alloc(32, 'x')); });
    sockets.push(ws);
  }
}
await Promise.all(Array.from({ length: 100 }, opener));
await sleep(1000);
const after = await reading();

const per = (a, b) => ((b - a) / conns).toFixed(0);
const result = {
  conns,
  main,
  per_ws_bytes: {
    rss: per(before.mem.rss, after.mem.rss),
    heapUsed: per(before.mem.heapUsed, after.mem.heapUsed),
    heapTotal: per(before.mem.heapTotal, after.mem.heapTotal),
    external: per(before.mem.external, after.mem.external),
    arrayBuffers: per(before.mem.arrayBuffers, after.mem.arrayBuffers),
    smaps_Anonymous: per(before.smaps.Anonymous, after.smaps.Anonymous),
    smaps_Rss: per(before.smaps.Rss, after.smaps.Rss),
    malloc_main_arena: per(before.smaps.brkHeap, after.smaps.brkHeap),
    other_anonymous: per(before.smaps.otherAnon, after.smaps.otherAnon),
  },
};
if (wantSnapshot) {
  const rows = [];
  for (const [k, a] of after.byName) {
    const b = before.byName.get(k) ?? { count: 0, bytes: 0 };
    const dc = (a.count - b.count) / conns;
    const db = (a.bytes - b.bytes) / conns;
    if (dc >= 0.9 || db >= 16) rows.push([k, +dc.toFixed(2), +db.toFixed(0)]);
  }
  rows.sort((x, y) => y[2] - x[2]);
  result.heap_per_ws = rows.slice(0, 60);
  result.heap_total_per_ws = rows.reduce((t, r) => t + r[2], 0);
}
console.log(JSON.stringify(result, null, 1));
for (const ws of sockets) ws.terminate();
insp.close();
stopAll();
void backend;
process.exit(0);
