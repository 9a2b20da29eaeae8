// The RouteStore contract: one suite every store (memory, file, etcd) runs.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RouteStore, WatchEvent } from '../../src/store/route-store.js';

export interface StoreFactory {
  /** A fresh, started, empty store. */
  create(): Promise<RouteStore>;
}

async function collect(store: RouteStore, after: number, until: (evs: WatchEvent[]) => boolean): Promise<WatchEvent[]> {
  const events: WatchEvent[] = [];
  let stop!: () => void;
  const done = new Promise<void>((r) => (stop = r));
  const un = store.watch(after, (e) => {
    events.push(e);
    if (until(events)) stop();
  });
  // A bound, not a wait: when `until` never holds, the caller's assertion on `events` fails.
  await Promise.race([done, new Promise((r) => setTimeout(r, 5000))]);
  un();
  return events;
}

export function runStoreContract(name: string, factory: StoreFactory): void {
  const withStore = async (fn: (s: RouteStore) => Promise<void>) => {
    const s = await factory.create();
    try {
      await fn(s);
    } finally {
      await s.close();
    }
  };

  test(`${name}: put/get/delete with growing revisions`, () =>
    withStore(async (s) => {
      const r0 = (await s.snapshot()).revision;
      const r1 = await s.put('/a', { target: 'http://127.0.0.1:1', extra: { n: 1 } });
      const r2 = await s.put('/b', { target: 'http://127.0.0.1:2' });
      assert.ok(r1 > r0 && r2 > r1, 'revisions grow');
      assert.deepEqual(await s.get('/a'), { target: 'http://127.0.0.1:1', extra: { n: 1 } });
      assert.equal(await s.get('/zz'), undefined);
      const snap = await s.snapshot();
      assert.equal(snap.revision, r2);
      assert.deepEqual([...snap.routes.keys()].sort(), ['/a', '/b']);
      const r3 = await s.put('/a', { target: 'http://127.0.0.1:3' });
      assert.equal((await s.get('/a'))?.target, 'http://127.0.0.1:3', 'put replaces');
      const r4 = await s.delete('/a');
      assert.ok(r4 !== null && r4 > r3);
      assert.equal(await s.delete('/a'), null, 'deleting a missing route returns null');
      assert.equal(await s.get('/a'), undefined);
    }));

  test(`${name}: watch delivers every later change in order`, () =>
    withStore(async (s) => {
      const start = (await s.snapshot()).revision;
      const events = collect(s, start, (evs) => evs.flatMap((e) => (e.type === 'changes' ? e.changes : [])).length >= 3);
      await s.put('/w1', { target: 'http://127.0.0.1:1' });
      await s.put('/w2', { target: 'http://127.0.0.1:2' });
      await s.delete('/w1');
      const evs = await events;
      const changes = evs.flatMap((e) => (e.type === 'changes' ? e.changes.map((c) => `${c.type} ${c.path}`) : []));
      assert.deepEqual(changes, ['put /w1', 'put /w2', 'delete /w1']);
      const revs = evs.map((e) => (e.type === 'changes' ? e.revision : -1));
      assert.deepEqual(revs, [...revs].sort((a, b) => a - b), 'revision order');
    }));

  test(`${name}: a late watcher catches up (changes or a reset snapshot)`, () =>
    withStore(async (s) => {
      const start = (await s.snapshot()).revision;
      await s.put('/late1', { target: 'http://127.0.0.1:1' });
      await s.put('/late2', { target: 'http://127.0.0.1:2' });
      const evs = await collect(s, start, (e) =>
        e.some((x) => x.type === 'reset') || e.flatMap((x) => (x.type === 'changes' ? x.changes : [])).length >= 2,
      );
      const seen = new Set<string>();
      for (const e of evs) {
        if (e.type === 'reset') for (const k of e.snapshot.routes.keys()) seen.add(k);
        else for (const c of e.changes) seen.add(c.path);
      }
      assert.ok(seen.has('/late1') && seen.has('/late2'));
    }));

  test(`${name}: activity batches merge, later wins, unknown and deleted routes dropped`, () =>
    withStore(async (s) => {
      await s.put('/x', { target: 'http://127.0.0.1:1' });
      await s.put('/y', { target: 'http://127.0.0.1:2' });
      await s.writeActivity(new Map([['/x', 2000], ['/y', 1000], ['/ghost', 5000]]));
      await s.writeActivity(new Map([['/x', 1500], ['/y', 3000]]));
      const a = await s.readActivity();
      assert.equal(a.get('/x'), 2000, 'older value does not win');
      assert.equal(a.get('/y'), 3000);
      assert.equal(a.has('/ghost'), false);
      assert.equal(await s.activityOf('/y'), 3000);
      assert.equal(await s.activityOf('/ghost'), undefined);
      await s.delete('/x');
      assert.equal((await s.readActivity()).has('/x'), false);
    }));

  test(`${name}: health reports kind and revision`, () =>
    withStore(async (s) => {
      const rev = await s.put('/h', { target: 'http://127.0.0.1:1' });
      const h = s.health();
      assert.equal(h.kind, s.kind);
      assert.equal(h.connected, true);
      assert.ok(h.revision >= rev);
    }));
}
