// The CertificateStore contract for the etcd store, against a real etcd: several stores (each
// its own etcd client, as replicas) on one key prefix.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test, type TestContext } from 'node:test';
import { Etcd3 } from 'etcd3';
import { createLogger } from '../../src/observability/logger.js';
import { createEtcdStore, type EtcdStore } from '../../src/store/etcd-store.js';
import type { RouteStore } from '../../src/store/route-store.js';
import { certOf, runCertificateStoreContract } from '../contract/certificate-store-contract.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';
import { waitFor } from '../helpers/servers.js';

const silent = createLogger({ level: 'error', write: () => {} });
let etcd: EtcdCluster;
let raw: Etcd3;
const cleanups: (() => Promise<void>)[] = [];
before(async () => {
  etcd = await startEtcd({ after: (fn) => cleanups.push(async () => void (await fn())) });
  raw = new Etcd3({ hosts: etcd.endpoints.split(',').map((e) => `http://${e}`) });
});
after(async () => {
  raw.close();
  for (const c of cleanups) await c();
});

const prefixes = new WeakMap<RouteStore, string>();
const prefixOf = (s: RouteStore): string => prefixes.get(s)!;

runCertificateStoreContract('etcd store', {
  async open(t: TestContext, n: number) {
    const prefix = `/t-${randomUUID()}/`;
    const stores: RouteStore[] = [];
    for (let i = 0; i < n; i++) {
      const s = createEtcdStore({ endpoints: etcd.endpoints.split(','), prefix, log: silent, replicaId: randomUUID() });
      const closeOnce = s.close.bind(s);
      let closing: Promise<void> | undefined;
      s.close = () => (closing ??= closeOnce());
      t.after(() => s.close());
      await s.start();
      prefixes.set(s, prefix);
      stores.push(s);
    }
    return stores;
  },
  holderArgs(stores) {
    return [`etcd://${etcd.endpoints}`, prefixOf(stores[0]!)];
  },
  async writeRaw(stores, kind, name, text) {
    await raw.put(`${prefixOf(stores[0]!)}acme/${kind}/${name}`).value(text);
  },
  async breakLock(stores, name) {
    await raw.delete().key(`${prefixOf(stores[0]!)}acme/locks/${name}`);
  },
});

test('etcd certificates: a holder cut off from etcd hears lost before its lease can expire; the lock is free again after', async (t) => {
  const own = await startEtcd(t);
  const mk = (): EtcdStore => {
    const s = createEtcdStore({ endpoints: own.endpoints.split(','), prefix: '/cut/', log: silent, replicaId: randomUUID(), callTimeoutMs: 500 });
    t.after(() => s.close());
    return s;
  };
  const a = mk();
  await a.start();
  const l = await a.certificates.tryLock('cut.example.test', { ttlMs: 3000 });
  assert.ok(l);
  let lostAt = 0;
  l.lost.addEventListener('abort', () => (lostAt = Date.now()));
  const m = own.members[0]!;
  await own.stop(m, 'SIGKILL');
  const stoppedAt = Date.now();
  await waitFor(() => lostAt > 0, 10_000, 'lost fires while etcd is unreachable');
  // The lease (3 s) cannot have expired on etcd's side before its last keep-alive + 3 s.
  assert.ok(lostAt - stoppedAt < 3000, `lost after ${lostAt - stoppedAt} ms`);
  await own.start(m);
  await own.waitHealthy(m);
  const b = mk();
  await b.start();
  const next = await b.certificates.lock('cut.example.test', { ttlMs: 3000, waitMs: 30_000 });
  assert.equal(next.lost.aborted, false);
  await next.release();
});

test('etcd certificates: a watch opened after history was compacted past the store\'s revision reports every stored name, then later changes', async (t) => {
  const prefix = `/t-${randomUUID()}/`;
  const lines: string[] = [];
  const mk = async (log = silent): Promise<EtcdStore> => {
    const s = createEtcdStore({ endpoints: etcd.endpoints.split(','), prefix, log, replicaId: randomUUID() });
    t.after(() => s.close());
    await s.start();
    return s;
  };
  const a = await mk(createLogger({ level: 'info', write: (l) => lines.push(l) }));
  // Written by another replica while this one's route mirror (no route changes) stays behind.
  await raw.put(`${prefix}acme/certs/old.example.test`).value(JSON.stringify(certOf('old.example.test')));
  for (let i = 0; i < 5; i++) await raw.put(`/elsewhere-${randomUUID()}`).value('x');
  const rev = (await raw.get('/nothing').exec()).header.revision;
  await raw.kv.compact({ revision: rev, physical: true });
  const seen: string[] = [];
  a.certificates.watchCertificates((n) => seen.push(n));
  await waitFor(() => seen.includes('old.example.test'), 10_000, 'every stored name reported after the compacted start');
  assert.ok(lines.some((l) => l.includes('certificate watch cancelled; reopening')), `the compacted start was the path taken:\n${lines.join('\n')}`);
  const b = await mk();
  await b.certificates.putCertificate(certOf('new.example.test'));
  await waitFor(() => seen.includes('new.example.test'), 10_000, 'a later put reported');
});
