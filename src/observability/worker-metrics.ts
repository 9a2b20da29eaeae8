// What GET /metrics serves: this process's registry, summed with every data-plane worker's (with
// --workers N; prom-client's cluster aggregation), plus the opt-in per-route series
// (--metrics-route-labels) rendered from the route stats totals.
//
// Contract: a counter (or histogram) summed over workers never goes down while the process runs,
// though workers die and are replaced: Prometheus reads any drop as a counter reset, and rate()
// then jumps. The pool hands over a dead worker's last answer once (worker-pool.ts); its counters
// and histograms are kept here, summed, and added to every later scrape. Its gauges go with it.
// What a worker counted after the last scrape that reached it is lost with it.

import { aggregatorRegistry } from './prom.js';
import type { Metrics } from './metrics.js';
import { renderRouteMetrics, type RouteSample } from './route-stats.js';
import type { WorkerMetricsSnapshot } from '../dataplane/proxy/worker-pool.js';

export type MetricsRender = () => Promise<{ contentType: string; body: string }>;

export interface MetricsRenderOptions {
  readonly metrics: Pick<Metrics, 'registry' | 'render'>;
  /** The workers' registries as prom-client JSON (worker-pool.ts); absent without workers. */
  readonly workerMetrics?: () => Promise<WorkerMetricsSnapshot>;
  /** Per-route totals, when --metrics-route-labels is on. */
  readonly routeTotals?: ReadonlyMap<string, RouteSample>;
}

/** One metric of prom-client's JSON, as far as this module reads it. */
interface MetricJson {
  readonly type: string;
  readonly aggregator?: string;
}

/** The metrics that only count up (counters, histograms) and are summed over workers. */
function monotonic(registry: unknown): MetricJson[] {
  return (registry as MetricJson[]).filter((m) => (m.type === 'counter' || m.type === 'histogram') && (m.aggregator ?? 'sum') === 'sum');
}

/**
 * Sums `registries`' counters and histograms into one prom-client JSON registry. Synchronous (the
 * aggregated metrics' get() returns its value), so that a scrape adds what it was handed over to
 * the kept totals before any other scrape reads them.
 */
export function sumMonotonic(registries: readonly unknown[]): MetricJson[] {
  const merged = aggregatorRegistry().aggregate(registries.map(monotonic) as never);
  return merged.getMetricsAsArray().map((m) => (m as unknown as { get(): MetricJson }).get());
}

export function createMetricsRender(o: MetricsRenderOptions): MetricsRender {
  const { metrics, workerMetrics, routeTotals } = o;
  /** The counters and histograms of every worker that exited, summed. */
  let retired: MetricJson[] = [];
  const render: MetricsRender = workerMetrics
    ? async () => {
        const own = await metrics.registry.getMetricsAsJSON();
        const workers = await workerMetrics();
        if (workers.retired.length > 0) retired = sumMonotonic([retired, ...workers.retired]);
        const merged = aggregatorRegistry().aggregate([own, ...workers.live, retired] as object[]);
        return { contentType: merged.contentType, body: await merged.metrics() };
      }
    : () => metrics.render();
  if (routeTotals === undefined) return render;
  return async () => {
    const r = await render();
    return { contentType: r.contentType, body: r.body + renderRouteMetrics(routeTotals) };
  };
}
