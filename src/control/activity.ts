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

  const flush = (): Promise<void> => {
    if (pending.size === 0) return flushing;
    const batch = pending;
    pending = new Map();
    flushing = flushing
      .then(() => store.writeActivity(batch))
      .catch((e: unknown) => {
        // Keep the batch for the next try; newer values recorded meanwhile win.
        for (const [p, t] of batch) if ((pending.get(p) ?? 0) < t) pending.set(p, t);
        log.warn('could not write route activity to the store; will retry', { err: e });
      });
    return flushing;
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
      for (const [p, t] of pending) if ((merged.get(p) ?? 0) < t) merged.set(p, t);
      return merged;
    },
    async of(path) {
      const stored = await store.activityOf(path);
      const mine = pending.get(path);
      return mine !== undefined && (stored === undefined || mine > stored) ? mine : stored;
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
