// The route watcher against the real memory store: the whole store loaded by start(), a burst of
// changes in one event-loop turn coalesced into one table, stale and duplicate revisions dropped,
// reset snapshots rebuilding the table, waitForRevision's contract (true when live, false on
// time-out or close), and invalid routes reported. Listener isolation and unsubscribe: route-watcher.test.ts.
// Written against the public API (createRouteWatcher({source, table, log, onInvalid}), start,
// current, subscribe, waitForRevision, invalidRoutes, close).

import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { createRouteWatcher, type RouteWatcher, type TableUpdate } from '../../src/control/route-watcher.js';
import { createLogger } from '../../src/observability/logger.js';
import type { InvalidRoute, RouteData } from '../../src/routing/table.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import type { WatchEvent } from '../../src/store/route-store.js';
import { waitFor } from '../helpers/servers.js';

/**
 * The memory store plus two things a shared store does that a memory store never needs to:
 * redeliver an event it already delivered (as a reconnecting watch may), and replace the whole
 * table with a reset (as a hand-edited file or a compacted etcd history does).
 */
class ReplayingStore extends MemoryStore {
  /** Deliver `event` to watchers again without moving the store's revision. */
  redeliver(event: WatchEvent): void {
    const revision = this.state.revision;
    this.state.emit(event);
    this.state.revision = revision;
  }

  /** Replace every route and announce it as a reset at the next revision. */
  replaceAll(routes: Record<string, RouteData>): number {
    this.state.routes = new Map(Object.entries(routes));
    this.state.pruneActivity();
    return this.state.emit({ type: 'reset', snapshot: { revision: this.state.revision + 1, routes: new Map(this.state.routes) } });
  }
}

interface Harness {
  store: ReplayingStore;
  watcher: RouteWatcher;
  updates: TableUpdate[];
  invalid: InvalidRoute[];
  logs: string[];
  /** Resolves with the next update not yet taken (a queue: updates published synchronously count too). */
  nextUpdate(): Promise<TableUpdate>;
}

async function harness(t: TestContext, seed: Record<string, RouteData> = {}): Promise<Harness> {
  const store = new ReplayingStore();
  await store.start();
  for (const [p, d] of Object.entries(seed)) await store.put(p, d);
  const logs: string[] = [];
  const invalid: InvalidRoute[] = [];
  const watcher = createRouteWatcher({
    source: store,
    table: { hostRouting: false },
    log: createLogger({ level: 'debug', write: (l) => logs.push(l) }),
    onInvalid: (bad) => invalid.push(bad),
  });
  t.after(async () => {
    await watcher.close();
    await store.close();
  });
  await watcher.start();
  const updates: TableUpdate[] = [];
  watcher.subscribe({ name: 'test', onTable: (u) => updates.push(u) });
  let taken = 0;
  const nextUpdate = async (): Promise<TableUpdate> => {
    await waitFor(() => updates.length > taken, 5000, 'a table update');
    return updates[taken++]!;
  };
  return { store, watcher, updates, invalid, logs, nextUpdate };
}

const A = { target: 'http://127.0.0.1:1001' };
const B = { target: 'http://127.0.0.1:1002' };
const C = { target: 'http://127.0.0.1:1003' };
const targetOf = (w: RouteWatcher, path: string): string | undefined => w.current().get(path)?.upstream.target;

test('start() loads the whole store into the first table, at the store revision', async (t) => {
  const h = await harness(t, { '/a': A, '/b': B });
  assert.equal(h.watcher.current().size, 2);
  assert.equal(h.watcher.current().version, h.store.health().revision);
  assert.equal(targetOf(h.watcher, '/b'), B.target);
  assert.equal(h.updates.length, 0, 'start publishes before anyone subscribed; nothing replayed');
});

test('a burst of changes in one event-loop turn becomes one table with every change', async (t) => {
  const h = await harness(t);
  const revs = await Promise.all(Array.from({ length: 50 }, (_, i) => h.store.put(`/u/${i}`, { target: `http://127.0.0.1:${2000 + i}` })));
  const u = await h.nextUpdate();
  assert.equal(u.changes?.length, 50, 'all 50 changes in the one update');
  assert.equal(u.table.version, Math.max(...revs));
  assert.equal(u.table.size, 50);
  // Barrier: a later, separate change is the next update, so the burst produced exactly one.
  const marker = await h.store.put('/marker', A);
  const m = await h.nextUpdate();
  assert.equal(m.table.version, marker);
  assert.deepEqual(m.changes?.map((c) => c.path), ['/marker']);
  assert.equal(h.updates.length, 2, 'burst = one update, marker = one update');
});

test('stale and duplicate revisions are dropped', async (t) => {
  const h = await harness(t);
  const r1 = await h.store.put('/a', A);
  await h.nextUpdate();
  // The same revision again (with other data, as a replay would never carry but a bug might) and an older one.
  h.store.redeliver({ type: 'changes', revision: r1, changes: [{ type: 'put', path: '/a', data: B }] });
  h.store.redeliver({ type: 'changes', revision: r1 - 1, changes: [{ type: 'put', path: '/old', data: C }] });
  // Barrier: a newer change is applied; anything the replays caused would have come before it.
  const r2 = await h.store.put('/b', B);
  const u = await h.nextUpdate();
  assert.equal(h.updates.length, 2, 'no update for the replayed revisions');
  assert.deepEqual(u.changes?.map((c) => c.path), ['/b']);
  assert.equal(u.table.version, r2);
  assert.equal(targetOf(h.watcher, '/a'), A.target, 'the duplicate did not overwrite /a');
  assert.equal(h.watcher.current().get('/old'), undefined, 'the stale change was not applied');
});

test('a reset rebuilds the table from its snapshot and drops changes pending in the same turn', async (t) => {
  const h = await harness(t, { '/a': A });
  void h.store.put('/x', C); // pending (coalescing) when the reset arrives
  const rev = h.store.replaceAll({ '/b': B, '/c': C });
  const u = await h.nextUpdate();
  assert.equal(u.changes, null, 'a rebuild, not a delta');
  assert.equal(u.table.version, rev);
  assert.deepEqual([...['/a', '/b', '/c', '/x']].filter((p) => u.table.get(p) !== undefined), ['/b', '/c']);
  assert.ok(h.logs.some((l) => /routing table rebuilt from store snapshot/.test(l)));
  // Barrier: the next change is the next update (the dropped pending change caused none).
  const r = await h.store.put('/d', A);
  const d = await h.nextUpdate();
  assert.equal(d.table.version, r);
  assert.equal(h.updates.length, 2);
  assert.deepEqual(d.changes?.map((c) => c.path), ['/d']);
});

test('waitForRevision: true at once when live, true when the revision is published, false on time-out and on close', async (t) => {
  const h = await harness(t, { '/a': A });
  const now = h.watcher.current().version;
  assert.equal(await h.watcher.waitForRevision(now, 0), true, 'already live');
  assert.equal(await h.watcher.waitForRevision(now - 1, 0), true, 'older revisions are live too');
  const waiting = h.watcher.waitForRevision(now + 1, 10_000);
  const rev = await h.store.put('/b', B);
  assert.equal(rev, now + 1);
  assert.equal(await waiting, true, 'resolved by the publication, well before its time-out');
  assert.equal(targetOf(h.watcher, '/b'), B.target, 'and the route is in current() by then');
  // A revision nobody writes: the time-out is the only way out (a clock by nature).
  const t0 = performance.now();
  assert.equal(await h.watcher.waitForRevision(rev + 100, 50), false);
  assert.ok(performance.now() - t0 >= 45, 'not before its time-out');
  // close() releases waiters with false.
  const pending = h.watcher.waitForRevision(rev + 100, 60_000);
  await h.watcher.close();
  assert.equal(await pending, false);
});

test('invalid routes are reported through onInvalid and invalidRoutes(), and cleared when fixed or deleted', async (t) => {
  const h = await harness(t, { '/bad-at-start': { target: 'not a url' }, '/ok': A });
  assert.deepEqual(h.invalid.map((b) => b.path), ['/bad-at-start']);
  assert.ok(h.watcher.invalidRoutes().has('/bad-at-start'));
  assert.equal(h.watcher.current().get('/bad-at-start'), undefined, 'not routable');
  assert.equal(targetOf(h.watcher, '/ok'), A.target, 'the others are');
  await h.store.put('/bad-later', { target: 'ftp://example.com/' });
  await h.nextUpdate();
  assert.deepEqual(h.invalid.map((b) => b.path), ['/bad-at-start', '/bad-later']);
  assert.match(h.invalid[1]!.reason, /\S/, 'with a reason');
  assert.equal(h.watcher.invalidRoutes().get('/bad-later'), h.invalid[1]!.reason);
  await h.store.put('/bad-later', B); // fixed
  await h.nextUpdate();
  assert.equal(h.watcher.invalidRoutes().has('/bad-later'), false);
  assert.equal(targetOf(h.watcher, '/bad-later'), B.target);
  await h.store.delete('/bad-at-start');
  await h.nextUpdate();
  assert.deepEqual([...h.watcher.invalidRoutes().keys()], []);
  assert.ok(h.logs.some((l) => /route skipped: its target cannot be used/.test(l)));
});
