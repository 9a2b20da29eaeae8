// Certificate files replaced on disk (--ssl-cert/--ssl-key) with two data-plane workers: the new
// certificate is served to new connections within a second, an open TLS connection goes on with
// the old one, and a mismatched or half-written pair is refused (log line) with the running one kept.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { test } from 'node:test';
import tls, { type TLSSocket } from 'node:tls';
import { startBackend, startLoadClient, startSwitchyardProcess, waitFor, waitForLine, type LoadClient } from '../helpers/servers.js';
import { tempDir } from '../helpers/temp.js';

interface Pair {
  key: Buffer;
  cert: Buffer;
  fingerprint: string;
}

function makePair(dir: string, name: string): Pair {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const pem = readFileSync(cert);
  return { key: readFileSync(key), cert: pem, fingerprint: new crypto.X509Certificate(pem).fingerprint256 };
}

/**
 * HTTPS requests until stopped: three loops on keep-alive connections, one on a new connection
 * (a new handshake) per request, so requests meet each certificate. Counts answers and failures.
 */
function tlsLoad(port: number): LoadClient {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 3, rejectUnauthorized: false });
  const url = `https://127.0.0.1:${port}/`;
  return startLoadClient(
    (k, cb) => https.get(url, k === 0 ? { agent: false, rejectUnauthorized: false, headers: { connection: 'close' } } : { agent }, cb),
    () => agent.destroy(),
  );
}

/** The certificate a new TLS connection to `port` is served (its SHA-256 fingerprint). */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => {
      const f = s.getPeerCertificate().fingerprint256;
      s.destroy();
      resolve(f);
    });
    s.once('error', reject);
  });
}

test('a certificate replaced on disk is served to new connections within a second; open connections keep theirs; a bad pair is refused', async (t) => {
  const dir = tempDir(t, 'swy-cert-reload-');
  const a = makePair(dir, 'a');
  const b = makePair(dir, 'b');
  const c = makePair(dir, 'c');
  const keyFile = join(dir, 'server.key');
  const certFile = join(dir, 'server.crt');
  writeFileSync(keyFile, a.key);
  writeFileSync(certFile, a.cert);
  const backend = await startBackend(t);
  const p = await startSwitchyardProcess(t, ['--ssl-key', keyFile, '--ssl-cert', certFile, '--workers', '2']);
  assert.equal((await p.api('POST', '/api/routes/', { target: backend.url })).status, 201);

  // An open keep-alive TLS connection, served certificate a.
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
  t.after(() => agent.destroy());
  const get = (): Promise<{ status: number; fingerprint: string; reused: boolean; socket: TLSSocket }> =>
    new Promise((resolve, reject) => {
      const req = https.get(`https://127.0.0.1:${p.proxyPort}/`, { agent }, (res) => {
        res.resume();
        res.on('end', () => {
          const socket = req.socket as TLSSocket;
          resolve({ status: res.statusCode!, fingerprint: socket.getPeerCertificate().fingerprint256, reused: req.reusedSocket, socket });
        });
      });
      req.once('error', reject);
    });
  const first = await get();
  assert.equal(first.status, 200);
  assert.equal(first.fingerprint, a.fingerprint);
  assert.equal(await servedFingerprint(p.proxyPort), a.fingerprint);
  const load = tlsLoad(p.proxyPort);
  t.after(() => load.stop());

  // Renamed over (as certbot and most deploy tools do): key first, then the certificate.
  const t0 = Date.now();
  writeFileSync(keyFile + '.tmp', b.key);
  renameSync(keyFile + '.tmp', keyFile);
  writeFileSync(certFile + '.tmp', b.cert);
  renameSync(certFile + '.tmp', certFile);
  let ms = Infinity;
  await waitFor(
    async () => {
      if ((await servedFingerprint(p.proxyPort)) !== b.fingerprint) return false;
      ms = Date.now() - t0;
      return true;
    },
    5000,
    'the new certificate',
  );
  assert.ok(ms <= 1000, `new certificate served after ${ms} ms`);
  // Every new connection (both workers) gets it.
  for (let i = 0; i < 12; i++) assert.equal(await servedFingerprint(p.proxyPort), b.fingerprint);
  // The open connection goes on, with the certificate it was opened with.
  const again = await get();
  assert.equal(again.status, 200);
  assert.equal(again.reused, true);
  assert.equal(again.socket, first.socket);
  assert.equal(again.fingerprint, a.fingerprint);

  // Written in place, the certificate alone: it does not match the key; refused, b kept.
  const refusals = (): number => p.output().match(/certificate and key cannot be used together/g)?.length ?? 0;
  writeFileSync(certFile, c.cert);
  await waitFor(() => refusals() >= 1, 5000, 'the refusal of a mismatched pair');
  await waitForLine(() => p.output(), /reload \(certificate files\): configuration not applied, the running configuration is kept: ssl-cert\/ssl-key: certificate and key cannot be used together/);
  for (let i = 0; i < 6; i++) assert.equal(await servedFingerprint(p.proxyPort), b.fingerprint);
  // Then its key: the pair is whole again and served.
  writeFileSync(keyFile, c.key);
  await waitFor(async () => (await servedFingerprint(p.proxyPort)) === c.fingerprint, 5000, 'certificate c');

  // Half-written (a truncated PEM): refused, c kept.
  const before = refusals();
  writeFileSync(certFile, a.cert.subarray(0, Math.floor(a.cert.length / 2)));
  await waitFor(() => refusals() > before, 5000, 'the refusal of a truncated certificate');
  for (let i = 0; i < 6; i++) assert.equal(await servedFingerprint(p.proxyPort), c.fingerprint);
  // Requests still flow on the connection opened before all of this.
  assert.equal((await get()).status, 200);
  const result = await load.stop();
  assert.deepEqual(result.failed, [], 'no request failed through the certificate changes');
  assert.ok(result.ok > 20, `${result.ok} requests`);
});

test('the API server certificate (--api-ssl-cert/--api-ssl-key) is swapped the same way', async (t) => {
  const dir = tempDir(t, 'swy-api-cert-reload-');
  const a = makePair(dir, 'a');
  const b = makePair(dir, 'b');
  const keyFile = join(dir, 'api.key');
  const certFile = join(dir, 'api.crt');
  writeFileSync(keyFile, a.key);
  writeFileSync(certFile, a.cert);
  const p = await startSwitchyardProcess(t, ['--api-ssl-key', keyFile, '--api-ssl-cert', certFile, '--workers', '1']);
  assert.equal(await servedFingerprint(p.apiPort), a.fingerprint);
  const t0 = Date.now();
  writeFileSync(keyFile, b.key);
  writeFileSync(certFile, b.cert);
  await waitFor(async () => (await servedFingerprint(p.apiPort)) === b.fingerprint, 5000, 'the new API certificate');
  assert.ok(Date.now() - t0 <= 1500, `served after ${Date.now() - t0} ms`);
  await waitForLine(() => p.output(), /reload \(certificate files\): applied new api-ssl-cert\/api-ssl-key certificate/);
});
