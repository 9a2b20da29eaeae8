// GET /api/certificates describes what this replica serves: during a fleet renewal another replica
// stores the new certificate's metadata before this replica's store watch delivers the certificate,
// and the status must not claim the new validity for the old certificate still being served (the
// race that once made acme-fleet.test.ts's renewal check read a stale serial).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AcmeConfig } from '../../src/config/acme-config.js';
import { createSilentLogger } from '../../src/observability/logger.js';
import { createMemoryCertificates } from '../../src/store/memory-certificates.js';
import { createAcmeManager } from '../../src/tls/acme/acme-manager.js';
import { AcmeOrderError } from '../../src/tls/acme/acme-protocol.js';
import { selfSigned } from '../helpers/self-signed.js';

const config: AcmeConfig = {
  domains: ['hub.test'],
  email: undefined,
  directory: 'https://ca.invalid/dir',
  directoryCa: undefined,
  challenge: 'http-01',
  eab: undefined,
  onDemand: false,
  ask: undefined,
  checkIntervalMs: 60_000,
};

test('status: a served certificate reports its own validity, not newer stored metadata it has not installed', async (t) => {
  const store = createMemoryCertificates();
  const cert = selfSigned('hub.test');
  await store.putCertificate({ name: 'hub.test', certPem: cert.certPem, keyPem: cert.keyPem, notBefore: cert.notBefore, notAfter: cert.notAfter });
  const installed: string[] = [];
  const refuse = (): never => {
    throw new AcmeOrderError('no CA in this test', undefined, undefined);
  };
  const manager = createAcmeManager({
    config,
    store,
    log: createSilentLogger(),
    install: (name) => installed.push(name),
    hostAllowed: () => false,
    protocol: { createAccount: async () => refuse(), order: async () => refuse() },
  });
  t.after(() => manager.close());
  await manager.start();
  assert.deepEqual(installed, ['hub.test']);

  // Another replica renewed: its metadata is in the store, its certificate not yet installed here.
  const later = { notBefore: cert.notBefore + 3_600_000, notAfter: cert.notAfter + 3_600_000 };
  await store.putMeta({ name: 'hub.test', ...later, lastOrderAt: later.notBefore, attempts: 0 });
  const [s] = await manager.status();
  assert.equal(s!.served, true);
  assert.equal(s!.notAfter, cert.notAfter, 'the served certificate validity');
  assert.equal(s!.notBefore, cert.notBefore);
  assert.equal(s!.lastOrderAt, later.notBefore, 'other fleet-wide metadata is still shown');
});
