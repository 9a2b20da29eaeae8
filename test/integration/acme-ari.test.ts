// ACME Renewal Information (RFC 9773) against a stub directory over HTTPS (Debian's Pebble 2.4 has
// no ARI): for each stored certificate the replica asks renewalInfo/<certID>, keeps the window and
// the point it chose in the name's metadata (/api/certificates `ari`, `nextRenewalAt`), honours
// the answer's Retry-After (no second ask meanwhile), and renews early when the CA's window has
// already begun (here the order then fails at the stub: the attempt is what is checked).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { ariCertId } from '../../src/tls/acme/ari.js';
import type { CertStatus } from '../helpers/acme.js';
import { startSwitchyardProcess, waitFor, waitForLine } from '../helpers/servers.js';
import { tempDir } from '../helpers/temp.js';
import { testCert } from '../helpers/tls.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** A self-signed certificate with an AKI for `name`, valid 30 days, stored as the file store keeps it. */
function storeCert(dir: string, name: string): string {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '30', '-subj', `/CN=${name}`,
    '-addext', `subjectAltName=DNS:${name}`, '-addext', 'subjectKeyIdentifier=hash', '-addext', 'authorityKeyIdentifier=keyid:always'], { stdio: 'ignore' });
  const certPem = readFileSync(cert, 'utf8');
  const now = Date.now();
  const certs = join(dir, 'routes.toml.certs', 'certs');
  mkdirSync(certs, { recursive: true });
  writeFileSync(join(certs, `${name}.json`), JSON.stringify({ name, certPem, keyPem: readFileSync(key, 'utf8'), notBefore: now - 60_000, notAfter: now + 30 * DAY - 120_000, storedAt: now }));
  return certPem;
}

interface AriStatus extends CertStatus {
  ari?: { windowStart: number; windowEnd: number; selectedAt: number; retryAfter: number };
}

test('ARI: the suggested window is fetched per certificate, a point inside it chosen and stored, Retry-After honoured; a window already open renews now', async (t) => {
  const dir = tempDir(t, 'swy-acme-ari-');
  const later = storeCert(dir, 'later.test');
  const now = storeCert(dir, 'now.test');
  const t0 = Date.now();
  const windows = new Map<string, { start: number; end: number }>([
    [ariCertId(later)!, { start: t0 + 2 * DAY, end: t0 + 3 * DAY }],
    [ariCertId(now)!, { start: t0 - 2 * HOUR, end: t0 - HOUR }],
  ]);
  const tls = testCert();
  const hits: string[] = [];
  const server = https.createServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => {
    hits.push(`${req.method} ${req.url}`);
    req.resume();
    const base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    if (req.url === '/dir') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ newNonce: `${base}/nonce`, newAccount: `${base}/account`, newOrder: `${base}/order`, revokeCert: `${base}/revoke`, keyChange: `${base}/key`, renewalInfo: `${base}/ari` }));
      return;
    }
    const w = req.url?.startsWith('/ari/') ? windows.get(req.url.slice('/ari/'.length)) : undefined;
    if (w) {
      res.writeHead(200, { 'content-type': 'application/json', 'retry-after': '3600' });
      res.end(JSON.stringify({ suggestedWindow: { start: new Date(w.start).toISOString(), end: new Date(w.end).toISOString() } }));
      return;
    }
    res.writeHead(503, { 'content-type': 'application/problem+json' });
    res.end(JSON.stringify({ type: 'urn:ietf:params:acme:error:serverInternal', detail: 'stub: no orders here', status: 503 }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());

  const sw = await startSwitchyardProcess(t, ['--workers', '1', '--store', `file:${join(dir, 'routes.toml')}`, '--acme-domain', 'later.test', '--acme-domain', 'now.test',
    '--acme-directory', `https://127.0.0.1:${(server.address() as AddressInfo).port}/dir`, '--acme-directory-ca', tls.cert]);
  let list: AriStatus[] = [];
  await waitFor(
    async () => {
      list = (await sw.api('GET', '/api/certificates')).json<{ certificates: AriStatus[] }>().certificates;
      return list.find((c) => c.name === 'later.test')?.ari !== undefined && list.find((c) => c.name === 'now.test')?.lastError !== undefined;
    },
    20_000,
    `the ARI window of later.test and the early order of now.test:\n${sw.output()}`,
  );
  const later1 = list.find((c) => c.name === 'later.test')!;
  const w = windows.get(ariCertId(later)!)!;
  assert.equal(later1.served, true);
  assert.equal(later1.ari!.windowStart, w.start);
  assert.equal(later1.ari!.windowEnd, w.end);
  assert.ok(later1.ari!.selectedAt >= w.start && later1.ari!.selectedAt < w.end, JSON.stringify(later1.ari));
  assert.equal(later1.nextRenewalAt, later1.ari!.selectedAt, 'renewal at the chosen point, not at the 1/3 ratio (day 20)');
  const recheck = later1.ari!.retryAfter - Date.now();
  assert.ok(recheck > 3_500_000 && recheck <= 3_600_000, `next ARI check in ${recheck} ms (Retry-After: 3600)`);
  await waitForLine(() => sw.output(), /ACME: renewal window for later\.test from the CA/);
  assert.doesNotMatch(sw.output(), /ordering a certificate for later\.test/);

  // now.test: its window began two hours ago, so it was renewed at once (20 days before the ratio).
  const now1 = list.find((c) => c.name === 'now.test')!;
  assert.equal(now1.served, true, 'still serving the old certificate');
  await waitForLine(() => sw.output(), /ACME: ordering a certificate for now\.test/);
  assert.match(now1.lastError!, /Failed to get nonce/, 'the stub answers the order 503');

  // Retry-After honoured: one renewalInfo request per certificate, also after more status reads.
  const until = Date.now() + 1_000;
  while (Date.now() < until) await sw.api('GET', '/api/certificates');
  assert.equal(hits.filter((h) => h === `GET /ari/${ariCertId(later)!}`).length, 1, hits.join(', '));
  assert.equal(sw.proc.exitCode, null);
});
