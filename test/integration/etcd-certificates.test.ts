// The CertificateStore contract for the etcd store, against a real etcd: several stores (each
// its own etcd client, as replicas) on one key prefix.

import { randomUUID } from 'node:crypto';
import { after, before, type TestContext } from 'node:test';
import { Etcd3 } from 'etcd3';
import { createLogger } from '../../src/observability/logger.js';
import { createEtcdStore } from '../../src/store/etcd-store.js';
import type { RouteStore } from '../../src/store/route-store.js';
import { runCertificateStoreContract } from '../contract/certificate-store-contract.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd.js';

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
