// How many TCP connections a Switchyard primary's etcd client holds to each etcd member, before and
// after the leader is SIGKILLed and restarted (the soak's etcd members ended with +3 client fds:
// each replica's client went from 1 to 2 connections per member; bench/README.md, soak section).
//
//   npx tsc -p tsconfig.json && node bench/etcd-client-connections.mjs            # 16 concurrent writers
//   WRITERS=0 node bench/etcd-client-connections.mjs                              # sequential writes only
//
// A 3-member etcd (test/helpers/etcd.ts), one replica (--workers 2) on it; WRITERS API clients POST
// routes back to back the whole time, and the script writes batches itself. Prints the client's
// connections per member (local port / TCP state) at the start, with the leader down, after it is
// back, and every 10 s for 40 s. Measured 2026-11-30: WRITERS=0 kept one connection per member (the
// dead member's replaced); 16 writers left 5-6 (3 / 1 / 2, 2 / 1 / 2) that stayed. Cause and fix:
// keepChannels in src/store/etcd-connection.ts; with it (commit after 878bf0e) 16 writers keep
// 1 / 1 / 1 (the restarted member's connection replaced), also 40 s later. Everything started is killed.

import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const { startEtcd } = await import(join(dist, 'test', 'helpers', 'etcd.js'));
const WRITERS = Number(process.env.WRITERS ?? 16);
const cleanups = [];
const t = { after: (fn) => cleanups.push(fn) };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const etcd = await startEtcd(t, 3);
const sw = spawn(process.execPath, [join(dist, 'src', 'main.js'), '--ip', '127.0.0.1', '--port', '0', '--api-ip', '127.0.0.1', '--api-port', '0', '--store', `etcd://${etcd.endpoints}`, '--workers', '2'], { env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: 'x' }, stdio: ['ignore', 'pipe', 'pipe'] });
cleanups.push(() => sw.kill('SIGKILL'));
let out = '';
sw.stdout.on('data', (c) => (out += c));
sw.stderr.on('data', (c) => (out += c));
let stop = false;
const writers = [];
try {
  for (let i = 0; i < 300 && !/Proxy API at .*:(\d+)\/api/.test(out); i++) await sleep(100);
  const api = Number(/Proxy API at .*:(\d+)\/api/.exec(out)?.[1]);
  if (!api) throw new Error(`switchyard did not start:\n${out}`);
  const names = new Map(etcd.members.map((m) => [m.clientPort, m.name]));
  const connections = () => {
    const tcp = new Map();
    for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
      for (const l of readFileSync(f, 'utf8').split('\n').slice(1)) {
        const c = l.trim().split(/\s+/);
        if (c.length > 9) tcp.set(c[9], { lport: parseInt(c[1].split(':')[1], 16), rport: parseInt(c[2].split(':')[1], 16), state: c[3] });
      }
    }
    const by = {};
    for (const fd of readdirSync(`/proc/${sw.pid}/fd`)) {
      try {
        const s = tcp.get(/socket:\[(\d+)\]/.exec(readlinkSync(`/proc/${sw.pid}/fd/${fd}`))?.[1]);
        if (s && names.has(s.rport)) (by[names.get(s.rport)] ??= []).push(`${s.lport}/${s.state}`);
      } catch {
        // closed meanwhile
      }
    }
    return JSON.stringify(by);
  };
  let n = 0;
  const write = async (k) => {
    for (let i = 0; i < k; i++) {
      await fetch(`http://127.0.0.1:${api}/api/routes/r${n++ % 50}`, { method: 'POST', headers: { authorization: 'token x' }, body: JSON.stringify({ target: 'http://127.0.0.1:1' }), signal: AbortSignal.timeout(10_000) })
        .then((r) => r.text(), () => undefined);
    }
  };
  for (let i = 0; i < WRITERS; i++) writers.push((async () => { while (!stop) await write(1); })());
  await write(50);
  console.log('start      ', connections());
  const leader = await etcd.leader();
  await etcd.stop(leader, 'SIGKILL');
  await write(30);
  console.log(`${leader.name} down    `, connections());
  await sleep(5000);
  await etcd.start(leader);
  await etcd.waitHealthy(leader, 30_000);
  await write(50);
  console.log(`${leader.name} back    `, connections());
  for (let k = 1; k <= 4; k++) {
    await sleep(10_000);
    await write(20);
    console.log(`+${k * 10} s      `, connections());
  }
} finally {
  stop = true;
  await Promise.race([Promise.all(writers), sleep(15_000)]);
  for (const c of cleanups.reverse()) await c();
}
