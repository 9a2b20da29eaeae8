// The etcd store's connection: the etcd3 client and how it is built, the fault-handling policies
// that replace etcd3's own, the one bounded-retry `call` every etcd operation of the store goes
// through, and the connection state (etcd-connection-state.ts) with its last error.
//
// Contract:
//  - `call` retries an operation while etcd answers but cannot serve it yet (see "Fault handling"),
//    fails at once with SWY_STORE_UNAVAILABLE when every member is unreachable, and reports each
//    outcome to the state machine: a success is `reachable`, a final failure `failed`.
//  - The state changes only through `dispatch`; `onState` listeners hear every actual change (the
//    route mirror starts a resync on one, the replica registry re-registers after one).
//  - etcd3 (and the gRPC stack under it, ~30 MB of RSS) is loaded only when a connection is
//    created: memory- and file-store processes, and data-plane workers, never pay for it.

import type * as etcd3 from 'etcd3';
import type { Etcd3, IKeyValue, IOptions } from 'etcd3';
import { createRequire } from 'node:module';
import { ErrorCode, SwitchyardError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { nextState, type ConnectionEvent, type ConnectionState, type StateChange } from './etcd-connection-state.js';

const loadEtcd3 = (): typeof etcd3 => createRequire(import.meta.url)('etcd3') as typeof etcd3;

export interface EtcdConnectionOptions {
  readonly endpoints: readonly string[];
  readonly log: Logger;
  readonly auth?: { readonly username: string; readonly password: string };
  readonly tls?: { readonly ca?: Buffer; readonly cert?: Buffer; readonly key?: Buffer };
  /** Deadline of one etcd call; API writes fail with 503 after it when etcd is down. */
  readonly callTimeoutMs?: number;
  /** A call failed for good (after its retries): switchyard_store_errors_total{op}. */
  readonly onCallFailed?: (op: string) => void;
}

// Keys per range page. Pages are also capped by the gRPC receive limit raised below (64 MB), so
// even routes with large data fit; fewer, larger pages load a 100k table faster.
const PAGE = 20_000;
// etcd3's watch reconnect backoff (its default grows to 30 s). Capped low: a watch resumes within
// 2 s of etcd coming back, and a closed client's last pending retry (see forgetWatchers) ends soon.
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
//  - per host, only failures to *connect* (the member itself is unreachable: refused, no route)
//    count: after 2 in a row the host is skipped for HOST_DOWN_MS, so calls go to the other
//    members. Errors answered by a live member never skip it, and neither do broken calls
//    ("Connection dropped", "read ECONNRESET"): etcd3 reset a host's channel after any
//    recoverable error (e.g. "etcdserver: leader changed"; no longer, see keepChannels), which
//    broke other calls in flight on that live member; counting those skipped all three members
//    of a healthy cluster during an election (one replica then failed writes at once with
//    "unreachable"). A member that really died refuses the next connection, which counts.
//  - etcd3 does not retry; EtcdConnection#call does, with backoff, for up to RETRY_WINDOW_MS,
//    because only the store knows whether an operation may be repeated (puts and reads can; a
//    delete is guarded, see EtcdStore#delete). When every member is unreachable it fails at once
//    (writes fail fast while etcd is down, as before).
const RETRY_WINDOW_MS = 6000; // no new attempt after this; with callTimeoutMs (3 s) a call ends within ~9 s
const RETRY_FIRST_MS = 50;
const RETRY_MAX_MS = 500;
const HOST_DOWN_AFTER = 2;
const HOST_DOWN_MS = 1000;
// grpc-js's reconnect backoff for a member that refused (its defaults: 1 s growing to 120 s).
const RECONNECT_BACKOFF_FIRST_MS = 250;
const RECONNECT_BACKOFF_MAX_MS = 1000;

/** Thrown (without calling etcd) for a host skipped as down; when every host is, etcd is unreachable. */
class EtcdHostDownError extends Error {
  constructor(host: string) {
    super(`etcd member ${host} unreachable`);
  }
}

/** A guarded delete's compare failed: the route changed between our read and our delete; look again. */
export class RouteChangedMeanwhile extends Error {}

/**
 * The member itself could not be connected to (refused, unreachable), as opposed to an error it
 * answered or a call broken mid-way on a live member's reset channel (see "Fault handling").
 */
export function isUnreachable(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown; constructor?: { name?: string } };
  const msg = typeof err?.message === 'string' ? err.message : '';
  if (!(err?.constructor?.name === 'GRPCUnavailableError' || err?.code === 14) || msg.includes('etcdserver:')) return false;
  return /No connection established|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN/.test(msg);
}

/**
 * A failure after which the operation was certainly not applied by etcd: the request never left
 * (skipped host, no connection) or was refused before being proposed to raft.
 */
export function certainlyNotApplied(e: unknown): boolean {
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
      if (isUnreachable(e)) {
        if (++failures >= HOST_DOWN_AFTER) downUntil = Date.now() + HOST_DOWN_MS;
      } else {
        failures = 0;
      }
      throw e;
    }
  });
}

/** The etcd3 client with the options above (no connection is made until the first call). */
export function createEtcdClient(options: Omit<EtcdConnectionOptions, 'log'>): Etcd3 {
  const timeout = options.callTimeoutMs ?? 3000;
  const opts: IOptions = {
    hosts: options.endpoints.map((e) => (options.tls ? `https://${e}` : `http://${e}`)),
    dialTimeout: timeout,
    grpcOptions: {
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      // A member that was down is re-dialled by its channel (see keepChannels) within ~1 s of coming back.
      'grpc.initial_reconnect_backoff_ms': RECONNECT_BACKOFF_FIRST_MS,
      'grpc.max_reconnect_backoff_ms': RECONNECT_BACKOFF_MAX_MS,
    },
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
  const client = new (loadEtcd3().Etcd3)(opts);
  keepChannels(client);
  return client;
}

// ---------------------------------------------------------------- etcd3 internals (the only reach)

/** The part of etcd3 1.1.2's private ConnectionPool Host (one per member) that keepChannels wraps. */
export interface Etcd3HostInternals {
  cachedServices: Record<string, unknown>;
  resetAllServices(): void;
  close(): void;
}

/** The client's per-member hosts (Etcd3#pool.hosts), or undefined if etcd3 no longer has that shape. */
export function hostsOf(client: Etcd3): Etcd3HostInternals[] | undefined {
  const hosts = (client as unknown as { pool?: { hosts?: unknown } }).pool?.hosts;
  if (!Array.isArray(hosts)) return undefined;
  const ok = hosts.every((h: Partial<Etcd3HostInternals>) => typeof h?.resetAllServices === 'function' && typeof h.close === 'function' && typeof h.cachedServices === 'object');
  return ok ? (hosts as Etcd3HostInternals[]) : undefined;
}

/**
 * etcd3 1.1.2 calls Host#resetAllServices after every recoverable error of a member, and on every
 * broken stream: it closes that member's gRPC clients (KV, Watch, Lease, …), and the next call
 * creates new ones, hence a new channel and, as grpc-js's global subchannel pool drops a
 * subchannel as soon as no channel uses it, a new TCP connection. The replaced connection was
 * kept open for good in two ways (bench/etcd-client-connections.mjs; the soak's etcd members'
 * fds grew by 3 per election, 1 -> 2-3 connections per member and replica):
 *  - a live member (errors it answered during an election: "leader changed", "raft proposal
 *    dropped", deadlines): closing a channel does not end the calls on it, grpc-js closes the old
 *    HTTP/2 session gracefully, and the long-lived streams on it (the route watch, the registry's
 *    lease keep-alive, or streams queued while it was connecting) keep it open as long as they live;
 *  - the restarted member: a channel closed while its subchannel is in TRANSIENT_FAILURE (in
 *    reconnect backoff, asked to keep connecting by pick-first) is dropped from the pool, but the
 *    subchannel still dials when its backoff ends, and the connection it makes belongs to no
 *    channel and is never closed.
 * The resets buy nothing with grpc-js 1.14: a channel whose connection broke reconnects by itself
 * on the next call, and a member that was down is re-dialled by the channel's own reconnect
 * backoff, capped low below (RECONNECT_BACKOFF_MAX_MS). So the hosts' channels are kept until the
 * client is closed: at most one connection per member (the subchannel every service shares).
 */
function keepChannels(client: Etcd3): void {
  for (const host of hostsOf(client) ?? []) {
    const reset = host.resetAllServices.bind(host);
    const close = host.close.bind(host);
    let closing = false;
    host.close = () => {
      closing = true; // Host#close closes the channels through resetAllServices
      close();
    };
    host.resetAllServices = () => {
      if (closing) reset();
    };
  }
}

/** The part of etcd3 1.1.2's private WatchManager (Namespace#watchManager) that close() relies on. */
export interface Etcd3WatchManagerInternals {
  watchers: unknown[];
  expectedClosers: Set<unknown>;
}

/** The client's private watch manager, or undefined if etcd3 no longer has one of that shape. */
export function watchManagerOf(client: Etcd3): Etcd3WatchManagerInternals | undefined {
  const m = (client as unknown as { watchManager?: Partial<Etcd3WatchManagerInternals> }).watchManager;
  return m && Array.isArray(m.watchers) && m.expectedClosers instanceof Set ? (m as Etcd3WatchManagerInternals) : undefined;
}

/**
 * After client.close(): etcd3 1.1.2's WatchManager re-arms a (ref'd) reconnect timer after a
 * broken stream for as long as it lists watchers, even after close(); a cancel that could not
 * reach etcd leaves ours listed, so the timers would keep an in-process user (tests, embedders)
 * alive forever. Empty the list: the one retry already scheduled (<= 2 s) then finds nothing to do
 * (WatchManager#establishStream returns when `watchers` is empty). etcd3 is pinned exactly in
 * package.json, and test/unit/etcd3-internals.test.ts fails if this shape or that early return
 * changes.
 */
function forgetWatchers(client: Etcd3): void {
  const manager = watchManagerOf(client);
  if (!manager) return;
  manager.watchers = [];
  manager.expectedClosers.clear();
}

/** Close an etcd3 client so that no timer of it keeps the process alive (see forgetWatchers). */
export function closeEtcdClient(client: Etcd3): void {
  client.close();
  forgetWatchers(client);
}

// ---------------------------------------------------------------- the connection

/** Bounded: with etcd unreachable, cancelling a watch or revoking a lease can wait forever. */
export function bounded(p: Promise<unknown> | undefined): Promise<unknown> {
  return p ? Promise.race([p.catch(() => {}), new Promise((r) => setTimeout(r, 2000).unref())]) : Promise.resolve();
}

export class EtcdConnection {
  readonly #onCallFailed: ((op: string) => void) | undefined;
  readonly client: Etcd3;
  readonly log: Logger;
  readonly endpoints: readonly string[];
  #state: ConnectionState = 'starting';
  #lastError: string | undefined;
  readonly #listeners = new Set<(change: StateChange) => void>();

  constructor(options: EtcdConnectionOptions) {
    this.client = createEtcdClient(options);
    this.log = options.log;
    this.endpoints = options.endpoints;
    this.#onCallFailed = options.onCallFailed;
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get closed(): boolean {
    return this.#state === 'closed';
  }

  /** The first line of the last failure's message; cleared by a successful full read. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** Hear every state change (not events that leave the state as it is). */
  onState(listener: (change: StateChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The one way the state changes. `failed` also records the error, `loaded` clears it. */
  dispatch(event: ConnectionEvent): void {
    if (event.type === 'failed') {
      const e = event.error;
      this.#lastError = (e as Error).message?.split('\n')[0] ?? String(e);
    } else if (event.type === 'loaded') {
      this.#lastError = undefined;
    }
    const from = this.#state;
    const to = nextState(from, event);
    if (to === from) return;
    this.#state = to;
    for (const l of this.#listeners) l({ from, to, event });
  }

  /**
   * One etcd operation, retried (see "Fault handling") while etcd answers but cannot serve it yet,
   * for at most RETRY_WINDOW_MS; at once an error when every member is unreachable. `onError`
   * sees each failed attempt before the retry (EtcdStore#delete uses it to guard its retries).
   * Every caller's `fn` must be safe to repeat: puts and reads are (same key, same value).
   */
  async call<T>(op: string, fn: () => Promise<T>, onError?: (e: unknown) => void): Promise<T> {
    const giveUpAt = Date.now() + RETRY_WINDOW_MS;
    let delay = RETRY_FIRST_MS;
    for (;;) {
      try {
        const r = await fn();
        this.dispatch({ type: 'reachable', reason: 'etcd reachable again' });
        return r;
      } catch (e) {
        if (e instanceof SwitchyardError) throw e;
        const retry =
          !this.closed &&
          !(e instanceof EtcdHostDownError) && // every member skipped as unreachable: etcd is down
          (e instanceof RouteChangedMeanwhile || (typeof e === 'object' && e !== null && loadEtcd3().isRecoverableError(e as Error))) &&
          Date.now() + delay < giveUpAt;
        if (!retry) {
          this.#onCallFailed?.(op);
          this.dispatch({ type: 'failed', error: e });
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

  /**
   * Every key under `prefix`, read in pages at one revision: a single range response over gRPC's
   * 4 MB message limit (≈ 40k routes) would fail, and pages keep memory bounded.
   */
  async rangeAll(prefix: string): Promise<{ kvs: IKeyValue[]; revision: number }> {
    const start = Buffer.from(prefix);
    const end = Buffer.from(start);
    end[end.length - 1]! += 1; // prefix end: last byte + 1 (prefixes here end in a printable byte)
    const kvs: IKeyValue[] = [];
    let key = start;
    let revision: string | undefined;
    for (;;) {
      const res = await this.client.kv.range({ key, range_end: end, limit: PAGE, ...(revision ? { revision } : {}) });
      revision ??= res.header.revision;
      kvs.push(...res.kvs);
      if (!res.more || res.kvs.length === 0) break;
      key = Buffer.concat([res.kvs[res.kvs.length - 1]!.key, Buffer.from([0])]);
    }
    return { kvs, revision: Number(revision) };
  }

  /** Close the client (after the parts cancelled their watches and lease). */
  closeClient(): void {
    closeEtcdClient(this.client);
  }
}
