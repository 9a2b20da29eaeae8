// CPU per slow-path (undici) request: chunked POSTs, keep-alive, conc 4; flags alternate
import { spawn } from 'node:child_process';
import http from 'node:http';
import { readFileSync } from 'node:fs';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const IP='127.0.0.1', PB=18490, PP=18492; const MAIN = process.argv[2];
const N = Number(process.env.N ?? 3000);
const backend = spawn(process.execPath, ['/work/wt/lean/bench/backend.js', String(PB)], { stdio: 'ignore' });
await sleep(300);
const ticks = (pid) => { const s = readFileSync(`/proc/${pid}/stat`, 'utf8'); const f = s.slice(s.lastIndexOf(')') + 2).split(' '); return Number(f[11]) + Number(f[12]); };
const rss = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
async function load(n, chunked) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  let next = 0, bad = 0;
  const w = async () => { while (next < n) { next++; const st = await new Promise((res) => { const r = http.request({ host: IP, port: PP, path: '/p', method: chunked ? 'POST' : 'GET', agent, headers: chunked ? { 'transfer-encoding': 'chunked' } : {} }, (s) => { s.resume(); s.on('end', () => res(s.statusCode)); }); r.on('error', () => res(0)); if (chunked) { r.write('x'.repeat(100)); } r.end(); }); if (st !== 200) bad++; } };
  await Promise.all([w(), w(), w(), w()]); agent.destroy(); return bad;
}
const res = {};
for (let round = 0; round < Number(process.env.ROUNDS ?? 3); round++) {
  for (const flags of [[], ['--liftoff-only'], ['--no-wasm-tier-up']]) {
    const sy = spawn(process.execPath, [...flags, MAIN, '--ip', IP, '--port', String(PP), '--api-ip', IP, '--api-port', String(PP+1), '--default-target', `http://${IP}:${PB}`, '--workers', '1'], { stdio: 'ignore', env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: 't' } });
    while (true) { const ok = await new Promise((res) => { const r = http.get({ host: IP, port: PP, path: '/', agent: false }, (s) => { s.resume(); res(s.statusCode === 200); }); r.on('error', () => res(false)); }); if (ok) break; await sleep(10); }
    await load(500, true);
    const t0 = ticks(sy.pid); const bad = await load(N, true); const t1 = ticks(sy.pid);
    const key = flags.join(' ') || 'default'; (res[key] ??= []).push({ usPerReq: (t1 - t0) * 10000 / N, rss: rss(sy.pid), bad });
    console.error(key, ((t1 - t0) * 10000 / N).toFixed(1), 'us/req cpu', rss(sy.pid).toFixed(1), 'MiB', bad);
    sy.kill('SIGTERM'); await new Promise((r) => sy.on('exit', r));
  }
}
console.log(JSON.stringify(res));
backend.kill();
