// High availability with real etcd and real Switchyard processes: three replicas share one table.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startEtcd } from '../helpers/etcd.js';
import { testCert } from '../helpers/tls.js';
import { request, spawnSwitchyard, startBackend, startSwitchyardProcess, waitFor, type Echo, type SpawnedSwitchyard, type TestContextLike } from '../helpers/servers.js';

const TOKEN = 'ha-token';

interface Replica {
  name: string;
  port: number;
  apiPort: number;
  args: string[];
  proc: SpawnedSwitchyard;
}

async function replica(t: TestContextLike, name: string, endpoints: string, prefix: string): Promise<Replica> {
  const args = ['--store', `etcd://${endpoints}`, '--store-prefix', prefix, '--replica-id', name, '--activity-flush-interval', '100'];
  const proc = await startSwitchyardProcess(t, args, { CONFIGPROXY_AUTH_TOKEN: TOKEN });
  return { name, port: proc.proxyPort, apiPort: proc.apiPort, args, proc };
}

const api = (r: Replica, method: string, path: string, body?: unknown) =>
  request(`http://127.0.0.1:${r.apiPort}${path}`, {
    method,
    headers: { authorization: `token ${TOKEN}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

test('three replicas on one etcd: propagation, activity, kill -9, etcd outage and return', { timeout: 180_000 }, async (t) => {
  const etcd = await startEtcd(t, 1);
  const backend = await startBackend(t, 'B1');
  const [a, b, c] = [await replica(t, 'a', etcd.endpoints, '/ha1/'), await replica(t, 'b', etcd.endpoints, '/ha1/'), await replica(t, 'c', etcd.endpoints, '/ha1/')];

  // A route added through A is live on B and C.
  const t0 = performance.now();
  assert.equal((await api(a, 'POST', '/api/routes/user/mary', { target: backend.url, jupyterhub: true })).status, 201);
  for (const r of [b, c]) {
    await waitFor(async () => (await request(`http://127.0.0.1:${r.port}/user/mary/x`)).status === 200, 5000, `route on ${r.name}`);
  }
  const propagated = performance.now() - t0;
  process.stderr.write(`# route added on A live on B and C after ${propagated.toFixed(1)} ms\n`);
  assert.deepEqual(Object.keys((await api(c, 'GET', '/api/routes')).json() as object), ['/user/mary']);

  // Activity seen by C is visible through A (idle culling under HA).
  const mary = (await api(a, 'GET', '/api/routes/user/mary')).json<{ last_activity: string }>();
  const created = Date.parse(mary.last_activity);
  assert.ok(Number.isFinite(created), `last_activity of a new route: ${JSON.stringify(mary)}`);
  await waitFor(() => Date.now() > created, 1000, 'the clock past the creation time'); // a later timestamp is the signal
  assert.equal((await request(`http://127.0.0.1:${c.port}/user/mary/api`)).json<Echo>().name, 'B1');
  await waitFor(async () => Date.parse((await api(a, 'GET', '/api/routes/user/mary')).json<{ last_activity: string }>().last_activity) > created, 5000, 'activity from C visible on A');
  const since = new Date(Date.now() + 60_000).toISOString();
  assert.deepEqual(Object.keys((await api(b, 'GET', `/api/routes?inactive_since=${since}`)).json() as object), ['/user/mary']);

  // Opt-in: answer only when every live replica serves the change.
  const w = await request(`http://127.0.0.1:${a.apiPort}/api/routes/user/wait?wait=all`, {
    method: 'POST', headers: { authorization: `token ${TOKEN}` }, body: JSON.stringify({ target: backend.url }),
  });
  assert.equal(w.status, 201);
  for (const r of [b, c]) assert.equal((await request(`http://127.0.0.1:${r.port}/user/wait`)).status, 200, `live on ${r.name} at 201`);
  // A replica that cannot apply (stopped) is named in a 504 after the timeout; the running one
  // (b) has that long to apply the change and report it through etcd.
  c.proc.proc.kill('SIGSTOP');
  const lag = await request(`http://127.0.0.1:${a.apiPort}/api/routes/user/lag?wait=all&timeout=2000`, {
    method: 'POST', headers: { authorization: `token ${TOKEN}` }, body: JSON.stringify({ target: backend.url }),
  });
  c.proc.proc.kill('SIGCONT');
  assert.equal(lag.status, 504);
  assert.match(lag.body, /not yet live on replicas: c/);
  await waitFor(async () => (await request(`http://127.0.0.1:${c.port}/user/lag`)).status === 200, 5000, 'c catches up');

  // kill -9 B and restart it: table intact, served as soon as its port opens.
  b.proc.proc.kill('SIGKILL');
  await b.proc.exited;
  // Restarted on new ports; the start-up lines appear only once the table is loaded.
  const b2 = await startSwitchyardProcess(t, b.args, { CONFIGPROXY_AUTH_TOKEN: TOKEN });
  assert.equal((await request(`${b2.proxyUrl}/user/mary/y`)).status, 200, 'no 404 window after restart');

  // etcd stops: traffic continues; writes fail fast with 503; reads say they may be stale.
  await etcd.stop(etcd.members[0]!, 'SIGKILL');
  for (const r of [a, c]) assert.equal((await request(`http://127.0.0.1:${r.port}/user/mary/z`)).status, 200);
  const failed = await api(a, 'POST', '/api/routes/user/bob', { target: backend.url });
  assert.equal(failed.status, 503);
  assert.match(failed.body, /route store \(etcd\) unavailable/);
  const stale = await api(a, 'GET', '/api/routes');
  assert.equal(stale.status, 200);
  assert.equal(stale.headers['x-switchyard-stale'], 'true');
  assert.equal((await api(a, 'GET', '/api/health')).status, 503);
  assert.equal((await request(`${b2.proxyUrl}/user/mary/w`)).status, 200, 'restarted replica serves too');

  // etcd returns: writes resume by themselves, and reach every replica.
  await etcd.start(etcd.members[0]!);
  await waitFor(async () => (await api(a, 'POST', '/api/routes/user/bob', { target: backend.url })).status === 201, 30_000, 'writes resume');
  for (const [name, url] of [['b', b2.proxyUrl], ['c', `http://127.0.0.1:${c.port}`]]) {
    await waitFor(async () => (await request(`${url}/user/bob/x`)).status === 200, 15_000, `bob on ${name}`);
  }
  await waitFor(async () => (await api(c, 'GET', '/api/health')).status === 200, 15_000, 'health ok again');
});

test('three-member etcd loses its leader under load: zero failed proxied requests', { timeout: 180_000 }, async (t) => {
  const etcd = await startEtcd(t, 3);
  const backend = await startBackend(t, 'L');
  const replicas = [await replica(t, 'x', etcd.endpoints, '/ha2/'), await replica(t, 'y', etcd.endpoints, '/ha2/'), await replica(t, 'z', etcd.endpoints, '/ha2/')];
  assert.equal((await api(replicas[0]!, 'POST', '/api/routes/user/l', { target: backend.url })).status, 201);
  for (const r of replicas.slice(1)) {
    await waitFor(async () => (await request(`http://127.0.0.1:${r.port}/user/l`)).status === 200, 5000, `route on ${r.name}`);
  }

  let ok = 0;
  let bad = 0;
  // The load runs until 4 s after the leader is killed (a duration on purpose: requests must keep
  // succeeding across the election, whatever its length).
  let deadline = Infinity;
  const load = (async () => {
    let i = 0;
    while (Date.now() < deadline) {
      const r = replicas[i++ % replicas.length]!;
      try {
        const res = await request(`http://127.0.0.1:${r.port}/user/l/req${i}`);
        if (res.status === 200) ok++;
        else bad++;
      } catch {
        bad++;
      }
    }
  })();
  await waitFor(() => ok >= 50, 10_000, 'load running'); // the kill lands under load
  const leader = await etcd.leader();
  await etcd.stop(leader, 'SIGKILL');
  deadline = Date.now() + 4000;
  await load;
  process.stderr.write(`# leader ${leader.name} killed under load: ${ok} ok, ${bad} failed\n`);
  assert.ok(ok > 100, `load ran (${ok})`);
  assert.equal(bad, 0);
  // The cluster elects a new leader and writes work again through either replica.
  await waitFor(async () => (await api(replicas[1]!, 'POST', '/api/routes/user/after', { target: backend.url })).status === 201, 30_000, 'write after election');
  for (const r of [replicas[0]!, replicas[2]!]) {
    await waitFor(async () => (await request(`http://127.0.0.1:${r.port}/user/after`)).status === 200, 10_000, `new route on ${r.name}`);
  }
});

test('etcd with authentication: user from a flag, password from the environment only', { timeout: 120_000 }, async (t) => {
  const etcd = await startEtcd(t, 1);
  const { Etcd3 } = await import('etcd3');
  const admin = new Etcd3({ hosts: `http://${etcd.endpoints}` });
  await admin.role('root').create();
  await admin.user('root').create('rootpw');
  await admin.user('root').addRole('root');
  await admin.auth.authEnable({});
  admin.close();
  const backend = await startBackend(t, 'AUTH');
  const args = ['--ip', '127.0.0.1', '--port', '0', '--api-ip', '127.0.0.1', '--api-port', '0', '--store', `etcd://${etcd.endpoints}`, '--etcd-username', 'root'];
  const wrong = spawnSwitchyard(t, args, { CONFIGPROXY_AUTH_TOKEN: TOKEN, SWITCHYARD_ETCD_PASSWORD: 'not-the-password' });
  await waitFor(() => /etcd unreachable at startup, retrying/.test(wrong.output()), 15_000, 'wrong password refused');
  assert.doesNotMatch(wrong.output(), /not-the-password/, 'the password is never logged');
  const right = await startSwitchyardProcess(t, args.slice(8), { CONFIGPROXY_AUTH_TOKEN: TOKEN, SWITCHYARD_ETCD_PASSWORD: 'rootpw' });
  const r = await right.api('POST', '/api/routes/auth', { target: backend.url });
  assert.equal(r.status, 201);
  assert.equal((await request(`${right.proxyUrl}/auth/x`)).json<Echo>().name, 'AUTH');
  const noPw = spawnSwitchyard(t, ['--store', `etcd://${etcd.endpoints}`, '--etcd-username', 'root']);
  assert.equal(await noPw.exited, 1);
  assert.match(noPw.output(), /SWITCHYARD_ETCD_PASSWORD/);
});

test('etcd over TLS: --etcd-ca trusts the server, plain connections are refused', { timeout: 120_000 }, async (t) => {
  const cert = testCert();
  const etcd = await startEtcd(t, 1, { cert: cert.cert, key: cert.key });
  const backend = await startBackend(t, 'TLS');
  const sy = await startSwitchyardProcess(t, ['--store', `etcd://${etcd.endpoints}`, '--etcd-ca', cert.cert], { CONFIGPROXY_AUTH_TOKEN: TOKEN });
  const r = await sy.api('POST', '/api/routes/tls', { target: backend.url });
  assert.equal(r.status, 201);
  assert.equal((await request(`${sy.proxyUrl}/tls/x`)).json<Echo>().name, 'TLS');
  const plain = spawnSwitchyard(t, ['--ip', '127.0.0.1', '--port', '0', '--api-ip', '127.0.0.1', '--api-port', '0',
    '--store', `etcd://${etcd.endpoints}`]);
  await waitFor(() => /etcd unreachable at startup, retrying/.test(plain.output()), 15_000, 'plain client refused');
});
