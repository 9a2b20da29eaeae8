// Start-up: with --workers N the primary starts its data-plane workers (processes or threads)
// first thing (main.ts), so that they boot and load their modules while the primary loads its own
// (app.js: API, dashboard, stores, metrics) and the routing table, instead of after. Nothing else
// changes: a preforked worker is handed to the worker pool, which treats it as one it started
// itself (it gets the current table when it says 'ready' and listens only when told, after the
// table is loaded).
// Not all of them at once: only as many as there are cores besides the one the primary loads on
// (preforkCount). The first worker to have the table opens the public port (worker-pool.ts), so it
// should get a core to itself while it boots; on 2 cores, a second worker booting alongside the
// primary's loading made three threads share two cores and the port opened ~20 ms later
// (bench/README.md, "Start-up"). The pool starts the rest when start() is called, once the
// primary has loaded its modules and the table.
// This module is tiny on purpose: it is loaded before anything else in the primary.

import { availableParallelism } from 'node:os';

import type { Config } from '../../config/config.js';
import type { WorkerMode } from '../../config/worker-mode.js';
import type { ToPrimary } from './worker-protocol.js';
import { setupWorkers } from './worker-exec-argv.js';
import { spawnWorker, type WorkerHandle } from './worker-channel.js';

export interface PreforkedWorker {
  readonly worker: WorkerHandle;
  /**
   * Hand the worker over: `onMessage` first gets every message it sent so far (in order), then
   * the next ones; `onExit` is called now if it already exited, else when it does.
   */
  adopt(onMessage: (m: ToPrimary) => void, onExit: (code: number | null, signal: string | null) => void): void;
}

/**
 * How many of `workers` to start before the primary loads: one per core the primary does not
 * use while it loads, at least one.
 */
export function preforkCount(workers: number, cores: number = availableParallelism()): number {
  return Math.max(1, Math.min(workers, cores - 1));
}

/**
 * Start preforkCount(`workers`) workers now (the pool starts the others). A worker's first question, its configuration ('config?'), is answered
 * here with the start-up `config` (no reload can happen before the pool adopts them), so workers
 * load and configure themselves while the primary is still loading; other messages wait for adopt.
 */
export async function preforkWorkers(workers: number, mode: WorkerMode, config: Config): Promise<PreforkedWorker[]> {
  await setupWorkers(mode); // the same options as every later one (pinned young generation)
  return Array.from({ length: preforkCount(workers) }, () => {
    const worker = spawnWorker(mode);
    const early: ToPrimary[] = [];
    let exited: [number | null, string | null] | undefined;
    const keep = (m: ToPrimary): void => {
      if (m.t === 'config?') worker.send({ t: 'config', config });
      else early.push(m);
    };
    const keepExit = (code: number | null, signal: string | null): void => void (exited = [code, signal]);
    worker.onMessage(keep);
    worker.onExit(keepExit);
    return {
      worker,
      adopt(onMessage, onExit) {
        worker.offMessage(keep);
        worker.offExit(keepExit);
        for (const m of early.splice(0)) onMessage(m);
        if (exited !== undefined) {
          onExit(...exited);
          return;
        }
        worker.onMessage(onMessage);
        worker.onExit(onExit);
      },
    };
  });
}
