// The table gauges (switchyard_routes, switchyard_table_version) as a TableListener: they follow
// the table the data planes serve.

import type { TableListener } from '../control/table-listener.js';
import type { Metrics } from './metrics.js';

export function createTableMetrics(metrics: Pick<Metrics, 'tableSize' | 'tableVersion'>): TableListener {
  return {
    name: 'table metrics',
    onTable({ table }) {
      metrics.tableSize.set(table.size);
      metrics.tableVersion.set(table.version);
    },
  };
}
