// Store registry: a --store spec -> a RouteStore. New kinds register here and nowhere else.
//   memory          routes in this process (CHP's behaviour; the default)
//   file:PATH       a TOML (or .json) file: survives restarts, editable by hand

import { resolve } from 'node:path';
import { ErrorCode, SwitchyardError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { createFileStore } from './file-store.js';
import { createMemoryStore } from './memory-store.js';
import type { RouteStore } from './route-store.js';

export interface StoreDeps {
  readonly log: Logger;
  /** Store entries that cannot be used (bad file entries, bad etcd keys). */
  readonly onInvalid?: (reason: string) => void;
}

/** Validate a --store spec without opening anything; throws SWY_CONFIG_* with a clear message. */
export function checkStoreSpec(spec: string): void {
  if (spec === 'memory') return;
  if (spec.startsWith('file:')) {
    if (spec.length === 'file:'.length) throw new SwitchyardError(ErrorCode.CONFIG_INVALID, '--store file:PATH needs a path');
    return;
  }
  throw new SwitchyardError(
    ErrorCode.CONFIG_UNSUPPORTED,
    `store '${spec}' is not supported; use memory or file:PATH (CHP JavaScript storage classes are not supported)`,
  );
}

export function createStore(spec: string, deps: StoreDeps): RouteStore {
  checkStoreSpec(spec);
  if (spec.startsWith('file:')) {
    return createFileStore({ path: resolve(spec.slice('file:'.length)), log: deps.log, onInvalid: deps.onInvalid });
  }
  return createMemoryStore();
}
