// Hostile and broken upstreams against the real CLI (spawned; `--workers 1` and the default
// workers), over raw sockets on both sides: scripted `net` upstreams that misbehave in one way
// each, and a raw client that parses exactly what it gets. The contract (docs/errors.md): every
// request gets exactly one well-framed answer — 502 invalid response, 503 cannot connect / reset,
// 504 --proxy-timeout, 408 stalled request body — or, once a response head was forwarded, a cut
// connection; a POST is never sent twice; one bad exchange never affects another.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { header, parseResponses, takeRequestBody, type RawResponse } from '../helpers/raw-http.js';
import { REFUSED_PORT, listen0, request, startSwitchyardProcess, waitFor, type SpawnedSwitchyard, type TestContextLike } from '../helpers/servers.js';

// ---------------------------------------------------------------------------------------------
// Scripted upstreams: raw TCP, one behaviour per case, counting the request heads they receive.

interface Conn {
  sock: net.Socket;
  /** Index of this connection on its upstream (0, 1, …). */
  index: number;
  /** Request heads received on this connection so far (this one included). */
  requests: number;
}

interface Scripted {
  port: number;
  url: string;
  /** Request heads received, over all connections, in order ("METHOD /path"). */
  heads: string[];
  connections: number;
  openConnections: number;
}

type Behaviour = (c: Conn, head: string, body: Buffer) => void;

/**
 * An upstream that reads each request (head, and a Content-Length or chunked body once complete)
 * and hands it to `behaviour`. `onConnect` runs before anything is read (e.g. reset at once).
 */
async function scripted(t: TestContextLike, behaviour: Behaviour, onConnect?: (c: Conn) => boolean): Promise<Scripted> {
  const state: Scripted = { port: 0, url: '', heads: [], connections: 0, openConnections: 0 };
  const socks = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    socks.add(sock);
    state.openConnections++;
    sock.on('close', () => {
      socks.delete(sock);
      state.openConnections--;
    });
    sock.on('error', () => {});
    const c: Conn = { sock, index: state.connections++, requests: 0 };
    if (onConnect?.(c)) return;
    let buf = Buffer.alloc(0);
    let head: string | null = null;
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (head === null) {
          const end = buf.indexOf('\r\n\r\n');
          if (end === -1) return;
          head = buf.subarray(0, end).toString('latin1');
          buf = buf.subarray(end + 4);
          c.requests++;
          state.heads.push(head.split('\r\n', 1)[0]!.split(' ').slice(0, 2).join(' '));
        }
        const body = takeRequestBody(head.split('\r\n').slice(1), buf);
        if (body === 'invalid') {
          sock.destroy(); // a mis-framed request body: no behaviour runs on it
          return;
        }
        if (body === 'incomplete') {
          // Behaviours that must act before the body: flagged by the head itself.
          if (/^x-act-on-head: 1$/im.test(head)) {
            const h = head;
            head = null;
            behaviour(c, h, Buffer.alloc(0));
          }
          return;
        }
        buf = buf.subarray(body.used);
        const h = head;
        head = null;
        behaviour(c, h, body.body);
        if (sock.destroyed) return;
      }
    });
  });
  state.port = await listen0(server);
  state.url = `http://127.0.0.1:${state.port}`;
  t.after(() => {
    for (const s of socks) s.destroy();
    return new Promise((r) => server.close(r));
  });
  return state;
}

const respond = (c: Conn, bytes: string): void => void c.sock.write(Buffer.from(bytes, 'latin1'));
/**
 * Write `pieces` one after the other, each once the previous one was flushed to the kernel (its
 * write callback). Only a flush barrier: a busy proxy may still read two pieces at once (these
 * cases passed with the old guard). One read per piece is forced by the test "an upstream 100
 * split across reads" below (a barrier through the proxy) and test/unit/upstream-socket.test.ts
 * (a barrier on the reading socket).
 */
const respondInPieces = (c: Conn, pieces: readonly string[]): void => {
  const next = (k: number): void => {
    if (k < pieces.length && !c.sock.destroyed) c.sock.write(Buffer.from(pieces[k]!, 'latin1'), () => next(k + 1));
  };
  next(0);
};
const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';

// ---------------------------------------------------------------------------------------------
// The raw client: parse exactly what comes back.

interface Received {
  /** Parsed by the shared raw-http parser; the last one may be incomplete. */
  responses: RawResponse[];
  /** Bytes that do not form a response (after the last complete one). */
  trailing: Buffer;
  closed: boolean;
  ms: number;
}

class RawClient {
  readonly sock: net.Socket;
  private buf = Buffer.alloc(0);
  closed = false;
  private waiters: (() => void)[] = [];

  private constructor(sock: net.Socket) {
    this.sock = sock;
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static async connect(port: number): Promise<RawClient> {
    const sock = net.connect(port, '127.0.0.1');
    await once(sock, 'connect');
    return new RawClient(sock);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private changed(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  send(bytes: string | Buffer): void {
    this.sock.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  }

  /**
   * Wait for one complete response (then `quietMs` more, so that anything extra would show) or
   * the close, for at most `ms`. Takes what was read off the buffer.
   */
  async receive(ms = 5000, quietMs = 150, headRequest = false): Promise<Received> {
    const start = Date.now();
    const deadline = start + ms;
    for (;;) {
      const { responses } = parseResponses(this.buf, { closed: this.closed, headRequest });
      // A final response (an interim 1xx, e.g. Node's own 100 Continue, is followed by one).
      const last = responses.at(-1);
      if (this.closed || (last !== undefined && last.complete && (last.status >= 200 || last.status === 101)) || Date.now() >= deadline) break;
      await this.changed(deadline - Date.now());
    }
    const took = Date.now() - start;
    // Anything after the first complete response would be a second answer or garbage.
    if (!this.closed) {
      const quietEnd = Date.now() + quietMs;
      while (!this.closed && Date.now() < quietEnd) await this.changed(quietEnd - Date.now());
    }
    const { responses, rest } = parseResponses(this.buf, { closed: this.closed, headRequest });
    this.buf = Buffer.alloc(0);
    return { responses, trailing: rest, closed: this.closed, ms: took };
  }

  /** Wait (at most `ms`) until the bytes received so far, not taken yet, satisfy `cond`. */
  async until(cond: (buf: Buffer) => boolean, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond(this.buf)) {
      if (this.closed || Date.now() >= deadline) throw new Error(`client: condition not met (closed=${this.closed}, got ${JSON.stringify(this.buf.toString('latin1'))})`);
      await this.changed(deadline - Date.now());
    }
  }

  destroy(): void {
    this.sock.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// The case table.

type Expect =
  | { status: number; then: 'keep-alive' | 'close'; check?: (p: RawResponse) => void }
  /** A response head was forwarded, then the connection was cut (the body is incomplete). */
  | { cut: number };

interface Case {
  desc: string;
  /** Route under /c/<name>; its upstream behaves as `behaviour` (or is `dead`: nothing listens). */
  name: string;
  behaviour?: Behaviour;
  onConnect?: (c: Conn) => boolean;
  dead?: boolean;
  /** The client's bytes; `PATH` is replaced by the case's path. */
  send: string;
  expect: Expect;
  /** Request heads the upstream must have seen (never 2 for a POST). */
  upstreamRequests: number;
  /** Answered within this many ms (bounded time). */
  withinMs?: number;
  /** Interim responses the client gets before the final one (Node's own 100 to an Expect). */
  interim?: readonly number[];
}

const PROXY_TIMEOUT = 400;
const BODY_TIMEOUT = 300;

const GET = 'GET PATH HTTP/1.1\r\nHost: a\r\n\r\n';
const POST5 = 'POST PATH HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello';

const cases: Case[] = [
  { desc: 'refused connection: 503 (CHP: 503), connection kept', name: 'refused', dead: true, send: GET, expect: { status: 503, then: 'keep-alive' }, upstreamRequests: 0 },
  { desc: 'refused connection, POST with a body read in full: 503, connection kept', name: 'refused-post', dead: true, send: POST5, expect: { status: 503, then: 'keep-alive' }, upstreamRequests: 0 },
  {
    desc: 'reset at accept, before anything was read: 503',
    name: 'reset-accept',
    onConnect: (c) => (c.sock.resetAndDestroy(), true),
    behaviour: () => {},
    send: POST5,
    expect: { status: 503, then: 'keep-alive' },
    upstreamRequests: 0,
  },
  {
    desc: 'reset after the head, before the body (the client is still sending it): 503, then close (the body was not read)',
    name: 'reset-before-body',
    behaviour: (c) => c.sock.resetAndDestroy(),
    send: 'POST PATH HTTP/1.1\r\nHost: a\r\nX-Act-On-Head: 1\r\nContent-Length: 10\r\n\r\nhello',
    expect: { status: 503, then: 'close' },
    upstreamRequests: 1,
  },
  {
    desc: 'the upstream answers before reading the body: 200 forwarded, the rest of the body discarded, the connection kept',
    name: 'early-answer',
    behaviour: (c) => respond(c, OK),
    send: 'POST PATH HTTP/1.1\r\nHost: a\r\nX-Act-On-Head: 1\r\nContent-Length: 5\r\n\r\nhello',
    expect: { status: 200, then: 'keep-alive' },
    upstreamRequests: 1,
  },
  {
    desc: `the client stops sending its body: 408 after --request-body-timeout ${BODY_TIMEOUT} ms, then close`,
    name: 'body-stall',
    behaviour: () => {},
    send: 'PUT PATH HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhello',
    expect: { status: 408, then: 'close' },
    upstreamRequests: 1,
    withinMs: BODY_TIMEOUT + 1500,
  },
  {
    desc: 'RFC 9110 §9.2.2: POST reset after the upstream read it: 503, received exactly once',
    name: 'reset-after-body',
    behaviour: (c) => c.sock.resetAndDestroy(),
    send: POST5,
    expect: { status: 503, then: 'keep-alive' },
    upstreamRequests: 1,
  },
  {
    desc: 'RFC 9110 §9.2.2: POST without a body reset after the upstream read it: received exactly once',
    name: 'reset-post-empty',
    behaviour: (c) => c.sock.destroy(),
    send: 'POST PATH HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n',
    expect: { status: 503, then: 'keep-alive' },
    upstreamRequests: 1,
  },
  {
    desc: 'GET reset on a fresh connection: no retry (only a reused pooled connection is retried): 503',
    name: 'reset-get-fresh',
    behaviour: (c) => c.sock.resetAndDestroy(),
    send: GET,
    expect: { status: 503, then: 'keep-alive' },
    upstreamRequests: 1,
  },
  {
    desc: 'reset mid-response: the head was forwarded, so the client connection is cut (never a second head)',
    name: 'reset-mid-response',
    behaviour: (c) => {
      respond(c, 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial');
      setTimeout(() => c.sock.resetAndDestroy(), 50);
    },
    send: GET,
    expect: { cut: 200 },
    upstreamRequests: 1,
  },
  {
    desc: 'chunked response cut before its last chunk: the client connection is cut',
    name: 'chunked-cut',
    behaviour: (c) => {
      respond(c, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\npartial\r\n');
      setTimeout(() => c.sock.end(), 50);
    },
    send: GET,
    expect: { cut: 200 },
    upstreamRequests: 1,
  },
  {
    desc: `silent upstream past --proxy-timeout ${PROXY_TIMEOUT} ms: 504`,
    name: 'stall',
    behaviour: () => {},
    send: GET,
    expect: { status: 504, then: 'keep-alive' },
    upstreamRequests: 1,
    withinMs: PROXY_TIMEOUT + 1500,
  },
  {
    desc: 'silent upstream past --proxy-timeout, POST with a body: 504 (CHP: the request hangs no more)',
    name: 'stall-post',
    behaviour: () => {},
    send: POST5,
    expect: { status: 504, then: 'keep-alive' },
    upstreamRequests: 1,
    withinMs: PROXY_TIMEOUT + 1500,
  },
  {
    desc: 'upstream silent after the head, past --proxy-timeout: the client connection is cut',
    name: 'stall-mid-response',
    behaviour: (c) => respond(c, 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'),
    send: GET,
    expect: { cut: 200 },
    upstreamRequests: 1,
    withinMs: PROXY_TIMEOUT + 1500,
  },
  { desc: 'malformed status line: 502', name: 'garbage', behaviour: (c) => respond(c, 'HELLO WORLD\r\n\r\n'), send: GET, expect: { status: 502, then: 'keep-alive' }, upstreamRequests: 1 },
  {
    desc: 'oversized response head (100 KiB header): 502',
    name: 'oversized',
    behaviour: (c) => respond(c, `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(100_000)}\r\nContent-Length: 2\r\n\r\nok`),
    send: GET,
    expect: { status: 502, then: 'keep-alive' },
    upstreamRequests: 1,
  },
  {
    desc: 'status code out of range (600): 502',
    name: 'status-600',
    behaviour: (c) => respond(c, 'HTTP/1.1 600 Odd\r\nContent-Length: 2\r\n\r\nok'),
    send: GET,
    expect: { status: 502, then: 'keep-alive' },
    upstreamRequests: 1,
  },
  {
    desc: 'status code below 100 (099): 502',
    name: 'status-099',
    behaviour: (c) => respond(c, 'HTTP/1.1 099 Odd\r\nContent-Length: 2\r\n\r\nok'),
    send: GET,
    expect: { status: 502, then: 'keep-alive' },
    upstreamRequests: 1,
  },
  {
    desc: 'RFC 9112 §4: obs-text reason phrase: forwarded as 200 with the standard reason phrase (no throw, no hang)',
    name: 'obs-text',
    behaviour: (c) => respond(c, 'HTTP/1.1 200 \xffK\r\nContent-Length: 2\r\n\r\nok'),
    send: GET,
    expect: { status: 200, then: 'keep-alive', check: (p) => (assert.equal(p.reason, 'OK'), assert.equal(p.body.toString(), 'ok')) },
    upstreamRequests: 1,
  },
  {
    desc: 'UTF-8 reason phrase: forwarded as 200 with the standard reason phrase',
    name: 'utf8-reason',
    behaviour: (c) => c.sock.write(Buffer.concat([Buffer.from('HTTP/1.1 404 '), Buffer.from('Nicht gefunden ✓'), Buffer.from('\r\nContent-Length: 2\r\n\r\nno')])),
    send: GET,
    expect: { status: 404, then: 'keep-alive', check: (p) => (assert.equal(p.reason, 'Not Found'), assert.equal(p.body.toString(), 'no')) },
    upstreamRequests: 1,
  },
  {
    desc: 'RFC 9112 §2.2: bare CR in the status line (undici would read a header out of it): 502, nothing injected',
    name: 'cr-injected',
    behaviour: (c) => respond(c, 'HTTP/1.1 200 OK\rX-Injected: 1\r\nContent-Length: 2\r\n\r\nok'),
    send: GET,
    expect: { status: 502, then: 'keep-alive', check: (p) => assert.ok(!p.fields.some(([n]) => n.includes('injected'))) },
    upstreamRequests: 1,
  },
  {
    desc: 'bare CR followed by CR in the status line: 502',
    name: 'cr-cr',
    behaviour: (c) => respond(c, 'HTTP/1.1 200 OK\r\rSet-Cookie: a=b\r\nContent-Length: 2\r\n\r\nok'),
    send: GET,
    expect: { status: 502, then: 'keep-alive', check: (p) => assert.equal(header(p, 'set-cookie'), undefined) },
    upstreamRequests: 1,
  },
  {
    desc: 'RFC 9112 §5.1: whitespace between a response header name and the colon: 502',
    name: 'ws-before-colon',
    behaviour: (c) => respond(c, 'HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Length: 2\r\n\r\nok'),
    send: GET,
    expect: { status: 502, then: 'keep-alive' },
    upstreamRequests: 1,
  },
  {
    desc: 'RFC 9110 §15.2: 100 Continue although no Expect was sent, then 200: the 100 is dropped, the 200 forwarded (as CHP)',
    name: 'continue-unasked',
    behaviour: (c) => respond(c, 'HTTP/1.1 100 Continue\r\n\r\n' + OK),
    send: GET,
    expect: { status: 200, then: 'keep-alive', check: (p) => assert.equal(p.body.toString(), 'ok') },
    upstreamRequests: 1,
  },
  {
    desc: '100 Continue and 200 in separate writes: the 100 is dropped',
    name: 'continue-split',
    behaviour: (c) => {
      respond(c, 'HTTP/1.1 100 Continue\r\n\r\n');
      setTimeout(() => respond(c, OK), 50);
    },
    send: POST5,
    expect: { status: 200, then: 'keep-alive', check: (p) => assert.equal(p.body.toString(), 'ok') },
    upstreamRequests: 1,
  },
  {
    desc: 'RFC 9110 §15.2: an unasked 100 head in two TCP reads ("HTTP/1.1 100 Continue\\r\\n", then "\\r\\n"), then 200: the 100 is dropped, the 200 forwarded whole (node:http answered 502)',
    name: 'continue-split-head',
    behaviour: (c) => respondInPieces(c, ['HTTP/1.1 100 Continue\r\n', '\r\n', OK]),
    send: GET,
    expect: { status: 200, then: 'keep-alive', check: (p) => assert.equal(p.body.toString(), 'ok') },
    upstreamRequests: 1,
  },
  {
    desc: 'a 100 status line split inside its code, then the 200 status line split too: 100 dropped, 200 forwarded whole',
    name: 'continue-split-code',
    behaviour: (c) => respondInPieces(c, ['HTTP/1.1 10', '0 Continue\r\n\r\nHTTP/1.1 2', '00 OK\r\nContent-', 'Length: 2\r\n\r\no', 'k']),
    send: GET,
    expect: { status: 200, then: 'keep-alive', check: (p) => assert.equal(p.body.toString(), 'ok') },
    upstreamRequests: 1,
  },
  {
    desc: 'RFC 9110 §10.1.1: a client\'s Expect: 100-continue is answered 100 by the proxy itself (never forwarded); the upstream\'s own 100 (split across reads) is dropped and its final 200, head split too, reaches the client framed, the connection kept',
    name: 'expect-continue-split',
    behaviour: (c, head, body) => {
      // The upstream never sees Expect (the proxy answered it), and gets the body whole.
      if (/^expect:/im.test(head) || body.toString() !== 'hello') {
        respond(c, 'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      respondInPieces(c, ['HTTP/1.1 100 Continue\r\n', '\r\n', 'HTTP/1.1 200 OK\r\n', 'Content-Length: 5\r\n\r\n', 'he', 'llo']);
    },
    send: 'POST PATH HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello',
    interim: [100],
    expect: { status: 200, then: 'keep-alive', check: (p) => assert.equal(p.body.toString(), 'hello') },
    upstreamRequests: 1,
  },
  {
    desc: '103 Early Hints then 200: interim responses are not forwarded over HTTP/1.1 (as CHP), the 200 is',
    name: 'early-hints',
    behaviour: (c) => respond(c, 'HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n' + OK),
    send: GET,
    expect: { status: 200, then: 'keep-alive', check: (p) => assert.equal(header(p, 'link'), undefined) },
    upstreamRequests: 1,
  },
  {
    desc: '101 Switching Protocols to a request that asked no upgrade: 502',
    name: 'unasked-101',
    behaviour: (c) => respond(c, 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: evil\r\nConnection: upgrade\r\n\r\n'),
    send: GET,
    expect: { status: 502, then: 'keep-alive' },
    upstreamRequests: 1,
  },
  {
    desc: '101 without Upgrade headers to a plain request: 502',
    name: 'unasked-101-bare',
    behaviour: (c) => respond(c, 'HTTP/1.1 101 Switching Protocols\r\n\r\n'),
    send: GET,
    expect: { status: 502, then: 'keep-alive' },
    upstreamRequests: 1,
  },
  {
    desc: 'RFC 9110 §7.6.1: headers named in the upstream Connection header (over two Connection fields) never reach the client',
    name: 'hop-by-hop',
    behaviour: (c) =>
      respond(c, 'HTTP/1.1 200 OK\r\nConnection: X-Secret\r\nConnection: keep-alive\r\nX-Secret: 1\r\nKeep-Alive: timeout=999\r\nX-Public: 2\r\nContent-Length: 2\r\n\r\nok'),
    send: GET,
    expect: {
      status: 200,
      then: 'keep-alive',
      check: (p) => {
        assert.equal(header(p, 'x-secret'), undefined);
        assert.equal(header(p, 'x-public'), '2');
        assert.ok(!p.fields.some(([n, v]) => n === 'keep-alive' && v.includes('999')));
      },
    },
    upstreamRequests: 1,
  },
  {
    desc: 'RFC 9112 §6.3: Content-Length and Transfer-Encoding both from the upstream: 502',
    name: 'cl-te',
    behaviour: (c) => respond(c, 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n'),
    send: GET,
    expect: { status: 502, then: 'keep-alive' },
    upstreamRequests: 1,
  },
  {
    desc: 'a refused websocket upgrade with a chunked body: relayed once, framed by the close (no Transfer-Encoding over a de-chunked body)',
    name: 'ws-refused-chunked',
    behaviour: (c) => respond(c, 'HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\nX-Why: no\r\n\r\n5\r\nnope!\r\n0\r\n\r\n'),
    send: 'GET PATH HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    expect: {
      status: 403,
      then: 'close',
      check: (p) => {
        assert.equal(header(p, 'transfer-encoding'), undefined);
        assert.equal(header(p, 'x-why'), 'no');
        assert.equal(p.body.toString(), 'nope!');
      },
    },
    upstreamRequests: 1,
  },
  {
    desc: 'websocket upgrade to a silent upstream past --proxy-timeout: 504',
    name: 'ws-stall',
    behaviour: () => {},
    send: 'GET PATH HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    expect: { status: 504, then: 'close' },
    upstreamRequests: 1,
    withinMs: PROXY_TIMEOUT + 1500,
  },
  { desc: 'websocket upgrade to a refused target: 503', name: 'ws-refused', dead: true, send: 'GET PATH HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n', expect: { status: 503, then: 'close' }, upstreamRequests: 0 },
];

// Bodies to a dead upstream: every method, both framings, a 503 error page in bounded time.
for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
  cases.push({
    desc: `${method} with a Content-Length body to a stopped server: 503 error page`,
    name: `dead-${method.toLowerCase()}-cl`,
    dead: true,
    send: `${method} PATH HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello`,
    expect: { status: 503, then: 'keep-alive', check: (p) => assert.match(header(p, 'content-type') ?? '', /text\/html/) },
    upstreamRequests: 0,
    withinMs: 2000,
  });
  cases.push({
    desc: `${method} with a chunked body to a stopped server: 503 error page`,
    name: `dead-${method.toLowerCase()}-chunked`,
    dead: true,
    send: `${method} PATH HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    expect: { status: 503, then: 'keep-alive', check: (p) => assert.match(header(p, 'content-type') ?? '', /text\/html/) },
    upstreamRequests: 0,
    withinMs: 2000,
  });
}
// And the same bodies to a healthy route (DELETE/OPTIONS with a chunked body once hung).
for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
  cases.push({
    desc: `${method} with a chunked body to a healthy upstream: 200, the body arrives whole`,
    name: `ok-${method.toLowerCase()}-chunked`,
    behaviour: (c, _head, body) => respond(c, `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body.toString('latin1')}`),
    send: `${method} PATH HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    expect: { status: 200, then: 'keep-alive', check: (p) => assert.equal(p.body.toString(), 'hello') },
    upstreamRequests: 1,
  });
}

interface Harness {
  sy: SpawnedSwitchyard;
  healthy: Scripted;
  metricsPort: number;
}

async function harness(t: TestContextLike, workers: string[]): Promise<Harness> {
  const sy = await startSwitchyardProcess(t, [
    ...workers,
    '--proxy-timeout', String(PROXY_TIMEOUT),
    '--request-body-timeout', String(BODY_TIMEOUT),
    '--metrics-ip', '127.0.0.1',
    '--metrics-port', '0',
  ]);
  const metricsPort = sy.metricsPort!;
  const healthy = await scripted(t, (c) => respond(c, OK));
  assert.equal((await sy.api('POST', '/api/routes/healthy', { target: healthy.url })).status, 201);
  return { sy, healthy, metricsPort };
}

async function runCase(t: TestContextLike, h: Harness, c: Case): Promise<void> {
  const { sy } = h;
  let up: Scripted | undefined;
  let target: string;
  if (c.dead) {
    target = `http://127.0.0.1:${REFUSED_PORT}`; // nothing listens; a freed ephemeral port could self-connect
  } else {
    up = await scripted(t, c.behaviour!, c.onConnect);
    target = up.url;
  }
  assert.equal((await sy.api('POST', `/api/routes/c/${c.name}`, { target })).status, 201);
  const client = await RawClient.connect(sy.proxyPort);
  t.after(() => client.destroy());
  client.send(c.send.replace('PATH', `/c/${c.name}/x`));
  const got = await client.receive(8000);
  const where = `${c.desc}: got ${JSON.stringify(got.responses.map((r) => [r.status, r.complete]))} closed=${got.closed}`;

  if ('cut' in c.expect) {
    assert.equal(got.responses.length, 1, where);
    assert.equal(got.responses[0]!.status, c.expect.cut, where);
    assert.equal(got.responses[0]!.complete, false, `${where}: the body must stay incomplete`);
    assert.ok(got.closed, `${where}: the connection must be cut`);
  } else {
    const interim = c.interim ?? [];
    assert.deepEqual(got.responses.slice(0, -1).map((r) => r.status), interim, `${where}: interim responses`);
    assert.equal(got.responses.length, interim.length + 1, `${where}: exactly one final response`);
    const p = got.responses.at(-1)!;
    assert.equal(p.status, c.expect.status, where);
    assert.ok(p.complete, `${where}: a well-framed, complete response`);
    assert.equal(got.trailing.length, 0, `${where}: nothing after the response (${JSON.stringify(got.trailing.toString('latin1').slice(0, 80))})`);
    c.expect.check?.(p);
    if (c.expect.then === 'keep-alive') {
      assert.ok(!got.closed, `${where}: the connection stays usable`);
      client.send('GET /healthy/again HTTP/1.1\r\nHost: a\r\n\r\n');
      const again = await client.receive(5000);
      assert.deepEqual(again.responses.map((r) => [r.status, r.complete]), [[200, true]], `${where}: the next request on the same connection`);
    } else {
      if (!got.closed) await client.receive(3000, 0);
      assert.ok(client.closed, `${where}: the connection is closed after the answer`);
    }
  }
  if (c.withinMs !== undefined) assert.ok(got.ms < c.withinMs, `${where}: answered in ${got.ms} ms (limit ${c.withinMs})`);
  if (up !== undefined) {
    assert.equal(up.heads.length, c.upstreamRequests, `${where}: upstream received ${JSON.stringify(up.heads)}`);
  }
  // One bad exchange never affects another: a healthy route on another connection.
  const other = await request(`${sy.proxyUrl}/healthy/other`);
  assert.equal(other.status, 200, `${where}: another connection, healthy route`);
}

// Both data-plane paths: the fast path (the default) and node:http alone (--no-fast-path).
const MODES = [
  ['--workers 1', ['--workers', '1']],
  ['default workers', []],
  ['--workers 1 --no-fast-path', ['--workers', '1', '--no-fast-path']],
  ['default workers --no-fast-path', ['--no-fast-path']],
] as const;

for (const [label, workers] of MODES) {
  test(`hostile upstreams (${label}): each case gets exactly one well-framed answer or a cut`, { timeout: 180_000 }, async (t) => {
    const h = await harness(t, [...workers]);
    for (const c of cases) {
      await t.test(c.desc, async (tt) => runCase(tt, h, c));
    }
    // Logged once: one error line per failed request of the dead-body cases, no stack.
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      for (const framing of ['cl', 'chunked']) {
        const re = new RegExp(`error: 503 ${method} /c/dead-${method.toLowerCase()}-${framing}/x `, 'g');
        assert.equal(h.sy.output().match(re)?.length, 1, `${method} ${framing}: logged once\n${h.sy.output()}`);
      }
    }
    assert.doesNotMatch(h.sy.output(), /Uncaught|stack=/, 'no uncaught exception, no stack for expected failures');
    // Counted: failures by kind, timeouts by kind.
    await waitFor(async () => {
      const m = (await request(`http://127.0.0.1:${h.metricsPort}/metrics`)).body;
      return (
        /switchyard_upstream_errors_total\{kind="connect",code="ECONNREFUSED"\} [1-9]/.test(m) &&
        /switchyard_upstream_errors_total\{kind="invalid",code="SWY_UPSTREAM_BARE_CR"\} [1-9]/.test(m) &&
        /switchyard_upstream_errors_total\{kind="timeout",code="ETIMEDOUT"\} [1-9]/.test(m) &&
        /switchyard_upstream_errors_total\{kind="truncated",code="[A-Z_]+"\} [1-9]/.test(m) &&
        /switchyard_timeouts_total\{kind="upstream"\} [1-9]/.test(m)
      );
    }, 10_000, 'upstream error and timeout metrics');
  });
}

// ---------------------------------------------------------------------------------------------
// An upstream 100 split across reads, with a barrier the proxy itself takes part in: the client
// sends its body in three pieces, and the upstream writes the next piece of its answer only once
// it has received, through the proxy, the body piece the client sent after the previous answer
// piece was flushed. So the proxy had the first answer piece in its socket before it relayed the
// body piece that releases the second: each piece reaches the proxy alone (the table's
// `respondInPieces` cases only wait for the flush, and the proxy may read two pieces at once).

for (const [label, workers] of MODES) {
  for (const expect of [false, true]) {
    test(`an upstream 100 split across reads (${label}${expect ? ', client sent Expect: 100-continue' : ''}): dropped, the 200 after it framed, the connection kept`, { timeout: 60_000 }, async (t) => {
      const sy = await startSwitchyardProcess(t, [...workers]);
      let got = '';
      let last: net.Socket | undefined;
      const socks = new Set<net.Socket>();
      const server = net.createServer((s) => {
        socks.add(s);
        s.on('error', () => {});
        s.on('data', (d: Buffer) => {
          got += d.toString('latin1');
          last = s;
        });
      });
      const port = await listen0(server);
      t.after(() => {
        for (const s of socks) s.destroy();
        return new Promise((r) => server.close(r));
      });
      const upstreamGot = (re: RegExp): Promise<void> => waitFor(() => re.test(got), 5000, `the upstream to receive ${re}`);
      const upWrite = (bytes: string): Promise<void> => new Promise((r) => last!.write(Buffer.from(bytes, 'latin1'), () => r()));
      assert.equal((await sy.api('POST', '/api/routes/split', { target: `http://127.0.0.1:${port}` })).status, 201);

      const client = await RawClient.connect(sy.proxyPort);
      t.after(() => client.destroy());
      if (expect) {
        client.send('POST /split/x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 15\r\n\r\n');
        await client.until((b) => b.toString('latin1').startsWith('HTTP/1.1 100 Continue\r\n\r\n'));
        client.send('hello');
      } else {
        client.send('POST /split/x HTTP/1.1\r\nHost: a\r\nContent-Length: 15\r\n\r\nhello');
      }
      await upstreamGot(/^POST \/split\/x HTTP\/1\.1\r\n[^]*\r\n\r\nhello$/);
      assert.doesNotMatch(got, /^expect:/im, 'Expect is never forwarded');
      await upWrite('HTTP/1.1 100 Continue\r\n');
      client.send('world');
      await upstreamGot(/helloworld$/);
      await upWrite('\r\n');
      client.send('!!!!!');
      await upstreamGot(/helloworld!!!!!$/);
      await upWrite('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      const r = await client.receive(8000);
      const where = `got ${JSON.stringify(r.responses.map((p) => [p.status, p.complete]))} trailing ${JSON.stringify(r.trailing.toString('latin1'))}`;
      assert.deepEqual(r.responses.map((p) => p.status), expect ? [100, 200] : [200], where);
      const p = r.responses.at(-1)!;
      assert.ok(p.complete, where);
      assert.equal(p.body.toString(), 'ok', where);
      assert.equal(header(p, 'content-length'), '2', where);
      assert.equal(r.trailing.length, 0, where);
      assert.ok(!r.closed, 'the client connection is kept');
      // The same client connection, the same pooled upstream connection: a plain request works.
      got = '';
      client.send('GET /split/y HTTP/1.1\r\nHost: a\r\n\r\n');
      await upstreamGot(/^GET \/split\/y HTTP\/1\.1\r\n[^]*\r\n\r\n$/);
      await upWrite(OK);
      const again = await client.receive(5000);
      assert.deepEqual(again.responses.map((q) => [q.status, q.complete, q.body.toString()]), [[200, true, 'ok']]);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Retries: only an idempotent request without a body on a reused pooled connection.

/** An upstream whose first connection answers once, then dies on its second request (`how`). */
async function staleAfterOne(t: TestContextLike, how: 'reset' | 'close'): Promise<Scripted> {
  return scripted(t, (c) => {
    if (c.index === 0 && c.requests === 2) {
      if (how === 'reset') c.sock.resetAndDestroy();
      else c.sock.destroy();
      return;
    }
    respond(c, OK);
  });
}

for (const [label, workers] of MODES) {
  test(`retries (${label}): a GET on a stale pooled connection is retried once; a POST never`, { timeout: 60_000 }, async (t) => {
    const sy = await startSwitchyardProcess(t, [...workers]);
    for (const how of ['reset', 'close'] as const) {
      // GET: the second request meets the dead pooled connection, is retried on a new one.
      const up = await staleAfterOne(t, how);
      assert.equal((await sy.api('POST', `/api/routes/get-${how}`, { target: up.url })).status, 201);
      const client = await RawClient.connect(sy.proxyPort); // one client connection: one worker
      t.after(() => client.destroy());
      for (let i = 0; i < 2; i++) {
        client.send(`GET /get-${how}/${i} HTTP/1.1\r\nHost: a\r\n\r\n`);
        const got = await client.receive();
        assert.deepEqual(got.responses.map((r) => [r.status, r.complete]), [[200, true]], `GET ${i} (${how})`);
      }
      assert.deepEqual(up.heads, [`GET /get-${how}/0`, `GET /get-${how}/1`, `GET /get-${how}/1`], `GET retried once on a new connection (${how})`);
      assert.equal(up.connections, 2);

      // POST on the same kind of stale connection: received once, answered 503.
      for (const post of ['POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello', 'POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n']) {
        const pup = await staleAfterOne(t, how);
        const name = `post-${how}-${pup.port}`;
        assert.equal((await sy.api('POST', `/api/routes/${name}`, { target: pup.url })).status, 201);
        const pc = await RawClient.connect(sy.proxyPort);
        t.after(() => pc.destroy());
        pc.send(`GET /${name}/warm HTTP/1.1\r\nHost: a\r\n\r\n`);
        assert.equal((await pc.receive()).responses[0]?.status, 200);
        pc.send(post.replace('/p', `/${name}/p`));
        const got = await pc.receive();
        assert.deepEqual(got.responses.map((r) => [r.status, r.complete]), [[503, true]], `POST on a stale connection (${how}): 503`);
        assert.deepEqual(pup.heads, [`GET /${name}/warm`, `POST /${name}/p`], `the POST reached the upstream exactly once (${how})`);
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// A request body that never arrives.

for (const [label, workers] of MODES) {
  test(`request body timeout (${label}): clients that promise a body and send nothing get 408 and free the upstream`, { timeout: 60_000 }, async (t) => {
    // --proxy-timeout shorter than the body timeout: the upstream waiting for a body the client
    // does not send is not the upstream's silence (408, not 504).
    const sy = await startSwitchyardProcess(t, [...workers, '--request-body-timeout', String(BODY_TIMEOUT), '--proxy-timeout', '100']);
    const up = await scripted(t, (c) => respond(c, OK));
    assert.equal((await sy.api('POST', '/api/routes/slow', { target: up.url })).status, 201);
    const N = 50;
    const clients = await Promise.all(Array.from({ length: N }, () => RawClient.connect(sy.proxyPort)));
    t.after(() => clients.forEach((c) => c.destroy()));
    const started = Date.now();
    clients.forEach((c, i) => c.send(`POST /slow/${i} HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n${i % 2 ? 'part' : ''}`));
    const got = await Promise.all(clients.map((c) => c.receive(BODY_TIMEOUT + 5000)));
    for (const [i, g] of got.entries()) {
      assert.deepEqual(g.responses.map((r) => [r.status, r.complete]), [[408, true]], `client ${i}`);
      assert.ok(g.closed || (await clients[i]!.receive(2000, 0)).closed, `client ${i}: closed after the 408`);
    }
    const took = Date.now() - started;
    assert.ok(took < BODY_TIMEOUT + 4000, `all answered in ${took} ms`);
    // The upstream connections that carried these requests are released (undici may keep one
    // idle spare per aborted request, closed by its 4 s idle timeout).
    await waitFor(() => up.openConnections === 0, 10_000, `upstream connections released (open: ${up.openConnections})`);
    assert.equal((await request(`${sy.proxyUrl}/slow/after`)).status, 200);
  });
}

// ---------------------------------------------------------------------------------------------
// A target that accepts TCP but never completes the TLS handshake: --upstream-connect-timeout.

for (const [label, workers] of MODES) {
  test(`upstream connect timeout (${label}): a TLS handshake that never completes is a 503 in bounded time`, { timeout: 60_000 }, async (t) => {
    const sy = await startSwitchyardProcess(t, [...workers, '--upstream-connect-timeout', '300', '--metrics-ip', '127.0.0.1', '--metrics-port', '0']);
    const metricsPort = sy.metricsPort!;
    const silent = await scripted(t, () => {}, () => true); // accepts, reads nothing, says nothing
    assert.equal((await sy.api('POST', '/api/routes/tls', { target: `https://127.0.0.1:${silent.port}` })).status, 201);
    for (const send of [GET, 'GET PATH HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n']) {
      const client = await RawClient.connect(sy.proxyPort);
      t.after(() => client.destroy());
      client.send(send.replace('PATH', '/tls/x'));
      const got = await client.receive(5000);
      assert.deepEqual(got.responses.map((r) => [r.status, r.complete]), [[503, true]], send);
      assert.ok(got.ms < 2500, `answered in ${got.ms} ms`);
    }
    assert.match(sy.output(), /error: 503 GET \/tls\/x .*code=ETIMEDOUT kind=connect/);
    await waitFor(async () => /switchyard_timeouts_total\{kind="upstream_connect"\} 2/.test((await request(`http://127.0.0.1:${metricsPort}/metrics`)).body), 10_000, 'timeouts{upstream_connect} 2');
  });
}
