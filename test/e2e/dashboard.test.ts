// The dashboard in a real headless Chromium (Debian's /usr/bin/chromium driven by playwright-core)
// against the real CLI: sign-in (wrong token refused), routes appearing and disappearing as the
// API changes them, search, live counters under traffic, route data shown as text (no XSS),
// unauthenticated access refused, 10,000 routes, and server memory over an hour's worth of updates.
//
// SCREENSHOT_DIR=docs node --test dist/test/e2e/dashboard.test.js   refreshes docs/dashboard*.png

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import * as grpc from '@grpc/grpc-js';
import { TO_OBJECT, TYPE, messageType } from '../../src/dataplane/envoy/protos.js';
import { request, startBackend, startSwitchyardProcess, waitFor } from '../helpers/servers.js';
import { connectInspector } from '../helpers/inspector.js';

const TOKEN = 'browser-test-token';
const CHROMIUM = '/usr/bin/chromium';

async function launch(t: TestContext): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // This machine has no outside network: keep Chromium from trying (see the env notes).
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.after(() => browser.close());
  return browser;
}

async function startProxy(t: TestContext, extra: string[] = [], nodeArgs: string[] = []) {
  const p = await startSwitchyardProcess(t, extra, { CONFIGPROXY_AUTH_TOKEN: TOKEN }, 30_000, nodeArgs);
  return { port: p.proxyPort, apiPort: p.apiPort, xdsPort: p.xdsPort, api: p.api, proc: p.proc, output: p.output, dashboard: `${p.apiUrl}/dashboard/` };
}

async function signIn(page: Page, url: string, token = TOKEN): Promise<void> {
  await page.goto(url);
  await page.locator('[data-testid=login-token]').fill(token);
  await page.locator('[data-testid=login-submit]').click();
}

const row = (path: string) => `[data-testid=route-row][data-path=${JSON.stringify(path)}]`;

/** Requests to `path` until stopped: keep-alive, sequential, a few hundred per second. */
function traffic(port: number, paths: string[]): { stop(): Promise<number> } {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  let running = true;
  let sent = 0;
  const loop = async (k: number) => {
    while (running) {
      const path = paths[(sent + k) % paths.length]!;
      await new Promise<void>((resolve) => {
        http.get(`http://127.0.0.1:${port}${path}`, { agent }, (res) => {
          res.resume();
          res.on('end', resolve);
        }).on('error', () => resolve());
      });
      sent++;
      await new Promise((r) => setTimeout(r, 5)); // pacing of the load generator, not a wait
    }
  };
  const loops = [0, 1].map(loop);
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return sent;
    },
  };
}

test('dashboard in Chromium: sign-in, live routes, search, counters, route data as text, unauthenticated refused', { timeout: 120_000 }, async (t) => {
  const backend = await startBackend(t, 'A', undefined, { ws: true });
  const sy = await startProxy(t, ['--dashboard-interval', '200', '--xds-ip', '127.0.0.1', '--xds-port', '0']);
  const browser = await launch(t);
  const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));

  // A wrong token is refused with a message, nothing else shown.
  await signIn(page, sy.dashboard, 'wrong-token');
  await page.locator('[data-testid=login-error]').getByText('Invalid token.', { exact: true }).waitFor();
  assert.equal(await page.locator('#app-view').isVisible(), false);

  await signIn(page, sy.dashboard);
  await page.locator('[data-testid=route-count]').getByText('0 of 0 routes', { exact: true }).waitFor();
  assert.equal(await page.locator('[data-testid=store-kind]').textContent(), 'memory');
  const cores = availableParallelism();
  assert.equal(await page.locator('[data-testid=proc-workers]').textContent(), cores > 1 ? String(cores) : 'in process', 'default: one data-plane worker per core');

  // Routes appear and disappear as the API changes them (no reload).
  assert.equal((await sy.api('POST', '/api/routes/user/alice', { target: backend.url, user: 'alice' })).status, 201);
  await page.locator(row('/user/alice')).waitFor();
  assert.equal(await page.locator(`${row('/user/alice')} .target`).textContent(), backend.url);
  assert.equal(await page.locator(`${row('/user/alice')} .data`).textContent(), '{"user":"alice"}');
  assert.equal((await sy.api('DELETE', '/api/routes/user/alice')).status, 204);
  await page.locator(row('/user/alice')).waitFor({ state: 'detached' });

  // Search.
  await Promise.all(Array.from({ length: 30 }, (_, i) => sy.api('POST', `/api/routes/user/bob-${i}`, { target: backend.url })));
  await sy.api('POST', '/api/routes/user/carol', { target: backend.url, server_name: 'gpu' });
  await page.locator('[data-testid=route-count]').getByText('31 of 31 routes', { exact: true }).waitFor();
  await page.locator('[data-testid=route-search]').fill('carol');
  await page.locator('[data-testid=route-count]').getByText('1 of 31 routes', { exact: true }).waitFor();
  assert.deepEqual(await page.locator('[data-testid=route-row]:visible').evaluateAll((els) => els.map((e) => (e as unknown as { dataset: { path?: string } }).dataset.path)), ['/user/carol']);
  await page.locator('[data-testid=route-search]').fill('gpu'); // data is searchable too
  await page.locator('[data-testid=route-count]').getByText('1 of 31 routes', { exact: true }).waitFor();
  await page.locator('[data-testid=route-search]').fill('bob-1');
  await page.locator('[data-testid=route-count]').getByText('11 of 31 routes', { exact: true }).waitFor(); // bob-1, bob-10..19

  // Live counters move under traffic.
  await page.locator('[data-testid=route-search]').fill('');
  const load = traffic(sy.port, ['/user/carol/api', '/user/bob-3/x']);
  await waitFor(async () => Number(await page.locator('[data-testid=traffic-rate]').textContent()) > 5, 15_000, 'traffic rate shown');
  await waitFor(async () => Number(await page.locator(`${row('/user/carol')} .rate`).textContent()) > 1, 10_000, 'route rate shown');
  const req1 = Number((await page.locator(`${row('/user/carol')} .req`).textContent())!.replace(/,/g, ''));
  await waitFor(async () => Number((await page.locator(`${row('/user/carol')} .req`).textContent())!.replace(/,/g, '')) > req1 + 20, 10_000, 'request count grows');
  assert.match((await page.locator(`${row('/user/carol')} .la`).textContent())!, /^\d+s ago$/);
  await page.locator('[data-testid=route-filter]').selectOption('active');
  await page.locator('[data-testid=route-count]').getByText('2 of 31 routes', { exact: true }).waitFor();
  await page.locator('[data-testid=route-filter]').selectOption('all');
  const sent = await load.stop();
  assert.ok(sent > 50, `sent ${sent}`);

  // xDS clients: an ADS stream (what Envoy opens) that ACKs CDS, then NACKs the next version.
  const Req = messageType('envoy.service.discovery.v3.DiscoveryRequest');
  const Res = messageType('envoy.service.discovery.v3.DiscoveryResponse');
  const client = new grpc.Client(`127.0.0.1:${sy.xdsPort}`, grpc.credentials.createInsecure());
  t.after(() => client.close());
  const call = client.makeBidiStreamRequest('/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources', (b: Buffer) => b, (b: Buffer) => b);
  call.on('error', () => {});
  const got: { version_info: string; nonce: string }[] = [];
  call.on('data', (b: Buffer) => got.push(Res.toObject(Res.decode(b), TO_OBJECT) as { version_info: string; nonce: string }));
  const send = (r: Record<string, unknown>) => call.write(Buffer.from(Req.encode(Req.fromObject(r)).finish()));
  send({ node: { id: 'envoy-<i>edge</i>-1', cluster: 'edge' }, type_url: TYPE.cluster });
  await waitFor(() => got.length === 1, 10_000, 'CDS response');
  send({ type_url: TYPE.cluster, version_info: got[0]!.version_info, response_nonce: got[0]!.nonce });
  await sy.api('POST', '/api/routes/user/erin', { target: 'http://10.9.9.9:8888' });
  await waitFor(() => got.length === 2, 10_000, 'CDS update');
  send({ type_url: TYPE.cluster, version_info: got[0]!.version_info, response_nonce: got[1]!.nonce, error_detail: { code: 3, message: '<script>window.__xss=4</script>cluster rejected' } });
  const xdsRow = page.locator('#xds-clients tr').filter({ hasText: 'envoy-<i>edge</i>-1' }).filter({ hasText: 'cds' });
  await xdsRow.getByText('1 / 1', { exact: true }).waitFor({ timeout: 10_000 }); // one ACK, one NACK
  assert.deepEqual((await xdsRow.locator('td').allTextContents()).filter((_, i) => [0, 1, 3, 7].includes(i)), [
    'envoy-<i>edge</i>-1', 'edge', 'cds', '<script>window.__xss=4</script>cluster rejected',
  ]);
  assert.match((await page.locator('#xds-summary').textContent())!, /^1 connected/);

  // Route data with HTML and script is shown as text, never run.
  const evil = '/x/<img src=x onerror="window.__xss=1">';
  const evilData = { target: backend.url, note: '<script>window.__xss=2</script>', user: '"><svg onload="window.__xss=3">' };
  assert.equal((await sy.api('POST', '/api/routes' + evil.split('/').map(encodeURIComponent).join('/'), evilData)).status, 201);
  await page.locator('[data-testid=route-search]').fill('<img');
  await page.locator('[data-testid=route-count]').getByText('1 of 33 routes', { exact: true }).waitFor();
  const evilRow = page.locator('[data-testid=route-row]:visible');
  assert.equal(await evilRow.locator('.path').textContent(), evil);
  assert.equal(await evilRow.locator('.data').textContent(), JSON.stringify({ note: evilData.note, user: evilData.user }));
  assert.equal(await page.evaluate('typeof window.__xss'), 'undefined');
  assert.equal(await page.locator('#viewport img, #viewport script, #viewport svg').count(), 0);

  // Screenshots for the docs (and a check that the page renders).
  await page.locator('[data-testid=route-search]').fill('');
  await page.locator('[data-testid=route-sort]').selectOption('rate');
  await sy.api('POST', '/api/routes/user/dave', { target: 'http://127.0.0.1:1', user: 'dave' }); // a dead target: 5xx
  const load2 = traffic(sy.port, ['/user/carol/api', '/user/bob-3/x', '/user/bob-7/y', '/user/carol/tree', '/user/dave/lab']);
  // The shot shows rates and a 5xx: wait until the page shows them, not for a fixed time.
  await waitFor(async () => Number((await page.locator(`${row('/user/dave')} .req`).textContent())!.replace(/,/g, '')) > 10, 20_000, 'dave\'s requests shown');
  await waitFor(async () => Number(await page.locator(`${row('/user/bob-7')} .rate`).textContent()) > 1, 20_000, 'rates shown');
  const dir = process.env.SCREENSHOT_DIR ?? mkdtempSync(join(tmpdir(), 'sy-shot-'));
  const shot = join(dir, 'dashboard.png');
  await page.screenshot({ path: shot, fullPage: true });
  await load2.stop();
  call.end();
  assert.ok(statSync(shot).size > 20_000, 'a real screenshot');
  if (!process.env.SCREENSHOT_DIR) rmSync(dir, { recursive: true, force: true });

  assert.equal(await page.evaluate('document.body.dataset.hellos'), '1', 'one live stream all along: no reconnects, no reloads');
  assert.match((await page.locator(`${row('/user/bob-0')} .la`).textContent())!, /^\d+s ago$/, 'a new route was active when added');

  // Unauthenticated: a fresh browser context sees the sign-in form, and the data endpoints say 401.
  const anon = await (await browser.newContext()).newPage();
  await anon.goto(sy.dashboard);
  await anon.locator('[data-testid=login-token]').waitFor();
  assert.equal(await anon.locator('#app-view').isVisible(), false);
  const codes = await anon.evaluate(async () =>
    Promise.all(['api/state', 'api/events', 'api/session'].map(async (p) => (await fetch(p)).status)),
  );
  assert.deepEqual(codes, [401, 401, 401]);

  // Log out: back to the sign-in form, the cookie is gone.
  await page.locator('#logout').click();
  await page.locator('[data-testid=login-token]').waitFor();
  assert.equal(await page.evaluate(async () => (await fetch('api/session')).status), 401);
  assert.deepEqual(pageErrors, [], 'no script errors on the page');
});

test('dashboard with 10,000 routes: virtualised list, search and scroll stay quick', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-10k-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const backend = await startBackend(t, 'A');
  const routes: Record<string, unknown> = {};
  for (let i = 0; i < 10_000; i++) routes[`/user/u${i}`] = { target: backend.url, user: `u${i}` };
  writeFileSync(join(dir, 'routes.json'), JSON.stringify({ routes }));
  const sy = await startProxy(t, ['--store', `file:${join(dir, 'routes.json')}`, '--dashboard-interval', '500']);
  const browser = await launch(t);
  const page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
  await signIn(page, sy.dashboard);
  const t0 = Date.now();
  await page.locator('[data-testid=route-count]').getByText('10,000 of 10,000 routes', { exact: true }).waitFor({ timeout: 20_000 });
  const loaded = Date.now() - t0;
  const rows = await page.locator('[data-testid=route-row]').count();
  assert.ok(rows < 150, `only the rows in view exist in the DOM (${rows})`);

  // Scroll to the end: the last route (by path) is rendered.
  const t1 = Date.now();
  await page.locator('#viewport').evaluate((el) => (el.scrollTop = el.scrollHeight));
  await page.locator(row('/user/u9999')).waitFor();
  const scrolled = Date.now() - t1;

  // Search over 10,000 routes.
  const t2 = Date.now();
  await page.locator('[data-testid=route-search]').fill('u4242');
  await page.locator('[data-testid=route-count]').getByText('1 of 10,000 routes', { exact: true }).waitFor();
  const searched = Date.now() - t2;
  await page.locator(row('/user/u4242')).waitFor();

  // Traffic on one route among 10,000: sorting by rate brings it to the top.
  await page.locator('[data-testid=route-search]').fill('');
  await page.locator('[data-testid=route-sort]').selectOption('rate');
  const load = traffic(sy.port, ['/user/u7777/x']);
  await waitFor(async () => (await page.locator('[data-testid=route-row]:visible').first().getAttribute('data-path')) === '/user/u7777', 15_000, 'busiest route first');
  await load.stop();
  // A route change reaches a page holding 10,000 routes.
  await sy.api('POST', '/api/routes/user/zz-new', { target: backend.url });
  await page.locator('[data-testid=route-count]').getByText('10,001 of 10,001 routes', { exact: true }).waitFor();
  // Diagnostics, not assertions: timings on a shared machine are for bench/, not tests.
  t.diagnostic(`10k routes: first render ${loaded} ms, scroll to end ${scrolled} ms, search ${searched} ms, DOM rows ${rows}`);
});

/**
 * The server's memory as V8 sees it after a full garbage collection, through the inspector protocol
 * (node --inspect): live heap and external memory, without the garbage that comes and goes between
 * collections (a small heap may see no full collection for minutes).
 */
test('a dashboard left open for an hour of updates: server memory stays flat', { timeout: 180_000 }, async (t) => {
  // 3,600 updates (an hour at the default 1 s) at --dashboard-interval 10, with 1,000 routes,
  // traffic on some and route churn all along, one browser tab open on the live stream.
  const dir = mkdtempSync(join(tmpdir(), 'sy-hour-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const backend = await startBackend(t, 'A');
  const routes: Record<string, unknown> = {};
  for (let i = 0; i < 1000; i++) routes[`/user/u${i}`] = { target: backend.url };
  writeFileSync(join(dir, 'routes.json'), JSON.stringify({ routes }));
  // --inspect on port 0: each process prints its own; the main process starts (and prints) first.
  const sy = await startProxy(t, ['--store', `file:${join(dir, 'routes.json')}`, '--dashboard-interval', '10', '--workers', '2'], [
    '--inspect=127.0.0.1:0',
  ]);
  const wsUrl = /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/.exec(sy.output())?.[1];
  assert.ok(wsUrl, 'the main process inspector');
  const probe = await connectInspector(t, wsUrl!);
  const browser = await launch(t);
  const page = await (await browser.newContext()).newPage();
  await signIn(page, sy.dashboard);
  await page.locator('[data-testid=route-count]').getByText('1,000 of 1,000 routes', { exact: true }).waitFor({ timeout: 20_000 });
  const load = traffic(sy.port, Array.from({ length: 50 }, (_, i) => `/user/u${i * 7}/x`));
  let churning = true;
  const churn = (async () => {
    let i = 0;
    while (churning) {
      await sy.api('POST', `/api/routes/churn/c${i % 20}`, { target: backend.url });
      await sy.api('DELETE', `/api/routes/churn/c${(i + 10) % 20}`);
      i++;
      await new Promise((r) => setTimeout(r, 20)); // pacing of the churn, not a wait
    }
  })();
  const streams = async () =>
    (await request(`http://127.0.0.1:${sy.apiPort}/dashboard/api/state`, { headers: { authorization: `token ${TOKEN}` } })).json<{ status: { streams: number } }>().status.streams;
  const ticks = async () => Number(await page.evaluate('document.body.dataset.ticks || "0"'));
  const start = await ticks();
  // Warm-up (the first few hundred updates), then the baseline.
  await waitFor(async () => (await ticks()) - start >= 400, 60_000, '400 updates');
  const before = await probe.memory();
  const samples: string[] = [];
  const deadline = Date.now() + 120_000;
  let next = 1200;
  while ((await ticks()) - start < 3600 && Date.now() < deadline) {
    assert.equal(await streams(), 1, 'one open stream, no leftovers');
    if ((await ticks()) - start >= next) {
      const m = await probe.memory();
      samples.push(`${next}: ${(m.heapUsed / 2 ** 20).toFixed(2)}`);
      next += 800;
    }
    await new Promise((r) => setTimeout(r, 500)); // polling period of the bounded sampling loop
  }
  const seen = (await ticks()) - start;
  const after = await probe.memory();
  churning = false;
  await churn;
  const sent = await load.stop();
  assert.ok(seen >= 3600, `the page received ${seen} updates`);
  const mib = (n: number) => (n / 2 ** 20).toFixed(2);
  t.diagnostic(
    `${seen} updates, ${sent} requests, route churn throughout; main process after full GC: heap ${mib(before.heapUsed)} -> ${mib(after.heapUsed)} MiB ` +
      `(at update n: ${samples.join(', ')}), external ${mib(before.external)} -> ${mib(after.external)} MiB, RSS ${mib(before.rss)} -> ${mib(after.rss)} MiB`,
  );
  // A leak of 1 KiB per update would add 3 MiB over these 3,200 updates.
  assert.ok(after.heapUsed - before.heapUsed < 2 * 2 ** 20, `heap grew ${mib(after.heapUsed - before.heapUsed)} MiB`);
  assert.ok(after.external - before.external < 2 * 2 ** 20, `external memory grew ${mib(after.external - before.external)} MiB`);
});
