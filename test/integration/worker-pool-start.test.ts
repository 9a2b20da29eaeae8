// The worker pool's start-up when a preforked worker died before start() (a worker that dies
// young is replaced after a backoff, worker-pool.ts): start() replaces it at once and drops the
// pending restart, so the pool ends with exactly `count` workers. Before, the pending restart
// forked a third worker after start() had filled the pool, and start() never completed. The pool
// runs in this test process with real workers (threads, or processes running dist/src/main.js);
// only the dead preforked worker is a stand-in, since the order "dead before start()" is what
// matters and a real prefork usually dies after it.

import assert from 'node:assert/strict';
import cluster from 'node:cluster';
import { test } from 'node:test';
import { buildConfig } from '../../src/config/config.js';
import { parseArgv } from '../../src/config/flags.js';
import { createWorkerPool } from '../../src/dataplane/proxy/worker-pool.js';
import { dataPlaneSettingsOf } from '../../src/dataplane/proxy/live-settings.js';
import type { PreforkedWorker } from '../../src/dataplane/proxy/prefork.js';
import type { WorkerHandle } from '../../src/dataplane/proxy/worker-channel.js';
import { createLogger } from '../../src/observability/logger.js';
import { RoutingTable } from '../../src/routing/table.js';
import { MAIN, WORKER_MODES } from '../helpers/servers.js';

/** A preforked worker that had already exited (code 1) when the pool adopts it. */
function deadPrefork(): PreforkedWorker {
  const worker: WorkerHandle = {
    id: -1,
    pid: undefined,
    threadId: undefined,
    label: 'preforked stand-in',
    send: () => {},
    onMessage: () => {},
    offMessage: () => {},
    onExit: () => {},
    offExit: () => {},
    isDead: () => true,
    kill: () => {},
  };
  return { worker, adopt: (_onMessage, onExit) => onExit(1, null) };
}

for (const mode of WORKER_MODES) {
  test(`worker pool (${mode}): a preforked worker dead before start() is replaced at once; exactly 2 workers, start() completes`, { timeout: 60_000 }, async (t) => {
    // Forked workers run the product's entry (not this test file), which takes its config over IPC.
    if (mode === 'processes') cluster.setupPrimary({ exec: MAIN, args: [] });
    const config = buildConfig(parseArgv(['--ip', '127.0.0.1', '--port', '0', '--workers', '2', '--worker-mode', mode]), { CONFIGPROXY_AUTH_TOKEN: 'x' });
    const lines: string[] = [];
    const log = createLogger({ level: 'info', write: (l) => lines.push(l) });
    const pool = createWorkerPool({
      count: 2,
      mode,
      log,
      listen: config.proxyListen,
      initialTable: RoutingTable.empty({ hostRouting: false }),
      onActivity: () => {},
      preforked: [deadPrefork()],
      settings: dataPlaneSettingsOf(config),
      config: () => config,
    });
    t.after(() => pool.close(1000));
    // start() must complete well within its own 60 s limit: bounded here at 20 s.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      pool.start(),
      new Promise((_resolve, reject) => (timer = setTimeout(() => reject(new Error(`start() did not complete in 20 s: ${pool.notReady() ?? ''}\n${lines.join('\n')}`)), 20_000))),
    ]).finally(() => clearTimeout(timer));
    assert.match(lines.join('\n'), /data-plane worker preforked stand-in exited \(1\); starting a new one in 100 ms/);
    assert.equal(pool.workers().length, 2);
    assert.equal(pool.notReady(), undefined);
    // The dropped restart does not fire later: still two once its due time (100 ms after the
    // adoption) is long past, seen through round trips to every worker.
    const since = Date.now();
    while (Date.now() - since < 500) await pool.workerMetrics();
    assert.equal(pool.workers().length, 2);
  });
}
