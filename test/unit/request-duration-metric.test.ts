// switchyard_request_duration_seconds is bumped as plain numbers on the hot path (DurationCounts)
// and shaped like a prom-client Histogram at scrape time. Differential test: the same observations
// fed to a real prom-client Histogram with the same name, buckets and label give the same text
// exposition, the same JSON (what a worker sends the primary), and the same merge across workers
// (AggregatorRegistry, what the primary serves with --workers N).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMetrics, REQUEST_DURATION_BUCKETS, type Metrics } from '../../src/observability/metrics.js';
import { aggregatorRegistry, Histogram, Registry } from '../../src/observability/prom.js';
import { rng as seeded } from '../helpers/rng.js';

const NAME = 'switchyard_request_duration_seconds';

function reference(): { registry: Registry; h: Histogram<'kind'> } {
  const registry = new Registry();
  const h = new Histogram({
    name: NAME,
    help: 'Time from request received to response finished (web) or tunnel established (ws)',
    labelNames: ['kind'],
    buckets: [...REQUEST_DURATION_BUCKETS],
    registers: [registry],
  });
  return { registry, h };
}

/** Only our metric's lines (createMetrics registers many others). */
function linesOf(text: string): string {
  return text
    .split('\n')
    .filter((l) => l.includes(NAME + ' ') || l.includes(NAME + '_'))
    .join('\n');
}

/** Our metric's JSON, without prom-client's empty exemplar fields (null or undefined: it never has exemplars here). */
async function jsonOf(registry: Registry): Promise<unknown> {
  const all = (await registry.getMetricsAsJSON()) as unknown as Array<{ name: string; values: Array<Record<string, unknown>> }>;
  const m = all.find((x) => x.name === NAME);
  return m && { ...m, values: m.values.map(({ exemplar, ...v }) => (exemplar == null ? v : { exemplar, ...v })) };
}

function feed(m: Metrics, ref: Histogram<'kind'>, rng: () => number, n: number, kinds: ReadonlyArray<'web' | 'ws'>): void {
  for (let i = 0; i < n; i++) {
    const kind = kinds[Math.floor(rng() * kinds.length)]!;
    // Spread over every bucket, exact bounds and beyond the last one (+Inf only).
    const r = rng();
    const v = r < 0.2 ? REQUEST_DURATION_BUCKETS[Math.floor(rng() * REQUEST_DURATION_BUCKETS.length)]! : r < 0.25 ? 10 + rng() * 100 : Math.pow(10, -5 + rng() * 6);
    (kind === 'web' ? m.stats.webDurations : m.stats.wsDurations).observe(v);
    ref.labels(kind).observe(v);
  }
}

test('request duration: no series before the first observation, as prom-client', async () => {
  const m = createMetrics({ processWide: false, deferDefaultMetrics: true });
  const { registry } = reference();
  assert.equal(linesOf(await m.registry.metrics()), linesOf(await registry.metrics()));
  assert.deepEqual(await jsonOf(m.registry), await jsonOf(registry));
  m.registry.clear();
});

test('request duration: text, JSON and the cross-worker merge equal a prom-client Histogram fed the same values', async () => {
  const rng = seeded(0x5eed);
  const workers = [createMetrics({ processWide: false, deferDefaultMetrics: true }), createMetrics({ processWide: false, deferDefaultMetrics: true })];
  const refs = [reference(), reference()];
  feed(workers[0]!, refs[0]!.h, rng, 5000, ['web', 'ws']);
  feed(workers[1]!, refs[1]!.h, rng, 3000, ['web']); // one worker never saw a websocket

  for (let i = 0; i < 2; i++) {
    const ours = linesOf(await workers[i]!.registry.metrics());
    assert.equal(ours, linesOf(await refs[i]!.registry.metrics()));
    assert.match(ours, new RegExp(`^${NAME}_bucket\\{le="\\+Inf",kind="web"\\} `, 'm'));
    assert.deepEqual(await jsonOf(workers[i]!.registry), await jsonOf(refs[i]!.registry));
  }
  const Aggregator = aggregatorRegistry();
  const merge = async (regs: Registry[]): Promise<string> => {
    const all = await Promise.all(regs.map(async (r) => (await r.getMetricsAsJSON()).filter((x) => x.name === NAME)));
    return linesOf(await Aggregator.aggregate(all).metrics());
  };
  const merged = await merge(workers.map((w) => w.registry));
  assert.equal(merged, await merge(refs.map((r) => r.registry)));
  assert.match(merged, new RegExp(`^${NAME}_count\\{kind="web"\\} \\d+$`, 'm'));
  for (const w of workers) w.registry.clear();
});
