import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hostKey, parseRequestPath } from '../../src/routing/request-path.js';

test('request paths: normalised like CHP, decoded per segment, hostile input refused', () => {
  const cases: { desc: string; url: string; path?: string; query?: string; segments?: string[]; bad?: true }[] = [
    { desc: 'root', url: '/', path: '/', query: '', segments: [] },
    { desc: 'plain', url: '/user/mary/api?x=1&y=2', path: '/user/mary/api', query: '?x=1&y=2', segments: ['user', 'mary', 'api'] },
    { desc: 'trailing slash', url: '/a/b/', path: '/a/b/', segments: ['a', 'b', ''] },
    { desc: 'dots inside names are fine', url: '/a/.hidden/x.y..z', path: '/a/.hidden/x.y..z', segments: ['a', '.hidden', 'x.y..z'] },
    { desc: 'dot-dot resolved', url: '/user/bob/../mary/x', path: '/user/mary/x', segments: ['user', 'mary', 'x'] },
    { desc: 'dot-dot above root clamps', url: '/../../etc/passwd', path: '/etc/passwd', segments: ['etc', 'passwd'] },
    { desc: 'encoded dot-dot resolved', url: '/user/bob/%2e%2e/mary', path: '/user/mary', segments: ['user', 'mary'] },
    { desc: 'single dot removed', url: '/a/./b', path: '/a/b', segments: ['a', 'b'] },
    { desc: 'encoded space decoded', url: '/user/a%20b/tree', path: '/user/a%20b/tree', segments: ['user', 'a b', 'tree'] },
    { desc: 'encoded slash stays in its segment', url: '/user/a%2Fb/x', path: '/user/a%2Fb/x', segments: ['user', 'a/b', 'x'] },
    { desc: 'backslash read as slash (WHATWG)', url: '/user\\mary', path: '/user/mary', segments: ['user', 'mary'] },
    { desc: 'double leading slash kept as a path', url: '//evil.com/x', path: '//evil.com/x', segments: ['', 'evil.com', 'x'] },
    { desc: 'absolute-form request target', url: 'http://host:8000/user/x?q', path: '/user/x', query: '?q', segments: ['user', 'x'] },
    { desc: 'encoded NUL refused', url: '/user/a%00b', bad: true },
    { desc: 'malformed escape refused', url: '/user/%zz', bad: true },
    { desc: 'truncated escape refused', url: '/user/%E0%A4', bad: true },
  ];
  for (const c of cases) {
    const r = parseRequestPath(c.url);
    if (c.bad) {
      assert.equal(r, null, c.desc);
      continue;
    }
    assert.ok(r, c.desc);
    if (c.path !== undefined) assert.equal(r.path, c.path, c.desc);
    if (c.query !== undefined) assert.equal(r.query, c.query, c.desc);
    if (c.segments !== undefined) assert.deepEqual(r.segments, c.segments, c.desc);
  }
});

test('hostKey strips the port and lowercases', () => {
  assert.equal(hostKey('Example.COM:8000'), 'example.com');
  assert.equal(hostKey('[::1]:8000'), '[::1]');
  assert.equal(hostKey(undefined), '');
});
