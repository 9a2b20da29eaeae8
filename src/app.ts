// The composition root: the only module that knows every part. Data flows one way:
// store -> route watcher -> immutable routing table -> data planes; activity flows back in batches.

import type { Config } from './config/config.js';
import { createActivityTracker } from './control/activity.js';
import { createRouteWatcher } from './control/route-watcher.js';
import { createApiServer, createMetricsServer } from './api/api-server.js';
import { createProxyDataPlane } from './dataplane/proxy/proxy-server.js';
import { createRedirectServer } from './dataplane/proxy/redirect-server.js';
import { createWorkerPool } from './dataplane/proxy/worker-pool.js';
import { AggregatorRegistry } from 'prom-client';
import type { Logger } from './observability/logger.js';
import { createMetrics } from './observability/metrics.js';
import { createStore } from './store/create-store.js';
import type { RouteStore } from './store/route-store.js';
import type { AddressInfo } from 'node:net';
import type { EnvoyPlane } from './dataplane/envoy/envoy-plane.js';
import { hostname } from 'node:os';
import { createDashboard, type Dashboard } from './api/dashboard.js';
import { RouteStatsAggregate, RouteStatsRecorder, renderRouteMetrics } from './observability/route-stats.js';
import { createAccessLog } from './observability/access-log.js';

export interface App {
  start(): Promise<void>;
  /** Stop accepting, drain in-flight requests for at most config.drainTimeout, flush activity. */
  close(): Promise<void>;
  readonly store: RouteStore;
  /** Bound TCP ports (useful with port 0 in tests). */
  ports(): { proxy?: number; api?: number; metrics?: number; xds?: number };
}

export function createApp(config: Config, deps: { log: Logger; store?: RouteStore }): App {
  const { log } = deps;
  const metrics = createMetrics();
  const store = deps.store ?? createStore(config.store, { log, options: config.storeOptions, onInvalid: () => metrics.invalidRoutes.inc() });
  metrics.setStoreHealth(() => store.health());
  const watcher = createRouteWatcher({
    store,
    table: { hostRouting: config.hostRouting },
    log,
    onInvalid: () => metrics.invalidRoutes.inc(),
  });
  const activity = createActivityTracker({ store, intervalMs: config.activityFlushInterval, log });
  // Per-route figures (dashboard, --metrics-route-labels): recorded by each data plane, summed here.
  const routeStats = new RouteStatsAggregate();
  // The data plane: the proxy in this process, or --workers N processes fed by a pool.
  const pool =
    config.workers > 1
      ? createWorkerPool({
          count: config.workers,
          log,
          listen: config.proxyListen,
          current: () => watcher.current(),
          onActivity: (path, at) => activity.recordAt(path, at),
          onRouteStats: (entries) => routeStats.add(entries),
        })
      : undefined;
  const localStats = pool ? undefined : new RouteStatsRecorder();
  const accessLog =
    config.accessLog && !pool ? createAccessLog({ ...config.accessLog, onError: (e) => log.error(`access log: ${e.message}`) }) : undefined;
  const proxy = pool
    ? undefined
    : createProxyDataPlane({
        config,
        initialTable: watcher.current(),
        recordActivity: (path) => activity.record(path),
        metrics,
        log,
        ...(localStats ? { routeStats: localStats } : {}),
        ...(accessLog ? { accessLog } : {}),
      });
  // The xDS control plane (--xds-port): loaded on start, only when asked for (gRPC + Envoy protos).
  let envoy: EnvoyPlane | undefined;
  const dashboard: Dashboard | undefined = config.dashboard
    ? createDashboard({
        authToken: config.authToken,
        secureCookie: config.apiSsl !== undefined,
        store,
        watcher,
        activity,
        stats: routeStats,
        xdsStatus: config.xds ? () => envoy?.status() ?? { starting: true } : undefined,
        log,
        processInfo: () => {
          if (!pool) return { workers: [], connections: metrics.stats.activeConnections, websockets: metrics.stats.activeWebsockets };
          const workers = pool.workers();
          let connections = 0;
          let websockets = 0;
          for (const w of workers) {
            connections += w.vitals?.connections ?? 0;
            websockets += w.vitals?.websockets ?? 0;
          }
          return { workers, connections, websockets };
        },
      })
    : undefined;
  // One loop turns recorded per-route deltas into live figures and feeds the dashboard.
  let statsTimer: NodeJS.Timeout | undefined;
  let statsAt = performance.now();
  let prunedAt = -1;
  let sincePrune = 0;
  const statsTick = (): void => {
    if (localStats) routeStats.add(localStats.take());
    const now = performance.now();
    const changed = routeStats.tick((now - statsAt) / 1000);
    statsAt = now;
    const table = watcher.current();
    // On every table change, and every 10th tick for worker deltas that arrive after a delete.
    if (table.version !== prunedAt || ++sincePrune >= 10) {
      prunedAt = table.version;
      sincePrune = 0;
      routeStats.prune((p) => table.get(p) !== undefined);
    }
    dashboard?.tick(changed);
  };
  const api = createApiServer({
    config,
    ...(config.xds ? { xdsStatus: () => envoy?.status() ?? { starting: true } } : {}),
    ...(dashboard ? { dashboard } : {}),
    store,
    watcher,
    activity,
    metrics,
    log,
    ...(pool
      ? {
          waitLive: async (r: number, ms: number) => (await watcher.waitForRevision(r, ms)) && pool.waitApplied(r, ms),
          dataPlaneNotReady: () => pool.notReady(),
        }
      : {}),
  });
  const render = pool
    ? async () => {
        // Workers' counters and histograms summed with this process's (prom-client's cluster aggregation).
        const all = [await metrics.registry.getMetricsAsJSON(), ...(await pool.workerMetrics())];
        const merged = AggregatorRegistry.aggregate(all as object[]);
        return { contentType: merged.contentType, body: await merged.metrics() };
      }
    : () => metrics.render();
  const renderAll = config.metricsRouteLabels
    ? async () => {
        const r = await render();
        return { contentType: r.contentType, body: r.body + renderRouteMetrics(routeStats.totals) };
      }
    : render;
  const metricsServer = config.metricsListen ? createMetricsServer({ config, render: renderAll, log }) : undefined;
  const redirect =
    config.redirectPort !== undefined && config.proxyListen.kind === 'tcp'
      ? createRedirectServer({
          port: config.redirectPort,
          host: config.proxyListen.host,
          httpsPort: config.redirectTo ?? config.proxyListen.port,
        })
      : undefined;
  let started = false;

  const port = (s: { address(): string | AddressInfo | null }): number | undefined => {
    const a = s.address();
    return a !== null && typeof a === 'object' ? a.port : undefined;
  };

  const ports = (): ReturnType<App['ports']> => ({
    proxy: proxy ? port(proxy.server) : pool?.port(),
    api: port(api.server),
    metrics: metricsServer && port(metricsServer.server),
    xds: envoy?.port(),
  });

  return {
    store,
    async start() {
      await store.start();
      if (config.defaultTarget) {
        await store.put('/', { target: config.defaultTarget });
        activity.record('/');
      }
      // The whole table is loaded before any public port opens: no 404 window at startup.
      await watcher.start();
      proxy?.setTable(watcher.current());
      store.reportApplied?.(watcher.current().version);
      metrics.tableSize.set(watcher.current().size);
      metrics.tableVersion.set(watcher.current().version);
      watcher.subscribe((update) => {
        const { table } = update;
        proxy?.setTable(table);
        pool?.publish(update);
        envoy?.setTable(table);
        store.reportApplied?.(table.version);
        metrics.tableSize.set(table.size);
        metrics.tableVersion.set(table.version);
        dashboard?.onTable(update);
      });
      activity.start();
      statsTimer = setInterval(statsTick, config.dashboardIntervalMs);
      statsTimer.unref();
      if (config.xds) {
        const { createEnvoyPlane } = await import('./dataplane/envoy/envoy-plane.js');
        envoy = createEnvoyPlane({
          config,
          xds: config.xds,
          initialTable: watcher.current(),
          log,
          metrics,
          identifier: `switchyard ${config.storeOptions.replicaId ?? `${hostname()}-${process.pid}`}`,
        });
        await envoy.start();
      }
      // The data plane first, the API last: a client that waits for the API (JupyterHub polls it,
      // a load balancer probes /api/health) may send traffic through the proxy the moment the
      // API answers, so every data-plane worker must listen with the current table by then.
      await (proxy ?? pool)!.start();
      if (pool && !(await pool.waitApplied(watcher.current().version, 60_000))) {
        throw new Error('data-plane workers did not apply the routing table within 60 s');
      }
      await metricsServer?.start();
      await redirect?.start();
      await api.start();
      started = true;
      // These lines name the bound ports (the real ones with --port 0): tests and scripts read them.
      const bound = ports();
      log.info(
        `Proxying ${config.ssl ? 'https' : 'http'}://${describe(config.proxyListen, bound.proxy)} to ${config.defaultTarget ?? '(no default)'}`,
      );
      log.info(`Proxy API at ${config.apiSsl ? 'https' : 'http'}://${describe(config.apiListen, bound.api)}/api/routes`);
      if (config.metricsListen) log.info(`Serve metrics at http://${describe(config.metricsListen, bound.metrics)}/metrics`);
      if (redirect) log.info(`Added HTTP to HTTPS redirection from ${config.redirectPort}`);
    },
    async close() {
      const drain = config.drainTimeout;
      if (statsTimer) clearInterval(statsTimer);
      dashboard?.close();
      await Promise.allSettled([
        (proxy ?? pool)!.close(drain),
        api.close(Math.min(drain, 2000)),
        metricsServer?.close(),
        redirect?.close(),
        envoy?.close(),
      ]);
      await accessLog?.close();
      if (started) await activity.close();
      await watcher.close();
      await store.close();
    },
    ports,
  };
}

function describe(t: Config['proxyListen'], boundPort: number | undefined): string {
  return t.kind === 'unix' ? `unix:${t.path}` : `${t.host ?? '*'}:${boundPort ?? t.port}`;
}
