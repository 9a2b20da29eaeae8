// RouteStore: the one source of truth for routes (memory, file, etcd).
//
// Contract for every implementation (checked by test/contract/store-contract.ts):
//  - Revisions are integers that only grow. Every successful put/delete returns the revision at
//    which the change is visible to watchers; `snapshot()` returns the routes at one revision.
//  - `watch(after, fn)` delivers every change with revision > `after`, in revision order. When the
//    store cannot guarantee that (a compacted etcd history, a file edited by hand), it delivers a
//    `reset` with a full snapshot instead; consumers rebuild from it.
//  - Activity (`last_activity`) is kept beside routes, written in batches; readers take the
//    latest value seen for each path. Activity for a path without a route is dropped.
//  - Keys are canonical route paths (routing/route-path.ts); data is the JSON the API accepted,
//    within routing/route-data.ts's bounds: entries that reach the store another way (a file
//    edited by hand, etcd written by another tool) and break them are skipped, never served.

import type { RouteChange, RouteData } from '../routing/table.js';
import type { CertificateStore } from './certificate-store.js';

export interface StoreSnapshot {
  readonly revision: number;
  readonly routes: ReadonlyMap<string, RouteData>;
}

export type WatchEvent =
  | { readonly type: 'changes'; readonly revision: number; readonly changes: readonly RouteChange[] }
  | { readonly type: 'reset'; readonly snapshot: StoreSnapshot };

export interface StoreHealth {
  readonly kind: string;
  /** False while the backing service is unreachable; reads may then be stale. */
  readonly connected: boolean;
  readonly revision: number;
  readonly lastError: string | undefined;
  /** Failed operations since start, by operation (read, write, delete, activity, load); feeds switchyard_store_errors_total. */
  readonly errors?: Readonly<Record<string, number>>;
}

export type Unsubscribe = () => void;

export interface RouteStore {
  readonly kind: string;
  start(): Promise<void>;
  close(): Promise<void>;
  snapshot(): Promise<StoreSnapshot>;
  watch(afterRevision: number, listener: (event: WatchEvent) => void): Unsubscribe;
  get(path: string): Promise<RouteData | undefined>;
  /** Create or replace; resolves with the revision of the write. */
  put(path: string, data: RouteData): Promise<number>;
  /** Resolves with the revision of the delete, or null when there was no such route. */
  delete(path: string): Promise<number | null>;
  /** Merge a batch of activity timestamps (ms since epoch); later values win. */
  writeActivity(batch: ReadonlyMap<string, number>): Promise<void>;
  readActivity(): Promise<ReadonlyMap<string, number>>;
  /** One path's activity: O(1), for GET /api/routes/<path>. */
  activityOf(path: string): Promise<number | undefined>;
  health(): StoreHealth;
  /**
   * ACME state shared by every replica on this store (store/certificate-store.ts has its
   * contract). Closed by close(). Untouched, it costs nothing: no file, key or watch is created.
   */
  readonly certificates: CertificateStore;
  /**
   * Entries the store holds but cannot use (a bad key, no string target, data beyond
   * routing/route-data.ts's bounds), by key as stored -> reason. They are not in snapshots or
   * watch events; GET /api/health lists them.
   */
  skippedRoutes?(): ReadonlyMap<string, string>;
  /**
   * Shared stores only: this replica's table now serves `revision` (published to other replicas
   * so writers can wait for all of them). Single-process stores leave it out.
   */
  reportApplied?(revision: number): void;
  /** Shared stores only: the live replicas and the revision each serves. */
  replicas?(): Promise<ReplicaInfo[]>;
  /**
   * Shared stores only (present whenever `replicas` is): calls `listener` with the whole list of
   * live replicas once it is known, then again whenever a replica's revision changes or a replica
   * joins or leaves. What `?wait=all` and the dashboard's replica panel wait on instead of polling.
   */
  watchReplicas?(listener: (replicas: readonly ReplicaInfo[]) => void): Unsubscribe;
}

export interface ReplicaInfo {
  readonly id: string;
  readonly revision: number;
}
