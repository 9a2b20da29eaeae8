// The JupyterHub end-to-end scenario, shared by test/e2e/jupyterhub.test.ts (this build, or
// SWITCHYARD_BIN) and test/e2e/package.test.ts (the package installed from `npm pack`).
// JupyterHub 3 (Debian's package) runs Switchyard as its proxy command, exactly as it runs
// configurable-http-proxy (c.ConfigurableHTTPProxy.command = ['switchyard']).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { accessSync, constants, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent } from 'undici';
import WebSocket from 'ws';
import { freePort, waitFor, waitForPort, type TestContextLike } from './servers.js';
import { tempDir } from './temp.js';
import type { TestCert } from './tls.js';

/** The guide's files (docs/jupyterhub.md includes them): the scenario runs with them. */
const EXAMPLES = fileURLToPath(new URL('../../../docs/examples/jupyterhub/', import.meta.url));
/** The password of the dashboard user in docs/examples/jupyterhub/switchyard.toml. */
const EXAMPLE_DASHBOARD_USER = { user: 'admin', password: 'change-me' };

const SERVICE_TOKEN = 'e2e-service-token-' + randomUUID();
/** The API token JupyterHub uses (replicas it does not start must be given the same). */
export const PROXY_TOKEN = 'e2e-proxy-token-' + randomUUID();
export const EXAMPLES_DIR = EXAMPLES;

/**
 * Proxies JupyterHub does not start (docs/examples/jupyterhub/jupyterhub_config_ha.py):
 * `publicPort` and `apiPort` are the load balancer's, `hubPort` the one the replicas' error
 * target names.
 */
export interface ExternalProxy {
  readonly publicPort: number;
  readonly apiPort: number;
  readonly hubPort: number;
}

/** Options of runJupyterHubScenario beyond the proxy's placement. */
export interface ScenarioOptions {
  /**
   * HTTPS on the public port: the hub loads docs/examples/jupyterhub/jupyterhub_config_tls.py with
   * this certificate in place of the guide's paths, and every request through the proxy is https
   * (wss for the kernel) trusting only this certificate.
   */
  tls?: TestCert;
  /** Hub configuration appended after the scenario's own (Python). */
  extraConfig?: string;
  /** More environment for the hub (and so for the proxy it starts). */
  env?: Record<string, string>;
  /** Run once her server is up and routed, before the kernel (the public base URL, the hub's port). */
  whileRunning?: (ctx: { base: string; hubPort: number; fetch: typeof fetch }) => Promise<void>;
}

/** The command line of the hub's child process whose argv includes `marker` (its proxy), from /proc. */
function childCommandLine(parentPid: number, marker: string): string[] | undefined {
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== parentPid) continue;
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      if (argv.includes(marker)) return argv;
    } catch {
      // the process ended while we looked
    }
  }
  return undefined;
}

class CookieJar {
  readonly cookies = new Map<string, string>();
  take(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';', 1);
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (/max-age=0|expires=Thu, 01 Jan 1970/i.test(c) || value === '""') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

/** A browser-ish fetch: cookies kept, redirects followed by hand (so cookies are seen on each hop). */
async function browse(fetch: typeof globalThis.fetch, jar: CookieJar, url: string, init: RequestInit = {}, hops = 15): Promise<{ res: Response; url: string; body: string }> {
  let current = url;
  let opts: RequestInit = init;
  for (let i = 0; i < hops; i++) {
    const res = await fetch(current, {
      ...opts,
      redirect: 'manual',
      headers: { ...(opts.headers as Record<string, string>), cookie: jar.header() },
    });
    jar.take(res);
    const loc = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && loc) {
      await res.arrayBuffer();
      current = new URL(loc, current).toString();
      opts = {};
      continue;
    }
    return { res, url: current, body: await res.text() };
  }
  throw new Error(`too many redirects from ${url}`);
}

/**
 * The scenario: JupyterHub starts `switchyard` (found on PATH: a symlink to `switchyard`, the
 * command under test) as its proxy, a user logs in through it, her server spawns, a kernel
 * websocket runs code, the server stops and its route goes. Everything is closed by t.after.
 */
export async function runJupyterHubScenario(t: TestContextLike, switchyard: string, external?: ExternalProxy, options: ScenarioOptions = {}): Promise<void> {
  const { tls } = options;
  // Through the proxy over https, only the test certificate is trusted.
  const agent = tls ? new Agent({ connect: { ca: tls.certPem } }) : undefined;
  if (agent) t.after(() => agent.close());
  const pfetch: typeof fetch = agent ? (url, init) => fetch(url, { ...init, dispatcher: agent } as RequestInit) : fetch;
  if (!external) accessSync(switchyard, constants.X_OK);
  const dir = tempDir(t, 'swy-jh-');
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  mkdirSync(join(dir, 'home'));
  symlinkSync(switchyard, join(bin, 'switchyard'));
  const [port, apiPort, hubPort] = external ? [external.publicPort, external.apiPort, external.hubPort] : [await freePort(), await freePort(), await freePort()];
  const proxyConfig = external
    ? `
# The guide's HA configuration (docs/examples/jupyterhub/jupyterhub_config_ha.py), then this test's
# addresses: the load balancer's API port, the hub on loopback.
load_subconfig('${EXAMPLES}jupyterhub_config_ha.py')
assert c.ConfigurableHTTPProxy.should_start == False
c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:${apiPort}'
c.JupyterHub.hub_bind_url = 'http://127.0.0.1:${hubPort}'
c.JupyterHub.hub_connect_url = 'http://127.0.0.1:${hubPort}'
c.JupyterHub.bind_url = 'http://127.0.0.1:${port}'
`
    : `
# The guide's configuration first (docs/examples/jupyterhub/jupyterhub_config.py), then this
# test's ports and paths: its Switchyard config file is the guide's switchyard.toml.
load_subconfig('${EXAMPLES}jupyterhub_config.py')
assert c.ConfigurableHTTPProxy.command[:2] == ['switchyard', '--config'], c.ConfigurableHTTPProxy.command
c.ConfigurableHTTPProxy.command = ['switchyard', '--config', '${EXAMPLES}switchyard.toml']
c.JupyterHub.ip = '127.0.0.1'
c.JupyterHub.port = ${port}
c.JupyterHub.hub_ip = '127.0.0.1'
c.JupyterHub.hub_port = ${hubPort}
c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:${apiPort}'
c.ConfigurableHTTPProxy.debug = True
`;
  const tlsConfig = tls
    ? `
# HTTPS: the guide's TLS file (docs/examples/jupyterhub/jupyterhub_config_tls.py), its paths
# replaced by the test certificate's.
load_subconfig('${EXAMPLES}jupyterhub_config_tls.py')
assert c.JupyterHub.ssl_cert.startswith('/etc/letsencrypt/live/'), c.JupyterHub.ssl_cert
assert c.JupyterHub.ssl_key.startswith('/etc/letsencrypt/live/'), c.JupyterHub.ssl_key
c.JupyterHub.ssl_cert = '${tls.cert}'
c.JupyterHub.ssl_key = '${tls.key}'
`
    : '';
  writeFileSync(
    join(dir, 'jupyterhub_config.py'),
    proxyConfig +
      tlsConfig +
      `
c.JupyterHub.authenticator_class = 'jupyterhub.auth.DummyAuthenticator'
c.DummyAuthenticator.password = 'pw'
c.JupyterHub.spawner_class = 'jupyterhub.spawner.SimpleLocalProcessSpawner'
c.SimpleLocalProcessSpawner.home_dir_template = '${dir}/home/{username}'
c.Spawner.args = ['--allow-root']
c.Spawner.default_url = '/tree'
c.Spawner.start_timeout = 120
c.JupyterHub.db_url = 'sqlite:///${dir}/jupyterhub.sqlite'
c.JupyterHub.cookie_secret_file = '${dir}/cookie_secret'
c.JupyterHub.services = [{'name': 'tester', 'api_token': '${SERVICE_TOKEN}'}]
c.JupyterHub.load_roles = [{'name': 'tester', 'scopes': ['admin:users', 'admin:servers', 'access:servers'], 'services': ['tester']}]
` +
      (options.extraConfig ?? ''),
  );
  const hub = spawn('jupyterhub', ['-f', join(dir, 'jupyterhub_config.py')], {
    cwd: dir,
    env: { ...process.env, ...options.env, PATH: `${bin}:${process.env.PATH}`, CONFIGPROXY_AUTH_TOKEN: PROXY_TOKEN },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let log = '';
  hub.stdout!.on('data', (c: Buffer) => (log += c));
  hub.stderr!.on('data', (c: Buffer) => (log += c));
  const hubExited = new Promise((r) => hub.on('exit', r));
  t.after(async () => {
    try {
      process.kill(-hub.pid!, 'SIGTERM');
    } catch {
      // already gone
    }
    await Promise.race([hubExited, new Promise((r) => setTimeout(r, 10_000))]);
    try {
      process.kill(-hub.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  });
  const base = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  try {
    await waitForPort(port, 60_000);
    await waitFor(async () => (await pfetch(`${base}/hub/api`).catch(() => null))?.status === 200, 60_000, 'hub API through the proxy');
    // Printed once every data-plane worker listens (the port opens with the first one).
    const proxying = new RegExp(`\\[Switchyard\\] info: Proxying ${tls ? 'https' : 'http'}://127\\.0\\.0\\.1:\\d+`);
    if (!external) await waitFor(() => proxying.test(log), 30_000, 'JupyterHub started Switchyard');
    if (tls) {
      // JupyterHub handed the certificate to Switchyard on its command line.
      const argv = childCommandLine(hub.pid!, '--ssl-cert');
      assert.ok(argv, 'the hub started its proxy with --ssl-cert');
      assert.equal(argv[argv.indexOf('--ssl-cert') + 1], tls.cert);
      assert.equal(argv[argv.indexOf('--ssl-key') + 1], tls.key);
      // Plain http on the public port is not served as before.
      assert.equal(await fetch(`http://127.0.0.1:${port}/hub/api`).then((r) => r.status, () => 'no plain-http answer'), 'no plain-http answer');
    }

    // The hub talks to Switchyard's API with the token it passed down; without it: 403.
    assert.equal((await fetch(`http://127.0.0.1:${apiPort}/api/routes`)).status, 403);

    // 1. Log in through the proxy.
    const jar = new CookieJar();
    const loginPage = await browse(pfetch, jar, `${base}/hub/login`);
    assert.equal(loginPage.res.status, 200);
    const xsrf = /name="_xsrf" value="([^"]+)"/.exec(loginPage.body)?.[1];
    const form = new URLSearchParams({ username: 'mary', password: 'pw', ...(xsrf ? { _xsrf: xsrf } : {}) });
    const afterLogin = await browse(pfetch, jar, `${base}/hub/login?next=`, {
      method: 'POST',
      body: form.toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.ok([...jar.cookies.keys()].some((k) => k.startsWith('jupyterhub-session') || k === 'jupyterhub-hub-login'), 'logged in');

    // 2. Her server starts (the spawn page redirects to /user/mary/ once it is up).
    const spawned = await waitForSpawn(pfetch, jar, base, afterLogin.url);
    assert.match(spawned.url, /\/user\/mary\/tree/, `landed on ${spawned.url}`);
    assert.equal(spawned.res.status, 200);
    const routes = await hubRoutes(apiPort);
    assert.ok(routes['/user/mary'], `route for mary in Switchyard: ${Object.keys(routes).join(', ')}`);
    assert.equal(routes['/user/mary']!.jupyterhub, true);
    if (external) {
      // Replicas: the one that took the write records last_activity and flushes it to the store
      // every activity-flush-interval; another replica answering before that shows none yet.
      await waitFor(async () => Boolean((await hubRoutes(apiPort))['/user/mary']?.last_activity), 15_000, 'last_activity on the replica that answers');
    } else {
      assert.ok(routes['/user/mary']!.last_activity, 'last_activity present');
    }

    // The guide's switchyard.toml is in force: combined access-log lines on stdout for her route,
    // and its dashboard user signs in.
    if (!external) await waitFor(() => /"GET \/user\/mary\/tree[^"]*" 200 [^\n]*route="\/user\/mary"/.test(log), 10_000, 'a combined access-log line for /user/mary');
    if (options.whileRunning) await options.whileRunning({ base, hubPort, fetch: pfetch });
    const dash = await fetch(`http://127.0.0.1:${apiPort}/dashboard/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(EXAMPLE_DASHBOARD_USER),
    });
    assert.equal(dash.status, 204, 'the dashboard user of the example config signs in');

    // 3. A kernel, and code executed over its websocket, through the proxy.
    const xsrfCookie = jar.cookies.get('_xsrf') ?? '';
    const kres = await pfetch(`${base}/user/mary/api/kernels`, {
      method: 'POST',
      headers: { cookie: jar.header(), 'x-xsrftoken': xsrfCookie, 'content-type': 'application/json', referer: `${base}/user/mary/tree` },
      body: '{}',
    });
    assert.equal(kres.status, 201, await kres.clone().text());
    const kernel = (await kres.json()) as { id: string };
    const ws = new WebSocket(`${tls ? 'wss' : 'ws'}://127.0.0.1:${port}/user/mary/api/kernels/${kernel.id}/channels?session_id=${randomUUID()}`, {
      headers: { cookie: jar.header(), origin: base },
      ...(tls ? { ca: tls.certPem } : {}),
    });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const msgId = randomUUID();
    const result = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no execute_result within 60 s')), 60_000);
      ws.on('message', (raw) => {
        const msg = JSON.parse(raw.toString()) as { msg_type: string; parent_header: { msg_id?: string }; content: { data?: Record<string, string> } };
        if (msg.parent_header.msg_id === msgId && msg.msg_type === 'execute_result') {
          clearTimeout(timer);
          resolve(msg.content.data?.['text/plain'] ?? '');
        }
      });
    });
    ws.send(
      JSON.stringify({
        header: { msg_id: msgId, username: 'mary', session: randomUUID(), msg_type: 'execute_request', version: '5.3', date: new Date().toISOString() },
        parent_header: {},
        metadata: {},
        content: { code: '6 * 7', silent: false, store_history: true, user_expressions: {}, allow_stdin: false, stop_on_error: true },
        channel: 'shell',
        buffers: [],
      }),
    );
    assert.equal(await result, '42');
    ws.close();

    // 4. The server stops; its route disappears from Switchyard.
    const stop = await pfetch(`${base}/hub/api/users/mary/server`, { method: 'DELETE', headers: { authorization: `token ${SERVICE_TOKEN}` } });
    assert.ok([202, 204].includes(stop.status), `stop: ${stop.status}`);
    await waitFor(async () => !(await hubRoutes(apiPort))['/user/mary'], 60_000, 'mary route removed');
    const gone = await pfetch(`${base}/user/mary/tree`, { redirect: 'manual', headers: { cookie: jar.header() } });
    assert.notEqual(gone.status, 200, 'no longer served by her server');
  } catch (e) {
    process.stderr.write(`--- jupyterhub log ---\n${log.slice(-8000)}\n`);
    throw e;
  }
}

async function waitForSpawn(fetch: typeof globalThis.fetch, jar: CookieJar, base: string, landed: string): Promise<{ res: Response; url: string; body: string }> {
  let page = await browse(fetch, jar, landed.includes('/user/mary') ? landed : `${base}/hub/spawn`);
  const deadline = Date.now() + 150_000;
  while (!/\/user\/mary\/tree/.test(page.url) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1000));
    page = await browse(fetch, jar, `${base}/user/mary/tree`);
  }
  return page;
}

/** Switchyard's table, read with the token JupyterHub hands its proxy (from CONFIGPROXY_AUTH_TOKEN). */
async function hubRoutes(apiPort: number): Promise<Record<string, { jupyterhub?: boolean; last_activity?: string }>> {
  const r = await fetch(`http://127.0.0.1:${apiPort}/api/routes`, { headers: { authorization: `token ${PROXY_TOKEN}` } });
  assert.equal(r.status, 200);
  return (await r.json()) as Record<string, { jupyterhub?: boolean; last_activity?: string }>;
}
