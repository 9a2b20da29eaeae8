// Automatic HTTPS against a real ACME server (Let's Encrypt's Pebble, on loopback), one replica:
// HTTP-01 (Pebble's validation connects through a TCP balancer to the replica's --redirect-port)
// with the chain verified against Pebble's root and a restart that reuses the stored certificate;
// TLS-ALPN-01; an unreachable challenge; on-demand TLS. Fleet cases: acme-fleet.test.ts.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { join } from 'node:path';
import { handshake, startAcmeReplica, servedSerial, waitServed, type CertStatus } from '../helpers/acme.js';
import { REFUSED_PORT, request, startBackend, waitFor, waitForLine } from '../helpers/servers.js';
import { startBalancer, startPebble } from '../helpers/pebble.js';
import { tempDir } from '../helpers/temp.js';

const NAME = 'hub.test';

test('one replica on a file store gets a certificate over HTTP-01 and serves it (chain verified against the CA root); a restart reuses it without a new order', async (t) => {
  const http = await startBalancer(t);
  const tlsLb = await startBalancer(t);
  const pebble = await startPebble(t, { httpPort: http.port, tlsPort: tlsLb.port });
  const dir = tempDir(t, 'swy-acme-');
  const replica = await startAcmeReplica(t, pebble, [...storeArgs(dir), '--acme-domain', NAME, '--acme-email', 'ops@hub.test', '--metrics-ip', '127.0.0.1', '--metrics-port', '0']);
  const before = await request(`${replica.metricsUrl}/metrics`);
  assert.match(before.body, /^switchyard_acme_certificates 0$/m);
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
  // The switchyard_acme_* metrics (docs/metrics.md; metrics-coverage.test.ts leaves them to this test).
  const after = (await request(`${replica.metricsUrl}/metrics`)).body;
  assert.match(after, /^switchyard_acme_certificates 1$/m);
  assert.match(after, /^switchyard_acme_orders_total\{result="success"\} 1$/m);
  assert.match(after, new RegExp(`^switchyard_acme_certificate_not_after_seconds\\{name="hub\\.test"\\} ${Math.floor(status.notAfter! / 1000)}$`, 'm'));

  // A restart on the same store serves the stored certificate: no new order.
  replica.proc.kill('SIGTERM');
  assert.equal(await replica.exited, 0);
  const again = await startAcmeReplica(t, pebble, [...storeArgs(dir), '--acme-domain', NAME, '--acme-email', 'ops@hub.test']);
  http.setBackends([again.redirectPort]);
  await waitServed(again, NAME);
  assert.equal(await servedSerial(again.proxyPort, NAME, root), serial);
  assert.equal(pebble.orders(), 1, 'the restart ordered nothing');
  assert.doesNotMatch(again.output(), /ACME: ordering/);
});

function storeArgs(dir: string): string[] {
  return ['--store', `file:${join(dir, 'routes.toml')}`];
}

// The TLS port is the data plane's: with --workers 2 the workers (threads where supported, else
// processes) ask the primary for the challenge certificate and get the issued one pushed.
for (const workers of ['1', '2']) test(`TLS-ALPN-01 (--workers ${workers}): the challenge is answered on the TLS port; ordinary handshakes there are not disturbed`, async (t) => {
  const http = await startBalancer(t);
  const tlsLb = await startBalancer(t);
  const pebble = await startPebble(t, { httpPort: http.port, tlsPort: tlsLb.port });
  const dir = tempDir(t, 'swy-acme-');
  const replica = await startAcmeReplica(t, pebble, [...storeArgs(dir), '--acme-domain', NAME, '--acme-challenge', 'tls-alpn-01', '--workers', workers]);
  tlsLb.setBackends([replica.proxyPort]);
  await waitServed(replica, NAME);
  assert.equal(pebble.orders(), 1);
  assert.ok((tlsLb.counts.get(replica.proxyPort) ?? 0) >= 1, 'Pebble validated through the TLS port');
  assert.equal(http.counts.size, 0, 'nothing used HTTP-01');
  const root = await pebble.root();
  // h2 + http/1.1 offered: the real certificate, http/1.1 chosen.
  const h = await handshake(replica.proxyPort, NAME, root, ['h2', 'http/1.1']);
  assert.equal(h.socket.alpnProtocol, 'http/1.1');
  h.socket.destroy();
  // acme-tls/1 with no challenge pending: refused, not answered with the real certificate.
  await assert.rejects(handshake(replica.proxyPort, NAME, root, ['acme-tls/1']));
});

test('an unreachable challenge: the order fails, the error and the backoff are visible, the process keeps serving', async (t) => {
  const http = await startBalancer(t);
  const tlsLb = await startBalancer(t);
  const pebble = await startPebble(t, { httpPort: http.port, tlsPort: tlsLb.port });
  // Every validation connection is refused.
  http.setBackends([REFUSED_PORT]);
  const dir = tempDir(t, 'swy-acme-');
  const replica = await startAcmeReplica(t, pebble, [...storeArgs(dir), '--acme-domain', NAME]);
  let status: CertStatus | undefined;
  await waitFor(
    async () => {
      status = (await replica.certificates()).find((c) => c.name === NAME && c.lastError !== undefined);
      return status !== undefined;
    },
    40_000,
    'the failed order in /api/certificates',
  );
  assert.equal(status!.served, false);
  assert.equal(status!.attempts, 1);
  // Pebble's own words: the validation URL it could not read.
  assert.match(status!.lastError!, /http:\/\/hub\.test:\d+\/\.well-known\/acme-challenge\//);
  // The next attempt is a minute away (±10% jitter), not a tight loop.
  assert.ok(status!.nextRenewalAt! - Date.now() > 40_000, `next attempt at ${status!.nextRenewalAt}`);
  assert.equal(pebble.orders(), 1);
  assert.equal((await replica.api('GET', '/api/health')).status, 200);
  assert.equal(replica.proc.exitCode, null);
  await waitForLine(() => replica.output(), /ACME: order for hub\.test failed \(attempt 1/);
});

test('on-demand TLS: a name with a host route (or allowed by --acme-ask) gets a certificate at its first handshake; an unknown name never orders', async (t) => {
  const http = await startBalancer(t);
  const tlsLb = await startBalancer(t);
  const pebble = await startPebble(t, { httpPort: http.port, tlsPort: tlsLb.port });
  const dir = tempDir(t, 'swy-acme-');
  const backend = await startBackend(t);
  // --acme-ask allows asked.test only (2xx); every other name gets 403.
  const asked: string[] = [];
  const ask = await startBackend(t, 'ask', (req, res) => {
    const domain = new URL(req.url ?? '/', 'http://x').searchParams.get('domain') ?? '';
    asked.push(domain);
    res.writeHead(domain === 'asked.test' ? 204 : 403);
    res.end();
    return true;
  });
  const replica = await startAcmeReplica(t, pebble, [...storeArgs(dir), '--host-routing', '--acme-on-demand', '--acme-ask', `${ask.url}/allow`]);
  http.setBackends([replica.redirectPort]);
  assert.equal((await replica.api('POST', '/api/routes/known.test', { target: backend.url })).status, 201);
  const root = await pebble.root();
  await assert.rejects(handshake(replica.proxyPort, 'unknown.test', root));
  assert.equal(pebble.orders(), 0, 'an unknown SNI name caused no order');
  await waitForLine(() => replica.output(), /on-demand: refused a handshake for 'unknown\.test'/);
  const h = await handshake(replica.proxyPort, 'known.test', root);
  h.socket.destroy();
  assert.equal(pebble.orders(), 1);
  assert.ok(h.leaf.checkHost('known.test'));
  await assert.rejects(handshake(replica.proxyPort, 'unknown.test', root));
  assert.equal(pebble.orders(), 1);
  assert.ok(asked.includes('unknown.test'), 'the ask endpoint was asked about the unknown name');
  // No route, but the ask endpoint allows it.
  const a = await handshake(replica.proxyPort, 'asked.test', root);
  a.socket.destroy();
  assert.ok(a.leaf.checkHost('asked.test'));
  assert.equal(pebble.orders(), 2);
});
