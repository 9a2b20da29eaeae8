// Standard output and error whose reader went away (a supervisor or `| tee` that died, journald
// restarted): Switchyard keeps serving and stops writing there (src/observability/stdio.ts).
//
// Before the fix the first log line after the reader left failed with EPIPE, the unhandled
// 'error' became an uncaught exception, whose handler logged to the same stderr: the process
// (or the worker) spun at 100% CPU writing that line forever and answered nothing more.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { threadsUnsupported } from '../../src/config/worker-mode.js';
import { REFUSED_PORT, request, startBackend, startSwitchyardProcess, waitFor } from '../helpers/servers.js';

const modes: [string, string[]][] = [
  ['--workers 1', ['--workers', '1']],
  ['worker processes', ['--workers', '2', '--worker-mode', 'processes']],
];
if (threadsUnsupported({ kind: 'tcp', port: 0, host: '127.0.0.1' }) === undefined) modes.push(['worker threads', ['--workers', '2', '--worker-mode', 'threads']]);

for (const [name, argv] of modes) {
  test(`stdout and stderr closed by their reader (${name}): every request is still answered, and SIGTERM exits 0`, { timeout: 60_000 }, async (t) => {
    const backend = await startBackend(t, 'S');
    // Debug logs and the access log on stdout: every request writes to both streams.
    const p = await startSwitchyardProcess(t, [...argv, '--log-level', 'debug', '--access-log', '-']);
    await waitFor(async () => (await p.api('GET', '/api/health')).status === 200, 15_000, 'all workers listening');
    assert.equal((await p.api('POST', '/api/routes/s', { target: backend.url })).status, 201);
    assert.equal((await p.api('POST', '/api/routes/dead', { target: `http://127.0.0.1:${REFUSED_PORT}` })).status, 201);

    // The reader goes away: the child's next write to fd 1 or 2 fails with EPIPE.
    p.proc.stdout!.destroy();
    p.proc.stderr!.destroy();

    // New connections each (both workers get some), then keep-alive-free API calls in between.
    for (let i = 0; i < 40; i++) {
      const r = await request(`${p.proxyUrl}/s/${i}`);
      assert.equal(r.status, 200, `request ${i}`);
      assert.equal(JSON.parse(r.body).name, 'S');
      if (i % 10 === 0) {
        assert.equal((await request(`${p.proxyUrl}/nowhere/${i}`)).status, 404);
        assert.equal((await request(`${p.proxyUrl}/dead/${i}`)).status, 503); // logged as an error
        assert.equal((await p.api('GET', '/api/routes')).status, 200);
      }
    }
    p.proc.kill('SIGTERM');
    assert.equal(await p.exited, 0);
  });
}
