// Forwarding one HTTP request to its upstream and streaming the response back.
//
// Contract: bodies stream both ways with backpressure (pipe), never buffered; an upstream failure
// before the response head becomes a 503 error page, after it the client connection is cut (the
// only honest signal left); a client that goes away aborts the upstream request. A request that
// failed on a reused keep-alive socket before anything was sent upstream is retried once, on a
// fresh connection, when it carries no body (the upstream closed an idle socket as we reused it).

import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Route } from '../../routing/table.js';
import type { RequestPath } from '../../routing/request-path.js';
import { clientResponseHeaders, rewriteLocation, upstreamPath, upstreamRequestHeaders, type HeaderOptions } from './headers.js';
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

export function createForwarder(o: ForwardOptions) {
  const rewrite = o.autoRewrite || o.protocolRewrite !== undefined;

  function failed(req: IncomingMessage, res: ServerResponse, route: Route, e: NodeJS.ErrnoException): void {
    const code = e.code ?? 'EUNKNOWN';
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

  function forward(req: IncomingMessage, res: ServerResponse, route: Route, rp: RequestPath, attempt = 0): void {
    const up = route.upstream;
    const isHttps = up.protocol === 'https:';
    const body = hasBody(req);
    const preq = (isHttps ? https : http).request({
      agent: isHttps ? o.agents.https : o.agents.http,
      hostname: up.socketPath === undefined ? up.hostname : undefined,
      port: up.socketPath === undefined ? up.port : undefined,
      socketPath: up.socketPath,
      method: req.method,
      path: upstreamPath(up, rp.path, rp.query, route.pathDepth, o.prependPath, o.includePrefix),
      headers: upstreamRequestHeaders(req, up, o.headers, false),
    });
    let answered = false;

    preq.on('response', (ures) => {
      answered = true;
      const status = ures.statusCode ?? 502;
      const headers = clientResponseHeaders(ures);
      if (rewrite && headers.location !== undefined) {
        const loc = rewriteLocation(headers.location, status, up, req.headers.host, o.autoRewrite, o.protocolRewrite);
        if (loc !== undefined) headers.location = loc;
      }
      if (res.destroyed) {
        ures.resume();
        return;
      }
      res.writeHead(status, ures.statusMessage, headers);
      ures.on('error', () => res.destroy());
      ures.on('aborted', () => res.destroy());
      const len = ures.headers['content-length'];
      if (status < 300 && (len === undefined || Number(len) >= STREAMING_BYTES)) {
        ures.on('data', activityPulse(o.recordActivity, route.path));
      }
      ures.pipe(res);
    });

    preq.on('error', (e: NodeJS.ErrnoException) => {
      if (!answered && attempt === 0 && !body && preq.reusedSocket && e.code === 'ECONNRESET' && !res.destroyed) {
        forward(req, res, route, rp, 1);
        return;
      }
      failed(req, res, route, e);
    });
    if (o.proxyTimeout !== undefined) {
      preq.setTimeout(o.proxyTimeout, () => {
        const e: NodeJS.ErrnoException = new Error(`no response from target within ${o.proxyTimeout} ms`);
        e.code = 'ETIMEDOUT';
        preq.destroy(e);
      });
    }
    res.on('close', () => {
      if (!res.writableFinished) preq.destroy();
    });

    if (!body) {
      preq.end();
      return;
    }
    req.on('error', () => preq.destroy());
    req.on('data', activityPulse(o.recordActivity, route.path));
    req.pipe(preq);
  }

  return forward;
}
