// Micro-measure for direct-writes.ts (needs direct-writes.patch applied and built): user/system CPU per write of a small buffer (a response
// head with a small body) and of a latin1 request head, through socket.write() and through
// direct-writes.ts, on a loopback connection whose peer (a child process) discards what it reads.
// Modes interleaved, ROUNDS rounds of N writes each; prints medians.
//   flock /work/wt/bench.lock timeout 200 bash scripts/with-node.sh 24 node bench/reference/writes-20261201/direct-writes-micro.mjs
import { fork } from 'node:child_process';
import net from 'node:net';
import { once } from 'node:events';
import { detectDirectWrites } from '../../../dist/src/dataplane/proxy/direct-writes.js';

if (process.argv[2] === 'sink') {
  const srv = net.createServer((s) => s.on('data', () => {}));
  srv.listen(0, '127.0.0.1', () => process.send(srv.address().port));
} else {
  const N = Number(process.env.N ?? 200_000);
  const ROUNDS = Number(process.env.ROUNDS ?? 7);
  const child = fork(new URL(import.meta.url).pathname, ['sink']);
  const [port] = await once(child, 'message');
  const s = net.connect({ port, host: '127.0.0.1', noDelay: true });
  await once(s, 'connect');
  s.setTimeout(60_000); // as the fast path's sockets: each write refreshes it
  const d = detectDirectWrites({});
  if (typeof d === 'string') throw new Error(d);
  const buf = Buffer.alloc(180, 'x');
  const head = 'GET /user/u1/api HTTP/1.1\r\nhost: 127.0.0.1:18622\r\nx-forwarded-for: 127.0.0.1\r\nconnection: keep-alive\r\n\r\n';
  const modes = {
    'write(buffer)': () => s.write(buf),
    'direct(buffer)': () => d.write(s, buf),
    'write(latin1)': () => s.write(head, 'latin1'),
    'direct(latin1)': () => d.write(s, head),
  };
  const res = Object.fromEntries(Object.keys(modes).map((k) => [k, []]));
  // Everything written so far is with the kernel: a write behind it has called back (bounded).
  const drain = async () => {
    if (s.writableLength > 0) {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no progress in 10 s')), 10_000);
        s.write(Buffer.alloc(0), () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    await new Promise((r) => setImmediate(r));
  };
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, fn] of Object.entries(modes)) {
      await drain();
      let done = 0;
      const c0 = process.cpuUsage();
      // Batches of 64 then a turn of the event loop (the sink keeps up; Writable's after-write ticks run).
      while (done < N) {
        for (let i = 0; i < 64; i++) fn();
        done += 64;
        if (s.writableLength > 0) await drain();
        else await new Promise((r) => setImmediate(r));
      }
      const c = process.cpuUsage(c0);
      res[name].push({ user: (c.user * 1000) / done, sys: (c.system * 1000) / done });
    }
  }
  const med = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
  console.log(`node ${process.version}, ${ROUNDS} rounds x ${N} writes; ns per write (median)`);
  for (const [name, a] of Object.entries(res)) {
    console.log(`${name.padEnd(16)} user ${med(a.map((x) => x.user)).toFixed(0)} sys ${med(a.map((x) => x.sys)).toFixed(0)}`);
  }
  s.destroy();
  child.kill();
}
