// The real CLI as a child process: flags, exit codes, pid file, graceful SIGTERM.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { FLAGS } from '../../src/config/flags.js';
import { threadsUnsupported } from '../../src/config/worker-mode.js';
import { MAIN, connectRefused, listen0, nextEvent, request, spawnSwitchyard, startHeldBackend, startSwitchyardProcess, waitFor } from '../helpers/servers.js';
import { tempDir } from '../helpers/temp.js';

const run = promisify(execFile);

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await run(process.execPath, [MAIN, ...args]);
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, out: err.stdout + err.stderr };
  }
}

test('--version, --help list every flag', async () => {
  const v = await cli(['--version']);
  assert.equal(v.code, 0);
  assert.match(v.out, /^\d+\.\d+\.\d+\n$/);
  const h = await cli(['--help']);
  assert.equal(h.code, 0);
  for (const f of FLAGS) assert.ok(h.out.includes(f.kind === 'negated' ? `--no-${f.name}` : `--${f.name}`), f.name);
});

test('bad flags exit 1 with a message, never silently', async () => {
  for (const args of [['--nope'], ['--port', 'x'], ['--store', 'redis://127.0.0.1:6379'], ['--store', 'etcd://nohostport'], ['--error-target', 'http://a', '--error-path', '/tmp']]) {
    const r = await cli(args);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.out, /^switchyard: error: .+/m, args.join(' '));
  }
});

test('a port in use: exit 1 with the reason', async (t) => {
  const blocker = http.createServer();
  const port = await listen0(blocker);
  t.after(() => new Promise((r) => blocker.close(r)));
  // The API port taken (it binds in the main process): SWY_LISTEN_FAILED with the OS reason.
  const api = spawnSwitchyard(t, ['--ip', '127.0.0.1', '--port', '0', '--api-ip', '127.0.0.1', '--api-port', String(port)]);
  assert.equal(await api.exited, 1);
  assert.match(api.output(), /failed to start: listen EADDRINUSE: address already in use 127\.0\.0\.1:\d+ code=SWY_LISTEN_FAILED/);
  // The public port taken, with the default workers (one per core): the first worker that cannot
  // bind stops the start at once — no respawn loop until a 60 s start-up limit.
  const t0 = Date.now();
  const p = spawnSwitchyard(t, ['--ip', '127.0.0.1', '--port', String(port), '--api-ip', '127.0.0.1', '--api-port', '0']);
  assert.equal(await p.exited, 1);
  assert.match(p.output(), /failed to start: data-plane workers cannot listen: (listen|bind) EADDRINUSE.* code=SWY_LISTEN_FAILED/);
  assert.doesNotMatch(p.output(), /starting a new one/);
  assert.ok(Date.now() - t0 < 20_000, `took ${Date.now() - t0} ms to give up`);
});

test('pid file written, SIGTERM drains in-flight requests, refuses new ones, removes the pid file, exits 0', async (t) => {
  // The backend holds its answer until the test releases it: the request is in flight for as
  // long as the test needs, whatever the machine's speed.
  const held = await startHeldBackend(t);
  const bport = held.port;
  const dir = mkdtempSync(join(tmpdir(), 'swy-pid-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pidFile = join(dir, 'proxy.pid');
  const p = await startSwitchyardProcess(t, ['--default-target', `http://127.0.0.1:${bport}`, '--pid-file', pidFile], { CONFIGPROXY_AUTH_TOKEN: 't' });
  await waitFor(() => existsSync(pidFile), 5000, 'pid file');
  assert.equal(readFileSync(pidFile, 'utf8'), String(p.pid));
  // No --workers: one data-plane worker per core (1 core = in this process). Worker threads where
  // supported (config/worker-mode.ts), else processes this one forks.
  const kids = () => readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  const cores = availableParallelism();
  if (cores > 1 && threadsUnsupported({ kind: 'tcp', port: 0, host: '127.0.0.1' }) === undefined) {
    assert.match(p.output(), new RegExp(`Data plane: ${cores} worker threads`));
    assert.equal(kids().length, 0, 'threads: no worker process');
  } else await waitFor(() => kids().length === (cores > 1 ? cores : 0), 10_000, `${cores} workers by default`);
  const arrived = nextEvent(held.server, 'request');
  const inflight = request(`${p.proxyUrl}/slow`);
  await arrived; // barrier: the backend holds the request
  p.proc.kill('SIGTERM');
  // New connections are refused while the in-flight request is still open...
  await waitFor(() => connectRefused(p.proxyPort), 10_000, 'proxy port closed while draining');
  // ...and the held request still completes once its backend answers.
  held.release();
  const r = await inflight;
  assert.equal(r.status, 200);
  assert.equal(r.body, 'slow done');
  assert.equal(await p.exited, 0);
  assert.equal(existsSync(pidFile), false, 'pid file removed');
  await assert.rejects(request(`${p.proxyUrl}/`), 'port closed');
});

test('env token protects the API of the real process', async (t) => {
  const p = await startSwitchyardProcess(t, [], { CONFIGPROXY_AUTH_TOKEN: 'envtoken' });
  assert.equal((await request(`${p.apiUrl}/api/routes`)).status, 403);
  assert.equal((await request(`${p.apiUrl}/api/routes`, { headers: { authorization: 'token envtoken' } })).status, 200);
});

test('unix sockets for proxy and API', async (t) => {
  const dir = tempDir(t, 'swy-us-');
  const sock = join(dir, 'proxy.sock');
  const apiSock = join(dir, 'api.sock');
  spawnSwitchyard(t, ['--socket', sock, '--api-socket', apiSock], { CONFIGPROXY_AUTH_TOKEN: 'u' });
  await waitFor(() => existsSync(sock) && existsSync(apiSock), 10_000, 'sockets');
  const get = (socketPath: string, path: string, headers: Record<string, string> = {}) =>
    new Promise<number>((resolve, reject) =>
      http.get({ socketPath, path, headers }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject),
    );
  assert.equal(await get(apiSock, '/api/routes', { authorization: 'token u' }), 200);
  assert.equal(await get(sock, '/_chp_healthz'), 200);
  assert.equal(await get(sock, '/nothing'), 404);
});
