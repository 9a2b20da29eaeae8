// When the fast path may put an upstream connection back in its pool (fast-path.ts release()),
// against the real CLI (spawned, `--workers 1`, so that every client connection shares one pool):
//  - not after a response that says the connection closes (RFC 9112 §9.3, §9.6): `Connection:
//    close` (any case, or one token of a list) or HTTP/1.0 without keep-alive — a later request
//    would meet the upstream's FIN, and a POST is not retried;
//  - not after a bodiless response (204) followed by more bytes in the same read: those bytes
//    (and whatever follows them) are no answer to the next request.
// The scripted upstream keeps its first connection open after its response: the proxy is the one
// to close it. A second request on that connection must never come; if it does, the upstream
// answers it wrongly (a reset, or a wrong body), so that the client sees it too.

import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { exchange, takeRequest, type RawExchange } from '../helpers/raw-http.js';
import { listen0, startSwitchyardProcess, waitFor, type TestContextLike } from '../helpers/servers.js';

interface Upstream {
  url: string;
  /** Request heads received on each connection, by connection index ("METHOD /path"). */
  perConn: string[][];
  /** Connection indexes the proxy closed (its end or reset seen by the upstream). */
  closed: Set<number>;
}

/**
 * `first`: the bytes the first connection's first request gets, in one write; `onReuse`: what that
 * connection does with a second request. Every other request gets 200 "fresh" on its connection.
 */
async function upstream(t: TestContextLike, first: string, onReuse: (s: net.Socket) => void): Promise<Upstream> {
  const state: Upstream = { url: '', perConn: [], closed: new Set() };
  const socks = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    socks.add(sock);
    const index = state.perConn.length;
    const heads: string[] = [];
    state.perConn.push(heads);
    sock.on('error', () => {});
    sock.on('close', () => {
      socks.delete(sock);
      state.closed.add(index);
    });
    sock.on('end', () => state.closed.add(index));
    let buf: Buffer = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const req = takeRequest(buf);
        if (req === 'incomplete') return; // the body is not all here yet
        assert.notEqual(req, 'invalid', `the upstream got an unframed request: ${JSON.stringify(buf.toString('latin1'))}`);
        if (req === 'invalid') return;
        buf = req.rest;
        heads.push(req.line.split(' ').slice(0, 2).join(' '));
        if (index === 0 && heads.length === 1) sock.write(Buffer.from(first, 'latin1'));
        else if (index === 0) onReuse(sock);
        else sock.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh');
        if (sock.destroyed) return;
      }
    });
  });
  const port = await listen0(server);
  state.url = `http://127.0.0.1:${port}`;
  t.after(() => {
    for (const s of socks) s.destroy();
    return new Promise((r) => server.close(r));
  });
  return state;
}

function one(x: RawExchange): { status: number; body: string } {
  assert.equal(x.responses.length, 1, `one response expected, got: ${JSON.stringify(x.raw)}`);
  return { status: x.responses[0]!.status, body: x.responses[0]!.body.toString('latin1') };
}

const POST = (path: string): string => `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world`;

test('an upstream response that says the connection closes: the connection is not reused (a POST after it goes over a new one)', async (t) => {
  const sy = await startSwitchyardProcess(t, ['--workers', '1']);
  const cases: [string, string][] = [
    ['close', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nfirst'],
    ['upper-list', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: Keep-Alive, CLOSE\r\n\r\nfirst'],
    ['two-lines', 'HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 5\r\nConnection: close\r\n\r\nfirst'],
    ['http10', 'HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nfirst'],
    ['http10-204', 'HTTP/1.0 204 No Content\r\n\r\n'],
  ];
  for (const [name, first] of cases) await t.test(name, async (t) => {
    // On reuse the upstream resets, as one whose close was not read yet would: a POST is not retried.
    const up = await upstream(t, first, (s) => s.resetAndDestroy());
    assert.equal((await sy.api('POST', `/api/routes/${name}`, { target: up.url })).status, 201);
    const a = one(await exchange(sy.proxyPort, `GET /${name}/a HTTP/1.1\r\nHost: x\r\n\r\n`, { expected: 1 }));
    assert.equal(a.status, first.includes(' 204 ') ? 204 : 200, name);
    const b = one(await exchange(sy.proxyPort, POST(`/${name}/b`), { expected: 1 }));
    assert.deepEqual(b, { status: 200, body: 'fresh' }, name);
    assert.deepEqual(up.perConn, [[`GET /${name}/a`], [`POST /${name}/b`]], name);
    // The proxy closed the first connection itself (the upstream never did).
    await waitFor(() => up.closed.has(0), 5000, `${name}: the proxy closes the first connection`);
  });
});

test('an HTTP/1.0 response with Connection: keep-alive, or HTTP/1.1 without close: the connection is reused (control)', async (t) => {
  const sy = await startSwitchyardProcess(t, ['--workers', '1']);
  const cases: [string, string][] = [
    ['http10-ka', 'HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: Keep-Alive\r\n\r\nfirst'],
    ['http11', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nfirst'],
  ];
  for (const [name, first] of cases) await t.test(name, async (t) => {
    const up = await upstream(t, first, (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nreused'));
    assert.equal((await sy.api('POST', `/api/routes/${name}`, { target: up.url })).status, 201);
    assert.deepEqual(one(await exchange(sy.proxyPort, `GET /${name}/a HTTP/1.1\r\nHost: x\r\n\r\n`, { expected: 1 })), { status: 200, body: 'first' }, name);
    assert.deepEqual(one(await exchange(sy.proxyPort, POST(`/${name}/b`), { expected: 1 })), { status: 200, body: 'reused' }, name);
    assert.deepEqual(up.perConn, [[`GET /${name}/a`, `POST /${name}/b`]], name);
  });
});

test('bytes after a bodiless response in the same read: the connection is not reused, the next request gets its own answer', async (t) => {
  const sy = await startSwitchyardProcess(t, ['--workers', '1']);
  const cases: [string, string][] = [
    // A 204 and then junk; on reuse, the rest of what looks like a response follows.
    ['junk', 'HTTP/1.1 204 No Content\r\n\r\nJUNK'],
    ['extra-response', 'HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nWRONG'],
    ['length-0', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nJUNK'],
  ];
  for (const [name, first] of cases) await t.test(name, async (t) => {
    const up = await upstream(t, first, (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nWRONG'));
    assert.equal((await sy.api('POST', `/api/routes/${name}`, { target: up.url })).status, 201);
    const a = one(await exchange(sy.proxyPort, `GET /${name}/a HTTP/1.1\r\nHost: x\r\n\r\n`, { expected: 1 }));
    assert.deepEqual(a, { status: first.includes(' 204 ') ? 204 : 200, body: '' }, name);
    const b = one(await exchange(sy.proxyPort, `GET /${name}/b HTTP/1.1\r\nHost: x\r\n\r\n`, { expected: 1 }));
    assert.deepEqual(b, { status: 200, body: 'fresh' }, name);
    assert.deepEqual(up.perConn, [[`GET /${name}/a`], [`GET /${name}/b`]], name);
    await waitFor(() => up.closed.has(0), 5000, `${name}: the proxy closes the first connection`);
  });
});
