// Forwarding one HTTP request to its upstream and streaming the response back.
//
// Contract: bodies stream both ways with backpressure, never buffered (undici's dispatch: the
// response head and chunks arrive in callbacks, a full client buffer pauses the upstream socket
// until 'drain'); an upstream failure before the response head becomes a 503 error page, after it
// the client connection is cut (the only honest signal left); a client that goes away aborts the
// upstream request. A request without a body whose connection failed before any answer is retried
// once (the upstream closed an idle pooled socket as we reused it).

import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { PassThrough, pipeline } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Route } from '../../routing/table.js';
import type { RequestPath } from '../../routing/request-path.js';
import { responseHeadersFromRaw, rewriteLocation, upstreamPath, upstreamRequestHeaders, type HeaderOptions } from './headers.js';
import type { UpstreamAgents } from './upstream-agents.js';
import { activityPulse } from './activity-pulse.js';
import type { ErrorPages } from './error-pages.js';
import type { Logger } from '../../observability/logger.js';
import type { ProxyStats } from '../../observability/metrics.js';

export interface ForwardOptions {
  readonly headers: HeaderOptions;
  readonly prependPath: boolean;
  readonly includePrefix: boolean;
  readonly autoRewrite: boolean;
  readonly protocolRewrite: string | undefined;
  readonly proxyTimeout: number | undefined;
  readonly agents: UpstreamAgents;
  readonly errors: ErrorPages;
  readonly stats: ProxyStats;
  readonly log: Logger;
  readonly recordActivity: (path: string) => void;
}

/** Responses at least this large (or of unknown length) record activity while streaming. */
const STREAMING_BYTES = 64 * 1024;

function hasBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
}

/** undici error codes, as the node:net codes operators know (metrics labels, logs). */
function errorCode(e: NodeJS.ErrnoException): string {
  switch (e.code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'ETIMEDOUT';
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      return 'ECONNRESET';
    default:
      return e.code ?? 'EUNKNOWN';
  }
}

export function createForwarder(o: ForwardOptions) {
  const rewrite = o.autoRewrite || o.protocolRewrite !== undefined;

  function failed(req: IncomingMessage, res: ServerResponse, route: Route, e: NodeJS.ErrnoException): void {
    const code = errorCode(e);
    o.stats.countUpstreamError(code);
    if (res.destroyed || req.destroyed) return; // client left first; nothing to answer
    if (res.headersSent) {
      res.destroy();
      return;
    }
    o.log.error(`503 ${req.method} ${(req.url ?? '').split('?', 1)[0]} ${e.message}`, {
      route: route.path,
      target: route.upstream.target,
      code,
    });
    o.errors.web(req, res, 503);
  }

  return function forward(req: IncomingMessage, res: ServerResponse, route: Route, rp: RequestPath): void {
    const up = route.upstream;
    const body = hasBody(req);
    const path = upstreamPath(up, rp.path, rp.query, route.pathDepth, o.prependPath, o.includePrefix);
    // A chunked client body stays chunked: undici frames a body of unknown length itself.
    const headers = upstreamRequestHeaders(req, up, o.headers, false);
    const dispatcher = o.agents.dispatcher(up);
    let abort: ((e?: Error) => void) | undefined;
    let resume: (() => void) | undefined;
    let settled = false; // the upstream exchange ended (completed or failed)
    let clientGone = false;

    res.on('drain', () => resume?.());
    res.on('close', () => {
      if (!res.writableFinished && !settled) {
        clientGone = true;
        abort?.();
      }
    });
    // A body goes through a PassThrough so that activity can be seen on it: a 'data' listener on
    // req itself would start the flow before undici reads it, and lose those chunks.
    let bodyStream: PassThrough | null = null;
    if (body) {
      bodyStream = new PassThrough();
      req.on('data', activityPulse(o.recordActivity, route.path));
      pipeline(req, bodyStream, () => {});
    }

    const attempt = (n: number): void => {
      let answered = false;
      let pulse: (() => void) | undefined;
      // --proxy-timeout: no byte from the target for that long (before or during the response).
      // Our own timer: undici's timeouts tick once a second, too coarse for CHP's millisecond flag.
      let timer: NodeJS.Timeout | undefined;
      if (o.proxyTimeout !== undefined) {
        timer = setTimeout(() => {
          const e: NodeJS.ErrnoException = new Error(`no response from target within ${o.proxyTimeout} ms`);
          e.code = 'ETIMEDOUT';
          abort?.(e);
        }, o.proxyTimeout);
      }
      const handler: Dispatcher.DispatchHandlers = {
        onConnect(a) {
          abort = a;
          if (clientGone) a();
        },
        onHeaders(status, raw, resumeFn, statusText) {
          if (status < 200) return true; // interim responses: Node's server answered Expect itself
          timer?.refresh();
          answered = true;
          resume = resumeFn;
          if (res.destroyed) return false;
          const h = responseHeadersFromRaw(raw as Buffer[]);
          let headersOut: OutgoingHttpHeaders | string[] = h.list;
          if (rewrite && h.location !== undefined) {
            const loc = rewriteLocation(h.location, status, up, req.headers.host, o.autoRewrite, o.protocolRewrite);
            if (loc !== undefined) {
              const list = h.list.slice();
              list[h.locationIndex + 1] = loc;
              headersOut = list;
            }
          }
          res.writeHead(status, statusText, headersOut);
          if (status < 300 && (h.contentLength === undefined || h.contentLength >= STREAMING_BYTES)) {
            pulse = activityPulse(o.recordActivity, route.path);
          }
          return true;
        },
        onData(chunk) {
          timer?.refresh();
          pulse?.();
          return res.write(chunk);
        },
        onComplete() {
          clearTimeout(timer);
          settled = true;
          res.end();
        },
        onError(e: NodeJS.ErrnoException) {
          clearTimeout(timer);
          if (clientGone) {
            settled = true;
            return;
          }
          // An idle pooled connection the upstream closed as we reused it: retry once when nothing
          // was answered and there is no body to replay.
          if (!answered && n === 0 && !body && !res.destroyed && (e.code === 'UND_ERR_SOCKET' || e.code === 'ECONNRESET')) {
            attempt(1);
            return;
          }
          settled = true;
          failed(req, res, route, e);
        },
      };
      dispatcher.dispatch(
        { path, method: (req.method ?? 'GET') as Dispatcher.HttpMethod, headers, body: bodyStream, headersTimeout: 0, bodyTimeout: 0 },
        handler,
      );
    };
    attempt(0);
  };
}
