// A preforked worker may ask for its configuration ('config?') at any point after the pool adopts
// it, also while createApp() is still awaiting module imports further down (before the reloader
// exists). Here the question is replayed at adoption, inside createApp(): the answer must be the
// start-up configuration. (Before the fix, reading the reloader there threw a ReferenceError and
// the primary exited: seen once in a clean-clone CI run, dashboard e2e.)

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createApp } from '../../src/app.js';
import { buildConfig } from '../../src/config/config.js';
import { parseArgv } from '../../src/config/flags.js';
import type { PreforkedWorker } from '../../src/dataplane/proxy/prefork.js';
import type { WorkerHandle } from '../../src/dataplane/proxy/worker-channel.js';
import type { ToWorker } from '../../src/dataplane/proxy/worker-protocol.js';
import { createSilentLogger } from '../../src/observability/logger.js';

/** A worker handle that records what the pool sends it and exits when told to drain. */
function asksAtAdoption(id: number): { pre: PreforkedWorker; got: ToWorker[] } {
  const got: ToWorker[] = [];
  const exits = new Set<(code: number | null, signal: string | null) => void>();
  let dead = false;
  const exit = (code: number | null, signal: string | null): void => {
    if (dead) return;
    dead = true;
    for (const fn of exits) fn(code, signal);
  };
  const worker: WorkerHandle = {
    id,
    pid: undefined,
    threadId: undefined,
    label: `test worker ${id}`,
    send(m) {
      got.push(m);
      if (m.t === 'drain') exit(0, null);
    },
    onMessage: () => {},
    offMessage: () => {},
    onExit: (fn) => void exits.add(fn),
    offExit: (fn) => void exits.delete(fn),
    isDead: () => dead,
    kill: () => exit(null, 'SIGKILL'),
  };
  return {
    got,
    pre: {
      worker,
      adopt(onMessage, onExit) {
        exits.add(onExit);
        onMessage({ t: 'config?' });
      },
    },
  };
}

test('a preforked worker asking for its configuration during createApp() gets the start-up configuration', async () => {
  const config = buildConfig(
    parseArgv(['--ip', '127.0.0.1', '--port', '0', '--api-ip', '127.0.0.1', '--api-port', '0', '--workers', '2', '--worker-mode', 'processes', '--default-target', 'http://127.0.0.1:9']),
    { CONFIGPROXY_AUTH_TOKEN: 't' },
  );
  const workers = [asksAtAdoption(1), asksAtAdoption(2)];
  const app = await createApp(config, { log: createSilentLogger(), preforked: workers.map((w) => w.pre) });
  try {
    for (const w of workers) {
      const answer = w.got.find((m) => m.t === 'config');
      assert.ok(answer && answer.t === 'config', 'answered');
      assert.equal(answer.config.defaultTarget, 'http://127.0.0.1:9');
      assert.equal(answer.config.workers, 2);
    }
  } finally {
    await app.close();
  }
  for (const w of workers) assert.ok(w.got.some((m) => m.t === 'drain'), 'drained at close');
});
