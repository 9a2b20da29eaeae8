// The route watcher and its table listeners, with an in-process store and the worker's IPC source.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createRouteWatcher } from '../../src/control/route-watcher.js';
import type { TableListener, TableUpdate } from '../../src/control/table-listener.js';
import { createIpcRouteSource } from '../../src/dataplane/proxy/ipc-route-source.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMemoryStore } from '../../src/store/memory-store.js';

const logs: string[] = [];
const log = createLogger({ level: 'debug', write: (l) => logs.push(l) });

function recorder(name: string, calls: string[]): TableListener & { updates: TableUpdate[] } {
  const updates: TableUpdate[] = [];
  return {
    name,
    updates,
    onTable(u) {
      calls.push(`${name}@${u.table.version}`);
      updates.push(u);
    },
  };
}

test('listeners get every table in registration order; ones registered before start get the loaded table', async (t) => {
  const store = createMemoryStore();
  await store.start();
  t.after(() => store.close());
  const r1 = await store.put('/a', { target: 'http://127.0.0.1:1' });
  const watcher = createRouteWatcher({ source: store, table: { hostRouting: false }, log });
  t.after(() => watcher.close());
  const calls: string[] = [];
  const [first, second, third] = [recorder('first', calls), recorder('second', calls), recorder('third', calls)];
  for (const l of [first, second, third]) watcher.subscribe(l);
  await watcher.start();
  assert.deepEqual(calls, [`first@${r1}`, `second@${r1}`, `third@${r1}`], 'loaded table, in order');
  assert.equal(first.updates[0]!.changes, null, 'the loaded table is a snapshot');
  assert.equal(first.updates[0]!.table.size, 1);

  // Two writes in one turn: one table, one call per listener, the changes of both.
  calls.length = 0;
  await Promise.all([store.put('/b', { target: 'http://127.0.0.1:2' }), store.put('/c', { target: 'http://127.0.0.1:3' })]);
  const r3 = (await store.snapshot()).revision;
  assert.ok(await watcher.waitForRevision(r3, 1000));
  assert.deepEqual(calls, [`first@${r3}`, `second@${r3}`, `third@${r3}`], 'coalesced, in order');
  assert.deepEqual(first.updates[1]!.changes!.map((c) => c.path), ['/b', '/c']);
});

test('a listener that throws is logged by name; the ones after it still get the table', async (t) => {
  const store = createMemoryStore();
  await store.start();
  t.after(() => store.close());
  const watcher = createRouteWatcher({ source: store, table: { hostRouting: false }, log });
  t.after(() => watcher.close());
  const calls: string[] = [];
  watcher.subscribe({ name: 'broken consumer', onTable: () => { throw new Error('boom'); } });
  const after = recorder('after', calls);
  watcher.subscribe(after);
  await watcher.start();
  const r = await store.put('/x', { target: 'http://127.0.0.1:1' });
  assert.ok(await watcher.waitForRevision(r, 1000));
  assert.deepEqual(calls, ['after@0', `after@${r}`]);
  assert.ok(logs.some((l) => l.includes('table listener failed') && l.includes('broken consumer') && l.includes('boom')), 'named in the log, with its error');
});

test('unsubscribe stops delivery; a revision never reached times out', async (t) => {
  const store = createMemoryStore();
  await store.start();
  t.after(() => store.close());
  const watcher = createRouteWatcher({ source: store, table: { hostRouting: false }, log });
  t.after(() => watcher.close());
  const calls: string[] = [];
  const un = watcher.subscribe(recorder('gone', calls));
  await watcher.start();
  un();
  const r = await store.put('/x', { target: 'http://127.0.0.1:1' });
  assert.ok(await watcher.waitForRevision(r, 1000));
  assert.deepEqual(calls, ['gone@0']);
  assert.equal(await watcher.waitForRevision(r + 5, 20), false, 'a revision never reached times out');
});

test('a worker: the same watcher fed by the IPC source builds the same tables as the primary', async (t) => {
  const source = createIpcRouteSource();
  const watcher = createRouteWatcher({ source, table: { hostRouting: false }, log, quiet: true });
  t.after(() => watcher.close());
  const calls: string[] = [];
  const l = recorder('proxy', calls);
  watcher.subscribe(l);
  const started = watcher.start();
  // Before the primary's first table nothing is published: start() waits for it.
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(calls, []);
  source.receive({ t: 'table', version: 4, routes: [['/a', { target: 'http://127.0.0.1:1' }]] });
  await started;
  assert.deepEqual(calls, ['proxy@4']);
  // Deltas, one stale (already applied), then a reset.
  source.receive({ t: 'changes', version: 4, changes: [{ type: 'delete', path: '/a' }] });
  source.receive({ t: 'changes', version: 5, changes: [{ type: 'put', path: '/b', data: { target: 'http://127.0.0.1:2' } }] });
  assert.ok(await watcher.waitForRevision(5, 1000));
  assert.deepEqual([...watcher.current().routes()].map((r) => r.path).sort(), ['/a', '/b'], 'the stale delete was dropped');
  source.receive({ t: 'table', version: 9, routes: [['/c', { target: 'http://127.0.0.1:3' }]] });
  assert.deepEqual(calls, ['proxy@4', 'proxy@5', 'proxy@9']);
  assert.equal(l.updates[2]!.changes, null, 'a full table is a reset');
  assert.deepEqual([...watcher.current().routes()].map((r) => r.path), ['/c']);
});
