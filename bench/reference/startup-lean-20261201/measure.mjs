// node measure.mjs MAIN [label] : spawns backend + switchyard --workers 1 with probe, samples
import { spawn } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const OUTDIR = mkdtempSync(join(tmpdir(), 'probe-'));
const MAIN = process.argv[2];
const label = process.argv[3] ?? 'x';
const slow = process.env.SLOW === '1';
const extra = (process.env.NODE_FLAGS ?? '').split(' ').filter(Boolean);
const IP = '127.0.0.1', PB = 18470, PP = 18472;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const backend = spawn(process.execPath, ['/work/wt/lean/bench/backend.js', String(PB)], { stdio: 'ignore' });
await sleep(300);
const sy = spawn(process.execPath, [...extra, '--import', '/work/wt/lean/bench/reference/startup-lean-20261201/probe.mjs', MAIN, '--ip', IP, '--port', String(PP), '--api-ip', IP, '--api-port', String(PP + 1), '--default-target', `http://${IP}:${PB}`, '--workers', '1'], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, PROBE_OUT: join(OUTDIR, label), CONFIGPROXY_AUTH_TOKEN: 't' } });
function req(port, path, opts = {}) {
  return new Promise((res) => {
    const r = http.request({ host: IP, port, path, agent: false, method: opts.method ?? 'GET', headers: opts.headers ?? {} }, (s) => { let b=''; s.on('data', (d) => b += d); s.on('end', () => res([s.statusCode, b])); });
    r.on('error', () => res([0, '']));
    if (opts.chunked) { r.write('abc'); r.end('def'); } else r.end();
  });
}
function smaps() {
  const t = readFileSync(`/proc/${sy.pid}/smaps_rollup`, 'utf8');
  const g = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(t)[1]) / 1024;
  return { rss: +g('Rss').toFixed(1), anon: +g('Anonymous').toFixed(1), pclean: +g('Private_Clean').toFixed(1), pdirty: +g('Private_Dirty').toFixed(1), sclean: +g('Shared_Clean').toFixed(1) };
}
const t0 = Date.now();
const snap = async (name) => { sy.kill('SIGUSR2'); await sleep(100); console.log(label, name, JSON.stringify(smaps())); };
// wait for api
while ((await req(PP + 1, '/api/routes', { headers: { authorization: 'token t' } }))[0] !== 200) { if (Date.now() - t0 > 20000) throw new Error('timeout'); await sleep(5); }
await snap('api-up');
for (let i = 0; i < 1; i++) console.log((await req(PP, '/startup'))[0]);
await snap('first-200');
await sleep(1000);
await snap('1s-later');
for (let i = 0; i < 100; i++) await req(PP, '/x' + i);
await snap('after-100-fast');
if (slow) {
  console.log('chunked', await req(PP, '/c', { method: 'POST', chunked: true }));
  await snap('after-1-slow');
  await sleep(1000);
  await snap('slow+1s');
  for (let i = 0; i < 100; i++) await req(PP, '/c' + i, { method: 'POST', chunked: true });
  await snap('after-100-slow');
}
sy.kill('SIGTERM'); backend.kill();
console.log('probe files (memoryUsage, heap spaces, loaded modules) in', OUTDIR, '- remove it when read');
