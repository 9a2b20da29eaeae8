// Upstream connection pools (undici, one per origin): reused while busy, closed and forgotten once
// idle, so targets that come and go (user servers on new ports) do not accumulate pools.

import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
// undici's index installs request() (its API mixin) on the Dispatcher the pools extend; the data
// plane itself loads only the Pool and dispatch()es (upstream-agents.ts).
import 'undici';
import { createUpstreamAgents } from '../../src/dataplane/proxy/upstream-agents.js';
import { parseTarget } from '../../src/routing/target.js';
import { listen0, waitFor } from '../helpers/servers.js';

test('one pool per origin, reused, swept once idle', { timeout: 60_000 }, async (t) => {
  const servers: http.Server[] = [];
  const connections: number[] = [];
  for (let i = 0; i < 20; i++) {
    const s = http.createServer((_q, r) => r.end('ok'));
    s.keepAliveTimeout = 10_000;
    const idx = i;
    connections[idx] = 0;
    s.on('connection', () => connections[idx]!++);
    await listen0(s);
    servers.push(s);
  }
  t.after(() => Promise.all(servers.map((s) => new Promise((r) => { s.closeAllConnections(); s.close(r); }))));
  // The idle period must outlast a round over the 20 origins (the gap between two requests to one
  // origin) even on a loaded machine: at 300 ms, a round under load average 10-17 took longer, the
  // keep-alive connection was closed in between and the reuse check failed.
  const agents = createUpstreamAgents({ insecure: false, clientSsl: undefined, idleMs: 3000, sweepMs: 100 });
  t.after(() => agents.destroy());
  const get = async (port: number) => {
    const up = parseTarget(`http://127.0.0.1:${port}`);
    const r = await agents.dispatcher(up).request({ path: '/', method: 'GET' });
    return r.body.text();
  };
  for (let round = 0; round < 3; round++) {
    for (const s of servers) assert.equal(await get((s.address() as { port: number }).port), 'ok');
  }
  assert.equal(agents.poolCount(), 20);
  assert.deepEqual(connections, Array(20).fill(1), 'sequential requests reuse one keep-alive connection per origin');
  await waitFor(() => agents.poolCount() === 0, 20_000, 'idle pools swept');
  // A swept origin gets a new pool on its next request.
  assert.equal(await get((servers[0]!.address() as { port: number }).port), 'ok');
  assert.equal(agents.poolCount(), 1);
});
