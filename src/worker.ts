// A data-plane worker (--workers N): the built-in proxy on the shared public port, routing
// against its own copy of the table, fed by the primary. Activity and metrics go back to it.

import type { Config } from './config/config.js';
import { createProxyDataPlane } from './dataplane/proxy/proxy-server.js';
import type { ToPrimary, ToWorker } from './dataplane/proxy/worker-protocol.js';
import type { Logger } from './observability/logger.js';
import { createMetrics } from './observability/metrics.js';
import { RoutingTable } from './routing/table.js';
import { RouteStatsRecorder } from './observability/route-stats.js';
import { createAccessLog } from './observability/access-log.js';

const ACTIVITY_FLUSH_MS = 200;

export function runWorker(config: Config, log: Logger): void {
  const send = (m: ToPrimary): void => {
    if (process.connected) process.send!(m);
  };
  const metrics = createMetrics();
  let table = RoutingTable.empty({ hostRouting: config.hostRouting });
  let pending = new Map<string, number>();
  const routeStats = new RouteStatsRecorder();
  // Each worker appends to the access log itself (whole lines, O_APPEND: see access-log.ts).
  const accessLog = config.accessLog
    ? createAccessLog({ ...config.accessLog, onError: (e) => log.error(`access log: ${e.message}`) })
    : undefined;
  const proxy = createProxyDataPlane({
    config,
    initialTable: table,
    recordActivity: (path) => pending.set(path, Date.now()),
    metrics,
    log,
    routeStats,
    ...(accessLog ? { accessLog } : {}),
  });
  const statsTimer = setInterval(() => {
    const m = process.memoryUsage();
    send({
      t: 'stats',
      routes: routeStats.take(),
      proc: { pid: process.pid, rss: m.rss, heapUsed: m.heapUsed, connections: metrics.stats.activeConnections, websockets: metrics.stats.activeWebsockets },
    });
  }, Math.max(config.dashboardIntervalMs, 50));
  statsTimer.unref();
  const flush = setInterval(() => {
    if (pending.size === 0) return;
    const entries = [...pending];
    pending = new Map();
    send({ t: 'activity', entries });
  }, ACTIVITY_FLUSH_MS);
  flush.unref();
  let listening = false;

  process.on('message', (msg: ToWorker) => {
    switch (msg.t) {
      case 'table':
        table = RoutingTable.build({ hostRouting: config.hostRouting }, msg.routes, msg.version);
        break;
      case 'changes':
        if (msg.version <= table.version) return;
        table = table.apply(msg.changes, msg.version);
        break;
      case 'metrics':
        void metrics.registry.getMetricsAsJSON().then((json) => send({ t: 'metrics', id: msg.id, json }));
        return;
      case 'listen':
        if (listening) return;
        listening = true;
        proxy.start().then(
          () => {
            const a = proxy.server.address();
            send(a !== null && typeof a === 'object' ? { t: 'listening', port: a.port } : { t: 'listening' });
          },
          (e: unknown) => {
            log.error(`worker cannot listen: ${(e as Error).message}`);
            process.exit(1);
          },
        );
        return;
      case 'drain':
        clearInterval(flush);
        clearInterval(statsTimer);
        void proxy.close(msg.ms).then(async () => {
          if (pending.size > 0) send({ t: 'activity', entries: [...pending] });
          await accessLog?.close();
          process.disconnect();
          process.exit(0);
        });
        return;
    }
    proxy.setTable(table);
    send({ t: 'applied', version: table.version });
  });
  send({ t: 'ready' });
  // The primary handles signals; a worker only stops when told to drain (or when orphaned).
  process.on('SIGTERM', () => {});
  process.on('SIGINT', () => {});
  process.on('disconnect', () => process.exit(0));
  process.on('uncaughtException', (e) => log.error(`Uncaught Exception: ${e.message}`, { stack: e.stack }));
}
