// The etcd store against a real etcd: the shared contract, hand-written keys, compaction resync.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { createLogger } from '../../src/observability/logger.js';
import { createEtcdStore, type EtcdStore } from '../../src/store/etcd-store.js';
import type { WatchEvent } from '../../src/store/route-store.js';
import { runStoreContract } from '../contract/store-contract.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { waitFor } from '../helpers/servers.js';

const silent = createLogger({ level: 'error', write: () => {} });
let etcd: EtcdCluster;
const cleanups: (() => Promise<void>)[] = [];
before(async () => {
  etcd = await startEtcd({ after: (fn) => cleanups.push(async () => void (await fn())) });
});
after(async () => {
  for (const c of cleanups) await c();
});

function store(prefix = `/t-${randomUUID()}/`, onInvalid?: (r: string) => void): EtcdStore {
  return createEtcdStore({ endpoints: etcd.endpoints.split(','), prefix, log: silent, onInvalid, replicaId: randomUUID() });
}

runStoreContract('etcd store', {
  async create() {
    const s = store();
    await s.start();
    return s;
  },
});

test('etcd: keys written by hand that do not parse are skipped, the rest is live', async () => {
  const prefix = `/t-${randomUUID()}/`;
  const raw = new Etcd3({ hosts: etcd.endpoints.split(',').map((e) => `http://${e}`) });
  await raw.put(`${prefix}routes/good`).value(JSON.stringify({ target: 'http://127.0.0.1:1' }));
  await raw.put(`${prefix}routes/notjson`).value('{nope');
  await raw.put(`${prefix}routes/notarget`).value('{"x":1}');
  const invalid: string[] = [];
  const s = store(prefix, (r) => invalid.push(r));
  await s.start();
  assert.deepEqual([...(await s.snapshot()).routes.keys()], ['/good']);
  assert.equal(invalid.length, 2);
  const events: WatchEvent[] = [];
  s.watch((await s.snapshot()).revision, (e) => events.push(e));
  await raw.put(`${prefix}routes/late`).value('garbage');
  await raw.put(`${prefix}routes/late2`).value(JSON.stringify({ target: 'http://127.0.0.1:2' }));
  await waitFor(() => events.some((e) => e.type === 'changes' && e.changes.some((c) => c.path === '/late2')), 5000, 'watch event');
  assert.equal(invalid.length, 3);
  assert.ok(!(await s.snapshot()).routes.has('/late'));
  await s.close();
  raw.close();
});

test('etcd: two writers of the same route end in one value everywhere', async () => {
  const prefix = `/t-${randomUUID()}/`;
  const a = store(prefix);
  const b = store(prefix);
  await a.start();
  await b.start();
  await Promise.all(
    Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).put('/same', { target: `http://127.0.0.1:${i + 1}` })),
  );
  await waitFor(async () => (await a.get('/same'))?.target === (await b.get('/same'))?.target && a.health().revision === b.health().revision, 5000, 'agreement');
  assert.equal((await a.get('/same'))?.target, (await b.get('/same'))?.target);
  await a.close();
  await b.close();
});

test('etcd: compacting history while watching loses no change', async () => {
  const prefix = `/t-${randomUUID()}/`;
  const s = store(prefix);
  await s.start();
  const events: WatchEvent[] = [];
  s.watch((await s.snapshot()).revision, (e) => events.push(e));
  const raw = new Etcd3({ hosts: etcd.endpoints.split(',').map((e) => `http://${e}`) });
  await raw.put(`${prefix}routes/r1`).value(JSON.stringify({ target: 'http://127.0.0.1:1' }));
  await waitFor(() => events.length > 0, 5000, 'first event');
  const rev = Number((await raw.put(`${prefix}routes/r2`).value(JSON.stringify({ target: 'http://127.0.0.1:2' })).exec()).header.revision);
  await raw.kv.compact({ revision: String(rev), physical: true });
  await waitFor(async () => (await s.snapshot()).routes.has('/r2'), 5000, 'r2 seen');
  await s.close();
  raw.close();
});

test('etcd: a watch resumed past compacted history resyncs the whole table', { timeout: 120_000 }, async (t) => {
  const cluster = await startEtcd(t, 3);
  const [m0, m1] = [cluster.members[0]!, cluster.members[1]!];
  const logs: string[] = [];
  const s = createEtcdStore({
    endpoints: [`127.0.0.1:${m0.clientPort}`],
    prefix: '/compact/',
    log: createLogger({ level: 'info', write: (l) => logs.push(l) }),
    replicaId: 'r',
  });
  await s.start();
  try {
    await s.put('/a', { target: 'http://127.0.0.1:1' });
    const events: WatchEvent[] = [];
    s.watch((await s.snapshot()).revision, (e) => events.push(e));
    // Our only endpoint goes away; meanwhile the table changes and history is compacted.
    await cluster.stop(m0, 'SIGKILL');
    const raw = new Etcd3({ hosts: `http://127.0.0.1:${m1.clientPort}` });
    await raw.put('/compact/routes/b').value(JSON.stringify({ target: 'http://127.0.0.1:2' }));
    await raw.delete().key('/compact/routes/a');
    const rev = Number((await raw.put('/compact/routes/c').value(JSON.stringify({ target: 'http://127.0.0.1:3' })).exec()).header.revision);
    await raw.kv.compact({ revision: String(rev), physical: true });
    raw.close();
    await cluster.start(m0);
    await waitFor(async () => {
      const keys = [...(await s.snapshot()).routes.keys()].sort().join(',');
      return keys === '/b,/c';
    }, 60_000, 'table resynced to /b,/c');
    // The contract: a consumer that applies what it was told ends with the store's table. Usually
    // the resumed watch hits compacted history and the store reloads (a reset); in loaded runs the
    // restarted member may replay the missed changes as events before applying the compaction.
    await waitFor(() => {
      const mine = new Map<string, unknown>();
      for (const e of events) {
        if (e.type === 'reset') {
          mine.clear();
          for (const [k, v] of e.snapshot.routes) mine.set(k, v);
        } else {
          for (const c of e.changes) {
            if (c.type === 'delete') mine.delete(c.path);
            else mine.set(c.path, c.data);
          }
        }
      }
      return [...mine.keys()].sort().join(',') === '/b,/c';
    }, 10_000, 'watch consumers end with /b,/c');
    t.diagnostic(logs.some((l) => /etcd resynced/.test(l)) ? 'compacted history: full resync' : 'changes reached the consumer without a logged resync');
  } finally {
    // Also when an assertion fails (an open client would hang the file), and while etcd still runs:
    // t.after hooks stop etcd first, and closing against a dead cluster waits on its lease.
    await s.close();
  }
});

test('etcd: close() ends promptly when etcd is gone (a SIGTERM during an outage still exits)', { timeout: 60_000 }, async (t) => {
  const cluster = await startEtcd(t, 1);
  const s = createEtcdStore({ endpoints: cluster.endpoints.split(','), prefix: '/gone/', log: silent, replicaId: 'g' });
  await s.start();
  await s.put('/a', { target: 'http://127.0.0.1:1' });
  s.watch((await s.snapshot()).revision, () => {});
  s.reportApplied?.((await s.snapshot()).revision); // registers this replica on a lease
  await waitFor(async () => (await s.replicas!()).some((r) => r.id === 'g'), 10_000, 'replica registered on its lease');
  await cluster.stop(cluster.members[0]!, 'SIGKILL');
  const t0 = Date.now();
  await s.close();
  assert.ok(Date.now() - t0 < 8000, `close took ${Date.now() - t0} ms`);
});
