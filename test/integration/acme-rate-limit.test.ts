// An ACME server that answers with a rate-limit problem and a Retry-After (Pebble 2.4 has no rate
// limits, so this is a small stub directory over HTTPS): the replica keeps running, names the
// problem in /api/certificates, and waits for the Retry-After (here 2 hours) before trying again.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { join } from 'node:path';
import type { CertStatus } from '../helpers/acme.js';
import { startSwitchyardProcess, waitFor } from '../helpers/servers.js';
import { tempDir } from '../helpers/temp.js';
import { testCert } from '../helpers/tls.js';

test('a rateLimited problem with Retry-After: the error is shown, the next attempt waits for Retry-After, no retry loop', async (t) => {
  const tls = testCert();
  const hits: string[] = [];
  const server = https.createServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => {
    hits.push(`${req.method} ${req.url}`);
    const base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    if (req.url === '/dir') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ newNonce: `${base}/nonce`, newAccount: `${base}/account`, newOrder: `${base}/order`, revokeCert: `${base}/revoke`, keyChange: `${base}/key` }));
      return;
    }
    if (req.url === '/nonce') {
      res.writeHead(200, { 'replay-nonce': `n${hits.length}`, 'cache-control': 'no-store' });
      res.end();
      return;
    }
    req.resume();
    res.writeHead(429, { 'content-type': 'application/problem+json', 'retry-after': '7200', 'replay-nonce': `n${hits.length}` });
    res.end(JSON.stringify({ type: 'urn:ietf:params:acme:error:rateLimited', detail: 'too many new accounts from this IP', status: 429 }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const dir = tempDir(t, 'swy-acme-rl-');
  const sw = await startSwitchyardProcess(t, ['--workers', '1', '--store', `file:${join(dir, 'routes.toml')}`, '--acme-domain', 'hub.test',
    '--acme-directory', `https://127.0.0.1:${(server.address() as AddressInfo).port}/dir`, '--acme-directory-ca', tls.cert]);
  let status: CertStatus | undefined;
  await waitFor(
    async () => {
      const r = await sw.api('GET', '/api/certificates');
      status = r.json<{ certificates: CertStatus[] }>().certificates.find((c) => c.lastError !== undefined);
      return status !== undefined;
    },
    20_000,
    `the failure in /api/certificates:\n${sw.output()}`,
  );
  assert.match(status!.lastError!, /too many new accounts/);
  assert.match(status!.lastError!, /rateLimited/);
  assert.equal(status!.attempts, 1);
  const wait = status!.nextRenewalAt! - Date.now();
  assert.ok(wait > 7_000_000 && wait <= 7_200_000, `next attempt in ${wait} ms (Retry-After: 7200 s)`);
  // One newAccount POST: no retry inside the client, no loop in the scheduler.
  assert.equal(hits.filter((h) => h === 'POST /account').length, 1, hits.join(', '));
  assert.equal(sw.proc.exitCode, null);
});
