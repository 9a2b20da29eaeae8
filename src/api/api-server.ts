// The REST API, with configurable-http-proxy 5.3's exact semantics:
//   GET    /api/routes[?inactive_since=ISO8601]   200 {path: {target, ...data, last_activity}}
//   GET    /api/routes/<path>                      200 {target, ...data, last_activity} | 404
//   POST   /api/routes/<path>  {"target": "..."}   201 (once live on this replica) | 400
//   DELETE /api/routes/<path>                      204 | 404
//   POST   /api/reload                             200 | 422 {ok, applied, restartRequired, errors} (control/reload.ts)
// Order of checks as in CHP: unknown path 404, unknown method 405, (POST) body JSON 400, token 403.
// Paths are URI-decoded and trailing slashes dropped. Writes go to the store only; the data
// plane learns of them through the route watcher, and the API waits for that before answering.

import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Config } from '../config/config.js';
import type { ActivityTracker } from '../control/activity.js';
import type { RouteWatcher } from '../control/route-watcher.js';
import { ErrorCode, SwitchyardError, isSwitchyardError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { decodeApiPath, validateRoutePath } from '../routing/route-path.js';
import type { RouteData } from '../routing/table.js';
import { parseTarget } from '../routing/target.js';
import { routeDataProblem } from '../routing/route-data.js';
import type { RouteStore } from '../store/route-store.js';
import { waitForReplicas } from '../store/replica-registry.js';
import { sendError } from './http-errors.js';
import { closeServer, listenOn } from '../net.js';
import type { Dashboard } from './dashboard.js';
import type { ReloadResult } from '../control/reload.js';
import { createTokenMatcher, readBody } from './request.js';
import { http, https } from '../node-http.js';

export interface ApiServerOptions {
  readonly config: Pick<Config, 'apiListen' | 'apiSsl' | 'authToken' | 'hostRouting' | 'apiMaxBody'>;
  readonly store: RouteStore;
  readonly watcher: RouteWatcher;
  readonly activity: ActivityTracker;
  readonly metrics: Metrics;
  readonly log: Logger;
  /**
   * Resolves true once `revision` is live on every data plane of this replica (default: the
   * watcher has published it, which is enough for the in-process proxy).
   */
  readonly waitLive?: (revision: number, timeoutMs: number) => Promise<boolean>;
  /**
   * Why the data plane is not whole right now (a worker being replaced), or undefined: GET
   * /api/health answers 503 with it. The in-process proxy is always whole once started.
   */
  readonly dataPlaneNotReady?: () => string | undefined;
  /** How long a write may take to become live before the API answers 504. */
  readonly liveTimeoutMs?: number;
  /** The xDS control plane's state (GET /api/xds), when --xds-port is set. */
  readonly xdsStatus?: () => unknown;
  /** GET /api/certificates (ACME): per-name state, never key material. */
  readonly certificatesStatus?: () => Promise<unknown>;
  /** Serves /dashboard/ (api/dashboard.ts) unless --no-dashboard. */
  readonly dashboard?: Dashboard;
  /** POST /api/reload: re-load the configuration (as SIGHUP does). */
  readonly reload?: (trigger: string) => Promise<ReloadResult>;
}

export interface ApiServer {
  readonly server: HttpServer;
  start(): Promise<void>;
  close(drainMs: number): Promise<void>;
}

const ROUTES_RE = /^\/api\/routes(\/.*)?$/;

export function createApiServer(opts: ApiServerOptions): ApiServer {
  const { config, store, watcher, activity, metrics, log } = opts;
  const liveTimeout = opts.liveTimeoutMs ?? 10_000;
  const waitLive = opts.waitLive ?? ((r: number, ms: number) => watcher.waitForRevision(r, ms));
  const replicaTimeout = 5_000;
  const tokenMatches = createTokenMatcher(config.authToken);
  if (!config.authToken) log.warn('REST API is not authenticated.');

  function authorized(req: IncomingMessage): boolean {
    if (tokenMatches === undefined) return true;
    const m = /token\s+(\S+)/.exec(req.headers.authorization ?? '');
    return m !== null && tokenMatches(m[1]!);
  }

  function requireAuth(req: IncomingMessage): void {
    if (!authorized(req)) {
      log.debug('Rejecting API request', { remote: req.socket.remoteAddress });
      throw new SwitchyardError(ErrorCode.AUTH_FAILED, 'Forbidden');
    }
  }

  /** JSON of a route as CHP returns it: its data, then last_activity (data never holds that key). */
  function entryJson(data: RouteData, lastActivity: number | undefined): string {
    const json = JSON.stringify(data);
    if (lastActivity === undefined) return json;
    const la = `"last_activity":"${new Date(lastActivity).toISOString()}"}`;
    return json.length === 2 ? '{' + la : json.slice(0, -1) + ',' + la;
  }

  async function getRoutes(req: IncomingMessage, res: ServerResponse, url: URL, rawPath: string | undefined): Promise<void> {
    requireAuth(req);
    // Reads come from this replica's copy of the table; say so when the store is unreachable.
    if (!store.health().connected) res.setHeader('x-switchyard-stale', 'true');
    if (rawPath !== undefined && rawPath !== '' && rawPath !== '/') {
      const path = validateRoutePath(decodeApiPath(rawPath));
      const [data, act] = await Promise.all([store.get(path), activity.of(path)]);
      if (data === undefined) throw new SwitchyardError(ErrorCode.ROUTE_NOT_FOUND, 'Not Found');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(entryJson(data, act));
      return;
    }
    const param = url.searchParams.get('inactiveSince') || url.searchParams.get('inactive_since');
    let since: number | undefined;
    if (param) {
      since = Date.parse(param);
      if (!Number.isFinite(since)) {
        throw new SwitchyardError(ErrorCode.QUERY_INVALID, `Invalid datestamp '${param}' must be ISO8601.`);
      }
    }
    const [snap, act] = await Promise.all([store.snapshot(), activity.read()]);
    // Serialised by hand, one route at a time: no intermediate object per route (10k+ routes).
    const parts: string[] = [];
    for (const [path, data] of snap.routes) {
      const la = act.get(path);
      if (since !== undefined && !(la !== undefined && la < since)) continue;
      let entry: string;
      try {
        entry = entryJson(data, la);
      } catch (e) {
        // Cannot happen for data the stores accept (route-data.ts); if it does, one route must
        // not take the whole listing down with it.
        log.error('route left out of GET /api/routes: its data cannot be serialised', { path, err: e });
        continue;
      }
      parts.push(JSON.stringify(path) + ':' + entry);
    }
    const body = '{' + parts.join(',') + '}';
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  }

  /**
   * Opt-in (`?wait=all` or `X-Switchyard-Wait: all`): answer only once every live replica serves
   * `revision`. Stores without replicas have nothing more to wait for. 504 names the laggards.
   */
  async function waitForAllReplicas(req: IncomingMessage, url: URL, revision: number): Promise<void> {
    const wanted = url.searchParams.get('wait') === 'all' || req.headers['x-switchyard-wait'] === 'all';
    if (!wanted || store.replicas === undefined) return;
    const ms = Number(url.searchParams.get('timeout') ?? replicaTimeout);
    // Woken by the registry's watch (each replica's report), not by polling it.
    const lagging = await waitForReplicas(store, revision, Number.isFinite(ms) && ms > 0 ? Math.min(ms, 60_000) : replicaTimeout);
    if (lagging.length > 0) {
      throw new SwitchyardError(ErrorCode.STORE_TIMEOUT, `stored, but not yet live on replicas: ${lagging.join(', ')}`);
    }
  }

  async function postRoute(req: IncomingMessage, res: ServerResponse, rawPath: string | undefined, url: URL): Promise<void> {
    const text = await readBody(req, config.apiMaxBody);
    let body: unknown;
    try {
      body = JSON.parse(text) || {};
    } catch (e) {
      throw new SwitchyardError(ErrorCode.BODY_INVALID_JSON, `Body not valid JSON: ${e as Error}`);
    }
    requireAuth(req);
    const path = validateRoutePath(decodeApiPath(rawPath ?? '/'));
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new SwitchyardError(ErrorCode.ROUTE_INVALID, "Must specify 'target' as string");
    }
    const posted = body as Record<string, unknown>;
    parseTarget(posted.target); // 400 with a clear reason before anything is stored
    const data: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(posted)) if (k !== 'last_activity') data[k] = v;
    if (config.hostRouting && path !== '/') data.host = path.split('/')[1];
    // Bounded before it is stored: a deeply nested body would break every later GET (and more).
    const problem = routeDataProblem(data);
    if (problem !== undefined) throw new SwitchyardError(ErrorCode.ROUTE_DATA_LIMIT, problem);
    log.info(`Adding route ${path} -> ${posted.target as string}`);
    const t0 = performance.now();
    const revision = await store.put(path, data as RouteData);
    activity.record(path);
    if (!(await waitLive(revision, liveTimeout))) {
      throw new SwitchyardError(ErrorCode.STORE_TIMEOUT, `route stored but not live within ${liveTimeout} ms`);
    }
    metrics.routePropagation.observe((performance.now() - t0) / 1000);
    await waitForAllReplicas(req, url, revision);
    metrics.routeChanges.inc({ type: 'put' });
    log.info(`Route added ${path} -> ${posted.target as string}`);
    res.writeHead(201, { 'content-length': 0 });
    res.end();
  }

  async function deleteRoute(req: IncomingMessage, res: ServerResponse, rawPath: string | undefined, url: URL): Promise<void> {
    requireAuth(req);
    const path = validateRoutePath(decodeApiPath(rawPath ?? '/'));
    const t0 = performance.now();
    const revision = await store.delete(path);
    if (revision === null) throw new SwitchyardError(ErrorCode.ROUTE_NOT_FOUND, 'Not Found');
    log.info(`Removing route ${path}`);
    if (!(await waitLive(revision, liveTimeout))) {
      throw new SwitchyardError(ErrorCode.STORE_TIMEOUT, `route deleted but not applied within ${liveTimeout} ms`);
    }
    metrics.routePropagation.observe((performance.now() - t0) / 1000);
    await waitForAllReplicas(req, url, revision);
    metrics.routeChanges.inc({ type: 'delete' });
    res.writeHead(204);
    res.end();
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://api.invalid');
    } catch {
      throw new SwitchyardError(ErrorCode.NOT_FOUND, 'Not Found');
    }
    if (opts.dashboard && (url.pathname === '/dashboard' || url.pathname.startsWith('/dashboard/'))) {
      return opts.dashboard.handle(req, res, url);
    }
    if (url.pathname === '/api/health') {
      if (req.method !== 'GET') throw new SwitchyardError(ErrorCode.METHOD_NOT_ALLOWED, 'Method not supported');
      requireAuth(req);
      const h = store.health();
      const table = watcher.current();
      const notReady = opts.dataPlaneNotReady?.();
      // 503 while the store is unreachable ('degraded': reads may be stale) or while the data
      // plane is not whole ('not-ready': a replaced worker not yet listening with the table).
      const status = notReady !== undefined ? 'not-ready' : h.connected ? 'ok' : 'degraded';
      res.writeHead(status === 'ok' ? 200 : 503, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          status,
          ...(notReady !== undefined ? { reason: notReady } : {}),
          store: h,
          table: { version: table.version, routes: table.size },
          invalidRoutes: Object.fromEntries(watcher.invalidRoutes()),
        }),
      );
      return;
    }
    if (url.pathname === '/api/xds' && opts.xdsStatus) {
      if (req.method !== 'GET') throw new SwitchyardError(ErrorCode.METHOD_NOT_ALLOWED, 'Method not supported');
      requireAuth(req);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(opts.xdsStatus()));
      return;
    }
    if (url.pathname === '/api/reload' && opts.reload) {
      if (req.method !== 'POST') throw new SwitchyardError(ErrorCode.METHOD_NOT_ALLOWED, 'Method not supported');
      requireAuth(req);
      const result = await opts.reload('api');
      // 422: the new configuration was refused (the running one is kept); the body says why.
      res.writeHead(result.ok ? 200 : 422, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(result));
      return;
    }
    if (url.pathname === '/api/certificates' && opts.certificatesStatus) {
      if (req.method !== 'GET') throw new SwitchyardError(ErrorCode.METHOD_NOT_ALLOWED, 'Method not supported');
      requireAuth(req);
      const certificates = await opts.certificatesStatus();
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ certificates }));
      return;
    }
    const m = ROUTES_RE.exec(url.pathname);
    if (m === null) throw new SwitchyardError(ErrorCode.NOT_FOUND, 'Not Found');
    const rawPath = m[1];
    switch (req.method) {
      case 'GET':
        return getRoutes(req, res, url, rawPath);
      case 'POST':
        return postRoute(req, res, rawPath, url);
      case 'DELETE':
        return deleteRoute(req, res, rawPath, url);
      default:
        throw new SwitchyardError(ErrorCode.METHOD_NOT_ALLOWED, 'Method not supported');
    }
  }

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    res.once('finish', () => {
      metrics.apiRequests.inc({ method: req.method ?? '', code: String(res.statusCode) });
      const level = res.statusCode < 400 ? 'info' : res.statusCode < 500 ? 'warn' : 'error';
      const msg = `${res.statusCode} ${req.method} ${(req.url ?? '').split('?', 1)[0]}`;
      if (level === 'info') log.debug(msg);
      else log[level](msg);
    });
    handle(req, res).catch((e: unknown) => {
      if (isSwitchyardError(e)) {
        if (e.code === ErrorCode.BODY_TOO_LARGE) res.setHeader('connection', 'close');
        sendError(res, e);
        return;
      }
      log.error('API handler failed', { err: e });
      sendError(res, new SwitchyardError(ErrorCode.INTERNAL, 'Internal Server Error'));
    });
  }

  const server: HttpServer = config.apiSsl
    ? https().createServer({ ...config.apiSsl }, onRequest)
    : http.createServer(onRequest);

  return {
    server,
    start: () => listenOn(server, config.apiListen),
    close: (drainMs) => closeServer(server, drainMs),
  };
}

export interface MetricsServer {
  start(): Promise<void>;
  close(): Promise<void>;
  readonly server: HttpServer;
}

/** CHP's metrics server: GET /metrics in Prometheus text format, 404 for anything else. */
export function createMetricsServer(opts: {
  config: Pick<Config, 'metricsListen'>;
  render: () => Promise<{ contentType: string; body: string }>;
  log: Logger;
}): MetricsServer {
  const server = http.createServer((req, res) => {
    if ((req.url ?? '').split('?', 1)[0] !== '/metrics') {
      res.writeHead(404);
      res.end('Not Found');
      return;
    }
    opts.render().then(
      ({ contentType, body }) => {
        res.writeHead(200, { 'content-type': contentType });
        res.end(body);
      },
      (e: unknown) => {
        opts.log.error('metrics rendering failed', { err: e });
        res.writeHead(500);
        res.end();
      },
    );
  });
  return {
    server,
    start: () => listenOn(server, opts.config.metricsListen!),
    close: () => closeServer(server, 1000),
  };
}
