// Automatic HTTPS across replicas, against a real ACME server (Pebble on loopback): renewal once
// for the fleet with a hot swap, three replicas on one etcd starting cold (one order), and a lock
// holder killed mid-order. Split from acme.test.ts to keep each file well inside the runner's
// per-file timeout.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { join } from 'node:path';
import { handshake, startAcmeReplica, servedSerial, waitServed } from '../helpers/acme.js';
import { startEtcd } from '../helpers/etcd.js';
import { startBalancer, startPebble } from '../helpers/pebble.js';
import { startBackend, waitFor, waitForLine } from '../helpers/servers.js';
import { tempDir } from '../helpers/temp.js';

const NAME = 'hub.test';

function storeArgs(dir: string): string[] {
  return ['--store', `file:${join(dir, 'routes.toml')}`];
}

test('renewal: with a third of the lifetime left the certificate is renewed once across the fleet, and an open connection survives the swap', async (t) => {
  const http = await startBalancer(t);
  const tlsLb = await startBalancer(t);
  const pebble = await startPebble(t, { httpPort: http.port, tlsPort: tlsLb.port, validitySeconds: 24 });
  const dir = tempDir(t, 'swy-acme-');
  const backend = await startBackend(t);
  const args = [...storeArgs(dir), '--acme-domain', NAME, '--acme-check-interval', '500', '--default-target', backend.url, '--keep-alive-timeout', '60000'];
  const a = await startAcmeReplica(t, pebble, args);
  const b = await startAcmeReplica(t, pebble, args);
  http.setBackends([a.redirectPort, b.redirectPort]);
  const first = await waitServed(a, NAME);
  await waitServed(b, NAME);
  assert.equal(pebble.orders(), 1);
  const root = await pebble.root();
  const oldSerial = await servedSerial(a.proxyPort, NAME, root);
  assert.equal(await servedSerial(b.proxyPort, NAME, root), oldSerial);

  // A keep-alive connection opened on the old certificate.
  const open = await handshake(a.proxyPort, NAME, root);
  t.after(() => open.socket.destroy());
  const ask = (): Promise<string> =>
    new Promise((resolve, reject) => {
      let got = '';
      const onData = (c: Buffer): void => {
        got += c.toString();
        const head = got.indexOf('\r\n\r\n');
        const len = /content-length: (\d+)/i.exec(got);
        const whole = head !== -1 && (len ? got.length - head - 4 >= Number(len[1]) : got.endsWith('0\r\n\r\n'));
        if (whole) {
          open.socket.off('data', onData);
          resolve(got);
        }
      };
      open.socket.on('data', onData);
      open.socket.once('error', reject);
      open.socket.write(`GET /x HTTP/1.1\r\nHost: ${NAME}\r\n\r\n`);
    });
  assert.match(await ask(), /^HTTP\/1\.1 200/);

  // Renewal is due at 2/3 of the 24 s lifetime; both replicas serve the new certificate.
  const renewed = await waitServed(a, NAME, 40_000, first.notAfter!);
  await waitServed(b, NAME, 10_000, first.notAfter!);
  assert.ok(Date.now() < first.notAfter!, 'renewed before the old certificate expired');
  const newSerial = await servedSerial(a.proxyPort, NAME, root);
  assert.notEqual(newSerial, oldSerial);
  assert.equal(await servedSerial(b.proxyPort, NAME, root), newSerial);
  assert.equal(pebble.orders(), 2, 'one renewal order for the whole fleet');
  assert.ok(renewed.notBefore! >= first.notBefore!);
  // The connection opened before the swap still works, on its old certificate.
  assert.match(await ask(), /^HTTP\/1\.1 200/);
  assert.equal(open.leaf.serialNumber, oldSerial, 'the open connection was made on the old certificate');
});

test('three replicas on one etcd start cold behind a round-robin balancer: exactly one order, all three serve the same certificate', async (t) => {
  const etcd = await startEtcd(t, 1);
  const http = await startBalancer(t);
  const tlsLb = await startBalancer(t);
  const pebble = await startPebble(t, { httpPort: http.port, tlsPort: tlsLb.port });
  const store = ['--store', `etcd://${etcd.endpoints}`, '--store-prefix', '/acme3/', '--acme-domain', NAME];
  // Started together; the third runs two data-plane workers (certificates reach them over IPC).
  const replicas = await Promise.all([
    startAcmeReplica(t, pebble, [...store, '--replica-id', 'a']),
    startAcmeReplica(t, pebble, [...store, '--replica-id', 'b']),
    startAcmeReplica(t, pebble, [...store, '--replica-id', 'c', '--workers', '2']),
  ]);
  http.setBackends(replicas.map((r) => r.redirectPort));
  for (const r of replicas) await waitServed(r, NAME);
  assert.equal(pebble.orders(), 1, 'one order for the whole fleet');
  const root = await pebble.root();
  const serials = await Promise.all(replicas.map((r) => servedSerial(r.proxyPort, NAME, root)));
  assert.equal(new Set(serials).size, 1, `the same certificate everywhere: ${serials.join(' ')}`);
  // Pebble validated through the balancer: replicas other than the orderer answered too.
  const answered = replicas.filter((r) => (http.counts.get(r.redirectPort) ?? 0) > 0).length;
  assert.ok(answered >= 2, `validations reached ${answered} replicas (${[...http.counts.values()].join(', ')})`);
  const ordering = replicas.filter((r) => /ACME: ordering a certificate/.test(r.output()));
  assert.equal(ordering.length, 1);
});

test('a replica killed mid-order: its lock expires and another replica obtains the certificate', async (t) => {
  const http = await startBalancer(t);
  const tlsLb = await startBalancer(t);
  const pebble = await startPebble(t, { httpPort: http.port, tlsPort: tlsLb.port });
  const dir = tempDir(t, 'swy-acme-');
  const args = [...storeArgs(dir), '--acme-domain', NAME, '--acme-check-interval', '1000'];
  // A orders; its validation waits in the balancer (no backend yet); A dies holding the lock.
  const a = await startAcmeReplica(t, pebble, args);
  await waitFor(() => pebble.orders() === 1 && /ACME: ordering/.test(a.output()), 20_000, 'A ordering');
  const b = await startAcmeReplica(t, pebble, args);
  a.proc.kill('SIGKILL');
  await a.exited;
  http.setBackends([b.redirectPort]);
  await waitServed(b, NAME, 55_000);
  await waitForLine(() => b.output(), /ACME: ordering a certificate for hub\.test/);
  const root = await pebble.root();
  assert.match(await servedSerial(b.proxyPort, NAME, root), /^[0-9A-F]+$/);
});
