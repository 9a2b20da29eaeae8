// Reload (SIGHUP, POST /api/reload) against the real CLI with two data-plane workers: every live
// setting applied in the primary and in each worker while a load client runs (no request fails),
// a restart-only setting named and left alone, a broken file refused with the running config kept
// (also by a worker started while it is broken).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { rawRequest, request, startBackend, startLoadClient, startSwitchyardProcess, waitFor, type Echo, type LoadClient } from '../helpers/servers.js';
import { tempDir } from '../helpers/temp.js';

/** Requests until stopped: keep-alive, 4 at a time; counts answers and every failure. */
function loadClient(url: string): LoadClient {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  return startLoadClient((_k, cb) => http.get(url, { agent }, cb), () => agent.destroy());
}

const count = (text: string, re: RegExp): number => text.match(new RegExp(re.source, 'g'))?.length ?? 0;

test('SIGHUP applies log level, access log and format, custom headers and timeouts in the primary and both workers under load; restart-only settings are named and kept; a broken file is refused', async (t) => {
  const dir = tempDir(t, 'swy-reload-');
  const file = join(dir, 'switchyard.toml');
  const logA = join(dir, 'a.log');
  const logB = join(dir, 'b.log');
  // /slow never answers: it shows which --proxy-timeout a worker runs.
  const backend = await startBackend(t, 'A', (req) => req.url === '/slow');
  writeFileSync(
    file,
    [
      'log-level = "info"',
      'custom-header = ["X-Reload: one"]',
      `access-log = ${JSON.stringify(logA)}`,
      'access-log-format = "json"',
      'proxy-timeout = 30000',
      'keep-alive-timeout = 20000',
      'timeout = 60000',
      'request-body-timeout = 60000',
      'upstream-connect-timeout = 10000',
      '',
    ].join('\n'),
  );
  // (SWITCHYARD_TEST_HOOKS: with worker threads, SIGUSR2 is how the test makes one die.)
  const p = await startSwitchyardProcess(t, ['--config', file, '--workers', '2'], { SWITCHYARD_TEST_HOOKS: '1' });
  assert.equal((await p.api('POST', '/api/routes/', { target: backend.url })).status, 201);

  /** The headers the backend got for one request on a new connection (so any worker may take it). */
  const fresh = async (path = '/'): Promise<Echo['headers']> => {
    const r = await request(p.proxyUrl + path, { headers: { connection: 'close' } });
    assert.equal(r.status, 200, r.body);
    return r.json<Echo>().headers;
  };
  assert.equal((await fresh())['x-reload'], 'one');
  // At info, a refused request (no Host) is not logged by the worker that refused it.
  for (let i = 0; i < 6; i++) await rawRequest(p.proxyPort, 'GET / HTTP/1.1\r\n\r\n', 1000);
  assert.equal(count(p.output(), /debug: 400 GET refused/), 0);
  // Nor does the primary log a successful API call.
  assert.equal((await p.api('GET', '/api/routes')).status, 200);
  assert.equal(count(p.output(), /debug: 200 GET \/api\/routes/), 0);

  const load = loadClient(p.proxyUrl + '/');
  t.after(() => load.stop());
  await waitFor(() => existsSync(logA) && readFileSync(logA, 'utf8').includes('"status":200'), 5000, 'json access-log lines in a.log');

  writeFileSync(
    file,
    [
      'log-level = "debug"',
      'custom-header = ["X-Reload: two"]',
      `access-log = ${JSON.stringify(logB)}`,
      'access-log-format = "combined"',
      'proxy-timeout = 300',
      'keep-alive-timeout = 300',
      'timeout = 50000',
      'request-body-timeout = 40000',
      'upstream-connect-timeout = 5000',
      '',
    ].join('\n'),
  );
  p.proc.kill('SIGHUP');
  // The line comes once every worker acknowledged the settings (worker-pool applySettings).
  await waitFor(() => /info: reload \(SIGHUP\): applied/.test(p.output()), 10_000, 'the reload line');
  const applied = /reload \(SIGHUP\): applied ([^\n]*)/.exec(p.output())![1]!;
  for (const name of ['log-level', 'custom-header', 'access-log', 'access-log-format', 'proxy-timeout', 'keep-alive-timeout', 'timeout', 'request-body-timeout', 'upstream-connect-timeout']) {
    assert.ok(applied.split(', ').includes(name), `${name} in "${applied}"`);
  }
  assert.doesNotMatch(p.output(), /need a restart/);

  // Fresh connections are spread over both workers: every one now sends the new header.
  for (let i = 0; i < 20; i++) assert.equal((await fresh())['x-reload'], 'two');
  // The primary logs at debug now...
  assert.equal((await p.api('GET', '/api/routes')).status, 200);
  await waitFor(() => /debug: 200 GET \/api\/routes/.test(p.output()), 5000, "the primary's debug line");
  // ...and both workers (each line names its worker).
  await waitFor(
    async () => {
      await rawRequest(p.proxyPort, 'GET / HTTP/1.1\r\n\r\n', 1000);
      // worker=1, worker=2 (processes) or worker="thread N" (threads): two different ones.
      const workers = new Set([...p.output().matchAll(/debug: 400 GET refused[^\n]*worker=("[^"]*"|\S+)/g)].map((m) => m[1]));
      return workers.size >= 2;
    },
    10_000,
    'debug lines from both workers',
  );
  // The new access log, in the combined format; the new proxy timeout (504 after 300 ms, not 30 s).
  await waitFor(() => existsSync(logB) && /"GET \/ HTTP\/1\.1" 200 /.test(readFileSync(logB, 'utf8')), 5000, 'combined lines in b.log');
  for (let i = 0; i < 4; i++) {
    const t0 = Date.now();
    const r = await request(p.proxyUrl + '/slow', { headers: { connection: 'close' } });
    assert.equal(r.status, 504);
    assert.ok(Date.now() - t0 < 5000);
  }
  // The new keep-alive timeout: an idle connection is closed after ~300 ms, not 20 s.
  for (let i = 0; i < 2; i++) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const t0 = Date.now();
    const closed = new Promise<number>((resolve) => {
      const req = http.get(p.proxyUrl + '/', { agent }, (res) => {
        res.resume();
        req.socket!.once('close', () => resolve(Date.now() - t0));
      });
    });
    const ms = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(Infinity), 10_000))]);
    agent.destroy();
    assert.ok(ms < 5000, `idle connection closed after ${ms} ms`);
  }

  // A restart-only setting: named in one line, not applied (paths still route as before).
  writeFileSync(file, readFileSync(file, 'utf8') + 'host-routing = true\nmetrics-route-labels = true\n');
  const viaApi = await p.api('POST', '/api/reload');
  assert.equal(viaApi.status, 200, viaApi.body);
  const answer = viaApi.json<{ ok: boolean; applied: string[]; restartRequired: string[] }>();
  assert.deepEqual(answer.restartRequired.sort(), ['host-routing', 'metrics-route-labels']);
  // The log line may reach this process's pipe after the API answer: wait for it, then check it is one.
  const restartLine = /need a restart were left as they were: host-routing, metrics-route-labels/;
  await waitFor(() => count(p.output(), restartLine) > 0, 5000, 'the restart-only line');
  assert.equal(count(p.output(), restartLine), 1);
  assert.equal((await fresh())['x-reload'], 'two');

  // A broken file: refused (log line and API answer, with the place), the running config kept.
  writeFileSync(file, 'log-level = \ncustom-header = ["X-Reload: three"]\n');
  const before = count(p.output(), /configuration not applied/);
  p.proc.kill('SIGHUP');
  await waitFor(() => count(p.output(), /configuration not applied/) > before, 10_000, 'the refusal line');
  assert.match(p.output(), /configuration not applied, the running configuration is kept: [^\n]*switchyard\.toml:1/);
  const refused = await p.api('POST', '/api/reload');
  assert.equal(refused.status, 422);
  const body = refused.json<{ ok: boolean; errors: string[] }>();
  assert.equal(body.ok, false);
  assert.match(body.errors[0]!, /switchyard\.toml:1/);
  for (let i = 0; i < 10; i++) assert.equal((await fresh())['x-reload'], 'two');
  // Reload needs the token as every API call.
  assert.equal((await request(p.apiUrl + '/api/reload', { method: 'POST' })).status, 403);

  const result = await load.stop();
  assert.deepEqual(result.failed, []);
  assert.ok(result.ok > 50, `${result.ok} requests through the reloads`);
  // (The load client is stopped first: a worker killed mid-request is not a reload.)
  // A worker that dies while the file is broken is replaced by one running the primary's running
  // configuration (sent over IPC; the broken file is not read again): it serves with the header
  // and the log level of the last applied reload.
  const seenWorkers = (): Set<string> => new Set([...p.output().matchAll(/debug: 400 GET refused[^\n]*worker=("[^"]*"|\S+)/g)].map((m) => m[1]!));
  const workersBefore = seenWorkers();
  if (/Data plane: \d+ worker threads/.test(p.output())) {
    // A thread cannot be killed from outside: the test hook makes one die of an uncaught error.
    process.kill(p.pid, 'SIGUSR2');
    await waitFor(() => /data-plane worker thread \d+ exited/.test(p.output()), 10_000, 'the worker exit line');
  } else {
    const victim = Number(execFileSync('pgrep', ['-P', String(p.pid)], { encoding: 'utf8' }).trim().split('\n')[0]);
    process.kill(victim, 'SIGKILL');
    await waitFor(() => new RegExp(`data-plane worker pid ${victim} exited`).test(p.output()), 10_000, 'the worker exit line');
  }
  await waitFor(async () => (await p.api('GET', '/api/health')).status === 200, 20_000, 'the replacement worker listening');
  await waitFor(
    async () => {
      await rawRequest(p.proxyPort, 'GET / HTTP/1.1\r\n\r\n', 1000);
      return [...seenWorkers()].some((w) => !workersBefore.has(w));
    },
    10_000,
    'debug lines from the replacement worker',
  );
  for (let i = 0; i < 10; i++) assert.equal((await fresh())['x-reload'], 'two');
});

test('with the xDS control plane, a reload of timeout/proxy-timeout translates the Envoy configuration again (new LDS and RDS versions)', async (t) => {
  const dir = tempDir(t, 'swy-reload-xds-');
  const file = join(dir, 'switchyard.toml');
  writeFileSync(file, 'proxy-timeout = 1000\ntimeout = 2000\n');
  const p = await startSwitchyardProcess(t, ['--config', file, '--workers', '1', '--xds-port', '0']);
  assert.equal((await p.api('POST', '/api/routes/user/a', { target: 'http://127.0.0.1:9' })).status, 201);
  const versions = async (): Promise<Record<string, string>> => (await p.api('GET', '/api/xds')).json<{ versions: Record<string, string> }>().versions;
  await waitFor(async () => (await p.api('GET', '/api/xds')).json<{ tableVersion?: number }>().tableVersion !== undefined, 5000, 'a snapshot');
  const before = await versions();
  // A reload that changes nothing the translation uses keeps every version.
  writeFileSync(file, 'proxy-timeout = 1000\ntimeout = 2000\nlog-level = "debug"\n');
  assert.equal((await p.api('POST', '/api/reload')).status, 200);
  assert.deepEqual(await versions(), before);
  writeFileSync(file, 'proxy-timeout = 3000\ntimeout = 4000\n');
  assert.equal((await p.api('POST', '/api/reload')).status, 200);
  await waitFor(async () => {
    const now = await versions();
    return now.lds !== before.lds && now.rds !== before.rds;
  }, 5000, 'new LDS (stream_idle_timeout) and RDS (idle_timeout) versions');
  assert.equal((await versions()).cds, before.cds, 'clusters unchanged');
});
