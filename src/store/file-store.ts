// File store: routes in one TOML (or JSON) file that survives restarts and can be edited by hand.
//
// Contract (beyond RouteStore's):
//  - Writes are atomic: the whole file is written to a temp file in the same directory, fsynced,
//    then renamed over the old one; a crash leaves either the old or the new file, never half.
//  - The file is watched; a hand edit takes effect as a `reset` to the new content. Our own writes
//    are recognised by content and not re-applied.
//  - A file that does not parse keeps the last good table live; the error (with its line) is
//    logged and shown in health() until a good version appears. An entry that parses but is not a
//    usable route (bad key, no string target, data beyond routing/route-data.ts's bounds) is
//    skipped with a logged error and listed by skippedRoutes(); the rest stays live.
//  - Activity is kept in a sidecar file (<file>.activity.json), written once per flush, so the
//    hand-edited file does not churn every few seconds.
//
// Format (TOML):           [routes."/user/mary"]
//                          target = "http://10.0.1.5:12345"
//                          jupyterhub = true
// Format (JSON, *.json):   {"routes": {"/user/mary": {"target": "...", "jupyterhub": true}}}

import { watch, type FSWatcher } from 'node:fs';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { parse as parseToml, stringify as stringifyToml } from 'smol-toml';
import { ErrorCode, SwitchyardError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { validateRoutePath } from '../routing/route-path.js';
import type { RouteChange, RouteData } from '../routing/table.js';
import { routeDataProblem } from '../routing/route-data.js';
import { MirroredStore } from './local-state.js';
import { createFileCertificates, type FileCertificates } from './file-certificates.js';
import type { RouteStore, StoreHealth } from './route-store.js';

export interface FileStoreOptions {
  readonly path: string;
  readonly log: Logger;
  /** Called for every entry skipped and every unparseable version of the file. */
  readonly onInvalid?: (reason: string) => void;
  /** Debounce for file-change events (editors write in several steps). */
  readonly debounceMs?: number;
}

const HEADER = '# Switchyard routes. Edit freely: changes take effect when the file is saved.\n' +
  '# One table per route:  [routes."/user/mary"]  target = "http://10.0.1.5:12345"\n\n';

export class FileStore extends MirroredStore implements RouteStore {
  readonly kind = 'file';
  /** ACME state in <file>.certs/ (file-certificates.ts); nothing is created there until used. */
  readonly certificates: FileCertificates;
  readonly #path: string;
  readonly #activityPath: string;
  readonly #format: 'toml' | 'json';
  readonly #log: Logger;
  readonly #onInvalid: ((reason: string) => void) | undefined;
  readonly #debounceMs: number;
  #lastWritten: string | undefined;
  readonly #fragments = new WeakMap<RouteData, { path: string; text: string }>();
  #lastError: string | undefined;
  #watcher: FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #writes: Promise<unknown> = Promise.resolve();
  /** Writes queued so far: a reload that saw this change read a file that may be mid-queue. */
  #writesQueued = 0;

  constructor(options: FileStoreOptions) {
    super();
    this.#path = options.path;
    this.#activityPath = options.path + '.activity.json';
    this.#format = options.path.endsWith('.json') ? 'json' : 'toml';
    this.#log = options.log;
    this.#onInvalid = options.onInvalid;
    this.#debounceMs = options.debounceMs ?? 50;
    this.certificates = createFileCertificates({ dir: options.path + '.certs', log: options.log });
  }

  async start(): Promise<void> {
    await mkdir(dirname(this.#path), { recursive: true });
    let text: string | undefined;
    try {
      text = await readFile(this.#path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw this.#unavailable('read', e);
    }
    if (text !== undefined) {
      const parsed = this.#parse(text);
      if (parsed === null) {
        // Refuse to start on a broken file rather than serve an empty table and overwrite it.
        throw new SwitchyardError(ErrorCode.CONFIG_INVALID, `route file ${this.#path}: ${this.#lastError}`);
      }
      this.state.routes = parsed;
      this.#lastWritten = text;
    }
    try {
      const act = JSON.parse(await readFile(this.#activityPath, 'utf8')) as Record<string, number>;
      for (const [p, t] of Object.entries(act)) if (this.state.routes.has(p) && typeof t === 'number') this.state.activity.set(p, t);
    } catch {
      // no activity yet, or an unreadable sidecar: activity restarts from route creation
    }
    this.state.revision = 1;
    // Watch the directory: an atomic rename replaces the file's inode, which a file watch loses.
    this.#watcher = watch(dirname(this.#path), (_event, name) => {
      if (name !== null && name.toString() !== basename(this.#path)) return;
      clearTimeout(this.#debounce);
      this.#debounce = setTimeout(() => void this.#reload(), this.#debounceMs);
    });
    this.#watcher.on('error', (e) => this.#log.error('route file watch failed', { path: this.#path, err: e }));
  }

  async close(): Promise<void> {
    await this.certificates.close();
    this.#watcher?.close();
    clearTimeout(this.#debounce);
    await this.#writes;
    this.state.clearListeners();
  }

  async put(path: string, data: RouteData): Promise<number> {
    const revision = await this.#mutate((routes) => {
      routes.set(path, data);
      return { type: 'put', path, data };
    });
    return revision!;
  }

  delete(path: string): Promise<number | null> {
    return this.#mutate((routes) => {
      if (!routes.delete(path)) return null;
      this.state.activity.delete(path);
      return { type: 'delete', path };
    });
  }

  /**
   * Serialise every write: compute the next table from the current one inside the queue, write it
   * atomically, then publish. Concurrent API calls therefore never lose each other's changes.
   */
  #mutate(change: (routes: Map<string, RouteData>) => RouteChange | null): Promise<number | null> {
    this.#writesQueued++;
    const op = this.#writes.then(async () => {
      const next = new Map(this.state.routes);
      const c = change(next);
      if (c === null) return null;
      const text = this.#serialize(next);
      // Recorded first, so the watch event our own rename causes is recognised and ignored.
      this.#lastWritten = text;
      try {
        await this.#atomicWrite(this.#path, text);
      } catch (e) {
        throw this.#unavailable('write', e);
      }
      this.#lastError = undefined;
      this.state.routes = next;
      return this.state.emit({ type: 'changes', revision: this.state.revision + 1, changes: [c] });
    });
    this.#writes = op.then(
      () => {},
      () => {},
    );
    return op;
  }

  async writeActivity(batch: ReadonlyMap<string, number>): Promise<void> {
    const changed = this.state.mergeActivity(batch);
    this.state.pruneActivity();
    if (!changed) return;
    try {
      await this.#atomicWrite(this.#activityPath, JSON.stringify(Object.fromEntries(this.state.activity)));
    } catch (e) {
      throw this.#unavailable('activity', e);
    }
  }

  async readActivity(): Promise<ReadonlyMap<string, number>> {
    return new Map(this.state.activity);
  }

  async activityOf(path: string): Promise<number | undefined> {
    return this.state.activity.get(path);
  }

  health(): StoreHealth {
    return { kind: this.kind, connected: this.#lastError === undefined, revision: this.state.revision, lastError: this.#lastError, errors: this.state.errorCounts() };
  }

  /**
   * The whole file, from per-route fragments cached by data identity: a write re-serialises only
   * the route that changed, then joins strings (the file is still rewritten whole, atomically).
   */
  #serialize(routes: ReadonlyMap<string, RouteData>): string {
    const keys = [...routes.keys()].sort();
    const parts: string[] = [];
    for (const path of keys) {
      const data = routes.get(path)!;
      let frag = this.#fragments.get(data);
      if (frag === undefined || frag.path !== path) {
        const text =
          this.#format === 'json'
            ? `    ${JSON.stringify(path)}: ${JSON.stringify(data)}`
            : stringifyToml({ routes: { [path]: data } }).trim() + '\n';
        frag = { path, text };
        this.#fragments.set(data, frag);
      }
      parts.push(frag.text);
    }
    if (this.#format === 'json') return `{\n  "routes": {\n${parts.join(',\n')}\n  }\n}\n`;
    return HEADER + parts.join('\n');
  }

  #refuseEmpty(): null {
    this.#lastError = `is empty (being written?); to remove every route, write an empty routes table (${this.#format === 'json' ? '{"routes": {}}' : '[routes]'})`;
    return null;
  }

  /** Parse file text into routes; null (and #lastError set) when the file as a whole is unusable. */
  #parse(text: string): Map<string, RouteData> | null {
    let doc: unknown;
    try {
      doc = this.#format === 'json' ? JSON.parse(text) : parseToml(text);
    } catch (e) {
      const err = e as Error & { line?: number; column?: number };
      const where = err.line !== undefined ? ` (line ${err.line}, column ${err.column})` : '';
      this.#lastError = `does not parse as ${this.#format.toUpperCase()}${where}: ${err.message.split('\n')[0]}`;
      return null;
    }
    const routesObj = (doc as { routes?: unknown } | null)?.routes ?? {};
    if (typeof routesObj !== 'object' || routesObj === null || Array.isArray(routesObj)) {
      this.#lastError = '"routes" must be a table of route path -> { target = "..." }';
      return null;
    }
    const routes = new Map<string, RouteData>();
    const skipped = new Map<string, string>();
    for (const [key, value] of Object.entries(routesObj as Record<string, unknown>)) {
      let path: string;
      try {
        path = validateRoutePath(key);
      } catch (e) {
        this.#skip(skipped, key, (e as Error).message);
        continue;
      }
      if (typeof value !== 'object' || value === null || typeof (value as { target?: unknown }).target !== 'string') {
        this.#skip(skipped, key, 'it needs a string "target"');
        continue;
      }
      const problem = routeDataProblem(value);
      if (problem !== undefined) {
        this.#skip(skipped, key, problem);
        continue;
      }
      routes.set(path, { ...(value as RouteData) });
    }
    this.#lastError = undefined;
    this.skipped = skipped;
    return routes;
  }

  #skip(skipped: Map<string, string>, key: string, reason: string): void {
    skipped.set(key, reason);
    const line = `route ${JSON.stringify(key)} skipped: ${reason}`;
    this.#log.error(`route file ${this.#path}: ${line}`);
    this.#onInvalid?.(line);
  }

  async #reload(): Promise<void> {
    // Read only when none of our own writes is queued or in flight, and again if one was queued
    // meanwhile: the watch event of one write's rename can arrive while the next write is under
    // way, and the file then still holds the earlier write — not a hand edit, but it differs from
    // the text being written. Once our queue is empty, the file is our last write or a hand edit.
    let text: string;
    for (;;) {
      const queued = this.#writesQueued;
      await this.#writes;
      if (queued !== this.#writesQueued) continue;
      try {
        text = await readFile(this.#path, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // mid-rename or deleted: keep the table
        this.state.noteError('read');
        this.#log.error('route file unreadable; keeping the last good table', { path: this.#path, err: e });
        return;
      }
      if (queued === this.#writesQueued) break;
    }
    if (text === this.#lastWritten) return;
    // An empty file is, far more often than an operator removing every route, one being written
    // in place (truncated, not yet filled): taken as a table, it would drop every route until the
    // write ends. It is refused as a broken edit is; removing every route by hand takes a file
    // that says so (our own writes always do: they start with a comment).
    const parsed = text.trim() === '' ? this.#refuseEmpty() : this.#parse(text);
    if (parsed === null) {
      this.state.noteError('load');
      this.#log.error(`route file ${this.#path} ${this.#lastError}; keeping the last good table`);
      this.#onInvalid?.(this.#lastError ?? 'unparseable');
      return;
    }
    this.#lastWritten = text;
    this.state.routes = parsed;
    this.state.pruneActivity();
    this.#log.info(`route file ${this.#path} changed: ${parsed.size} routes loaded`);
    this.state.emit({ type: 'reset', snapshot: { revision: this.state.revision + 1, routes: new Map(parsed) } });
  }

  async #atomicWrite(path: string, text: string): Promise<void> {
    const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, path);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw e;
    }
  }

  #unavailable(op: string, e: unknown): SwitchyardError {
    this.state.noteError(op);
    const msg = `route file ${this.#path}: cannot ${op}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
    this.#lastError = msg;
    return new SwitchyardError(ErrorCode.STORE_UNAVAILABLE, msg, { cause: e });
  }
}

export function createFileStore(options: FileStoreOptions): FileStore {
  return new FileStore(options);
}
