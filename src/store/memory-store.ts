// The default store: routes in this process's memory, as CHP keeps them. Lost on restart.

import type { RouteData } from '../routing/table.js';
import { LocalState } from './local-state.js';
import type { RouteStore, StoreHealth, StoreSnapshot, Unsubscribe, WatchEvent } from './route-store.js';

export class MemoryStore implements RouteStore {
  readonly kind = 'memory';
  readonly #state = new LocalState();

  async start(): Promise<void> {}

  async close(): Promise<void> {
    this.#state.clearListeners();
  }

  async snapshot(): Promise<StoreSnapshot> {
    return this.#state.snapshot();
  }

  watch(afterRevision: number, listener: (event: WatchEvent) => void): Unsubscribe {
    return this.#state.watch(afterRevision, listener);
  }

  async get(path: string): Promise<RouteData | undefined> {
    return this.#state.routes.get(path);
  }

  async put(path: string, data: RouteData): Promise<number> {
    const s = this.#state;
    s.routes.set(path, data);
    return s.emit({ type: 'changes', revision: s.revision + 1, changes: [{ type: 'put', path, data }] });
  }

  async delete(path: string): Promise<number | null> {
    const s = this.#state;
    if (!s.routes.delete(path)) return null;
    s.activity.delete(path);
    return s.emit({ type: 'changes', revision: s.revision + 1, changes: [{ type: 'delete', path }] });
  }

  async writeActivity(batch: ReadonlyMap<string, number>): Promise<void> {
    this.#state.mergeActivity(batch);
  }

  async readActivity(): Promise<ReadonlyMap<string, number>> {
    return new Map(this.#state.activity);
  }

  async activityOf(path: string): Promise<number | undefined> {
    return this.#state.activity.get(path);
  }

  health(): StoreHealth {
    return { kind: this.kind, connected: true, revision: this.#state.revision, lastError: undefined };
  }
}

export function createMemoryStore(): MemoryStore {
  return new MemoryStore();
}
