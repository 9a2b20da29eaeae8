// The fast path (fast-path.ts) against the node:http path, end to end: two spawned Switchyards
// (`--workers 1`, one with --no-fast-path) with the same routes to the same scripted raw upstream,
// the same raw client bytes to each, and the answers compared: every response's status, reason,
// header fields (Date aside; order aside, since the two paths place their own fields differently)
// and body; the requests the upstream received (request line, header fields, body); and the
// access log and response counters. Scenarios cover what the fast path takes (GET/HEAD/DELETE/
// OPTIONS, Content-Length request bodies; Content-Length, chunked, close-delimited, 1xx, 204, 304
// responses), the hand-over to node:http at a request boundary (HTTP/1.0, a chunked body, a
// refused request pipelined behind a fast one), error pages (503 no upstream, 404 no route) and health checks.
// That the fast path really carried a request is checked by the one visible difference: it keeps
// the client's header order upstream, undici writes Host first.

import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { exchange, takeRequest, type RawResponse } from '../helpers/raw-http.js';
import { REFUSED_PORT, listen0, request, startSwitchyardProcess, waitFor, type SpawnedSwitchyard, type TestContextLike } from '../helpers/servers.js';
import { tempDir } from '../helpers/temp.js';

interface Seen {
  line: string;
  headers: string[];
  body: string;
}

/** gzip-coded bytes (of "hello"), latin1: what a Transfer-Encoding: gzip body carries. */
const GZ = Buffer.from('1f8b0800000000000003cb48cdc9c90700863ba6360500000000', 'hex').toString('latin1');

const RESPONSES: Record<string, string | string[]> = {
  '/u/cl': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Up: 1\r\nX-Keep: 2\r\nConnection: keep-alive, X-Up\r\nKeep-Alive: timeout=9\r\n\r\nhello',
  '/u/chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\nContent-Type: text/plain\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: t\r\n\r\n',
  '/u/interim': 'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  '/u/204': 'HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n',
  '/u/304': 'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n',
  '/u/reason': 'HTTP/1.1 299 Custom Thing\r\nContent-Length: 0\r\n\r\n',
  '/u/split': ['HTTP/1.1 200 OK\r\nContent-Le', 'ngth: 3\r\n\r\nab', 'c'],
  '/u/redirect': 'HTTP/1.1 302 Found\r\nLocation: /u/cl\r\nContent-Length: 0\r\n\r\n',
  '/u/bad': 'HTTP/1.1 200 OK\r\nX\x01: y\r\nContent-Length: 0\r\n\r\n',
  '/u/cut': 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc',
  // Content-Length named in Connection: still the body's framing, kept (dropped, the keep-alive
  // response had no framing: the client read to the close and took the next answer as body)
  '/u/cl-listed': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive, Content-Length, X-Up\r\nX-Up: 1\r\n\r\nhello',
  // A transfer coding besides chunked (RFC 9112 §6.1): re-framed, the client still told of it
  '/u/te-gzip-chunked': `HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4\r\n${GZ.slice(0, 4)}\r\n${(GZ.length - 4).toString(16)}\r\n${GZ.slice(4)}\r\n0\r\n\r\n`,
  '/u/te-redirect': `HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:PORT/u/cl\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4\r\n${GZ.slice(0, 4)}\r\n0\r\n\r\n`,
  // A 204/304 announcing a body: none follows (RFC 9112 §6.3); undici waited for it (no answer)
  '/u/304-cl': 'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\nContent-Length: 5\r\n\r\n',
  '/u/204-te': 'HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n',
  '/u/te-chunked-gzip': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n',
  // obs-text bytes (RFC 9110 §5.5) in a value and the reason: passed on as the same bytes
  '/u/obs': 'HTTP/1.1 200 Caf\xe9\r\nX-Obs: caf\xe9 \xff\r\nX-Pad:   v \t\r\nContent-Length: 2\r\n\r\nok',
};

/** A raw upstream: answers by path (RESPONSES), `/u/close` with a close-delimited body; records every request. */
async function upstream(t: TestContextLike, seen: Seen[]): Promise<number> {
  const socks = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    socks.add(sock);
    sock.on('close', () => socks.delete(sock));
    sock.on('error', () => {});
    let buf: Buffer = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const req = takeRequest(buf);
        if (req === 'incomplete') return;
        assert.notEqual(req, 'invalid', `the upstream got an unframed request: ${JSON.stringify(buf.toString('latin1'))}`);
        if (req === 'invalid') return;
        buf = req.rest;
        const line = req.line;
        seen.push({ line, headers: req.headers, body: req.body.toString('latin1') });
        const path = line.split(' ')[1]!.split('?')[0]!;
        if (path === '/u/close') {
          sock.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the close');
          return;
        }
        if (path === '/u/te-gzip') {
          sock.end(`HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n${GZ}`, 'latin1');
          return;
        }
        if (path === '/u/cut') {
          sock.end(RESPONSES[path] as string);
          return;
        }
        const r = RESPONSES[path] ?? `HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`;
        if (Array.isArray(r)) {
          // Written apart, a tick between them: the proxy sees the head and body split.
          let i = 0;
          const step = (): void => {
            if (i < r.length && !sock.destroyed) sock.write(r[i++]!, 'latin1', () => setTimeout(step, 5));
          };
          step();
        } else sock.write(r.replace('PORT', String((server.address() as net.AddressInfo).port)), 'latin1');
      }
    });
  });
  const port = await listen0(server);
  t.after(() => {
    for (const s of socks) s.destroy();
    server.close();
  });
  return port;
}

interface Side {
  sy: SpawnedSwitchyard;
  seen: Seen[];
  logFile: string;
  metricsPort: number;
}

async function side(t: TestContextLike, dir: string, name: string, flags: string[]): Promise<Side> {
  const seen: Seen[] = [];
  const port = await upstream(t, seen);
  const logFile = join(dir, `${name}.log`);
  const deadPort = REFUSED_PORT; // nothing listens; a freed ephemeral port could self-connect
  const sy = await startSwitchyardProcess(t, [
    '--workers', '1', '--access-log', logFile, '--metrics-port', '0', '--metrics-ip', '127.0.0.1', '--auto-rewrite', ...flags,
  ]);
  const metricsPort = sy.metricsPort!;
  for (const [path, target] of [['/u', `http://127.0.0.1:${port}`], ['/dead', `http://127.0.0.1:${deadPort}`]]) {
    assert.equal((await sy.api('POST', `/api/routes${path}`, { target })).status, 201);
  }
  return { sy, seen, logFile, metricsPort };
}

/**
 * A response without the fields that differ by time or placement: Date; fields sorted. The
 * proxy's own error pages are framed differently (node:http: chunked; the fast path: a
 * Content-Length), so their framing fields are left out; the decoded bodies are compared.
 */
function norm(r: RawResponse): unknown {
  const own = r.status >= 500;
  return {
    line: r.line,
    fields: r.fields
      .filter(([n]) => n !== 'date' && !(own && (n === 'content-length' || n === 'transfer-encoding')))
      .map(([n, v]) => `${n}: ${v}`)
      .sort(),
    body: r.body.toString('latin1'),
    complete: r.complete,
  };
}

const SCENARIOS: { desc: string; send: string; expected: number; fast: boolean }[] = [
  { desc: 'Content-Length response; Connection-named and hop-by-hop fields dropped', send: 'GET /u/cl HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\nX-Forwarded-For: 9.9.9.9\r\nForwarded: for=x\r\n\r\n', expected: 1, fast: true },
  { desc: 'chunked response re-framed, extensions and trailers dropped', send: 'GET /u/chunked HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\n', expected: 1, fast: true },
  { desc: 'close-delimited response re-framed as chunked', send: 'GET /u/close HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\n', expected: 1, fast: true },
  { desc: 'interim 103 dropped', send: 'GET /u/interim HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\n', expected: 1, fast: true },
  { desc: '204 and 304 without a body', send: 'GET /u/204 HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\nGET /u/304 HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\n', expected: 2, fast: true },
  { desc: 'HEAD: the announced length, no body', send: 'HEAD /u/cl HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\n', expected: 1, fast: true },
  { desc: 'obs-text in a header value kept as bytes; a non-ASCII reason replaced', send: 'GET /u/obs HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\n', expected: 1, fast: true },
  { desc: 'Content-Length listed in the upstream\'s Connection: kept, the next answer on the connection is framed apart', send: 'GET /u/cl-listed HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\nGET /u/204 HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\n', expected: 2, fast: true },
  { desc: 'Transfer-Encoding: gzip, chunked: re-framed, the gzip coding kept', send: 'GET /u/te-gzip-chunked HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\n', expected: 1, fast: true },
  { desc: 'Transfer-Encoding: gzip (read until close): re-framed, the gzip coding kept', send: 'GET /u/te-gzip HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\n', expected: 1, fast: true },
  { desc: 'Transfer-Encoding: chunked, gzip (chunked not final): 502', send: 'GET /u/te-chunked-gzip HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\n', expected: 1, fast: true },
  { desc: '304 with Content-Length and 204 with Transfer-Encoding: answered at once without a body, the connection goes on', send: 'GET /u/304-cl HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\nGET /u/204-te HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\nGET /u/cl HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\n', expected: 3, fast: true },
  { desc: 'custom reason phrase kept', send: 'GET /u/reason HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\n', expected: 1, fast: true },
  { desc: 'head and body split across reads', send: 'GET /u/split HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\n', expected: 1, fast: true },
  { desc: '--auto-rewrite of a Location', send: 'GET /u/redirect HTTP/1.1\r\nUser-Agent: t\r\nHost: a:8000\r\n\r\n', expected: 1, fast: true },
  { desc: 'DELETE and OPTIONS get Content-Length: 0 upstream; POST without a body too', send: 'DELETE /u/d HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\nOPTIONS /u/o HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\nPOST /u/p HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\n', expected: 3, fast: true },
  { desc: 'invalid upstream header: 502', send: 'GET /u/bad HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\n', expected: 1, fast: true },
  { desc: 'upstream down: 503 error page, connection kept', send: 'GET /dead/x HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\nGET /u/after HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\n', expected: 2, fast: true },
  { desc: 'pipelined: fast, then HTTP/1.0 (handed over), then fast-eligible (node:http keeps it)', send: 'GET /u/1 HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\nGET /u/2 HTTP/1.0\r\nUser-Agent: t\r\nHost: a\r\nConnection: keep-alive\r\n\r\nGET /u/3 HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\n', expected: 3, fast: true },
  { desc: 'pipelined: GET, then a POST with a Content-Length body, then GET', send: 'GET /u/1 HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\nPOST /u/2 HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /u/3 HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\n', expected: 3, fast: true },
  { desc: 'pipelined: GET, then a chunked body (handed over)', send: 'GET /u/1 HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\nPOST /u/2 HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n', expected: 2, fast: true },
  { desc: 'Connection: close honoured', send: 'GET /u/c HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\nConnection: close\r\n\r\n', expected: 1, fast: true },
  { desc: 'no route: 404 (node:http)', send: 'GET /nothing HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\n', expected: 1, fast: false },
  { desc: 'health check (node:http)', send: 'GET /_chp_healthz HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\n', expected: 1, fast: false },
];

test('fast path and node:http path answer, forward, count and log alike', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t, 'fast-path-');
  const fast = await side(t, dir, 'fast', []);
  const slow = await side(t, dir, 'slow', ['--no-fast-path']);
  for (const sc of SCENARIOS) {
    fast.seen.length = 0;
    slow.seen.length = 0;
    // The raw client cannot tell a HEAD response's end (it waits for the announced body): compared as bytes.
    const head = sc.send.startsWith('HEAD');
    const a = await exchange(fast.sy.proxyPort, sc.send, { expected: sc.expected, ms: head ? 1000 : 5000 });
    const b = await exchange(slow.sy.proxyPort, sc.send, { expected: sc.expected, ms: head ? 1000 : 5000 });
    const what = `${sc.desc}\n  fast: ${JSON.stringify(a.raw)}\n  node: ${JSON.stringify(b.raw)}`;
    assert.equal(a.responses.length, head ? 0 : sc.expected, what);
    if (head) assert.equal(a.leftover.replace(/Date: .*\r\n/, ''), b.leftover.replace(/Date: .*\r\n/, ''), what);
    assert.deepEqual(a.responses.map(norm), b.responses.map(norm), what);
    if (!head) assert.equal(a.leftover, b.leftover, what);
    if (!head) assert.equal(a.closedByServer, b.closedByServer, what);
    // One known difference: headers.ts adds Content-Length: 0 to a DELETE/OPTIONS without a body
    // (CHP/http-proxy-3 do); the fast path sends it, undici (the node:http path) drops it for
    // methods it does not expect a payload with. Left out of the comparison.
    // Sorted: node:http forwards pipelined requests at once, over several pooled connections, so
    // the order they reach the upstream in is a race there (the fast path forwards one at a time).
    const up = (s: Seen[]): unknown =>
      [...s].sort((x, y) => (x.line < y.line ? -1 : x.line > y.line ? 1 : 0)).map((r) => ({
        line: r.line,
        headers: r.headers
          .map((h) => h.toLowerCase())
          .filter((h) => !(h === 'content-length: 0' && /^(DELETE|OPTIONS) /.test(r.line)))
          .sort(),
        body: r.body,
      }));
    assert.deepEqual(up(fast.seen), up(slow.seen), `${what}\n  upstream requests`);
    if (sc.fast) {
      // The fast path forwards the client's field order (User-Agent before Host); undici puts Host first.
      assert.match(fast.seen[0]!.headers[0]!, /^User-Agent/, `${sc.desc}: carried by the fast path`);
      assert.match(slow.seen[0]?.headers[0] ?? 'host', /^host/i, `${sc.desc}: carried by node:http`);
    }
  }
  // Transfer codings besides chunked reach the client (before: dropped with the hop-by-hop
  // field, and the gzip bytes passed for the content); an HTTP/1.0 client can take none: 502.
  for (const s of [fast, slow]) {
    for (const path of ['/u/te-gzip-chunked', '/u/te-gzip']) {
      const r = await exchange(s.sy.proxyPort, `GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`, { expected: 1 });
      assert.equal(r.responses.length, 1, r.raw);
      const te = r.responses[0]!.fields.filter(([n]) => n === 'transfer-encoding');
      assert.deepEqual(te, [['transfer-encoding', 'gzip, chunked']], r.raw);
      assert.equal(r.responses[0]!.body.toString('latin1'), GZ, r.raw);
    }
    const old = await exchange(s.sy.proxyPort, 'GET /u/te-gzip HTTP/1.0\r\nHost: a\r\n\r\n', { expected: 1 });
    assert.equal(old.responses[0]?.status, 502, old.raw);
    assert.equal(old.responses.length, 1, old.raw); // exactly one complete answer, nothing after it
    assert.ok(old.responses[0]!.complete && old.leftover === '', old.raw);
    assert.doesNotMatch(old.raw, /Transfer-Encoding/i);
    // No body, nothing coded: HEAD answers keep their status and carry no Transfer-Encoding, HTTP/1.0 too.
    for (const version of ['1.1', '1.0']) {
      const head = await exchange(s.sy.proxyPort, `HEAD /u/te-gzip-chunked HTTP/${version}\r\nHost: a\r\n\r\n`, { expected: 1, ms: 1000 });
      assert.match(head.raw, /^HTTP\/1\.1 200 OK\r\n/, head.raw);
      assert.doesNotMatch(head.raw, /Transfer-Encoding/i, head.raw);
    }
    // --auto-rewrite of a Location keeps the coding.
    const moved = await exchange(s.sy.proxyPort, 'GET /u/te-redirect HTTP/1.1\r\nHost: a:8000\r\n\r\n', { expected: 1 });
    assert.deepEqual(moved.responses[0]?.fields.filter(([n]) => n === 'transfer-encoding' || n === 'location'), [['location', 'http://a:8000/u/cl'], ['transfer-encoding', 'gzip, chunked']].sort(), moved.raw);
    const bad = await exchange(s.sy.proxyPort, 'GET /u/te-chunked-gzip HTTP/1.1\r\nHost: a\r\n\r\n', { expected: 1 });
    assert.equal(bad.responses[0]?.status, 502, bad.raw);
    assert.equal(bad.responses.length, 1, bad.raw);
    assert.ok(bad.responses[0]!.complete && bad.leftover === '', bad.raw);
  }
  // A response cut after its head: both paths cut the client (an incomplete body, then the close).
  for (const s of [fast, slow]) {
    const cut = await exchange(s.sy.proxyPort, 'GET /u/cut HTTP/1.1\r\nHost: a\r\n\r\n', { expected: 1, ms: 3000 });
    assert.equal(cut.responses.length, 0);
    assert.match(cut.leftover, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nabc$/);
    assert.ok(cut.closedByServer);
  }

  // The same counters and access-log lines (timing fields aside).
  const counters = async (s: Side): Promise<string[]> => {
    const m = (await request(`http://127.0.0.1:${s.metricsPort}/metrics`)).body;
    return m.split('\n').filter((l) => /^switchyard_(requests_total|bad_requests_total|upstream_errors_total|timeouts_total|internal_errors_total)/.test(l)).sort();
  };
  assert.deepEqual(await counters(fast), await counters(slow));
  const entries = (s: Side): unknown[] =>
    readFileSync(s.logFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => {
        const { status, method, url, route, host, kind } = JSON.parse(l) as Record<string, unknown>;
        return { status, method, url, route, host, kind };
      });
  // The access log is buffered (flushed within a second): wait until both hold every request.
  const read = (s: Side): unknown[] => {
    try {
      return entries(s);
    } catch {
      return []; // not written yet
    }
  };
  await waitFor(() => read(fast).length > 0 && read(fast).length === read(slow).length, 10_000, 'access logs written');
  assert.deepEqual(read(fast), read(slow));
  // The one intended difference in answers: a valid request pipelined in the same read before a
  // malformed one. llhttp parses the whole read, fails on the second request and node:http's
  // clientError answer (400, close) replaces the first one's; the fast path answers the first,
  // then hands the malformed one to node:http, which refuses it.
  {
    const send = 'GET /u/1 HTTP/1.1\r\nUser-Agent: t\r\nHost: a\r\n\r\nGET /u/2 HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n';
    const a = await exchange(fast.sy.proxyPort, send, { expected: 2 });
    const b = await exchange(slow.sy.proxyPort, send, { expected: 2 });
    assert.deepEqual(a.responses.map((r) => r.status), [200, 400], a.raw);
    assert.deepEqual(b.responses.map((r) => r.status), [400], b.raw);
    assert.ok(a.closedByServer && b.closedByServer);
  }
});
