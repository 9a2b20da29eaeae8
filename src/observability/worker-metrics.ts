// What GET /metrics serves: this process's registry, summed with every data-plane worker's (with
// --workers N; prom-client's cluster aggregation), plus the opt-in per-route series
// (--metrics-route-labels) rendered from the route stats totals.

import { aggregatorRegistry } from './prom.js';
import type { Metrics } from './metrics.js';
import { renderRouteMetrics, type RouteSample } from './route-stats.js';

export type MetricsRender = () => Promise<{ contentType: string; body: string }>;

export interface MetricsRenderOptions {
  readonly metrics: Pick<Metrics, 'registry' | 'render'>;
  /** Each worker's registry as prom-client JSON (worker-pool.ts); absent without workers. */
  readonly workerMetrics?: () => Promise<unknown[]>;
  /** Per-route totals, when --metrics-route-labels is on. */
  readonly routeTotals?: ReadonlyMap<string, RouteSample>;
}

export function createMetricsRender(o: MetricsRenderOptions): MetricsRender {
  const { metrics, workerMetrics, routeTotals } = o;
  const render: MetricsRender = workerMetrics
    ? async () => {
        const all = [await metrics.registry.getMetricsAsJSON(), ...(await workerMetrics())];
        const merged = aggregatorRegistry().aggregate(all as object[]);
        return { contentType: merged.contentType, body: await merged.metrics() };
      }
    : () => metrics.render();
  if (routeTotals === undefined) return render;
  return async () => {
    const r = await render();
    return { contentType: r.contentType, body: r.body + renderRouteMetrics(routeTotals) };
  };
}
