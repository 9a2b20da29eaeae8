// Per-route statistics: the recorder's deltas, the aggregate's totals and smoothed rates, pruning,
// and the opt-in Prometheus rendering (label escaping, histogram shape).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RATE_TAU_S, RouteStatsAggregate, RouteStatsRecorder, renderRouteMetrics, sampleView } from '../../src/observability/route-stats.js';

test('recorder hands over deltas; aggregate keeps totals across deltas', () => {
  const rec = new RouteStatsRecorder();
  const agg = new RouteStatsAggregate();
  rec.record('/a', 200, 0.002, 1000);
  rec.record('/a', 503, 0.2, 2000);
  rec.record('/b', 404, 3, 3000);
  const d1 = rec.take();
  assert.equal(d1.length, 2);
  assert.deepEqual(rec.take(), [], 'a second take has nothing new');
  agg.add(d1);
  rec.record('/a', 200, 0.01, 4000);
  agg.add(rec.take());
  const a = sampleView(agg.totals.get('/a')!);
  assert.equal(a.requests, 3);
  assert.equal(a.byClass(2), 2, 'two 2xx');
  assert.equal(a.byClass(4), 0);
  assert.equal(a.byClass(5), 1, 'one 5xx');
  assert.ok(Math.abs(a.durationSum - 0.212) < 1e-9);
  assert.deepEqual(a.buckets, [1, 2, 2, 3, 3, 3], 'cumulative buckets 5ms 25ms 100ms 500ms 2.5s +Inf');
  assert.equal(a.lastActivity, 4000);
  const b = sampleView(agg.totals.get('/b')!);
  assert.deepEqual([b.requests, b.byClass(4), b.lastActivity], [1, 1, 0], 'a 404: counted, no activity');
  assert.equal(agg.lastActivity('/a'), 4000, 'newest successful request');
  assert.equal(agg.lastActivity('/b'), undefined, 'a 404 is not activity');
  agg.add([['/x', [1, 2, 3]] as [string, number[]]]); // the wrong length, as a confused worker might send
  assert.equal(agg.totals.has('/x'), false, 'malformed samples are ignored');
});

test('smoothed rates follow traffic, then decay and report idle once', () => {
  const rec = new RouteStatsRecorder();
  const agg = new RouteStatsAggregate();
  // 10 s at 50 req/s with 5 errors/s and 20 ms each.
  for (let s = 0; s < 10; s++) {
    for (let i = 0; i < 50; i++) rec.record('/hot', i < 5 ? 500 : 200, 0.02, Date.now());
    agg.add(rec.take());
    agg.tick(1);
  }
  const live = agg.live('/hot');
  const expected = 50 * (1 - Math.exp(-10 / RATE_TAU_S));
  assert.ok(Math.abs(live.rate - expected) < 0.01, `rate ${live.rate} ~ ${expected}`);
  assert.ok(Math.abs(live.errorRate - expected / 10) < 0.01, `errors ${live.errorRate}`);
  assert.equal(live.latencyMs, 20);
  assert.equal(live.requests, 500);
  assert.equal(live.errors, 50);
  const totals = agg.totalRates();
  assert.equal(totals.rate, live.rate);
  // Idle: the rate decays; the route is reported once more (zeros) when it drops out.
  let ticks = 0;
  let last;
  do {
    last = agg.tick(1);
    ticks++;
  } while (last.has('/hot') && last.get('/hot')!.rate > 0 && ticks < 100);
  assert.ok(ticks > 10 && ticks < 60, `went idle after ${ticks} ticks`);
  assert.deepEqual(last.get('/hot'), { rate: 0, errorRate: 0, latencyMs: 0, requests: 500, errors: 50 });
  assert.equal(agg.tick(1).size, 0, 'an idle table costs nothing per tick');
});

test('prune drops routes that left the table; noteActivity reports store activity once', () => {
  const agg = new RouteStatsAggregate();
  const rec = new RouteStatsRecorder();
  rec.record('/keep', 200, 0.001, 10);
  rec.record('/gone', 200, 0.001, 10);
  agg.add(rec.take());
  agg.tick(1);
  agg.prune((p) => p === '/keep');
  assert.deepEqual([...agg.totals.keys()], ['/keep']);
  assert.equal(agg.tick(1).has('/gone'), false);
  agg.noteActivity('/other', 5000);
  assert.equal(agg.lastActivity('/other'), 5000);
  assert.equal(agg.tick(1).has('/other'), true, 'reported in the next tick');
  assert.equal(agg.tick(1).has('/other'), false, 'once');
  agg.noteActivity('/other', 4000);
  assert.equal(agg.lastActivity('/other'), 5000, 'older values never win');
});

test('per-route Prometheus series: escaped labels, cumulative buckets, count = +Inf', () => {
  const rec = new RouteStatsRecorder();
  const agg = new RouteStatsAggregate();
  rec.record('/user/"quoted"\\back\nline', 200, 0.003, 1);
  rec.record('/user/"quoted"\\back\nline', 502, 1, 1);
  agg.add(rec.take());
  const text = renderRouteMetrics(agg.totals);
  const label = 'route="/user/\\"quoted\\"\\\\back\\nline"';
  assert.match(text, /# TYPE switchyard_route_requests_total counter/);
  assert.ok(text.includes(`switchyard_route_requests_total{${label},code="2xx"} 1`), text);
  assert.ok(text.includes(`switchyard_route_requests_total{${label},code="5xx"} 1`));
  assert.ok(!text.includes('code="4xx"'), 'zero series are left out');
  assert.ok(text.includes(`switchyard_route_request_duration_seconds_bucket{${label},le="0.005"} 1`));
  assert.ok(text.includes(`switchyard_route_request_duration_seconds_bucket{${label},le="2.5"} 2`));
  assert.ok(text.includes(`switchyard_route_request_duration_seconds_bucket{${label},le="+Inf"} 2`));
  assert.ok(text.includes(`switchyard_route_request_duration_seconds_count{${label}} 2`));
  for (const line of text.trim().split('\n')) assert.ok(!line.includes('\n'), 'one series per line');
});
