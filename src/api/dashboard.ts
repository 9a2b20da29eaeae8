// The dashboard: /dashboard/ on the API server. A static page (dashboard/ at the package root)
// plus two authenticated data endpoints:
//   GET  /dashboard/api/state    one JSON snapshot (routes with live figures, store, replicas, xDS, process)
//   GET  /dashboard/api/events   the same as Server-Sent Events: `hello` (full), then `routes`
//                                (table diffs), `reset` (full table) and `tick` (changed figures)
//   GET  /dashboard/api/certificates  ACME certificate state ({enabled, certificates}), the same
//                                status as GET /api/certificates, re-built field by field here so
//                                nothing but dates, counters and error text can reach the page
//   GET  /dashboard/api/session  204 when the session (or token) is valid, else 401
//   POST /dashboard/login        {"token": "..."} | {"user", "password"} -> 204 + session cookie | 401 | 429
//   POST /dashboard/logout       clears the cookie
//
// Contract:
//  - Nothing but the static page shell is readable without the API token: data endpoints need the
//    session cookie (set by login) or `Authorization: token <T>` (dashboard-session.ts); without
//    CONFIGPROXY_AUTH_TOKEN the dashboard is off (403).
//  - Route data is sent as data (JSON) and rendered as text by the page; every response carries a
//    strict Content-Security-Policy (dashboard-static.ts) as a second line against XSS.
//  - Read-only: the dashboard reads the table (a TableListener), the route stats (a subscriber of
//    the stats loop), the store's health and replica registry, and writes nowhere but to its
//    streams. One ticker (the stats loop) serves every open dashboard: the figures are computed
//    once per tick and the same bytes written to each stream (event-stream.ts); while no stream is
//    open it neither subscribes to the stats nor watches the replica registry.
//
// Parts: dashboard-session.ts (sign-in), dashboard-static.ts (the page), event-stream.ts (SSE),
// observability/process-sampler.ts (CPU, event loop, memory); this module composes them.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ActivityTracker } from '../control/activity.js';
import type { RouteWatcher } from '../control/route-watcher.js';
import type { TableListener } from '../control/table-listener.js';
import { ErrorCode, SwitchyardError } from '../errors.js';
import type { DataPlaneVitals } from '../observability/data-plane-vitals.js';
import type { Logger } from '../observability/logger.js';
import { createProcessSampler } from '../observability/process-sampler.js';
import type { RouteLive } from '../observability/route-stats.js';
import type { RouteStatsLoop } from '../observability/route-stats-loop.js';
import type { Route } from '../routing/table.js';
import type { CertificateStatus } from '../tls/acme/acme-manager.js';
import type { ReplicaInfo, RouteStore, Unsubscribe } from '../store/route-store.js';
import { VERSION } from '../version.js';
import { createDashboardSession } from './dashboard-session.js';
import { createStaticFiles, SECURITY_HEADERS } from './dashboard-static.js';
import { createEventStreamHub } from './event-stream.js';

const MAX_BACKLOG = 4 * 1024 * 1024;
const MAX_STREAMS = 256;

export interface DashboardOptions {
  readonly authToken: string | undefined;
  /** [dashboard] users: htpasswd lines with bcrypt hashes (dashboard-users.ts). */
  readonly users?: readonly string[];
  readonly secureCookie: boolean;
  readonly store: Pick<RouteStore, 'health' | 'watchReplicas'>;
  readonly watcher: Pick<RouteWatcher, 'current' | 'invalidRoutes'>;
  readonly activity: Pick<ActivityTracker, 'read'>;
  /** Live per-route figures, and a tick per interval while a stream is open. */
  readonly stats: Pick<RouteStatsLoop, 'stats' | 'subscribe'>;
  readonly processInfo: () => DataPlaneVitals;
  readonly xdsStatus?: (() => unknown) | undefined;
  /** ACME certificate state (the Certificates panel); absent without ACME. */
  readonly certificatesStatus?: (() => Promise<readonly CertificateStatus[]>) | undefined;
  readonly log: Logger;
  /** Where the static files are (default: dashboard/ at the package root). */
  readonly staticDir?: URL;
}

export interface Dashboard extends TableListener {
  /** Serve a /dashboard request (the API server routes them here). */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void>;
  streams(): number;
  /** New dashboard users (a reload); sessions of changed or removed users end. */
  setUsers(lines: readonly string[]): void;
  close(): void;
}

/** One Certificates panel row: an allow-list of CertificateStatus fields (never key material). */
export interface DashboardCertificate {
  readonly name: string;
  readonly served: boolean;
  readonly notBefore: number | null;
  readonly notAfter: number | null;
  readonly nextRenewalAt: number | null;
  readonly lastError: string | null;
  readonly lastErrorAt: number | null;
  readonly attempts: number;
  readonly lastOrderAt: number | null;
  readonly renewalWindow: { readonly start: number; readonly end: number } | null;
}

export function dashboardCertificate(c: CertificateStatus): DashboardCertificate {
  return {
    name: c.name,
    served: c.served,
    notBefore: c.notBefore ?? null,
    notAfter: c.notAfter ?? null,
    nextRenewalAt: c.nextRenewalAt ?? null,
    lastError: c.lastError ?? null,
    lastErrorAt: c.lastErrorAt ?? null,
    attempts: c.attempts ?? 0,
    lastOrderAt: c.lastOrderAt ?? null,
    renewalWindow: c.ari ? { start: c.ari.windowStart, end: c.ari.windowEnd } : null,
  };
}

type RouteRow = [path: string, target: string, data: Record<string, unknown> | null, lastActivity: number | null, ...live: number[]];

export function createDashboard(o: DashboardOptions): Dashboard {
  const stats = o.stats.stats;
  const session = createDashboardSession({ authToken: o.authToken, users: o.users ?? [], secureCookie: o.secureCookie, log: o.log });
  const files = createStaticFiles(o.staticDir ?? new URL('../../../dashboard/', import.meta.url));
  const sampler = createProcessSampler();
  /** The replica registry as last delivered (null: none, or not watched yet). */
  let replicas: ReplicaInfo[] | null = null;
  let unsubscribe: Unsubscribe[] = [];
  const hub = createEventStreamHub({
    log: o.log,
    maxStreams: MAX_STREAMS,
    maxBacklog: MAX_BACKLOG,
    // Producers run only while someone watches: the stats ticks and the replica registry watch.
    onActive(active) {
      for (const un of unsubscribe) un();
      unsubscribe = [];
      if (!active) return;
      unsubscribe.push(o.stats.subscribe(tick));
      const un = o.store.watchReplicas?.((list) => (replicas = [...list].sort((a, b) => a.id.localeCompare(b.id))));
      if (un) unsubscribe.push(un);
    },
  });

  // ---- data ----
  function liveOf(path: string): number[] {
    const l = stats.live(path);
    return [l.rate, l.errorRate, l.latencyMs, l.requests, l.errors];
  }

  function row(r: Route, activity?: ReadonlyMap<string, number>): RouteRow {
    const { target, ...rest } = r.data;
    const la = Math.max(activity?.get(r.path) ?? 0, stats.lastActivity(r.path) ?? 0);
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
    const p = o.processInfo();
    const { rate, errorRate } = stats.totalRates();
    return {
      time: Date.now(),
      streams: hub.size(),
      health: h.connected ? 'ok' : 'degraded',
      version: VERSION,
      store: { kind: h.kind, connected: h.connected, revision: h.revision, lastError: h.lastError ?? null },
      table: { version: table.version, routes: table.size, invalid: o.watcher.invalidRoutes().size },
      replicas,
      xds: o.xdsStatus ? o.xdsStatus() : null,
      traffic: { rate, errorRate, connections: p.connections, websockets: p.websockets },
      process: { ...sampler.sample(), workers: p.workers },
    };
  }

  /** Once per stats tick while a stream is open: the routes whose figures changed. */
  function tick(changed: ReadonlyMap<string, RouteLive>): void {
    const live: (string | number | null)[][] = [];
    for (const [path, l] of changed) {
      live.push([path, l.rate, l.errorRate, l.latencyMs, l.requests, l.errors, stats.lastActivity(path) ?? null]);
    }
    hub.broadcast('tick', { live, status: status() });
  }

  async function events(req: IncomingMessage, res: ServerResponse): Promise<void> {
    hub.admit();
    const activity = await o.activity.read().catch(() => new Map<string, number>());
    hub.open(req, res, SECURITY_HEADERS, 'hello', JSON.stringify({ ...tableRows(activity), status: status() }));
  }

  return {
    name: 'dashboard',
    async handle(req, res, url) {
      const path = url.pathname;
      if (path === '/dashboard') {
        res.writeHead(301, { location: '/dashboard/' });
        res.end();
        return;
      }
      const file = files.fileOf(path);
      if (file !== undefined) {
        if (req.method !== 'GET' && req.method !== 'HEAD') throw new SwitchyardError(ErrorCode.METHOD_NOT_ALLOWED, 'Method not supported');
        return files.serve(res, file);
      }
      if (path === '/dashboard/login') {
        if (req.method !== 'POST') throw new SwitchyardError(ErrorCode.METHOD_NOT_ALLOWED, 'Method not supported');
        return session.login(req, res);
      }
      if (path === '/dashboard/logout') {
        if (req.method !== 'POST') throw new SwitchyardError(ErrorCode.METHOD_NOT_ALLOWED, 'Method not supported');
        return session.logout(req, res);
      }
      if (path === '/dashboard/api/session') {
        if (req.method !== 'GET') throw new SwitchyardError(ErrorCode.METHOD_NOT_ALLOWED, 'Method not supported');
        session.requireAuth(req);
        res.writeHead(204, { ...SECURITY_HEADERS, 'cache-control': 'no-store' });
        res.end();
        return;
      }
      if (path === '/dashboard/api/certificates') {
        if (req.method !== 'GET') throw new SwitchyardError(ErrorCode.METHOD_NOT_ALLOWED, 'Method not supported');
        session.requireAuth(req);
        const list = o.certificatesStatus ? await o.certificatesStatus() : [];
        const body = { enabled: o.certificatesStatus !== undefined, time: Date.now(), certificates: list.map(dashboardCertificate) };
        res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify(body));
        return;
      }
      if (path === '/dashboard/api/state' || path === '/dashboard/api/events') {
        if (req.method !== 'GET') throw new SwitchyardError(ErrorCode.METHOD_NOT_ALLOWED, 'Method not supported');
        session.requireAuth(req);
        if (path === '/dashboard/api/events') return events(req, res);
        const activity = await o.activity.read().catch(() => new Map<string, number>());
        res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify({ ...tableRows(activity), status: status() }));
        return;
      }
      throw new SwitchyardError(ErrorCode.NOT_FOUND, 'Not Found');
    },
    onTable(update) {
      if (hub.size() === 0) return;
      if (update.changes === null) {
        hub.broadcast('reset', tableRows());
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
      hub.broadcast('routes', { version: update.table.version, set, del });
    },
    streams: () => hub.size(),
    setUsers: (lines) => session.setUsers(lines),
    close() {
      sampler.close();
      hub.close();
    },
  };
}
