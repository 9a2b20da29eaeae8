// The Envoy "data plane" as the route watcher sees it: takes routing tables, turns each into a
// snapshot (translate -> encode) and hands it to the ADS server. Bursts of table versions are
// coalesced into one snapshot per event-loop turn. A snapshot that fails to build is logged and
// the last good one stays served.

import type { Config, XdsConfig } from '../../config/config.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import type { RoutingTable } from '../../routing/table.js';
import { SHORT } from './protos.js';
import { createSnapshotBuilder, type Snapshot } from './snapshot.js';
import type { TranslateOptions } from './translate.js';
import { createXdsServer, type XdsServer } from './xds-server.js';

export interface EnvoyPlane {
  start(): Promise<void>;
  close(): Promise<void>;
  setTable(table: RoutingTable): void;
  status(): unknown;
  port(): number | undefined;
}


export function translateOptions(config: Pick<Config, 'prependPath' | 'includePrefix' | 'hostRouting' | 'proxyTimeout' | 'timeout'>, x: XdsConfig): TranslateOptions {
  return {
    prependPath: config.prependPath,
    includePrefix: config.includePrefix,
    hostRouting: config.hostRouting,
    listenerAddress: x.listenerAddress,
    listenerPort: x.listenerPort,
    grpcListenerNames: x.grpcListenerNames,
    upstreamCaFile: x.upstreamCaFile,
    proxyTimeoutMs: config.proxyTimeout,
    streamIdleTimeoutMs: config.timeout,
    accessLogPath: x.accessLogPath,
  };
}

export function createEnvoyPlane(opts: {
  config: Config;
  xds: XdsConfig;
  initialTable: RoutingTable;
  log: Logger;
  metrics: Metrics;
  identifier: string;
}): EnvoyPlane {
  const { log, metrics } = opts;
  const tOpts = translateOptions(opts.config, opts.xds);
  let reported = new Set<string>();
  const builder = createSnapshotBuilder(tOpts);

  const build = (table: RoutingTable): Snapshot => {
    const snap = builder(table);
    metrics.xdsSnapshots.inc();
    metrics.xdsUntranslatable.set(snap.untranslatable.length);
    const now = new Set<string>();
    for (const u of snap.untranslatable) {
      now.add(u.path);
      if (!reported.has(u.path)) log.warn(`xDS: route ${u.path} -> ${u.target} left out of the Envoy configuration: ${u.reason}`);
    }
    reported = now;
    return snap;
  };

  const server: XdsServer = createXdsServer({
    host: opts.xds.host,
    port: opts.xds.port,
    tls: opts.xds.tls,
    initial: build(opts.initialTable),
    log,
    identifier: opts.identifier,
    metrics: {
      push: (t) => metrics.xdsPushes.inc({ type: SHORT[t] }),
      ack: (t) => metrics.xdsAcks.inc({ type: SHORT[t] }),
      nack: (t) => metrics.xdsNacks.inc({ type: SHORT[t] }),
      clients: (n) => metrics.xdsClients.set(n),
    },
  });

  let pending: RoutingTable | undefined;
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    const table = pending;
    pending = undefined;
    if (!table) return;
    try {
      server.setSnapshot(build(table));
    } catch (e) {
      log.error(`xDS: could not build a snapshot for table version ${table.version}; still serving the previous one: ${(e as Error).message}`);
    }
  };

  return {
    async start() {
      await server.start();
      log.info(`xDS control plane (ADS, CDS/EDS/LDS/RDS v3) at ${opts.xds.tls ? 'grpcs' : 'grpc'}://${opts.xds.host}:${server.port()}`);
    },
    close: () => server.close(),
    setTable(table) {
      pending = table;
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    status() {
      const snap = server.snapshot();
      return {
        tableVersion: snap.tableVersion,
        versions: Object.fromEntries([...snap.types].map(([t, ts]) => [SHORT[t], ts.version])),
        resources: Object.fromEntries([...snap.types].map(([t, ts]) => [SHORT[t], ts.resources.size])),
        untranslatable: snap.untranslatable,
        clients: server.clients(),
      };
    },
    port: () => server.port(),
  };
}
