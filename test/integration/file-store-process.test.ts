// --store file:PATH with the real process: restarts lose nothing, hand edits go live, a broken
// edit keeps serving the last good table and shows in health and metrics.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { request, startBackend, startSwitchyardProcess, waitFor, waitForLine, type Echo } from '../helpers/servers.js';

test('file store: survives restart, hand edits take effect, broken edits are contained', { timeout: 60_000 }, async (t) => {
  const a = await startBackend(t, 'A');
  const b = await startBackend(t, 'B');
  const dir = mkdtempSync(join(tmpdir(), 'swy-file-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'routes.toml');
  const args = ['--metrics-port', '0', '--metrics-ip', '127.0.0.1', '--store', `file:${file}`];
  const env = { CONFIGPROXY_AUTH_TOKEN: 'f' };

  let p = await startSwitchyardProcess(t, args, env);
  assert.equal((await p.api('POST', '/api/routes/user/mary', { target: a.url, jupyterhub: true })).status, 201);
  assert.match(readFileSync(file, 'utf8'), /\[routes\."\/user\/mary"\]/);
  p.proc.kill('SIGTERM');
  assert.equal(await p.exited, 0);

  // A new process (new ports): the route comes back from the file.
  p = await startSwitchyardProcess(t, args, env);
  const { api, proxyPort: port, metricsPort } = p;
  assert.equal((await request(`http://127.0.0.1:${port}/user/mary/x`)).json<Echo>().name, 'A', 'route survived the restart');

  writeFileSync(file, `[routes."/user/mary"]\ntarget = "${a.url}"\n\n[routes."/user/bob"]\ntarget = "${b.url}"\n`);
  await waitFor(async () => (await request(`http://127.0.0.1:${port}/user/bob/x`)).status === 200, 5000, 'hand edit live');
  assert.equal((await request(`http://127.0.0.1:${port}/user/bob/x`)).json<Echo>().name, 'B');

  writeFileSync(file, `[routes."/user/mary"]\ntarget = "${a.url}"\n[routes."/user/bob"\n`);
  // Waited for by its reason: writeFileSync truncates first, and a read in between finds the file
  // empty (refused too, with another reason) before the broken text arrives.
  await waitFor(
    async () => /does not parse as TOML \(line 3/.test((await api('GET', '/api/health')).json<{ store: { lastError?: string } }>().store.lastError ?? ''),
    5000,
    'broken file in health',
  );
  assert.equal((await api('GET', '/api/health')).status, 503);
  assert.equal((await request(`http://127.0.0.1:${port}/user/bob/x`)).status, 200, 'last good table still served');
  const metrics = (await request(`http://127.0.0.1:${metricsPort}/metrics`)).body;
  assert.match(metrics, /switchyard_store_connected 0/);
  await waitForLine(() => p.output(), /routes\.toml does not parse as TOML \(line 3, column \d+\): .*; keeping the last good table/);
  assert.equal((await api('POST', '/api/routes/user/carl', { target: a.url })).status, 201, 'the API still writes (and repairs the file)');
  assert.equal((await api('GET', '/api/health')).status, 200);
  assert.deepEqual(Object.keys((await api('GET', '/api/routes')).json() as object).sort(), ['/user/bob', '/user/carl', '/user/mary']);
});
