// The default store: routes in this process's memory, as CHP keeps them. Lost on restart.

import type { RouteChange, RouteData } from '../routing/table.js';
import type { RouteStore, StoreHealth, StoreSnapshot, Unsubscribe, WatchEvent } from './route-store.js';

export class MemoryStore implements RouteStore {
  readonly kind = 'memory';
  #revision = 0;
  readonly #routes = new Map<string, RouteData>();
  readonly #activity = new Map<string, number>();
  readonly #listeners = new Set<(e: WatchEvent) => void>();

  async start(): Promise<void> {}

  async close(): Promise<void> {
    this.#listeners.clear();
  }

  async snapshot(): Promise<StoreSnapshot> {
    return { revision: this.#revision, routes: new Map(this.#routes) };
  }

  watch(afterRevision: number, listener: (event: WatchEvent) => void): Unsubscribe {
    if (afterRevision < this.#revision) {
      // We keep no history: a late subscriber gets the whole table.
      const snapshot = { revision: this.#revision, routes: new Map(this.#routes) };
      queueMicrotask(() => listener({ type: 'reset', snapshot }));
    }
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async get(path: string): Promise<RouteData | undefined> {
    return this.#routes.get(path);
  }

  async put(path: string, data: RouteData): Promise<number> {
    this.#routes.set(path, data);
    return this.#emit({ type: 'put', path, data });
  }

  async delete(path: string): Promise<number | null> {
    if (!this.#routes.delete(path)) return null;
    this.#activity.delete(path);
    return this.#emit({ type: 'delete', path });
  }

  async writeActivity(batch: ReadonlyMap<string, number>): Promise<void> {
    for (const [path, t] of batch) {
      if (!this.#routes.has(path)) continue;
      const old = this.#activity.get(path);
      if (old === undefined || t > old) this.#activity.set(path, t);
    }
  }

  async readActivity(): Promise<ReadonlyMap<string, number>> {
    return new Map(this.#activity);
  }

  async activityOf(path: string): Promise<number | undefined> {
    return this.#activity.get(path);
  }

  health(): StoreHealth {
    return { kind: this.kind, connected: true, revision: this.#revision, lastError: undefined };
  }

  #emit(change: RouteChange): number {
    const revision = ++this.#revision;
    const event: WatchEvent = { type: 'changes', revision, changes: [change] };
    for (const l of this.#listeners) l(event);
    return revision;
  }
}

export function createMemoryStore(): MemoryStore {
  return new MemoryStore();
}
