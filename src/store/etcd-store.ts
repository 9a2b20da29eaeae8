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
//  - While etcd is reachable but not writable (a leader election), calls are retried with backoff
//    for up to RETRY_WINDOW_MS and succeed as soon as etcd accepts them; see "Fault handling".
//  - A key or value that cannot be used (written by hand or by another tool: bad path, no string
//    target, data beyond routing/route-data.ts's bounds) is skipped with a logged error and listed
//    by skippedRoutes() until the key is deleted or gets a usable value; the rest is live. A
//    skipped put leaves the key's previous usable value (if any) live, as the table does for a
//    bad target.
//  - Activity: each replica writes its own key per route in batched transactions; readers take
//    the maximum over replicas, so idle culling sees activity from any replica.
//  - The replica registry is also watched (etcd-replica-watch.ts) for `watchReplicas`.

import type * as etcd3 from 'etcd3';
import type { Etcd3, IKeyValue, IOptions, Lease, Watcher } from 'etcd3';
import { createRequire } from 'node:module';

// etcd3 (and the gRPC stack under it, ~30 MB of RSS) is loaded only when an etcd store is created:
// memory- and file-store processes, and data-plane workers, never pay for it.
const loadEtcd3 = (): typeof etcd3 => createRequire(import.meta.url)('etcd3') as typeof etcd3;
import { hostname } from 'node:os';
import { ErrorCode, SwitchyardError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { routeDataProblem } from '../routing/route-data.js';
import { validateRoutePath } from '../routing/route-path.js';
import type { RouteChange, RouteData } from '../routing/table.js';
import { MirroredStore } from './local-state.js';
import { createEtcdReplicaWatch, parseReplica, type EtcdReplicaWatch } from './etcd-replica-watch.js';
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

// ---------------------------------------------------------------- Fault handling
//
// etcd3's defaults (a per-host circuit breaker opening for 5 s after 3 consecutive failures, and
// 3 immediate retries) are replaced. During a leader change every member answers errors for a
// moment ("raft proposal dropped", timeouts): those tripped the breakers of live members too, and
// one replica then answered 503 "circuit breaker is open" to every write for 5-8 s after etcd was
// writable again. Now:
//  - per host, only *transport* failures (the member itself is unreachable) count: after 2 in a
//    row the host is skipped for HOST_DOWN_MS, so calls go to the other members. Errors answered
//    by a live member never skip it.
//  - etcd3 does not retry; EtcdStore#call does, with backoff, for up to RETRY_WINDOW_MS, because
//    only it knows whether an operation may be repeated (puts and reads can; a delete is guarded,
//    see delete()). When every member is unreachable it fails at once (writes fail fast while
//    etcd is down, as before).
const RETRY_WINDOW_MS = 6000; // no new attempt after this; with callTimeoutMs (3 s) a call ends within ~9 s
const RETRY_FIRST_MS = 50;
const RETRY_MAX_MS = 500;
const HOST_DOWN_AFTER = 2;
const HOST_DOWN_MS = 1000;

/** Thrown (without calling etcd) for a host skipped as down; when every host is, etcd is unreachable. */
class EtcdHostDownError extends Error {
  constructor(host: string) {
    super(`etcd member ${host} unreachable`);
  }
}

/** The member itself could not be reached (connection refused/reset), as opposed to an error it answered. */
function isTransportError(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown; constructor?: { name?: string } };
  const msg = typeof err?.message === 'string' ? err.message : '';
  return (err?.constructor?.name === 'GRPCUnavailableError' || err?.code === 14) && !msg.includes('etcdserver:');
}

/**
 * A failure after which the operation was certainly not applied by etcd: the request never left
 * (skipped host, no connection) or was refused before being proposed to raft.
 */
function certainlyNotApplied(e: unknown): boolean {
  if (e instanceof EtcdHostDownError) return true;
  const msg = String((e as Error)?.message ?? '');
  return /No connection established|ECONNREFUSED|raft proposal dropped|etcdserver: (no leader|not capable|too many requests)/.test(msg);
}

// etcd3's policy type (cockatiel's IPolicy), named through etcd3's own options so that cockatiel,
// etcd3's dependency, is not imported here.
type Policy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>;
type PolicyContext = Parameters<Parameters<Policy['execute']>[0]>[0];

/** etcd3 calls `execute` only; the rest of cockatiel's IPolicy is not used by it. */
function policy(execute: <T>(fn: (ctx: PolicyContext) => PromiseLike<T> | T) => Promise<T>): Policy {
  return { execute } as unknown as Policy;
}
const noSignal = (): PolicyContext => ({ signal: new AbortController().signal });

function hostGate(host: string): Policy {
  let failures = 0;
  let downUntil = 0;
  return policy(async (fn) => {
    if (Date.now() < downUntil) throw new EtcdHostDownError(host);
    try {
      const r = await fn(noSignal());
      failures = 0;
      return r;
    } catch (e) {
      if (isTransportError(e)) {
        if (++failures >= HOST_DOWN_AFTER) downUntil = Date.now() + HOST_DOWN_MS;
      } else {
        failures = 0;
      }
      throw e;
    }
  });
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
  readonly #replicaWatch: EtcdReplicaWatch;

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
      faultHandling: { watchBackoff: watchBackoff(250), host: hostGate, global: policy(async (fn) => fn(noSignal())) },
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
    this.#replicaWatch = createEtcdReplicaWatch(this.#client, this.#replicasPrefix, options.log);
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
    await bounded(this.#replicaWatch.close());
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
    const activity = `${this.#activityPrefix}${path}\0`;
    // Retry guard: after an attempt that may have been applied (a timeout, a dropped connection),
    // a blind retry could delete a route re-created meanwhile, or answer 404 for our own delete.
    // So a retry then deletes only the exact version that existed before this request (mod
    // revision <= the revision this replica had seen when it arrived): such a version cannot be a
    // re-creation after our delete. A route already gone counts as deleted by us; one modified
    // since the request arrived leaves the outcome unknown: 503 (nothing applied twice).
    const seen = this.state.revision;
    let maybeApplied = false;
    const res = await this.#call(
      'delete',
      async () => {
        if (!maybeApplied) {
          return this.#client.if(key, 'Version', '>', 0).then(this.#client.delete().key(key), this.#client.delete().prefix(activity)).commit();
        }
        this.#o.log.warn('etcd delete failed mid-call; retrying on the version seen before the request', { path });
        const cur = await this.#client.kv.range({ key: Buffer.from(key) });
        const kv = cur.kvs[0];
        if (!kv) return { succeeded: true, header: cur.header };
        if (Number(kv.mod_revision) > seen) {
          throw new SwitchyardError(ErrorCode.STORE_UNAVAILABLE, 'route store (etcd) unavailable: delete outcome unknown (etcd failed mid-call and the route changed since)', { details: { op: 'delete' } });
        }
        const guarded = await this.#client.if(key, 'Mod', '==', kv.mod_revision).then(this.#client.delete().key(key), this.#client.delete().prefix(activity)).commit();
        if (!guarded.succeeded) throw new RouteChangedMeanwhile();
        return guarded;
      },
      (e) => {
        if (!certainlyNotApplied(e)) maybeApplied = true;
      },
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
      const r = parseReplica(kv, this.#replicasPrefix);
      if (r) out.push(r);
    }
    return out;
  }

  watchReplicas(listener: ReplicaListener): Unsubscribe {
    return this.#replicaWatch.subscribe(listener);
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

  /**
   * One etcd operation, retried (see "Fault handling") while etcd answers but cannot serve it yet,
   * for at most RETRY_WINDOW_MS; at once an error when every member is unreachable. `onError`
   * sees each failed attempt before the retry (delete() uses it to guard its retries).
   * Every caller's `fn` must be safe to repeat: puts and reads are (same key, same value).
   */
  async #call<T>(op: string, fn: () => Promise<T>, onError?: (e: unknown) => void): Promise<T> {
    const giveUpAt = Date.now() + RETRY_WINDOW_MS;
    let delay = RETRY_FIRST_MS;
    for (;;) {
      try {
        const r = await fn();
        if (!this.#connected && this.#watcher !== undefined) void this.#resync('etcd reachable again');
        return r;
      } catch (e) {
        if (e instanceof SwitchyardError) throw e;
        const retry =
          !this.#closed &&
          !(e instanceof EtcdHostDownError) && // every member skipped as unreachable: etcd is down
          (e instanceof RouteChangedMeanwhile || (typeof e === 'object' && e !== null && loadEtcd3().isRecoverableError(e as Error))) &&
          Date.now() + delay < giveUpAt;
        if (!retry) {
          this.state.noteError(op); // switchyard_store_errors_total{op}
          this.#fail(e);
          throw new SwitchyardError(ErrorCode.STORE_UNAVAILABLE, `route store (etcd) unavailable: ${this.#lastError}`, {
            cause: e,
            details: { op },
          });
        }
        onError?.(e);
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, RETRY_MAX_MS);
      }
    }
  }

  #fail(e: unknown): void {
    this.#connected = false;
    this.#lastError = (e as Error).message?.split('\n')[0] ?? String(e);
  }

  #parseKv(kv: IKeyValue): [string, RouteData] | undefined {
    const key = kv.key.toString();
    const raw = key.slice(this.#routesPrefix.length);
    // A later usable value (or a delete) of this key clears an earlier skip.
    this.skipped.delete(raw);
    let path: string;
    try {
      path = validateRoutePath(raw);
    } catch (e) {
      this.#skip(key, raw, (e as Error).message);
      return undefined;
    }
    let data: unknown;
    try {
      data = JSON.parse(kv.value.toString());
    } catch {
      this.#skip(key, raw, 'value is not JSON');
      return undefined;
    }
    if (typeof data !== 'object' || data === null || typeof (data as { target?: unknown }).target !== 'string') {
      this.#skip(key, raw, 'value needs a string "target"');
      return undefined;
    }
    const problem = routeDataProblem(data);
    if (problem !== undefined) {
      this.#skip(key, raw, problem);
      return undefined;
    }
    return [path, data as RouteData];
  }

  #skip(key: string, raw: string, reason: string): void {
    this.skipped.set(raw, reason);
    const line = `etcd key ${JSON.stringify(key)} skipped: ${reason}`;
    this.#o.log.error(line);
    this.#o.onInvalid?.(line);
  }

  /** Read the whole table; sets the mirror and revision. */
  async #load(): Promise<Map<string, RouteData>> {
    const res = await this.#rangeAll(this.#routesPrefix);
    const routes = new Map<string, RouteData>();
    this.skipped = new Map();
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
          this.skipped.delete(path);
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

/** A guarded delete's compare failed: the route changed between our read and our delete; look again. */
class RouteChangedMeanwhile extends Error {}

export function createEtcdStore(options: EtcdStoreOptions): EtcdStore {
  return new EtcdStore(options);
}
