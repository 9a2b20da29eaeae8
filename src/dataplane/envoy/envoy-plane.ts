// The Envoy "data plane" as the route watcher sees it (a TableListener): takes routing tables,
// turns each into a snapshot (translate -> encode) and hands it to the ADS server. Bursts of table
// versions are coalesced into one snapshot per event-loop turn. A snapshot that fails to build is
// logged and the last good one stays served. Created before the watcher starts; the ADS server is
// built at start() from the newest table, and status() says `{starting: true}` until then.

import type { Config, XdsConfig } from '../../config/config.js';
import type { TableListener } from '../../control/table-listener.js';
import type { Logger } from '../../observability/logger.js';
import type { Metrics } from '../../observability/metrics.js';
import type { RoutingTable } from '../../routing/table.js';
import { SHORT } from './protos.js';
import { createSnapshotBuilder, type Snapshot } from './snapshot.js';
import type { TranslateOptions } from './translate.js';
import { createXdsServer, type XdsServer } from './xds-server.js';

export interface EnvoyPlane extends TableListener {
  start(): Promise<void>;
  close(): Promise<void>;
  status(): unknown;
  port(): number | undefined;
  /**
   * A reload changed --timeout or --proxy-timeout: the current table is translated again with them
   * (new resource versions, pushed to every client) unless they are what is served already.
   */
  applySettings(config: Pick<Config, 'prependPath' | 'includePrefix' | 'hostRouting' | 'proxyTimeout' | 'timeout'>): void;
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
  /** Served until the first table arrives (the empty table: the watcher delivers one on start). */
  initialTable: RoutingTable;
  log: Logger;
  metrics: Metrics;
  identifier: string;
}): EnvoyPlane {
  const { log, metrics } = opts;
  let tOpts = translateOptions(opts.config, opts.xds);
  let reported = new Set<string>();
  let builder = createSnapshotBuilder(tOpts);
  /** The newest table (built or pending): what a reload translates again. */
  let latest = opts.initialTable;

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

  const createServer = (initial: Snapshot): XdsServer =>
    createXdsServer({
      host: opts.xds.host,
      port: opts.xds.port,
      tls: opts.xds.tls,
      initial,
      log,
      identifier: opts.identifier,
      metrics: {
        push: (t) => metrics.xdsPushes.inc({ type: SHORT[t] }),
        ack: (t) => metrics.xdsAcks.inc({ type: SHORT[t] }),
        nack: (t) => metrics.xdsNacks.inc({ type: SHORT[t] }),
        clients: (n) => metrics.xdsClients.set(n),
      },
    });
  let server: XdsServer | undefined;
  /** The newest table not yet built into a snapshot. */
  let pending: RoutingTable | undefined = opts.initialTable;
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    const table = pending;
    if (!table || !server) return;
    pending = undefined;
    try {
      server.setSnapshot(build(table));
    } catch (e) {
      log.error(`xDS: could not build a snapshot for table version ${table.version}; still serving the previous one: ${(e as Error).message}`);
    }
  };

  return {
    name: 'envoy',
    async start() {
      const table = pending ?? opts.initialTable;
      pending = undefined;
      server = createServer(build(table));
      await server.start();
      log.info(`xDS control plane (ADS, CDS/EDS/LDS/RDS v3) at ${opts.xds.tls ? 'grpcs' : 'grpc'}://${opts.xds.host}:${server.port()}`);
    },
    close: async () => server?.close(),
    onTable({ table }) {
      pending = table;
      latest = table;
      if (server && !scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    applySettings(config) {
      const next = translateOptions(config, opts.xds);
      if (next.proxyTimeoutMs === tOpts.proxyTimeoutMs && next.streamIdleTimeoutMs === tOpts.streamIdleTimeoutMs) return;
      tOpts = next;
      builder = createSnapshotBuilder(tOpts);
      pending = latest;
      if (server && !scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    status() {
      if (!server) return { starting: true };
      const snap = server.snapshot();
      return {
        tableVersion: snap.tableVersion,
        versions: Object.fromEntries([...snap.types].map(([t, ts]) => [SHORT[t], ts.version])),
        resources: Object.fromEntries([...snap.types].map(([t, ts]) => [SHORT[t], ts.resources.size])),
        untranslatable: snap.untranslatable,
        clients: server.clients(),
      };
    },
    port: () => server?.port(),
  };
}
