// RSS of a proxy holding N uploads to an upstream that never reads.
import net from 'node:net'; import { readFileSync } from 'node:fs'; import { spawn } from 'node:child_process';
const N = Number(process.argv[2] ?? 200); const mode = process.argv[3];
const rss = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const up = net.createServer((s) => { s.pause(); s.on('error', () => {}); }); await new Promise((r) => up.listen(0, '127.0.0.1', r));
const port = 18950 + (mode === 'node' ? 2 : 0);
const env = { ...process.env, CONFIGPROXY_AUTH_TOKEN: 't' }; if (mode === 'node') env.SWITCHYARD_CLIENT_READS = 'node';
const p = spawn(process.execPath, ['/work/wt/uploadrss/dist/src/main.js', '--workers', '1', '--ip', '127.0.0.1', '--port', String(port), '--api-ip', '127.0.0.1', '--api-port', String(port + 1)], { env, stdio: 'ignore' });
for (let i = 0; i < 100; i++) { try { const r = await fetch(`http://127.0.0.1:${port + 1}/api/routes/up`, { method: 'POST', headers: { authorization: 'token t' }, body: JSON.stringify({ target: `http://127.0.0.1:${up.address().port}` }) }); if (r.ok) break; } catch {} await new Promise((r) => setTimeout(r, 100)); }
const before = rss(p.pid);
const socks = [];
const chunk = Buffer.alloc(64 * 1024, 7);
for (let i = 0; i < N; i++) {
  const s = net.connect(port, '127.0.0.1'); s.on('error', () => {}); socks.push(s);
  s.write(`PUT /up/x HTTP/1.1\r\nHost: x\r\nContent-Length: ${64 * 1024 * 1024}\r\n\r\n`);
  let sent = 0; const pump = () => { while (sent < 64 * 1024 * 1024) { sent += chunk.length; if (!s.write(chunk)) return s.once('drain', pump); } }; pump();
}
// wait until the proxy stops taking bytes: RSS stable over 1 s (bounded: 30 s)
let last = 0; for (let i = 0; i < 60; i++) { await new Promise((r) => setTimeout(r, 500)); const now = rss(p.pid); if (Math.abs(now - last) < 512 && i > 3) break; last = now; }
console.log(JSON.stringify({ mode, conns: N, rss_before_mib: +(before / 1024).toFixed(1), rss_held_mib: +(rss(p.pid) / 1024).toFixed(1) }));
for (const s of socks) s.destroy(); p.kill(); up.close(); process.exit(0);
