// How many data-plane workers the primary starts before it loads (prefork.ts): one per core it
// does not use itself while loading, at least one, never more than asked for. The first worker to
// have the table opens the public port, so it should not share a core with the others' boots.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { preforkCount } from '../../src/dataplane/proxy/prefork.js';

test('preforkCount: cores - 1, at least 1, at most the workers asked for', () => {
  assert.equal(preforkCount(2, 2), 1);
  assert.equal(preforkCount(2, 1), 1);
  assert.equal(preforkCount(2, 8), 2);
  assert.equal(preforkCount(8, 8), 7);
  assert.equal(preforkCount(16, 8), 7);
  assert.equal(preforkCount(3, 4), 3);
});
