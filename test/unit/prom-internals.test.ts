// src/observability/prom.ts loads prom-client file by file (not its index: see there why) and
// registers its default metrics itself. That reaches into prom-client's file layout, which is not
// its documented API (hence the exact version in package.json): this test fails if an upgrade
// moves those files or changes the set of default metrics.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as promClient from 'prom-client';
import { Counter, Gauge, Histogram, Registry, aggregatorRegistry, collectDefaultMetrics } from '../../src/observability/prom.js';

test('prom.ts exports the same classes as prom-client\'s index', () => {
  assert.equal(Registry, promClient.Registry);
  assert.equal(Counter, promClient.Counter);
  assert.equal(Gauge, promClient.Gauge);
  assert.equal(Histogram, promClient.Histogram);
  assert.equal(aggregatorRegistry(), promClient.AggregatorRegistry);
});

test('collectDefaultMetrics registers what prom-client\'s own does: same names, types and help', async () => {
  const ours = new Registry();
  collectDefaultMetrics({ register: ours, prefix: 'x_' });
  const theirs = new promClient.Registry();
  promClient.collectDefaultMetrics({ register: theirs, prefix: 'x_' });
  const shape = async (r: promClient.Registry) =>
    (await r.getMetricsAsJSON()).map((m) => ({ name: m.name, type: m.type, help: m.help })).sort((a, b) => a.name.localeCompare(b.name));
  const [a, b] = [await shape(ours), await shape(theirs)];
  assert.ok(a.length >= 20, `only ${a.length} default metrics`);
  assert.deepEqual(a, b);
  // The process CPU counters count (ours are written in prom.ts).
  const cpu = (await ours.getSingleMetric('x_process_cpu_seconds_total')!.get()).values[0]!.value;
  assert.ok(cpu > 0, `process_cpu_seconds_total ${cpu}`);
});
