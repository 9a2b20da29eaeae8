// Bad input to automatic HTTPS (issue 14, "Bad input"), one replica on a file store, no real CA:
//  - an ACME directory that is down (connection refused) and one that answers garbage (500 with
//    HTML, then 200 with non-JSON): HTTPS keeps serving the certificates it has, a never-issued
//    name gets nothing and nothing crashes, the error is named in /api/certificates and in the
//    log, and the next attempt is backed off (the stub's requests counted over a bounded window);
//  - a corrupt certificate in the store (bad PEM written to its file): logged and named, the name
//    is re-ordered, every other name is still served.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { handshake, type CertStatus } from '../helpers/acme.js';
import { REFUSED_PORT, startSwitchyardProcess, waitFor, waitForLine, type SpawnedSwitchyard } from '../helpers/servers.js';
import { tempDir } from '../helpers/temp.js';
import { testCert } from '../helpers/tls.js';

const GOOD = 'good.test';
const NEW = 'new.test';
const CORRUPT = 'corrupt.test';

/** A self-signed certificate for `name`, valid 30 days (no renewal due), stored as the file store keeps it. */
function storeGoodCert(dir: string, name: string): string {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '30', '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`], { stdio: 'ignore' });
  const certPem = readFileSync(cert, 'utf8');
  const now = Date.now();
  writeCertFile(dir, name, { name, certPem, keyPem: readFileSync(key, 'utf8'), notBefore: now - 60_000, notAfter: now + 30 * 86_400_000 - 120_000, storedAt: now });
  return certPem;
}

function writeCertFile(dir: string, name: string, value: unknown): void {
  const certs = join(dir, 'routes.toml.certs', 'certs');
  mkdirSync(certs, { recursive: true });
  writeFileSync(join(certs, `${name}.json`), typeof value === 'string' ? value : JSON.stringify(value));
}

async function certificates(sw: SpawnedSwitchyard): Promise<CertStatus[]> {
  const r = await sw.api('GET', '/api/certificates');
  assert.equal(r.status, 200, r.body);
  return r.json<{ certificates: CertStatus[] }>().certificates;
}

async function failedStatus(sw: SpawnedSwitchyard, name: string): Promise<CertStatus> {
  let s: CertStatus | undefined;
  await waitFor(
    async () => {
      s = (await certificates(sw)).find((c) => c.name === name && c.lastError !== undefined);
      return s !== undefined;
    },
    30_000,
    `the failure for ${name} in /api/certificates:\n${sw.output()}`,
  );
  return s!;
}

async function startReplica(t: TestContext, dir: string, directory: string, domains: string[]): Promise<SpawnedSwitchyard> {
  const argv = ['--workers', '1', '--store', `file:${join(dir, 'routes.toml')}`, '--acme-directory', directory, '--acme-directory-ca', testCert().cert];
  for (const d of domains) argv.push('--acme-domain', d);
  return startSwitchyardProcess(t, argv);
}

/** Checks that the failure was backed off: the next attempt a minute or more away (±10%). */
function assertBackedOff(s: CertStatus): void {
  assert.equal(s.served, false);
  assert.equal(s.attempts, 1);
  const wait = s.nextRenewalAt! - Date.now();
  assert.ok(wait > 40_000, `next attempt in ${wait} ms`);
}

test('ACME directory down (connection refused): stored certificates keep being served, a never-issued name gets none, the error is named, retries back off', async (t) => {
  const dir = tempDir(t, 'swy-acme-bad-');
  const goodPem = storeGoodCert(dir, GOOD);
  const sw = await startReplica(t, dir, `https://127.0.0.1:${REFUSED_PORT}/dir`, [GOOD, NEW]);
  const s = await failedStatus(sw, NEW);
  // The socket's error, not acme-client's TypeError for the missing response.
  assert.match(s.lastError!, /^cannot reach the ACME server: connect ECONNREFUSED 127\.0\.0\.1:1$/);
  assertBackedOff(s);
  await waitForLine(() => sw.output(), new RegExp(`ACME: order for ${NEW.replace('.', '\\.')} failed \\(attempt 1`));

  // The stored name is served (verified against its own self-signed certificate) and never ordered.
  const good = (await certificates(sw)).find((c) => c.name === GOOD)!;
  assert.equal(good.served, true);
  assert.equal(good.lastError, undefined);
  const h = await handshake(sw.proxyPort, GOOD, goodPem);
  assert.equal(h.leaf.subject, `CN=${GOOD}`);
  h.socket.destroy();
  assert.doesNotMatch(sw.output(), new RegExp(`ordering a certificate for ${GOOD.replace('.', '\\.')}`));
  // The never-issued name: no certificate of its own (the handshake fails verification or is
  // refused), and the process is fine.
  await assert.rejects(handshake(sw.proxyPort, NEW, goodPem));
  assert.equal((await sw.api('GET', '/api/health')).status, 200);
  assert.equal(sw.proc.exitCode, null);
});

test('ACME directory answering garbage (500 HTML, then 200 non-JSON): named in /api/certificates and the log, no retry loop', async (t) => {
  const tls = testCert();
  const hits: string[] = [];
  const server = https.createServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => {
    hits.push(`${req.method} ${req.url}`);
    req.resume();
    if (req.url === '/dir500') {
      res.writeHead(500, { 'content-type': 'text/html' });
      res.end('<html><body>Internal Server Error</body></html>');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('this is not json {');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  for (const path of ['/dir500', '/dirjunk']) {
    const dir = tempDir(t, 'swy-acme-bad-');
    const goodPem = storeGoodCert(dir, GOOD);
    const sw = await startReplica(t, dir, `${base}${path}`, [GOOD, NEW]);
    const s = await failedStatus(sw, NEW);
    assert.match(s.lastError!, path === '/dir500' ? /^Attempting to read ACME directory returned error 500: https:\/\/127\.0\.0\.1:\d+\/dir500$/ : /^Unable to locate API resource URL in ACME directory: "newAccount"$/, s.lastError);
    assert.doesNotMatch(s.lastError!, /Cannot read properties/);
    assertBackedOff(s);
    await waitForLine(() => sw.output(), /ACME: order for new\.test failed \(attempt 1/);
    const good = await handshake(sw.proxyPort, GOOD, goodPem);
    good.socket.destroy();

    // No hammering: over a bounded window (2 s of status polls) the stub sees no new request.
    const seen = hits.filter((h) => h.endsWith(path)).length;
    assert.ok(seen >= 1 && seen <= 4, `${seen} requests for ${path} in the first attempt: ${hits.join(', ')}`);
    const until = Date.now() + 2_000;
    while (Date.now() < until) assert.equal((await certificates(sw)).find((c) => c.name === NEW)!.attempts, 1);
    assert.equal(hits.filter((h) => h.endsWith(path)).length, seen, 'no new directory request while backing off');
    assert.equal(sw.proc.exitCode, null);
    sw.proc.kill('SIGTERM');
    assert.equal(await sw.exited, 0);
  }
});

test('a corrupt certificate in the store: logged and named, re-ordered (here: the order fails, named), other names still served', async (t) => {
  const dir = tempDir(t, 'swy-acme-bad-');
  const goodPem = storeGoodCert(dir, GOOD);
  const now = Date.now();
  writeCertFile(dir, CORRUPT, {
    name: CORRUPT,
    certPem: '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n',
    keyPem: '-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n',
    notBefore: now,
    notAfter: now + 86_400_000,
  });
  const sw = await startReplica(t, dir, `https://127.0.0.1:${REFUSED_PORT}/dir`, [GOOD, CORRUPT]);
  const s = await failedStatus(sw, CORRUPT);
  assert.equal(s.served, false);
  // Named in the log with the store's reason; the name was re-ordered (and that order failed).
  await waitForLine(() => sw.output(), /ACME: the stored certificate for corrupt\.test is unusable: certificate store: certificate "corrupt\.test" is unusable/);
  await waitForLine(() => sw.output(), /ACME: ordering a certificate for corrupt\.test/);
  // Key material of the corrupt entry is not echoed anywhere.
  assert.doesNotMatch(sw.output(), /bm90IGEga2V5|BEGIN PRIVATE KEY/);
  const good = await handshake(sw.proxyPort, GOOD, goodPem);
  assert.equal(good.leaf.subject, `CN=${GOOD}`);
  good.socket.destroy();
  assert.equal((await certificates(sw)).find((c) => c.name === GOOD)!.served, true);
  assert.equal(sw.proc.exitCode, null);
});
