// Route watcher: route source -> coalesce -> immutable RoutingTable -> table listeners.
// One implementation for every process: the primary feeds it from the store, a data-plane worker
// (worker.ts) from the primary's IPC messages (dataplane/proxy/ipc-route-source.ts).
//
// Contract:
//  - `start()` resolves after the whole store has been loaded into the first table, so the caller
//    can open public ports with no 404 window.
//  - Changes that arrive together (same event-loop turn) become one new table; listeners
//    (table-listener.ts) get the new table and the list of changes (so a remote data plane can
//    apply deltas), in the order they subscribed. Listeners subscribed before `start()` also get
//    the first table.
//  - `waitForRevision(r)` resolves once the published table's version is >= r: this is what lets
//    the API answer "201 Created" only when the route is live on this replica.

import type { Logger } from '../observability/logger.js';
import { RoutingTable, type InvalidRoute, type RouteChange, type TableOptions } from '../routing/table.js';
import type { RouteStore, StoreSnapshot, Unsubscribe, WatchEvent } from '../store/route-store.js';
import type { TableListener } from './table-listener.js';

export type { TableListener, TableUpdate } from './table-listener.js';

/**
 * Where routes come from: the part of a RouteStore the watcher reads (a store is one), or the
 * primary's messages in a data-plane worker. Same contract as RouteStore's snapshot and watch.
 */
export type RouteSource = Pick<RouteStore, 'snapshot' | 'watch' | 'skippedRoutes'>;

export interface RouteWatcher {
  start(): Promise<void>;
  close(): Promise<void>;
  current(): RoutingTable;
  subscribe(listener: TableListener): Unsubscribe;
  waitForRevision(revision: number, timeoutMs: number): Promise<boolean>;
  /**
   * Routes skipped, by path -> reason: those the store holds but could not read (store.skippedRoutes:
   * bad keys, data beyond the bounds) and those the table could not take (bad targets).
   */
  invalidRoutes(): ReadonlyMap<string, string>;
}

export interface RouteWatcherOptions {
  readonly source: RouteSource;
  readonly table: TableOptions;
  readonly log: Logger;
  readonly onInvalid?: (bad: InvalidRoute) => void;
  /**
   * Do not log skipped routes or rebuilds (default false). A worker's watcher is quiet: the
   * primary already logged the same events once for the whole replica.
   */
  readonly quiet?: boolean;
}

export function createRouteWatcher(options: RouteWatcherOptions): RouteWatcher {
  const { source, log } = options;
  const quiet = options.quiet ?? false;
  let table = RoutingTable.empty(options.table);
  let pending: RouteChange[] = [];
  let pendingRevision = 0;
  let scheduled = false;
  let unwatch: Unsubscribe | undefined;
  const listeners = new Set<TableListener>();
  const waiters = new Set<{ revision: number; resolve: (ok: boolean) => void; timer: NodeJS.Timeout }>();
  const invalid = new Map<string, string>();

  const noteInvalid = (bad: InvalidRoute): void => {
    invalid.set(bad.path, bad.reason);
    if (!quiet) log.error('route skipped: its target cannot be used', { path: bad.path, reason: bad.reason });
    options.onInvalid?.(bad);
  };

  const publish = (next: RoutingTable, changes: readonly RouteChange[] | null): void => {
    table = next;
    for (const l of listeners) {
      try {
        l.onTable({ table: next, changes });
      } catch (e) {
        log.error('table listener failed', { listener: l.name, err: e });
      }
    }
    for (const w of waiters) {
      if (next.version >= w.revision) {
        clearTimeout(w.timer);
        waiters.delete(w);
        w.resolve(true);
      }
    }
  };

  const fromSnapshot = (snap: StoreSnapshot): RoutingTable => {
    invalid.clear();
    return RoutingTable.build(options.table, snap.routes, snap.revision, noteInvalid);
  };

  const flush = (): void => {
    scheduled = false;
    if (pending.length === 0) return;
    const changes = pending;
    pending = [];
    for (const c of changes) if (c.type === 'delete' || invalid.has(c.path)) invalid.delete(c.path);
    publish(table.apply(changes, pendingRevision, noteInvalid), changes);
  };

  const onEvent = (event: WatchEvent): void => {
    if (event.type === 'reset') {
      pending = [];
      publish(fromSnapshot(event.snapshot), null);
      if (!quiet) log.info('routing table rebuilt from store snapshot', { revision: event.snapshot.revision, routes: table.size });
      return;
    }
    if (event.revision <= Math.max(table.version, pendingRevision)) return; // already applied
    pending.push(...event.changes);
    pendingRevision = event.revision;
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };

  return {
    async start() {
      const snap = await source.snapshot();
      publish(fromSnapshot(snap), null);
      pendingRevision = snap.revision;
      unwatch = source.watch(snap.revision, onEvent);
      log.debug('routing table loaded', { revision: snap.revision, routes: table.size });
    },
    async close() {
      unwatch?.();
      for (const w of waiters) {
        clearTimeout(w.timer);
        w.resolve(false);
      }
      waiters.clear();
      listeners.clear();
    },
    current: () => table,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    waitForRevision(revision, timeoutMs) {
      if (table.version >= revision) return Promise.resolve(true);
      return new Promise((resolve) => {
        const w = {
          revision,
          resolve,
          timer: setTimeout(() => {
            waiters.delete(w);
            resolve(false);
          }, timeoutMs),
        };
        waiters.add(w);
      });
    },
    invalidRoutes: () => {
      const fromStore = source.skippedRoutes?.();
      if (fromStore === undefined || fromStore.size === 0) return invalid;
      if (invalid.size === 0) return fromStore;
      return new Map([...fromStore, ...invalid]);
    },
  };
}
