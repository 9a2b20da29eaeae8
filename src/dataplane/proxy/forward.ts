// Forwarding one HTTP request to its upstream and streaming the response back.
//
// Contract: every request gets exactly one well-framed answer, or a clean close when the client
// left. Bodies stream both ways with backpressure, never buffered (undici's dispatch: the response
// head and chunks arrive in callbacks, a full client buffer pauses the upstream socket until
// 'drain'). An upstream failure before the response head is answered with an error page:
//   connect  could not connect (refused, unreachable, DNS, TLS, connect timeout)   503 (as CHP)
//   reset    connected, then closed or reset before a response head               503 (as CHP)
//   timeout  --proxy-timeout: the upstream went silent                           504
//   invalid  malformed, oversized or illegal response head, unasked 101           502
//   other    anything else undici reports                                         502
// After the head was forwarded a failure cuts the client connection (the only honest signal left;
// never a second head). Each failure is logged once (one line, no stack) and counted in
// switchyard_upstream_errors_total{kind,code}; timeouts also in switchyard_timeouts_total{kind}.
//
// Whether the client is gone is decided from the client's connection (res 'close' before the
// response finished), never from the request stream: undici may destroy the body stream it was
// given, and a request whose body was read to its end is not a client that left.
//
// Retries (RFC 9110 §9.2.2): only an idempotent request without a body, only when its reused
// pooled connection failed before any response byte (the upstream closed an idle socket as we
// reused it), at most once. A request with a body, or a POST/PATCH, is never sent twice.

import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Route } from '../../routing/table.js';
import type { RequestPath } from '../../routing/request-path.js';
import { reasonPhrase, responseHeadersFromRaw, rewriteLocation, upstreamPath, upstreamRequestHeaders, type HeaderOptions } from './headers.js';
import { BODY_HIGH_WATER_MARK, type UpstreamAgents } from './upstream-agents.js';
import { REUSED } from './upstream-socket.js';
import { activityPulse } from './activity-pulse.js';
import type { ErrorPages } from './error-pages.js';
import type { Logger } from '../../observability/logger.js';
import type { ProxyStats } from '../../observability/metrics.js';

/**
 * How a request is sent upstream and its response rewritten: the settings the node:http path and
 * the fast path share. proxy-server.ts hands both paths the same object, and a reload changes its
 * timeouts in place, once for both.
 */
export interface UpstreamRequestOptions {
  readonly headers: HeaderOptions;
  readonly prependPath: boolean;
  readonly includePrefix: boolean;
  readonly autoRewrite: boolean;
  readonly protocolRewrite: string | undefined;
  /** --proxy-timeout: longest silence of the upstream (no byte sent or received), undefined = none. */
  readonly proxyTimeout: number | undefined;
  /** --request-body-timeout: longest pause in a client's request body, 0 = none. */
  readonly bodyTimeout: number;
}

export interface ForwardOptions extends UpstreamRequestOptions {
  readonly agents: UpstreamAgents;
  readonly errors: ErrorPages;
  readonly stats: ProxyStats;
  readonly log: Logger;
  readonly recordActivity: (path: string) => void;
}

/** Responses at least this large (or of unknown length) record activity while streaming. */
const STREAMING_BYTES = 64 * 1024;

/** RFC 9110 §9.2.2. Only ever retried without a body. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export type UpstreamFailureKind = 'connect' | 'reset' | 'timeout' | 'invalid' | 'other';
/** The answer for each kind of upstream failure (web and websocket alike). */
export const STATUS_FOR: Readonly<Record<UpstreamFailureKind, number>> = { connect: 503, reset: 503, timeout: 504, invalid: 502, other: 502 };

function hasBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
}

export function codedError(message: string, code: string): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(message);
  e.code = code;
  return e;
}

/**
 * What an upstream error means for the client. `connected`: undici had started writing the
 * request on a connection (onConnect), so the connection itself was established.
 */
export function classifyUpstreamError(e: NodeJS.ErrnoException, connected: boolean): [UpstreamFailureKind, string] {
  const code = e.code ?? 'EUNKNOWN';
  switch (code) {
    case 'SWY_PROXY_TIMEOUT':
      return ['timeout', 'ETIMEDOUT'];
    case 'UND_ERR_CONNECT_TIMEOUT':
      return ['connect', 'ETIMEDOUT'];
    case 'UND_ERR_SOCKET':
      if (e.message === 'bad upgrade') return ['invalid', 'SWY_UPSTREAM_UNEXPECTED_101'];
      if (e.message === 'bad response') return ['invalid', 'SWY_UPSTREAM_BAD_RESPONSE'];
      return [connected ? 'reset' : 'connect', 'ECONNRESET'];
    case 'UND_ERR_CLOSED':
      return [connected ? 'reset' : 'connect', 'ECONNRESET'];
    case 'UND_ERR_HEADERS_OVERFLOW':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    case 'UND_ERR_RES_EXCEEDED_MAX_SIZE':
    case 'ERR_ASSERTION': // undici asserts a status >= 100
      return ['invalid', code];
  }
  if (code.startsWith('HPE_') || code.startsWith('SWY_UPSTREAM_')) return ['invalid', code];
  if (code.startsWith('UND_ERR_INVALID_ARG') || code === 'UND_ERR_NOT_SUPPORTED') return ['other', code]; // undici refused our request
  if (!connected) return ['connect', code]; // ECONNREFUSED, EHOSTUNREACH, ENOTFOUND, TLS errors, …
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED') return ['reset', code];
  return ['other', code];
}

/** Forget a head writeHead or an error path had started to set (nothing was sent yet). */
function clearHead(res: ServerResponse): void {
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  res.statusMessage = '';
}

function pathOf(req: IncomingMessage): string {
  return (req.url ?? '').split('?', 1)[0]!;
}

export function createForwarder(o: ForwardOptions) {
  const rewrite = o.autoRewrite || o.protocolRewrite !== undefined;
  const { stats, log } = o;

  /** One client request and its upstream exchange; also undici's dispatch handler. */
  class Exchange implements Dispatcher.DispatchHandlers {
    readonly req: IncomingMessage;
    readonly res: ServerResponse;
    readonly route: Route;
    readonly opts: Dispatcher.DispatchOptions;
    readonly body: PassThrough | null;
    /** Retries left (0 or 1). */
    retries: number;
    abortFn: ((e?: Error) => void) | undefined = undefined;
    resumeFn: (() => void) | undefined = undefined;
    /** A response byte arrived on this attempt (undici's onResponseStarted). */
    started = false;
    /** The response head was forwarded to the client. */
    answered = false;
    /** The upstream exchange is over for us: completed, failed, timed out or abandoned. */
    settled = false;
    clientGone = false;
    proxyTimer: NodeJS.Timeout | undefined = undefined;
    bodyTimer: NodeJS.Timeout | undefined = undefined;
    pulse: (() => void) | undefined = undefined;

    constructor(req: IncomingMessage, res: ServerResponse, route: Route, rp: RequestPath) {
      this.req = req;
      this.res = res;
      this.route = route;
      const up = route.upstream;
      const body = hasBody(req);
      this.body = body ? new PassThrough({ highWaterMark: BODY_HIGH_WATER_MARK }) : null;
      this.retries = !body && IDEMPOTENT.has(req.method ?? '') ? 1 : 0;
      this.opts = {
        path: upstreamPath(up, rp.path, rp.query, route.pathDepth, o.prependPath, o.includePrefix),
        method: (req.method ?? 'GET') as Dispatcher.HttpMethod,
        // A chunked client body stays chunked: undici frames a body of unknown length itself.
        headers: upstreamRequestHeaders(req, up, o.headers, false),
        body: this.body,
        headersTimeout: 0,
        bodyTimeout: 0,
      };
      res.on('drain', () => this.resumeFn?.());
      res.on('close', () => {
        if (!res.writableFinished) {
          this.clientGone = true;
          clearTimeout(this.bodyTimer);
          this.cancel();
        }
      });
      if (this.body !== null) {
        // Through a PassThrough: undici destroys the stream it was given when it fails, and that
        // must not destroy the client's request (we still owe it an answer).
        const pulse = activityPulse(o.recordActivity, route.path);
        req.on('data', () => {
          pulse();
          this.bodyTimer?.refresh();
          this.proxyTimer?.refresh();
        });
        req.pipe(this.body);
        if (o.bodyTimeout > 0) {
          this.bodyTimer = setTimeout(() => this.bodyStalled(), o.bodyTimeout);
          req.once('end', () => clearTimeout(this.bodyTimer));
        }
      }
      if (o.proxyTimeout !== undefined) {
        // Our own timer: undici's timeouts tick once a second, too coarse for CHP's millisecond flag.
        this.proxyTimer = setTimeout(() => this.proxyTimedOut(), o.proxyTimeout);
      }
    }

    start(): void {
      o.agents.dispatcher(this.route.upstream).dispatch(this.opts, this);
    }

    /** Stop caring about the upstream exchange; abort it if it is under way. */
    cancel(e?: Error): void {
      if (this.settled) return;
      this.settled = true;
      clearTimeout(this.proxyTimer);
      const abort = this.abortFn;
      if (abort !== undefined) abort(e); // else onConnect aborts when it comes
    }

    // --- undici callbacks (each guarded: nothing may throw into undici's parser) ---

    onConnect(abort: (e?: Error) => void): void {
      this.abortFn = abort;
      if (this.settled) abort();
    }

    onResponseStarted(): void {
      this.started = true;
    }

    onHeaders(status: number, raw: Buffer[] | string[] | null, resume: () => void, statusText: string): boolean {
      if (this.settled) return false;
      try {
        this.proxyTimer?.refresh();
        if (status < 200) {
          // 101 without an upgrade asked for is an invalid answer. Other interim responses are
          // dropped (Node's server answered Expect itself; forwarding 103 over HTTP/1.1 breaks
          // clients that take the first response as final).
          if (status === 101) this.abortFn?.(codedError('upstream answered 101 to a request that asked no upgrade', 'SWY_UPSTREAM_UNEXPECTED_101'));
          return status !== 101;
        }
        if (status > 599) {
          this.abortFn?.(codedError(`upstream status code ${status} out of range`, 'SWY_UPSTREAM_STATUS'));
          return false;
        }
        const { req, res } = this;
        this.resumeFn = resume;
        const h = responseHeadersFromRaw(raw as Buffer[]);
        if (h.codings === null) {
          this.abortFn?.(codedError('invalid upstream Transfer-Encoding (chunked not last, twice or with parameters, or not a token)', 'HPE_INVALID_TRANSFER_ENCODING'));
          return false;
        }
        // RFC 9112 §6.3: no body follows, whatever the head announces.
        const bodiless = req.method === 'HEAD' || status === 204 || status === 304;
        let headersOut: OutgoingHttpHeaders | string[] = h.list;
        if (h.codings !== undefined && !bodiless) {
          // A body in other codings than chunked: not decoded here, so the client is told of them.
          // RFC 9112 §6.1: no Transfer-Encoding to an HTTP/1.0 client.
          if (req.httpVersionMinor === 0) {
            this.abortFn?.(codedError(`upstream applied transfer coding ${h.codings}, which an HTTP/1.0 client cannot take`, 'SWY_UPSTREAM_TRANSFER_CODING'));
            return false;
          }
          // Node frames the body as chunked when this field names chunked (and adds no field of its own).
          headersOut = [...h.list, 'Transfer-Encoding', `${h.codings}, chunked`];
        }
        if (rewrite && h.location !== undefined) {
          const up = this.route.upstream;
          const loc = rewriteLocation(h.location, status, up, req.headers.host, o.autoRewrite, o.protocolRewrite);
          if (loc !== undefined) {
            const list = (headersOut as string[]).slice(); // h.list, maybe with Transfer-Encoding after it
            list[h.locationIndex + 1] = loc;
            headersOut = list;
          }
        }
        try {
          res.writeHead(status, reasonPhrase(status, statusText), headersOut);
        } catch (e) {
          // Node refused a header (name not a token, e.g. whitespace before the colon): nothing
          // was sent; forget what writeHead had set and answer 502.
          clearHead(res);
          this.abortFn?.(codedError(`upstream response header refused: ${(e as Error).message}`, 'SWY_UPSTREAM_HEADER'));
          return false;
        }
        this.answered = true;
        if (bodiless && req.method !== 'HEAD' && (h.codings !== undefined || h.chunked || (h.contentLength ?? 0) > 0)) {
          // No body follows a 204 or 304 (RFC 9112 §6.3), but undici (6.x) waits for the one its
          // Content-Length or Transfer-Encoding announces, and the client got nothing. Answered
          // now; the upstream connection, whose framing undici no longer follows, is dropped.
          this.onComplete();
          this.abortFn?.(codedError(`upstream ${status} announced a body`, 'SWY_UPSTREAM_BODILESS'));
          return false;
        }
        if (status < 300 && (h.contentLength === undefined || h.contentLength >= STREAMING_BYTES)) {
          this.pulse = activityPulse(o.recordActivity, this.route.path);
        }
        return true;
      } catch (e) {
        this.internal(e);
        return false;
      }
    }

    onData(chunk: Buffer): boolean {
      if (this.settled) return false;
      try {
        this.proxyTimer?.refresh();
        this.pulse?.();
        return this.res.write(chunk);
      } catch (e) {
        this.internal(e);
        return false;
      }
    }

    onComplete(): void {
      if (this.settled) return;
      this.settled = true;
      clearTimeout(this.proxyTimer);
      try {
        // The upstream answered before reading the whole body: discard the rest, as Node does
        // for an unread body, so the connection can carry the next request.
        if (this.body !== null && !this.req.complete) {
          this.req.unpipe();
          this.req.resume();
        }
        this.res.end();
      } catch (e) {
        this.internal(e);
      }
    }

    onError(e: NodeJS.ErrnoException): void {
      if (this.settled) return;
      try {
        const connected = this.abortFn !== undefined;
        const [kind, code] = classifyUpstreamError(e, connected);
        // The upstream closed an idle pooled socket as we reused it: once more on a new one.
        if (
          kind === 'reset' && this.retries > 0 && !this.started && !this.answered &&
          ((e as { [REUSED]?: boolean })[REUSED] === true || ((e as { socket?: { bytesRead?: number } }).socket?.bytesRead ?? 0) > 0)
        ) {
          this.retries--;
          this.abortFn = undefined;
          this.started = false;
          stats.countUpstreamError('retried', code);
          this.start();
          return;
        }
        this.settled = true;
        clearTimeout(this.proxyTimer);
        this.fail(kind, code, e);
      } catch (err) {
        this.internal(err);
      }
    }

    // --- outcomes ---

    /** The upstream failed: count, log once, then answer (or cut, after the head). */
    fail(kind: UpstreamFailureKind, code: string, e: NodeJS.ErrnoException): void {
      const { req, res } = this;
      if (kind === 'timeout') stats.countTimeout('upstream');
      else if (kind === 'connect' && code === 'ETIMEDOUT') stats.countTimeout('upstream_connect');
      if (this.answered) {
        stats.countUpstreamError('truncated', code);
        if (!this.clientGone) log.warn(`response cut: ${req.method} ${pathOf(req)} ${e.message}`, { route: this.route.path, target: this.route.upstream.target, code });
        res.destroy();
        return;
      }
      stats.countUpstreamError(kind, code);
      if (this.clientGone || req.socket.destroyed) return; // nobody to answer
      const status = STATUS_FOR[kind];
      const fields: Record<string, unknown> = { route: this.route.path, target: this.route.upstream.target, code, kind };
      if (kind === 'other') fields.err = e; // not a failure we expected: the logger keeps its stack
      log.error(`${status} ${req.method} ${pathOf(req)} ${e.message}`, fields);
      this.answerError(status);
    }

    answerError(status: number): void {
      const { req, res } = this;
      if (!req.complete) {
        // The body was not read to its end: discard the rest and close after the answer (the
        // connection cannot carry another request reliably).
        res.setHeader('connection', 'close');
        req.unpipe();
        req.resume();
      }
      o.errors.web(req, res, status);
    }

    proxyTimedOut(): void {
      // Still waiting for the client's body (not held back by backpressure): the upstream's
      // silence is expected; --request-body-timeout judges the client.
      if (this.body !== null && !this.req.complete && !this.req.isPaused() && !this.answered) {
        this.proxyTimer?.refresh();
        return;
      }
      const e = codedError(`no response from target within ${o.proxyTimeout} ms`, 'SWY_PROXY_TIMEOUT');
      if (this.abortFn !== undefined) {
        this.abortFn(e); // onError answers
        return;
      }
      // Still connecting: answer now; onConnect aborts if the connection ever comes.
      this.settled = true;
      this.fail('timeout', 'ETIMEDOUT', e);
    }

    bodyStalled(): void {
      const { req, res } = this;
      if (req.complete || this.clientGone || req.socket.destroyed) return;
      // Paused by backpressure: the upstream is slow to read, not the client to send.
      if (req.isPaused() && !this.settled) {
        this.bodyTimer?.refresh();
        return;
      }
      stats.countTimeout('request_body');
      this.cancel();
      if (res.headersSent) {
        // The upstream answered early and the client stopped sending: nothing more can be said.
        req.socket.destroy();
        return;
      }
      log.warn(`408 ${req.method} ${pathOf(req)} request body stalled for ${o.bodyTimeout} ms`, { route: this.route.path });
      this.answerError(408);
    }

    /** Last resort: a bug of ours. Answer 500 if nothing was sent, else cut; never throw on. */
    internal(e: unknown): void {
      stats.internalErrors++;
      const { req, res } = this;
      log.error(`500 ${req.method} ${pathOf(req)} internal error`, { err: e });
      this.cancel();
      try {
        if (res.headersSent || this.clientGone) {
          res.destroy();
          return;
        }
        clearHead(res);
        this.answerError(500);
      } catch {
        res.destroy();
      }
    }
  }

  return function forward(req: IncomingMessage, res: ServerResponse, route: Route, rp: RequestPath): void {
    new Exchange(req, res, route, rp).start();
  };
}
