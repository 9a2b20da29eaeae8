// etcd store (v3 API): many Switchyard replicas share one routing table.
//
// Layout under the key prefix (default /switchyard/):
//   <prefix>routes<path>                 JSON route data, one key per route
//   <prefix>activity<path>\0<replica>    last activity (ms since epoch) seen by one replica
//   <prefix>replicas/<replica>           {"revision": n}: the table version this replica serves;
//                                        on a lease, so a dead replica disappears after its TTL
//   <prefix>acme/...                     certificates, ACME accounts, challenges, locks
//                                        (etcd-certificates.ts)
// The table version is the etcd revision, so every replica agrees on it.
//
// Contract (beyond RouteStore's):
//  - start() loads the whole table (retrying while etcd is unreachable), then watches it; a
//    cancelled watch (history compacted) or etcd coming back triggers a full resync, delivered to
//    consumers as a `reset`.
//  - While etcd is unreachable the local mirror keeps serving reads (health().connected = false,
//    so the API can say they may be stale) and writes fail fast with SWY_STORE_UNAVAILABLE.
//  - While etcd is reachable but not writable (a leader election), calls are retried with backoff
//    and succeed as soon as etcd accepts them; see "Fault handling" in etcd-connection.ts.
//  - Unusable keys are skipped and listed by skippedRoutes() (etcd-route-mirror.ts).
//
// Built from one part per role, all sharing one EtcdConnection (client, bounded-retry `call`,
// connection state machine in etcd-connection-state.ts):
//   etcd-route-mirror.ts      load, watch, resync, skipped entries, read-your-writes
//   etcd-replica-registry.ts  this replica's lease entry, replicas(), watchReplicas()
//   etcd-activity.ts          per-replica activity keys
// This file composes them and holds the two route writes (put, the guarded delete).

import { hostname } from 'node:os';
import { ErrorCode, SwitchyardError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { RouteData } from '../routing/table.js';
import { isConnected } from './etcd-connection-state.js';
import { certainlyNotApplied, EtcdConnection, RouteChangedMeanwhile } from './etcd-connection.js';
import { EtcdActivity } from './etcd-activity.js';
import { EtcdCertificates } from './etcd-certificates.js';
import { EtcdReplicaRegistry } from './etcd-replica-registry.js';
import { EtcdRouteMirror } from './etcd-route-mirror.js';
import { MirroredStore } from './local-state.js';
import type { ReplicaListener } from './replica-registry.js';
import type { ReplicaInfo, RouteStore, StoreHealth, Unsubscribe } from './route-store.js';

export interface EtcdStoreOptions {
  readonly endpoints: readonly string[];
  readonly prefix: string;
  readonly log: Logger;
  readonly onInvalid?: (reason: string) => void;
  readonly replicaId?: string;
  readonly auth?: { readonly username: string; readonly password: string };
  readonly tls?: { readonly ca?: Buffer; readonly cert?: Buffer; readonly key?: Buffer };
  /** Deadline of one etcd call; API writes fail with 503 after it when etcd is down. */
  readonly callTimeoutMs?: number;
}

export class EtcdStore extends MirroredStore implements RouteStore {
  readonly kind = 'etcd';
  /** ACME state under <prefix>acme/ (etcd-certificates.ts). */
  readonly certificates: EtcdCertificates;
  readonly #conn: EtcdConnection;
  readonly #routesPrefix: string;
  readonly #mirror: EtcdRouteMirror;
  readonly #registry: EtcdReplicaRegistry;
  readonly #activity: EtcdActivity;

  constructor(options: EtcdStoreOptions) {
    super();
    const prefix = options.prefix.endsWith('/') ? options.prefix : options.prefix + '/';
    this.#routesPrefix = prefix + 'routes';
    const replicaId = options.replicaId ?? `${hostname()}-${process.pid}`;
    this.#conn = new EtcdConnection({ ...options, onCallFailed: (op) => this.state.noteError(op) });
    this.#mirror = new EtcdRouteMirror(this.#conn, this.state, this.#routesPrefix, options.onInvalid);
    this.#registry = new EtcdReplicaRegistry(this.#conn, prefix + 'replicas/', replicaId);
    this.#activity = new EtcdActivity(this.#conn, {
      activityPrefix: prefix + 'activity',
      routesPrefix: this.#routesPrefix,
      replicaId,
      hasRoute: (p) => this.state.routes.has(p),
    });
    this.certificates = new EtcdCertificates(this.#conn, prefix + 'acme/', () => this.state.revision);
  }

  async start(): Promise<void> {
    await this.#mirror.start();
  }

  // Bounded throughout: with etcd unreachable, cancelling a watch or revoking the lease can wait
  // forever, and a SIGTERM must still end the process (the lease then expires on its own).
  async close(): Promise<void> {
    await this.certificates.close(); // revokes held locks' leases while the client is open
    this.#conn.dispatch({ type: 'close' });
    this.state.clearListeners();
    await this.#mirror.close();
    await this.#registry.close();
    this.#conn.closeClient();
  }

  override skippedRoutes(): ReadonlyMap<string, string> {
    return this.#mirror.skipped;
  }

  async put(path: string, data: RouteData): Promise<number> {
    const client = this.#conn.client;
    const res = await this.#conn.call('write', () => client.put(this.#routesPrefix + path).value(JSON.stringify(data)).exec());
    return this.#mirror.applied(Number(res.header.revision));
  }

  async delete(path: string): Promise<number | null> {
    const client = this.#conn.client;
    const key = this.#routesPrefix + path;
    const activity = this.#activity.keyPrefix(path);
    // Retry guard: after an attempt that may have been applied (a timeout, a dropped connection),
    // a blind retry could delete a route re-created meanwhile, or answer 404 for our own delete.
    // So a retry then deletes only the exact version that existed before this request (mod
    // revision <= the revision this replica had seen when it arrived): such a version cannot be a
    // re-creation after our delete. A route already gone counts as deleted by us; one modified
    // since the request arrived leaves the outcome unknown: 503 (nothing applied twice).
    const seen = this.state.revision;
    let maybeApplied = false;
    const res = await this.#conn.call(
      'delete',
      async () => {
        if (!maybeApplied) {
          return client.if(key, 'Version', '>', 0).then(client.delete().key(key), client.delete().prefix(activity)).commit();
        }
        this.#conn.log.warn('etcd delete failed mid-call; retrying on the version seen before the request', { path });
        const cur = await client.kv.range({ key: Buffer.from(key) });
        const kv = cur.kvs[0];
        if (!kv) return { succeeded: true, header: cur.header };
        if (Number(kv.mod_revision) > seen) {
          throw new SwitchyardError(ErrorCode.STORE_UNAVAILABLE, 'route store (etcd) unavailable: delete outcome unknown (etcd failed mid-call and the route changed since)', { details: { op: 'delete' } });
        }
        const guarded = await client.if(key, 'Mod', '==', kv.mod_revision).then(client.delete().key(key), client.delete().prefix(activity)).commit();
        if (!guarded.succeeded) throw new RouteChangedMeanwhile();
        return guarded;
      },
      (e) => {
        if (!certainlyNotApplied(e)) maybeApplied = true;
      },
    );
    this.#activity.forget(path);
    return res.succeeded ? this.#mirror.applied(Number(res.header.revision)) : null;
  }

  writeActivity(batch: ReadonlyMap<string, number>): Promise<void> {
    return this.#activity.write(batch);
  }

  readActivity(): Promise<ReadonlyMap<string, number>> {
    return this.#activity.readAll();
  }

  activityOf(path: string): Promise<number | undefined> {
    return this.#activity.of(path);
  }

  reportApplied(revision: number): void {
    this.#registry.reportApplied(revision);
  }

  replicas(): Promise<ReplicaInfo[]> {
    return this.#registry.replicas();
  }

  watchReplicas(listener: ReplicaListener): Unsubscribe {
    return this.#registry.watchReplicas(listener);
  }

  health(): StoreHealth {
    return { kind: this.kind, connected: isConnected(this.#conn.state), revision: this.state.revision, lastError: this.#conn.lastError, errors: this.state.errorCounts() };
  }
}

export function createEtcdStore(options: EtcdStoreOptions): EtcdStore {
  return new EtcdStore(options);
}
