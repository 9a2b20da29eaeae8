// --workers N --worker-mode processes: several data-plane processes on one port, one table, one
// API. (The same with threads: worker-threads.test.ts.)

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import WebSocket from 'ws';
import { connectRefused, nextEvent, request, startBackend, startHeldBackend, startSwitchyardProcess, waitFor, type Echo } from '../helpers/servers.js';

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

test('--workers 2 (processes): writes live on every worker at 201, activity and metrics gathered, workers replaced, graceful stop', { timeout: 120_000 }, async (t) => {
  const backend = await startBackend(t, 'W', undefined, { ws: true });
  // The slow backend answers only when the test releases it (the request stays in flight).
  const held = await startHeldBackend(t);
  const slowPort = held.port;
  const p = await startSwitchyardProcess(t, ['--metrics-port', '0', '--metrics-ip', '127.0.0.1', '--workers', '2', '--worker-mode', 'processes', '--activity-flush-interval', '100'],
    { CONFIGPROXY_AUTH_TOKEN: 'w' });
  const { api, proxyPort: port, metricsPort } = p;
  const pid = p.proc.pid!;
  await waitFor(() => children(pid).length === 2, 10_000, 'two workers');

  // Every new connection may land on either worker: a 201 must mean live on both.
  let served = 0;
  for (let i = 0; i < 20; i++) {
    assert.equal((await api('POST', `/api/routes/user/u${i}`, { target: backend.url })).status, 201);
    for (let k = 0; k < 4; k++) {
      assert.equal((await request(`http://127.0.0.1:${port}/user/u${i}/k${k}`)).json<Echo>().name, 'W', `u${i} live at 201`);
      served++;
    }
    assert.equal((await api('DELETE', `/api/routes/user/u${i}`)).status, 204);
    for (let k = 0; k < 4; k++) assert.equal((await request(`http://127.0.0.1:${port}/user/u${i}/k${k}`)).status, 404, `u${i} gone at 204`);
  }

  // Activity recorded by workers reaches the API; metrics are summed over workers.
  await api('POST', '/api/routes/act', { target: backend.url });
  const created = Date.parse((await api('GET', '/api/routes/act')).json<{ last_activity: string }>().last_activity);
  await waitFor(() => Date.now() > created, 1000, 'the clock past the creation time'); // a later timestamp is the signal
  await request(`http://127.0.0.1:${port}/act/x`);
  await waitFor(async () => Date.parse((await api('GET', '/api/routes/act')).json<{ last_activity: string }>().last_activity) > created, 5000, 'activity from a worker');
  const m = (await request(`http://127.0.0.1:${metricsPort}/metrics`)).body;
  const ok = Number(/switchyard_requests_total\{kind="web",code="200"\} (\d+)/.exec(m)?.[1]);
  const nf = Number(/switchyard_requests_total\{kind="web",code="404"\} (\d+)/.exec(m)?.[1]);
  assert.equal(ok, served + 1, 'every 200 counted once across workers');
  assert.equal(nf, 80);

  // Websockets through a worker.
  const ws = new WebSocket(`ws://127.0.0.1:${port}/act/ws`);
  await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
  ws.send('through a worker');
  const echo = await new Promise<string>((r) => ws.once('message', (data) => r(String(data))));
  assert.equal(echo, 'through a worker');
  ws.close();

  // A worker killed with -9 is replaced; the table survives in the new one.
  const [victim] = children(pid);
  process.kill(victim!, 'SIGKILL');
  await waitFor(() => children(pid).length === 2 && !children(pid).includes(victim!), 15_000, 'worker replaced');
  for (let k = 0; k < 10; k++) assert.equal((await request(`http://127.0.0.1:${port}/act/after-${k}`)).status, 200);

  // SIGTERM: the in-flight request finishes, then everything exits 0.
  await api('POST', '/api/routes/slow', { target: `http://127.0.0.1:${slowPort}` });
  const arrived = nextEvent(held.server, 'request');
  const inflight = request(`http://127.0.0.1:${port}/slow`);
  await arrived; // barrier: the backend holds the request
  p.proc.kill('SIGTERM');
  await waitFor(() => connectRefused(port), 10_000, 'listeners closed while draining');
  held.release();
  assert.equal((await inflight).body, 'slow done');
  assert.equal(await p.exited, 0);
  assert.deepEqual(children(pid), []);
});
