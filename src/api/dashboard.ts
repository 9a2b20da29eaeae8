// The dashboard: /dashboard/ on the API server. A static page (dashboard/ at the package root)
// plus two authenticated data endpoints:
//   GET  /dashboard/api/state    one JSON snapshot (routes with live figures, store, replicas, xDS, process)
//   GET  /dashboard/api/events   the same as Server-Sent Events: `hello` (full), then `routes`
//                                (table diffs), `reset` (full table) and `tick` (changed figures)
//   GET  /dashboard/api/session  204 when the session (or token) is valid, else 401
//   POST /dashboard/login        {"token": "..."} -> 204 + session cookie | 401
//   POST /dashboard/logout       clears the cookie
//
// Contract:
//  - Nothing but the static page shell is readable without the API token: data endpoints need the
//    session cookie (set by login) or `Authorization: token <T>`. Failures say only "invalid
//    token" / "login required" (401); without CONFIGPROXY_AUTH_TOKEN the dashboard is off (403).
//  - Sessions are stateless: the cookie is <expiry>.<HMAC-SHA256(key, expiry)> with a key derived
//    from the token, so any replica sharing the token accepts it and the server keeps no per-
//    session state. Changing the token logs everyone out. HttpOnly, SameSite=Strict, Path=/dashboard.
//  - Login and logout accept JSON bodies only: a cross-site HTML form cannot send one.
//  - Route data is sent as data (JSON) and rendered as text by the page; every response carries a
//    strict Content-Security-Policy (scripts from this origin only) as a second line against XSS.
//  - One ticker serves every open dashboard: the figures are computed once per tick and the same
//    bytes written to each stream. A stream that stops reading (more than MAX_BACKLOG buffered) is
//    cut. Server memory does not grow with the time a dashboard stays open.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { ActivityTracker } from '../control/activity.js';
import type { RouteWatcher, TableUpdate } from '../control/route-watcher.js';
import { ErrorCode, SwitchyardError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { RouteLive, RouteStatsAggregate } from '../observability/route-stats.js';
import type { Route } from '../routing/table.js';
import type { ReplicaInfo, RouteStore } from '../store/route-store.js';
import type { WorkerVitals } from '../dataplane/proxy/worker-protocol.js';
import { VERSION } from '../version.js';
import { createTokenMatcher, readBody, sha256 } from './request.js';

const COOKIE = 'switchyard_dashboard';
const SESSION_S = 12 * 3600;
const MAX_BACKLOG = 4 * 1024 * 1024;
const MAX_STREAMS = 256;
const FAILED_LOGIN_DELAY_MS = 300;
const ACTIVITY_REFRESH_MS = 10_000;

const STATIC: Record<string, string> = {
  '/dashboard/': 'index.html',
  '/dashboard/index.html': 'index.html',
  '/dashboard/app.js': 'app.js',
  '/dashboard/style.css': 'style.css',
};
const MIME: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

export interface ProcessInfo {
  /** Data-plane workers (--workers N > 1); empty when the proxy runs in this process. */
  readonly workers: readonly { pid: number | undefined; listening: boolean; applied: number; vitals: WorkerVitals | undefined }[];
  readonly connections: number;
  readonly websockets: number;
}

export interface DashboardOptions {
  readonly authToken: string | undefined;
  readonly secureCookie: boolean;
  readonly store: RouteStore;
  readonly watcher: RouteWatcher;
  readonly activity: ActivityTracker;
  readonly stats: RouteStatsAggregate;
  readonly processInfo: () => ProcessInfo;
  readonly xdsStatus?: (() => unknown) | undefined;
  readonly log: Logger;
  /** Where the static files are (default: dashboard/ at the package root). */
  readonly staticDir?: URL;
}

export interface Dashboard {
  /** Serve a /dashboard request (the API server routes them here). */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void>;
  /** Called once per stats tick with the routes whose figures changed. */
  tick(changed: ReadonlyMap<string, RouteLive>): void;
  /** Called on every table update (after the data planes have it). */
  onTable(update: TableUpdate): void;
  streams(): number;
  close(): void;
}

type RouteRow = [path: string, target: string, data: Record<string, unknown> | null, lastActivity: number | null, ...live: number[]];

export function createDashboard(o: DashboardOptions): Dashboard {
  const tokenMatches = createTokenMatcher(o.authToken);
  const key = o.authToken ? sha256('switchyard-dashboard-session-v1\0' + o.authToken) : undefined;
  const staticDir = o.staticDir ?? new URL('../../../dashboard/', import.meta.url);
  const files = new Map<string, Buffer>();
  const streams = new Set<ServerResponse>();
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();
  let cpuBefore = process.cpuUsage();
  let cpuAt = performance.now();
  let cpuPct = 0;
  let replicas: ReplicaInfo[] | null = null;
  let replicasBusy = false;
  let lastActivityRefresh = 0;

  // ---- authentication ----
  const sign = (expiry: number): string => createHmac('sha256', key!).update(String(expiry)).digest('base64url');

  function sessionValid(req: IncomingMessage): boolean {
    const cookie = req.headers.cookie;
    if (!cookie || key === undefined) return false;
    const m = new RegExp(`(?:^|;\\s*)${COOKIE}=(\\d+)\\.([A-Za-z0-9_-]+)`).exec(cookie);
    if (m === null) return false;
    const expiry = Number(m[1]);
    if (!(expiry > Date.now() / 1000)) return false;
    const want = Buffer.from(sign(expiry));
    const got = Buffer.from(m[2]!);
    return want.length === got.length && timingSafeEqual(want, got);
  }

  function tokenValid(token: string): boolean {
    return tokenMatches !== undefined && tokenMatches(token);
  }

  function authorized(req: IncomingMessage): boolean {
    if (tokenMatches === undefined) return false;
    const m = /^token\s+(\S+)/.exec(req.headers.authorization ?? '');
    if (m !== null) return tokenValid(m[1]!);
    return sessionValid(req);
  }

  function requireAuth(req: IncomingMessage): void {
    if (tokenMatches === undefined) throw new SwitchyardError(ErrorCode.DASHBOARD_DISABLED, 'dashboard disabled: no API token');
    if (!authorized(req)) throw new SwitchyardError(ErrorCode.UNAUTHENTICATED, 'login required');
  }

  function cookie(value: string, maxAge: number): string {
    return `${COOKIE}=${value}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${o.secureCookie ? '; Secure' : ''}`;
  }

  async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
      throw new SwitchyardError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, 'send JSON (Content-Type: application/json)');
    }
    const text = await readBody(req, 4096);
    try {
      const v: unknown = JSON.parse(text);
      return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
    } catch (e) {
      throw new SwitchyardError(ErrorCode.BODY_INVALID_JSON, `Body not valid JSON: ${e as Error}`);
    }
  }

  async function login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (tokenMatches === undefined) throw new SwitchyardError(ErrorCode.DASHBOARD_DISABLED, 'dashboard disabled: no API token');
    const body = await readJson(req);
    const token = typeof body.token === 'string' ? body.token : '';
    if (!tokenValid(token)) {
      o.log.warn('dashboard login failed', { remote: req.socket.remoteAddress });
      await new Promise((r) => setTimeout(r, FAILED_LOGIN_DELAY_MS));
      throw new SwitchyardError(ErrorCode.UNAUTHENTICATED, 'invalid token');
    }
    const expiry = Math.floor(Date.now() / 1000) + SESSION_S;
    res.writeHead(204, { ...SECURITY_HEADERS, 'set-cookie': cookie(`${expiry}.${sign(expiry)}`, SESSION_S), 'cache-control': 'no-store' });
    res.end();
  }

  // ---- data ----
  function liveOf(path: string): number[] {
    const l = o.stats.live(path);
    return [l.rate, l.errorRate, l.latencyMs, l.requests, l.errors];
  }

  function row(r: Route, activity?: ReadonlyMap<string, number>): RouteRow {
    const { target, ...rest } = r.data;
    const la = Math.max(activity?.get(r.path) ?? 0, o.stats.lastActivity(r.path) ?? 0);
    return [r.path, target, Object.keys(rest).length > 0 ? rest : null, la || null, ...liveOf(r.path)];
  }

  function tableRows(activity?: ReadonlyMap<string, number>): { version: number; routes: RouteRow[] } {
    const table = o.watcher.current();
    const routes: RouteRow[] = [];
    for (const r of table.routes()) routes.push(row(r, activity));
    return { version: table.version, routes };
  }

  function status(): Record<string, unknown> {
    const h = o.store.health();
    const table = o.watcher.current();
    const now = performance.now();
    const cpu = process.cpuUsage(cpuBefore);
    const elapsedMs = now - cpuAt;
    if (elapsedMs >= 500) {
      cpuPct = Math.round(((cpu.user + cpu.system) / 1000 / elapsedMs) * 1000) / 10;
      cpuBefore = process.cpuUsage();
      cpuAt = now;
    }
    const mem = process.memoryUsage();
    const p = o.processInfo();
    const { rate, errorRate } = o.stats.totalRates();
    return {
      time: Date.now(),
      streams: streams.size,
      health: h.connected ? 'ok' : 'degraded',
      version: VERSION,
      store: { kind: h.kind, connected: h.connected, revision: h.revision, lastError: h.lastError ?? null },
      table: { version: table.version, routes: table.size, invalid: o.watcher.invalidRoutes().size },
      replicas,
      xds: o.xdsStatus ? o.xdsStatus() : null,
      traffic: { rate, errorRate, connections: p.connections, websockets: p.websockets },
      process: {
        pid: process.pid,
        node: process.version,
        uptimeS: Math.round(process.uptime()),
        rss: mem.rss,
        heapUsed: mem.heapUsed,
        cpuPct,
        eventLoopP99Ms: Math.round(loopDelay.percentile(99) / 1e4) / 100,
        workers: p.workers,
      },
    };
  }

  // ---- streams ----
  function send(res: ServerResponse, event: string, data: string): void {
    if (res.writableLength > MAX_BACKLOG) {
      o.log.warn('dashboard stream not reading; closing it');
      res.destroy();
      return;
    }
    res.write(`event: ${event}\ndata: ${data}\n\n`);
  }

  function broadcast(event: string, payload: unknown): void {
    if (streams.size === 0) return;
    const data = JSON.stringify(payload);
    for (const res of streams) send(res, event, data);
  }

  function refreshReplicas(): void {
    if (o.store.replicas === undefined || replicasBusy) return;
    replicasBusy = true;
    o.store
      .replicas()
      .then(
        (r) => (replicas = r.sort((a, b) => a.id.localeCompare(b.id))),
        () => undefined, // the store's health shows the outage; keep the last list
      )
      .finally(() => (replicasBusy = false));
  }

  /** Activity other replicas wrote to the store (this one's own is already in the stats). */
  function refreshActivity(): void {
    lastActivityRefresh = Date.now();
    o.activity.read().then(
      (act) => {
        for (const [path, t] of act) o.stats.noteActivity(path, t);
      },
      () => undefined,
    );
  }

  async function events(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (streams.size >= MAX_STREAMS) throw new SwitchyardError(ErrorCode.TOO_MANY_STREAMS, 'too many dashboard streams');
    const activity = await o.activity.read().catch(() => new Map<string, number>());
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    res.socket?.setNoDelay(true);
    // No idle timeout on a stream that only the server writes to.
    res.socket?.setTimeout(0);
    refreshReplicas();
    send(res, 'hello', JSON.stringify({ ...tableRows(activity), status: status() }));
    streams.add(res);
    const gone = (): void => {
      streams.delete(res);
    };
    res.once('close', gone);
    req.once('error', gone);
  }

  async function serveStatic(res: ServerResponse, file: string): Promise<void> {
    let body = files.get(file);
    if (body === undefined) {
      body = readFileSync(new URL(file, staticDir));
      files.set(file, body);
    }
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': MIME[file.split('.').pop()!]!,
      'content-length': body.length,
      'cache-control': 'no-cache',
    });
    res.end(body);
  }

  return {
    async handle(req, res, url) {
      const path = url.pathname;
      if (path === '/dashboard') {
        res.writeHead(301, { location: '/dashboard/' });
        res.end();
        return;
      }
      const file = STATIC[path];
      if (file !== undefined) {
        if (req.method !== 'GET' && req.method !== 'HEAD') throw new SwitchyardError(ErrorCode.METHOD_NOT_ALLOWED, 'Method not supported');
        return serveStatic(res, file);
      }
      if (path === '/dashboard/login') {
        if (req.method !== 'POST') throw new SwitchyardError(ErrorCode.METHOD_NOT_ALLOWED, 'Method not supported');
        return login(req, res);
      }
      if (path === '/dashboard/logout') {
        if (req.method !== 'POST') throw new SwitchyardError(ErrorCode.METHOD_NOT_ALLOWED, 'Method not supported');
        await readJson(req);
        res.writeHead(204, { ...SECURITY_HEADERS, 'set-cookie': cookie('', 0) });
        res.end();
        return;
      }
      if (path === '/dashboard/api/session') {
        if (req.method !== 'GET') throw new SwitchyardError(ErrorCode.METHOD_NOT_ALLOWED, 'Method not supported');
        requireAuth(req);
        res.writeHead(204, { ...SECURITY_HEADERS, 'cache-control': 'no-store' });
        res.end();
        return;
      }
      if (path === '/dashboard/api/state' || path === '/dashboard/api/events') {
        if (req.method !== 'GET') throw new SwitchyardError(ErrorCode.METHOD_NOT_ALLOWED, 'Method not supported');
        requireAuth(req);
        if (path === '/dashboard/api/events') return events(req, res);
        const activity = await o.activity.read().catch(() => new Map<string, number>());
        res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify({ ...tableRows(activity), status: status() }));
        return;
      }
      throw new SwitchyardError(ErrorCode.NOT_FOUND, 'Not Found');
    },
    tick(changed) {
      if (streams.size === 0) return;
      refreshReplicas();
      if (Date.now() - lastActivityRefresh >= ACTIVITY_REFRESH_MS) refreshActivity();
      const live: (string | number | null)[][] = [];
      for (const [path, l] of changed) {
        live.push([path, l.rate, l.errorRate, l.latencyMs, l.requests, l.errors, o.stats.lastActivity(path) ?? null]);
      }
      broadcast('tick', { live, status: status() });
    },
    onTable(update) {
      if (streams.size === 0) return;
      if (update.changes === null) {
        broadcast('reset', tableRows());
        return;
      }
      const set: RouteRow[] = [];
      const del: string[] = [];
      for (const ch of update.changes) {
        if (ch.type === 'delete') {
          del.push(ch.path);
          continue;
        }
        const r = update.table.get(ch.path);
        // A route written now was active now (CHP sets last_activity when a route is added).
        if (r !== undefined) set.push(row(r, new Map([[ch.path, Date.now()]])));
        else del.push(ch.path); // refused (bad target): not in the table
      }
      broadcast('routes', { version: update.table.version, set, del });
    },
    streams: () => streams.size,
    close() {
      loopDelay.disable();
      for (const res of streams) res.destroy();
      streams.clear();
    },
  };
}
