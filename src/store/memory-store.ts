// The default store: routes in this process's memory, as CHP keeps them. Lost on restart.

import type { RouteData } from '../routing/table.js';
import { MirroredStore } from './local-state.js';
import type { RouteStore, StoreHealth } from './route-store.js';

export class MemoryStore extends MirroredStore implements RouteStore {
  readonly kind = 'memory';

  async start(): Promise<void> {}

  async close(): Promise<void> {
    this.state.clearListeners();
  }

  async put(path: string, data: RouteData): Promise<number> {
    const s = this.state;
    s.routes.set(path, data);
    return s.emit({ type: 'changes', revision: s.revision + 1, changes: [{ type: 'put', path, data }] });
  }

  async delete(path: string): Promise<number | null> {
    const s = this.state;
    if (!s.routes.delete(path)) return null;
    s.activity.delete(path);
    return s.emit({ type: 'changes', revision: s.revision + 1, changes: [{ type: 'delete', path }] });
  }

  async writeActivity(batch: ReadonlyMap<string, number>): Promise<void> {
    this.state.mergeActivity(batch);
  }

  async readActivity(): Promise<ReadonlyMap<string, number>> {
    return new Map(this.state.activity);
  }

  async activityOf(path: string): Promise<number | undefined> {
    return this.state.activity.get(path);
  }

  health(): StoreHealth {
    return { kind: this.kind, connected: true, revision: this.state.revision, lastError: undefined, errors: this.state.errorCounts() };
  }
}

export function createMemoryStore(): MemoryStore {
  return new MemoryStore();
}
