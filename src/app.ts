// The composition root: the only module that knows every part. It creates the parts and registers
// them; it holds no loop and no logic of its own. Data flows one way:
//   store -> route watcher -> TableUpdate -> table listeners, in this order: the data plane (the
//   in-process proxy or the worker pool), the Envoy plane, the replica report (store registry),
//   the table metrics, the route stats loop, the dashboard.
// What flows back is batched and separate: activity (data planes -> activity tracker -> store),
// per-route stats (recorders -> stats loop -> dashboard), metrics (workers -> /metrics).

import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import type { Server as HttpsServer } from 'node:https';
import type { Config } from './config/config.js';
import { ErrorCode, SwitchyardError } from './errors.js';
import { createActivityTracker } from './control/activity.js';
import { createReplicaReport } from './control/replica-report.js';
import { createRouteWatcher } from './control/route-watcher.js';
import type { TableListener } from './control/table-listener.js';
import { createApiServer, createMetricsServer } from './api/api-server.js';
import { createDashboard } from './api/dashboard.js';
import type { PreforkedWorker } from './dataplane/proxy/prefork.js';
import { parseUsers } from './api/dashboard-users.js';
import { createRedirectServer } from './dataplane/proxy/redirect-server.js';
import { createDataPlaneVitals } from './observability/data-plane-vitals.js';
import type { LogLevel, Logger } from './observability/logger.js';
import { createAccessLogHolder, createSettingsApplier, dataPlaneSettingsOf } from './dataplane/proxy/live-settings.js';
import { createReloader, type ReloadableConfig, type Reloader, type ReloadResult, type ReloadSource } from './control/reload.js';
import { watchCertificateFiles, type CertFiles } from './control/cert-watch.js';
import { createMetrics } from './observability/metrics.js';
import { RouteStatsAggregate, RouteStatsRecorder } from './observability/route-stats.js';
import { createRouteStatsLoop } from './observability/route-stats-loop.js';
import { createTableMetrics } from './observability/table-metrics.js';
import { createMetricsRender } from './observability/worker-metrics.js';
import { createStore } from './store/create-store.js';
import type { RouteStore } from './store/route-store.js';
import { createCertificateSelector, type CertificateSelector } from './tls/certificate-selector.js';
import { createHttp01Responder } from './tls/http01-responder.js';
import type { AcmeManager } from './tls/acme/acme-manager.js';

export interface App {
  start(): Promise<void>;
  /** Stop accepting, drain in-flight requests for at most config.drainTimeout, flush activity. */
  close(): Promise<void>;
  readonly store: RouteStore;
  /** Re-load the configuration and apply its live settings (SIGHUP, POST /api/reload): control/reload.ts. */
  reload(trigger: string): Promise<ReloadResult>;
  /** Bound TCP ports (useful with port 0 in tests). */
  ports(): { proxy?: number; api?: number; metrics?: number; xds?: number };
}

export interface AppDeps<S> {
  log: Logger;
  store?: RouteStore;
  /** Where a reload gets the new configuration (default: the running one, so only certificate files change). */
  reload?: ReloadSource<S>;
  /** Changes the level of `log` and its children (a reload). */
  setLogLevel?: (level: LogLevel) => void;
  /** Certificate files re-read when they change on disk. */
  certFiles?: { ssl?: CertFiles; apiSsl?: CertFiles };
  /** Workers main.ts forked early (--workers N). */
  preforked?: readonly PreforkedWorker[];
}

export async function createApp<S = unknown>(config: ReloadableConfig, deps: AppDeps<S>): Promise<App> {
  const { log } = deps;
  const metrics = createMetrics();
  const store = deps.store ?? await createStore(config.store, { log, options: config.storeOptions, onInvalid: () => metrics.invalidRoutes.inc() });
  metrics.setStoreHealth(() => store.health());
  const watcher = createRouteWatcher({
    source: store,
    table: { hostRouting: config.hostRouting },
    log,
    onInvalid: () => metrics.invalidRoutes.inc(),
  });
  const activity = createActivityTracker({ store, intervalMs: config.activityFlushInterval, log });

  // Automatic HTTPS (--acme-*): the manager (loaded only when asked for: acme-client is large)
  // keeps certificates in the store; they reach this process's proxy (selector) or the workers.
  let selector: CertificateSelector | undefined;
  let pushToWorkers: ((name: string, pem: { cert: string; key: string }) => void) | undefined;
  const acme: AcmeManager | undefined = config.acme
    ? (await import('./tls/acme/acme-manager.js')).createAcmeManager({
        config: config.acme,
        store: store.certificates,
        log,
        install(name, pem) {
          selector?.set(name, pem);
          pushToWorkers?.(name, pem);
        },
        hostAllowed(host) {
          const table = watcher.current();
          if (!table.options.hostRouting) return false;
          const route = table.match([host]);
          return route !== undefined && table.keySegments(route.path)[0] === host;
        },
        onOrder: (result) => metrics.acmeOrders.inc({ result }),
      })
    : undefined;
  if (acme) metrics.setAcmeStatus(() => acme.installed());
  const onAcmeError = (e: unknown): void => log.warn(`ACME: ${(e as Error).message}`);

  // The data plane: the proxy in this process, or --workers N processes or threads fed by a pool. Each module
  // is loaded only when used: a primary with workers never loads the proxy (nor undici).
  const routeStats = new RouteStatsAggregate();
  // What a worker that asks ('config?') is given: the start-up configuration until the reloader
  // below exists, then the reloader's. The pool may adopt a preforked worker before that worker
  // has asked, and its question then arrives while this function still awaits module imports
  // further down: reading `reloader` then threw (temporal dead zone) and the primary exited.
  let liveConfig = (): Config => config;
  const pool =
    config.workers > 1
      ? (await import('./dataplane/proxy/worker-pool.js')).createWorkerPool({
          count: config.workers,
          mode: config.workerMode,
          log,
          listen: config.proxyListen,
          initialTable: watcher.current(),
          onActivity: (path, at) => activity.recordAt(path, at),
          onRouteStats: (entries) => routeStats.add(entries),
          ...(deps.preforked ? { preforked: deps.preforked } : {}),
          settings: dataPlaneSettingsOf(config),
          config: () => liveConfig(),
          ...(acme ? { acme: { source: acme.source, certificates: () => acme.installed() } } : {}),
        })
      : undefined;
  if (pool && acme) pushToWorkers = (name, pem) => pool.pushCertificate(name, pem);
  if (acme && !pool) selector = createCertificateSelector({ source: acme.source, defaultName: config.acme!.domains[0], onError: onAcmeError });
  const http01 = acme ? createHttp01Responder(acme.source, onAcmeError) : undefined;
  const localStats = pool ? undefined : new RouteStatsRecorder();
  const accessLog = pool ? undefined : createAccessLogHolder(config.accessLog, (e) => log.error(`access log: ${e.message}`));
  const initialAccessLog = accessLog?.current();
  const proxy = pool
    ? undefined
    : (await import('./dataplane/proxy/proxy-server.js')).createProxyDataPlane({
        config,
        initialTable: watcher.current(),
        recordActivity: (path) => activity.record(path),
        metrics,
        log,
        ...(localStats ? { routeStats: localStats } : {}),
        ...(initialAccessLog ? { accessLog: initialAccessLog } : {}),
        ...(selector && http01 ? { acme: { selector, http01 } } : {}),
      });
  const dataPlane = pool ?? proxy!;

  // The xDS control plane (--xds-port): its module (gRPC + Envoy protos) is loaded only when asked for.
  const envoy = config.xds
    ? (await import('./dataplane/envoy/envoy-plane.js')).createEnvoyPlane({
        config,
        xds: config.xds,
        initialTable: watcher.current(),
        log,
        metrics,
        identifier: `switchyard ${config.storeOptions.replicaId ?? `${hostname()}-${process.pid}`}`,
      })
    : undefined;

  // Per-route figures (dashboard, --metrics-route-labels): recorded by each data plane, summed here.
  const statsLoop = createRouteStatsLoop({
    aggregate: routeStats,
    intervalMs: config.dashboardIntervalMs,
    hostRouting: config.hostRouting,
    storeActivity: () => activity.read(),
    ...(localStats ? { local: localStats } : {}),
  });
  const xdsStatus = envoy ? () => envoy.status() : undefined;
  const dashboard = config.dashboard
    ? createDashboard({
        authToken: config.authToken,
        secureCookie: config.apiSsl !== undefined,
        store,
        watcher,
        activity,
        stats: statsLoop,
        xdsStatus,
        ...(acme ? { certificatesStatus: () => acme.status() } : {}),
        log,
        users: config.dashboardUsers ?? [],
        processInfo: createDataPlaneVitals({ stats: metrics.stats, ...(pool ? { workers: () => pool.workers() } : {}) }),
      })
    : undefined;

  // Every consumer of the table, in the order it gets each new one.
  const listeners: (TableListener | undefined)[] = [dataPlane, envoy, createReplicaReport(store), createTableMetrics(metrics), statsLoop, dashboard];
  for (const l of listeners) if (l) watcher.subscribe(l);

  const api = createApiServer({
    config,
    ...(xdsStatus ? { xdsStatus } : {}),
    ...(dashboard ? { dashboard } : {}),
    reload: (trigger: string) => reloader.reload(trigger),
    ...(acme ? { certificatesStatus: () => acme.status() } : {}),
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
  const metricsServer = config.metricsListen
    ? createMetricsServer({
        config,
        render: createMetricsRender({
          metrics,
          ...(pool ? { workerMetrics: () => pool.workerMetrics() } : {}),
          ...(config.metricsRouteLabels ? { routeTotals: statsLoop.stats.totals } : {}),
        }),
        log,
      })
    : undefined;
  const redirect =
    config.redirectPort !== undefined && config.proxyListen.kind === 'tcp'
      ? createRedirectServer({
          port: config.redirectPort,
          host: config.proxyListen.host,
          httpsPort: config.redirectTo ?? config.proxyListen.port,
          ...(http01 ? { http01 } : {}),
        })
      : undefined;

  // Reload (control/reload.ts): what each live setting changes, in this order.
  const setLogLevel = deps.setLogLevel ?? ((): void => {});
  const applyLocal = proxy && accessLog ? createSettingsApplier({ proxy, accessLog, setLogLevel }, dataPlaneSettingsOf(config)) : undefined;
  const reloader: Reloader = createReloader({
    initial: config,
    source: deps.reload ?? { load: async () => ({ config: reloader.current() }) },
    validate: (next) => void parseUsers(next.dashboardUsers ?? []),
    log,
    targets: [
      {
        name: 'data plane',
        apply: async (next) => {
          if (applyLocal) return applyLocal(dataPlaneSettingsOf(next));
          setLogLevel(next.logLevel);
          await pool!.applySettings(dataPlaneSettingsOf(next));
        },
      },
      envoy && { name: 'Envoy (xDS)', apply: (next, changed) => void ((changed.has('timeout') || changed.has('proxyTimeout')) && envoy.applySettings(next)) },
      dashboard && { name: 'dashboard', apply: (next, changed) => void (changed.has('dashboardUsers') && dashboard.setUsers(next.dashboardUsers ?? [])) },
      config.apiSsl && {
        name: 'API server',
        apply: (next, changed) => void (changed.has('apiSsl') && (api.server as HttpsServer).setSecureContext({ ...next.apiSsl })),
      },
    ],
  });
  liveConfig = () => reloader.current();
  const certWatches = (['ssl', 'apiSsl'] as const).flatMap((which) => {
    const files = deps.certFiles?.[which];
    return files ? [{ which, files }] : [];
  });
  let watching: { close(): void }[] = [];
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
      // The whole table is loaded (and handed to every listener) before any public port opens:
      // no 404 window at startup.
      await watcher.start();
      activity.start();
      statsLoop.start();
      // Stored certificates are served from the first handshake; orders run in the background.
      await acme?.start();
      await envoy?.start();
      // The data plane first, the API last: a client that waits for the API (JupyterHub polls it,
      // a load balancer probes /api/health) may send traffic through the proxy the moment the
      // API answers, so every data-plane worker must listen with the current table by then.
      await dataPlane.start();
      if (pool && !(await pool.waitApplied(watcher.current().version, 60_000))) {
        throw new SwitchyardError(ErrorCode.INTERNAL, 'data-plane workers did not apply the routing table within 60 s');
      }
      await metricsServer?.start();
      await redirect?.start();
      await api.start();
      watching = certWatches.map(({ which, files }) =>
        watchCertificateFiles({ files, what: which === 'ssl' ? '--ssl-cert/--ssl-key' : '--api-ssl-cert/--api-ssl-key', log, onPair: (pair) => reloader.applyCertificate(which, pair) }),
      );
      started = true;
      // These lines name the bound ports (the real ones with --port 0): tests and scripts read them.
      const bound = ports();
      log.info(
        `Proxying ${config.ssl || config.acme ? 'https' : 'http'}://${describe(config.proxyListen, bound.proxy)} to ${config.defaultTarget ?? '(no default)'}`,
      );
      log.info(`Proxy API at ${config.apiSsl ? 'https' : 'http'}://${describe(config.apiListen, bound.api)}/api/routes`);
      if (config.metricsListen) log.info(`Serve metrics at http://${describe(config.metricsListen, bound.metrics)}/metrics`);
      if (redirect) log.info(`Added HTTP to HTTPS redirection from ${port(redirect.server) ?? config.redirectPort}`);
    },
    async close() {
      const drain = config.drainTimeout;
      for (const w of watching) w.close();
      statsLoop.close();
      dashboard?.close();
      await Promise.allSettled([
        dataPlane.close(drain),
        api.close(Math.min(drain, 2000)),
        metricsServer?.close(),
        redirect?.close(),
        envoy?.close(),
      ]);
      await acme?.close();
      await accessLog?.close();
      if (started) await activity.close();
      await watcher.close();
      await store.close();
    },
    ports,
    reload: (trigger) => reloader.reload(trigger),
  };
}

function describe(t: Config['proxyListen'], boundPort: number | undefined): string {
  return t.kind === 'unix' ? `unix:${t.path}` : `${t.host ?? '*'}:${boundPort ?? t.port}`;
}
