// Messages between the primary (control plane: store, watcher, API, metrics) and the data-plane
// workers (--workers N), processes or threads alike (worker-channel.ts). Tables travel as a full
// snapshot once, then as deltas. Messages are structured clones (a process's IPC uses node's
// 'advanced' serialization): the Config carries Buffers (certificates; a thread revives them).

import type { RouteChange, RouteData } from '../../routing/table.js';
import type { DataPlaneSettings } from './live-settings.js';
import type { Config } from '../../config/config.js';

export type ToWorker =
  /** The primary's running configuration, the first thing a worker gets (it asks with 'config?'). */
  | { readonly t: 'config'; readonly config: Config }
  | { readonly t: 'table'; readonly version: number; readonly routes: readonly (readonly [string, RouteData])[] }
  | { readonly t: 'changes'; readonly version: number; readonly changes: readonly RouteChange[] }
  | { readonly t: 'metrics'; readonly id: number }
  /**
   * Start listening (sent once, after the worker applied its snapshot). At start-up the primary
   * sends it only when every worker has its table, so the shared port opens with all of them
   * ready to listen at once, not with the first one to boot.
   */
  | {
      readonly t: 'listen';
      /**
       * Threads only: the port to bind with SO_REUSEPORT (the one the first thread got, with
       * --port 0). A process listens through node:cluster, which shares the primary's socket.
       */
      readonly port?: number;
    }
  /** Test hook (SWITCHYARD_TEST_HOOKS=1 and SIGUSR2 to the primary): die of an uncaught error. */
  | { readonly t: 'test-crash' }
  | { readonly t: 'drain'; readonly ms: number }
  /**
   * Apply these live settings (a reload; also sent right after the snapshot, so a replacement
   * worker runs the primary's current settings, not what it read at start). Answered 'settings-applied'.
   */
  | { readonly t: 'settings'; readonly id: number; readonly settings: DataPlaneSettings }
  /** ACME: serve this certificate for `name` from now on (sent before 'listen' for those known then). */
  | { readonly t: 'cert'; readonly name: string; readonly cert: string; readonly key: string }
  /** ACME: the answer to an 'acme-ask' (null: nothing). */
  | { readonly t: 'acme-answer'; readonly id: number; readonly value: string | { readonly cert: string; readonly key: string } | null };

export type ToPrimary =
  | { readonly t: 'config?' }
  | { readonly t: 'ready' }
  | { readonly t: 'applied'; readonly version: number }
  | { readonly t: 'settings-applied'; readonly id: number; readonly error?: string }
  /** Listening; `port` is the bound TCP port (the real one when --port 0), absent on a unix socket. */
  | { readonly t: 'listening'; readonly port?: number }
  /** The public port could not be bound (EADDRINUSE, EACCES...): the pool stops instead of respawning. */
  | { readonly t: 'listen-failed'; readonly message: string; readonly errno: string | undefined }
  | { readonly t: 'activity'; readonly entries: readonly (readonly [string, number])[] }
  | { readonly t: 'metrics'; readonly id: number; readonly json: unknown }
  /** Once per second: per-route deltas since the last one (route-stats.ts) and this worker's vitals. */
  | { readonly t: 'stats'; readonly routes: readonly (readonly [string, number[]])[]; readonly proc: WorkerVitals }
  /**
   * ACME: a worker has no store; it asks the primary for an HTTP-01 key authorization (key =
   * token, host = Host), a TLS-ALPN-01 challenge certificate (key = name), or an on-demand
   * certificate (key = name).
   */
  | { readonly t: 'acme-ask'; readonly id: number; readonly kind: 'http01' | 'alpn' | 'on-demand'; readonly key: string; readonly host?: string };

export interface WorkerVitals {
  readonly pid: number;
  /** A thread's id (threads mode); its RSS is the whole process's, so it reports none. */
  readonly threadId?: number;
  readonly rss?: number;
  readonly heapUsed: number;
  readonly connections: number;
  readonly websockets: number;
}
