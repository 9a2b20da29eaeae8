// The dashboard's Certificates panel against a real ACME server (Pebble, on loopback): the session-
// authenticated GET /dashboard/api/certificates carries the same state as GET /api/certificates
// (name, served, validity, next renewal, last error, attempts) and no key material, and a headless
// Chromium (playwright-core + /usr/bin/chromium) renders it as text. Two cases: a certificate issued
// over HTTP-01, and an order that fails (its validation connection refused).

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startAcmeReplica, waitServed, type AcmeReplica, type CertStatus } from '../helpers/acme.js';
import { startBalancer, startPebble } from '../helpers/pebble.js';
import { REFUSED_PORT, request, startSwitchyardProcess, waitFor } from '../helpers/servers.js';
import { tempDir } from '../helpers/temp.js';

const NAME = 'hub.test';
const TOKEN = 'secret'; // startAcmeReplica's default API token

interface DashboardCerts {
  enabled: boolean;
  certificates: {
    name: string;
    served: boolean;
    notBefore: number | null;
    notAfter: number | null;
    nextRenewalAt: number | null;
    lastError: string | null;
    lastErrorAt: number | null;
    attempts: number;
  }[];
}

async function launch(t: TestContext): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.after(() => browser.close());
  return browser;
}

async function signIn(page: Page, replica: AcmeReplica): Promise<void> {
  await page.goto(`${replica.apiUrl}/dashboard/`);
  await page.locator('[data-testid=login-token]').fill(TOKEN);
  await page.locator('[data-testid=login-submit]').click();
}

/** The dashboard endpoint (token auth), checked for key material on the way. */
async function dashboardCerts(replica: AcmeReplica): Promise<DashboardCerts> {
  const r = await replica.api('GET', '/dashboard/api/certificates');
  assert.equal(r.status, 200, r.body);
  assert.doesNotMatch(r.body, /-----BEGIN|PRIVATE KEY|"(key|cert|pem|privateKey|accountKey)"/i);
  return r.json<DashboardCerts>();
}

/** The rendered row for `name`: its cells' text. */
async function renderedRow(page: Page, name: string): Promise<string[] | undefined> {
  const rows = await page.locator('[data-testid=certs] tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
  return rows.find((cells) => cells[0] === name);
}

const iso = (t: number) => new Date(t).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');

test('dashboard Certificates panel: an issued certificate (served, validity, next renewal) as in /api/certificates, no key material; refused without a session', { timeout: 120_000 }, async (t) => {
  const http = await startBalancer(t);
  const tlsLb = await startBalancer(t);
  const pebble = await startPebble(t, { httpPort: http.port, tlsPort: tlsLb.port });
  const dir = tempDir(t, 'swy-acme-dash-');
  const replica = await startAcmeReplica(t, pebble, ['--store', `file:${join(dir, 'routes.toml')}`, '--acme-domain', NAME, '--dashboard-interval', '200']);
  // Nothing without the token or a session.
  assert.equal((await request(`${replica.apiUrl}/dashboard/api/certificates`)).status, 401);
  http.setBackends([replica.redirectPort]);
  const status = await waitServed(replica, NAME);

  const d = await dashboardCerts(replica);
  assert.equal(d.enabled, true);
  const c = d.certificates.find((x) => x.name === NAME)!;
  assert.ok(c, JSON.stringify(d));
  assert.equal(c.served, true);
  assert.equal(c.notBefore, status.notBefore);
  assert.equal(c.notAfter, status.notAfter);
  assert.equal(c.nextRenewalAt, status.nextRenewalAt ?? null);
  assert.ok(c.notAfter! > Date.now());
  assert.equal(c.lastError, null);
  assert.equal(c.attempts, 0);

  const browser = await launch(t);
  const page = await browser.newPage();
  await signIn(page, replica);
  await waitFor(async () => (await renderedRow(page, NAME)) !== undefined, 20_000, 'the certificate row on the page');
  const cells = (await renderedRow(page, NAME))!;
  assert.equal(cells[1], 'yes');
  assert.equal(cells[2], iso(status.notBefore!));
  assert.equal(cells[3], iso(status.notAfter!));
  assert.equal(cells[4], iso(status.nextRenewalAt!));
  assert.equal(cells[6], '–');
  assert.equal(await page.locator('#certs-panel').isVisible(), true);
  const html = await page.content();
  assert.doesNotMatch(html, /-----BEGIN|PRIVATE KEY/);
});

test('dashboard Certificates panel: a failed order shows its error, time and attempts', { timeout: 120_000 }, async (t) => {
  const http = await startBalancer(t);
  const tlsLb = await startBalancer(t);
  const pebble = await startPebble(t, { httpPort: http.port, tlsPort: tlsLb.port });
  http.setBackends([REFUSED_PORT]); // every validation connection refused
  const dir = tempDir(t, 'swy-acme-dash-');
  const replica = await startAcmeReplica(t, pebble, ['--store', `file:${join(dir, 'routes.toml')}`, '--acme-domain', NAME, '--dashboard-interval', '200']);
  let api: CertStatus | undefined;
  await waitFor(
    async () => {
      api = (await replica.certificates()).find((x) => x.name === NAME && x.lastError !== undefined);
      return api !== undefined;
    },
    40_000,
    'the failed order in /api/certificates',
  );
  const d = await dashboardCerts(replica);
  const c = d.certificates.find((x) => x.name === NAME)!;
  assert.equal(c.served, false);
  assert.equal(c.notAfter, null);
  assert.equal(c.lastError, api!.lastError);
  assert.match(c.lastError!, /acme-challenge/);
  assert.ok(c.lastErrorAt! > Date.now() - 60_000 && c.lastErrorAt! <= Date.now());
  assert.equal(c.attempts, 1);

  const browser = await launch(t);
  const page = await browser.newPage();
  await signIn(page, replica);
  await waitFor(async () => (await renderedRow(page, NAME)) !== undefined, 20_000, 'the certificate row on the page');
  const cells = (await renderedRow(page, NAME))!;
  assert.equal(cells[1], 'no');
  assert.equal(cells[3], '–');
  assert.equal(cells[5], '1');
  assert.equal(cells[6], api!.lastError);
  assert.equal(cells[7], iso(c.lastErrorAt!));
});

test('dashboard without ACME: the certificates endpoint says disabled and the panel stays hidden', { timeout: 60_000 }, async (t) => {
  const sy = await startSwitchyardProcess(t, ['--dashboard-interval', '200'], { CONFIGPROXY_AUTH_TOKEN: TOKEN });
  const r = await sy.api('GET', '/dashboard/api/certificates');
  assert.equal(r.status, 200);
  assert.deepEqual(r.json<DashboardCerts>().certificates, []);
  assert.equal(r.json<DashboardCerts>().enabled, false);
  const browser = await launch(t);
  const page = await browser.newPage();
  await page.goto(`${sy.apiUrl}/dashboard/`);
  await page.locator('[data-testid=login-token]').fill(TOKEN);
  await page.locator('[data-testid=login-submit]').click();
  // The page asked and got its answer (data-certs counts the answers handled).
  await waitFor(async () => Number(await page.evaluate('document.body.dataset.certs || "0"')) >= 1, 20_000, 'a certificates answer');
  assert.equal(await page.locator('#certs-panel').isHidden(), true);
});
