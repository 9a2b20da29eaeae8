// TableListener: what every consumer of the routing table implements (the in-process proxy, the
// worker pool, the Envoy plane, the dashboard, the table metrics, the replica report, the stats
// loop). The route watcher calls each registered listener, in registration order, with every new
// table; the composition root (app.ts, worker.ts) only creates listeners and registers them.
//
// Contract:
//  - `onTable` is called synchronously from the watcher's publish, once per table version, and
//    must not block: a consumer with slow work (building an xDS snapshot, IPC) schedules it.
//  - A listener that throws is logged under its `name`; the others still get the table.
//  - The first call carries the table loaded at start-up (`changes: null`), so a listener
//    registered before `watcher.start()` needs no separate "initial table" path.

import type { RouteChange, RoutingTable } from '../routing/table.js';

export interface TableUpdate {
  readonly table: RoutingTable;
  /** The changes since the previous table, or null when the table was rebuilt from a snapshot. */
  readonly changes: readonly RouteChange[] | null;
}

export interface TableListener {
  /** For logs: which consumer failed. */
  readonly name: string;
  onTable(update: TableUpdate): void;
}
