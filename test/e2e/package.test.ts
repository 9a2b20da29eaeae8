// Switchyard as a user installs it: `npm pack` this build, `npm install -g` that tarball into a
// temporary prefix (dependencies from the registry, as a user gets them: no lockfile, no
// devDependencies), then the installed `switchyard` on PATH — no build step — answers --version,
// starts, proxies, serves xDS from the shipped Envoy descriptor, and runs the JupyterHub scenario.
// The tarball's contents are checked against the `files` list's intent: only what runs.
//
// Needs the npm registry (loopback-only rule aside: installing is the point); bounded: 180 s.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { TO_OBJECT, TYPE, messageType } from '../../src/dataplane/envoy/protos.js';
import { runJupyterHubScenario } from '../helpers/jupyterhub.js';
import { request, startBackend, waitFor, type TestContextLike } from '../helpers/servers.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const PKG = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { name: string; version: string; dependencies: Record<string, string> };
const INSTALL_MS = 180_000;

/** npm's own settings only: none of the npm_* variables of an `npm test` that may be running us. */
function npmEnv(): NodeJS.ProcessEnv {
  const keep = new Set(['npm_config_registry', 'npm_config_cache', 'npm_config_userconfig']);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) || keep.has(k.toLowerCase())));
  return { ...env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
}

async function npm(args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)('npm', args, { cwd, env: npmEnv(), timeout: INSTALL_MS, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (e) {
    const err = e as Error & { stdout?: string; stderr?: string };
    throw new Error(`npm ${args.join(' ')}: ${err.message}\n${err.stdout ?? ''}\n${err.stderr ?? ''}`);
  }
}

let dir = '';
let tarball = '';
let packed: { path: string }[] = [];
let prefix = '';
let bin = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'swy-pkg-'));
  // --ignore-scripts: pack what this build has (no prepack step exists today; this keeps it so).
  const out = JSON.parse(await npm(['pack', '--json', '--ignore-scripts', '--pack-destination', dir], REPO)) as { filename: string; files: { path: string }[] }[];
  tarball = join(dir, out[0]!.filename);
  packed = out[0]!.files;
  prefix = join(dir, 'prefix');
  await npm(['install', '--global', '--prefix', prefix, tarball], dir);
  bin = join(prefix, 'bin', 'switchyard');
}, { timeout: INSTALL_MS * 2 });

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('the tarball holds only what runs: compiled sources, assets, dashboard, README', () => {
  const paths = packed.map((f) => f.path).sort();
  const allowed = /^(package\.json|README\.md|LICENSE|dist\/src\/.+\.js|assets\/.+|dashboard\/.+)$/;
  assert.deepEqual(paths.filter((p) => !allowed.test(p)), [], 'nothing outside the runtime');
  for (const p of ['dist/src/main.js', 'dist/src/worker.js', 'assets/envoy/envoy-v3.json', 'assets/error/503.html', 'dashboard/index.html', 'README.md', 'LICENSE']) {
    assert.ok(paths.includes(p), `${p} shipped`);
  }
  // Stale output of a module that no longer exists would ship too (tsc never deletes): every
  // compiled file must have its source.
  const orphans = paths.filter((p) => p.startsWith('dist/src/') && !existsSync(join(REPO, p.replace(/^dist\//, '').replace(/\.js$/, '.ts'))));
  assert.deepEqual(orphans, [], 'compiled files without a source (stale dist/)');
  assert.ok(!paths.some((p) => p.endsWith('.map')), 'no source maps (their sources do not ship)');
});

test('installed from the tarball: switchyard on PATH, --version, production dependencies only', async () => {
  assert.ok(existsSync(bin), `${bin} exists`);
  const { stdout } = await promisify(execFile)(bin, ['--version'], { timeout: 30_000 });
  assert.equal(stdout.trim(), PKG.version);
  const installed = join(prefix, 'lib', 'node_modules', PKG.name);
  const modules = readdirSync(join(installed, 'node_modules'));
  for (const dev of ['@grpc/grpc-js-xds', 'google-auth-library', 'typescript', 'ws']) {
    const [scope, name] = dev.split('/');
    const present = name ? readdirSync(join(installed, 'node_modules', scope!)).includes(name) : modules.includes(dev);
    assert.ok(!present, `${dev} is not installed`);
  }
  for (const dep of Object.keys(PKG.dependencies)) assert.ok(existsSync(join(installed, 'node_modules', dep, 'package.json')), `${dep} installed`);
});

interface Started {
  proxyUrl: string;
  apiUrl: string;
  xdsPort: number;
  output: () => string;
}

/** Run the installed bin (through its shebang, as a user's shell does) on port 0. */
async function startInstalled(t: TestContextLike, argv: string[]): Promise<Started> {
  const proc = spawn(bin, ['--ip', '127.0.0.1', '--port', '0', '--api-ip', '127.0.0.1', '--api-port', '0', '--xds-port', '0', ...argv], {
    cwd: tmpdir(),
    env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: 'secret' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => proc.on('exit', r));
  t.after(async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  const proxyRe = /Proxying https?:\/\/[^\s]*:(\d+) to/;
  const apiRe = /Proxy API at https?:\/\/[^\s]*:(\d+)\/api\/routes/;
  const xdsRe = /xDS control plane .* at grpc:\/\/[^\s]*:(\d+)/;
  await Promise.race([
    waitFor(() => proxyRe.test(out) && apiRe.test(out) && xdsRe.test(out), 30_000, 'start-up lines of the installed switchyard'),
    exited.then((code) => {
      throw new Error(`installed switchyard exited (${code}) before it started:\n${out}`);
    }),
  ]);
  return { proxyUrl: `http://127.0.0.1:${proxyRe.exec(out)![1]}`, apiUrl: `http://127.0.0.1:${apiRe.exec(out)![1]}`, xdsPort: Number(xdsRe.exec(out)![1]), output: () => out };
}

test('the installed switchyard starts, proxies a request and serves xDS from the shipped descriptor', { timeout: 120_000 }, async (t) => {
  const backend = await startBackend(t, 'installed');
  const s = await startInstalled(t, []);
  const put = await request(`${s.apiUrl}/api/routes/app`, { method: 'POST', headers: { authorization: 'token secret' }, body: JSON.stringify({ target: backend.url }) });
  assert.equal(put.status, 201, put.body);
  const res = await request(`${s.proxyUrl}/app/hello`);
  assert.equal(res.status, 200, s.output());
  assert.equal(res.headers['x-backend'], 'installed');
  assert.equal((JSON.parse(res.body) as { url: string }).url, '/app/hello');

  // An ADS subscription for clusters: answered with the route's cluster, encoded by the installed
  // package (which has no .proto files and no @grpc/grpc-js-xds).
  const Req = messageType('envoy.service.discovery.v3.DiscoveryRequest');
  const Res = messageType('envoy.service.discovery.v3.DiscoveryResponse');
  const Cluster = messageType(TYPE.cluster);
  const client = new grpc.Client(`127.0.0.1:${s.xdsPort}`, grpc.credentials.createInsecure());
  t.after(() => client.close());
  const call = client.makeBidiStreamRequest('/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources', (b: Buffer) => b, (b: Buffer) => b);
  t.after(() => call.cancel());
  call.on('error', () => {});
  const first = new Promise<{ type_url: string; resources?: { value: Buffer }[] }>((resolve) =>
    call.once('data', (b: Buffer) => resolve(Res.toObject(Res.decode(b), { ...TO_OBJECT, bytes: Buffer }) as { type_url: string; resources?: { value: Buffer }[] })),
  );
  call.write(Buffer.from(Req.encode(Req.fromObject({ node: { id: 'pkg-test', cluster: 'c' }, type_url: TYPE.cluster })).finish()));
  const r = await Promise.race([first, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no CDS response within 20 s')), 20_000))]);
  assert.equal(r.type_url, TYPE.cluster);
  const clusters = (r.resources ?? []).map((a) => Cluster.toObject(Cluster.decode(a.value), TO_OBJECT) as { name: string });
  assert.ok(clusters.length >= 1, 'at least the route\'s cluster');
});

test('JupyterHub runs the installed switchyard as its proxy', { timeout: 240_000 }, (t) => runJupyterHubScenario(t, bin));
