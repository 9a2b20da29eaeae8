// etcd store (v3 API): many Switchyard replicas share one routing table.
//
// Layout under the key prefix (default /switchyard/):
//   <prefix>routes<path>                 JSON route data, one key per route
//   <prefix>activity<path>\0<replica>    last activity (ms since epoch) seen by one replica
//   <prefix>replicas/<replica>           {"revision": n}: the table version this replica serves;
//                                        on a lease, so a dead replica disappears after its TTL
// The table version is the etcd revision, so every replica agrees on it.
//
// Contract (beyond RouteStore's):
//  - start() loads the whole table (retrying with capped backoff while etcd is unreachable), then
//    watches from the loaded revision + 1; the client library resumes the watch from its last
//    revision after a disconnect. A cancelled watch (history compacted) triggers a full resync,
//    delivered to consumers as a `reset`.
//  - While etcd is unreachable the local mirror keeps serving reads (health().connected = false,
//    so the API can say they may be stale) and writes fail fast with SWY_STORE_UNAVAILABLE.
//  - A key that does not parse (written by hand) is skipped with a logged error; the rest is live.
//  - Activity: each replica writes its own key per route in batched transactions; readers take
//    the maximum over replicas, so idle culling sees activity from any replica.

import type * as etcd3 from 'etcd3';
import type { Etcd3, IKeyValue, IOptions, Lease, Watcher } from 'etcd3';
import { createRequire } from 'node:module';

// etcd3 (and the gRPC stack under it, ~30 MB of RSS) is loaded only when an etcd store is created:
// memory- and file-store processes, and data-plane workers, never pay for it.
const loadEtcd3 = (): typeof etcd3 => createRequire(import.meta.url)('etcd3') as typeof etcd3;
import { hostname } from 'node:os';
import { ErrorCode, SwitchyardError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { validateRoutePath } from '../routing/route-path.js';
import type { RouteChange, RouteData } from '../routing/table.js';
import { MirroredStore } from './local-state.js';
import type { ReplicaInfo, RouteStore, StoreHealth } from './route-store.js';

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

const MAX_TXN_OPS = 128; // etcd's default --max-txn-ops
// Keys per range page. Pages are also capped by the gRPC receive limit raised below (64 MB), so
// even routes with large data fit; fewer, larger pages load a 100k table faster.
const PAGE = 20_000;
const BACKOFF_MAX_MS = 5000;
// etcd3's watch reconnect backoff (its default grows to 30 s). Capped low: a watch resumes within
// 2 s of etcd coming back, and a closed client's last pending retry (see close()) ends soon.
const WATCH_BACKOFF_MAX_MS = 2000;

/** etcd3's IBackoff (cockatiel's interface), structurally: 250 ms doubling to WATCH_BACKOFF_MAX_MS. */
interface Backoff {
  readonly duration: number;
  next(): Backoff;
}
function watchBackoff(ms: number): Backoff {
  return { duration: ms, next: () => watchBackoff(Math.min(ms * 2, WATCH_BACKOFF_MAX_MS)) };
}

export class EtcdStore extends MirroredStore implements RouteStore {
  readonly kind = 'etcd';
  readonly #o: EtcdStoreOptions;
  readonly #client: Etcd3;
  readonly #routesPrefix: string;
  readonly #activityPrefix: string;
  readonly #replicasPrefix: string;
  #lease: Lease | undefined;
  #reportTarget = 0;
  #reported = 0;
  #reporting = false;
  readonly #replica: string;
  #watcher: Watcher | undefined;
  #connected = false;
  #lastError: string | undefined;
  #closed = false;
  #resyncing: Promise<void> | undefined;
  /** Last activity values read or written, served when etcd is unreachable. */
  readonly #activityCache = new Map<string, number>();

  constructor(options: EtcdStoreOptions) {
    super();
    this.#o = options;
    const prefix = options.prefix.endsWith('/') ? options.prefix : options.prefix + '/';
    this.#routesPrefix = prefix + 'routes';
    this.#activityPrefix = prefix + 'activity';
    this.#replicasPrefix = prefix + 'replicas/';
    this.#replica = options.replicaId ?? `${hostname()}-${process.pid}`;
    const timeout = options.callTimeoutMs ?? 3000;
    const opts: IOptions = {
      hosts: options.endpoints.map((e) => (options.tls ? `https://${e}` : `http://${e}`)),
      dialTimeout: timeout,
      grpcOptions: { 'grpc.max_receive_message_length': 64 * 1024 * 1024 },
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
      faultHandling: { watchBackoff: watchBackoff(250) },
      ...(options.auth ? { auth: { username: options.auth.username, password: options.auth.password } } : {}),
      ...(options.tls
        ? {
            credentials: {
              rootCertificate: options.tls.ca ?? Buffer.alloc(0),
              ...(options.tls.key ? { privateKey: options.tls.key } : {}),
              ...(options.tls.cert ? { certChain: options.tls.cert } : {}),
            },
          }
        : {}),
    };
    this.#client = new (loadEtcd3().Etcd3)(opts);
  }

  async start(): Promise<void> {
    let delay = 100;
    for (;;) {
      try {
        await this.#load();
        break;
      } catch (e) {
        if (this.#closed) throw e;
        this.#fail(e);
        this.#o.log.error(`etcd unreachable at startup, retrying in ${delay} ms`, { endpoints: this.#o.endpoints.join(','), err: this.#lastError });
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, BACKOFF_MAX_MS);
      }
    }
    await this.#watchFrom(this.state.revision + 1);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.state.clearListeners();
    // Bounded: with etcd unreachable, cancelling the watch stream or revoking the lease can wait
    // forever, and a SIGTERM must still end the process (the lease then expires on its own).
    const bounded = (p: Promise<unknown> | undefined): Promise<unknown> =>
      p ? Promise.race([p.catch(() => {}), new Promise((r) => setTimeout(r, 2000).unref())]) : Promise.resolve();
    await bounded(this.#watcher?.cancel());
    await bounded(this.#lease?.revoke());
    this.#client.close();
    // etcd3 1.1.2: a watch stream that broke re-arms a (ref'd) reconnect timer for as long as its
    // WatchManager lists watchers, even after close(); a cancel that could not reach etcd leaves
    // ours listed, so the timers would keep an in-process user (tests, embedders) alive forever.
    // Empty the list: the one retry already scheduled (<= 2 s) then finds nothing to do.
    const manager = (this.#client as unknown as { watchManager?: { watchers?: unknown[]; expectedClosers?: Set<unknown> } }).watchManager;
    if (manager?.watchers) manager.watchers = [];
    manager?.expectedClosers?.clear();
  }

  async put(path: string, data: RouteData): Promise<number> {
    const res = await this.#call('write', () => this.#client.put(this.#routesPrefix + path).value(JSON.stringify(data)).exec());
    return this.#applied(Number(res.header.revision));
  }

  async delete(path: string): Promise<number | null> {
    const key = this.#routesPrefix + path;
    const res = await this.#call('delete', () =>
      this.#client
        .if(key, 'Version', '>', 0)
        .then(this.#client.delete().key(key), this.#client.delete().prefix(`${this.#activityPrefix}${path}\0`))
        .commit(),
    );
    this.#activityCache.delete(path);
    return res.succeeded ? this.#applied(Number(res.header.revision)) : null;
  }

  /**
   * Resolve once our watch has applied `revision` to the local mirror (read-your-writes for this
   * replica), or after a bounded wait: the write itself has succeeded either way.
   */
  #applied(revision: number): Promise<number> {
    if (this.state.revision >= revision) return Promise.resolve(revision);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        un();
        resolve(revision);
      };
      const timer = setTimeout(done, 5000);
      const un = this.state.watch(this.state.revision, () => {
        if (this.state.revision >= revision) done();
      });
    });
  }

  async writeActivity(batch: ReadonlyMap<string, number>): Promise<void> {
    // Only what is newer than anything known for the path: readers take the maximum anyway, and
    // this replica's own key must never move backwards.
    const entries = [...batch].filter(([p, t]) => this.state.routes.has(p) && (this.#activityCache.get(p) ?? 0) < t);
    for (const [p, t] of entries) this.#activityCache.set(p, t);
    for (let i = 0; i < entries.length; i += MAX_TXN_OPS) {
      const chunk = entries.slice(i, i + MAX_TXN_OPS);
      await this.#call('activity', () =>
        this.#client
          .if(this.#routesPrefix, 'Version', '>', -1) // always true: a txn is how etcd batches puts
          .then(...chunk.map(([p, t]) => this.#client.put(`${this.#activityPrefix}${p}\0${this.#replica}`).value(String(t))))
          .commit(),
      );
    }
  }

  async readActivity(): Promise<ReadonlyMap<string, number>> {
    try {
      const kvs = await this.#call('read', () => this.#rangeAll(this.#activityPrefix));
      const out = new Map<string, number>();
      for (const kv of kvs.kvs) {
        const key = kv.key.toString();
        const path = key.slice(this.#activityPrefix.length, key.lastIndexOf('\0'));
        const t = Number(kv.value.toString());
        if (Number.isFinite(t) && (out.get(path) ?? 0) < t) out.set(path, t);
      }
      for (const [p, t] of out) if ((this.#activityCache.get(p) ?? 0) < t) this.#activityCache.set(p, t);
      return out;
    } catch {
      return new Map(this.#activityCache); // etcd down: what this replica last knew
    }
  }

  async activityOf(path: string): Promise<number | undefined> {
    try {
      const res = await this.#call('read', () => this.#client.getAll().prefix(`${this.#activityPrefix}${path}\0`).exec());
      let best: number | undefined;
      for (const kv of res.kvs) {
        const t = Number(kv.value.toString());
        if (Number.isFinite(t) && (best === undefined || t > best)) best = t;
      }
      return best;
    } catch {
      return this.#activityCache.get(path);
    }
  }

  reportApplied(revision: number): void {
    if (revision <= this.#reportTarget) return;
    this.#reportTarget = revision;
    if (!this.#reporting) void this.#report();
  }

  async replicas(): Promise<ReplicaInfo[]> {
    const res = await this.#call('read', () => this.#client.getAll().prefix(this.#replicasPrefix).exec());
    const out: ReplicaInfo[] = [];
    for (const kv of res.kvs) {
      try {
        const v = JSON.parse(kv.value.toString()) as { revision: number };
        out.push({ id: kv.key.toString().slice(this.#replicasPrefix.length), revision: Number(v.revision) });
      } catch {
        // a foreign or half-written key: not a replica
      }
    }
    return out;
  }

  /** One in-flight registry write at a time; always ends on the newest applied revision. */
  async #report(): Promise<void> {
    this.#reporting = true;
    try {
      while (!this.#closed && this.#reported < this.#reportTarget) {
        const rev = this.#reportTarget;
        if (!this.#lease) {
          this.#lease = this.#client.lease(10);
          this.#lease.on('lost', () => {
            this.#lease = undefined;
            this.#reported = 0; // re-register on the next report
          });
        }
        await this.#lease.put(this.#replicasPrefix + this.#replica).value(JSON.stringify({ revision: rev }));
        this.#reported = rev;
      }
    } catch (e) {
      this.#o.log.debug('replica registry write failed; retried on the next change or resync', { err: e });
    } finally {
      this.#reporting = false;
    }
  }

  health(): StoreHealth {
    return { kind: this.kind, connected: this.#connected, revision: this.state.revision, lastError: this.#lastError, errors: this.state.errorCounts() };
  }

  // ---------------------------------------------------------------- internals

  /**
   * Every key under `prefix`, read in pages at one revision: a single range response over gRPC's
   * 4 MB message limit (≈ 40k routes) would fail, and pages keep memory bounded.
   */
  async #rangeAll(prefix: string): Promise<{ kvs: IKeyValue[]; revision: number }> {
    const start = Buffer.from(prefix);
    const end = Buffer.from(start);
    end[end.length - 1]! += 1; // prefix end: last byte + 1 (prefixes here end in a printable byte)
    const kvs: IKeyValue[] = [];
    let key = start;
    let revision: string | undefined;
    for (;;) {
      const res = await this.#client.kv.range({ key, range_end: end, limit: PAGE, ...(revision ? { revision } : {}) });
      revision ??= res.header.revision;
      kvs.push(...res.kvs);
      if (!res.more || res.kvs.length === 0) break;
      key = Buffer.concat([res.kvs[res.kvs.length - 1]!.key, Buffer.from([0])]);
    }
    return { kvs, revision: Number(revision) };
  }

  async #call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      const r = await fn();
      if (!this.#connected && this.#watcher !== undefined) void this.#resync('etcd reachable again');
      return r;
    } catch (e) {
      this.state.noteError(op); // switchyard_store_errors_total{op}
      this.#fail(e);
      throw new SwitchyardError(ErrorCode.STORE_UNAVAILABLE, `route store (etcd) unavailable: ${this.#lastError}`, {
        cause: e,
        details: { op },
      });
    }
  }

  #fail(e: unknown): void {
    this.#connected = false;
    this.#lastError = (e as Error).message?.split('\n')[0] ?? String(e);
  }

  #parseKv(kv: IKeyValue): [string, RouteData] | undefined {
    const key = kv.key.toString();
    let path: string;
    try {
      path = validateRoutePath(key.slice(this.#routesPrefix.length));
    } catch (e) {
      this.#skip(`etcd key ${JSON.stringify(key)} skipped: ${(e as Error).message}`);
      return undefined;
    }
    let data: unknown;
    try {
      data = JSON.parse(kv.value.toString());
    } catch {
      this.#skip(`etcd key ${JSON.stringify(key)} skipped: value is not JSON`);
      return undefined;
    }
    if (typeof data !== 'object' || data === null || typeof (data as { target?: unknown }).target !== 'string') {
      this.#skip(`etcd key ${JSON.stringify(key)} skipped: value needs a string "target"`);
      return undefined;
    }
    return [path, data as RouteData];
  }

  #skip(reason: string): void {
    this.#o.log.error(reason);
    this.#o.onInvalid?.(reason);
  }

  /** Read the whole table; sets the mirror and revision. */
  async #load(): Promise<Map<string, RouteData>> {
    const res = await this.#rangeAll(this.#routesPrefix);
    const routes = new Map<string, RouteData>();
    for (const kv of res.kvs) {
      const parsed = this.#parseKv(kv);
      if (parsed) routes.set(parsed[0], parsed[1]);
    }
    this.state.routes = routes;
    this.state.revision = res.revision;
    this.state.pruneActivity();
    this.#connected = true;
    this.#lastError = undefined;
    return routes;
  }

  async #watchFrom(revision: number): Promise<void> {
    const w = await this.#client.watch().prefix(this.#routesPrefix).startRevision(String(revision)).create();
    this.#watcher = w;
    w.on('data', (res) => {
      if (w !== this.#watcher || res.events.length === 0) return;
      const changes: RouteChange[] = [];
      for (const ev of res.events) {
        if (ev.type === 'Put') {
          const parsed = this.#parseKv(ev.kv);
          if (!parsed) continue;
          this.state.routes.set(parsed[0], parsed[1]);
          changes.push({ type: 'put', path: parsed[0], data: parsed[1] });
        } else {
          const key = ev.kv.key.toString();
          const path = key.slice(this.#routesPrefix.length);
          if (this.state.routes.delete(path)) changes.push({ type: 'delete', path });
        }
      }
      const rev = Number(res.header.revision);
      if (changes.length > 0) this.state.emit({ type: 'changes', revision: rev, changes });
      else this.state.revision = Math.max(this.state.revision, rev);
    });
    w.on('connected', () => {
      if (!this.#connected) void this.#resync('watch reconnected');
    });
    w.on('disconnected', (e: Error) => {
      if (this.#closed) return;
      this.#fail(e);
      this.#o.log.warn('etcd watch disconnected; serving the last table', { err: this.#lastError });
    });
    w.on('error', (e: Error) => {
      if (this.#closed) return;
      // A cancelled watch (e.g. compacted history): start again from a full read.
      this.#o.log.warn('etcd watch cancelled; resyncing', { err: e.message });
      void this.#resync('watch cancelled');
    });
  }

  /** Full reload, published as a reset, and a new watch from the loaded revision. */
  #resync(why: string): Promise<void> {
    if (this.#resyncing) return this.#resyncing;
    this.#resyncing = (async () => {
      let delay = 100;
      while (!this.#closed) {
        try {
          const old = this.#watcher;
          this.#watcher = undefined;
          await old?.cancel().catch(() => {});
          const routes = await this.#load();
          this.state.emit({ type: 'reset', snapshot: { revision: this.state.revision, routes: new Map(routes) } });
          await this.#watchFrom(this.state.revision + 1);
          this.#reported = 0;
          if (this.#reportTarget > 0) void this.#report();
          this.#o.log.info(`etcd resynced (${why})`, { revision: this.state.revision, routes: routes.size });
          return;
        } catch (e) {
          this.#fail(e);
          await new Promise((r) => setTimeout(r, delay));
          delay = Math.min(delay * 2, BACKOFF_MAX_MS);
        }
      }
    })().finally(() => {
      this.#resyncing = undefined;
    });
    return this.#resyncing;
  }
}

export function createEtcdStore(options: EtcdStoreOptions): EtcdStore {
  return new EtcdStore(options);
}
