// Request bodies through the fast path's client reads (client-reads.ts, fast-path.ts): between
// bodies a client socket reads into one buffer shared by every connection of the process, and
// during a body into free-list buffers written upstream straight from them and held while an
// upstream write still refers to them. If a buffer came back early — or a byte of the shared one
// were kept past its read — another read would overwrite bytes still queued for an upstream, and
// the upstream would receive someone else's bytes: so many clients upload at once through one
// process, to a fast and a slow upstream (which holds writes queued: backpressure), bodies of
// random sizes in random-sized writes, several per keep-alive connection; the upstream answers
// each body's SHA-256, compared with what was sent. Then, on single connections: small reads
// queued on a stalled upstream (each read buffer held), a partial head and a request pipelined
// behind a held one with another connection's read in between (kept as copies, not views of the
// shared buffer), requests pipelined behind an upload (in the same write as its last bytes), an upload followed by a
// websocket upgrade (handed to node:http, whose reads must be ordinary again), a chunked upload
// (handed over at its head), and a client that aborts mid-upload (the proxy goes on serving).
// All of it once with reused client buffers and once with Node's own reads
// (SWITCHYARD_CLIENT_READS=node, the fallback).

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { rng } from '../helpers/rng.js';
import { listen0, startSwitchyardProcess, waitFor, type TestContextLike } from '../helpers/servers.js';

const SOURCE = randomBytes(8 * 1024 * 1024);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/**
 * Upstream (node:http): any request answers `<bytes> <sha256>` of its body; under /slow/ it
 * pauses the body stream after each chunk (1-3 ms), so the proxy's writes to it stay queued;
 * under /stall/ it reads nothing until `release()`. An upgrade request is accepted and echoes
 * what follows.
 */
async function upstream(t: TestContextLike): Promise<{ port: number; stalled: () => number; release: () => void }> {
  const stalled = new Set<http.IncomingMessage>();
  const server = http.createServer((req, res) => {
    const h = createHash('sha256');
    let n = 0;
    const slow = req.url?.includes('/slow/') === true;
    if (req.url?.includes('/stall/') === true) {
      req.pause();
      stalled.add(req);
    }
    req.on('data', (c: Buffer) => {
      h.update(c);
      n += c.length;
      if (slow) {
        req.pause();
        setTimeout(() => req.resume(), 1 + (n % 3));
      }
    });
    req.on('end', () => res.end(`${n} ${h.digest('hex')}`));
    req.on('error', () => {});
  });
  const upgraded = new Set<net.Socket>();
  server.on('upgrade', (_req, s: net.Socket, head: Buffer) => {
    upgraded.add(s);
    s.on('close', () => upgraded.delete(s));
    s.on('end', () => s.end());
    s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
    if (head.length > 0) s.write(head);
    s.on('data', (d: Buffer) => s.write(d));
    s.on('error', () => {});
  });
  const port = await listen0(server);
  t.after(() => {
    server.closeAllConnections();
    for (const s of upgraded) s.destroy(); // (not the server's connections any more)
    return new Promise<void>((r) => server.close(() => r()));
  });
  const release = (): void => {
    for (const r of stalled) r.resume();
    stalled.clear();
  };
  return { port, stalled: () => stalled.size, release };
}

/** A raw client connection collecting what it reads. */
async function raw(port: number): Promise<{ sock: net.Socket; out: () => string }> {
  const sock = net.connect(port, '127.0.0.1');
  sock.on('error', () => {});
  let out = '';
  sock.setEncoding('latin1');
  sock.on('data', (d: string) => (out += d));
  await new Promise<void>((r) => sock.once('connect', r));
  return { sock, out: () => out };
}

/** Writes `b` in random pieces, waiting for 'drain' when asked to. */
async function writePieces(sock: net.Socket, b: Buffer, rand: () => number): Promise<void> {
  for (let at = 0; at < b.length; ) {
    const n = Math.min(b.length - at, 1 + Math.floor(rand() * (rand() < 0.3 ? 500 : 400_000)));
    if (!sock.write(b.subarray(at, at + n))) await new Promise<void>((r) => sock.once('drain', r).once('close', r));
    at += n;
  }
}

/** One PUT over `agent`; resolves the upstream's `<bytes> <sha256>`. */
function put(port: number, agent: http.Agent, path: string, body: Buffer, rand: () => number): Promise<string> {
  return new Promise((resolve, reject) => {
    const q = http.request({ host: '127.0.0.1', port, path, method: 'PUT', agent, headers: { 'content-length': body.length } }, (res) => {
      let text = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`${path}: ${res.statusCode} ${text}`))));
    });
    q.on('error', reject);
    void (async () => {
      for (let at = 0; at < body.length; ) {
        const n = Math.min(body.length - at, 1 + Math.floor(rand() * (rand() < 0.3 ? 500 : 400_000)));
        if (!q.write(body.subarray(at, at + n))) await new Promise<void>((r) => q.once('drain', r));
        at += n;
      }
      q.end();
    })();
  });
}

for (const mode of ['reused', 'node'] as const) {
  test(`uploads through the fast path (client reads: ${mode}): every byte as the client sent it`, { timeout: 180_000 }, async (t) => {
    const up = await upstream(t);
    const upPort = up.port;
    const env: Record<string, string> = { CONFIGPROXY_AUTH_TOKEN: 'l' };
    if (mode === 'node') env.SWITCHYARD_CLIENT_READS = 'node';
    const p = await startSwitchyardProcess(t, ['--workers', '1', '--log-level', 'debug'], env);
    await p.api('POST', '/api/routes/up', { target: `http://127.0.0.1:${upPort}` });
    await waitFor(() => (mode === 'reused' ? /client sockets read into reused buffers/ : /client sockets use Node's own read buffers/).test(p.output()), 5000, 'the client-reads log line');
    const seed = Number(process.env.LARGE_UPLOADS_SEED ?? Date.now() % 1_000_000);
    t.diagnostic(`seed ${seed} (LARGE_UPLOADS_SEED=${seed} repeats this run)`);

    // Many clients at once, fast and slow upstream, several uploads per connection.
    const CLIENTS = 6;
    const PER_CLIENT = mode === 'reused' ? 5 : 3;
    let total = 0;
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, k) => {
        const rand = rng(seed * 31 + k);
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        try {
          for (let i = 0; i < PER_CLIENT; i++) {
            const r = rand();
            const len = 1 + Math.floor(rand() * (r < 0.2 ? 3000 : r < 0.8 ? 2 * 1024 * 1024 : 6 * 1024 * 1024));
            const off = Math.floor(rand() * (SOURCE.length - len));
            const body = SOURCE.subarray(off, off + len);
            const path = `/up/${k % 2 === 0 ? 'slow' : 'fast'}/${k}/${i}`;
            assert.equal(await put(p.proxyPort, agent, path, body, rand), `${len} ${sha(body)}`, `${path}: the upstream got other bytes`);
            total += len;
          }
        } finally {
          agent.destroy();
        }
      }),
    );
    t.diagnostic(`${CLIENTS * PER_CLIENT} uploads, ${(total / 2 ** 20).toFixed(1)} MiB compared`);

    // Small reads queued on a stalled upstream: once the kernel's buffers towards it are full,
    // each read's bytes stay queued (below the socket's highWaterMark: no 'drain' due), so each
    // read buffer must be held and the next read go into another. The client writes 2 KiB at a
    // time, one per event-loop turn, so that the proxy reads small pieces.
    {
      const { sock, out } = await raw(p.proxyPort);
      const body = Buffer.concat([SOURCE, randomBytes(24 * 1024 * 1024)]); // more than the kernel's buffers on the way
      sock.write(`PUT /up/stall/small HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`);
      await waitFor(() => up.stalled() === 1, 5000, 'the stalled upstream request');
      let at = 0;
      // Until the proxy stops reading (our socket's queue grows), or the body is out.
      while (at < body.length && sock.writableLength < 512 * 1024) {
        sock.write(body.subarray(at, at + 2048));
        at += 2048;
        await new Promise((r) => setImmediate(r));
      }
      t.diagnostic(`stalled upstream: ${(at / 2 ** 20).toFixed(1)} MiB written in 2 KiB pieces before the proxy stopped reading`);
      up.release();
      await writePieces(sock, body.subarray(at), rng(seed + 5));
      await waitFor(() => out().includes(`${body.length} ${sha(body)}`), 30_000, 'the stalled upload answered with the bytes sent');
      sock.destroy();
    }

    // A head split over two writes, another connection's request in between (read into the
    // buffer shared between bodies): the first part must have been kept as a copy.
    {
      const a = await raw(p.proxyPort);
      const b = await raw(p.proxyPort);
      a.sock.write('PUT /up/fast/split HTTP/1.1\r\nHost: x\r\nConte');
      b.sock.write('PUT /up/fast/other HTTP/1.1\r\nHost: y\r\nContent-Length: 5\r\n\r\nzzzzz');
      await waitFor(() => b.out().includes(`5 ${sha(Buffer.from('zzzzz'))}`), 10_000, 'the other connection answered');
      a.sock.write('nt-Length: 4\r\n\r\nabcd');
      await waitFor(() => a.out().includes(`4 ${sha(Buffer.from('abcd'))}`), 10_000, 'the split request answered'); // the body, not only the head
      assert.match(a.out(), new RegExp(`^HTTP/1.1 200[^]*4 ${sha(Buffer.from('abcd'))}$`), 'the split head and its body as sent');
      a.sock.destroy();
      b.sock.destroy();
    }

    // A request pipelined behind one the upstream holds, both in one write (one read, into the
    // buffer shared between bodies), another connection's request in between: the pipelined
    // bytes must have been kept as a copy.
    {
      const a = await raw(p.proxyPort);
      const b = await raw(p.proxyPort);
      a.sock.write('PUT /up/stall/first HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab' + 'PUT /up/fast/second HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nwxyz');
      await waitFor(() => up.stalled() === 1, 5000, 'the held request');
      b.sock.write('PUT /up/fast/other HTTP/1.1\r\nHost: y\r\nContent-Length: 5\r\n\r\nzzzzz');
      await waitFor(() => b.out().includes(`5 ${sha(Buffer.from('zzzzz'))}`), 10_000, 'the other connection answered');
      up.release();
      await waitFor(() => a.out().includes(`4 ${sha(Buffer.from('wxyz'))}`), 10_000, 'the pipelined request answered as sent');
      assert.ok(a.out().includes(`2 ${sha(Buffer.from('ab'))}`));
      a.sock.destroy();
      b.sock.destroy();
    }

    // Pipelined: two small uploads and a GET behind a large one, the next heads in the same
    // write as the large body's last bytes.
    {
      const rand = rng(seed);
      const { sock, out } = await raw(p.proxyPort);
      const big = SOURCE.subarray(7, 7 + 3 * 1024 * 1024);
      const a = SOURCE.subarray(100, 100 + 70_000);
      const tail = Buffer.concat([
        big.subarray(big.length - 1000),
        Buffer.from(`PUT /up/fast/a HTTP/1.1\r\nHost: x\r\nContent-Length: ${a.length}\r\n\r\n`),
        a,
        Buffer.from('PUT /up/slow/b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyzGET /up/fast/c HTTP/1.1\r\nHost: x\r\n\r\n'),
      ]);
      sock.write(`PUT /up/slow/big HTTP/1.1\r\nHost: x\r\nContent-Length: ${big.length}\r\n\r\n`);
      await writePieces(sock, big.subarray(0, big.length - 1000), rand);
      sock.write(tail);
      const want = [`${big.length} ${sha(big)}`, `${a.length} ${sha(a)}`, `3 ${sha(Buffer.from('xyz'))}`, `0 ${sha(Buffer.alloc(0))}`];
      await waitFor(() => want.every((w) => out().includes(w)), 30_000, 'four pipelined answers');
      const order = want.map((w) => out().indexOf(w));
      assert.deepEqual(order, [...order].sort((x, y) => x - y), 'answered in order');
      sock.destroy();
    }

    // An upload, then a websocket upgrade on the same connection (handed to node:http), then
    // bytes both ways.
    {
      const { sock, out } = await raw(p.proxyPort);
      const body = SOURCE.subarray(1000, 1000 + 1024 * 1024);
      sock.write(`PUT /up/fast/u HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`);
      await writePieces(sock, body, rng(seed + 1));
      await waitFor(() => out().includes(`${body.length} ${sha(body)}`), 10_000, 'the upload answered');
      sock.write('GET /up/ws HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nhead-bytes');
      await waitFor(() => out().includes('101 Switching Protocols') && out().endsWith('head-bytes'), 10_000, 'the upgrade and its head echoed');
      const echo = SOURCE.subarray(5000, 5000 + 512 * 1024);
      const before = out().length;
      await writePieces(sock, echo, rng(seed + 2));
      await waitFor(() => out().length >= before + echo.length, 10_000, 'the echo');
      assert.equal(sha(Buffer.from(out().slice(before), 'latin1')), sha(echo), 'echoed bytes differ from those sent');
      sock.destroy();
    }

    // A chunked upload (handed over at its head) after a Content-Length one on one connection.
    {
      const { sock, out } = await raw(p.proxyPort);
      const a = SOURCE.subarray(9, 9 + 300_000);
      const b = SOURCE.subarray(50, 50 + 200_000);
      sock.write(Buffer.concat([Buffer.from(`PUT /up/fast/cl HTTP/1.1\r\nHost: x\r\nContent-Length: ${a.length}\r\n\r\n`), a]));
      await waitFor(() => out().includes(`${a.length} ${sha(a)}`), 10_000, 'the Content-Length upload');
      sock.write('PUT /up/slow/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
      for (let at = 0; at < b.length; at += 70_000) {
        const piece = b.subarray(at, at + 70_000);
        sock.write(Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]));
      }
      sock.write('0\r\n\r\n');
      await waitFor(() => out().includes(`${b.length} ${sha(b)}`), 10_000, 'the chunked upload');
      sock.destroy();
    }

    // A client that leaves mid-upload (slow upstream: writes queued), then the proxy serves on.
    {
      const { sock } = await raw(p.proxyPort);
      sock.write(`PUT /up/slow/abort HTTP/1.1\r\nHost: x\r\nContent-Length: ${SOURCE.length}\r\n\r\n`);
      await writePieces(sock, SOURCE.subarray(0, 3 * 1024 * 1024), rng(seed + 3));
      sock.resetAndDestroy();
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const body = SOURCE.subarray(77, 77 + 2 * 1024 * 1024);
      assert.equal(await put(p.proxyPort, agent, '/up/fast/after', body, rng(seed + 4)), `${body.length} ${sha(body)}`);
      agent.destroy();
    }
  });
}
