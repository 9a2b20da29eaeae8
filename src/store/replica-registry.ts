// The replica registry's in-process half: who serves which table revision, and who is waiting for
// that to change. Shared stores (etcd) keep their view of the registry in a ReplicaBoard fed by a
// watch; an in-process memory store with a replica id (createMemoryStore({ replicaId })) is a
// registry of one. `waitForReplicas` is what `?wait=all` runs: a watch, not a poll.
//
// Contract: a board's listeners get the whole list (sorted by id) once it is known, then after
// every change that alters it; a report that changes nothing notifies nobody.

import type { ReplicaInfo, RouteStore, Unsubscribe } from './route-store.js';

export type ReplicaListener = (replicas: readonly ReplicaInfo[]) => void;

export class ReplicaBoard {
  readonly #revisions = new Map<string, number>();
  readonly #listeners = new Set<ReplicaListener>();
  /** False until the first full list is in (a watch that has not loaded yet). */
  #known: boolean;

  constructor(known = true) {
    this.#known = known;
  }

  list(): ReplicaInfo[] {
    return [...this.#revisions].map(([id, revision]) => ({ id, revision })).sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Replace the whole list (a fresh read of the registry). */
  reset(replicas: readonly ReplicaInfo[]): void {
    this.#revisions.clear();
    for (const r of replicas) this.#revisions.set(r.id, r.revision);
    this.#known = true;
    this.#notify();
  }

  set(id: string, revision: number): void {
    if (this.#revisions.get(id) === revision) return;
    this.#revisions.set(id, revision);
    if (this.#known) this.#notify();
  }

  delete(id: string): void {
    if (this.#revisions.delete(id) && this.#known) this.#notify();
  }

  /** The current list now (on a microtask) if known, then every change. */
  watch(listener: ReplicaListener): Unsubscribe {
    this.#listeners.add(listener);
    if (this.#known) queueMicrotask(() => this.#listeners.has(listener) && listener(this.list()));
    return () => this.#listeners.delete(listener);
  }

  clear(): void {
    this.#listeners.clear();
  }

  #notify(): void {
    if (this.#listeners.size === 0) return;
    const list = this.list();
    for (const l of this.#listeners) l(list);
  }
}

/**
 * Resolve once every live replica serves `revision` (an empty list), or after `timeoutMs` with the
 * ids that still lag, read fresh from the registry. A store without a registry has nothing to
 * wait for. Registry read errors (store unreachable) reject, as a read would.
 */
export async function waitForReplicas(registry: Pick<RouteStore, 'replicas' | 'watchReplicas'>, revision: number, timeoutMs: number): Promise<string[]> {
  if (registry.replicas === undefined) return [];
  const lagging = (list: readonly ReplicaInfo[]): string[] => list.filter((r) => r.revision < revision).map((r) => r.id);
  if (lagging(await registry.replicas()).length === 0) return [];
  const caughtUp = await new Promise<boolean>((resolve) => {
    // Lists arrive on later turns (a board delivers its first on a microtask), after `unwatch` is set.
    const unwatch: Unsubscribe | undefined = registry.watchReplicas?.((list) => {
      if (lagging(list).length > 0) return;
      clearTimeout(timer);
      unwatch?.();
      resolve(true);
    });
    const timer = setTimeout(() => {
      unwatch?.();
      resolve(false);
    }, timeoutMs);
  });
  return caughtUp ? [] : lagging(await registry.replicas());
}
