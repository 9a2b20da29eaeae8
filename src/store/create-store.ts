// Store registry: a --store spec -> a RouteStore. New kinds register here and nowhere else.

import { ErrorCode, SwitchyardError } from '../errors.js';
import { createMemoryStore } from './memory-store.js';
import type { RouteStore } from './route-store.js';

export function createStore(spec: string): RouteStore {
  if (spec === 'memory') return createMemoryStore();
  throw new SwitchyardError(ErrorCode.CONFIG_UNSUPPORTED, `unsupported store '${spec}'`);
}
