// The primary's per-route stats loop: recorders -> aggregate -> subscribers, pruned by the table,
// and the store's activity read only while someone subscribes.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRouteStatsLoop } from '../../src/observability/route-stats-loop.js';
import { RouteStatsAggregate, RouteStatsRecorder, type RouteLive } from '../../src/observability/route-stats.js';
import { RoutingTable } from '../../src/routing/table.js';

const tableOf = (version: number, paths: string[]): RoutingTable =>
  RoutingTable.build({ hostRouting: false }, new Map(paths.map((p) => [p, { target: 'http://127.0.0.1:1' }])), version);

function nextTick(loop: ReturnType<typeof createRouteStatsLoop>): Promise<ReadonlyMap<string, RouteLive>> {
  // The loop's timer does not hold the process open (unref): this one does, bounded.
  const keepAlive = setTimeout(() => {}, 5000);
  return new Promise((resolve) => {
    const un = loop.subscribe((changed) => {
      un();
      clearTimeout(keepAlive);
      resolve(changed);
    });
  });
}

test('local deltas reach subscribers each tick; routes that left the table are pruned', async (t) => {
  const local = new RouteStatsRecorder();
  const aggregate = new RouteStatsAggregate();
  let storeReads = 0;
  const loop = createRouteStatsLoop({
    aggregate,
    local,
    intervalMs: 20,
    hostRouting: false,
    storeActivity: async () => (storeReads++, new Map([['/a', Date.now() + 60_000]])),
  });
  t.after(() => loop.close());
  loop.onTable({ table: tableOf(1, ['/a', '/b']), changes: null });
  loop.start();
  // Nobody subscribed: the store's activity is not read.
  await new Promise((r) => setTimeout(r, 70));
  assert.equal(storeReads, 0, 'no subscriber, no store read');

  local.record('/b', 200, 0.01, Date.now());
  let changed = await nextTick(loop);
  assert.equal(changed.get('/b')?.requests, 1, 'the recorded request is in the tick');
  assert.equal(storeReads, 1, 'read once a subscriber is there');
  changed = await nextTick(loop);
  assert.ok((loop.stats.lastActivity('/a') ?? 0) > Date.now(), "another replica's activity (from the store) is in the figures");
  assert.ok(changed.has('/a'), 'and reported once in a tick');

  loop.onTable({ table: tableOf(2, ['/a']), changes: [{ type: 'delete', path: '/b' }] });
  await nextTick(loop);
  assert.equal(loop.stats.totals.has('/b'), false, 'pruned after the table dropped it');
  assert.equal(loop.stats.live('/b').requests, 0);
});
