// The dashboard's HTTP surface, over real sockets: authentication (token login, stateless session
// cookie, nothing readable without it), security headers, and the Server-Sent Events stream
// (hello, route diffs, live figures under traffic). The browser side is test/e2e/dashboard.test.ts.

import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import http from 'node:http';
import { test } from 'node:test';
import { startEtcd } from '../helpers/etcd.js';
import { testCert } from '../helpers/tls.js';
import { request, startBackend, startSwitchyard, waitFor } from '../helpers/servers.js';

const TOKEN = 'dash-secret-token';

function cookieFor(token: string, expiry: number): string {
  const key = createHash('sha256').update('switchyard-dashboard-session-v1\0' + token).digest();
  return `switchyard_dashboard=${expiry}.${createHmac('sha256', key).update(String(expiry)).digest('base64url')}`;
}

async function login(apiUrl: string, token: string, contentType = 'application/json') {
  return request(`${apiUrl}/dashboard/login`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: contentType === 'application/json' ? JSON.stringify({ token }) : `token=${token}`,
  });
}

interface SseEvent {
  event: string;
  data: unknown;
}

/** Read a Server-Sent Events stream; `events` fills as they arrive. */
function openStream(url: string, headers: Record<string, string>): Promise<{ status: number; events: SseEvent[]; close(): void }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      const events: SseEvent[] = [];
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        let i;
        while ((i = buf.indexOf('\n\n')) !== -1) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
          const data = /^data: (.*)$/m.exec(block)?.[1];
          events.push({ event: ev, data: data === undefined ? undefined : JSON.parse(data) });
        }
      });
      res.on('error', () => {});
      resolve({ status: res.statusCode ?? 0, events, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

test('dashboard auth: nothing readable without the token; login sets a strict session cookie', { timeout: 30_000 }, async (t) => {
  const backend = await startBackend(t, 'B');
  const sy = await startSwitchyard(t, [], { CONFIGPROXY_AUTH_TOKEN: TOKEN });
  assert.equal((await sy.api('POST', '/api/routes/user/secret-user', { target: backend.url, owner: 'private-data' })).status, 201);

  // The page shell (no data) is public; it carries the security headers.
  const redirect = await request(`${sy.apiUrl}/dashboard`);
  assert.equal(redirect.status, 301);
  assert.equal(redirect.headers.location, '/dashboard/');
  const page = await request(`${sy.apiUrl}/dashboard/`);
  assert.equal(page.status, 200);
  assert.match(String(page.headers['content-type']), /text\/html/);
  assert.match(String(page.headers['content-security-policy']), /script-src 'self'/);
  assert.equal(page.headers['x-frame-options'], 'DENY');
  assert.ok(!page.body.includes('secret-user'));
  assert.equal((await request(`${sy.apiUrl}/dashboard/app.js`)).status, 200);
  assert.equal((await request(`${sy.apiUrl}/dashboard/../package.json`)).status, 404);
  assert.equal((await request(`${sy.apiUrl}/dashboard/%2e%2e/package.json`)).status, 404);

  // Data endpoints: 401 and nothing else said.
  for (const path of ['/dashboard/api/state', '/dashboard/api/events', '/dashboard/api/session']) {
    const r = await request(sy.apiUrl + path);
    assert.equal(r.status, 401, path);
    assert.equal(r.headers['x-switchyard-error'], 'SWY_UNAUTHENTICATED');
    assert.ok(!r.body.includes('secret-user') && !r.body.includes('private-data'), `${path} leaks nothing`);
  }
  const badHeader = await request(`${sy.apiUrl}/dashboard/api/state`, { headers: { authorization: 'token wrong' } });
  assert.equal(badHeader.status, 401);

  // Wrong token: 401 "invalid token", no cookie, after a delay (slows guessing).
  const t0 = Date.now();
  const wrong = await login(sy.apiUrl, 'not-the-token');
  assert.equal(wrong.status, 401);
  assert.equal(wrong.body, 'invalid token');
  assert.equal(wrong.headers['set-cookie'], undefined);
  assert.ok(Date.now() - t0 >= 250, 'failed logins are slowed down');
  const form = await login(sy.apiUrl, TOKEN, 'application/x-www-form-urlencoded');
  assert.equal(form.status, 415, 'JSON only: no cross-site form logins (RFC 9110 15.5.16)');
  assert.equal(form.headers['x-switchyard-error'], 'SWY_UNSUPPORTED_MEDIA_TYPE');
  const huge = await request(`${sy.apiUrl}/dashboard/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: 'x'.repeat(10_000) }) });
  assert.equal(huge.status, 413);
  assert.equal((await request(`${sy.apiUrl}/dashboard/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"token":' })).status, 400);

  // Right token: a cookie that is HttpOnly, SameSite=Strict, scoped to /dashboard.
  const ok = await login(sy.apiUrl, TOKEN);
  assert.equal(ok.status, 204);
  const setCookie = String(ok.headers['set-cookie']);
  assert.match(setCookie, /^switchyard_dashboard=\d+\.[A-Za-z0-9_-]+;/);
  for (const attr of ['HttpOnly', 'SameSite=Strict', 'Path=/dashboard', 'Max-Age=43200']) assert.ok(setCookie.includes(attr), attr);
  assert.ok(!setCookie.includes(TOKEN), 'the token itself is never in the cookie');
  const cookie = setCookie.split(';')[0]!;
  assert.equal((await request(`${sy.apiUrl}/dashboard/api/session`, { headers: { cookie } })).status, 204);
  const state = await request(`${sy.apiUrl}/dashboard/api/state`, { headers: { cookie } });
  assert.equal(state.status, 200);
  const body = state.json<{ routes: unknown[][]; status: { store: { kind: string }; table: { routes: number } } }>();
  const row = body.routes.find((r) => r[0] === '/user/secret-user')!;
  assert.equal(row[1], backend.url);
  assert.deepEqual(row[2], { owner: 'private-data' });
  assert.equal(body.status.store.kind, 'memory');
  assert.equal(body.status.table.routes, 1);
  assert.equal((await request(`${sy.apiUrl}/dashboard/api/state`, { headers: { authorization: `token ${TOKEN}` } })).status, 200, 'API token header works too');

  // Forged, tampered and expired cookies are refused.
  const [value] = cookie.split('=').slice(1);
  const [exp, sig] = value!.split('.');
  const flipped = sig!.slice(0, -1) + (sig!.endsWith('A') ? 'B' : 'A');
  for (const bad of [
    `switchyard_dashboard=${exp}.${flipped}`,
    `switchyard_dashboard=${Number(exp) + 1}.${sig}`,
    cookieFor('another-token', Math.floor(Date.now() / 1000) + 3600),
    cookieFor(TOKEN, Math.floor(Date.now() / 1000) - 1),
    'switchyard_dashboard=',
  ]) {
    assert.equal((await request(`${sy.apiUrl}/dashboard/api/state`, { headers: { cookie: bad } })).status, 401, bad);
  }
  assert.equal((await request(`${sy.apiUrl}/dashboard/api/state`, { headers: { cookie: cookieFor(TOKEN, Math.floor(Date.now() / 1000) + 60) } })).status, 200, 'any replica with the token accepts the cookie');

  // Logout clears the cookie.
  const out = await request(`${sy.apiUrl}/dashboard/logout`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: '{}' });
  assert.equal(out.status, 204);
  assert.match(String(out.headers['set-cookie']), /switchyard_dashboard=;.*Max-Age=0/);
});

test('dashboard over an HTTPS API: the session cookie is Secure', { timeout: 30_000 }, async (t) => {
  const cert = testCert();
  const sy = await startSwitchyard(t, ['--api-ssl-key', cert.key, '--api-ssl-cert', cert.cert], { CONFIGPROXY_AUTH_TOKEN: TOKEN });
  assert.ok(sy.apiUrl.startsWith('https://'));
  const ok = await login(sy.apiUrl, TOKEN);
  assert.equal(ok.status, 204);
  assert.match(String(ok.headers['set-cookie']), /; Secure$/);
  const cookie = String(ok.headers['set-cookie']).split(';')[0]!;
  assert.equal((await request(`${sy.apiUrl}/dashboard/api/session`, { headers: { cookie } })).status, 204);
});

test('dashboard: off without an API token (403), absent with --no-dashboard (404)', { timeout: 30_000 }, async (t) => {
  const open = await startSwitchyard(t, [], {});
  for (const r of [await login(open.apiUrl, ''), await request(`${open.apiUrl}/dashboard/api/state`)]) {
    assert.equal(r.status, 403);
    assert.equal(r.headers['x-switchyard-error'], 'SWY_DASHBOARD_DISABLED');
    assert.equal(r.body, 'dashboard disabled: no API token and no dashboard users');
  }
  const off = await startSwitchyard(t, ['--no-dashboard'], { CONFIGPROXY_AUTH_TOKEN: TOKEN });
  assert.equal((await request(`${off.apiUrl}/dashboard/`)).status, 404);
  assert.equal((await request(`${off.apiUrl}/dashboard/api/state`, { headers: { authorization: `token ${TOKEN}` } })).status, 404);
});

test('dashboard events: hello, route diffs as the API changes the table, live figures under traffic', { timeout: 30_000 }, async (t) => {
  const backend = await startBackend(t, 'B');
  const sy = await startSwitchyard(t, ['--dashboard-interval', '100'], { CONFIGPROXY_AUTH_TOKEN: TOKEN });
  await sy.api('POST', '/api/routes/first', { target: backend.url });
  const cookie = String((await login(sy.apiUrl, TOKEN)).headers['set-cookie']).split(';')[0]!;
  const stream = await openStream(`${sy.apiUrl}/dashboard/api/events`, { cookie });
  t.after(() => stream.close());
  assert.equal(stream.status, 200);
  await waitFor(() => stream.events.length > 0, 5000, 'hello');
  const hello = stream.events[0]!;
  assert.equal(hello.event, 'hello');
  assert.deepEqual((hello.data as { routes: unknown[][] }).routes.map((r) => r[0]), ['/first']);

  const find = (ev: string, pred: (d: Record<string, unknown>) => boolean) => stream.events.find((e) => e.event === ev && pred(e.data as Record<string, unknown>));
  await sy.api('POST', '/api/routes/user/new', { target: backend.url, user: 'new' });
  await waitFor(() => !!find('routes', (d) => (d.set as unknown[][]).some((r) => r[0] === '/user/new')), 5000, 'route added event');
  await sy.api('DELETE', '/api/routes/user/new');
  await waitFor(() => !!find('routes', (d) => (d.del as string[]).includes('/user/new')), 5000, 'route deleted event');

  // Traffic: the route's rate and request count move; a dead target's 5xx show as errors.
  await sy.api('POST', '/api/routes/dead', { target: 'http://127.0.0.1:1' });
  for (let i = 0; i < 30; i++) assert.equal((await request(`${sy.proxyUrl}/first/x`)).status, 200);
  for (let i = 0; i < 5; i++) assert.equal((await request(`${sy.proxyUrl}/dead/x`)).status, 503);
  type Live = [string, number, number, number, number, number, number | null];
  const lastLive = (path: string): Live | undefined => {
    let found: Live | undefined;
    for (const e of stream.events) if (e.event === 'tick') for (const l of (e.data as { live: Live[] }).live) if (l[0] === path) found = l;
    return found;
  };
  await waitFor(() => (lastLive('/first')?.[4] ?? 0) === 30, 5000, '30 requests counted');
  const first = lastLive('/first')!;
  assert.ok(first[1] > 0, 'a rate');
  assert.ok(first[3] > 0, 'a latency');
  assert.ok(first[6]! > Date.now() - 10_000, 'last activity');
  await waitFor(() => (lastLive('/dead')?.[5] ?? 0) === 5, 5000, '5 errors counted');
  assert.ok(lastLive('/dead')![2] > 0, 'an error rate');
  const tick = [...stream.events].reverse().find((e) => e.event === 'tick')!.data as { status: { traffic: { rate: number }; streams: number } };
  assert.ok(tick.status.traffic.rate > 0);
  assert.equal(tick.status.streams, 1);
  stream.close();
  await waitFor(async () => {
    const s = (await request(`${sy.apiUrl}/dashboard/api/state`, { headers: { cookie } })).json<{ status: { streams: number } }>();
    return s.status.streams === 0;
  }, 5000, 'closed stream forgotten');
});

test('dashboard on etcd: both replicas listed with their revisions; a dead store shows as stale', { timeout: 60_000 }, async (t) => {
  const etcd = await startEtcd(t, 1);
  const backend = await startBackend(t, 'B');
  const store = ['--store', `etcd://${etcd.endpoints}`, '--dashboard-interval', '100'];
  const a = await startSwitchyard(t, [...store, '--replica-id', 'replica-a'], { CONFIGPROXY_AUTH_TOKEN: TOKEN });
  const b = await startSwitchyard(t, [...store, '--replica-id', 'replica-b'], { CONFIGPROXY_AUTH_TOKEN: TOKEN });
  assert.equal((await a.api('POST', '/api/routes/user/x', { target: backend.url })).status, 201);
  const stream = await openStream(`${b.apiUrl}/dashboard/api/events`, { authorization: `token ${TOKEN}` });
  t.after(() => stream.close());
  type Status = { health: string; store: { kind: string; connected: boolean; revision: number }; table: { version: number; routes: number }; replicas: { id: string; revision: number }[] | null };
  const latest = (): Status | undefined => {
    const e = [...stream.events].reverse().find((x) => x.event === 'tick' || x.event === 'hello');
    return (e?.data as { status: Status } | undefined)?.status;
  };
  await waitFor(() => latest()?.replicas?.length === 2, 10_000, 'two replicas listed');
  const s = latest()!;
  assert.deepEqual(s.replicas!.map((r) => r.id), ['replica-a', 'replica-b']);
  assert.equal(s.store.kind, 'etcd');
  assert.equal(s.store.connected, true);
  assert.equal(s.table.routes, 1);
  assert.equal(s.health, 'ok');

  // A write on the other replica reaches this dashboard as a route diff.
  await a.api('POST', '/api/routes/user/y', { target: backend.url });
  await waitFor(() => stream.events.some((e) => e.event === 'routes' && ((e.data as { set: unknown[][] }).set).some((r) => r[0] === '/user/y')), 10_000, 'diff from replica A');
  // Both replicas now serve that write's revision (a change event: the same number on every replica).
  await waitFor(() => latest()!.replicas!.every((r) => r.revision >= latest()!.table.version), 10_000, 'both replicas report the write');

  // etcd gone: the dashboard says the store is stale, and keeps streaming.
  await etcd.stop(etcd.members[0]!, 'SIGKILL');
  await waitFor(() => latest()?.store.connected === false, 20_000, 'store shown as unreachable');
  assert.equal(latest()!.health, 'degraded');
  assert.equal(latest()!.table.routes, 2, 'last known table still shown');
});

test('dashboard streams are capped: the one over the limit gets 503 SWY_TOO_MANY_STREAMS, a freed slot is reusable', { timeout: 60_000 }, async (t) => {
  const sy = await startSwitchyard(t, [], { CONFIGPROXY_AUTH_TOKEN: TOKEN });
  const url = `${sy.apiUrl}/dashboard/api/events`;
  const auth = { authorization: `token ${TOKEN}` };
  const open: { status: number; close(): void }[] = [];
  t.after(() => open.forEach((s) => s.close()));
  // Up to the cap (256) every stream is accepted; the cap is found by opening until refused.
  let refused: Awaited<ReturnType<typeof openStream>> | undefined;
  for (let i = 0; i < 300 && refused === undefined; i++) {
    const s = await openStream(url, auth);
    if (s.status === 200) open.push(s);
    else refused = s;
  }
  assert.equal(open.length, 256, 'streams accepted up to the cap');
  assert.ok(refused, 'the next one refused');
  refused.close();
  const over = await request(url, { headers: auth });
  assert.equal(over.status, 503);
  assert.equal(over.headers['x-switchyard-error'], 'SWY_TOO_MANY_STREAMS');
  assert.equal(over.body, 'too many dashboard streams');
  open.pop()!.close();
  await waitFor(async () => {
    const s = await openStream(url, auth);
    if (s.status === 200) open.push(s);
    else s.close();
    return s.status === 200;
  }, 5000, 'a freed slot taken again');
});
