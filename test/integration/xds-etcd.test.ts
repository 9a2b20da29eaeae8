// Several Switchyard replicas on one etcd, each with its own xDS server: for the same table every
// replica serves the same versions (content hashes), so an Envoy may reconnect to any of them
// without a reload; a change made through one replica's API reaches the others' xDS state.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startEtcd } from '../helpers/etcd.js';
import { request, startSwitchyardProcess, waitFor } from '../helpers/servers.js';

const TOKEN = 'xe';

test('replicas on etcd serve identical xDS versions for the same table', { timeout: 120_000 }, async (t) => {
  const etcd = await startEtcd(t, 1);
  const replicas: number[] = [];
  for (const name of ['a', 'b']) {
    const sy = await startSwitchyardProcess(t, ['--workers', '1', '--store', `etcd://${etcd.endpoints}`, '--store-prefix', '/xe/', '--replica-id', name,
      '--xds-ip', '127.0.0.1', '--xds-port', '0'], { CONFIGPROXY_AUTH_TOKEN: TOKEN });
    replicas.push(sy.apiPort);
  }
  const api = (apiPort: number, method: string, path: string, body?: unknown) =>
    request(`http://127.0.0.1:${apiPort}${path}`, { method, headers: { authorization: `token ${TOKEN}` }, body: body === undefined ? undefined : JSON.stringify(body) });
  const versions = async (apiPort: number) => (await api(apiPort, 'GET', '/api/xds')).json<{ versions: Record<string, string>; resources: Record<string, number> }>();

  for (let i = 0; i < 20; i++) assert.equal((await api(replicas[i % 2]!, 'POST', `/api/routes/user/u${i}`, { target: `http://10.0.${i}.1:${8000 + i}` })).status, 201);
  await api(replicas[0]!, 'POST', '/api/routes/svc', { target: 'http://svc.internal:80/base' });
  await waitFor(async () => JSON.stringify((await versions(replicas[0]!)).versions) === JSON.stringify((await versions(replicas[1]!)).versions), 10_000, 'same versions');
  const v = await versions(replicas[1]!);
  assert.equal(v.resources.cds, 21, 'a cluster per target origin');
  assert.equal(v.resources.eds, 20, 'EDS for IP targets');
  // One more change through B: both move, and agree again.
  await api(replicas[1]!, 'DELETE', '/api/routes/user/u3');
  await waitFor(async () => {
    const [x, y] = [await versions(replicas[0]!), await versions(replicas[1]!)];
    return x.versions.rds !== v.versions.rds && JSON.stringify(x.versions) === JSON.stringify(y.versions);
  }, 10_000, 'both replicas on the new identical version');
});
