// The etcd store's route mirror: the routes under <prefix>routes, held in the store's LocalState
// and kept current by one watch.
//
// Contract:
//  - start() loads the whole table (retrying with capped backoff while etcd is unreachable), then
//    watches from the loaded revision + 1; the client library resumes the watch from its last
//    revision after a disconnect.
//  - A resync (full reload, published to consumers as a `reset`, then a new watch from the loaded
//    revision) runs whenever the connection state machine enters a resync state
//    (etcd-connection-state.ts: a cancelled watch, or etcd reachable again after a failure), and
//    retries until it succeeds or the store closes. start()'s load does not emit: nobody watches yet.
//  - A key or value that cannot be used (bad path, not JSON, no string target, data beyond
//    routing/route-data.ts's bounds) is skipped with a logged error, reported to `onInvalid` and
//    listed in `skipped` until the key is deleted or gets a usable value. A skipped put leaves the
//    key's previous usable value (if any) live.
//  - applied(revision): read-your-writes for this replica (see there).

import type { IKeyValue, Watcher } from 'etcd3';
import { routeDataProblem } from '../routing/route-data.js';
import { validateRoutePath } from '../routing/route-path.js';
import type { RouteChange, RouteData } from '../routing/table.js';
import { resyncStarts, type ConnectionEvent } from './etcd-connection-state.js';
import { bounded, type EtcdConnection } from './etcd-connection.js';
import type { LocalState } from './local-state.js';

const BACKOFF_MAX_MS = 5000;
/** How long a write waits for its own revision to reach the mirror before answering anyway. */
const APPLIED_WAIT_MS = 5000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class EtcdRouteMirror {
  readonly #conn: EtcdConnection;
  readonly #state: LocalState;
  readonly #prefix: string;
  readonly #onInvalid: ((reason: string) => void) | undefined;
  #watcher: Watcher | undefined;
  /** Entries skipped when read (RouteStore.skippedRoutes): key as stored -> reason. */
  #skipped = new Map<string, string>();

  constructor(conn: EtcdConnection, state: LocalState, routesPrefix: string, onInvalid?: (reason: string) => void) {
    this.#conn = conn;
    this.#state = state;
    this.#prefix = routesPrefix;
    this.#onInvalid = onInvalid;
    conn.onState((change) => {
      if (resyncStarts(change)) void this.#resync(reasonOf(change.event));
    });
  }

  get skipped(): ReadonlyMap<string, string> {
    return this.#skipped;
  }

  async start(): Promise<void> {
    let delay = 100;
    for (;;) {
      try {
        await this.#load();
        break;
      } catch (e) {
        if (this.#conn.closed) throw e;
        this.#conn.dispatch({ type: 'failed', error: e });
        this.#conn.log.error(`etcd unreachable at startup, retrying in ${delay} ms`, { endpoints: this.#conn.endpoints.join(','), err: this.#conn.lastError });
        await sleep(delay);
        delay = Math.min(delay * 2, BACKOFF_MAX_MS);
      }
    }
    await this.#watchFrom(this.#state.revision + 1);
  }

  /** Cancel the watch (bounded: etcd may be unreachable). */
  async close(): Promise<void> {
    await bounded(this.#watcher?.cancel());
  }

  /**
   * Resolve once our watch has applied `revision` to the local mirror (read-your-writes for this
   * replica), or after a bounded wait: the write itself has succeeded either way.
   */
  applied(revision: number): Promise<number> {
    const state = this.#state;
    if (state.revision >= revision) return Promise.resolve(revision);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        un();
        resolve(revision);
      };
      const timer = setTimeout(done, APPLIED_WAIT_MS);
      const un = state.watch(state.revision, () => {
        if (state.revision >= revision) done();
      });
    });
  }

  #parseKv(kv: IKeyValue): [string, RouteData] | undefined {
    const key = kv.key.toString();
    const raw = key.slice(this.#prefix.length);
    // A later usable value (or a delete) of this key clears an earlier skip.
    this.#skipped.delete(raw);
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
    this.#skipped.set(raw, reason);
    const line = `etcd key ${JSON.stringify(key)} skipped: ${reason}`;
    this.#conn.log.error(line);
    this.#onInvalid?.(line);
  }

  /** Read the whole table; sets the mirror and revision (without emitting) and reports `loaded`. */
  async #load(): Promise<Map<string, RouteData>> {
    const res = await this.#conn.rangeAll(this.#prefix);
    const routes = new Map<string, RouteData>();
    this.#skipped = new Map();
    for (const kv of res.kvs) {
      const parsed = this.#parseKv(kv);
      if (parsed) routes.set(parsed[0], parsed[1]);
    }
    this.#state.routes = routes;
    this.#state.revision = res.revision;
    this.#state.pruneActivity();
    this.#conn.dispatch({ type: 'loaded' });
    return routes;
  }

  async #watchFrom(revision: number): Promise<void> {
    const w = await this.#conn.client.watch().prefix(this.#prefix).startRevision(String(revision)).create();
    this.#watcher = w;
    w.on('data', (res) => {
      if (w !== this.#watcher || res.events.length === 0) return;
      const changes: RouteChange[] = [];
      for (const ev of res.events) {
        if (ev.type === 'Put') {
          const parsed = this.#parseKv(ev.kv);
          if (!parsed) continue;
          this.#state.routes.set(parsed[0], parsed[1]);
          changes.push({ type: 'put', path: parsed[0], data: parsed[1] });
        } else {
          const key = ev.kv.key.toString();
          const path = key.slice(this.#prefix.length);
          this.#skipped.delete(path);
          if (this.#state.routes.delete(path)) changes.push({ type: 'delete', path });
        }
      }
      const rev = Number(res.header.revision);
      if (changes.length > 0) this.#state.emit({ type: 'changes', revision: rev, changes });
      else this.#state.revision = Math.max(this.#state.revision, rev);
    });
    w.on('connected', () => {
      this.#conn.dispatch({ type: 'reachable', reason: 'watch reconnected' });
    });
    w.on('disconnected', (e: Error) => {
      if (this.#conn.closed) return;
      this.#conn.dispatch({ type: 'failed', error: e });
      this.#conn.log.warn('etcd watch disconnected; serving the last table', { err: this.#conn.lastError });
    });
    w.on('error', (e: Error) => {
      if (this.#conn.closed) return;
      // A cancelled watch (e.g. compacted history): start again from a full read.
      this.#conn.log.warn('etcd watch cancelled; resyncing', { err: e.message });
      this.#conn.dispatch({ type: 'cancelled', reason: 'watch cancelled' });
    });
  }

  /**
   * Full reload, published as a reset, and a new watch from the loaded revision. Started only by
   * a state change into a resync state, so one runs at a time: it ends by dispatching `watching`
   * (leaving the resync states) and returns in the same turn; `failed` keeps the state in
   * `reconnecting` and the loop retries with backoff.
   */
  async #resync(why: string): Promise<void> {
    let delay = 100;
    while (!this.#conn.closed) {
      try {
        const old = this.#watcher;
        this.#watcher = undefined;
        await old?.cancel().catch(() => {});
        const routes = await this.#load();
        this.#state.emit({ type: 'reset', snapshot: { revision: this.#state.revision, routes: new Map(routes) } });
        await this.#watchFrom(this.#state.revision + 1);
        this.#conn.dispatch({ type: 'watching' }); // the replica registry re-registers on this change
        this.#conn.log.info(`etcd resynced (${why})`, { revision: this.#state.revision, routes: routes.size });
        return;
      } catch (e) {
        this.#conn.dispatch({ type: 'failed', error: e });
        await sleep(delay);
        delay = Math.min(delay * 2, BACKOFF_MAX_MS);
      }
    }
  }
}

function reasonOf(event: ConnectionEvent): string {
  return event.type === 'reachable' || event.type === 'cancelled' ? event.reason : event.type;
}
