// The one channel between the primary and a data-plane worker, whatever the worker is: a
// node:cluster process (IPC, 'advanced' serialization) or a worker thread of the primary's process
// (MessagePort, structured clone). Both carry the same messages (worker-protocol.ts); the pool
// (worker-pool.ts) and the worker (worker.ts) see only this interface.
// Loaded by prefork.ts, first thing in the primary: keep it small (node:worker_threads and
// node:cluster are built in).

import cluster, { type Worker as ClusterWorker } from 'node:cluster';
import { Worker as ThreadWorker, type MessagePort } from 'node:worker_threads';
import type { WorkerMode } from '../../config/worker-mode.js';
import type { ToPrimary, ToWorker } from './worker-protocol.js';
import { WORKER_SEMI_SPACE_MB } from './worker-exec-argv.js';

/** The primary's handle on one worker. */
export interface WorkerHandle {
  /** Unique among the primary's workers (a replacement gets a new one). */
  readonly id: number;
  /** The worker's process id (in threads mode: the primary's own, they share it). */
  readonly pid: number | undefined;
  /** Its thread id, in threads mode. */
  readonly threadId: number | undefined;
  /** How logs name it: `pid 1234` or `thread 2`. */
  readonly label: string;
  send(m: ToWorker): void;
  onMessage(fn: (m: ToPrimary) => void): void;
  offMessage(fn: (m: ToPrimary) => void): void;
  /** Called once when the worker is gone: its exit code or signal, and for a thread its uncaught error. */
  onExit(fn: (code: number | null, signal: string | null) => void): void;
  offExit(fn: (code: number | null, signal: string | null) => void): void;
  /** Gone (exited, or being killed). */
  isDead(): boolean;
  /** Stop it now (SIGKILL a process, terminate a thread). */
  kill(): void;
}

/**
 * The thread equivalent of the processes' pinned young generation (worker-exec-argv.ts): V8
 * sizes a heap's young generation as 3 semi-spaces (two for the scavenger's from/to halves, one
 * for new large objects; Heap::YoungGenerationSizeFromSemiSpaceSize), so a 16 MiB semi-space is a
 * 48 MiB maxYoungGenerationSizeMb. That option sets only the maximum; the minimum (what pins it)
 * is V8's --min-semi-space-size flag, which V8 reads for every isolate it creates, so the primary
 * sets it (worker-exec-argv.ts setupWorkers) before its first thread starts, after its own heap exists.
 */
export const THREAD_YOUNG_GENERATION_MB = 3 * WORKER_SEMI_SPACE_MB;

export function spawnWorker(mode: WorkerMode): WorkerHandle {
  return mode === 'threads' ? spawnThread() : wrapProcess(cluster.fork());
}

function wrapProcess(worker: ClusterWorker): WorkerHandle {
  return {
    id: worker.id,
    pid: worker.process.pid,
    threadId: undefined,
    label: `pid ${worker.process.pid}`,
    send(m) {
      if (worker.isConnected()) worker.send(m);
    },
    onMessage: (fn) => void worker.on('message', fn),
    offMessage: (fn) => void worker.off('message', fn),
    onExit: (fn) => void worker.on('exit', fn),
    offExit: (fn) => void worker.off('exit', fn),
    isDead: () => worker.isDead(),
    kill: () => void worker.process.kill('SIGKILL'),
  };
}

let nextThread = 1;

function spawnThread(): WorkerHandle {
  const worker = new ThreadWorker(new URL('../../worker-thread.js', import.meta.url), {
    resourceLimits: { maxYoungGenerationSizeMb: THREAD_YOUNG_GENERATION_MB },
    // Its stdout/stderr (log lines) go through the primary's, as a forked worker's do.
  });
  let dead = false;
  let error: Error | undefined;
  const exits = new Set<(code: number | null, signal: string | null) => void>();
  // An uncaught error ends a thread with 'error' then 'exit' (an 'error' without a listener would
  // throw in the primary). The error is logged by whoever listens for exits: kept for it.
  worker.on('error', (e) => void (error = e));
  worker.once('exit', (code) => {
    dead = true;
    for (const fn of exits) fn(code, error ? `uncaught error: ${error.message}` : null);
  });
  return {
    id: 1_000_000 + nextThread++,
    pid: process.pid,
    threadId: worker.threadId,
    label: `thread ${worker.threadId}`,
    send(m) {
      if (!dead) worker.postMessage(m);
    },
    onMessage: (fn) => void worker.on('message', fn),
    offMessage: (fn) => void worker.off('message', fn),
    onExit: (fn) => void exits.add(fn),
    offExit: (fn) => void exits.delete(fn),
    isDead: () => dead,
    kill() {
      dead = true;
      void worker.terminate();
    },
  };
}

/** The worker's end of the channel. */
export interface WorkerLink {
  readonly mode: WorkerMode;
  send(m: ToPrimary): void;
  onMessage(fn: (m: ToWorker) => void): void;
  offMessage(fn: (m: ToWorker) => void): void;
  /** Leave: the process exits (a forked worker), or the thread ends (the primary's process lives on). */
  exit(code: number): never;
}

/** In a node:cluster worker process. */
export function processLink(): WorkerLink {
  return {
    mode: 'processes',
    send(m) {
      if (process.connected) process.send!(m);
    },
    onMessage: (fn) => void process.on('message', fn as (m: unknown) => void),
    offMessage: (fn) => void process.off('message', fn as (m: unknown) => void),
    exit(code) {
      if (process.connected) process.disconnect();
      process.exit(code);
    },
  };
}

/** In a worker thread: `port` is its parentPort. */
export function threadLink(port: MessagePort): WorkerLink {
  return {
    mode: 'threads',
    send: (m) => port.postMessage(m),
    // A thread's messages are structured clones: a Buffer arrives as a plain Uint8Array.
    onMessage: (fn) => void port.on('message', fn),
    offMessage: (fn) => void port.off('message', fn),
    // In a worker thread, process.exit ends the thread only.
    exit: (code) => process.exit(code),
  };
}

/**
 * Buffers again where a structured clone left Uint8Arrays (a thread's copy of the Config: its TLS
 * keys and certificates). Returns a new object; plain data only (what the Config holds).
 */
export function reviveBuffers<T>(value: T): T {
  if (value instanceof Uint8Array) return (Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength)) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => reviveBuffers(v)) as T;
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = reviveBuffers(v);
    return out as T;
  }
  return value;
}
