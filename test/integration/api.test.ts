// The REST API over real sockets, checked against CHP 5.3's semantics.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request, startBackend, startSwitchyard, waitFor } from '../helpers/servers.js';

test('auth: token required, compared exactly; 403 with no body', async (t) => {
  const sy = await startSwitchyard(t);
  const cases: { desc: string; headers: Record<string, string>; want: number }[] = [
    { desc: 'no header', headers: {}, want: 403 },
    { desc: 'wrong token', headers: { authorization: 'token nope' }, want: 403 },
    { desc: 'prefix of token', headers: { authorization: 'token secre' }, want: 403 },
    { desc: 'bearer scheme', headers: { authorization: 'Bearer secret' }, want: 403 },
    { desc: 'right token', headers: { authorization: 'token secret' }, want: 200 },
    { desc: 'extra whitespace', headers: { authorization: 'token    secret' }, want: 200 },
  ];
  for (const c of cases) {
    const r = await request(sy.apiUrl + '/api/routes', { headers: c.headers });
    assert.equal(r.status, c.want, c.desc);
    if (c.want === 403) assert.equal(r.body, '', c.desc);
  }
});

test('CHP status codes and ordering of checks', async (t) => {
  const sy = await startSwitchyard(t);
  const noAuth = { authorization: '' };
  const cases: { desc: string; method: string; path: string; body?: string; headers?: Record<string, string>; want: number }[] = [
    { desc: 'unknown API path is 404 before auth', method: 'GET', path: '/api/nope', headers: noAuth, want: 404 },
    { desc: 'unknown method is 405 before auth', method: 'PUT', path: '/api/routes/x', headers: noAuth, want: 405 },
    { desc: 'PATCH is 405', method: 'PATCH', path: '/api/routes/x', want: 405 },
    { desc: 'bad JSON is 400 before auth', method: 'POST', path: '/api/routes/x', body: '{bad', headers: noAuth, want: 400 },
    { desc: 'good JSON without token is 403', method: 'POST', path: '/api/routes/x', body: '{"target":"http://a"}', headers: noAuth, want: 403 },
    { desc: 'missing target', method: 'POST', path: '/api/routes/x', body: '{}', want: 400 },
    { desc: 'empty body', method: 'POST', path: '/api/routes/x', body: '', want: 400 },
    { desc: 'null body', method: 'POST', path: '/api/routes/x', body: 'null', want: 400 },
    { desc: 'array body', method: 'POST', path: '/api/routes/x', body: '["http://a"]', want: 400 },
    { desc: 'numeric target', method: 'POST', path: '/api/routes/x', body: '{"target": 5}', want: 400 },
    { desc: 'unsupported scheme', method: 'POST', path: '/api/routes/x', body: '{"target":"ftp://h/"}', want: 400 },
    { desc: 'unparseable target', method: 'POST', path: '/api/routes/x', body: '{"target":"::nope::"}', want: 400 },
    { desc: 'NUL in path', method: 'POST', path: '/api/routes/a%00b', body: '{"target":"http://a"}', want: 400 },
    { desc: 'malformed escape', method: 'POST', path: '/api/routes/a%zz', body: '{"target":"http://a"}', want: 400 },
    { desc: 'newline in path', method: 'POST', path: '/api/routes/a%0Ab', body: '{"target":"http://a"}', want: 400 },
    { desc: 'GET missing route', method: 'GET', path: '/api/routes/missing', want: 404 },
    { desc: 'DELETE missing route', method: 'DELETE', path: '/api/routes/missing', want: 404 },
  ];
  for (const c of cases) {
    const r = await sy.api(c.method, c.path, c.body, c.headers);
    assert.equal(r.status, c.want, `${c.desc}: ${r.body}`);
  }
  // Nothing above changed the table.
  assert.deepEqual(Object.keys((await sy.api('GET', '/api/routes')).json() as object), []);
});

test('error bodies say what is wrong and carry a stable code', async (t) => {
  const sy = await startSwitchyard(t);
  const bad = await sy.api('POST', '/api/routes/x', '{bad');
  assert.match(bad.body, /^Body not valid JSON: SyntaxError/);
  assert.equal(bad.headers['x-switchyard-error'], 'SWY_BODY_INVALID_JSON');
  const noTarget = await sy.api('POST', '/api/routes/x', '{}');
  assert.equal(noTarget.body, "Must specify 'target' as string");
  const scheme = await sy.api('POST', '/api/routes/x', { target: 'gopher://h' });
  assert.match(scheme.body, /unsupported target scheme "gopher"/);
  assert.equal(scheme.headers['x-switchyard-error'], 'SWY_TARGET_INVALID');
  const date = await sy.api('GET', '/api/routes?inactive_since=yesterday-ish');
  assert.equal(date.status, 400);
  assert.equal(date.body, "Invalid datestamp 'yesterday-ish' must be ISO8601.");
});

test('add, read, replace, delete; extra keys kept; paths decoded and normalised', async (t) => {
  const sy = await startSwitchyard(t);
  const before = Date.now();
  const add = await sy.api('POST', '/api/routes/user/foo', { target: 'http://127.0.0.1:9', jupyterhub: true, data: { n: [1, 2] } });
  assert.equal(add.status, 201);
  const one = await sy.api('GET', '/api/routes/user/foo/');
  assert.equal(one.status, 200);
  assert.match(String(one.headers['content-type']), /application\/json/);
  const got = one.json<Record<string, unknown>>();
  assert.equal(got.target, 'http://127.0.0.1:9');
  assert.equal(got.jupyterhub, true);
  assert.deepEqual(got.data, { n: [1, 2] });
  const la = Date.parse(String(got.last_activity));
  assert.ok(la >= before - 5 && la <= Date.now() + 5, 'last_activity set at creation');
  assert.match(String(got.last_activity), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

  assert.equal((await sy.api('POST', '/api/routes/user/a%20b/', { target: 'http://127.0.0.1:10' })).status, 201);
  assert.equal((await sy.api('POST', '/api/routes/trailing///', { target: 'http://127.0.0.1:11' })).status, 201);
  assert.equal((await sy.api('POST', '/api/routes', { target: 'http://127.0.0.1:12' })).status, 201, 'POST /api/routes sets /');
  const all = (await sy.api('GET', '/api/routes/')).json<Record<string, { target: string }>>();
  assert.deepEqual(Object.keys(all).sort(), ['/', '/trailing', '/user/a b', '/user/foo']);
  assert.equal(all['/user/a b']!.target, 'http://127.0.0.1:10');

  assert.equal((await sy.api('POST', '/api/routes/user/foo', { target: 'http://127.0.0.1:13' })).status, 201);
  assert.equal((await sy.api('GET', '/api/routes/user/foo')).json<{ target: string }>().target, 'http://127.0.0.1:13');
  const del = await sy.api('DELETE', '/api/routes/user/foo/');
  assert.equal(del.status, 204);
  assert.equal(del.body, '');
  assert.equal((await sy.api('GET', '/api/routes/user/foo')).status, 404);
  assert.equal((await sy.api('DELETE', '/api/routes/user/a%20b')).status, 204);
});

test('inactive_since / inactiveSince filter on last_activity', async (t) => {
  const backend = await startBackend(t);
  const sy = await startSwitchyard(t);
  await sy.api('POST', '/api/routes/idle', { target: backend.url });
  await sy.api('POST', '/api/routes/busy', { target: backend.url });
  // The cut lies strictly after both routes' creation and strictly before the request's activity.
  const createdAt = Date.now();
  await waitFor(() => Date.now() > createdAt, 1000, 'a later millisecond');
  const cutMs = Date.now();
  const cut = new Date(cutMs).toISOString();
  await waitFor(() => Date.now() > cutMs, 1000, 'a later millisecond');
  assert.equal((await request(sy.proxyUrl + '/busy/x')).status, 200);
  for (const param of ['inactive_since', 'inactiveSince']) {
    const r = await sy.api('GET', `/api/routes?${param}=${encodeURIComponent(cut)}`);
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.json() as object), ['/idle'], param);
  }
  const future = await sy.api('GET', `/api/routes?inactive_since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`);
  assert.deepEqual(Object.keys(future.json() as object).sort(), ['/busy', '/idle']);
});

test('oversized bodies are refused with 413 and change nothing', async (t) => {
  const sy = await startSwitchyard(t, ['--api-max-body', '2048']);
  const big = JSON.stringify({ target: 'http://127.0.0.1:1', pad: 'x'.repeat(4096) });
  const r = await sy.api('POST', '/api/routes/big', big);
  assert.equal(r.status, 413);
  assert.equal(r.headers['x-switchyard-error'], 'SWY_BODY_TOO_LARGE');
  assert.equal((await sy.api('GET', '/api/routes/big')).status, 404);
});

test('201 means live: a request right after the POST is routed', async (t) => {
  const a = await startBackend(t, 'A');
  const sy = await startSwitchyard(t);
  for (let i = 0; i < 50; i++) {
    assert.equal((await sy.api('POST', `/api/routes/user/u${i}`, { target: a.url })).status, 201);
    const r = await request(`${sy.proxyUrl}/user/u${i}/x`);
    assert.equal(r.status, 200, `route ${i} live`);
    assert.equal((await sy.api('DELETE', `/api/routes/user/u${i}`)).status, 204);
    assert.equal((await request(`${sy.proxyUrl}/user/u${i}/x`)).status, 404, `route ${i} gone`);
  }
});

test('no token configured: API open (CHP behaviour), with a warning', async (t) => {
  const sy = await startSwitchyard(t, [], {});
  assert.equal((await request(sy.apiUrl + '/api/routes')).status, 200);
  assert.ok(sy.logs.some((l) => l.includes('REST API is not authenticated')));
});

test('host routing stores the host in the route data', async (t) => {
  const sy = await startSwitchyard(t, ['--host-routing']);
  await sy.api('POST', '/api/routes/example.com/app', { target: 'http://127.0.0.1:1' });
  const r = (await sy.api('GET', '/api/routes/example.com/app')).json<{ host: string }>();
  assert.equal(r.host, 'example.com');
});
