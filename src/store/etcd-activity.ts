// The etcd store's route activity: <prefix>activity<path>\0<replica> -> last activity (ms since
// epoch) seen by one replica.
//
// Contract:
//  - Each replica writes only its own key per route, in batched transactions (MAX_TXN_OPS puts
//    each), and only values newer than anything it knows for the path: its key never moves back.
//  - Readers take the maximum over replicas, so idle culling sees activity from any replica.
//  - While etcd is unreachable reads answer from what this replica last read or wrote.
//  - A route's activity keys go with the route (EtcdStore#delete deletes keyPrefix(path) in the
//    same transaction, then calls forget(path)).

import type { EtcdConnection } from './etcd-connection.js';

const MAX_TXN_OPS = 128; // etcd's default --max-txn-ops

export class EtcdActivity {
  readonly #conn: EtcdConnection;
  readonly #prefix: string;
  /** The route key checked by every batch's (always true) compare. */
  readonly #routesPrefix: string;
  readonly #replica: string;
  readonly #hasRoute: (path: string) => boolean;
  /** Last activity values read or written, served when etcd is unreachable. */
  readonly #cache = new Map<string, number>();

  constructor(conn: EtcdConnection, options: { activityPrefix: string; routesPrefix: string; replicaId: string; hasRoute: (path: string) => boolean }) {
    this.#conn = conn;
    this.#prefix = options.activityPrefix;
    this.#routesPrefix = options.routesPrefix;
    this.#replica = options.replicaId;
    this.#hasRoute = options.hasRoute;
  }

  /** The prefix of every replica's activity key for `path`. */
  keyPrefix(path: string): string {
    return `${this.#prefix}${path}\0`;
  }

  /** The route was deleted: drop what this replica knew of its activity. */
  forget(path: string): void {
    this.#cache.delete(path);
  }

  async write(batch: ReadonlyMap<string, number>): Promise<void> {
    // Only what is newer than anything known for the path: readers take the maximum anyway, and
    // this replica's own key must never move backwards.
    const entries = [...batch].filter(([p, t]) => this.#hasRoute(p) && (this.#cache.get(p) ?? 0) < t);
    for (const [p, t] of entries) this.#cache.set(p, t);
    const client = this.#conn.client;
    for (let i = 0; i < entries.length; i += MAX_TXN_OPS) {
      const chunk = entries.slice(i, i + MAX_TXN_OPS);
      await this.#conn.call('activity', () =>
        client
          .if(this.#routesPrefix, 'Version', '>', -1) // always true: a txn is how etcd batches puts
          .then(...chunk.map(([p, t]) => client.put(this.keyPrefix(p) + this.#replica).value(String(t))))
          .commit(),
      );
    }
  }

  async readAll(): Promise<ReadonlyMap<string, number>> {
    try {
      const kvs = await this.#conn.call('read', () => this.#conn.rangeAll(this.#prefix));
      const out = new Map<string, number>();
      for (const kv of kvs.kvs) {
        const key = kv.key.toString();
        const path = key.slice(this.#prefix.length, key.lastIndexOf('\0'));
        const t = Number(kv.value.toString());
        if (Number.isFinite(t) && (out.get(path) ?? 0) < t) out.set(path, t);
      }
      for (const [p, t] of out) if ((this.#cache.get(p) ?? 0) < t) this.#cache.set(p, t);
      return out;
    } catch {
      return new Map(this.#cache); // etcd down: what this replica last knew
    }
  }

  async of(path: string): Promise<number | undefined> {
    try {
      const res = await this.#conn.call('read', () => this.#conn.client.getAll().prefix(this.keyPrefix(path)).exec());
      let best: number | undefined;
      for (const kv of res.kvs) {
        const t = Number(kv.value.toString());
        if (Number.isFinite(t) && (best === undefined || t > best)) best = t;
      }
      return best;
    } catch {
      return this.#cache.get(path);
    }
  }
}
