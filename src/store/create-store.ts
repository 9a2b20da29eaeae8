// Store registry: a --store spec -> a RouteStore. New kinds register here and nowhere else.
//   memory          routes in this process (CHP's behaviour; the default)
//   file:PATH       a TOML (or .json) file: survives restarts, editable by hand
//   etcd://h:p[,h:p] etcd v3: many replicas share one table (HA)

import { resolve } from 'node:path';
import { ErrorCode, SwitchyardError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { createFileStore } from './file-store.js';
import { createMemoryStore } from './memory-store.js';
import { createEtcdStore } from './etcd-store.js';
import type { StoreOptions } from '../config/config.js';
import type { RouteStore } from './route-store.js';

export interface StoreDeps {
  readonly log: Logger;
  /** Store entries that cannot be used (bad file entries, bad etcd keys). */
  readonly onInvalid?: (reason: string) => void;
  readonly options?: StoreOptions;
}

/** Validate a --store spec without opening anything; throws SWY_CONFIG_* with a clear message. */
export function checkStoreSpec(spec: string): void {
  if (spec === 'memory') return;
  if (spec.startsWith('file:')) {
    if (spec.length === 'file:'.length) throw new SwitchyardError(ErrorCode.CONFIG_INVALID, '--store file:PATH needs a path');
    return;
  }
  if (spec.startsWith('etcd://')) {
    etcdEndpoints(spec);
    return;
  }
  throw new SwitchyardError(
    ErrorCode.CONFIG_UNSUPPORTED,
    `store '${spec}' is not supported; use memory, file:PATH or etcd://host:port[,host:port] (CHP JavaScript storage classes are not supported)`,
  );
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

/** "etcd://a:2379,b:2379" -> ["a:2379", "b:2379"]; every endpoint needs host and port. */
export function etcdEndpoints(spec: string): string[] {
  const list = spec.slice('etcd://'.length).split(',').map((e) => e.trim()).filter(Boolean);
  if (list.length === 0) throw new SwitchyardError(ErrorCode.CONFIG_INVALID, '--store etcd:// needs at least one host:port');
  for (const e of list) {
    if (!/^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(e)) {
      throw new SwitchyardError(ErrorCode.CONFIG_INVALID, `--store etcd endpoint '${e}' must be host:port`);
    }
  }
  return list;
}
