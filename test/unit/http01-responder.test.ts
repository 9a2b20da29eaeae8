// The HTTP-01 responder on a real HTTP server: only GET/HEAD on the exact token path, the Host
// (port stripped) checked by the source, everything else left to the next handler.

import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { createHttp01Responder } from '../../src/tls/http01-responder.js';
import { listen0, rawRequest } from '../helpers/servers.js';

const TOKEN = 'tok_ABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789';

test('HTTP-01: answers the exact token path for the right Host only; other requests pass through', async (t) => {
  const asked: string[] = [];
  const responder = createHttp01Responder({
    async http01(token, host) {
      asked.push(`${token} ${host}`);
      return token === TOKEN && host === 'hub.test' ? `${TOKEN}.thumb` : undefined;
    },
  });
  const server = http.createServer((req, res) => {
    if (responder(req, res)) return;
    res.writeHead(299);
    res.end('next');
  });
  const port = await listen0(server);
  t.after(() => server.close());
  const get = (method: string, path: string, host: string) =>
    rawRequest(port, `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);

  const ok = await get('GET', `/.well-known/acme-challenge/${TOKEN}`, 'hub.test:80');
  assert.match(ok, /^HTTP\/1\.1 200/);
  assert.match(ok, new RegExp(`\\r\\n\\r\\n${TOKEN}\\.thumb$`));
  assert.match(await get('HEAD', `/.well-known/acme-challenge/${TOKEN}`, 'HUB.test'), /^HTTP\/1\.1 200/);
  // Another Host (DNS rebinding), an unknown token: 404 from the responder.
  assert.match(await get('GET', `/.well-known/acme-challenge/${TOKEN}`, 'evil.test'), /^HTTP\/1\.1 404/);
  assert.match(await get('GET', `/.well-known/acme-challenge/${'x'.repeat(43)}`, 'hub.test'), /^HTTP\/1\.1 404/);
  // Not a challenge request: left to the next handler.
  assert.match(await get('POST', `/.well-known/acme-challenge/${TOKEN}`, 'hub.test'), /^HTTP\/1\.1 299/);
  assert.match(await get('GET', `/.well-known/acme-challenge/${TOKEN}/x`, 'hub.test'), /^HTTP\/1\.1 299/);
  assert.match(await get('GET', `/.well-known/acme-challenge/a.b`, 'hub.test'), /^HTTP\/1\.1 299/);
  assert.match(await get('GET', `/x/.well-known/acme-challenge/${TOKEN}`, 'hub.test'), /^HTTP\/1\.1 299/);
  // A found answer is cached (the HEAD did not ask again); misses and other hosts are asked each time.
  assert.deepEqual(asked, [`${TOKEN} hub.test`, `${TOKEN} evil.test`, `${'x'.repeat(43)} hub.test`]);
});
