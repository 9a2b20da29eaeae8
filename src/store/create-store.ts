// Store registry: a --store spec -> a RouteStore. New kinds register here and in
// config/store-spec.ts (the flag's syntax), and nowhere else.

import { resolve } from 'node:path';
import type { Logger } from '../observability/logger.js';
import { checkStoreSpec, etcdEndpoints, type StoreOptions } from '../config/store-spec.js';
import { createFileStore } from './file-store.js';
import { createMemoryStore } from './memory-store.js';
import { createEtcdStore } from './etcd-store.js';
import type { RouteStore } from './route-store.js';

export interface StoreDeps {
  readonly log: Logger;
  /** Store entries that cannot be used (bad file entries, bad etcd keys). */
  readonly onInvalid?: (reason: string) => void;
  readonly options?: StoreOptions;
}

export function createStore(spec: string, deps: StoreDeps): RouteStore {
  checkStoreSpec(spec);
  if (spec.startsWith('file:')) {
    return createFileStore({ path: resolve(spec.slice('file:'.length)), log: deps.log, onInvalid: deps.onInvalid });
  }
  if (spec.startsWith('etcd://')) {
    const o = deps.options;
    return createEtcdStore({
      endpoints: etcdEndpoints(spec),
      prefix: o?.prefix ?? '/switchyard/',
      log: deps.log,
      onInvalid: deps.onInvalid,
      replicaId: o?.replicaId,
      auth: o?.etcdAuth,
      tls: o?.etcdTls,
    });
  }
  return createMemoryStore();
}
