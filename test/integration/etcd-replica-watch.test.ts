// The etcd replica registry's watch (what ?wait=all and the dashboard's replica panel wait on),
// against a real etcd: two stores on one prefix see each other's reports as they happen.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { createLogger } from '../../src/observability/logger.js';
import { createEtcdStore } from '../../src/store/etcd-store.js';
import { waitForReplicas } from '../../src/store/replica-registry.js';
import type { ReplicaInfo } from '../../src/store/route-store.js';
import { startEtcd } from '../helpers/etcd.js';
import { waitFor } from '../helpers/servers.js';

const silent = createLogger({ level: 'error', write: () => {} });

test('etcd: watchReplicas delivers each report and a replica leaving; waitForReplicas wakes on the report', { timeout: 60_000 }, async (t) => {
  const etcd = await startEtcd(t, 1);
  const prefix = `/rw-${randomUUID()}/`;
  const make = (id: string) => createEtcdStore({ endpoints: etcd.endpoints.split(','), prefix, log: silent, replicaId: id });
  const a = make('a');
  const b = make('b');
  await a.start();
  await b.start();
  t.after(() => a.close());
  let bClosed = false;
  t.after(() => (bClosed ? undefined : b.close()));

  const rev = await a.put('/x', { target: 'http://127.0.0.1:1' });
  a.reportApplied(rev);
  b.reportApplied(rev - 1);
  let latest: readonly ReplicaInfo[] = [];
  const un = a.watchReplicas((list) => (latest = list));
  await waitFor(() => latest.length === 2 && latest.every((r) => r.revision >= rev - 1), 10_000, 'both replicas listed');
  assert.deepEqual(latest.map((r) => r.id), ['a', 'b']);

  // b lags: the wait ends on b's report, well before its timeout.
  const t0 = performance.now();
  const waiting = waitForReplicas(a, rev, 20_000);
  setTimeout(() => b.reportApplied(rev), 100);
  assert.deepEqual(await waiting, []);
  assert.ok(performance.now() - t0 < 10_000, `woken by the report (${Math.round(performance.now() - t0)} ms)`);

  // A lagging replica is named at the timeout.
  assert.deepEqual(await waitForReplicas(a, rev + 1000, 200), ['a', 'b']);

  // b closes (its lease is revoked): it leaves the list.
  bClosed = true;
  await b.close();
  await waitFor(() => latest.length === 1 && latest[0]!.id === 'a', 15_000, 'b gone from the registry');
  un();
});
