// Start-up: with --workers N the primary forks its data-plane workers first thing (main.ts), so
// that they boot and load their modules while the primary loads its own (app.js: API, dashboard,
// stores, metrics) and the routing table, instead of after. Nothing else changes: a preforked
// worker is handed to the worker pool, which treats it as one it forked itself (it gets the
// current table when it says 'ready' and listens only when told, after the table is loaded).
// This module is tiny on purpose: it is loaded before anything else in the primary.

import cluster, { type Worker } from 'node:cluster';
import type { Config } from '../../config/config.js';
import type { ToPrimary, ToWorker } from './worker-protocol.js';
import { setupWorkerForks } from './worker-exec-argv.js';

export interface PreforkedWorker {
  readonly worker: Worker;
  /**
   * Hand the worker over: `onMessage` first gets every message it sent so far (in order), then
   * the next ones; `onExit` is called now if it already exited, else when it does.
   */
  adopt(onMessage: (m: ToPrimary) => void, onExit: (code: number | null, signal: string | null) => void): void;
}

/**
 * Fork `count` workers now. A worker's first question, its configuration ('config?'), is answered
 * here with the start-up `config` (no reload can happen before the pool adopts them), so workers
 * load and configure themselves while the primary is still loading; other messages wait for adopt.
 */
export function preforkWorkers(count: number, config: Config): PreforkedWorker[] {
  setupWorkerForks(); // the same Node options as every later fork (pinned young generation)
  return Array.from({ length: count }, () => {
    const worker = cluster.fork();
    const early: ToPrimary[] = [];
    let exited: [number | null, string | null] | undefined;
    const keep = (m: ToPrimary): void => {
      if (m.t === 'config?') worker.send({ t: 'config', config } satisfies ToWorker);
      else early.push(m);
    };
    const keepExit = (code: number | null, signal: string | null): void => void (exited = [code, signal]);
    worker.on('message', keep);
    worker.once('exit', keepExit);
    return {
      worker,
      adopt(onMessage, onExit) {
        worker.off('message', keep);
        worker.off('exit', keepExit);
        for (const m of early.splice(0)) onMessage(m);
        if (exited !== undefined) {
          onExit(...exited);
          return;
        }
        worker.on('message', onMessage);
        worker.on('exit', onExit);
      },
    };
  });
}
