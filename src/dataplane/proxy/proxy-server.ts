// The built-in data plane: an HTTP(S) server that routes every request against the current
// RoutingTable and forwards it (forward.ts) or tunnels it (websocket.ts).
//
// Contract: each table update (`onTable`: a TableListener) swaps the table whole; a request is
// routed against the table current when it arrived. One bad request never affects another: every
// failure path ends in a response or a closed socket for that request only. `close(drainMs)` stops
// accepting, lets in-flight requests finish for at most drainMs, then cuts what is left
// (websockets included).

import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Server as NetServer, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { http, https } from '../../node-http.js';
import type { Config } from '../../config/config.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import type { AccessLog } from '../../observability/access-log.js';
import type { RouteStatsRecorder } from '../../observability/route-stats.js';
import { hostKey, parseRequestPath } from '../../routing/request-path.js';
import type { Route, RoutingTable } from '../../routing/table.js';
import type { TableListener } from '../../control/table-listener.js';
import { createErrorPages } from './error-pages.js';
import { CONNECT_REFUSAL, checkRequest, localAnswerBytes, parserRefusalStatus, sendLocalAnswer } from './request-rules.js';
import { createForwarder, type ForwardOptions } from './forward.js';
import { BODY_HIGH_WATER_MARK, createUpstreamAgents } from './upstream-agents.js';
import { createTunneler, type TunnelOptions } from './websocket.js';
import { createFastPath, type FastPath, type FastPathOptions } from './fast-path.js';
import type { FastRequest } from './fast-parser.js';
import { closeServer, listenOn, type ListenOptions } from '../../net.js';
import type { CertificateSelector } from '../../tls/certificate-selector.js';
import type { Http01Responder } from '../../tls/http01-responder.js';

export type ProxyConfig = Pick<
  Config,
  | 'ssl'
  | 'clientSsl'
  | 'errorTarget'
  | 'errorPath'
  | 'xForward'
  | 'prependPath'
  | 'includePrefix'
  | 'autoRewrite'
  | 'changeOrigin'
  | 'protocolRewrite'
  | 'customHeaders'
  | 'insecure'
  | 'hostRouting'
  | 'timeout'
  | 'proxyTimeout'
  | 'keepAliveTimeout'
  | 'requestBodyTimeout'
  | 'upstreamConnectTimeout'
  | 'proxyListen'
  | 'fastPath'
>;

export interface ProxyDataPlaneOptions {
  readonly config: ProxyConfig;
  readonly initialTable: RoutingTable;
  readonly recordActivity: (path: string) => void;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** Per-route request counts and latency (dashboard, --metrics-route-labels). */
  readonly routeStats?: RouteStatsRecorder;
  /** --access-log: one entry per request and websocket. */
  readonly accessLog?: AccessLog;
  /**
   * Automatic HTTPS (--acme-*): the public port serves TLS with certificates from `selector`
   * (hot-swapped, TLS-ALPN-01 answered), and HTTP-01 challenges are answered before anything else.
   */
  readonly acme?: { readonly selector: CertificateSelector; readonly http01: Http01Responder };
}

/**
 * What a reload (control/reload.ts) changes in a running proxy. Requests that arrive afterwards
 * get the new values; requests in flight keep the timers they armed; open connections stay open.
 */
export interface ProxyLiveSettings {
  readonly customHeaders: Config['customHeaders'];
  readonly timeout: number | undefined;
  readonly proxyTimeout: number | undefined;
  readonly keepAliveTimeout: number;
  readonly requestBodyTimeout: number;
  readonly upstreamConnectTimeout: number;
}

export interface ProxyDataPlane extends TableListener {
  /** The listening server: the fast path's `net` server, or node:http's when the fast path is off. */
  readonly server: NetServer;
  /** The node:http server (every request when the fast path is off; what the fast path hands over). */
  readonly httpServer: HttpServer;
  applySettings(s: ProxyLiveSettings): void;
  /** Swap the access log (undefined = off). The caller closes the old one. */
  setAccessLog(a: AccessLog | undefined): void;
  /**
   * New certificate and key for connections accepted from now on (setSecureContext); open TLS
   * connections keep theirs. Throws (and changes nothing) when the pair is unusable.
   */
  setCertificate(pair: { readonly key: Buffer; readonly cert: Buffer; readonly passphrase?: string | undefined }): void;
  /** Listen on config.proxyListen; a worker thread binds with SO_REUSEPORT, maybe on the port another thread got (worker.ts). */
  start(listen?: ListenOptions): Promise<void>;
  close(drainMs: number): Promise<void>;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const HEALTHZ = '/_chp_healthz';

function destroyOnError(this: Duplex): void {
  this.destroy();
}
const HEALTHZ_BODY = JSON.stringify({ status: 'OK' });
const MALFORMED_PATH = { ok: false, status: 400, reason: 'malformed request path' } as const;

export function createProxyDataPlane(opts: ProxyDataPlaneOptions): ProxyDataPlane {
  const { config, log, metrics } = opts;
  const stats = metrics.stats;
  let table = opts.initialTable;
  const agents = createUpstreamAgents({ insecure: config.insecure, clientSsl: config.clientSsl, connectTimeout: config.upstreamConnectTimeout });
  const errors = createErrorPages({ errorTarget: config.errorTarget, errorPath: config.errorPath, agents, log });
  // Mutable on purpose: the forwarder and the tunneler read these per request, so applySettings
  // takes effect for the next request without rebuilding them.
  const headerOpts: { xForward: boolean; changeOrigin: boolean; customHeaders: readonly (readonly [string, string])[] } = {
    xForward: config.xForward,
    changeOrigin: config.changeOrigin,
    customHeaders: lowerNames(config.customHeaders),
  };
  const forwardOpts: Mutable<ForwardOptions> = {
    headers: headerOpts,
    prependPath: config.prependPath,
    includePrefix: config.includePrefix,
    autoRewrite: config.autoRewrite,
    protocolRewrite: config.protocolRewrite,
    proxyTimeout: config.proxyTimeout,
    bodyTimeout: config.requestBodyTimeout,
    agents,
    errors,
    stats,
    log,
    recordActivity: opts.recordActivity,
  };
  const forward = createForwarder(forwardOpts);
  const tunnels = new Set<Duplex>();
  // One function for every tunnel: a per-tunnel closure would stay alive as long as the tunnel.
  function untrackTunnel(this: Duplex): void {
    tunnels.delete(this);
  }
  const tunnelOpts: Mutable<TunnelOptions> = {
    headers: headerOpts,
    prependPath: config.prependPath,
    includePrefix: config.includePrefix,
    proxyTimeout: config.proxyTimeout,
    tls: agents.tls,
    connectTimeout: config.upstreamConnectTimeout,
    errors,
    stats,
    log,
    recordActivity: opts.recordActivity,
    onTunnel(client) {
      tunnels.add(client);
      client.on('close', untrackTunnel);
    },
  };
  const tunnel = createTunneler(tunnelOpts);
  const webDuration = stats.webDurations;
  const wsDuration = stats.wsDurations;
  const hostRouting = config.hostRouting;

  function segmentsFor(host: string | undefined, segments: string[]): string[] {
    return hostRouting ? [hostKey(host), ...segments] : segments;
  }
  // Connections on which a request was refused (request-rules.ts): they close after that answer,
  // and a request pipelined behind the refused one (Node parses it at once) is never handled.
  const refusedOn = new WeakSet<object>();

  const routeStats = opts.routeStats;
  let accessLog = opts.accessLog;

  function logAccess(req: IncomingMessage, status: number, bytes: number, startedAt: number, ms: number, route: Route | undefined, kind: 'web' | 'ws'): void {
    logAccessFields(accessFields(req), status, bytes, startedAt, ms, route, kind);
  }

  /** What an access-log line takes from the request. */
  function accessFields(req: IncomingMessage) {
    return {
      remote: req.socket.remoteAddress,
      method: req.method ?? '',
      url: req.url ?? '',
      httpVersion: req.httpVersion,
      host: req.headers.host,
      userAgent: req.headers['user-agent'],
      referer: req.headers.referer,
    };
  }

  function logAccessFields(f: ReturnType<typeof accessFields>, status: number, bytes: number, startedAt: number, ms: number, route: Route | undefined, kind: 'web' | 'ws'): void {
    accessLog!.log({
      start: startedAt,
      remote: f.remote,
      method: f.method,
      url: f.url,
      httpVersion: f.httpVersion,
      host: f.host,
      status,
      bytes,
      durationMs: ms,
      route: route?.path,
      upstream: route?.upstream.target,
      kind,
      userAgent: f.userAgent,
      referer: f.referer,
    });
  }

  /**
   * A tunnel's access-log line, written when it closes (its duration and bytes). Here, not in
   * onUpgrade: the listener's scope holds the line's fields, read now, not the handshake's request
   * and headers, for as long as the websocket stays open.
   */
  function logTunnelAtClose(socket: Socket, f: ReturnType<typeof accessFields>, written0: number, startedAt: number, started: number, route: Route | undefined): void {
    socket.once('close', () => logAccessFields(f, 101, (socket.bytesWritten ?? 0) - written0, startedAt, performance.now() - started, route, 'ws'));
  }

  const http01 = opts.acme?.http01;

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    if (refusedOn.has(req.socket)) return;
    if (http01 !== undefined && http01(req, res)) return;
    const started = performance.now();
    let route: Route | undefined;
    // One listener per request: counters, latency, and activity for successful proxied responses.
    res.once('finish', () => {
      const status = res.statusCode;
      stats.countResponse(0, status);
      const seconds = (performance.now() - started) / 1000;
      webDuration.observe(seconds);
      if (route !== undefined) {
        if (status < 300) opts.recordActivity(route.path);
        routeStats?.record(route.path, status, seconds, Date.now());
      }
    });
    if (accessLog !== undefined) {
      // 'close' follows 'finish', and also comes alone when the client left first (logged as 499).
      const startedAt = Date.now();
      const sock = req.socket;
      const written0 = sock.bytesWritten;
      res.once('close', () => {
        const status = res.writableFinished ? res.statusCode : 499;
        logAccess(req, status, sock.bytesWritten - written0, startedAt, performance.now() - started, route, 'web');
      });
    }
    const rules = checkRequest(req, false);
    if (!rules.ok) {
      if (rules.status >= 400) {
        stats.badRequests++;
        refusedOn.add(req.socket);
        log.debug(`${rules.status} ${req.method} refused: ${rules.reason}`);
      }
      sendLocalAnswer(res, rules);
      return;
    }
    // Absolute-form: the target's authority is the Host from here on (forwarded, rewrites, logs).
    if (rules.host !== req.headers.host) req.headers.host = rules.host;
    const url = req.url ?? '/';
    if (url === HEALTHZ) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(HEALTHZ_BODY);
      return;
    }
    try {
      const rp = parseRequestPath(url);
      if (rp === null) {
        stats.badRequests++;
        refusedOn.add(req.socket);
        sendLocalAnswer(res, MALFORMED_PATH);
        return;
      }
      route = table.match(segmentsFor(rules.host, rp.segments));
      if (route === undefined) {
        log.warn(`404 ${req.method} ${rp.path}`);
        errors.web(req, res, 404);
        return;
      }
      forward(req, res, route, rp);
    } catch (e) {
      // Last resort: a bug of ours answers 500 for this request only (or cuts it, once answered).
      stats.internalErrors++;
      log.error(`500 ${req.method} ${url.split('?', 1)[0]} internal error`, { err: e });
      if (res.headersSent) res.destroy();
      else errors.web(req, res, 500);
    }
  }

  function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const started = performance.now();
    const startedAt = Date.now();
    let route: Route | undefined;
    // A module-level listener: a closure here would keep this handshake (req, its headers) alive
    // for as long as the websocket stays open.
    socket.on('error', destroyOnError);
    // Every websocket ends here once: its status is known (101, or the refusal), counted, logged.
    let reported = false;
    const result = (status: number): void => {
      if (reported) return;
      reported = true;
      stats.countResponse(1, status);
      const seconds = (performance.now() - started) / 1000;
      if (route !== undefined) routeStats?.record(route.path, status, seconds, Date.now());
      if (status === 101) wsDuration.observe(seconds);
      if (accessLog !== undefined) {
        const sock = socket as Socket;
        const written0 = sock.bytesWritten ?? 0;
        // A tunnel is logged when it closes; a refusal right away.
        if (status === 101 && !socket.destroyed) logTunnelAtClose(sock, accessFields(req), written0, startedAt, started, route);
        else logAccess(req, status, (sock.bytesWritten ?? 0) - written0, startedAt, performance.now() - started, route, 'ws');
      }
    };
    if (refusedOn.has(socket)) {
      socket.end();
      return;
    }
    const rules = checkRequest(req, true);
    if (!rules.ok) {
      stats.badRequests++;
      result(rules.status);
      log.debug(`${rules.status} ${req.method} refused (websocket): ${rules.reason}`);
      errors.ws(socket, rules.status);
      return;
    }
    if (rules.host !== req.headers.host) req.headers.host = rules.host;
    try {
      const rp = parseRequestPath(req.url ?? '/');
      if (rp === null) {
        stats.badRequests++;
        result(400);
        errors.ws(socket, 400);
        return;
      }
      route = table.match(segmentsFor(rules.host, rp.segments));
      if (route === undefined) {
        result(404);
        log.warn(`404 ${req.method} ${rp.path} (websocket)`);
        errors.ws(socket, 404);
        return;
      }
      tunnel(req, socket, head, route, rp, result);
    } catch (e) {
      stats.internalErrors++;
      result(500);
      log.error(`500 ${req.method} ${(req.url ?? '').split('?', 1)[0]} internal error (websocket)`, {
        err: e,
      });
      errors.ws(socket, 500);
    }
  }

  const serverOptions = {
    keepAlive: true,
    keepAliveTimeout: config.keepAliveTimeout,
    // Uploads of any size stream through: no whole-request deadline; --timeout bounds inactivity.
    requestTimeout: 0,
    headersTimeout: 60_000,
    noDelay: true,
    // Client sockets: large bodies without a backpressure round-trip per chunk (upstream-agents.ts).
    highWaterMark: BODY_HIGH_WATER_MARK,
    // Host rules (missing, repeated, invalid) are request-rules.ts's, answered and counted there.
    requireHostHeader: false,
  };
  const server: HttpServer = opts.acme
    ? https().createServer({ ...opts.acme.selector.serverOptions(), ...serverOptions }, onRequest)
    : config.ssl
      ? https().createServer({ ...config.ssl, ...serverOptions }, onRequest)
      : http.createServer(serverOptions, onRequest);
  server.keepAliveTimeout = config.keepAliveTimeout;
  if (config.timeout !== undefined) server.timeout = config.timeout;
  server.on('upgrade', onUpgrade);
  // Requests Node's HTTP parser refuses (malformed, conflicting framing, oversized headers, header
  // timeout): answered as Node's default handler would (400, or 431/413/408), but also counted
  // and access-logged, so operators see them.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    try {
      onClientError(err, socket);
    } catch (e) {
      stats.internalErrors++;
      log.error('clientError handler failed', { err: e });
      socket.destroy();
    }
  });
  function onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') stats.countTimeout('request_head');
    const sock = socket as Socket & { _httpMessage?: { headersSent?: boolean } };
    const raw = (err as { rawPacket?: unknown }).rawPacket;
    const status = parserRefusalStatus(err as NodeJS.ErrnoException & { bytesParsed?: number; rawPacket?: Buffer }, Buffer.isBuffer(raw) && sock.bytesRead === raw.length);
    if (err.code === 'ECONNRESET' || !socket.writable || sock._httpMessage?.headersSent) {
      socket.destroy();
      return;
    }
    stats.badRequests++;
    stats.countResponse(0, status);
    const written0 = sock.bytesWritten ?? 0;
    // As Node's default: one write, then the connection is closed (never left half-open).
    socket.write(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\n\r\n`);
    socket.destroy();
    if (accessLog !== undefined) {
      accessLog.log({
        start: Date.now(),
        remote: sock.remoteAddress,
        method: '-',
        url: '-',
        httpVersion: '1.1',
        host: undefined,
        status,
        bytes: (sock.bytesWritten ?? 0) - written0,
        durationMs: 0,
        route: undefined,
        upstream: undefined,
        kind: 'web',
        userAgent: undefined,
        referer: undefined,
      });
    }
    log.debug(`${status} refused by the HTTP parser: ${err.code ?? err.message}`);
  }
  // CONNECT: Node emits 'connect' (without a listener it destroys the socket unanswered, as CHP
  // 5.3 does). Refused like a request rule (501, plain text, Connection: close), counted and logged
  // as one; the bytes after the head (a would-be tunnel) are read and discarded, never a request.
  // Requests pipelined before it are answered first: the 501 waits for their responses.
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => socket.destroy());
    socket.resume();
    const refuseConnect = (): void => {
      const busy = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
      if (busy != null) {
        busy.once('close', () => setImmediate(refuseConnect));
        return;
      }
      if (refusedOn.has(socket) || socket.destroyed) {
        socket.destroy();
        return;
      }
      const bytes = localAnswerBytes(CONNECT_REFUSAL, new Date().toUTCString());
      stats.badRequests++;
      stats.countResponse(0, CONNECT_REFUSAL.status);
      log.debug(`${CONNECT_REFUSAL.status} ${req.method} refused: ${CONNECT_REFUSAL.reason}`);
      socket.end(bytes);
      // end() flushes the answer; destroy() after a grace period covers a peer that never closes.
      setTimeout(() => socket.destroy(), 1000).unref();
      if (accessLog !== undefined) logAccess(req, CONNECT_REFUSAL.status, Buffer.byteLength(bytes), Date.now(), 0, undefined, 'web');
    };
    refuseConnect();
  });
  // --timeout (client inactivity during a request) and --keep-alive-timeout (idle between
  // requests) both end in Node's socket timeout; with a listener here Node leaves the close to us,
  // so each is counted. The connection is closed without an answer, as Node and CHP do.
  server.on('timeout', (socket: Socket) => {
    const s = socket as Socket & { _httpMessage?: unknown; parser?: { incoming?: IncomingMessage | null } | null };
    const incoming = s.parser?.incoming;
    const busy = s._httpMessage != null || (incoming != null && !incoming.complete);
    stats.countTimeout(busy ? 'client_idle' : 'keep_alive');
    socket.destroy();
  });
  // Sockets the fast path handed to node:http were counted when the fast path accepted them.
  // (Only while node:http's 'connection' listeners run.) Shared listeners, no closure per
  // connection: they would live as long as the connection (a websocket's: hours).
  const handedOver = new Set<Socket>();
  const uncountConnection = (): void => {
    stats.activeConnections--;
  };
  const countConnection = (socket: Socket): void => {
    if (handedOver.has(socket)) return;
    stats.activeConnections++;
    socket.on('close', uncountConnection);
  };
  server.on('connection', countConnection);

  // Read per request by the fast path: applySettings (a reload) changes the timeouts in place.
  const fastOpts: { -readonly [K in keyof FastPathOptions]: FastPathOptions[K] } | undefined =
    config.fastPath && !config.ssl && !opts.acme // TLS listeners (--ssl-*, ACME) stay on node:http
      ? {
          route(host, url) {
            if (url === HEALTHZ) return undefined;
            const rp = parseRequestPath(url);
            if (rp === null) return undefined;
            const route = table.match(segmentsFor(host, rp.segments));
            if (route === undefined || route.upstream.protocol !== 'http:') return undefined;
            return { route, rp };
          },
          handOver(socket, unread, ended) {
            // Nothing of the connection's current request was read by anyone but the fast parser,
            // and nothing is in flight: node:http takes the socket as if it had just connected,
            // and parses the unread bytes first (then, if the client already half-closed, the
            // end node:http's own listener never saw).
            handedOver.add(socket);
            try {
              server.emit('connection', socket);
            } finally {
              handedOver.delete(socket);
            }
            if (unread.length > 0) socket.emit('data', unread);
            if (ended) socket.emit('end');
          },
          finished: fastFinished,
          upstream: forwardOpts,
          keepAliveTimeout: config.keepAliveTimeout,
          timeout: config.timeout,
          connectTimeout: config.upstreamConnectTimeout ?? 10_000,
          errors,
          stats,
          log,
          recordActivity: opts.recordActivity,
        }
      : undefined;
  const fast: FastPath | undefined = fastOpts && createFastPath(fastOpts);
  fast?.server.on('connection', countConnection);

  function rawHeader(raw: readonly string[], lower: string): string | undefined {
    for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === lower.length && raw[i]!.toLowerCase() === lower) return raw[i + 1];
    return undefined;
  }

  function fastFinished(r: FastRequest, socket: Socket, status: number, bytes: number, startedAt: number, started: number, route: Route | undefined): void {
    const seconds = (performance.now() - started) / 1000;
    if (status !== 499) {
      stats.countResponse(0, status);
      webDuration.observe(seconds);
      if (route !== undefined) {
        if (status < 300) opts.recordActivity(route.path);
        // The end's wall time from the start's: no Date.now() per request (fast-path.ts).
        routeStats?.record(route.path, status, seconds, startedAt + Math.round(seconds * 1000));
      }
    }
    if (accessLog !== undefined) {
      accessLog.log({
        start: startedAt,
        remote: socket.remoteAddress,
        method: r.method,
        url: r.url,
        httpVersion: '1.1',
        host: r.host,
        status,
        bytes,
        durationMs: seconds * 1000,
        route: route?.path,
        upstream: route?.upstream.target,
        kind: 'web',
        userAgent: rawHeader(r.raw, 'user-agent'),
        referer: rawHeader(r.raw, 'referer'),
      });
    }
  }

  const listener: NetServer = fast?.server ?? server;

  /** Close with the fast path: its server, its connections, and those it handed to node:http. */
  async function closeFast(f: FastPath, drainMs: number): Promise<void> {
    if (!f.server.listening) return;
    const closed = new Promise<void>((resolve) => f.server.close(() => resolve()));
    const deadline = Date.now() + drainMs;
    f.drain();
    server.closeIdleConnections();
    while ((f.size() > 0 || handedOver.size > 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, Math.min(50, Math.max(1, deadline - Date.now()))));
      server.closeIdleConnections();
    }
    for (const t of tunnels) t.destroy();
    f.destroyAll();
    server.closeAllConnections();
    for (const s of handedOver) s.destroy();
    await closed;
  }

  return {
    server: listener,
    httpServer: server,
    name: 'proxy',
    applySettings(s) {
      headerOpts.customHeaders = lowerNames(s.customHeaders);
      forwardOpts.proxyTimeout = s.proxyTimeout;
      forwardOpts.bodyTimeout = s.requestBodyTimeout;
      tunnelOpts.proxyTimeout = s.proxyTimeout;
      server.keepAliveTimeout = s.keepAliveTimeout;
      // Node reads server.timeout when it accepts a connection: open ones keep the old value.
      server.timeout = s.timeout ?? 0;
      tunnelOpts.connectTimeout = s.upstreamConnectTimeout;
      agents.setConnectTimeout(s.upstreamConnectTimeout);
      if (fastOpts !== undefined) {
        // (custom headers, proxy and body timeouts: the fast path shares forwardOpts, changed above)
        fastOpts.keepAliveTimeout = s.keepAliveTimeout;
        fastOpts.timeout = s.timeout;
        fastOpts.connectTimeout = s.upstreamConnectTimeout;
      }
    },
    setAccessLog(a) {
      accessLog = a;
    },
    setCertificate(pair) {
      if (!config.ssl) throw new Error('the proxy does not serve TLS (no --ssl-key/--ssl-cert at start)');
      const { passphrase: _old, ...rest } = config.ssl;
      (server as HttpsServer).setSecureContext({ ...rest, key: pair.key, cert: pair.cert, ...(pair.passphrase !== undefined ? { passphrase: pair.passphrase } : {}) });
    },
    onTable(update) {
      table = update.table;
    },
    async start(listen) {
      await listenOn(listener, config.proxyListen, listen);
    },
    async close(drainMs) {
      if (fast !== undefined) await closeFast(fast, drainMs);
      else {
        await closeServer(server, drainMs, () => {
          for (const t of tunnels) t.destroy();
        });
      }
      agents.destroy();
    },
  };
}

function lowerNames(h: Config['customHeaders']): readonly (readonly [string, string])[] {
  return h.map(([k, v]) => [k.toLowerCase(), v] as const);
}
