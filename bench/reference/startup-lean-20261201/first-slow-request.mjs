// latency of the first slow-path (chunked POST) request in a fresh --workers 1 process, and of a second one
import { spawn } from 'node:child_process';
import http from 'node:http';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const IP='127.0.0.1', PB=18494, PP=18496;
const backend = spawn(process.execPath, ['/work/wt/lean/bench/backend.js', String(PB)], { stdio: 'ignore' });
await sleep(300);
const post = () => new Promise((res) => { const t = performance.now(); const r = http.request({ host: IP, port: PP, path: '/p', method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked' } }, (s) => { let b = ''; s.on('data', (d) => b += d); s.on('end', () => res([s.statusCode, performance.now() - t, b.trim()])); }); r.on('error', () => res([0, 0])); r.end('hello'); });
const out = {};
for (let round = 0; round < Number(process.env.ROUNDS ?? 5); round++) for (const [name, main] of [['lazy', '/work/wt/lean/dist/src/main.js'], ['base', '/work/wt/lean-base/dist/src/main.js']]) {
  const sy = spawn(process.execPath, [main, '--ip', IP, '--port', String(PP), '--api-ip', IP, '--api-port', String(PP+1), '--default-target', `http://${IP}:${PB}`, '--workers', '1'], { stdio: 'ignore', env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: 't' } });
  while (true) { const ok = await new Promise((res) => { const r = http.get({ host: IP, port: PP, path: '/', agent: false }, (s) => { s.resume(); res(s.statusCode === 200); }); r.on('error', () => res(false)); }); if (ok) break; await sleep(10); }
  await sleep(500);
  const a = await post(); const b = await post();
  (out[name] ??= []).push([+a[1].toFixed(1), +b[1].toFixed(1)]);
  console.error(name, a, b);
  sy.kill('SIGTERM'); await new Promise((r) => sy.on('exit', r));
}
console.log(JSON.stringify(out));
backend.kill();
