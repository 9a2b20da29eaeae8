// The fast path's writes (fast-path.ts; whole small messages through direct-writes.ts) once with
// writes straight to the sockets' handles and once through Node's Writable
// (SWITCHYARD_DIRECT_WRITES=node, the fallback): a slow-reading client with hundreds of pipelined
// requests of every kind (small responses, large ones under backpressure, chunked, HEAD, 204) gets
// every answer whole and in order, and so does one that reads nothing until ~7 MB of small answers
// were made — while its socket is full, small answers are queued by libuv and handed to Writable,
// and must neither overtake nor be overtaken; a client that resets with
// answers queued leaves the proxy serving; an upstream that resets mid-response or before its next
// response cuts or retries as before.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { listen0, startSwitchyardProcess, waitFor, type SpawnedSwitchyard, type TestContextLike } from '../helpers/servers.js';

function pattern(seed: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (seed * 131 + i * 7) & 0xff;
  return b;
}

/** The regular upstream: what each kind of request is answered with. */
async function upstream(t: TestContextLike): Promise<{ port: number; served: () => number }> {
  let served = 0;
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    served++;
    const [, , kind, a, b] = (req.url ?? '').split('/'); // /u/<kind>/<a>/<b>
    if (kind === 'big' || kind === 'inline') res.end(pattern(Number(b), Number(a)));
    else if (kind === 'chunked') {
      res.write(`c${a}-`);
      res.end('end');
    } else if (kind === 'none') {
      res.statusCode = 204;
      res.end();
    } else res.end(`s${a}`);
  });
  const port = await listen0(server);
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { port, served: () => served };
}

interface Req {
  method: string;
  path: string;
  /** Expected status and body. */
  status: number;
  body: Buffer;
}

function requests(n: number): Req[] {
  const out: Req[] = [];
  for (let i = 0; i < n; i++) {
    if (i % 40 === 7) out.push({ method: 'GET', path: `/u/big/${100_000 + i * 997}/${i}`, status: 200, body: pattern(i, 100_000 + i * 997) });
    else if (i % 30 === 5) out.push({ method: 'GET', path: `/u/chunked/${i}`, status: 200, body: Buffer.from(`c${i}-end`) });
    else if (i % 50 === 13) out.push({ method: 'HEAD', path: `/u/small/${i}`, status: 200, body: Buffer.alloc(0) });
    else if (i % 60 === 21) out.push({ method: 'GET', path: `/u/none/${i}`, status: 204, body: Buffer.alloc(0) });
    else out.push({ method: 'GET', path: `/u/small/${i}`, status: 200, body: Buffer.from(`s${i}`) });
  }
  return out;
}

/** Parses the responses to `reqs` (in order) out of `buf`; stops at the first incomplete one. */
function parse(buf: Buffer, reqs: Req[]): { status: number; body: Buffer }[] {
  const got: { status: number; body: Buffer }[] = [];
  let at = 0;
  while (got.length < reqs.length) {
    const end = buf.indexOf('\r\n\r\n', at);
    if (end === -1) break;
    const head = buf.toString('latin1', at, end);
    const status = Number(head.slice(9, 12));
    const req = reqs[got.length]!;
    let p = end + 4;
    let body: Buffer = Buffer.alloc(0);
    if (req.method === 'HEAD' || status === 204 || status === 304) {
      // no body
    } else if (/\r\ntransfer-encoding: chunked/i.test(head)) {
      const parts: Buffer[] = [];
      let done = false;
      for (;;) {
        const nl = buf.indexOf('\r\n', p);
        if (nl === -1) break;
        const size = parseInt(buf.toString('latin1', p, nl), 16);
        if (buf.length < nl + 2 + size + 2) break;
        parts.push(buf.subarray(nl + 2, nl + 2 + size));
        p = nl + 2 + size + 2;
        if (size === 0) {
          done = true;
          break;
        }
      }
      if (!done) break;
      body = Buffer.concat(parts);
    } else {
      const m = /\r\ncontent-length: (\d+)/i.exec(head);
      assert.ok(m !== null, `response ${got.length} has a length: ${head}`);
      const n = Number(m[1]);
      if (buf.length < p + n) break;
      body = buf.subarray(p, p + n);
      p += n;
    }
    got.push({ status, body });
    at = p;
  }
  return got;
}

async function proxy(t: TestContextLike, mode: 'direct' | 'node'): Promise<SpawnedSwitchyard> {
  const env: Record<string, string> = mode === 'node' ? { SWITCHYARD_DIRECT_WRITES: 'node' } : {};
  const sy = await startSwitchyardProcess(t, ['--workers', '1', '--log-level', 'debug'], env);
  await waitFor(() => (mode === 'direct' ? /written straight to sockets' handles/ : /written through Node's Writable \(SWITCHYARD_DIRECT_WRITES=node\)/).test(sy.output()), 5000, 'the direct-writes log line');
  return sy;
}

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const r = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    r.on('error', reject);
  });
}

for (const mode of ['direct', 'node'] as const) {
  test(`fast-path writes (${mode}): a slow reader of many pipelined answers gets each whole, in order`, { timeout: 120_000 }, async (t) => {
    const up = await upstream(t);
    const sy = await proxy(t, mode);
    assert.equal((await sy.api('POST', '/api/routes/u', { target: `http://127.0.0.1:${up.port}` })).status, 201);

    // First a client that reads nothing until every answer was made: ~7 MB of small answers (each
    // one write, its body inline) fill the sockets' buffers, so some of those writes cannot be
    // taken at once and queue behind the kernel, the rest behind them in Writable.
    {
      const reqs: Req[] = [];
      for (let i = 0; i < 2500; i++) {
        const n = 2000 + (i % 7) * 300;
        reqs.push({ method: 'GET', path: `/u/inline/${n}/${i}`, status: 200, body: pattern(i, n) });
      }
      const sock = net.connect(sy.proxyPort, '127.0.0.1');
      t.after(() => sock.destroy());
      await once(sock, 'connect');
      sock.pause();
      const before = up.served();
      sock.write(reqs.map((r) => `${r.method} ${r.path} HTTP/1.1\r\nHost: x\r\n\r\n`).join(''));
      await waitFor(() => up.served() - before === reqs.length, 60_000, 'every request at the upstream');
      const chunks: Buffer[] = [];
      let total = 0;
      sock.on('data', (d: Buffer) => {
        chunks.push(d);
        total += d.length;
      });
      sock.resume();
      const expected = reqs.reduce((n, r) => n + r.body.length, 0);
      let got: ReturnType<typeof parse> = [];
      await waitFor(
        () => {
          if (total < expected) return false;
          got = parse(Buffer.concat(chunks), reqs);
          return got.length === reqs.length;
        },
        60_000,
        'every answer',
      );
      for (let i = 0; i < reqs.length; i++) {
        assert.equal(got[i]!.status, 200, `answer ${i}: status`);
        assert.ok(got[i]!.body.equals(reqs[i]!.body), `answer ${i}: body`);
      }
    }

    // Then a slow reader of answers of every kind.
    const reqs = requests(500);
    const sock = net.connect(sy.proxyPort, '127.0.0.1');
    t.after(() => sock.destroy());
    await once(sock, 'connect');
    const chunks: Buffer[] = [];
    let total = 0;
    let reads = 0;
    // Slow: each read waits a millisecond before the next (the proxy's socket stays full, so
    // its writes queue and its upstream reads pause), and the first reads wait longer.
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      total += d.length;
      sock.pause();
      setTimeout(() => sock.resume(), ++reads < 20 ? 20 : 1);
    });
    sock.write(reqs.map((r) => `${r.method} ${r.path} HTTP/1.1\r\nHost: x\r\n\r\n`).join(''));
    const expected = reqs.reduce((n, r) => n + r.body.length, 0);
    let got: ReturnType<typeof parse> = [];
    await waitFor(
      () => {
        if (total < expected) return false;
        got = parse(Buffer.concat(chunks), reqs);
        return got.length === reqs.length;
      },
      90_000,
      'every answer',
    );
    for (let i = 0; i < reqs.length; i++) {
      assert.equal(got[i]!.status, reqs[i]!.status, `answer ${i} (${reqs[i]!.path}): status`);
      assert.ok(got[i]!.body.equals(reqs[i]!.body), `answer ${i} (${reqs[i]!.path}): body`);
    }
    // The connection goes on.
    sock.write('GET /u/small/last HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => Buffer.concat(chunks).toString('latin1').endsWith('slast'), 5000, 'the next answer');
  });

  test(`fast-path writes (${mode}): a client that resets with answers queued, an upstream that resets: the proxy goes on`, { timeout: 60_000 }, async (t) => {
    const upPort = (await upstream(t)).port;
    // A raw upstream: /mid answers a head and part of its body, then resets; any other request is
    // answered (keep-alive) the first time on a connection and reset the second time.
    const heads: string[] = [];
    const raw = net.createServer((s) => {
      s.on('error', () => {});
      let buf = '';
      let served = 0;
      s.on('data', (d: Buffer) => {
        buf += d.toString('latin1');
        for (let end = buf.indexOf('\r\n\r\n'); end !== -1; end = buf.indexOf('\r\n\r\n')) {
          const line = buf.slice(0, buf.indexOf('\r\n'));
          buf = buf.slice(end + 4);
          heads.push(line);
          if (line.includes('/mid')) {
            s.write(`HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n${'m'.repeat(5000)}`);
            s.resetAndDestroy();
            return;
          }
          if (++served === 2) {
            s.resetAndDestroy();
            return;
          }
          s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
        }
      });
    });
    const rawPort = await listen0(raw);
    t.after(() => raw.close());
    const sy = await proxy(t, mode);
    assert.equal((await sy.api('POST', '/api/routes/u', { target: `http://127.0.0.1:${upPort}` })).status, 201);
    assert.equal((await sy.api('POST', '/api/routes/r', { target: `http://127.0.0.1:${rawPort}` })).status, 201);

    // Resets with answers queued: many pipelined, large and small, read only in part.
    for (let k = 0; k < 3; k++) {
      const c = net.connect(sy.proxyPort, '127.0.0.1');
      c.on('error', () => {});
      await once(c, 'connect');
      let n = 0;
      c.on('data', (d: Buffer) => (n += d.length));
      c.write(requests(300).map((r) => `${r.method} ${r.path} HTTP/1.1\r\nHost: x\r\n\r\n`).join(''));
      await waitFor(() => n > 50_000, 20_000, 'part of the answers');
      c.pause();
      c.resetAndDestroy();
    }
    assert.deepEqual(await get(sy.proxyPort, '/u/small/after-reset'), { status: 200, body: 'safter-reset' });

    // An upstream that resets mid-body: the client's connection is cut short of the length.
    const c = net.connect(sy.proxyPort, '127.0.0.1');
    c.on('error', () => {});
    await once(c, 'connect');
    let got: Buffer = Buffer.alloc(0);
    let closed = false;
    c.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
    c.on('close', () => (closed = true));
    c.write('GET /r/mid HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => closed, 10_000, 'the cut');
    const text = got.toString('latin1');
    assert.match(text, /^HTTP\/1\.1 200 /);
    assert.ok(got.length - (text.indexOf('\r\n\r\n') + 4) < 1_000_000, 'cut short of the length');

    // An upstream that resets a pooled connection when its second request comes: a GET is
    // retried once on a new connection and answered.
    const heads0 = heads.length;
    const one = await get(sy.proxyPort, '/r/first');
    assert.deepEqual(one, { status: 200, body: 'ok' });
    const two = await get(sy.proxyPort, '/r/second');
    assert.deepEqual(two, { status: 200, body: 'ok' });
    assert.deepEqual(heads.slice(heads0), ['GET /r/first HTTP/1.1', 'GET /r/second HTTP/1.1', 'GET /r/second HTTP/1.1']);

    assert.deepEqual(await get(sy.proxyPort, '/u/small/end'), { status: 200, body: 'send' });
    assert.doesNotMatch(sy.output(), /uncaught|unhandled|direct write: Writable did not take/i);
  });
}
