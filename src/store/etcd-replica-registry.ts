// The etcd store's replica registry: <prefix>replicas/<replica> -> {"revision": n}, the table
// version this replica serves, on a 10 s lease so a dead replica disappears after its TTL.
//
// Contract:
//  - reportApplied(revision) publishes the newest revision: one registry write in flight at a
//    time, always ending on the newest reported revision; a failed write is retried on the next
//    report or after the next resync. A lost lease re-registers on the next report.
//  - After a resync (the connection's resyncing -> connected change) the replica writes its entry
//    again: the lease may have expired while etcd was unreachable.
//  - replicas() reads the registry; watchReplicas() is served by a watch on it
//    (etcd-replica-watch.ts), started on the first subscription.

import type { Lease } from 'etcd3';
import { bounded, type EtcdConnection } from './etcd-connection.js';
import { createEtcdReplicaWatch, parseReplica, type EtcdReplicaWatch } from './etcd-replica-watch.js';
import type { ReplicaListener } from './replica-registry.js';
import type { ReplicaInfo, Unsubscribe } from './route-store.js';

const LEASE_TTL_S = 10;

export class EtcdReplicaRegistry {
  readonly #conn: EtcdConnection;
  readonly #prefix: string;
  readonly #key: string;
  readonly #watch: EtcdReplicaWatch;
  #lease: Lease | undefined;
  /** The newest revision asked to be published. */
  #target = 0;
  /** The revision last written under the current lease (0: not registered). */
  #reported = 0;
  #reporting = false;

  constructor(conn: EtcdConnection, replicasPrefix: string, replicaId: string) {
    this.#conn = conn;
    this.#prefix = replicasPrefix;
    this.#key = replicasPrefix + replicaId;
    this.#watch = createEtcdReplicaWatch(conn.client, replicasPrefix, conn.log);
    conn.onState(({ from, to }) => {
      if (from !== 'resyncing' || to !== 'connected') return;
      this.#reported = 0;
      // Not guarded by #reporting: a write stuck since the outage must not keep this one waiting.
      if (this.#target > 0) void this.#report();
    });
  }

  reportApplied(revision: number): void {
    if (revision <= this.#target) return;
    this.#target = revision;
    if (!this.#reporting) void this.#report();
  }

  async replicas(): Promise<ReplicaInfo[]> {
    const res = await this.#conn.call('read', () => this.#conn.client.getAll().prefix(this.#prefix).exec());
    const out: ReplicaInfo[] = [];
    for (const kv of res.kvs) {
      const r = parseReplica(kv, this.#prefix);
      if (r) out.push(r);
    }
    return out;
  }

  watchReplicas(listener: ReplicaListener): Unsubscribe {
    return this.#watch.subscribe(listener);
  }

  /** Stop the registry watch, then revoke the lease (both bounded; the lease expires anyway). */
  async close(): Promise<void> {
    await bounded(this.#watch.close());
    await bounded(this.#lease?.revoke());
  }

  async #report(): Promise<void> {
    this.#reporting = true;
    try {
      while (!this.#conn.closed && this.#reported < this.#target) {
        const rev = this.#target;
        if (!this.#lease) {
          this.#lease = this.#conn.client.lease(LEASE_TTL_S);
          this.#lease.on('lost', () => {
            this.#lease = undefined;
            this.#reported = 0; // re-register on the next report
          });
        }
        await this.#lease.put(this.#key).value(JSON.stringify({ revision: rev }));
        this.#reported = rev;
      }
    } catch (e) {
      this.#conn.log.debug('replica registry write failed; retried on the next change or resync', { err: e });
    } finally {
      this.#reporting = false;
    }
  }
}
