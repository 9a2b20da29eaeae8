// sumMonotonic (worker-metrics.ts): the kept totals of dead workers are their counters and
// histograms, summed label set by label set; gauges are not kept. It must be synchronous (a scrape
// folds what it was handed before another reads the totals): prom-client's aggregated metrics'
// get() returns its value, not a Promise, which this pins against a prom-client upgrade.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counter, Gauge, Histogram, Registry } from '../../src/observability/prom.js';
import { sumMonotonic } from '../../src/observability/worker-metrics.js';

interface Json {
  name: string;
  values: { value: number; labels: Record<string, string | number>; metricName?: string }[];
}
const asJson = (ms: unknown[]): Json[] => ms as Json[];

async function workerRegistry(requests: number, open: number, durations: number[]): Promise<unknown> {
  const registry = new Registry();
  const c = new Counter({ name: 'req_total', help: 'r', labelNames: ['code'], registers: [registry] });
  const g = new Gauge({ name: 'open', help: 'o', registers: [registry] });
  const h = new Histogram({ name: 'dur_seconds', help: 'd', buckets: [0.1, 1], registers: [registry] });
  c.inc({ code: '200' }, requests);
  c.inc({ code: '404' }, 1);
  g.set(open);
  for (const d of durations) h.observe(d);
  return registry.getMetricsAsJSON();
}

test('sumMonotonic: counters and histograms summed per label set, gauges dropped, synchronous', async () => {
  const a = await workerRegistry(3, 7, [0.05, 0.5]);
  const b = await workerRegistry(4, 9, [2]);
  const kept = sumMonotonic([[], a, b]);
  for (const m of kept) assert.equal(typeof (m as { then?: unknown }).then, 'undefined', 'a plain value, not a Promise');
  assert.deepEqual(asJson(kept).map((m) => m.name).sort(), ['dur_seconds', 'req_total']);
  // Folding the kept totals again with a third worker's: what a later death adds.
  const c = await workerRegistry(1, 1, [0.05]);
  const again = sumMonotonic([kept, c]);
  const get = (name: string): Json['values'] => asJson(again).find((m) => m.name === name)!.values;
  const reqs = Object.fromEntries(get('req_total').map((v) => [String(v.labels.code), v.value]));
  assert.deepEqual(reqs, { '200': 8, '404': 3 });
  const dur = get('dur_seconds');
  const bucket = (le: number | string): number => dur.find((v) => v.metricName === 'dur_seconds_bucket' && v.labels.le === le)!.value;
  assert.equal(bucket(0.1), 2);
  assert.equal(bucket(1), 3);
  assert.equal(bucket('+Inf'), 4);
  assert.equal(dur.find((v) => v.metricName === 'dur_seconds_count')!.value, 4);
  assert.ok(Math.abs(dur.find((v) => v.metricName === 'dur_seconds_sum')!.value - 2.6) < 1e-9);
});
