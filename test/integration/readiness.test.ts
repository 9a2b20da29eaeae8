// Readiness (issue 11): the REST API answers only once every data-plane worker listens with the
// current table, so a client that waits for the API (JupyterHub polls it; a load balancer probes
// /api/health) can send traffic through the proxy at once. A worker replaced while running makes
// /api/health answer 503 'not-ready' until the replacement listens; the survivors keep serving.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { childPids, listeningPorts } from '../helpers/proc-net.js';
import { REFUSED_PORT, WORKER_MODES, freePort, request, spawnSwitchyard, startBackend, startSwitchyardProcess, waitFor, waitForLine, type Spawned, type TestContextLike } from '../helpers/servers.js';
import { preforkCount } from '../../src/dataplane/proxy/prefork.js';

const TOKEN = 'secret';

/** One GET on a fresh connection: the status, or the error code (ECONNREFUSED, ...). */
function probe(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    req.end();
  });
}

/**
 * Spawn the CLI on ports picked up front (the poller must know the API port before the process
 * prints anything) and poll the API port back to back from the moment of spawning; resolve at
 * its first HTTP answer of any kind.
 */
async function spawnAndCatchFirstAnswer(
  t: TestContextLike,
  argv: string[],
): Promise<{ s: Spawned; proxyPort: number; apiPort: number; attempts: number; firstStatus: number }> {
  const proxyPort = await freePort();
  const apiPort = await freePort();
  const s = spawnSwitchyard(
    t,
    ['--ip', '127.0.0.1', '--port', String(proxyPort), '--api-ip', '127.0.0.1', '--api-port', String(apiPort), ...argv],
    { CONFIGPROXY_AUTH_TOKEN: TOKEN },
  );
  let exited = false;
  void s.exited.then(() => (exited = true));
  const deadline = Date.now() + 60_000;
  let attempts = 0;
  for (;;) {
    attempts++;
    const r = await probe(apiPort, '/api/routes', { authorization: `token ${TOKEN}` });
    if ('status' in r) return { s, proxyPort, apiPort, attempts, firstStatus: r.status };
    if (exited) throw new Error(`switchyard exited before its API answered:\n${s.output()}`);
    if (Date.now() > deadline) throw new Error(`API never answered (last: ${r.error}):\n${s.output()}`);
  }
}

const cases: { desc: string; argv: (backend: string) => string[] }[] = [
  { desc: 'default workers (one per core), default target', argv: (b) => ['--default-target', b] },
  { desc: '--workers 2, default target', argv: (b) => ['--workers', '2', '--default-target', b] },
  { desc: '--workers 1 (proxy in the main process), default target', argv: (b) => ['--workers', '1', '--default-target', b] },
];

for (const c of cases) {
  test(`first API answer implies the proxy routes: ${c.desc}`, { timeout: 90_000 }, async (t) => {
    const backend = await startBackend(t, 'B');
    const { s, proxyPort, apiPort, attempts, firstStatus } = await spawnAndCatchFirstAnswer(t, c.argv(backend.url));
    // Right after the first answer, nothing waited for: the proxy must already accept and route.
    const through = await probe(proxyPort, '/user/first/x?y=1');
    assert.ok('status' in through, `proxy refused at the first API answer: ${JSON.stringify(through)}\n${s.output()}`);
    assert.equal(through.status, 200, `proxy answered ${through.status}, not the backend:\n${through.body}`);
    assert.equal(JSON.parse(through.body).name, 'B');
    assert.equal(JSON.parse(through.body).url, '/user/first/x?y=1');
    assert.equal(firstStatus, 200, 'the first API answer is the route list');
    const healthz = await probe(proxyPort, '/_chp_healthz');
    assert.ok('status' in healthz && healthz.status === 200, JSON.stringify(healthz));
    const health = await probe(apiPort, '/api/health', { authorization: `token ${TOKEN}` });
    assert.ok('status' in health && health.status === 200, `health: ${JSON.stringify(health)}`);
    assert.equal(JSON.parse(health.body).status, 'ok');
    assert.ok(attempts > 1, 'the poller started before the API listened (else it proves nothing)');
  });
}

test('file store with 2,000 routes: the first API answer implies every route is live on the proxy', { timeout: 120_000 }, async (t) => {
  const backend = await startBackend(t, 'F');
  const dir = mkdtempSync(join(tmpdir(), 'swy-ready-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'routes.json');
  const N = 2000;
  const routes: Record<string, { target: string; n: number }> = {};
  for (let i = 0; i < N; i++) routes[`/user/u${i}`] = { target: backend.url, n: i };
  writeFileSync(file, JSON.stringify({ routes }));
  for (const workers of [[], ['--workers', '1']]) {
    const { s, proxyPort } = await spawnAndCatchFirstAnswer(t, ['--store', `file:${file}`, ...workers]);
    // No default target: a route not yet loaded would be a 404.
    const probes = [N - 1, 0, ...Array.from({ length: 30 }, (_, k) => (k * 7919) % N)];
    for (const i of probes) {
      const r = await probe(proxyPort, `/user/u${i}/api`);
      assert.ok('status' in r, `route ${i}: ${JSON.stringify(r)} (workers ${workers.join(' ') || 'default'})`);
      assert.equal(r.status, 200, `route /user/u${i} not live at the first API answer (workers ${workers.join(' ') || 'default'})`);
      assert.equal(JSON.parse(r.body).url, `/user/u${i}/api`);
    }
    s.proc.kill('SIGTERM');
    assert.equal(await s.exited, 0, s.output());
  }
});

test('workers forked before the table is loaded do not listen until it is: store unreachable, proxy port closed', { timeout: 60_000 }, async (t) => {
  // main.ts forks the workers before the primary loads its store; each takes the initial (empty)
  // table meanwhile and must not listen with it. With an etcd store that cannot be reached the
  // table never loads: the proxy port stays closed (a worker listening would answer 404) while
  // the primary retries, for ~3 s here (backoff 100, 200, ... 1600 ms), long after the workers booted.
  const proxyPort = await freePort();
  const apiPort = await freePort();
  const s = spawnSwitchyard(
    t,
    ['--ip', '127.0.0.1', '--port', String(proxyPort), '--api-ip', '127.0.0.1', '--api-port', String(apiPort), '--workers', '2', '--worker-mode', 'processes', '--store', `etcd://127.0.0.1:${REFUSED_PORT}`],
    { CONFIGPROXY_AUTH_TOKEN: TOKEN },
  );
  const pid = s.proc.pid!;
  const deadline = Date.now() + 30_000;
  let checks = 0;
  let sawWorkers = 0;
  // Checked on the processes' own sockets, not by connecting: a connect probe to a port nobody
  // holds can succeed (a TCP self-connect, or another test's server on the freed port).
  while (!/retrying in 3200 ms/.test(s.output())) {
    assert.ok(Date.now() < deadline, `no retry line:\n${s.output()}`);
    const pids = [pid, ...childPids(pid)];
    sawWorkers = Math.max(sawWorkers, pids.length - 1);
    for (const p of pids) assert.equal(listeningPorts(p).has(proxyPort), false, `process ${p} listens on the proxy port before the table is loaded`);
    checks++;
    await new Promise((r) => setTimeout(r, 5)); // a polling interval, not a wait for a condition
  }
  // The workers started before the table loads (prefork.ts): as many as there are cores besides the primary's.
  assert.equal(childPids(pid).length, preforkCount(2), 'the preforked workers were running meanwhile');
  assert.equal(sawWorkers, preforkCount(2));
  assert.ok(checks > 1);
  s.proc.kill('SIGTERM');
  assert.equal(await s.exited, 0, s.output());
});


test('a worker killed with SIGKILL: /api/health is 503 not-ready until the replacement listens; the survivor keeps answering', { timeout: 90_000 }, async (t) => {
  const backend = await startBackend(t, 'K');
  const p = await startSwitchyardProcess(t, ['--workers', '2', '--worker-mode', 'processes', '--default-target', backend.url]);
  const pid = p.proc.pid!;
  await waitFor(() => childPids(pid).length === 2, 10_000, 'two workers');
  assert.equal((await p.api('GET', '/api/health')).status, 200);
  const [victim, survivor] = childPids(pid);
  process.kill(victim!, 'SIGKILL');

  // Health as fast as it can be asked, until it is 200 again.
  const seen: { status: number; status_: string; reason?: string; kids: number[] }[] = [];
  const deadline = Date.now() + 30_000;
  let proxied = 0;
  const failures: string[] = [];
  let done = false;
  let recovered = false;
  let duringWindow = 0;
  // Meanwhile, requests through the proxy, one after another, each on a fresh connection: the
  // surviving worker (and the replacement once it listens) answers every one.
  const traffic = (async () => {
    // Start once the primary has seen the death (the first 503): connections handed to the
    // victim before that could not be answered by anyone. Three clients at once, so that a slow
    // answer on a loaded machine does not leave the not-ready window without any request.
    await waitFor(() => seen.some((h) => h.status === 503), 15_000, 'first 503');
    const client = async (): Promise<void> => {
      while (!done && Date.now() < deadline) {
        const r = await probe(p.proxyPort, `/k/${proxied++}`);
        if (!('status' in r) || r.status !== 200 || JSON.parse(r.body).name !== 'K') failures.push(JSON.stringify(r));
        // Answered while health still said not-ready: the survivor served it.
        else if (!recovered) duringWindow++;
      }
    };
    await Promise.all([client(), client(), client()]);
  })();
  try {
    for (;;) {
      const r = await probe(p.apiPort, '/api/health', { authorization: `token ${TOKEN}` });
      assert.ok('status' in r, `API stopped answering: ${JSON.stringify(r)}`);
      const j = JSON.parse(r.body) as { status: string; reason?: string };
      seen.push({ status: r.status, status_: j.status, ...(j.reason !== undefined ? { reason: j.reason } : {}), kids: childPids(pid) });
      // 200s before the primary has noticed the death (its first 503) do not count.
      if (r.status === 200 && seen.some((h) => h.status === 503)) break;
      assert.ok(Date.now() < deadline, `health never recovered: ${JSON.stringify(seen.slice(-3))}`);
    }
    recovered = true;
    // Let the traffic loop see the recovered pool too, then stop it.
    const after = proxied;
    await waitFor(() => proxied >= after + 5, 10_000, 'requests after recovery');
  } finally {
    done = true;
    await traffic;
  }

  const firstNotReady = seen.findIndex((h) => h.status === 503);
  assert.ok(seen.slice(0, firstNotReady).every((h) => h.status === 200), 'before the primary notices the death, nothing changes');
  const notReady = seen.slice(firstNotReady, -1);
  assert.ok(notReady.every((h) => h.status === 503), `200 and 503 interleaved: ${JSON.stringify(seen)}`);
  assert.ok(notReady.length > 0, `no 503 while the worker was being replaced: ${JSON.stringify(seen)}`);
  for (const h of notReady) {
    assert.equal(h.status_, 'not-ready');
    assert.match(h.reason ?? '', /^[01] of 2 data-plane workers listening/);
  }
  assert.equal(seen.at(-1)!.status_, 'ok');
  const kids = childPids(pid);
  assert.equal(kids.length, 2, 'replaced');
  assert.ok(kids.includes(survivor!) && !kids.includes(victim!));
  assert.deepEqual(failures, [], `requests not answered while a worker was replaced (of ${proxied})`);
  assert.ok(duringWindow > 0, `no request was answered while health said not-ready (of ${proxied}; ${notReady.length} health answers were 503)`);
  // The replacement serves the current table: a route added now is live on both workers at 201.
  assert.equal((await p.api('POST', '/api/routes/after', { target: backend.url })).status, 201);
  for (let i = 0; i < 6; i++) {
    const r = await request(`${p.proxyUrl}/after/${i}`);
    assert.equal(r.status, 200);
    assert.equal(r.json<{ url: string }>().url, `/after/${i}`);
  }
  p.proc.kill('SIGTERM');
  assert.equal(await p.exited, 0, p.output());
});

test('SIGTERM while workers are still starting: exits 0 promptly (a worker not yet ready still gets its drain)', { timeout: 60_000 }, async (t) => {
  const s = spawnSwitchyard(t, ['--ip', '127.0.0.1', '--port', '0', '--api-ip', '127.0.0.1', '--api-port', '0', '--workers', '2', '--worker-mode', 'processes'], { CONFIGPROXY_AUTH_TOKEN: TOKEN });
  const pid = s.proc.pid!;
  // The first worker is forked after the signal handlers are installed, long before it is ready.
  await waitFor(() => childPids(pid).length > 0, 20_000, 'a worker forked');
  const t0 = Date.now();
  s.proc.kill('SIGTERM');
  assert.equal(await s.exited, 0, s.output());
  const ms = Date.now() - t0;
  // Before: a worker that had not said 'ready' lost its drain message and was SIGKILLed only
  // after --drain-timeout + 2 s (12 s).
  assert.ok(ms < 8000, `took ${ms} ms`);
  assert.doesNotMatch(s.output(), /Proxy API at/, 'the API never opened');
});

// Start-up (bench/README.md "Start-up"): each worker listens as soon as it has applied the table
// loaded from the store, so the proxy port answers as soon as the first one can; the API still
// opens only once every worker listens. A test hook (worker-pool.ts) keeps the second worker
// without its table until SIGWINCH (as if it booted slowly), so the window with one worker lasts as
// long as the test needs. (Before: no worker listened until all had the table.)
for (const mode of WORKER_MODES) {
  test(`${mode}: the proxy port routes as soon as one worker listens, the API opens once all do; no request lost as the others join`, { timeout: 90_000 }, async (t) => {
    const backend = await startBackend(t, 'H');
    const s = spawnSwitchyard(
      t,
      ['--ip', '127.0.0.1', '--port', '0', '--api-ip', '127.0.0.1', '--api-port', '0', '--workers', '2', '--worker-mode', mode, '--default-target', backend.url, '--log-level', 'debug'],
      { CONFIGPROXY_AUTH_TOKEN: TOKEN, SWITCHYARD_TEST_HOOKS: '1', SWITCHYARD_TEST_HOLD_SYNC: '1' },
    );
    const pid = s.proc.pid!;
    const listeningLine = /data-plane worker (?:pid|thread) \d+ listening on port (\d+)/;
    const listening = (): number => s.output().split('\n').filter((l) => listeningLine.test(l)).length;
    await waitForLine(s.output, listeningLine, 30_000);
    const proxyPort = Number(listeningLine.exec(s.output())![1]);

    // A steady request loop (each on a fresh connection) from now until after every worker listens.
    let done = false;
    let answered = 0;
    const failures: string[] = [];
    const loop = (async () => {
      for (let i = 0; !done; i++) {
        const r = await probe(proxyPort, `/h/${i}`);
        if ('status' in r && r.status === 200 && JSON.parse(r.body).name === 'H') answered++;
        else failures.push(JSON.stringify(r));
      }
    })();
    try {
      await waitFor(() => answered >= 20 || failures.length > 0, 30_000, 'requests answered with one worker listening');
      assert.deepEqual(failures, [], s.output());
      // Still one worker listening, and no API: the process listens on the proxy port only.
      assert.equal(listening(), 1, s.output());
      assert.doesNotMatch(s.output(), /Proxy API at/);
      assert.deepEqual([...listeningPorts(pid)], [proxyPort], 'the API is not open while a worker does not listen');

      process.kill(pid, 'SIGWINCH'); // the hook lets the second worker get its table
      await waitForLine(s.output, /Proxy API at http:\/\/[^\s]*:(\d+)\/api\/routes/, 30_000);
      assert.equal(listening(), 2, s.output());
      const apiPort = Number(/Proxy API at http:\/\/[^\s]*:(\d+)\/api\/routes/.exec(s.output())![1]);
      const health = await probe(apiPort, '/api/health', { authorization: `token ${TOKEN}` });
      assert.ok('status' in health && health.status === 200, `health: ${JSON.stringify(health)}`);
      const after = answered;
      await waitFor(() => answered >= after + 20 || failures.length > 0, 30_000, 'requests answered with both workers listening');
    } finally {
      done = true;
      await loop;
    }
    assert.deepEqual(failures, [], `of ${answered + failures.length} requests`);
    s.proc.kill('SIGTERM');
    assert.equal(await s.exited, 0, s.output());
  });
}
