// The replica report as a TableListener: after the data planes of this replica have a table,
// tell the store's replica registry which revision this replica serves (what `?wait=all` on any
// replica waits for). Only shared stores have a registry; for the others there is no listener.

import type { RouteStore } from '../store/route-store.js';
import type { TableListener } from './table-listener.js';

export function createReplicaReport(store: Pick<RouteStore, 'reportApplied'>): TableListener | undefined {
  const report = store.reportApplied?.bind(store);
  if (report === undefined) return undefined;
  return {
    name: 'replica report',
    onTable({ table }) {
      report(table.version);
    },
  };
}
