// The default store: routes in this process's memory, as CHP keeps them. Lost on restart.
// It has no replica registry (one process: `?wait=all` has nothing more to wait for), unless it
// is created with a replica id for an embedder or a test (then it is a registry of one).

import type { RouteData } from '../routing/table.js';
import { MirroredStore } from './local-state.js';
import { createMemoryCertificates } from './memory-certificates.js';
import { ReplicaBoard, type ReplicaListener } from './replica-registry.js';
import type { ReplicaInfo, RouteStore, StoreHealth, Unsubscribe } from './route-store.js';

export class MemoryStore extends MirroredStore implements RouteStore {
  readonly kind = 'memory';
  readonly certificates = createMemoryCertificates();

  async start(): Promise<void> {}

  async close(): Promise<void> {
    await this.certificates.close();
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

/** A memory store that registers itself as replica `replicaId` (reportApplied, replicas, watchReplicas). */
export class RegisteredMemoryStore extends MemoryStore {
  readonly #replicaId: string;
  readonly #board = new ReplicaBoard();

  constructor(replicaId: string) {
    super();
    this.#replicaId = replicaId;
  }

  reportApplied(revision: number): void {
    this.#board.set(this.#replicaId, revision);
  }

  async replicas(): Promise<ReplicaInfo[]> {
    return this.#board.list();
  }

  watchReplicas(listener: ReplicaListener): Unsubscribe {
    return this.#board.watch(listener);
  }

  override async close(): Promise<void> {
    this.#board.clear();
    await super.close();
  }
}

export function createMemoryStore(options: { replicaId?: string } = {}): MemoryStore {
  return options.replicaId === undefined ? new MemoryStore() : new RegisteredMemoryStore(options.replicaId);
}
