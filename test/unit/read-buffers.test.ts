// The fast path's read-buffer free list (read-buffers.ts): what it hands out is never held by
// anyone else, what comes back is reused, and it keeps no more than its bound.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createReadBuffers } from '../../src/dataplane/proxy/read-buffers.js';

test('read buffers: distinct while out, reused when given back, bounded list', () => {
  const rb = createReadBuffers(1024, 2);
  const a = rb.take();
  const b = rb.take();
  assert.equal(a.length, 1024);
  assert.notEqual(a.buffer, b.buffer, 'two buffers out at once never share memory');
  assert.equal(rb.free(), 0);
  rb.give(a);
  assert.equal(rb.take(), a, 'a buffer given back is handed out again');
  rb.give(a);
  rb.give(b);
  rb.give(Buffer.allocUnsafeSlow(1024));
  assert.equal(rb.free(), 2, 'no more than max kept');
  rb.take();
  rb.give(Buffer.alloc(10));
  assert.equal(rb.free(), 1, 'a buffer of another size is not taken in');
});
