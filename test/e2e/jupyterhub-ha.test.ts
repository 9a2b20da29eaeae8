// The guide's high-availability setup (docs/jupyterhub.md), end to end: two Switchyard replicas
// started with docs/examples/jupyterhub/switchyard-ha.toml share one etcd; a load balancer in
// front of them (round robin; the API side adds X-Switchyard-Wait: all, as the guide tells nginx
// to); JupyterHub 3 with docs/examples/jupyterhub/jupyterhub_config_ha.py (should_start = False)
// talks to them through it. A user logs in, her server spawns, a kernel websocket runs code, the
// server stops — every request through the balancer, served by both replicas.
// The idle culler's source (docs/examples/jupyterhub/jupyterhub_config_activity.py and the guide's
// curl of GET /hub/api/users/<name>): while her server runs, requests reach it through replica B
// only; the hub, reading the routes through the balancer, reports her last_activity past the time
// of those requests, and replica A's own GET /api/routes shows it too.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { startEtcd } from '../helpers/etcd.js';
import { EXAMPLES_DIR, PROXY_TOKEN, runJupyterHubScenario } from '../helpers/jupyterhub.js';
import { freePort, listen0, MAIN, request, startSwitchyardProcess, waitFor, type TestContextLike } from '../helpers/servers.js';

/** A TCP balancer: each connection to the next backend port in turn (websockets pass as bytes). */
async function tcpBalancer(t: TestContextLike, ports: number[]): Promise<{ port: number; perBackend: number[] }> {
  const perBackend = ports.map(() => 0);
  let next = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const i = next++ % ports.length;
    perBackend[i]!++;
    const upstream = net.connect(ports[i]!, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  const port = await listen0(server);
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { port, perBackend };
}

/** An HTTP balancer for the REST API: round robin, adding X-Switchyard-Wait: all to every request. */
async function apiBalancer(t: TestContextLike, ports: number[]): Promise<{ port: number; writes: number[] }> {
  const writes = ports.map(() => 0);
  let next = 0;
  const agent = new http.Agent({ keepAlive: true });
  const server = http.createServer((req, res) => {
    const i = next++ % ports.length;
    if (req.method !== 'GET') writes[i]!++;
    const up = http.request(
      { host: '127.0.0.1', port: ports[i], method: req.method, path: req.url, headers: { ...req.headers, 'x-switchyard-wait': 'all' }, agent },
      (ures) => {
        res.writeHead(ures.statusCode!, ures.headers);
        ures.pipe(res);
      },
    );
    up.on('error', () => {
      res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  });
  const port = await listen0(server);
  t.after(() => {
    agent.destroy();
    server.closeAllConnections();
    server.close();
  });
  return { port, writes };
}

test('JupyterHub with two Switchyard replicas on etcd behind a load balancer (the guide\'s HA files)', { timeout: 280_000 }, async (t) => {
  const etcd = await startEtcd(t, 1);
  const hubPort = await freePort();
  const replica = () =>
    startSwitchyardProcess(
      t,
      [
        '--config', `${EXAMPLES_DIR}switchyard-ha.toml`,
        // The file's addresses are production ones; this test's are on loopback.
        '--store', `etcd://${etcd.endpoints}`,
        '--error-target', `http://127.0.0.1:${hubPort}/hub/error`,
        '--workers', '1',
        // The file's 5 s, shortened so the test waits less.
        '--activity-flush-interval', '1000',
      ],
      { CONFIGPROXY_AUTH_TOKEN: PROXY_TOKEN },
    );
  const [a, b] = [await replica(), await replica()];
  const pub = await tcpBalancer(t, [a.proxyPort, b.proxyPort]);
  const api = await apiBalancer(t, [a.apiPort, b.apiPort]);

  const readerToken = 'e2e-activity-reader-' + randomUUID();
  // The guide's curl, with this test's hub address.
  const hubUser = async (): Promise<{ last_activity: string | null }> => {
    const { stdout } = await promisify(execFile)('curl', ['-sS', '--max-time', '10', '-H', `Authorization: token ${readerToken}`, `http://127.0.0.1:${hubPort}/hub/api/users/mary`]);
    return JSON.parse(stdout) as { last_activity: string | null };
  };
  const replicaActivity = async (r: typeof a): Promise<number> => {
    const routes = (await request(`${r.apiUrl}/api/routes`, { headers: { authorization: `token ${PROXY_TOKEN}` } })).json<Record<string, { last_activity?: string }>>();
    return Date.parse(routes['/user/mary']?.last_activity ?? '') || 0;
  };
  let checkedActivity = false;
  await runJupyterHubScenario(t, MAIN, { publicPort: pub.port, apiPort: api.port, hubPort }, {
    env: { ACTIVITY_READER_TOKEN: readerToken },
    extraConfig: `
# The guide's activity reader (docs/examples/jupyterhub/jupyterhub_config_activity.py), next to
# the scenario's service; the hub reads the proxy's last_activity every 2 s instead of 60.
_services, _roles = list(c.JupyterHub.services), list(c.JupyterHub.load_roles)
load_subconfig('${EXAMPLES_DIR}jupyterhub_config_activity.py')
assert c.JupyterHub.last_activity_interval == 60
c.JupyterHub.last_activity_interval = 2
c.JupyterHub.services = _services + c.JupyterHub.services
c.JupyterHub.load_roles = _roles + c.JupyterHub.load_roles
# Her server does not report its own activity to the hub: the proxy is the only source.
c.Spawner.environment = {'JUPYTERHUB_ACTIVITY_INTERVAL': '0'}
`,
    whileRunning: async () => {
      const since = Date.now();
      // Traffic to her server through replica B only (jupyter-server's unauthenticated /api: the
      // hub is not involved), until the hub reports activity at or after it.
      await waitFor(
        async () => {
          const r = await request(`http://127.0.0.1:${b.proxyPort}/user/mary/api`);
          assert.equal(r.status, 200, 'her server through replica B');
          return (Date.parse((await hubUser()).last_activity ?? '') || 0) >= since;
        },
        30_000,
        'the hub reports last_activity from traffic through replica B',
      );
      // Replica A, which served none of it, answers the merged value once B's next flush (every
      // --activity-flush-interval) reaches the store. Waited for, not read once: the hub polls
      // through the balancer, and a poll that reached B saw B's unflushed activity up to a flush
      // interval before A can (a one-off read failed about 1 run in 13).
      await waitFor(async () => (await replicaActivity(a)) >= since, 5000, 'replica A reports the activity through replica B');
      checkedActivity = true;
    },
  });
  assert.ok(checkedActivity, 'the activity check ran');

  // Both replicas served users and took the hub's writes (each waited for the other: wait=all).
  assert.ok(pub.perBackend.every((n) => n > 0), `connections per replica: ${pub.perBackend.join(', ')}`);
  assert.ok(api.writes.every((n) => n > 0), `API writes per replica: ${api.writes.join(', ')}`);
  // Both replicas serve the same table: the hub's route, mary's gone.
  for (const r of [a, b]) {
    const routes = (await request(`${r.apiUrl}/api/routes`, { headers: { authorization: `token ${PROXY_TOKEN}` } })).json<Record<string, unknown>>();
    assert.ok(routes['/'], `the hub's route on ${r.apiUrl}`);
    assert.equal(routes['/user/mary'], undefined);
  }
});
