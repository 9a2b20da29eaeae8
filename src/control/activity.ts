// Route activity (`last_activity`), recorded in memory on the data path and flushed in batches.
//
// Contract: `record` is O(1) and allocation-free after the first record of a path in a flush
// window; nothing on the data path waits for the store. `flush()` writes one batch per interval.
// Readers merge what the store has with what this process has not flushed yet, so a value is
// never older than the newest activity this process saw. One implementation for every process:
// the primary flushes to the store, a data-plane worker to the primary (an IPC message).

import type { Logger } from '../observability/logger.js';
import type { RouteStore } from '../store/route-store.js';

export interface ActivityTracker {
  record(path: string): void;
  /** Record activity seen elsewhere (a data-plane worker) at time `at`. */
  recordAt(path: string, at: number): void;
  /** Write pending activity to the store now. */
  flush(): Promise<void>;
  /** Latest activity per path: store's values merged with this process's unflushed ones. */
  read(): Promise<Map<string, number>>;
  /** Latest activity of one path (same merge as read()). */
  of(path: string): Promise<number | undefined>;
  start(): void;
  close(): Promise<void>;
}

/** Where batches go and stored values come from: a RouteStore, or a worker's IPC channel. */
export type ActivitySink = Pick<RouteStore, 'writeActivity' | 'readActivity' | 'activityOf'>;

export interface ActivityOptions {
  readonly store: ActivitySink;
  readonly intervalMs: number;
  readonly log: Logger;
  readonly now?: () => number;
}

export function createActivityTracker(options: ActivityOptions): ActivityTracker {
  const { store, log } = options;
  const now = options.now ?? Date.now;
  let pending = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  let flushing: Promise<void> = Promise.resolve();

  // Batches handed to the store and not yet written: reads see them too. Without this a read
  // between the start of a flush and the end of its write found the activity neither pending nor
  // stored, and a route briefly had no last_activity (caught by ha.test.ts in CI).
  const writing = new Set<ReadonlyMap<string, number>>();

  const flush = (): Promise<void> => {
    if (pending.size === 0) return flushing;
    const batch = pending;
    pending = new Map();
    writing.add(batch);
    flushing = flushing
      .then(() => store.writeActivity(batch))
      .catch((e: unknown) => {
        // Keep the batch for the next try; newer values recorded meanwhile win.
        for (const [p, t] of batch) if ((pending.get(p) ?? 0) < t) pending.set(p, t);
        log.warn('could not write route activity to the store; will retry', { err: e });
      })
      .finally(() => writing.delete(batch));
    return flushing;
  };

  /** The newest of `t` and what this tracker holds for `path` (pending or being written). */
  const newest = (path: string, t: number | undefined): number | undefined => {
    for (const m of [...writing, pending]) {
      const v = m.get(path);
      if (v !== undefined && (t === undefined || v > t)) t = v;
    }
    return t;
  };

  return {
    record(path) {
      pending.set(path, now());
    },
    recordAt(path, at) {
      if ((pending.get(path) ?? 0) < at) pending.set(path, at);
    },
    flush,
    async read() {
      const stored = await store.readActivity();
      const merged = new Map(stored);
      for (const m of [...writing, pending]) for (const [p, t] of m) if ((merged.get(p) ?? 0) < t) merged.set(p, t);
      return merged;
    },
    async of(path) {
      return newest(path, await store.activityOf(path));
    },
    start() {
      timer = setInterval(() => void flush(), options.intervalMs);
      timer.unref();
    },
    async close() {
      if (timer) clearInterval(timer);
      await flush();
    },
  };
}
