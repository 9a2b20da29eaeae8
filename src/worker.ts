// A data-plane worker (--workers N): the built-in proxy on the shared public port, routing
// against its own copy of the table, fed by the primary. Activity and metrics go back to it.

import type { Config } from './config/config.js';
import { createProxyDataPlane } from './dataplane/proxy/proxy-server.js';
import type { ToPrimary, ToWorker } from './dataplane/proxy/worker-protocol.js';
import type { Logger } from './observability/logger.js';
import { createMetrics } from './observability/metrics.js';
import { RoutingTable } from './routing/table.js';

const ACTIVITY_FLUSH_MS = 200;

export function runWorker(config: Config, log: Logger): void {
  const send = (m: ToPrimary): void => {
    if (process.connected) process.send!(m);
  };
  const metrics = createMetrics();
  let table = RoutingTable.empty({ hostRouting: config.hostRouting });
  let pending = new Map<string, number>();
  const proxy = createProxyDataPlane({
    config,
    initialTable: table,
    recordActivity: (path) => pending.set(path, Date.now()),
    metrics,
    log,
  });
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
      case 'drain':
        clearInterval(flush);
        void proxy.close(msg.ms).then(() => {
          if (pending.size > 0) send({ t: 'activity', entries: [...pending] });
          process.disconnect();
          process.exit(0);
        });
        return;
    }
    proxy.setTable(table);
    send({ t: 'applied', version: table.version });
    if (!listening) {
      listening = true;
      proxy.start().then(
        () => send({ t: 'listening' }),
        (e: unknown) => {
          log.error(`worker cannot listen: ${(e as Error).message}`);
          process.exit(1);
        },
      );
    }
  });
  send({ t: 'ready' });
  // The primary handles signals; a worker only stops when told to drain (or when orphaned).
  process.on('SIGTERM', () => {});
  process.on('SIGINT', () => {});
  process.on('disconnect', () => process.exit(0));
  process.on('uncaughtException', (e) => log.error(`Uncaught Exception: ${e.message}`, { stack: e.stack }));
}
