// Large response bodies through the fast path's reused read buffers (read-buffers.ts): a buffer
// goes back to the free list only when the client writes that carry its bytes have completed. If
// one came back early, another upstream read would overwrite bytes still queued for a slow
// client, and that client would receive someone else's bytes: so many clients, slow and fast,
// share one process (one free list) and fetch bodies of random sizes in every framing the fast
// path relays (Content-Length passed through; chunked and close-delimited re-framed), each body
// compared by SHA-256 with what the upstream sent. Keep-alive reuse (client side and pooled
// upstream side) is exercised by several requests per client connection; an upstream reset
// mid-body must cut the client's connection, never end a response that looks complete.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { rng } from '../helpers/rng.js';
import { listen0, startSwitchyardProcess, type TestContextLike } from '../helpers/servers.js';

const SOURCE = randomBytes(16 * 1024 * 1024);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * Raw upstream: GET /big/<offset>/<size>/<mode>[/<seed>] answers SOURCE[offset, offset+size) as
 * mode `cl` (Content-Length), `chunked` (random chunk sizes) or `close` (close-delimited), written
 * in random-sized pieces with backpressure; mode `reset` sends a Content-Length head and half the
 * body, then resets the connection.
 */
async function upstream(t: TestContextLike): Promise<number> {
  const socks = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    socks.add(sock);
    sock.on('close', () => socks.delete(sock));
    sock.on('error', () => {});
    let buf = '';
    let busy = false;
    const queue: string[] = [];
    const serveNext = async (): Promise<void> => {
      if (busy) return;
      busy = true;
      while (queue.length > 0 && !sock.destroyed) await serve(sock, queue.shift()!);
      busy = false;
    };
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\r\n\r\n')) !== -1) {
        queue.push(buf.slice(0, i).split(' ')[1]!);
        buf = buf.slice(i + 4);
      }
      void serveNext();
    });
  });
  const port = await listen0(server);
  t.after(() => {
    for (const s of socks) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return port;
}

async function serve(sock: net.Socket, path: string): Promise<void> {
  const [, , off, len, mode, seed] = path.split('/');
  const body = SOURCE.subarray(Number(off), Number(off) + Number(len));
  const rand = rng(Number(seed ?? 1));
  const write = async (b: Buffer | string): Promise<void> => {
    if (!sock.write(b)) await new Promise<void>((r) => sock.once('drain', r).once('close', r));
  };
  const pieces = async (b: Buffer, framed: boolean): Promise<void> => {
    for (let at = 0; at < b.length && !sock.destroyed; ) {
      const n = Math.min(b.length - at, 1 + Math.floor(rand() * (rand() < 0.3 ? 200 : 300_000)));
      const piece = b.subarray(at, at + n);
      if (framed) await write(Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`), piece, Buffer.from('\r\n')]));
      else await write(piece);
      at += n;
    }
  };
  if (mode === 'cl') {
    await write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
    await pieces(body, false);
  } else if (mode === 'chunked') {
    await write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
    await pieces(body, true);
    await write('0\r\n\r\n');
  } else if (mode === 'close') {
    await write('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n');
    await pieces(body, false);
    sock.end();
  } else {
    await write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
    await write(body.subarray(0, body.length >> 1));
    sock.resetAndDestroy();
  }
}

interface Got {
  status: number;
  digest: string;
  bytes: number;
}

/**
 * One GET on `agent`. A slow client pauses after each chunk (0-2 ms, and 10-30 ms after every
 * 8th): the kernel's socket buffers fill up and the proxy's writes to it stay queued, which is
 * when the proxy must hold read buffers back (without the pauses the kernel takes every write).
 */
function get(port: number, agent: http.Agent, path: string, slow: boolean, rand: () => number): Promise<Got> {
  return new Promise((resolve, reject) => {
    const q = http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      const h = createHash('sha256');
      let bytes = 0;
      let chunks = 0;
      res.on('data', (c: Buffer) => {
        h.update(c);
        bytes += c.length;
        if (slow) {
          res.pause();
          setTimeout(() => res.resume(), ++chunks % 8 === 0 ? 10 + Math.floor(rand() * 20) : Math.floor(rand() * 3));
        }
      });
      res.on('end', () => (res.complete ? resolve({ status: res.statusCode ?? 0, digest: h.digest('hex'), bytes }) : reject(new Error(`${path}: incomplete response`))));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error(`${path}: aborted`)));
    });
    q.on('error', reject);
  });
}

test('large bodies, slow and fast clients sharing the read buffers: every byte as the upstream sent it', { timeout: 180_000 }, async (t) => {
  const upPort = await upstream(t);
  const p = await startSwitchyardProcess(t, ['--workers', '1'], { CONFIGPROXY_AUTH_TOKEN: 'l' });
  await p.api('POST', '/api/routes/big', { target: `http://127.0.0.1:${upPort}` });
  const seed = Number(process.env.LARGE_BODIES_SEED ?? Date.now() % 1_000_000);
  t.diagnostic(`seed ${seed} (LARGE_BODIES_SEED=${seed} repeats this run)`);
  const modes = ['cl', 'chunked', 'close'];
  const CLIENTS = 8;
  const PER_CLIENT = 5;
  let total = 0;
  const client = async (k: number): Promise<void> => {
    const rand = rng(seed * 31 + k);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let i = 0; i < PER_CLIENT; i++) {
        const r = rand();
        const len = 1 + Math.floor(rand() * (r < 0.2 ? 2000 : r < 0.8 ? 3 * 1024 * 1024 : 12 * 1024 * 1024));
        const off = Math.floor(rand() * (SOURCE.length - len));
        const mode = modes[Math.floor(rand() * modes.length)]!;
        const slow = k % 2 === 0;
        const path = `/big/${off}/${len}/${mode}/${seed + k * 100 + i}`;
        const got = await get(p.proxyPort, agent, path, slow, rand);
        assert.equal(got.status, 200, path);
        assert.equal(got.bytes, len, `${path}: length`);
        assert.equal(got.digest, sha(SOURCE.subarray(off, off + len)), `${path}: bytes differ from what the upstream sent (slow=${slow})`);
        total += len;
      }
    } finally {
      agent.destroy();
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, (_, k) => client(k)));
  t.diagnostic(`${CLIENTS * PER_CLIENT} responses, ${(total / 2 ** 20).toFixed(1)} MiB compared`);

  // An upstream reset mid-body, to a slow and to a fast client: the client's connection is cut
  // (node:http sees an incomplete response), and the proxy goes on serving.
  for (const slow of [true, false]) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const rand = rng(seed);
    await assert.rejects(get(p.proxyPort, agent, `/big/0/${2 * 1024 * 1024}/reset/1`, slow, rand), /incomplete|aborted|ECONNRESET|socket hang up/);
    agent.destroy();
  }
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const after = await get(p.proxyPort, agent, `/big/5/${1024 * 1024}/cl/2`, false, rng(1));
  agent.destroy();
  assert.equal(after.digest, sha(SOURCE.subarray(5, 5 + 1024 * 1024)));
});
