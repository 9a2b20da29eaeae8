// Dashboard users ([dashboard] users, htpasswd bcrypt lines) in a real headless Chromium against
// the real CLI: sign-in with a $2y$ (htpasswd -B) user, a wrong password refused, the session
// revoked when the user's hash changes on reload, and failed sign-ins rate-limited per address
// (429 + Retry-After, in the page too) with no difference between an unknown user and a wrong password.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import bcrypt from 'bcryptjs';
import { chromium, type Browser } from 'playwright-core';
import { request, startSwitchyardProcess, waitFor } from '../helpers/servers.js';
import { tempDir } from '../helpers/temp.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'users-test-token';

async function launch(t: TestContext): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.after(() => browser.close());
  return browser;
}

/** An htpasswd -nbB line: bcrypt with the $2y$ prefix htpasswd writes (cost 5 keeps the test quick). */
function htpasswd(user: string, password: string, prefix: '$2y$' | '$2b$' | '$2a$' = '$2y$'): string {
  return `${user}:${bcrypt.hashSync(password, 5).replace(/^\$2b\$/, prefix)}`;
}

const usersToml = (lines: string[]): string => `[dashboard]\nusers = ${JSON.stringify(lines)}\n`;

test('dashboard users: bcrypt sign-in in Chromium, wrong password refused, session revoked by a new hash on reload, failed sign-ins rate-limited', async (t) => {
  const dir = tempDir(t, 'swy-dash-users-');
  const file = join(dir, 'switchyard.toml');
  writeFileSync(file, usersToml([htpasswd('alice', 'correct horse'), htpasswd('bob', 'bob-pw', '$2a$')]));
  const p = await startSwitchyardProcess(t, ['--config', file, '--workers', '1'], { CONFIGPROXY_AUTH_TOKEN: TOKEN });
  const dashboard = `${p.apiUrl}/dashboard/`;
  const browser = await launch(t);
  const context = await browser.newContext();
  const page = await context.newPage();

  const signIn = async (user: string, password: string): Promise<void> => {
    await page.locator('[data-testid=user-name]').fill(user);
    await page.locator('[data-testid=user-password]').fill(password);
    await page.locator('[data-testid=user-submit]').click();
  };

  await page.goto(dashboard);
  await signIn('alice', 'wrong horse');
  await page.locator('[data-testid=user-error]').getByText('Invalid user or password.', { exact: true }).waitFor();
  assert.equal(await page.locator('#app-view').isVisible(), false);

  await signIn('alice', 'correct horse');
  await page.locator('[data-testid=route-count]').getByText('0 of 0 routes', { exact: true }).waitFor();
  const cookie = (await context.cookies()).find((c) => c.name === 'switchyard_dashboard');
  assert.ok(cookie, 'session cookie set');
  assert.ok(cookie.httpOnly);
  assert.equal(cookie.sameSite, 'Strict');
  const session = (): Promise<number> =>
    request(`${p.apiUrl}/dashboard/api/session`, { headers: { cookie: `${cookie.name}=${cookie.value}` } }).then((r) => r.status);
  assert.equal(await session(), 204);

  // A reload that leaves alice's hash alone keeps her session (bob's changes).
  const alice2 = htpasswd('alice', 'battery staple');
  writeFileSync(file, usersToml([`alice:${currentHash(file, 'alice')}`, htpasswd('bob', 'bob-new')]));
  assert.equal((await p.api('POST', '/api/reload')).status, 200);
  assert.equal(await session(), 204);
  // A new hash for alice (SIGHUP): her session ends, in the browser too.
  writeFileSync(file, usersToml([alice2, htpasswd('bob', 'bob-new')]));
  const reloads = (): number => p.output().match(/reload \(SIGHUP\): applied dashboard\.users/g)?.length ?? 0;
  p.proc.kill('SIGHUP');
  await waitFor(() => reloads() === 1, 10_000, 'the SIGHUP reload');
  assert.equal(await session(), 401);
  await page.reload();
  await page.locator('[data-testid=user-name]').waitFor();
  assert.equal(await page.locator('#app-view').isVisible(), false);
  await signIn('alice', 'battery staple');
  await page.locator('[data-testid=route-count]').getByText('0 of 0 routes', { exact: true }).waitFor();

  // Failed sign-ins from one address: an unknown user and a wrong password answer alike...
  const login = (body: unknown) =>
    request(`${p.apiUrl}/dashboard/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const unknown = await login({ user: 'mallory', password: 'x' });
  const wrong = await login({ user: 'bob', password: 'x' });
  assert.equal(unknown.status, 401);
  assert.equal(wrong.status, 401);
  assert.equal(unknown.body, wrong.body);
  // ...and the 5th failure in a minute (alice's earlier one was cleared by her sign-in) brings 429.
  for (let i = 0; i < 3; i++) assert.equal((await login({ user: 'bob', password: `x${i}` })).status, 401);
  const limited = await login({ user: 'bob', password: 'bob-new' });
  assert.equal(limited.status, 429, 'even the right password waits');
  const retryAfter = Number(limited.headers['retry-after']);
  assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After: ${limited.headers['retry-after']}`);
  // The page says so too (same client address).
  await page.locator('#logout').click();
  await page.locator('[data-testid=user-name]').waitFor();
  await signIn('bob', 'bob-new');
  await page.locator('[data-testid=user-error]').getByText(/^Too many failed attempts: try again in \d+ seconds\.$/).waitFor();
  // The token sign-in beside it is limited alike, and the API token still works for the API.
  assert.equal((await login({ token: TOKEN })).status, 429);
  assert.equal((await p.api('GET', '/api/routes')).status, 200);
});

/** The hash of `user` in the TOML file (to write the same line back). */
function currentHash(file: string, user: string): string {
  const m = new RegExp(`"${user}:([^"]+)"`).exec(readFileSync(file, 'utf8'));
  assert.ok(m);
  return m[1]!;
}
