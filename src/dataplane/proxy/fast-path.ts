// The data plane's HTTP/1.1 fast path: a `net` server that reads request heads itself
// (fast-parser.ts), routes them against the same table, and proxies them over pooled raw upstream
// connections, without node:http's per-request objects and stream plumbing (bench/README.md: the
// node:http server path and its socket writes were ~90% of the proxy's CPU per request).
//
// Contract:
//  - What it takes: a request in the fast parser's subset (no body, or a Content-Length body),
//    whose route exists and whose target is http (TCP or unix socket), on a plain (non-TLS)
//    listener. Everything else — and any request whose head is not complete in the bytes read so
//    far — is handed to node:http (`handOver`) at a request boundary: nothing of the request was
//    answered, nothing is in flight, the unread bytes go to node:http's parser first, then the
//    socket is node:http's for good. So every refusal and every unusual request is answered by
//    the one existing path (request-rules.ts, llhttp, forward.ts, websocket.ts) as before.
//  - Requests on one connection are answered in order, one at a time (pipelined requests wait in
//    the buffer). The upstream request's head and the body bytes already read go out in one write;
//    the rest of a body streams with backpressure both ways, under --request-body-timeout (408).
//    An upstream that answers before the whole body came: the rest is read and dropped.
//  - The upstream response head is parsed strictly; a malformed, oversized or unasked-101 head is
//    502, a refused or reset connection 503 (one retry for an idempotent request on a reused
//    connection that failed before any response byte), --proxy-timeout 504; after the head was
//    forwarded a failure cuts the client connection. Error pages, counters, route stats,
//    activity and the access log are those of the node:http path (proxy-server.ts's `finish`).
//  - Response bodies: Content-Length bodies are passed through as they come; chunked and
//    close-delimited ones are re-framed as chunked (trailers dropped, as forward.ts does).
//    Upstream sockets read into reused buffers (read-buffers.ts, `net`'s `onread`), and body bytes
//    are written to the client straight from them. A read buffer goes back to the free list only
//    when every client write that refers to it has completed (its callback ran): a buffer whose
//    bytes are still queued for a slow client is never read into again. Backpressure: the
//    upstream socket is paused while the client socket has bytes queued in user space and a
//    'drain' is due (or too many read buffers are held for it), resumed on 'drain' or when its
//    held buffers come back; a client write that completes at once (the kernel took it) does not
//    pause anything.
//  - Client sockets read into buffers chosen here too (client-reads.ts; where Node does not allow
//    it, Node's own reads, as before): between bodies into one buffer shared by all of them
//    (`scratch`: nothing refers to its bytes once the read is handled: a partial or pipelined head
//    kept for later, body bytes sent upstream and bytes handed to node:http are copied), and while
//    a request body streams into buffers from the free lists, written upstream straight from them
//    and held, like response buffers, while an upstream write refers to them. The upload's
//    backpressure mirrors the download's: the client is paused only while the upstream socket has
//    bytes queued and a 'drain' is due (or too many buffers are held).

import net, { type Socket } from 'node:net';
import { STATUS_CODES } from '../../node-http.js';
import type { Route } from '../../routing/table.js';
import type { RequestPath } from '../../routing/request-path.js';
import type { Upstream } from '../../routing/target.js';
import type { Logger } from '../../observability/logger.js';
import type { ProxyStats } from '../../observability/metrics.js';
import { DEFER, INCOMPLETE, parseRequestHead, type FastRequest } from './fast-parser.js';
import { isValidHost } from './request-rules.js';
import { fastUpstreamHeaders, rewriteLocation, upstreamPath } from './headers.js';
import { encodeResponseHead, headerValue, httpDate, parseResponseHead, type ResponseHead } from './response-head.js';
import { STATUS_FOR, codedError, classifyUpstreamError, type UpstreamFailureKind, type UpstreamRequestOptions } from './forward.js';
import type { ErrorPages } from './error-pages.js';
import { activityPulse } from './activity-pulse.js';
import { createReadBuffers } from './read-buffers.js';
import { detectClientReads, scratch } from './client-reads.js';

export interface FastPathOptions {
  /** Route a parsed request; undefined: not the fast path's (no route, odd path, https target...). */
  route(host: string, url: string): { route: Route; rp: RequestPath } | undefined;
  /** Give a connection to node:http, its unread bytes first (proxy-server.ts). */
  handOver(socket: Socket, unread: Buffer, ended: boolean): void;
  /**
   * One request over: counters, latency, route stats, activity, access log (as node:http's path
   * does on 'finish'); 499: the response never completed (client left, or cut): access log only.
   */
  finished(r: FastRequest, socket: Socket, status: number, bytes: number, startedAt: number, started: number, route: Route | undefined): void;
  /** Shared with the node:http path (forward.ts): the same object, changed in place by a reload. */
  readonly upstream: UpstreamRequestOptions;
  readonly keepAliveTimeout: number;
  /** --timeout: client inactivity during a request (undefined: none). */
  readonly timeout: number | undefined;
  readonly connectTimeout: number;
  readonly errors: ErrorPages;
  readonly stats: ProxyStats;
  readonly log: Logger;
  readonly recordActivity: (path: string) => void;
  /** Tests: shorter idle period for pooled upstream sockets. */
  readonly idleMs?: number;
}

export interface FastPath {
  readonly server: net.Server;
  /** Close idle connections now, and busy ones after their current response. */
  drain(): void;
  /** Connections the fast path still holds. */
  size(): number;
  destroyAll(): void;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
const EXPECTS_PAYLOAD = new Set(['POST', 'PUT', 'PATCH']);
const STREAMING_BYTES = 64 * 1024;
/** A Content-Length body up to this size, complete in the read that ends the head, is copied into the head's buffer. */
const INLINE_BODY = 4096;
const MAX_RESPONSE_HEAD = 16 * 1024;
const MAX_BUFFERED = 64 * 1024;
const IDLE_MS = 4_000;
/**
 * Bytes per upstream socket read: libuv's default size, and after a read that filled it (a large
 * body streaming) the large size until the response ends. Fewer, larger reads and writes: less CPU
 * per byte of a large download than 64 KiB reads (bench/README.md); a pooled idle socket keeps
 * holding only a small one.
 */
const READ_BYTES = 64 * 1024;
const LARGE_READ_BYTES = 256 * 1024;
/** Read buffers one client may hold (queued, not yet written) before the upstream is paused. */
const MAX_HELD = 4;
/**
 * How long a client connection the proxy closes (its end() sent) is still read, its bytes
 * discarded, before it is destroyed: long enough for a client that still sends to read the last
 * answer before an unread-data reset could drop it, bounded however much it sends (each read
 * would re-arm the inactivity timeout). node:http destroys once the answer is flushed.
 */
const LINGER_MS = 2000;

const LF = 10;

const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');

// Date.now() is a runtime call (~2% of the fast path's own CPU when made per request): read at most
// once per millisecond of performance.now(), which is cheap. Exact to the millisecond.
let wallMs = 0;
let wallAt = -Infinity;
function wallNow(perf: number): number {
  if (perf - wallAt >= 1 || perf < wallAt) {
    wallAt = perf;
    wallMs = Date.now();
  }
  return wallMs;
}

// ---------------------------------------------------------------------------------------------
// Upstream connections (response heads: response-head.ts)

class UpConn {
  socket!: Socket;
  readonly key: string;
  /** The buffer the socket reads into next (lent to its handle: see onUpRead). */
  buf: Buffer;
  requests = 0;
  connected = false;
  ex: Exchange | undefined = undefined;
  /** Armed once, when the connection first goes idle; not touched per request (see release()). */
  idleTimer: NodeJS.Timeout | undefined = undefined;
  /** performance.now() when it last went back to the pool. */
  idleSince = 0;
  error: NodeJS.ErrnoException | undefined = undefined;
  /** The upstream said it closes after the current response (Connection: close, or HTTP/1.0): never pooled again. */
  last = false;

  constructor(key: string, buf: Buffer) {
    this.key = key;
    this.buf = buf;
  }
}

// ---------------------------------------------------------------------------------------------

const R_HEAD = 0;
const R_CL = 1;
const R_CHUNK_SIZE = 2;
const R_CHUNK_DATA = 3;
const R_CHUNK_CRLF = 4;
const R_TRAILERS = 5;
const R_CLOSE = 6;
const R_DONE = 7;

/** One request on the fast path and its upstream exchange. */
class Exchange {
  readonly c: ClientConn;
  readonly r: FastRequest;
  readonly route: Route;
  readonly head: string;
  readonly started = performance.now();
  readonly startedAt = wallNow(this.started);
  retries: number;
  up: UpConn | undefined = undefined;
  /** A response byte arrived on this attempt. */
  gotBytes = false;
  answered = false;
  settled = false;
  status = 0;
  bytes = 0;
  proxyTimer: NodeJS.Timeout | undefined = undefined;
  pulse: (() => void) | undefined = undefined;
  /** Request body bytes still to come from the client (Content-Length). */
  bodyLeft: number;
  bodyTimer: NodeJS.Timeout | undefined = undefined;
  bodyPulse: (() => void) | undefined = undefined;
  // response parser
  rstate = R_HEAD;
  headBuf: Buffer | null = null;
  remaining = 0;
  sizeLine = '';
  noBody: boolean;

  constructor(c: ClientConn, r: FastRequest, route: Route, head: string) {
    this.c = c;
    this.r = r;
    this.route = route;
    this.head = head;
    this.bodyLeft = r.contentLength > 0 ? r.contentLength : 0;
    // RFC 9110 §9.2.2: only an idempotent request without a body is ever sent twice.
    this.retries = this.bodyLeft === 0 && IDEMPOTENT.has(r.method) ? 1 : 0;
    this.noBody = r.method === 'HEAD';
  }
}

class ClientConn {
  readonly socket: Socket;
  buf: Buffer | null = null;
  ex: Exchange | undefined = undefined;
  ended = false;
  closing = false;
  gone = false;
  /** Body bytes of an answered request still to be read and dropped (the upstream answered early). */
  discard = 0;
  /** Response body writes from read buffers not yet completed (their callback not yet run). */
  inflight = 0;
  /** Read buffers with bytes still queued on this socket: back to the free list when inflight is 0. */
  held: Buffer[] = [];
  /** The socket's armed inactivity timeout (ms, 0 none): set only when it must change (see start()). */
  armed = 0;
  onWritten!: () => void;
  onData!: (d: Buffer) => void;
  onEnd!: () => void;
  onTimeout!: () => void;
  onDrain!: () => void;
  onClose!: () => void;
  onError!: () => void;
  // Reads into chosen buffers (client-reads.ts); rbuf null: Node's own reads (no onread support).
  /** The buffer the socket's handle reads into (`scratch`, or one of its own during a body). */
  rbuf: Buffer | null = null;
  /** Request body writes to an upstream socket from rbuf buffers, callbacks not yet run. */
  upInflight = 0;
  /** Read buffers with bytes still queued on an upstream socket: back when upInflight is 0. */
  upHeld: Buffer[] = [];
  /** Set by sendBody during a read: the upstream socket rbuf's bytes went to (null: several). */
  lentTo: Socket | null | undefined = undefined;
  /** Given to node:http (handOver). */
  handed = false;
  /** Set by closeClient: destroys the socket LINGER_MS after the proxy ended it. */
  linger: NodeJS.Timeout | undefined = undefined;
  onBodyWritten!: () => void;

  constructor(socket: Socket) {
    this.socket = socket;
  }
}

export function createFastPath(o: FastPathOptions): FastPath {
  const { stats, log } = o;
  const idleMs = o.idleMs ?? IDLE_MS;
  const pools = new Map<string, UpConn[]>();
  const clients = new Set<ClientConn>();
  const rewrite = o.upstream.autoRewrite || o.upstream.protocolRewrite !== undefined;
  // Free lists per size (per process; at most 4 MiB each kept, more left to the GC).
  const small = createReadBuffers(READ_BYTES, 64);
  const large = createReadBuffers(LARGE_READ_BYTES, 16);
  const giveBack = (b: Buffer): void => (b.length === LARGE_READ_BYTES ? large : small).give(b);
  const clientReads = detectClientReads();
  if (typeof clientReads === 'string') log.info(`fast path: client sockets use Node's own read buffers (${clientReads})`);
  else log.debug('fast path: client sockets read into reused buffers');
  /** Set by writeBody: the read being handled wrote bytes from its buffer to a client. */
  let lent = false;
  let draining = false;
  // Options are read per request (a reload changes timeouts in `o`); this header follows its timeout.
  let keepAliveFor = -1;
  let keepAliveText = '';
  const keepAliveHeader = (): string => {
    if (o.keepAliveTimeout !== keepAliveFor) {
      keepAliveFor = o.keepAliveTimeout;
      keepAliveText = `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(keepAliveFor / 1000)}\r\n`;
    }
    return keepAliveText;
  };
  // The last lines of a response head, as bytes: [keep-alive, chunked + keep-alive, close, chunked + close].
  let tails: Buffer[] = [];
  let tailsFor = '';
  const tailBytes = (reframe: boolean, close: boolean): Buffer => {
    const ka = keepAliveHeader();
    if (ka !== tailsFor) {
      tailsFor = ka;
      const te = 'Transfer-Encoding: chunked\r\n';
      tails = [`${ka}\r\n`, `${te}${ka}\r\n`, 'Connection: close\r\n\r\n', `${te}Connection: close\r\n\r\n`].map((t) => Buffer.from(t, 'latin1'));
    }
    return tails[(reframe ? 1 : 0) + (close ? 2 : 0)]!;
  };
  /** A re-framed response's last lines when the upstream applied other codings too (rare: made per response). */
  const codingsTail = (codings: string, close: boolean): Buffer =>
    Buffer.concat([Buffer.from(`Transfer-Encoding: ${codings}, chunked\r\n`, 'latin1'), tailBytes(false, close)]);

  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => accept(socket));

  function accept(socket: Socket): void {
    const c = new ClientConn(socket);
    clients.add(c);
    c.onData = (d) => onClientData(c, d);
    c.onEnd = () => {
      c.ended = true;
      const ex = c.ex;
      if (ex === undefined) {
        next(c);
        return;
      }
      // As node:http (httpAllowHalfOpen false): a client that half-closes abandons the request in
      // flight (logged as 499, the upstream exchange cancelled) and the connection is closed.
      if (!ex.settled) clientLeft(ex);
      c.gone = true;
      socket.end();
    };
    c.onTimeout = () => {
      // Without --timeout the keep-alive timeout stays armed through a request (re-armed by the
      // next read or write, so it counts from the connection's last activity): not ours to act on
      // while a request is in flight.
      if (c.ex !== undefined && c.armed !== o.timeout) return;
      stats.countTimeout(c.ex === undefined ? 'keep_alive' : 'client_idle');
      socket.destroy();
    };
    c.onDrain = () => resumeUpstream(c);
    c.onWritten = () => {
      if (--c.inflight > 0 || c.held.length === 0) return;
      // Every write that referred to these buffers has completed: nothing reads them any more.
      for (const b of c.held) giveBack(b);
      c.held.length = 0;
      resumeUpstream(c);
    };
    c.onClose = () => {
      clients.delete(c);
      c.gone = true;
      clearTimeout(c.linger);
      // The handle is closed: it reads into its buffer no more.
      if (c.rbuf !== null && c.rbuf !== scratch) giveBack(c.rbuf);
      c.rbuf = null;
      const ex = c.ex;
      if (ex !== undefined && !ex.settled) clientLeft(ex);
    };
    c.onError = () => socket.destroy();
    socket.on('data', c.onData);
    socket.on('end', c.onEnd);
    socket.on('timeout', c.onTimeout);
    socket.on('drain', c.onDrain);
    socket.on('close', c.onClose);
    socket.on('error', c.onError);
    armTimeout(c, o.keepAliveTimeout);
    if (typeof clientReads !== 'string') {
      c.onBodyWritten = () => {
        if (--c.upInflight > 0 || c.upHeld.length === 0) return;
        // Every upstream write that referred to these buffers has completed.
        for (const b of c.upHeld) giveBack(b);
        c.upHeld.length = 0;
        const ex = c.ex;
        const up = ex?.up;
        if (ex !== undefined && ex.bodyLeft > 0 && up !== undefined && up.ex === ex && !up.socket.writableNeedDrain && socket.isPaused()) socket.resume();
      };
      if (clientReads.install(socket, scratch, (n, b) => onClientRead(c, n, b), () => c.rbuf ?? scratch)) c.rbuf = scratch;
    }
  }

  /**
   * One read of a client socket into c.rbuf (`b`). Afterwards nothing but the upstream writes
   * counted in upInflight refers to b's bytes; the next read goes into scratch between bodies,
   * else into b again if it is free, or into another buffer (larger after a read that filled b).
   */
  function onClientRead(c: ClientConn, n: number, b: Buffer): boolean {
    c.lentTo = undefined;
    onClientData(c, n === b.length ? b : b.subarray(0, n));
    if (c.buf !== null && c.buf.buffer === b.buffer) c.buf = Buffer.from(c.buf);
    let free = b !== scratch;
    let paused = false;
    const up = c.lentTo as Socket | null | undefined; // (set by sendBody in onClientData)
    if (up !== undefined && (up === null || up.writableLength > 0)) {
      free = false;
      c.upHeld.push(b);
      const ex = c.ex;
      if (ex !== undefined && ex.bodyLeft > 0 && (up === null || up.writableNeedDrain || c.upHeld.length >= MAX_HELD)) {
        c.socket.pause();
        paused = true;
      }
    }
    const ex = c.ex;
    if (c.handed || c.rbuf === null || ex === undefined || ex.bodyLeft === 0) {
      // node:http's now (its handle reads into scratch after this read), or no body due.
      if (free) giveBack(b);
      if (c.rbuf !== null) c.rbuf = scratch;
      return true;
    }
    // A connection paused for a slow upstream holds its queued bytes and a small buffer, no more.
    const size = paused ? READ_BYTES : n === b.length ? LARGE_READ_BYTES : b === scratch ? READ_BYTES : b.length;
    if (free && size === b.length) return true;
    if (free) giveBack(b);
    c.rbuf = (size === LARGE_READ_BYTES ? large : small).take();
    return true;
  }

  /**
   * The client socket's inactivity timeout: --keep-alive-timeout between requests, --timeout
   * during one. Node's socket.setTimeout() re-links a timer each call: it is called only when the
   * value changes, so with the defaults (no --timeout) never per request (the 'timeout' handler
   * ignores a keep-alive timeout that fires while a request is in flight).
   */
  function armTimeout(c: ClientConn, ms: number): void {
    if (c.armed === ms) return;
    c.armed = ms;
    c.socket.setTimeout(ms);
  }

  function onClientData(c: ClientConn, d: Buffer): void {
    if (c.discard > 0) {
      const n = Math.min(c.discard, d.length);
      c.discard -= n;
      if (n === d.length) {
        if (c.discard === 0 && c.ex === undefined) next(c);
        return;
      }
      d = d.subarray(n);
    }
    const ex = c.ex;
    if (ex !== undefined && ex.bodyLeft > 0) {
      // The request body: straight to the upstream.
      const n = Math.min(ex.bodyLeft, d.length);
      sendBody(ex, n === d.length ? d : d.subarray(0, n));
      if (n === d.length) return;
      d = d.subarray(n);
    }
    if (c.closing || draining) {
      // Past the last request this connection answers (it closes after it): nothing here is read
      // as a request, so nothing is kept — a client that keeps sending holds no memory.
      c.buf = null;
      if (c.ex === undefined) closeClient(c);
      return;
    }
    c.buf = c.buf === null || c.buf.length === 0 ? d : Buffer.concat([c.buf, d]);
    if (c.ex === undefined) next(c);
    else if (c.buf.length > MAX_BUFFERED) c.socket.pause();
  }

  /** The client can take more of the response: read on from its upstream if that was paused. */
  function resumeUpstream(c: ClientConn): void {
    const ex = c.ex;
    const up = ex?.up;
    if (up === undefined || up.ex !== ex || !up.socket.isPaused()) return;
    if (c.socket.writableNeedDrain || c.held.length >= MAX_HELD) return; // a 'drain' or a write callback follows
    up.socket.resume();
  }

  /** Body bytes from the client for the upstream, with backpressure both ways. */
  function sendBody(ex: Exchange, d: Buffer): void {
    ex.bodyLeft -= d.length;
    ex.bodyTimer?.refresh();
    ex.proxyTimer?.refresh();
    ex.bodyPulse?.();
    if (ex.bodyLeft === 0) clearTimeout(ex.bodyTimer);
    const conn = ex.up;
    if (ex.settled || conn === undefined || conn.ex !== ex) return; // answered or failed: dropped
    const c = ex.c;
    if (c.rbuf !== null && d.buffer === c.rbuf.buffer && c.rbuf !== scratch) {
      // Straight from the read buffer: onClientRead holds it if the bytes stay queued.
      c.upInflight++;
      c.lentTo = c.lentTo === undefined || c.lentTo === conn.socket ? conn.socket : null;
      conn.socket.write(d, c.onBodyWritten);
      return;
    }
    // Paused only while more body is due: the upstream's 'drain' resumes it.
    if (!conn.socket.write(d.buffer === scratch.buffer ? Buffer.from(d) : d) && ex.bodyLeft > 0) c.socket.pause();
  }

  /** Between requests: start the next one in the buffer, hand over, or close. */
  function next(c: ClientConn): void {
    if (c.gone) return;
    if (c.discard > 0) {
      c.socket.resume();
      return;
    }
    const buf = c.buf;
    if (buf === null || buf.length === 0) {
      c.buf = null;
      if (c.ended || c.closing || draining) closeClient(c);
      else c.socket.resume();
      return;
    }
    if (draining || c.closing) {
      // Requests pipelined behind the last one answered are not read (end() flushes the answer,
      // which destroy() would drop while corked).
      c.buf = null;
      closeClient(c);
      return;
    }
    const r = parseRequestHead(buf, 0, isValidHost);
    if (r === INCOMPLETE || r === DEFER) return handOver(c);
    const routed = o.route(r.host, r.url);
    if (routed === undefined) return handOver(c);
    c.buf = r.headEnd === buf.length ? null : buf.subarray(r.headEnd);
    start(c, r, routed.route, routed.rp);
  }

  /**
   * The proxy closes this connection: end() flushes the last answer; the bytes the client still
   * sends are discarded (onClientData) and the socket is destroyed LINGER_MS later at the latest.
   */
  function closeClient(c: ClientConn): void {
    c.socket.end();
    if (c.linger !== undefined || c.gone) return;
    c.linger = setTimeout(() => c.socket.destroy(), LINGER_MS);
    c.linger.unref();
  }

  function handOver(c: ClientConn): void {
    const s = c.socket;
    // Our answers go out first: node:http may destroy the socket at once (a refusal), and a
    // destroy drops what a cork still holds.
    while (s.writableCorked > 0) s.uncork();
    if (readCork === s) readCork = null; // uncorked here; node:http may cork it next
    clients.delete(c);
    s.removeListener('data', c.onData);
    s.removeListener('end', c.onEnd);
    s.removeListener('timeout', c.onTimeout);
    s.removeListener('drain', c.onDrain);
    s.removeListener('close', c.onClose);
    s.removeListener('error', c.onError);
    s.setTimeout(0);
    // With reads into chosen buffers, c.buf may be a view of one (this read's): node:http keeps
    // slices of what it parses (an upgrade's head), so it gets a copy, and ordinary reads after.
    let unread = c.buf ?? Buffer.alloc(0);
    if (c.rbuf !== null && typeof clientReads !== 'string') {
      if (unread.length > 0) unread = Buffer.from(unread);
      clientReads.handBack(s);
      c.handed = true;
    }
    c.buf = null;
    c.gone = true;
    o.handOver(s, unread, c.ended);
  }

  function start(c: ClientConn, r: FastRequest, route: Route, rp: RequestPath): void {
    const up = route.upstream;
    const path = upstreamPath(up, rp.path, rp.query, route.pathDepth, o.upstream.prependPath, o.upstream.includePrefix);
    const list = fastUpstreamHeaders(r, up, o.upstream.headers, c.socket.remoteAddress ?? '', false);
    let head = `${r.method} ${path} HTTP/1.1\r\n`;
    for (let i = 0; i < list.length; i += 2) head += `${list[i]}: ${list[i + 1]}\r\n`;
    if (r.contentLength === -1 && EXPECTS_PAYLOAD.has(r.method)) head += 'content-length: 0\r\n';
    // After a HEAD the connection is not reused (as undici): an upstream that wrongly sends a body
    // would have those bytes read as the next response.
    head += r.method === 'HEAD' ? 'connection: close\r\n\r\n' : 'connection: keep-alive\r\n\r\n';
    const ex = new Exchange(c, r, route, head);
    c.ex = ex;
    if (r.close) c.closing = true;
    if (o.timeout !== undefined && o.timeout > 0) armTimeout(c, o.timeout);
    if (o.upstream.proxyTimeout !== undefined) ex.proxyTimer = setTimeout(() => proxyTimedOut(ex), o.upstream.proxyTimeout);
    send(ex);
    if (ex.bodyLeft > 0) {
      ex.bodyPulse = activityPulse(o.recordActivity, route.path);
      if (o.upstream.bodyTimeout > 0) ex.bodyTimer = setTimeout(() => bodyStalled(ex), o.upstream.bodyTimeout);
      // The body bytes already read go out right behind the head (one segment, corked in send()).
      const buf = c.buf;
      if (buf !== null && buf.length > 0) {
        const n = Math.min(ex.bodyLeft, buf.length);
        c.buf = n === buf.length ? null : buf.subarray(n);
        sendBody(ex, n === buf.length ? buf : buf.subarray(0, n));
      }
      if (ex.bodyLeft > 0) c.socket.resume();
    }
  }

  // --- upstream pool ---

  function send(ex: Exchange): void {
    const up = ex.route.upstream;
    const key = up.poolKey;
    const idle = pools.get(key);
    let conn: UpConn | undefined;
    while (idle !== undefined && idle.length > 0) {
      const cand = idle.pop()!;
      if (!cand.socket.destroyed && cand.socket.readyState === 'open') {
        conn = cand;
        break;
      }
    }
    if (conn === undefined) conn = connect(up, key);
    conn.ex = ex;
    ex.up = conn;
    ex.gotBytes = false;
    ex.rstate = R_HEAD;
    ex.headBuf = null;
    conn.requests++;
    // latin1, as undici writes request heads: every byte of it came from the fast parser's
    // latin1 strings or a validated setting. A body's first bytes follow in the same segment
    // (start() sends them right after this); without a body the head goes out at once.
    if (ex.bodyLeft === 0) {
      conn.socket.write(ex.head, 'latin1');
      return;
    }
    conn.socket.cork();
    conn.socket.write(ex.head, 'latin1');
    process.nextTick(uncork, conn.socket);
  }

  function uncork(s: Socket): void {
    s.uncork();
  }

  function connect(up: Upstream, key: string): UpConn {
    const conn = new UpConn(key, small.take());
    // Reads go into conn.buf; after each read Node asks for the next buffer (the same one, unless
    // onUpRead left it with a client and took another).
    const onread = {
      buffer: () => conn.buf,
      callback: (n: number, b: Uint8Array): boolean => {
        onUpRead(conn, n, b as Buffer);
        return true;
      },
    };
    const socket = up.socketPath !== undefined ? net.connect({ path: up.socketPath, onread }) : net.connect({ host: up.hostname, port: up.port, noDelay: true, onread });
    conn.socket = socket;
    socket.setTimeout(o.connectTimeout);
    socket.once('connect', () => {
      conn.connected = true;
      socket.setTimeout(0);
    });
    socket.on('timeout', () => {
      if (!conn.connected) socket.destroy(codedError(`connect to ${up.target} timed out`, 'UND_ERR_CONNECT_TIMEOUT'));
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      conn.error = e;
    });
    socket.on('drain', () => {
      const ex = conn.ex;
      if (ex !== undefined && ex.bodyLeft > 0 && ex.c.socket.isPaused()) ex.c.socket.resume();
    });
    socket.on('close', () => {
      const idle = pools.get(key);
      if (idle !== undefined) {
        const k = idle.indexOf(conn);
        if (k !== -1) idle.splice(k, 1);
        if (idle.length === 0) pools.delete(key);
      }
      clearTimeout(conn.idleTimer);
      // The handle is closed: it reads into its buffer no more.
      giveBack(conn.buf);
      const ex = conn.ex;
      conn.ex = undefined;
      if (ex !== undefined && ex.up === conn && !ex.settled) onUpClosed(ex, conn);
    });
    return conn;
  }

  function release(conn: UpConn): void {
    conn.ex = undefined;
    // A connection the upstream is closing is not pooled: a request picked before its FIN is
    // read would be reset, and one that is not idempotent is not retried (RFC 9112 §9.3, §9.6).
    if (conn.socket.destroyed || draining || conn.last) {
      conn.socket.destroy();
      return;
    }
    if (conn.socket.isPaused()) conn.socket.resume();
    let idle = pools.get(conn.key);
    if (idle === undefined) pools.set(conn.key, (idle = []));
    idle.push(conn);
    // One timer per connection, armed when it first goes idle and checked when it fires (the
    // connection may have been busy or reused since): no timer call per request.
    conn.idleSince = performance.now();
    if (conn.idleTimer === undefined) conn.idleTimer = setTimeout(idleCheck, idleMs, conn);
  }

  /** A pooled connection idle for idleMs is closed (before the upstream's keep-alive timeout, typically 5 s). */
  function idleCheck(conn: UpConn): void {
    conn.idleTimer = undefined;
    if (conn.socket.destroyed) return;
    if (conn.ex !== undefined) return; // busy: release() arms the timer again
    const left = conn.idleSince + idleMs - performance.now();
    if (left > 1) conn.idleTimer = setTimeout(idleCheck, left, conn);
    else conn.socket.destroy();
  }

  // --- response ---

  /** One upstream socket read, into conn's read buffer `buf`. */
  function onUpRead(conn: UpConn, n: number, buf: Buffer): void {
    const ex = conn.ex;
    if (ex === undefined) {
      conn.socket.destroy(); // bytes nobody asked for: the connection's framing is lost
      return;
    }
    lent = false;
    onUpData(ex, conn, n === buf.length ? buf : buf.subarray(0, n));
    // Nothing of buf queued anywhere, or all written bytes already handed to the kernel (the
    // common case): buf is free again at once. Otherwise the client holds it until its writes
    // complete, and the socket reads into another.
    let free = true;
    if (lent) {
      lent = false;
      const c = ex.c;
      const s = c.socket;
      if (s.writableLength > 0) {
        free = false;
        c.held.push(buf);
        if (conn.ex === ex && !ex.settled && (s.writableNeedDrain || c.held.length >= MAX_HELD)) conn.socket.pause();
      }
    }
    // The next response on this connection starts small again (and so does what an idle pooled
    // socket holds); a read that filled its buffer is followed by a large one.
    const size = conn.ex !== ex || ex.settled ? READ_BYTES : n === buf.length ? LARGE_READ_BYTES : buf.length;
    if (free && size === buf.length) return;
    if (free) giveBack(buf);
    conn.buf = (size === LARGE_READ_BYTES ? large : small).take();
  }

  /** The client socket corked for the upstream read being handled (onUpData), if any. */
  let readCork: Socket | null = null;
  function corkRead(s: Socket): void {
    if (readCork !== null) return;
    readCork = s;
    s.cork();
  }

  function onUpData(ex: Exchange, conn: UpConn, d: Buffer): void {
    if (ex.settled) return;
    ex.gotBytes = true;
    ex.proxyTimer?.refresh();
    // Everything this read yields for the client goes out in one write: a small response is one
    // buffer (answer()); where several writes follow from one read (a head and the start of a
    // large body, chunked or close-delimited bodies) they are corked into one writev.
    readCork = null;
    if (ex.rstate !== R_HEAD && ex.rstate !== R_CL) corkRead(ex.c.socket);
    try {
      let off = 0;
      while (off < d.length && !ex.settled) {
        switch (ex.rstate) {
          case R_HEAD:
            off = readHead(ex, conn, d, off);
            break;
          case R_CL: {
            const n = Math.min(ex.remaining, d.length - off);
            body(ex, off === 0 && n === d.length ? d : d.subarray(off, off + n));
            off += n;
            ex.remaining -= n;
            if (ex.remaining === 0) {
              if (off < d.length) conn.socket.destroy(); // more than the announced length: not reusable
              complete(ex, conn);
            }
            break;
          }
          case R_CHUNK_SIZE: {
            const nl = d.indexOf(LF, off);
            const end = nl === -1 ? d.length : nl + 1;
            ex.sizeLine += d.toString('latin1', off, end);
            off = end;
            if (ex.sizeLine.length > 1024) return upInvalid(ex, conn, 'HPE_INVALID_CHUNK_SIZE');
            if (nl === -1) break;
            const m = /^([0-9A-Fa-f]{1,12})(?:[ \t]*;[^\r\n]*)?\r\n$/.exec(ex.sizeLine);
            ex.sizeLine = '';
            if (m === null) return upInvalid(ex, conn, 'HPE_INVALID_CHUNK_SIZE');
            const size = parseInt(m[1]!, 16);
            if (size === 0) {
              ex.rstate = R_TRAILERS;
            } else {
              ex.remaining = size;
              ex.rstate = R_CHUNK_DATA;
              body(ex, null, size);
            }
            break;
          }
          case R_CHUNK_DATA: {
            const n = Math.min(ex.remaining, d.length - off);
            body(ex, d.subarray(off, off + n));
            off += n;
            ex.remaining -= n;
            if (ex.remaining === 0) {
              ex.rstate = R_CHUNK_CRLF;
              ex.sizeLine = '';
            }
            break;
          }
          case R_CHUNK_CRLF: {
            ex.sizeLine += d.toString('latin1', off, off + 1);
            off++;
            if (ex.sizeLine === '\r') break;
            if (ex.sizeLine !== '\r\n') return upInvalid(ex, conn, 'HPE_STRICT');
            ex.sizeLine = '';
            writeClient(ex, '\r\n');
            ex.rstate = R_CHUNK_SIZE;
            break;
          }
          case R_TRAILERS: {
            // Trailer lines are read and dropped, up to the empty line.
            const nl = d.indexOf(LF, off);
            const end = nl === -1 ? d.length : nl + 1;
            ex.sizeLine += d.toString('latin1', off, end);
            off = end;
            if (ex.sizeLine.length > MAX_RESPONSE_HEAD) return upInvalid(ex, conn, 'HPE_HEADER_OVERFLOW');
            if (nl === -1) break;
            const line = ex.sizeLine;
            ex.sizeLine = '';
            if (line === '\r\n') {
              if (off < d.length) conn.socket.destroy();
              complete(ex, conn);
            } else if (!line.endsWith('\r\n')) {
              return upInvalid(ex, conn, 'HPE_LF_EXPECTED');
            }
            break;
          }
          case R_CLOSE:
            body(ex, off === 0 ? d : d.subarray(off));
            off = d.length;
            break;
          default:
            conn.socket.destroy();
            return;
        }
      }
    } catch (e) {
      internal(ex, e);
    } finally {
      const s = readCork as Socket | null; // set by corkRead() during the loop
      readCork = null;
      s?.uncork();
    }
  }

  /** Accumulate and parse the response head; returns the offset after it (or d.length). */
  function readHead(ex: Exchange, conn: UpConn, d: Buffer, off: number): number {
    const prevLen = ex.headBuf === null ? 0 : ex.headBuf.length;
    const buf = ex.headBuf === null ? (off === 0 ? d : d.subarray(off)) : Buffer.concat([ex.headBuf, d.subarray(off)]);
    const from = Math.max(0, prevLen - 3);
    const end = buf.indexOf(HEAD_END, from);
    if (end === -1) {
      if (buf.length > MAX_RESPONSE_HEAD) upInvalid(ex, conn, 'UND_ERR_HEADERS_OVERFLOW');
      else ex.headBuf = Buffer.from(buf);
      return d.length;
    }
    if (end + 4 > MAX_RESPONSE_HEAD) {
      upInvalid(ex, conn, 'UND_ERR_HEADERS_OVERFLOW');
      return d.length;
    }
    ex.headBuf = null;
    const consumed = off + (end + 4 - prevLen);
    const h = parseResponseHead(buf, end + 4);
    if (typeof h === 'string') {
      upInvalid(ex, conn, h);
      return d.length;
    }
    if (h.status < 200) {
      if (h.status === 101) {
        upInvalid(ex, conn, 'SWY_UPSTREAM_UNEXPECTED_101');
        return d.length;
      }
      if (h.status < 100) {
        upInvalid(ex, conn, 'HPE_INVALID_STATUS');
        return d.length;
      }
      return consumed; // interim response: dropped, the final one follows
    }
    if (h.status > 599) {
      upInvalid(ex, conn, 'SWY_UPSTREAM_STATUS');
      return d.length;
    }
    return answer(ex, conn, h, buf, d, consumed);
  }

  /**
   * Answer the client from a parsed head (`hb`: the buffer it is in). A small Content-Length body
   * already complete in this read (`d` from `off`) goes out in the head's buffer: one write.
   * Returns the offset in d after what was used.
   */
  function answer(ex: Exchange, conn: UpConn, h: ResponseHead, hb: Buffer, d: Buffer, off: number): number {
    const c = ex.c;
    const status = h.status;
    const noBody = ex.noBody || status === 204 || status === 304;
    let location: string | undefined;
    if (rewrite && h.location !== -1) {
      location = rewriteLocation(headerValue(hb, h, h.location), status, ex.route.upstream, ex.r.host, o.upstream.autoRewrite, o.upstream.protocolRewrite);
    }
    let mode: number;
    if (noBody) mode = R_DONE;
    else if (h.chunked) mode = R_CHUNK_SIZE;
    else if (h.contentLength >= 0) mode = h.contentLength === 0 ? R_DONE : R_CL;
    else mode = R_CLOSE;
    const reframe = mode === R_CHUNK_SIZE || mode === R_CLOSE;
    const inline = mode === R_CL && h.contentLength <= INLINE_BODY && d.length - off >= h.contentLength ? h.contentLength : 0;
    const closing = c.closing || draining;
    const tail = reframe && h.codings !== undefined ? codingsTail(h.codings, closing) : tailBytes(reframe, closing);
    const out = encodeResponseHead(hb, h, location, tail, inline);
    ex.status = status;
    ex.answered = true;
    if (h.close) conn.last = true;
    if (status < 300 && (reframe || h.contentLength >= STREAMING_BYTES)) ex.pulse = activityPulse(o.recordActivity, ex.route.path);
    ex.rstate = mode;
    ex.remaining = h.contentLength;
    if (inline > 0) {
      d.copy(out, out.length - inline, off, off + inline);
      off += inline;
      ex.remaining = 0;
      writeClient(ex, out);
      if (off < d.length) conn.socket.destroy(); // more than the announced length: not reusable
      complete(ex, conn);
      return off;
    }
    if (mode !== R_DONE) corkRead(c.socket); // body writes follow
    writeClient(ex, out);
    if (mode === R_DONE) {
      // A body the request method or status excludes is not read: HEAD/204/304 responses end here.
      // Bytes after such a response are none of the next request's: not reusable (as R_CL).
      if (off < d.length) conn.socket.destroy();
      complete(ex, conn);
    }
    return off;
  }

  function writeClient(ex: Exchange, data: string | Buffer): boolean {
    const s = ex.c.socket;
    if (s.destroyed) return false;
    ex.bytes += data.length;
    return s.write(data);
  }

  /** Bytes of an upstream read buffer for the client: counted until the write completes. */
  function writeBody(ex: Exchange, data: Buffer): void {
    const c = ex.c;
    const s = c.socket;
    if (s.destroyed) return;
    ex.bytes += data.length;
    c.inflight++;
    lent = true;
    s.write(data, c.onWritten);
  }

  /**
   * Body bytes for the client; `chunkSize`: the start of a re-framed chunk of that size.
   * Backpressure is onUpRead's, once the whole read is handled.
   */
  function body(ex: Exchange, data: Buffer | null, chunkSize?: number): void {
    ex.pulse?.();
    if (chunkSize !== undefined) writeClient(ex, chunkSize.toString(16) + '\r\n');
    else if (ex.rstate === R_CLOSE) {
      if (data!.length === 0) return;
      ex.c.socket.cork();
      writeClient(ex, data!.length.toString(16) + '\r\n');
      writeBody(ex, data!);
      writeClient(ex, '\r\n');
      ex.c.socket.uncork();
    } else writeBody(ex, data!);
  }

  function complete(ex: Exchange, conn: UpConn): void {
    if (ex.settled) return;
    if (ex.rstate === R_CHUNK_SIZE || ex.rstate === R_TRAILERS || ex.rstate === R_CLOSE) writeClient(ex, '0\r\n\r\n');
    ex.rstate = R_DONE;
    ex.settled = true;
    clearTimeout(ex.proxyTimer);
    if (ex.bodyLeft > 0) {
      // Answered before the whole body came: the rest is read and dropped (as node:http does with
      // an unread body), so the connection can carry the next request; this upstream connection
      // got an incomplete request and is not reused.
      ex.c.discard += ex.bodyLeft;
      ex.bodyLeft = 0;
      if (conn.ex === ex) conn.ex = undefined;
      conn.socket.destroy();
    }
    if (conn.ex === ex) {
      if (ex.noBody) {
        conn.ex = undefined;
        conn.socket.destroy();
      } else release(conn);
    }
    done(ex, ex.status);
  }

  /** The request is over for the client (answered, or failed after an answer was attempted). */
  function done(ex: Exchange, status: number): void {
    const c = ex.c;
    o.finished(ex.r, c.socket, status, ex.bytes, ex.startedAt, ex.started, ex.route);
    c.ex = undefined;
    if (c.gone) return;
    if (c.closing) {
      c.buf = null;
      closeClient(c);
      return;
    }
    armTimeout(c, o.keepAliveTimeout);
    next(c);
  }

  // --- failures ---

  function upInvalid(ex: Exchange, conn: UpConn, code: string): void {
    conn.ex = undefined;
    conn.socket.destroy();
    failed(ex, 'invalid', code, `invalid upstream response (${code})`);
  }

  function onUpClosed(ex: Exchange, conn: UpConn): void {
    if (ex.rstate === R_CLOSE) {
      complete(ex, conn);
      return;
    }
    const e = conn.error ?? codedError('other side closed', 'UND_ERR_SOCKET');
    const classified = classifyUpstreamError(e, conn.connected);
    const code = classified[1];
    const kind = conn.connected && classified[0] === 'connect' ? 'reset' : classified[0];
    if (kind === 'reset' && ex.retries > 0 && !ex.gotBytes && !ex.answered && conn.requests > 1) {
      ex.retries--;
      stats.countUpstreamError('retried', code);
      send(ex);
      return;
    }
    failed(ex, kind, code, e.message);
  }

  function proxyTimedOut(ex: Exchange): void {
    if (ex.settled) return;
    // Still waiting for the client's body (not held back by backpressure): the upstream's
    // silence is expected; --request-body-timeout judges the client.
    if (ex.bodyLeft > 0 && !ex.c.socket.isPaused() && !ex.answered) {
      ex.proxyTimer?.refresh();
      return;
    }
    const conn = ex.up;
    if (conn !== undefined) {
      conn.ex = undefined;
      conn.socket.destroy();
    }
    failed(ex, 'timeout', 'ETIMEDOUT', `no response from target within ${o.upstream.proxyTimeout} ms`);
  }

  function failed(ex: Exchange, kind: UpstreamFailureKind, code: string, message: string): void {
    if (ex.settled) return;
    ex.settled = true;
    clearTimeout(ex.proxyTimer);
    const c = ex.c;
    const path = ex.r.url.split('?', 1)[0]!;
    if (kind === 'timeout') stats.countTimeout('upstream');
    else if (kind === 'connect' && code === 'ETIMEDOUT') stats.countTimeout('upstream_connect');
    if (ex.answered) {
      stats.countUpstreamError('truncated', code);
      if (!c.gone) log.warn(`response cut: ${ex.r.method} ${path} ${message}`, { route: ex.route.path, target: ex.route.upstream.target, code });
      c.socket.destroy();
      if (!c.gone) o.finished(ex.r, c.socket, 499, ex.bytes, ex.startedAt, ex.started, ex.route);
      return;
    }
    stats.countUpstreamError(kind, code);
    if (c.gone) return;
    abandonBody(ex);
    const status = STATUS_FOR[kind];
    log.error(`${status} ${ex.r.method} ${path} ${message}`, { route: ex.route.path, target: ex.route.upstream.target, code, kind });
    errorPage(ex, status);
  }

  /**
   * The answer comes before the client's whole body: close after it (the connection cannot carry
   * another request reliably), dropping what still arrives.
   */
  function abandonBody(ex: Exchange): void {
    clearTimeout(ex.bodyTimer);
    if (ex.bodyLeft > 0) {
      ex.c.closing = true;
      ex.c.discard += ex.bodyLeft;
      ex.bodyLeft = 0;
    }
  }

  function bodyStalled(ex: Exchange): void {
    const c = ex.c;
    if (ex.bodyLeft === 0 || c.gone) return;
    // Paused by backpressure: the upstream is slow to read, not the client to send.
    if (c.socket.isPaused() && !ex.settled) {
      ex.bodyTimer?.refresh();
      return;
    }
    stats.countTimeout('request_body');
    const conn = ex.up;
    if (conn !== undefined && conn.ex === ex) {
      conn.ex = undefined;
      conn.socket.destroy();
    }
    if (ex.answered || ex.settled) {
      c.socket.destroy();
      return;
    }
    ex.settled = true;
    clearTimeout(ex.proxyTimer);
    log.warn(`408 ${ex.r.method} ${ex.r.url.split('?', 1)[0]} request body stalled for ${o.upstream.bodyTimeout} ms`, { route: ex.route.path });
    abandonBody(ex);
    errorPage(ex, 408);
  }

  function errorPage(ex: Exchange, status: number): void {
    void o.errors.page(ex.r.url, status).then((page) => {
      const c = ex.c;
      if (c.gone || c.socket.destroyed) {
        o.finished(ex.r, c.socket, 499, ex.bytes, ex.startedAt, ex.started, ex.route);
        return;
      }
      let out = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`;
      for (const [k, v] of page.headers) out += `${k}: ${v}\r\n`;
      out += `Date: ${httpDate()}\r\n`;
      out += c.closing || draining ? 'Connection: close\r\n' : keepAliveHeader();
      out += `Content-Length: ${page.body.length}\r\n\r\n`;
      ex.status = status;
      c.socket.cork();
      writeClient(ex, out);
      if (ex.r.method !== 'HEAD') writeClient(ex, page.body);
      c.socket.uncork();
      done(ex, status);
    });
  }

  function clientLeft(ex: Exchange): void {
    ex.settled = true;
    clearTimeout(ex.proxyTimer);
    clearTimeout(ex.bodyTimer);
    const conn = ex.up;
    if (conn !== undefined && conn.ex === ex) {
      conn.ex = undefined;
      conn.socket.destroy();
    }
    o.finished(ex.r, ex.c.socket, 499, ex.bytes, ex.startedAt, ex.started, ex.route);
  }

  function internal(ex: Exchange, e: unknown): void {
    stats.internalErrors++;
    log.error(`500 ${ex.r.method} ${ex.r.url.split('?', 1)[0]} internal error`, { err: e });
    const conn = ex.up;
    if (conn !== undefined) {
      conn.ex = undefined;
      conn.socket.destroy();
    }
    if (ex.answered || ex.settled) {
      ex.settled = true;
      ex.c.socket.destroy();
      return;
    }
    ex.settled = true;
    clearTimeout(ex.proxyTimer);
    abandonBody(ex);
    errorPage(ex, 500);
  }

  return {
    server,
    drain() {
      draining = true;
      for (const c of clients) if (c.ex === undefined) closeClient(c);
      for (const idle of pools.values()) for (const conn of idle) conn.socket.destroy();
    },
    size: () => clients.size,
    destroyAll() {
      for (const c of clients) c.socket.destroy();
      for (const idle of pools.values()) for (const conn of idle) conn.socket.destroy();
    },
  };
}
