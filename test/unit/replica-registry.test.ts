// The replica registry's watch and ?wait=all's wait on it (waitForReplicas), with the in-process
// registry of a memory store created with a replica id.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMemoryStore } from '../../src/store/memory-store.js';
import { ReplicaBoard, waitForReplicas } from '../../src/store/replica-registry.js';
import type { ReplicaInfo, RouteStore } from '../../src/store/route-store.js';

test('a memory store has no registry unless given a replica id (nothing to wait for)', async () => {
  const plain: RouteStore = createMemoryStore();
  assert.equal(plain.replicas, undefined);
  assert.equal(plain.watchReplicas, undefined);
  assert.deepEqual(await waitForReplicas(plain, 99, 10), []);
});

test('wait=all resolves on the report itself (a watch, not a poll), with no further registry reads', async (t) => {
  const store = createMemoryStore({ replicaId: 'self' }) as RouteStore;
  await store.start();
  t.after(() => store.close());
  store.reportApplied!(0);
  const rev = await store.put('/a', { target: 'http://127.0.0.1:1' });
  let reads = 0;
  const counted: Pick<RouteStore, 'replicas' | 'watchReplicas'> = {
    replicas: () => (reads++, store.replicas!()),
    watchReplicas: (l) => store.watchReplicas!(l),
  };
  const t0 = performance.now();
  const waiting = waitForReplicas(counted, rev, 5000);
  await new Promise((r) => setTimeout(r, 30));
  store.reportApplied!(rev);
  assert.deepEqual(await waiting, []);
  assert.ok(performance.now() - t0 < 1000, 'woken by the report, not by the timeout');
  assert.equal(reads, 1, 'one read up front; the wait itself does not read the registry');
});

test('wait=all times out naming the replicas that lag, read fresh at the deadline', async (t) => {
  const store = createMemoryStore({ replicaId: 'slow' }) as RouteStore;
  await store.start();
  t.after(() => store.close());
  store.reportApplied!(1);
  const t0 = performance.now();
  assert.deepEqual(await waitForReplicas(store, 2, 50), ['slow']);
  assert.ok(performance.now() - t0 >= 45, 'waited for the timeout');
  assert.deepEqual(await waitForReplicas(store, 1, 50), [], 'already there: no wait');
});

test('a registry read error rejects (the API answers 503 as before)', async () => {
  const failing: Pick<RouteStore, 'replicas' | 'watchReplicas'> = {
    replicas: () => Promise.reject(new Error('store down')),
    watchReplicas: () => () => {},
  };
  await assert.rejects(waitForReplicas(failing, 1, 10), /store down/);
});

test('ReplicaBoard: the whole sorted list on subscribe and on each change; no-op reports notify nobody', async () => {
  const board = new ReplicaBoard();
  board.set('b', 1);
  const seen: ReplicaInfo[][] = [];
  board.watch((l) => seen.push([...l]));
  await Promise.resolve();
  board.set('a', 3);
  board.set('a', 3); // unchanged
  board.delete('b');
  board.delete('b'); // already gone
  assert.deepEqual(seen, [[{ id: 'b', revision: 1 }], [{ id: 'a', revision: 3 }, { id: 'b', revision: 1 }], [{ id: 'a', revision: 3 }]]);
  const unknown = new ReplicaBoard(false);
  const got: number[] = [];
  unknown.watch((l) => got.push(l.length));
  unknown.set('x', 1); // not known yet (a watch still loading): nobody hears a partial list
  await Promise.resolve();
  assert.deepEqual(got, []);
  unknown.reset([{ id: 'x', revision: 1 }, { id: 'y', revision: 2 }]);
  assert.deepEqual(got, [2]);
});
