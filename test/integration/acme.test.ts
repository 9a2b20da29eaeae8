// Automatic HTTPS against a real ACME server (Let's Encrypt's Pebble, on loopback): a replica
// orders a certificate over HTTP-01 (Pebble's validation connects through a TCP balancer to the
// replica's --redirect-port), stores it and serves it; the chain is verified against Pebble's root.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { join } from 'node:path';
import { startAcmeReplica, servedSerial, waitServed } from '../helpers/acme.js';
import { startBalancer, startPebble } from '../helpers/pebble.js';
import { tempDir } from '../helpers/temp.js';

const NAME = 'hub.test';

test('one replica gets a certificate over HTTP-01 and serves it; the chain verifies against the CA root', async (t) => {
  const http = await startBalancer(t);
  const tlsLb = await startBalancer(t);
  const pebble = await startPebble(t, { httpPort: http.port, tlsPort: tlsLb.port });
  const dir = tempDir(t, 'swy-acme-');
  const replica = await startAcmeReplica(t, pebble, [...storeArgs(dir), '--acme-domain', NAME, '--acme-email', 'ops@hub.test']);
  http.setBackends([replica.redirectPort]);
  const status = await waitServed(replica, NAME);
  assert.equal(pebble.orders(), 1);
  assert.ok(status.notAfter! > Date.now());
  assert.equal(status.lastError, undefined);
  const root = await pebble.root();
  const serial = await servedSerial(replica.proxyPort, NAME, root);
  assert.match(serial, /^[0-9A-F]+$/);
  // No key material in the status API.
  const raw = (await replica.api('GET', '/api/certificates')).body;
  assert.doesNotMatch(raw, /PRIVATE KEY|BEGIN CERTIFICATE/);
});

function storeArgs(dir: string): string[] {
  return process.env.SWY_ACME_TEST_MEMORY ? [] : ['--store', `file:${join(dir, 'routes.toml')}`];
}
