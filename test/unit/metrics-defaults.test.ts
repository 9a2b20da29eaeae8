// Default metrics (event loop, heap, GC: observability/prom.ts) registered at once, or deferred
// until startDefaultMetrics() / the first render() (what a data-plane worker does: it registers
// them once it listens, not on the way to its port opening).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMetrics } from '../../src/observability/metrics.js';

const LAG = 'switchyard_nodejs_eventloop_lag_seconds';

test('default metrics: registered at once unless deferred; startDefaultMetrics() registers them once', async () => {
  const now = createMetrics({ processWide: false });
  assert.ok(now.registry.getSingleMetric(LAG), 'registered at creation');
  now.startDefaultMetrics(); // idempotent: no duplicate registration (prom-client would throw)

  const later = createMetrics({ processWide: false, deferDefaultMetrics: true });
  assert.equal(later.registry.getSingleMetric(LAG), undefined, 'deferred');
  assert.ok(later.registry.getSingleMetric('switchyard_requests_total'), "the data plane's own metrics are there from the start");
  later.startDefaultMetrics();
  later.startDefaultMetrics();
  assert.ok(later.registry.getSingleMetric(LAG));

  const rendered = createMetrics({ processWide: false, deferDefaultMetrics: true });
  assert.match((await rendered.render()).body, new RegExp(`^${LAG} `, 'm'), 'the first render registers them');
  for (const m of [now, later, rendered]) m.registry.clear(); // stops nothing (the lag monitor is unref'd), keeps the test tidy
});
