// Every Prometheus metric Switchyard exports, defined in one place (docs/metrics.md lists them).
//
// Contract: the data path only bumps plain numbers in `ProxyStats` (no label hashing per request);
// prom-client reads them at scrape time through `collect`. Names are switchyard_<noun>_<unit>.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from './prom.js';

/** Upper bounds (seconds) of switchyard_request_duration_seconds; +Inf is implicit. */
export const REQUEST_DURATION_BUCKETS: readonly number[] = Object.freeze([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);

/**
 * One histogram series as plain numbers: what the hot path bumps per request instead of
 * prom-client's Histogram.observe (which validates and hashes its labels on every call: ~5% of
 * the fast path's user time in bench/perf-profile.sh). Read at scrape time by the metric below.
 */
export class DurationCounts {
  /** counts[i]: observations in (REQUEST_DURATION_BUCKETS[i-1], REQUEST_DURATION_BUCKETS[i]]; not cumulative. */
  readonly counts = new Float64Array(REQUEST_DURATION_BUCKETS.length);
  sum = 0;
  count = 0;

  observe(seconds: number): void {
    this.sum += seconds;
    this.count++;
    const b = REQUEST_DURATION_BUCKETS;
    for (let i = 0; i < b.length; i++) {
      if (seconds <= b[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }
}

/** Counters the data plane bumps on the hot path. */
export class ProxyStats {
  /** [kind][status] -> count, kind 0 = web, 1 = ws. */
  readonly responses: [Map<number, number>, Map<number, number>] = [new Map(), new Map()];
  activeConnections = 0;
  activeWebsockets = 0;
  /** "kind code" -> count (see UpstreamFailureKind in dataplane/proxy/forward.ts). */
  upstreamErrors = new Map<string, number>();
  /** timeout kind -> count (request_head, request_body, client_idle, keep_alive, upstream_connect, upstream). */
  timeouts = new Map<string, number>();
  /** Exceptions caught by the data plane's last-resort handlers (answered 500 or cut). */
  internalErrors = 0;
  badRequests = 0;
  /** Request durations (switchyard_request_duration_seconds), kind web and ws. */
  readonly webDurations = new DurationCounts();
  readonly wsDurations = new DurationCounts();

  countResponse(kind: 0 | 1, status: number): void {
    const m = this.responses[kind];
    m.set(status, (m.get(status) ?? 0) + 1);
  }

  /** kind: connect | reset | timeout | invalid | truncated | other; code: the underlying error code. */
  countUpstreamError(kind: string, code: string): void {
    const key = kind + ' ' + code;
    this.upstreamErrors.set(key, (this.upstreamErrors.get(key) ?? 0) + 1);
  }

  countTimeout(kind: string): void {
    this.timeouts.set(kind, (this.timeouts.get(kind) ?? 0) + 1);
  }
}

export interface Metrics {
  readonly registry: Registry;
  readonly stats: ProxyStats;
  readonly apiRequests: Counter<'method' | 'code'>;
  readonly routeChanges: Counter<'type'>;
  readonly invalidRoutes: Counter;
  readonly tableSize: Gauge;
  readonly tableVersion: Gauge;
  readonly storeErrors: Counter<'op'>;
  readonly xdsPushes: Counter<'type'>;
  readonly xdsAcks: Counter<'type'>;
  readonly xdsNacks: Counter<'type'>;
  readonly xdsClients: Gauge;
  readonly xdsUntranslatable: Gauge;
  readonly xdsSnapshots: Counter;
  /** API route write started -> live on every data plane of this replica (store sync lag as seen by writers). */
  readonly routePropagation: Histogram;
  /** ACME orders this replica ran, by result (success, failure). */
  readonly acmeOrders: Counter<'result'>;
  /** Where the ACME gauges read from: the certificates this replica serves (set once, with --acme-*). */
  setAcmeStatus(fn: () => ReadonlyMap<string, { readonly notAfter: number }>): void;
  /** Where the store gauges read from (set once by the composition root). */
  setStoreHealth(fn: () => { connected: boolean; revision: number; errors?: Readonly<Record<string, number>> }): void;
  render(): Promise<{ contentType: string; body: string }>;
  /** Registers the default metrics (prom.ts) if createMetrics deferred them; idempotent. */
  startDefaultMetrics(): void;
}

/**
 * `processWide: false`: a data-plane worker thread, whose process the primary reports (prom.ts).
 * `deferDefaultMetrics`: the default metrics (event loop, heap, GC...) are registered only by
 * startDefaultMetrics() or the first render(): a data-plane worker registers them once it listens,
 * not before (loading and starting them took ~5-10 ms of a worker's start, before its port opened).
 */
export function createMetrics(o: { processWide?: boolean; deferDefaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  let defaults = false;
  const startDefaultMetrics = (): void => {
    if (defaults) return;
    defaults = true;
    collectDefaultMetrics({ register: registry, prefix: 'switchyard_', processWide: o.processWide !== false });
  };
  if (o.deferDefaultMetrics !== true) startDefaultMetrics();
  const stats = new ProxyStats();
  const kinds = ['web', 'ws'] as const;

  new Counter({
    name: 'switchyard_requests_total',
    help: 'Proxied requests by kind (web, ws) and response status code',
    labelNames: ['kind', 'code'],
    registers: [registry],
    collect() {
      this.reset();
      stats.responses.forEach((m, i) => {
        for (const [code, n] of m) this.inc({ kind: kinds[i], code: String(code) }, n);
      });
    },
  });
  new Gauge({
    name: 'switchyard_active_connections',
    help: 'Client connections open on the public port',
    registers: [registry],
    collect() {
      this.set(stats.activeConnections);
    },
  });
  new Gauge({
    name: 'switchyard_active_websockets',
    help: 'Websocket tunnels currently open',
    registers: [registry],
    collect() {
      this.set(stats.activeWebsockets);
    },
  });
  new Counter({
    name: 'switchyard_upstream_errors_total',
    help: 'Failed upstream exchanges, by kind (connect, reset, timeout, invalid, truncated, other) and error code',
    labelNames: ['kind', 'code'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [key, n] of stats.upstreamErrors) {
        const sp = key.indexOf(' ');
        this.inc({ kind: key.slice(0, sp), code: key.slice(sp + 1) }, n);
      }
    },
  });
  new Counter({
    name: 'switchyard_timeouts_total',
    help: 'Data-plane timeouts that fired, by kind (request_head, request_body, client_idle, keep_alive, upstream_connect, upstream)',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [kind, n] of stats.timeouts) this.inc({ kind }, n);
    },
  });
  new Counter({
    name: 'switchyard_internal_errors_total',
    help: 'Unexpected exceptions caught by the data plane (answered 500 or the connection cut); each is a bug, logged with its stack',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(stats.internalErrors);
    },
  });
  new Counter({
    name: 'switchyard_bad_requests_total',
    help: 'Requests refused before routing (request rules: 400/501/505; HTTP parser: 400/431/413/408)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(stats.badRequests);
    },
  });

  let storeHealth: (() => { connected: boolean; revision: number; errors?: Readonly<Record<string, number>> }) | undefined;
  registry.registerMetric(
    countedHistogram('switchyard_request_duration_seconds', 'Time from request received to response finished (web) or tunnel established (ws)', [
      ['web', stats.webDurations],
      ['ws', stats.wsDurations],
    ]) as unknown as Histogram,
  );
  const apiRequests = new Counter({
    name: 'switchyard_api_requests_total',
    help: 'REST API requests by method and status code',
    labelNames: ['method', 'code'],
    registers: [registry],
  });
  const routeChanges = new Counter({
    name: 'switchyard_route_changes_total',
    help: 'Route changes made through the REST API, by type (put, delete)',
    labelNames: ['type'],
    registers: [registry],
  });
  const invalidRoutes = new Counter({
    name: 'switchyard_invalid_routes_total',
    help: 'Routes found in the store that could not be used (bad key or target, data beyond the size/depth bounds) and were skipped',
    registers: [registry],
  });
  const tableSize = new Gauge({
    name: 'switchyard_routes',
    help: 'Routes in the live routing table',
    registers: [registry],
  });
  const tableVersion = new Gauge({
    name: 'switchyard_table_version',
    help: 'Version (store revision) of the live routing table',
    registers: [registry],
  });
  // Counted by the store itself (health().errors, cumulative by op); brought up to date on scrape.
  const storeErrorsSeen = new Map<string, number>();
  const storeErrors = new Counter({
    name: 'switchyard_store_errors_total',
    help: 'Failed store operations, by operation (read, write, delete, activity, load)',
    labelNames: ['op'],
    registers: [registry],
    collect() {
      const errors = storeHealth?.().errors;
      if (!errors) return;
      for (const [op, n] of Object.entries(errors)) {
        const delta = n - (storeErrorsSeen.get(op) ?? 0);
        if (delta > 0) this.inc({ op }, delta);
        storeErrorsSeen.set(op, n);
      }
    },
  });

  const xdsType = { labelNames: ['type'] as const, registers: [registry] };
  const xdsPushes = new Counter({ name: 'switchyard_xds_pushes_total', help: 'xDS responses sent, by resource type (cds, eds, lds, rds)', ...xdsType });
  const xdsAcks = new Counter({ name: 'switchyard_xds_acks_total', help: 'xDS responses acknowledged by clients, by type', ...xdsType });
  const xdsNacks = new Counter({ name: 'switchyard_xds_nacks_total', help: 'xDS responses rejected (NACKed) by clients, by type', ...xdsType });
  const xdsClients = new Gauge({ name: 'switchyard_xds_clients', help: 'Connected xDS streams', registers: [registry] });
  const xdsUntranslatable = new Gauge({
    name: 'switchyard_xds_untranslatable_routes',
    help: 'Routes left out of the xDS snapshot because Envoy cannot express their target (see GET /api/xds)',
    registers: [registry],
  });
  const xdsSnapshots = new Counter({ name: 'switchyard_xds_snapshots_total', help: 'xDS snapshots built from routing table versions', registers: [registry] });

  const routePropagation = new Histogram({
    name: 'switchyard_route_propagation_seconds',
    help: 'Time from a REST API route write (POST/DELETE) reaching the store to it being live on every data plane of this replica',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [registry],
  });


  new Gauge({
    name: 'switchyard_store_connected',
    help: '1 while the route store is reachable, 0 while this replica serves its last known table',
    registers: [registry],
    collect() {
      if (storeHealth) this.set(storeHealth().connected ? 1 : 0);
    },
  });
  new Gauge({
    name: 'switchyard_store_revision',
    help: 'Latest store revision this replica has seen',
    registers: [registry],
    collect() {
      if (storeHealth) this.set(storeHealth().revision);
    },
  });

  let acmeStatus: (() => ReadonlyMap<string, { readonly notAfter: number }>) | undefined;
  const acmeOrders = new Counter({
    name: 'switchyard_acme_orders_total',
    help: 'ACME certificate orders run by this replica, by result (success, failure)',
    labelNames: ['result'],
    registers: [registry],
  });
  new Gauge({
    name: 'switchyard_acme_certificate_not_after_seconds',
    help: 'Expiry (unix time) of the certificate this replica serves, per name',
    labelNames: ['name'],
    registers: [registry],
    collect() {
      if (!acmeStatus) return;
      this.reset();
      for (const [name, c] of acmeStatus()) this.set({ name }, Math.floor(c.notAfter / 1000));
    },
  });
  new Gauge({
    name: 'switchyard_acme_certificates',
    help: 'Certificates obtained over ACME that this replica serves',
    registers: [registry],
    collect() {
      if (acmeStatus) this.set(acmeStatus().size);
    },
  });

  return {
    acmeOrders,
    setAcmeStatus(fn) {
      acmeStatus = fn;
    },
    setStoreHealth(fn) {
      storeHealth = fn;
    },
    registry,
    stats,
    apiRequests,
    routeChanges,
    invalidRoutes,
    tableSize,
    tableVersion,
    storeErrors,
    xdsPushes,
    xdsAcks,
    xdsNacks,
    xdsClients,
    xdsUntranslatable,
    xdsSnapshots,
    routePropagation,
    async render() {
      startDefaultMetrics();
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
    startDefaultMetrics,
  };
}

/** One value of a metric as prom-client's get() gives it (what Registry and AggregatorRegistry read). */
interface MetricValue {
  readonly metricName: string;
  readonly labels: Record<string, string | number>;
  readonly value: number;
}

/**
 * A histogram with one `kind` label whose series are DurationCounts, in prom-client's metric
 * shape (name, help, type, get(), reset()): rendered by the Registry and merged across workers by
 * AggregatorRegistry (summed) exactly as a prom-client Histogram with the same buckets would be,
 * label order included (`le` first). A kind appears once it has an observation, as prom-client's
 * series appear on their first observe().
 */
function countedHistogram(name: string, help: string, series: ReadonlyArray<readonly [string, DurationCounts]>) {
  return {
    name,
    help,
    type: 'histogram' as const,
    aggregator: 'sum' as const,
    get(): Promise<{ name: string; help: string; type: 'histogram'; values: MetricValue[]; aggregator: 'sum' }> {
      const values: MetricValue[] = [];
      for (const [kind, d] of series) {
        if (d.count === 0) continue;
        let acc = 0;
        REQUEST_DURATION_BUCKETS.forEach((le, i) => {
          acc += d.counts[i]!;
          values.push({ metricName: `${name}_bucket`, labels: { le, kind }, value: acc });
        });
        values.push({ metricName: `${name}_bucket`, labels: { le: '+Inf', kind }, value: d.count });
        values.push({ metricName: `${name}_sum`, labels: { kind }, value: d.sum });
        values.push({ metricName: `${name}_count`, labels: { kind }, value: d.count });
      }
      return Promise.resolve({ name, help, type: 'histogram', values, aggregator: 'sum' });
    },
    /** Registry.resetMetrics(): the counts are the data plane's, kept (as the counters' collect() re-reads them). */
    reset(): void {},
  };
}
