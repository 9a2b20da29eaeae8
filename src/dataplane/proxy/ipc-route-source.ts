// A data-plane worker's route source: the primary's table messages (worker-protocol.ts) turned
// into the RouteStore snapshot/watch contract, so the worker runs the same route watcher
// (control/route-watcher.ts) as the primary, fed by IPC instead of a store.
//
// Contract: `snapshot()` resolves with the first full table the primary sends. After it, a full
// table is delivered to the watcher as a `reset` and deltas as `changes` at their version.
// Messages that arrive before the watcher subscribes are kept and replayed to it in order.

import type { RouteSource } from '../../control/route-watcher.js';
import type { StoreSnapshot, WatchEvent } from '../../store/route-store.js';
import type { ToWorker } from './worker-protocol.js';

export interface IpcRouteSource extends RouteSource {
  /** Feed one 'table' or 'changes' message from the primary. */
  receive(msg: Extract<ToWorker, { t: 'table' } | { t: 'changes' }>): void;
}

export function createIpcRouteSource(): IpcRouteSource {
  let first: StoreSnapshot | undefined;
  let resolveFirst: ((snap: StoreSnapshot) => void) | undefined;
  const firstTable = new Promise<StoreSnapshot>((resolve) => (resolveFirst = resolve));
  let listener: ((event: WatchEvent) => void) | undefined;
  const backlog: WatchEvent[] = [];

  const deliver = (event: WatchEvent): void => {
    if (listener) listener(event);
    else backlog.push(event);
  };

  return {
    receive(msg) {
      if (msg.t === 'table') {
        const snapshot: StoreSnapshot = { revision: msg.version, routes: new Map(msg.routes) };
        if (first === undefined) {
          first = snapshot;
          resolveFirst!(snapshot);
          return;
        }
        deliver({ type: 'reset', snapshot });
        return;
      }
      if (first === undefined) return; // deltas before the first table cannot happen (the primary sends it first)
      deliver({ type: 'changes', revision: msg.version, changes: msg.changes });
    },
    snapshot: () => firstTable,
    watch(afterRevision, fn) {
      listener = fn;
      for (const e of backlog.splice(0)) if (e.type === 'reset' || e.revision > afterRevision) fn(e);
      return () => {
        if (listener === fn) listener = undefined;
      };
    },
  };
}
