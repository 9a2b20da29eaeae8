// Entry of a data-plane worker thread (--worker-mode threads; spawned by worker-channel.ts in the
// primary's process). As a forked worker does (main.ts), it asks the primary for the running
// configuration ('config?') while its modules load, then runs the same worker (worker.ts).

import { parentPort, threadId } from 'node:worker_threads';
import type { Config } from './config/config.js';
import { reviveBuffers, threadLink, type WorkerLink } from './dataplane/proxy/worker-channel.js';
import { createLogger } from './observability/logger.js';
import type { ToWorker } from './dataplane/proxy/worker-protocol.js';

const link = threadLink(parentPort!);
const [config, { runWorker }] = await Promise.all([configFromPrimary(link), import('./worker.js')]);
const log = createLogger({ level: config.logLevel, format: config.logFormat });
runWorker(config, log.child({ worker: `thread ${threadId}` }), (l) => log.setLevel(l), link);

function configFromPrimary(l: WorkerLink): Promise<Config> {
  return new Promise((resolve) => {
    const on = (m: ToWorker): void => {
      if (m.t !== 'config') return;
      l.offMessage(on);
      // A structured clone: the certificates' Buffers arrived as Uint8Arrays.
      resolve(reviveBuffers(m.config));
    };
    l.onMessage(on);
    l.send({ t: 'config?' });
  });
}
