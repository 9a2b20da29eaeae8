// A stored ACME account the CA no longer accepts (deactivated at the CA, as a revoked or expired
// account would be): against a real Pebble, the next order is refused, the manager replaces the
// account with a new one, orders again and serves the certificate; no crash, no tight loop.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { test } from 'node:test';
import acme from 'acme-client';
import { startAcmeReplica, waitServed } from '../helpers/acme.js';
import { startBalancer, startPebble } from '../helpers/pebble.js';
import { tempDir } from '../helpers/temp.js';

test('a deactivated stored account: the next order fails visibly, a new account is made, the certificate is served', { timeout: 60_000 }, async (t) => {
  const http = await startBalancer(t);
  const tlsLb = await startBalancer(t);
  const pebble = await startPebble(t, { httpPort: http.port, tlsPort: tlsLb.port });
  const dir = tempDir(t, 'swy-acme-account-');
  const store = ['--store', `file:${join(dir, 'routes.toml')}`];
  const first = await startAcmeReplica(t, pebble, [...store, '--acme-domain', 'a.test']);
  http.setBackends([first.redirectPort]);
  await waitServed(first, 'a.test');
  first.proc.kill('SIGTERM');
  assert.equal(await first.exited, 0);

  // The stored account (file store: <routes>.certs/accounts/<hash>.json), deactivated at the CA
  // with its own key.
  const accountsDir = join(dir, 'routes.toml.certs', 'accounts');
  const files = readdirSync(accountsDir).filter((f) => f.endsWith('.json'));
  assert.equal(files.length, 1);
  const stored = JSON.parse(readFileSync(join(accountsDir, files[0]!), 'utf8')) as { account: string };
  const old = JSON.parse(stored.account) as { keyPem: string; url: string };
  const axios = acme.axios as unknown as { defaults: { httpsAgent?: unknown } };
  const previousAgent = axios.defaults.httpsAgent;
  axios.defaults.httpsAgent = new https.Agent({ ca: readFileSync(pebble.directoryCa) });
  t.after(() => (axios.defaults.httpsAgent = previousAgent));
  const client = new acme.Client({ directoryUrl: pebble.directory, accountKey: old.keyPem, accountUrl: old.url });
  const deactivated = await client.updateAccount({ status: 'deactivated' });
  assert.equal(deactivated.status, 'deactivated');

  // A restart that must order a new name with that account.
  const second = await startAcmeReplica(t, pebble, [...store, '--acme-domain', 'a.test', '--acme-domain', 'b.test']);
  http.setBackends([second.redirectPort]);
  const status = await waitServed(second, 'b.test', 40_000);
  assert.equal(status.lastError, undefined, 'the successful order cleared the error');
  const out = second.output();
  assert.match(out, /ACME: order for b\.test failed \(attempt 1[^\n]*Account has been deactivated \(urn:ietf:params:acme:error:unauthorized\)/, `the refusal is logged:\n${out}`);
  assert.match(out, /ACME: account created/, 'a new account was made');
  assert.equal((out.match(/ACME: order for b\.test failed/g) ?? []).length, 1, 'one failed attempt, no loop');
  const now = JSON.parse((JSON.parse(readFileSync(join(accountsDir, files[0]!), 'utf8')) as { account: string }).account) as { url: string };
  assert.notEqual(now.url, old.url, 'the stored account was replaced');
  assert.equal(second.proc.exitCode, null, 'still running');
});
