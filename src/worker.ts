// A data-plane worker (--workers N): the built-in proxy on the shared public port, routing
// against its own copy of the table, fed by the primary. It runs the primary's route watcher
// (fed by messages: dataplane/proxy/ipc-route-source.ts) and activity batcher (flushing to the
// primary); activity, stats and metrics go back to the primary. It loads no store module.
// The same code runs in a forked process or in a thread of the primary's process: `link`
// (worker-channel.ts) is the difference. A thread opens its own listening socket on the public
// port with SO_REUSEPORT; a process listens through node:cluster.

import { existsSync } from 'node:fs';
import { threadId } from 'node:worker_threads';
import type { Config } from './config/config.js';
import { createActivityTracker } from './control/activity.js';
import { createRouteWatcher } from './control/route-watcher.js';
import { createIpcRouteSource } from './dataplane/proxy/ipc-route-source.js';
import { createProxyDataPlane } from './dataplane/proxy/proxy-server.js';
import type { ToPrimary, ToWorker } from './dataplane/proxy/worker-protocol.js';
import type { WorkerLink } from './dataplane/proxy/worker-channel.js';
import type { LogLevel, Logger } from './observability/logger.js';
import { createMetrics } from './observability/metrics.js';
import { RouteStatsRecorder } from './observability/route-stats.js';
import { createAccessLogHolder, createSettingsApplier, dataPlaneSettingsOf } from './dataplane/proxy/live-settings.js';
import { createCertificateSelector } from './tls/certificate-selector.js';
import { createHttp01Responder } from './tls/http01-responder.js';
import { createIpcChallengeSource } from './tls/ipc-challenge-source.js';

/** How often a worker sends its recorded activity to the primary (which batches it to the store). */
const ACTIVITY_FLUSH_MS = 200;

export function runWorker(config: Config, log: Logger, setLogLevel: (level: LogLevel) => void, link: WorkerLink): void {
  const crashFile = process.env.SWITCHYARD_TEST_HOOKS === '1' ? process.env.SWITCHYARD_TEST_CRASH_AT_START : undefined;
  if (crashFile !== undefined && existsSync(crashFile)) {
    // Test hook (worker-pool.ts's restart backoff): while this file exists, a new worker dies as
    // it starts, of an uncaught error, as a broken build or a poisoned start would.
    process.removeAllListeners('uncaughtException');
    setImmediate(() => {
      throw new Error('test crash at start (SWITCHYARD_TEST_HOOKS)');
    });
    return;
  }
  const send = (m: ToPrimary): void => link.send(m);
  const thread = link.mode === 'threads';
  // A thread shares the primary's process: the process-wide default metrics (CPU, RSS, fds) are
  // the primary's to report, once; a thread reports its own heap, event loop and counters.
  // Its default metrics once it listens (metrics.ts): not on the way to its port opening.
  const metrics = createMetrics({ processWide: !thread, deferDefaultMetrics: true });
  const source = createIpcRouteSource();
  const watcher = createRouteWatcher({ source, table: { hostRouting: config.hostRouting }, log, quiet: true });
  const activity = createActivityTracker({
    store: {
      async writeActivity(batch) {
        send({ t: 'activity', entries: [...batch] });
      },
      // The primary answers reads; a worker never reads activity.
      readActivity: async () => new Map(),
      activityOf: async () => undefined,
    },
    intervalMs: ACTIVITY_FLUSH_MS,
    log,
  });
  const routeStats = new RouteStatsRecorder();
  // Each worker appends to the access log itself (whole lines, O_APPEND: see access-log.ts).
  // A reload reopens it ('settings' from the primary).
  const accessLog = createAccessLogHolder(config.accessLog, (e) => log.error(`access log: ${e.message}`));
  const initialAccessLog = accessLog.current();
  // ACME: certificates arrive from the primary ('cert'); challenge answers are asked of it.
  const acmeSource = config.acme ? createIpcChallengeSource(send, config.acme.onDemand) : undefined;
  const onAcmeError = (e: unknown): void => log.warn(`ACME: ${(e as Error).message}`);
  const acme = acmeSource
    ? {
        selector: createCertificateSelector({ source: acmeSource, defaultName: config.acme!.domains[0], onError: onAcmeError }),
        http01: createHttp01Responder(acmeSource, onAcmeError),
      }
    : undefined;
  const proxy = createProxyDataPlane({
    config,
    ...(acme ? { acme } : {}),
    initialTable: watcher.current(),
    recordActivity: (path) => activity.record(path),
    metrics,
    log,
    routeStats,
    ...(initialAccessLog ? { accessLog: initialAccessLog } : {}),
  });
  const applySettings = createSettingsApplier({ proxy, accessLog, setLogLevel }, dataPlaneSettingsOf(config));
  // Table listeners, in order: the proxy serves the table, then the primary learns it is applied.
  watcher.subscribe(proxy);
  watcher.subscribe({ name: 'applied ack', onTable: ({ table }) => send({ t: 'applied', version: table.version }) });

  const statsTimer = setInterval(() => {
    // In a thread, process.memoryUsage().rss is the whole process's (the primary reports it):
    // a thread tells its id and its own heap.
    const m = process.memoryUsage();
    const who = thread ? { pid: process.pid, threadId } : { pid: process.pid, rss: m.rss };
    send({
      t: 'stats',
      routes: routeStats.take(),
      proc: { ...who, heapUsed: m.heapUsed, connections: metrics.stats.activeConnections, websockets: metrics.stats.activeWebsockets },
    });
  }, Math.max(config.dashboardIntervalMs, 50));
  statsTimer.unref();

  let listening = false;
  link.onMessage((msg: ToWorker) => {
    switch (msg.t) {
      case 'table':
      case 'changes':
        source.receive(msg);
        return;
      case 'settings':
        applySettings(msg.settings).then(
          () => send({ t: 'settings-applied', id: msg.id }),
          (e: unknown) => send({ t: 'settings-applied', id: msg.id, error: (e as Error).message }),
        );
        return;
      case 'metrics':
        metrics.startDefaultMetrics();
        void metrics.registry.getMetricsAsJSON().then((json) => send({ t: 'metrics', id: msg.id, json }));
        return;
      case 'listen':
        if (listening) return;
        listening = true;
        proxy.start(thread ? { reusePort: true, ...(msg.port !== undefined ? { port: msg.port } : {}) } : undefined).then(
          () => {
            const a = proxy.server.address();
            send(a !== null && typeof a === 'object' ? { t: 'listening', port: a.port } : { t: 'listening' });
            metrics.startDefaultMetrics();
          },
          (e: unknown) => {
            // Tell the primary why (a respawned worker would fail the same way), then leave.
            const err = e as Error & { details?: { errno?: string } };
            send({ t: 'listen-failed', message: err.message, errno: err.details?.errno });
            link.exit(1);
          },
        );
        return;
      case 'cert':
        acme?.selector.set(msg.name, { cert: msg.cert, key: msg.key });
        return;
      case 'acme-answer':
        acmeSource?.receive(msg);
        return;
      case 'drain':
        clearInterval(statsTimer);
        void proxy.close(msg.ms).then(async () => {
          await activity.close();
          await accessLog.close();
          await watcher.close();
          link.exit(0);
        });
        return;
      case 'test-crash':
        // Test hook (worker-pool.ts): an uncaught error that nothing catches, as a bug would.
        if (process.env.SWITCHYARD_TEST_HOOKS !== '1') return;
        process.removeAllListeners('uncaughtException');
        setImmediate(() => {
          throw new Error('test crash (SWITCHYARD_TEST_HOOKS)');
        });
        return;
    }
  });
  // The first table arrives in answer to 'ready'; the primary then says 'listen' once every worker
  // has applied it (worker-pool.ts), so the shared port opens with the whole table everywhere.
  watcher.start().then(
    () => activity.start(),
    (e: unknown) => {
      log.error(`worker cannot load its table: ${(e as Error).message}`);
      link.exit(1);
    },
  );
  send({ t: 'ready' });
  if (!thread) {
    // The primary handles signals; a worker only stops when told to drain (or when orphaned).
    // (A thread gets no signals: they are the process's, handled by the primary's main thread.)
    process.on('SIGTERM', () => {});
    process.on('SIGINT', () => {});
    // A reload is the primary's (it sends 'settings'); a hang-up sent to the process group is not for us.
    process.on('SIGHUP', () => {});
    process.on('disconnect', () => process.exit(0));
  }
  process.on('uncaughtException', (e) => log.error(`Uncaught Exception: ${e.message}`, { err: e }));
}
