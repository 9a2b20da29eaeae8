// Store registry: a --store spec -> a RouteStore. New kinds register here and in
// config/store-spec.ts (the flag's syntax), and nowhere else.

import { resolve } from 'node:path';
import type { Logger } from '../observability/logger.js';
import { checkStoreSpec, etcdEndpoints, type StoreOptions } from '../config/store-spec.js';
import { createMemoryStore } from './memory-store.js';
import type { RouteStore } from './route-store.js';

export interface StoreDeps {
  readonly log: Logger;
  /** Store entries that cannot be used (bad file entries, bad etcd keys). */
  readonly onInvalid?: (reason: string) => void;
  readonly options?: StoreOptions;
}

/**
 * The store `spec` names. Only its own module is loaded (the file store's TOML parser and the
 * etcd store's modules are ~1.3 MiB of RSS and 60-100 ms of start-up that a process using
 * another store does not need).
 */
export async function createStore(spec: string, deps: StoreDeps): Promise<RouteStore> {
  checkStoreSpec(spec);
  if (spec.startsWith('file:')) {
    const { createFileStore } = await import('./file-store.js');
    return createFileStore({ path: resolve(spec.slice('file:'.length)), log: deps.log, onInvalid: deps.onInvalid });
  }
  if (spec.startsWith('etcd://')) {
    const o = deps.options;
    const { createEtcdStore } = await import('./etcd-store.js');
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
