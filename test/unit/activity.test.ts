// Activity tracking against the real memory store: records are batched in memory and written once
// per flush, the interval timer flushes by itself, later timestamps win (in the tracker, in the
// store and in reads that merge both), close() flushes what is pending, and a failed write is kept
// for the next flush without losing newer values.

import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { createActivityTracker, type ActivityTracker } from '../../src/control/activity.js';
import { createLogger } from '../../src/observability/logger.js';
import { MemoryStore } from '../../src/store/memory-store.js';
import { waitFor } from '../helpers/servers.js';

/** The memory store, counting the batches it is given; it can be told to fail the next writes. */
class CountingStore extends MemoryStore {
  readonly batches: Map<string, number>[] = [];
  failNext = 0;

  override async writeActivity(batch: ReadonlyMap<string, number>): Promise<void> {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('store down');
    }
    this.batches.push(new Map(batch));
    return super.writeActivity(batch);
  }
}

const T0 = 1_700_000_000_000;

async function harness(t: TestContext, intervalMs = 60_000): Promise<{ store: CountingStore; activity: ActivityTracker; logs: string[]; clock: { now: number } }> {
  const store = new CountingStore();
  await store.start();
  for (const p of ['/a', '/b', '/c']) await store.put(p, { target: 'http://127.0.0.1:1' });
  const logs: string[] = [];
  const clock = { now: T0 };
  const activity = createActivityTracker({ store, intervalMs, log: createLogger({ level: 'debug', write: (l) => logs.push(l) }), now: () => clock.now });
  t.after(async () => {
    await activity.close();
    await store.close();
  });
  return { store, activity, logs, clock };
}

test('records are batched: nothing reaches the store before a flush, then one batch with the newest value per path', async (t) => {
  const { store, activity, clock } = await harness(t);
  for (let i = 0; i < 1000; i++) {
    clock.now = T0 + i;
    activity.record(i % 2 === 0 ? '/a' : '/b');
  }
  assert.equal(store.batches.length, 0);
  assert.equal((await store.readActivity()).size, 0, 'not in the store yet');
  assert.equal(await activity.of('/a'), T0 + 998, 'but reads already see it');
  await activity.flush();
  assert.equal(store.batches.length, 1, 'one write for 1000 records');
  assert.deepEqual([...store.batches[0]!].sort(), [['/a', T0 + 998], ['/b', T0 + 999]]);
  assert.deepEqual([...(await store.readActivity())].sort(), [['/a', T0 + 998], ['/b', T0 + 999]]);
  await activity.flush();
  assert.equal(store.batches.length, 1, 'an empty flush writes nothing');
});

test('the interval flushes by itself once started', async (t) => {
  const { store, activity } = await harness(t, 20);
  activity.record('/a');
  activity.start();
  await waitFor(async () => (await store.activityOf('/a')) === T0, 5000, 'flushed by the timer');
  assert.equal(store.batches.length, 1);
  activity.recordAt('/b', T0 + 5);
  await waitFor(async () => (await store.activityOf('/b')) === T0 + 5, 5000, 'the next interval flushes the next batch');
  assert.equal(store.batches.length, 2);
});

test('later wins: recordAt keeps the newest time, the store keeps its newer value, reads merge both', async (t) => {
  const { store, activity } = await harness(t);
  activity.recordAt('/a', T0 + 200);
  activity.recordAt('/a', T0 + 100); // older, from another worker: ignored
  await activity.flush();
  assert.equal(await store.activityOf('/a'), T0 + 200);
  // The store already holds something newer (another replica): an older batch does not move it back.
  await store.writeActivity(new Map([['/b', T0 + 900]]));
  activity.recordAt('/b', T0 + 300);
  assert.equal(await activity.of('/b'), T0 + 900, 'read: the store value is newer');
  assert.equal((await activity.read()).get('/b'), T0 + 900);
  await activity.flush();
  assert.equal(await store.activityOf('/b'), T0 + 900);
  // ...and an unflushed newer value wins over the store's in reads.
  activity.recordAt('/b', T0 + 1000);
  assert.equal(await activity.of('/b'), T0 + 1000);
  assert.equal((await activity.read()).get('/b'), T0 + 1000);
});

test('activity for a path without a route is dropped by the store', async (t) => {
  const { store, activity } = await harness(t);
  activity.recordAt('/gone', T0);
  activity.recordAt('/c', T0);
  await activity.flush();
  assert.deepEqual([...(await store.readActivity()).keys()], ['/c']);
});

test('close() flushes what is pending', async (t) => {
  const { store, activity } = await harness(t);
  activity.start();
  activity.recordAt('/c', T0 + 42);
  await activity.close();
  assert.equal(await store.activityOf('/c'), T0 + 42);
});

test('a failed write is logged and retried with the next flush; newer values recorded meanwhile win', async (t) => {
  const { store, activity, logs } = await harness(t);
  store.failNext = 1;
  activity.recordAt('/a', T0 + 10);
  activity.recordAt('/b', T0 + 10);
  await activity.flush();
  assert.equal(store.batches.length, 0);
  assert.ok(logs.some((l) => /could not write route activity to the store; will retry/.test(l) && /store down/.test(l)));
  assert.equal(await activity.of('/a'), T0 + 10, 'still visible to reads');
  activity.recordAt('/a', T0 + 20);
  await activity.flush();
  assert.deepEqual([...store.batches[0]!].sort(), [['/a', T0 + 20], ['/b', T0 + 10]]);
});

test('a batch being written is seen by reads until the store has it (no moment without the activity)', async (t) => {
  // A store whose activity write is held until released: reads during the write must still see it.
  class HeldStore extends MemoryStore {
    release: (() => void) | undefined;
    override async writeActivity(batch: ReadonlyMap<string, number>): Promise<void> {
      await new Promise<void>((r) => (this.release = r));
      return super.writeActivity(batch);
    }
  }
  const store = new HeldStore();
  await store.start();
  await store.put('/a', { target: 'http://127.0.0.1:1' });
  const activity = createActivityTracker({ store, intervalMs: 60_000, log: createLogger({ level: 'error', write: () => {} }), now: () => T0 });
  t.after(async () => {
    store.release?.();
    await activity.close();
    await store.close();
  });
  activity.record('/a');
  const flushed = activity.flush();
  await waitFor(() => store.release !== undefined, 5000, 'the write under way');
  assert.equal((await store.readActivity()).size, 0, 'not in the store yet');
  assert.equal(await activity.of('/a'), T0, 'of() sees the batch being written');
  assert.deepEqual([...(await activity.read())], [['/a', T0]], 'read() too');
  store.release!();
  await flushed;
  assert.equal(await activity.of('/a'), T0);
  assert.deepEqual([...(await store.readActivity())], [['/a', T0]]);
});
