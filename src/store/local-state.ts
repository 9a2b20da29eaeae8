// The in-process half every store shares: the current routes, their activity, the revision and
// the watch listeners. Memory and file stores keep their whole state here; an etcd store keeps its
// local mirror here.

import type { RouteData } from '../routing/table.js';
import type { StoreSnapshot, Unsubscribe, WatchEvent } from './route-store.js';

export class LocalState {
  routes = new Map<string, RouteData>();
  readonly activity = new Map<string, number>();
  revision = 0;
  /** Failed store operations by op, counted by the store that owns this state (health().errors). */
  readonly #errors = new Map<string, number>();
  readonly #listeners = new Set<(e: WatchEvent) => void>();

  snapshot(): StoreSnapshot {
    return { revision: this.revision, routes: new Map(this.routes) };
  }

  /** A subscriber behind the current revision gets the whole table first (no history is kept). */
  watch(afterRevision: number, listener: (event: WatchEvent) => void): Unsubscribe {
    if (afterRevision < this.revision) {
      const snapshot = this.snapshot();
      queueMicrotask(() => listener({ type: 'reset', snapshot }));
    }
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Publish an event and advance the revision to it; returns the new revision. */
  emit(event: WatchEvent): number {
    this.revision = event.type === 'reset' ? event.snapshot.revision : event.revision;
    for (const l of this.#listeners) l(event);
    return this.revision;
  }

  /** Merge activity (later wins, unknown paths dropped); true when anything changed. */
  mergeActivity(batch: ReadonlyMap<string, number>): boolean {
    let changed = false;
    for (const [path, t] of batch) {
      if (!this.routes.has(path)) continue;
      const old = this.activity.get(path);
      if (old === undefined || t > old) {
        this.activity.set(path, t);
        changed = true;
      }
    }
    return changed;
  }

  /** Drop activity of paths that no longer have a route. */
  pruneActivity(): void {
    for (const p of this.activity.keys()) if (!this.routes.has(p)) this.activity.delete(p);
  }

  /** Count one failed store operation (`op`: read, write, delete, activity, load). */
  noteError(op: string): void {
    this.#errors.set(op, (this.#errors.get(op) ?? 0) + 1);
  }

  errorCounts(): Record<string, number> {
    return Object.fromEntries(this.#errors);
  }

  clearListeners(): void {
    this.#listeners.clear();
  }
}

/**
 * Base for stores whose reads are served from a LocalState (all of them: memory and file keep
 * their whole state there, etcd its mirror): snapshot, watch and get are the same everywhere.
 */
export abstract class MirroredStore {
  protected readonly state = new LocalState();
  /** Entries skipped when read (RouteStore.skippedRoutes): key as stored -> reason. */
  protected skipped = new Map<string, string>();

  skippedRoutes(): ReadonlyMap<string, string> {
    return this.skipped;
  }

  async snapshot(): Promise<StoreSnapshot> {
    return this.state.snapshot();
  }

  watch(afterRevision: number, listener: (event: WatchEvent) => void): Unsubscribe {
    return this.state.watch(afterRevision, listener);
  }

  async get(path: string): Promise<RouteData | undefined> {
    return this.state.routes.get(path);
  }
}
