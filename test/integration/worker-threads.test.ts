// --workers N --worker-mode threads: data-plane workers as threads of the primary's process, each
// with its own listening socket on the public port (SO_REUSEPORT). What the process workers do
// (workers.test.ts, readiness.test.ts, worker-heap.test.ts), checked with threads: both threads
// serve, 201 means live on both, metrics merged with the process-wide series counted once, a thread
// that dies is replaced while the other serves, SIGTERM drains, the young generation is pinned,
// and a second Switchyard on the same port is refused instead of silently sharing it.
// Threads need Node 22.12+/23.1+ on Linux: elsewhere this file checks that they are refused.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { test } from 'node:test';
import { listeningPorts } from '../helpers/proc-net.js';
import { threadsUnsupported } from '../../src/config/worker-mode.js';
import { WORKER_SEMI_SPACE_MB } from '../../src/dataplane/proxy/worker-exec-argv.js';
import {
  REFUSED_PORT,
  connectRefused,
  freePort,
  nextEvent,
  request,
  spawnSwitchyard,
  startBackend,
  startHeldBackend,
  startSwitchyardProcess,
  waitFor,
  waitForLine,
  type Echo,
} from '../helpers/servers.js';

const THREADS = ['--workers', '2', '--worker-mode', 'threads'];
const unsupported = threadsUnsupported({ kind: 'tcp', port: 0, host: '127.0.0.1' });

/** The thread labels that served the 404s in `output` (each 404 is logged with its worker). */
const servedBy = (output: string): Set<string> => new Set([...output.matchAll(/404 GET \/nowhere\/\d+ worker="(thread \d+)"/g)].map((m) => m[1]!));
/** One metric's value in a /metrics body (the first series matching `labels`). */
const metric = (body: string, name: string, labels = ''): number => {
  const m = new RegExp(`^${name}${labels.replace(/[{}]/g, '\\$&')} ([0-9.e+]+)$`, 'm').exec(body);
  assert.ok(m, `${name}${labels} in /metrics`);
  return Number(m[1]);
};

if (unsupported !== undefined) {
  test(`--worker-mode threads is refused here (${unsupported})`, async (t) => {
    const s = spawnSwitchyard(t, ['--port', '0', '--api-port', '0', ...THREADS]);
    assert.equal(await s.exited, 1);
    assert.match(s.output(), /--worker-mode: threads are not available here: /);
    assert.ok(s.output().includes(unsupported), s.output());
  });
} else {
  test('threads: both accept connections, 201 is live on both, metrics merged (process-wide once), a dead thread is replaced, SIGTERM drains', { timeout: 120_000 }, async (t) => {
    const backend = await startBackend(t, 'T');
    const held = await startHeldBackend(t);
    const slowPort = held.port;
    const p = await startSwitchyardProcess(t, ['--metrics-port', '0', '--metrics-ip', '127.0.0.1', '--activity-flush-interval', '100', '--dashboard-interval', '50', ...THREADS], {
      SWITCHYARD_TEST_HOOKS: '1',
    });
    const { api, proxyPort: port } = p;
    assert.match(p.output(), /Data plane: 2 worker threads, each listening on the public port \(SO_REUSEPORT\)/);
    assert.equal(readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, 'utf8').trim(), '', 'no worker process');

    // New connections are spread by the kernel over both threads' sockets: each serves some.
    let sent = 0;
    const deadline = Date.now() + 30_000;
    while (servedBy(p.output()).size < 2 || sent < 20) {
      assert.ok(Date.now() < deadline, `404s seen from ${[...servedBy(p.output())].join(', ')} only, after ${sent} connections`);
      assert.equal((await request(`http://127.0.0.1:${port}/nowhere/${sent++}`)).status, 404);
    }
    await waitForLine(p.output, new RegExp(`404 GET /nowhere/${sent - 1} `));
    const threadsSeen = [...servedBy(p.output())];
    assert.equal(threadsSeen.length, 2, threadsSeen.join(', '));

    // A write answered 201 is live on both threads (every fresh connection may land on either).
    for (let i = 0; i < 5; i++) {
      assert.equal((await api('POST', `/api/routes/user/u${i}`, { target: backend.url })).status, 201);
      for (let k = 0; k < 6; k++) assert.equal((await request(`http://127.0.0.1:${port}/user/u${i}/k${k}`)).json<Echo>().name, 'T', `u${i} live at 201`);
    }

    // Metrics: the threads' counters summed; CPU, RSS and fds are the process's, reported once.
    const body = (await request(`${p.metricsUrl}/metrics`)).body;
    assert.equal(metric(body, 'switchyard_requests_total', '{kind="web",code="404"}'), sent);
    assert.equal(metric(body, 'switchyard_requests_total', '{kind="web",code="200"}'), 30);
    const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p.pid}/status`, 'utf8'))![1]) * 1024;
    const reported = metric(body, 'switchyard_process_resident_memory_bytes');
    assert.ok(reported > rss * 0.6 && reported < rss * 1.4, `RSS reported ${reported}, the process has ${rss} (counted once, not per thread)`);
    const fds = readdirSync(`/proc/${p.pid}/fd`).length;
    const openFds = metric(body, 'switchyard_process_open_fds');
    assert.ok(Math.abs(openFds - fds) < 10, `open fds reported ${openFds}, the process has ${fds}`);
    assert.equal([...body.matchAll(/^switchyard_process_cpu_seconds_total /gm)].length, 1);
    // The young generation of each thread is pinned (worker-exec-argv.ts): both at the pinned size.
    const newSpace = metric(body, 'switchyard_nodejs_heap_space_size_total_bytes', '{space="new"}');
    assert.ok(newSpace >= 2 * WORKER_SEMI_SPACE_MB * 2 ** 20, `new space over the process's isolates: ${newSpace / 2 ** 20} MiB`);

    const health = (await api('GET', '/api/health')).json<{ status: string }>();
    assert.equal(health.status, 'ok');

    // Activity recorded in a thread reaches the API.
    const created = Date.parse((await api('GET', '/api/routes/user/u0')).json<{ last_activity: string }>().last_activity);
    await waitFor(() => Date.now() > created, 1000, 'the clock past the creation time'); // a later timestamp is the signal
    await request(`http://127.0.0.1:${port}/user/u0/again`);
    await waitFor(async () => Date.parse((await api('GET', '/api/routes/user/u0')).json<{ last_activity: string }>().last_activity) > created, 5000, 'activity from a thread');

    // The dashboard's workers: thread ids and each thread's heap; no per-thread RSS (the process's
    // is the main process's figure).
    type State = { status: { process: { rss: number; workers: { pid: number; threadId?: number; listening: boolean; vitals?: { rss?: number; heapUsed: number } }[] } } };
    const state = async (): Promise<State> => (await request(`${p.apiUrl}/dashboard/api/state`, { headers: { authorization: 'token secret' } })).json<State>();
    await waitFor(async () => (await state()).status.process.workers.every((w) => w.vitals !== undefined), 5000, 'vitals from both threads');
    const { process: proc } = (await state()).status;
    assert.equal(proc.workers.length, 2);
    for (const w of proc.workers) {
      assert.equal(w.pid, p.pid, 'a thread is in the main process');
      assert.ok(typeof w.threadId === 'number' && w.threadId > 0 && w.listening);
      assert.equal(w.vitals!.rss, undefined);
      assert.ok(w.vitals!.heapUsed > 0);
    }
    assert.notEqual(proc.workers[0]!.threadId, proc.workers[1]!.threadId);

    // A thread that dies of an uncaught error is replaced; the other keeps serving meanwhile.
    process.kill(p.pid, 'SIGUSR2'); // test hook (worker-pool.ts): the oldest thread throws
    await waitForLine(p.output, /data-plane worker thread \d+ exited \(uncaught error: test crash \(SWITCHYARD_TEST_HOOKS\)\); starting a new one/, 10_000);
    for (let k = 0; k < 20; k++) assert.equal((await request(`http://127.0.0.1:${port}/user/u1/after-${k}`)).status, 200, 'served while replacing');
    await waitFor(async () => (await api('GET', '/api/health')).status === 200, 15_000, 'the replacement listening');
    assert.equal((await api('POST', '/api/routes/after', { target: backend.url })).status, 201);
    for (let k = 0; k < 10; k++) assert.equal((await request(`http://127.0.0.1:${port}/after/${k}`)).status, 200, 'live on the survivor and the replacement');
    // The replacement runs with the pinned young generation too.
    const newSpaceAfter = metric((await request(`${p.metricsUrl}/metrics`)).body, 'switchyard_nodejs_heap_space_size_total_bytes', '{space="new"}');
    assert.ok(newSpaceAfter >= 2 * WORKER_SEMI_SPACE_MB * 2 ** 20, `new space after the replacement: ${newSpaceAfter / 2 ** 20} MiB`);
    // The replacement serves too.
    const before = servedBy(p.output());
    const deadline2 = Date.now() + 30_000;
    while (![...servedBy(p.output())].some((w) => !before.has(w))) {
      assert.ok(Date.now() < deadline2, 'the replacement thread never served a connection');
      assert.equal((await request(`http://127.0.0.1:${port}/nowhere/${sent++}`)).status, 404);
    }

    // SIGTERM: the in-flight request finishes, then the process exits 0.
    await api('POST', '/api/routes/slow', { target: `http://127.0.0.1:${slowPort}` });
    const arrived = nextEvent(held.server, 'request');
    const inflight = request(`http://127.0.0.1:${port}/slow`);
    await arrived;
    p.proc.kill('SIGTERM');
    await waitFor(() => connectRefused(port), 10_000, 'listeners closed while draining');
    held.release();
    assert.equal((await inflight).body, 'slow done');
    assert.equal(await p.exited, 0, p.output());
  });

  test('threads: an operator\'s own semi-space size wins (the new space stays small)', { timeout: 60_000 }, async (t) => {
    const p = await startSwitchyardProcess(t, ['--metrics-port', '0', '--metrics-ip', '127.0.0.1', ...THREADS], {}, 30_000, ['--max-semi-space-size=2']);
    const body = (await request(`${p.metricsUrl}/metrics`)).body;
    const newSpace = metric(body, 'switchyard_nodejs_heap_space_size_total_bytes', '{space="new"}');
    assert.ok(newSpace < 2 * WORKER_SEMI_SPACE_MB * 2 ** 20, `new space ${newSpace / 2 ** 20} MiB`);
  });

  test('threads: no thread listens before the table is loaded (store unreachable: the proxy port stays closed)', { timeout: 60_000 }, async (t) => {
    const proxyPort = await freePort();
    const s = spawnSwitchyard(t, ['--ip', '127.0.0.1', '--port', String(proxyPort), '--api-ip', '127.0.0.1', '--api-port', '0', ...THREADS, '--store', `etcd://127.0.0.1:${REFUSED_PORT}`], {
      CONFIGPROXY_AUTH_TOKEN: 'x',
    });
    const pid = s.proc.pid!;
    const deadline = Date.now() + 30_000;
    let checks = 0;
    // Checked on the process's own sockets, not by connecting: a connect probe to a port nobody
    // holds can succeed (a TCP self-connect, or another test's server on the freed port).
    while (!/retrying in 3200 ms/.test(s.output())) {
      assert.ok(Date.now() < deadline, `no retry line:\n${s.output()}`);
      assert.equal(listeningPorts(pid).has(proxyPort), false, 'the proxy port opened before the table was loaded');
      checks++;
      await new Promise((r) => setTimeout(r, 5)); // a polling interval, not a wait for a condition
    }
    assert.ok(checks > 1);
    assert.ok(/Data plane: 2 worker threads/.test(s.output()), 'the threads were started meanwhile');
    s.proc.kill('SIGTERM');
    assert.equal(await s.exited, 0, s.output());
  });

  test('threads: SIGTERM while the threads are still starting exits 0 promptly', { timeout: 60_000 }, async (t) => {
    const s = spawnSwitchyard(t, ['--ip', '127.0.0.1', '--port', '0', '--api-ip', '127.0.0.1', '--api-port', '0', ...THREADS], { CONFIGPROXY_AUTH_TOKEN: 'x' });
    // The threads start right after this line (prefork.ts), long before they are ready.
    await waitForLine(s.output, /Data plane: 2 worker threads/, 20_000);
    const t0 = Date.now();
    s.proc.kill('SIGTERM');
    assert.equal(await s.exited, 0, s.output());
    assert.ok(Date.now() - t0 < 8000, `took ${Date.now() - t0} ms`);
    assert.doesNotMatch(s.output(), /Proxy API at/, 'the API never opened');
  });

  test('threads: a second Switchyard on the same port is refused (SO_REUSEPORT would let it join); the first keeps serving', { timeout: 90_000 }, async (t) => {
    // A free port (listen on 0, close); another process may take it before the first Switchyard
    // does: then try another.
    let first: Awaited<ReturnType<typeof startSwitchyardProcess>> | undefined;
    let port = 0;
    for (let attempt = 0; first === undefined; attempt++) {
      port = await freePort();
      try {
        first = await startSwitchyardProcess(t, ['--port', String(port), ...THREADS]);
      } catch (e) {
        if (attempt >= 4 || !/EADDRINUSE|in use/.test((e as Error).message)) throw e;
      }
    }
    const second = spawnSwitchyard(t, ['--ip', '127.0.0.1', '--port', String(port), '--api-ip', '127.0.0.1', '--api-port', '0', ...THREADS], { CONFIGPROXY_AUTH_TOKEN: 'x' });
    assert.equal(await second.exited, 1, second.output());
    assert.match(second.output(), new RegExp(`failed to start: port ${port} is in use by another Switchyard`));
    for (let k = 0; k < 10; k++) assert.equal((await request(`${first.proxyUrl}/k${k}`)).status, 404, 'the first still answers every connection');
    assert.equal((await first.api('GET', '/api/health')).status, 200);
    // Processes (cluster binds without SO_REUSEPORT) and one worker are refused by the kernel.
    for (const mode of [['--workers', '2', '--worker-mode', 'processes'], ['--workers', '1']]) {
      const other = spawnSwitchyard(t, ['--ip', '127.0.0.1', '--port', String(port), '--api-ip', '127.0.0.1', '--api-port', '0', ...mode], { CONFIGPROXY_AUTH_TOKEN: 'x' });
      assert.equal(await other.exited, 1, other.output());
      assert.match(other.output(), /EADDRINUSE/);
    }
    first.proc.kill('SIGTERM');
    assert.equal(await first.exited, 0, first.output());
    // Once the first is gone, its claim is too: the port can be used again.
    const again = await startSwitchyardProcess(t, ['--port', String(port), ...THREADS]);
    assert.equal((await request(`${again.proxyUrl}/x`)).status, 404);
  });
}
