// How data-plane workers are started: the Node options a forked one gets, the heap limits of a
// thread. A module of its own so that prefork.ts (loaded first thing in the primary) and the
// worker pool share it without the pool.

import cluster from 'node:cluster';
import type { WorkerMode } from '../../config/worker-mode.js';

/**
 * The young-generation size of every data-plane worker, pinned: V8's semi-space (MiB; the new space
 * is two of them) fixed from the start at V8's default maximum, instead of resized by V8 with the
 * allocation rate. Why: a worker's live heap is ~10 MiB and flat, but V8 grows its new space in
 * steps (8 -> 16 -> 32 MiB) when the allocation rate rises and shrinks it again (down to 4 MiB) when
 * the rate falls, so under the soak's steady load a worker's RSS moved in steps of 7-16 MiB on a
 * ~75-90 MiB process while nothing leaked (bench/README.md, soak: RSS followed `new_space` exactly;
 * old space, malloc and everything else were flat). Pinned, the new space stays one size and a
 * rise in RSS means memory that is really held. Why the maximum (16 MiB): scavenge work per request
 * falls with the semi-space size (a proxy's survivors per scavenge are its in-flight requests,
 * whatever the size), and 16 MiB is what V8 grows a busy worker to anyway, so heavy load costs
 * nothing more than with V8's own sizing, while 4 MiB cost ~2x the GC pauses per request (measured
 * in bench/README.md, soak section, "where worker RSS went, and the fix"). The price: up to 32 MiB resident per worker also at
 * light load (V8 still gives the idle half, from-space, back at a GC when the allocation rate is
 * low, until the next scavenge takes it again).
 */
export const WORKER_SEMI_SPACE_MB = 16;

/**
 * The Node options a data-plane worker is forked with: the primary's own (node:cluster's default),
 * plus the pinned semi-space size unless the operator chose a semi-space size themselves (in the
 * primary's command line or NODE_OPTIONS, which workers inherit): theirs wins.
 */
export function workerExecArgv(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  if (semiSpaceChosen(execArgv, nodeOptions)) return [...execArgv];
  return [...execArgv, `--min-semi-space-size=${WORKER_SEMI_SPACE_MB}`, `--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`];
}

/**
 * Before the first worker (idempotent). Processes: every later cluster.fork() uses workerExecArgv
 * and advanced serialization. Threads: the young generation is pinned through V8's flags
 * (worker-channel.ts, THREAD_YOUNG_GENERATION_MB).
 */
export async function setupWorkers(mode: WorkerMode): Promise<void> {
  if (mode === 'threads') {
    await pinThreadYoungGeneration(process.execArgv, process.env.NODE_OPTIONS);
    return;
  }
  // Structured clone on the IPC channel: the Config sent to workers holds Buffers.
  cluster.setupPrimary({ execArgv: workerExecArgv(process.execArgv, process.env.NODE_OPTIONS), serialization: 'advanced' });
}

/** Whether the operator chose a semi-space size (command line or NODE_OPTIONS): theirs wins. */
export function semiSpaceChosen(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  const semiSpace = /--(?:min|max)[-_]semi[-_]space[-_]size/;
  return execArgv.some((a) => semiSpace.test(a)) || semiSpace.test(nodeOptions ?? '');
}

/**
 * Threads: V8 reads --min-semi-space-size for every isolate it creates, so set now (the primary's
 * heap exists already and keeps V8's sizing) it pins each thread's semi-space at the size the
 * thread's resourceLimits cap it to (worker-channel.ts). Unless the operator chose one.
 */
async function pinThreadYoungGeneration(execArgv: readonly string[], nodeOptions: string | undefined): Promise<void> {
  if (semiSpaceChosen(execArgv, nodeOptions)) return;
  const v8 = await import('node:v8');
  v8.setFlagsFromString(`--min-semi-space-size=${WORKER_SEMI_SPACE_MB}`);
}
