// The data plane's vitals as the dashboard shows them: open connections and websockets, summed
// over the workers' latest reports (--workers N), or this process's own counters.

import type { WorkerVitals } from '../dataplane/proxy/worker-protocol.js';
import type { ProxyStats } from './metrics.js';

export interface WorkerInfo {
  readonly pid: number | undefined;
  /** A worker thread's id (its pid is the main process's). */
  readonly threadId?: number;
  readonly listening: boolean;
  readonly applied: number;
  readonly vitals: WorkerVitals | undefined;
}

export interface DataPlaneVitals {
  /** Data-plane workers (--workers N > 1); empty when the proxy runs in this process. */
  readonly workers: readonly WorkerInfo[];
  readonly connections: number;
  readonly websockets: number;
}

export function createDataPlaneVitals(o: { stats: ProxyStats; workers?: () => readonly WorkerInfo[] }): () => DataPlaneVitals {
  const { stats, workers } = o;
  if (workers === undefined) return () => ({ workers: [], connections: stats.activeConnections, websockets: stats.activeWebsockets });
  return () => {
    const list = workers();
    let connections = 0;
    let websockets = 0;
    for (const w of list) {
      connections += w.vitals?.connections ?? 0;
      websockets += w.vitals?.websockets ?? 0;
    }
    return { workers: list, connections, websockets };
  };
}
