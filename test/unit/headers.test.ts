import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rewriteLocation, upstreamPath } from '../../src/dataplane/proxy/headers.js';
import { parseTarget } from '../../src/routing/target.js';

test('upstream path: the four prepend-path / include-prefix combinations (CHP semantics)', () => {
  const withBase = parseTarget('http://127.0.0.1:9000/base');
  const bare = parseTarget('http://127.0.0.1:9000');
  // Route /user/mary (depth 2), request /user/mary/tree?x=1
  const cases = [
    { desc: 'prepend + include (default)', t: withBase, prepend: true, include: true, want: '/base/user/mary/tree?x=1' },
    { desc: 'prepend, no prefix', t: withBase, prepend: true, include: false, want: '/base/tree?x=1' },
    { desc: 'no prepend, include', t: withBase, prepend: false, include: true, want: '/user/mary/tree?x=1' },
    { desc: 'no prepend, no prefix', t: withBase, prepend: false, include: false, want: '/tree?x=1' },
    { desc: 'bare target default', t: bare, prepend: true, include: true, want: '/user/mary/tree?x=1' },
  ];
  for (const c of cases) assert.equal(upstreamPath(c.t, '/user/mary/tree', '?x=1', 2, c.prepend, c.include), c.want, c.desc);
});

test('upstream path: edge cases', () => {
  const withBase = parseTarget('http://h/base/?k=v');
  assert.equal(upstreamPath(withBase, '/user/mary', '', 2, true, false), '/base/?k=v', 'request equals prefix');
  assert.equal(upstreamPath(withBase, '/user/mary', '?a=1', 2, true, false), '/base/?k=v&a=1', 'queries merged');
  assert.equal(upstreamPath(parseTarget('http://h'), '/user/mary', '', 2, false, false), '/', 'nothing left');
  assert.equal(upstreamPath(parseTarget('http://h/b'), '/', '', 0, true, true), '/b/', 'root request');
});

test('location rewrite only for redirects pointing at the target', () => {
  const t = parseTarget('http://127.0.0.1:9000');
  assert.equal(rewriteLocation('http://127.0.0.1:9000/x?y', 302, t, 'hub.example:443', true, undefined), 'http://hub.example:443/x?y');
  assert.equal(rewriteLocation('http://127.0.0.1:9000/x', 301, t, 'hub.example', true, 'https'), 'https://hub.example/x');
  assert.equal(rewriteLocation('http://other:1/x', 302, t, 'hub', true, undefined), undefined);
  assert.equal(rewriteLocation('http://127.0.0.1:9000/x', 200, t, 'hub', true, undefined), undefined);
});

test('targets: schemes and errors', () => {
  assert.equal(parseTarget('http+unix://%2Ftmp%2Fa.sock/p').socketPath, '/tmp/a.sock');
  assert.equal(parseTarget('https://[::1]:8443/').hostname, '::1');
  assert.equal(parseTarget('https://x').port, 443);
  for (const bad of ['ftp://x', 'ws://x', 'not a url', '', 'http://', 'http://a b']) {
    assert.throws(() => parseTarget(bad), /target|scheme/, bad);
  }
  assert.throws(() => parseTarget(42), /Must specify 'target' as string/);
});
