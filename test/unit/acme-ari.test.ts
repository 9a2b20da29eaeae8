import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ariCertId, ariCertIdFrom, ariRecheckMs, ariRenewalAt, parseRenewalInfo, ARI_DEFAULT_RECHECK_MS } from '../../src/tls/acme/ari.js';
import { tempDir } from '../helpers/temp.js';

test('ARI certID: the worked example of RFC 9773 §4.1', () => {
  const aki = Buffer.from('69885B6B87464041E1B37B847BA0AE2CDE01C8D4', 'hex');
  assert.equal(ariCertIdFrom(aki, '0087654321'), 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE');
  // Node prints serials without the sign byte: it is added back for a high first bit.
  assert.equal(ariCertIdFrom(aki, '87654321'), 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE');
  assert.equal(ariCertIdFrom(aki, '0x1234'.slice(2)), 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.EjQ');
});

test('ARI certID of a real certificate: its AKI and serial as openssl prints them', (t) => {
  const dir = tempDir(t, 'swy-ari-');
  const key = join(dir, 'k.pem');
  const cert = join(dir, 'c.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=a.test',
    '-addext', 'subjectKeyIdentifier=hash', '-addext', 'authorityKeyIdentifier=keyid:always'], { stdio: 'ignore' });
  const text = execFileSync('openssl', ['x509', '-in', cert, '-noout', '-text', '-serial'], { encoding: 'utf8' });
  const akiHex = /X509v3 Authority Key Identifier:\s*\n\s*(?:keyid:)?([0-9A-F:]+)/.exec(text)![1]!.replace(/:/g, '');
  const serialHex = /serial=([0-9A-F]+)/.exec(text)![1]!;
  const id = ariCertId(readFileSync(cert, 'utf8'))!;
  const [a, s] = id.split('.');
  assert.equal(Buffer.from(a!, 'base64url').toString('hex').toUpperCase(), akiHex);
  const serialBytes = Buffer.from(s!, 'base64url').toString('hex').toUpperCase();
  assert.equal(serialBytes.replace(/^00/, ''), serialHex.replace(/^00/, ''));
  assert.ok(parseInt(serialBytes[0]!, 16) < 8, 'a positive DER INTEGER');
});

test('renewalInfo window: parsed, invalid ones refused, a random point inside, Retry-After honoured and clamped', () => {
  const w = parseRenewalInfo({ suggestedWindow: { start: '2026-12-01T00:00:00Z', end: '2026-12-03T00:00:00Z' } });
  assert.deepEqual(w, { windowStart: Date.parse('2026-12-01T00:00:00Z'), windowEnd: Date.parse('2026-12-03T00:00:00Z') });
  assert.equal(ariRenewalAt(w, () => 0), w.windowStart);
  assert.equal(ariRenewalAt(w, () => 0.5), w.windowStart + 86_400_000);
  for (let i = 0; i < 100; i++) {
    const at = ariRenewalAt(w);
    assert.ok(at >= w.windowStart && at < w.windowEnd);
  }
  assert.throws(() => parseRenewalInfo({ suggestedWindow: { start: '2026-12-03T00:00:00Z', end: '2026-12-01T00:00:00Z' } }), /not after/);
  assert.throws(() => parseRenewalInfo({ suggestedWindow: { start: 'x', end: '2026-12-01T00:00:00Z' } }), /no valid/);
  assert.throws(() => parseRenewalInfo('garbage'), /no valid/);
  assert.equal(ariRecheckMs('3600'), 3_600_000);
  assert.equal(ariRecheckMs(undefined), ARI_DEFAULT_RECHECK_MS);
  assert.equal(ariRecheckMs('1'), 60_000, 'at least a minute');
  assert.equal(ariRecheckMs('9999999'), 24 * 3_600_000, 'at most a day');
  const now = Date.parse('2026-12-01T00:00:00Z');
  assert.equal(ariRecheckMs('Tue, 01 Dec 2026 02:00:00 GMT', now), 7_200_000);
});
