// Route data is bounded (issue 11): depth <= 32 (the route object is level 1) and <= 64 KiB as
// JSON, refused at POST with 400 and the reason; data that reaches a store another way (a route
// file edited by hand) is skipped, listed in /api/health, and never breaks GET /api/routes or the
// dashboard. Before the bound, one route nested ~5,000 levels deep made every GET /api/routes
// answer 500 (JSON.stringify recursion) and stopped table updates to the workers.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { startEtcd } from '../helpers/etcd.js';
import { request, startBackend, startSwitchyardProcess, waitFor, waitForLine, type SpawnedSwitchyard } from '../helpers/servers.js';
import { ROUTE_DATA_MAX_BYTES, ROUTE_DATA_MAX_DEPTH, routeDataProblem } from '../../src/routing/route-data.js';

/** A route body whose data nests `depth` levels (the route object is level 1), as raw JSON text. */
function nestedBody(target: string, depth: number, kind: 'array' | 'object' = 'object'): string {
  const inner = depth - 1; // levels below the route object
  const open = kind === 'array' ? '['.repeat(inner) : '{"a":'.repeat(inner);
  const close = kind === 'array' ? ']'.repeat(inner) : '}'.repeat(inner);
  return `{"target":${JSON.stringify(target)},"n":${inner === 0 ? '1' : open + (kind === 'array' ? '' : '1') + close}}`;
}

/** GET /api/routes answers 200 with JSON, and the dashboard's state endpoint too. */
async function listingsWork(p: SpawnedSwitchyard, desc: string): Promise<Record<string, unknown>> {
  const r = await p.api('GET', '/api/routes');
  assert.equal(r.status, 200, `${desc}: GET /api/routes ${r.status} ${r.body.slice(0, 200)}`);
  const routes = r.json<Record<string, unknown>>();
  const d = await request(`${p.apiUrl}/dashboard/api/state`, { headers: { authorization: 'token secret' } });
  assert.equal(d.status, 200, `${desc}: dashboard state ${d.status}`);
  JSON.parse(d.body);
  return routes;
}

test('routeDataProblem: the bounds, iteratively (no recursion on any depth)', () => {
  const cases: { desc: string; data: unknown; bad?: RegExp }[] = [
    { desc: 'plain route', data: { target: 'http://x' } },
    { desc: `exactly ${ROUTE_DATA_MAX_DEPTH} levels`, data: JSON.parse(nestedBody('http://x', ROUTE_DATA_MAX_DEPTH)) },
    { desc: `${ROUTE_DATA_MAX_DEPTH + 1} levels`, data: JSON.parse(nestedBody('http://x', ROUTE_DATA_MAX_DEPTH + 1)), bad: /more than 32 levels/ },
    { desc: '33 levels of arrays', data: JSON.parse(nestedBody('http://x', 33, 'array')), bad: /more than 32 levels/ },
    { desc: '1,000,000 levels (JSON.stringify would overflow the stack)', data: JSON.parse(nestedBody('http://x', 1_000_000, 'array')), bad: /levels/ },
    { desc: `exactly ${ROUTE_DATA_MAX_BYTES} bytes`, data: { target: 'http://x', s: 'x'.repeat(ROUTE_DATA_MAX_BYTES - '{"target":"http://x","s":""}'.length) } },
    { desc: 'one byte more', data: { target: 'http://x', s: 'x'.repeat(ROUTE_DATA_MAX_BYTES + 1 - '{"target":"http://x","s":""}'.length) }, bad: /65537 bytes/ },
    { desc: 'bytes, not characters: multi-byte UTF-8 counts', data: { target: 'http://x', s: 'é'.repeat(40_000) }, bad: /bytes as JSON/ },
    { desc: 'wide but shallow (10,000 keys)', data: { target: 'http://x', ...Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`k${i}`, i])) }, bad: /bytes/ },
  ];
  for (const c of cases) {
    const got = routeDataProblem(c.data);
    if (c.bad) assert.match(got ?? '', c.bad, c.desc);
    else assert.equal(got, undefined, c.desc);
  }
});

test('POST: data beyond the bounds is 400 (413 beyond --api-max-body) with the reason; GET, the dashboard and the proxy keep working', { timeout: 90_000 }, async (t) => {
  const backend = await startBackend(t, 'L');
  // Workers: the table also travels to them over IPC (JSON), which a deep route used to break.
  const p = await startSwitchyardProcess(t, ['--workers', '2']);
  assert.equal((await p.api('POST', '/api/routes/ok', { target: backend.url })).status, 201);
  const big = (n: number): string => JSON.stringify({ target: backend.url, blob: 'x'.repeat(n) });
  const cases: { desc: string; path: string; body: string; status: number; code?: string; reason?: RegExp }[] = [
    { desc: 'depth 32 (the bound) is stored', path: '/d32', body: nestedBody(backend.url, 32), status: 201 },
    { desc: 'depth 33 objects refused', path: '/d33', body: nestedBody(backend.url, 33), status: 400, code: 'SWY_ROUTE_DATA_LIMIT', reason: /more than 32 levels deep/ },
    { desc: 'depth 33 arrays refused', path: '/d33a', body: nestedBody(backend.url, 33, 'array'), status: 400, code: 'SWY_ROUTE_DATA_LIMIT', reason: /more than 32 levels deep/ },
    { desc: '100,000-deep arrays: 400, not 500', path: '/deep', body: nestedBody(backend.url, 100_000, 'array'), status: 400, code: 'SWY_ROUTE_DATA_LIMIT', reason: /levels deep/ },
    { desc: '100,000-deep objects: 400, not 500', path: '/deepo', body: nestedBody(backend.url, 100_000), status: 400, code: 'SWY_ROUTE_DATA_LIMIT', reason: /levels deep/ },
    { desc: '64 KiB + 1 of data refused', path: '/big', body: big(ROUTE_DATA_MAX_BYTES + 1), status: 400, code: 'SWY_ROUTE_DATA_LIMIT', reason: /bytes as JSON, more than 65536/ },
    { desc: 'a body beyond --api-max-body (1 MiB) is 413 before parsing', path: '/huge', body: big(2 * 1024 * 1024), status: 413, code: 'SWY_BODY_TOO_LARGE' },
  ];
  for (const c of cases) {
    const r = await p.api('POST', `/api/routes${c.path}`, c.body);
    assert.equal(r.status, c.status, `${c.desc}: ${r.status} ${r.body.slice(0, 200)}`);
    if (c.code) assert.equal(r.headers['x-switchyard-error'], c.code, c.desc);
    if (c.reason) assert.match(r.body, c.reason, c.desc);
    const routes = await listingsWork(p, c.desc);
    assert.equal(c.path in routes, c.status === 201, `${c.desc}: stored only when accepted`);
    const through = await request(`${p.proxyUrl}/ok/x`);
    assert.equal(through.status, 200, `${c.desc}: proxy still routes`);
  }
  // The depth-32 route round-trips and is live on the workers.
  const got = await p.api('GET', '/api/routes/d32');
  assert.equal(got.status, 200);
  assert.deepEqual(got.json<{ n: unknown }>().n, JSON.parse(nestedBody(backend.url, 32)).n);
  assert.equal((await request(`${p.proxyUrl}/d32/y`)).json<{ url: string }>().url, '/d32/y');
  // Writes still propagate to every worker after the refusals.
  assert.equal((await p.api('POST', '/api/routes/later', { target: backend.url })).status, 201);
  assert.equal((await p.api('GET', '/api/health')).status, 200);
  assert.equal(p.proc.exitCode, null, 'still running');
});

test('file store: routes beyond the bounds are skipped and listed in /api/health; the others work; GET and the dashboard too', { timeout: 90_000 }, async (t) => {
  const backend = await startBackend(t, 'F');
  const dir = mkdtempSync(join(tmpdir(), 'swy-limits-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'routes.json');
  const good = JSON.stringify({ target: backend.url, owner: 'mary' });
  // Written by hand: raw JSON text (JSON.parse reads any depth; JSON.stringify would not write it).
  const text = (extra: string): string =>
    `{"routes": {"/good": ${good}, "/also": ${good}${extra}}}`;
  writeFileSync(
    file,
    text(
      `, "/deep40": ${nestedBody(backend.url, 40)}` +
        `, "/deep100k": ${nestedBody(backend.url, 100_000, 'array')}` +
        `, "/fat": ${JSON.stringify({ target: backend.url, blob: 'x'.repeat(100_000) })}`,
    ),
  );
  const p = await startSwitchyardProcess(t, ['--store', `file:${file}`]);
  const routes = await listingsWork(p, 'file store at start');
  assert.deepEqual(Object.keys(routes).sort(), ['/also', '/good']);
  for (const path of ['/good', '/also']) assert.equal((await request(`${p.proxyUrl}${path}/x`)).json<{ name: string }>().name, 'F');
  for (const path of ['/deep40', '/deep100k', '/fat']) assert.equal((await request(`${p.proxyUrl}${path}/x`)).status, 404, `${path} not routed`);
  const health = (await p.api('GET', '/api/health')).json<{ status: string; invalidRoutes: Record<string, string> }>();
  assert.equal(health.status, 'ok', 'skipped routes do not make the replica unhealthy');
  assert.match(health.invalidRoutes['/deep40'] ?? '', /more than 32 levels deep/);
  assert.match(health.invalidRoutes['/deep100k'] ?? '', /levels deep/);
  assert.match(health.invalidRoutes['/fat'] ?? '', /bytes as JSON/);
  await waitForLine(() => p.output(), /route "\/deep40" skipped: route data nests more than 32 levels deep/);

  // A hand edit that fixes one and breaks another: the lists follow the file.
  writeFileSync(file, text(`, "/deep40": ${good}, "/new": ${nestedBody(backend.url, 33, 'array')}`));
  await waitFor(async () => (await request(`${p.proxyUrl}/deep40/x`)).status === 200, 10_000, 'fixed route live');
  const after = (await p.api('GET', '/api/health')).json<{ invalidRoutes: Record<string, string> }>();
  assert.deepEqual(Object.keys(after.invalidRoutes), ['/new']);
  assert.deepEqual(Object.keys(await listingsWork(p, 'after the edit')).sort(), ['/also', '/deep40', '/good']);
  // And the API still writes to that file.
  assert.equal((await p.api('POST', '/api/routes/posted', { target: backend.url })).status, 201);
  assert.equal((await request(`${p.proxyUrl}/posted`)).status, 200);
});

test('TOML file store: deep inline arrays are skipped the same way', { timeout: 60_000 }, async (t) => {
  const backend = await startBackend(t, 'T');
  const dir = mkdtempSync(join(tmpdir(), 'swy-limits-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'routes.toml');
  writeFileSync(
    file,
    `[routes."/good"]\ntarget = "${backend.url}"\n\n[routes."/deep"]\ntarget = "${backend.url}"\nn = ${'['.repeat(40)}1${']'.repeat(40)}\n`,
  );
  const p = await startSwitchyardProcess(t, ['--store', `file:${file}`]);
  assert.deepEqual(Object.keys(await listingsWork(p, 'toml')), ['/good']);
  const health = (await p.api('GET', '/api/health')).json<{ invalidRoutes: Record<string, string> }>();
  assert.match(health.invalidRoutes['/deep'] ?? '', /more than 32 levels deep/);
  assert.equal((await request(`${p.proxyUrl}/good/x`)).status, 200);
});

test('etcd written by another tool: values beyond the bounds are skipped and listed until fixed or deleted', { timeout: 90_000 }, async (t) => {
  const backend = await startBackend(t, 'E');
  const etcd = await startEtcd(t);
  const raw = new Etcd3({ hosts: etcd.endpoints.split(',').map((e) => `http://${e}`) });
  t.after(() => raw.close());
  const prefix = '/limits/';
  const good = JSON.stringify({ target: backend.url });
  await raw.put(`${prefix}routes/good`).value(good);
  await raw.put(`${prefix}routes/deep`).value(nestedBody(backend.url, 100_000, 'array'));
  const p = await startSwitchyardProcess(t, ['--store', `etcd://${etcd.endpoints}`, '--store-prefix', prefix]);
  const health = async (): Promise<Record<string, string>> => (await p.api('GET', '/api/health')).json<{ invalidRoutes: Record<string, string> }>().invalidRoutes;
  assert.deepEqual(Object.keys(await listingsWork(p, 'etcd at start')), ['/good']);
  assert.match((await health())['/deep'] ?? '', /levels deep/);
  // Written while running (the watch path): skipped the same way, the rest unaffected.
  await raw.put(`${prefix}routes/fat`).value(JSON.stringify({ target: backend.url, blob: 'x'.repeat(ROUTE_DATA_MAX_BYTES) }));
  await waitFor(async () => '/fat' in (await health()), 10_000, 'fat value listed');
  assert.match((await health())['/fat'] ?? '', /bytes as JSON/);
  assert.deepEqual(Object.keys(await listingsWork(p, 'etcd after a fat value')), ['/good']);
  assert.equal((await request(`${p.proxyUrl}/good/x`)).status, 200);
  // Fixed by another write, or deleted: no longer listed.
  await raw.put(`${prefix}routes/deep`).value(good);
  await raw.delete().key(`${prefix}routes/fat`);
  await waitFor(async () => Object.keys(await health()).length === 0, 10_000, 'skips cleared');
  assert.equal((await request(`${p.proxyUrl}/deep/x`)).json<{ name: string }>().name, 'E');
  assert.deepEqual(Object.keys(await listingsWork(p, 'etcd fixed')).sort(), ['/deep', '/good']);
});
