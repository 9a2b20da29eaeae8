import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EMPTY_TRIE, trieGet, trieMatch, trieRemove, trieSet, trieValues, type TrieNode } from '../../src/routing/trie.js';
import { RoutingTable } from '../../src/routing/table.js';

const segs = (p: string) => (p === '/' ? [] : p.slice(1).split('/'));

test('longest prefix by whole segment', () => {
  let t: TrieNode<string> = EMPTY_TRIE;
  for (const p of ['/', '/bar', '/bar/baz', '/user/mary']) t = trieSet(t, segs(p), p);
  const cases = [
    { desc: 'exact', path: '/bar', want: '/bar' },
    { desc: 'below a prefix', path: '/bar/x/y', want: '/bar' },
    { desc: 'not a partial segment', path: '/barx', want: '/' },
    { desc: 'deeper prefix wins', path: '/bar/baz/q', want: '/bar/baz' },
    { desc: 'root fallback', path: '/nothing/here', want: '/' },
    { desc: 'trailing slash', path: '/user/mary/', want: '/user/mary' },
    { desc: 'sibling prefix is not a match', path: '/user/maryann', want: '/' },
  ];
  for (const c of cases) assert.equal(trieMatch(t, segs(c.path)), c.want, c.desc);
});

test('no root route: unmatched paths return undefined', () => {
  const t = trieSet(EMPTY_TRIE as TrieNode<string>, ['a'], 'a');
  assert.equal(trieMatch(t, ['b']), undefined);
  assert.equal(trieMatch(t, []), undefined);
});

test('persistent: old roots never change', () => {
  const t1 = trieSet(EMPTY_TRIE as TrieNode<string>, ['a', 'b'], 'ab');
  const t2 = trieSet(t1, ['a', 'c'], 'ac');
  const t3 = trieRemove(t2, ['a', 'b']);
  assert.equal(trieGet(t1, ['a', 'c']), undefined);
  assert.equal(trieGet(t2, ['a', 'b']), 'ab');
  assert.equal(trieGet(t3, ['a', 'b']), undefined);
  assert.equal(trieGet(t3, ['a', 'c']), 'ac');
  assert.equal(trieRemove(t3, ['zz']), t3, 'removing an absent key returns the same root');
});

test('remove prunes empty branches but keeps intermediate values', () => {
  let t: TrieNode<string> = EMPTY_TRIE;
  t = trieSet(t, ['a'], 'a');
  t = trieSet(t, ['a', 'b', 'c'], 'abc');
  t = trieRemove(t, ['a', 'b', 'c']);
  assert.equal(trieMatch(t, ['a', 'b', 'c']), 'a');
  t = trieRemove(t, ['a']);
  assert.equal(t.children, undefined);
});

test('large fan-out is sharded and stays correct through growth and shrink', () => {
  let t: TrieNode<number> = EMPTY_TRIE;
  const n = 5000;
  for (let i = 0; i < n; i++) t = trieSet(t, ['user', `u${i}`], i);
  const user = t.children?.kind === 'flat' ? t.children.map.get('user') : undefined;
  assert.equal(user?.children?.kind, 'sharded');
  for (let i = 0; i < n; i += 97) assert.equal(trieMatch(t, ['user', `u${i}`, 'api']), i);
  assert.equal([...trieValues(t)].length, n);
  for (let i = 0; i < n - 10; i++) t = trieRemove(t, ['user', `u${i}`]);
  const user2 = t.children?.kind === 'flat' ? t.children.map.get('user') : undefined;
  assert.equal(user2?.children?.kind, 'flat');
  assert.equal([...trieValues(t)].length, 10);
  assert.equal(trieMatch(t, ['user', `u${n - 1}`]), n - 1);
  assert.equal(trieMatch(t, ['user', 'u0']), undefined);
});

test('RoutingTable: apply returns a new table, skips bad targets, counts size', () => {
  const t0 = RoutingTable.empty({ hostRouting: false });
  const bad: string[] = [];
  const t1 = t0.apply(
    [
      { type: 'put', path: '/a', data: { target: 'http://127.0.0.1:1' } },
      { type: 'put', path: '/b', data: { target: 'ftp://x' } },
      { type: 'put', path: '/c', data: { target: 'http://127.0.0.1:3/base' } },
    ],
    3,
    (b) => bad.push(b.path),
  );
  assert.deepEqual(bad, ['/b']);
  assert.equal(t0.size, 0);
  assert.equal(t1.size, 2);
  assert.equal(t1.version, 3);
  assert.equal(t1.match(['c', 'x'])?.upstream.pathname, '/base');
  const t2 = t1.apply([{ type: 'delete', path: '/a' }, { type: 'delete', path: '/nope' }], 4);
  assert.equal(t2.size, 1);
  assert.equal(t1.get('/a')?.path, '/a');
  assert.throws(() => {
    (t2 as unknown as { version: number }).version = 9;
  });
});

test('RoutingTable: host routing matches hosts case-insensitively, keeps keys as given', () => {
  const t = RoutingTable.empty({ hostRouting: true }).apply(
    [{ type: 'put', path: '/Example.COM/app', data: { target: 'http://127.0.0.1:1' } }],
    1,
  );
  const r = t.match(['example.com', 'app', 'x']);
  assert.equal(r?.path, '/Example.COM/app');
  assert.equal(r?.pathDepth, 1);
});

test('RoutingTable.build equals one-by-one apply, and handles 100k routes', () => {
  const routes: [string, { target: string }][] = [];
  for (let i = 0; i < 2000; i++) routes.push([`/user/u${i}`, { target: `http://127.0.0.1:${1 + (i % 1000)}` }]);
  routes.push(['/', { target: 'http://127.0.0.1:9' }], ['/bad', { target: 'nope' }]);
  const bad: string[] = [];
  const built = RoutingTable.build({ hostRouting: false }, routes, 7, (b) => bad.push(b.path));
  const applied = RoutingTable.empty({ hostRouting: false }).apply(routes.map(([path, data]) => ({ type: 'put' as const, path, data })), 7);
  assert.deepEqual(bad, ['/bad']);
  assert.equal(built.size, applied.size);
  for (const p of ['/user/u0/x', '/user/u1999', '/user/u2000', '/other']) {
    assert.equal(built.match(p.slice(1).split('/'))?.path, applied.match(p.slice(1).split('/'))?.path, p);
  }
  const big: [string, { target: string }][] = [];
  for (let i = 0; i < 100_000; i++) big.push([`/user/u${i}`, { target: 'http://127.0.0.1:1' }]);
  const t = RoutingTable.build({ hostRouting: false }, big, 1);
  assert.equal(t.size, 100_000);
  assert.equal(t.match(['user', 'u99999', 'api'])?.path, '/user/u99999');
  assert.equal(t.match(['user', 'u100000'])?.path, undefined);
});
