// The HTTP-01 responder on a real HTTP server: only GET/HEAD on the exact token path, the Host
// (port stripped) checked by the source, everything else left to the next handler.

import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { http01Answer } from '../../src/tls/acme/acme-manager.js';
import { createMemoryCertificates } from '../../src/store/memory-certificates.js';
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

test('HTTP-01 from the store: a token answers only under the exact name it was stored for', async (t) => {
  const store = createMemoryCertificates();
  // This replica manages both a.test and b.test; the token is for a.test only.
  await store.putChallenge({ type: 'http-01', name: 'a.test', token: TOKEN, keyAuthorization: `${TOKEN}.thumb` }, { ttlMs: 60_000 });
  const token2 = 'tok2_' + 'B'.repeat(30);
  await store.putChallenge({ type: 'http-01', name: 'b.test', token: token2, keyAuthorization: `${token2}.thumb` }, { ttlMs: 60_000 });
  const responder = createHttp01Responder({ http01: (token, host) => http01Answer(store, token, host) });
  const server = http.createServer((req, res) => {
    if (responder(req, res)) return;
    res.writeHead(299);
    res.end('next');
  });
  const port = await listen0(server);
  t.after(() => server.close());
  const get = (token: string, host: string) =>
    rawRequest(port, `GET /.well-known/acme-challenge/${token} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);

  assert.match(await get(TOKEN, 'a.test'), new RegExp(`^HTTP/1\\.1 200[^]*\\r\\n\\r\\n${TOKEN}\\.thumb$`));
  assert.match(await get(TOKEN, 'A.Test.:8080'), /^HTTP\/1\.1 200/, 'port stripped, case and trailing dot ignored');
  assert.match(await get(TOKEN, 'b.test'), /^HTTP\/1\.1 404/, "a.test's token under b.test (also managed here): 404");
  assert.match(await get(token2, 'a.test'), /^HTTP\/1\.1 404/, "b.test's token under a.test: 404");
  assert.match(await get(token2, 'b.test'), /^HTTP\/1\.1 200/);
  assert.match(await get(TOKEN, 'sub.a.test'), /^HTTP\/1\.1 404/);
});
