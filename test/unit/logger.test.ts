// The logger keeps what an error field carries (message, code, stack, cause) in both formats,
// keeps fields as fields (never folded into the message), one event per line, secrets redacted.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode, SwitchyardError } from '../../src/errors.js';
import { createLogger } from '../../src/observability/logger.js';

function capture(format: 'text' | 'json') {
  const lines: string[] = [];
  return { lines, log: createLogger({ level: 'debug', format, write: (l) => lines.push(l) }) };
}

function nested(): SwitchyardError {
  const root = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:2379'), { code: 'ECONNREFUSED' });
  return new SwitchyardError(ErrorCode.STORE_UNAVAILABLE, 'route store (etcd) unavailable', { cause: root, details: { op: 'put' } });
}

test('json: an error field keeps message, name, code, details, stack and its cause chain', () => {
  const { lines, log } = capture('json');
  const e = nested();
  log.error('write failed', { err: e, path: '/user/a' });
  assert.equal(lines.length, 1);
  const o = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(o.msg, 'write failed', 'the message is not rewritten with the fields');
  assert.equal(o.path, '/user/a', 'fields stay fields');
  const err = o.err as Record<string, unknown>;
  assert.equal(err.message, 'route store (etcd) unavailable');
  assert.equal(err.name, 'SwitchyardError');
  assert.equal(err.code, 'SWY_STORE_UNAVAILABLE');
  assert.deepEqual(err.details, { op: 'put' });
  assert.equal(err.stack, e.stack);
  assert.match(String(err.stack), /logger\.test\.js/, 'the stack says where');
  const cause = err.cause as Record<string, unknown>;
  assert.equal(cause.message, 'connect ECONNREFUSED 127.0.0.1:2379');
  assert.equal(cause.code, 'ECONNREFUSED');
  assert.match(String(cause.stack), /^Error: connect ECONNREFUSED/);
});

test('text: err=<message> then err.code, err.stack, err.cause... on the same line', () => {
  const { lines, log } = capture('text');
  const e = nested();
  log.warn('write failed', { err: e, path: '/user/a b' });
  assert.equal(lines.length, 1);
  const line = lines[0]!;
  assert.ok(!line.includes('\n'), 'one event, one line');
  assert.match(line, /^\S+ \[Switchyard\] warn: write failed err="route store \(etcd\) unavailable" /);
  assert.ok(line.includes(' err.code=SWY_STORE_UNAVAILABLE'), line);
  assert.ok(line.includes(` err.stack=${JSON.stringify(e.stack)}`), 'the whole stack, escaped');
  assert.ok(line.includes(' err.cause="connect ECONNREFUSED 127.0.0.1:2379"'), line);
  assert.ok(line.includes(' err.cause.code=ECONNREFUSED'), line);
  assert.match(line, / err\.cause\.stack="Error: connect ECONNREFUSED/);
  assert.match(line, / path="\/user\/a b"$/, 'other fields after, quoted when needed');
});

test('a non-Error cause and a deep chain are kept without running away', () => {
  const { lines, log } = capture('json');
  let e: Error = new Error('level 0', { cause: 'a plain string cause' });
  for (let i = 1; i <= 10; i++) e = new Error(`level ${i}`, { cause: e });
  log.error('deep', { err: e });
  let c = (JSON.parse(lines[0]!) as { err: Record<string, unknown> }).err;
  let depth = 0;
  while (c.cause !== undefined && typeof c.cause === 'object') {
    c = c.cause as Record<string, unknown>;
    depth++;
  }
  assert.ok(depth >= 4 && depth <= 6, `cause chain cut at a bounded depth (${depth})`);
  const shallow = new Error('top', { cause: 'a plain string cause' });
  log.error('shallow', { err: shallow });
  assert.equal((JSON.parse(lines[1]!) as { err: { cause: unknown } }).err.cause, 'a plain string cause');
});

test('secret-looking fields are redacted, errors included; levels filter', () => {
  const lines: string[] = [];
  const log = createLogger({ level: 'warn', format: 'json', write: (l) => lines.push(l) });
  log.info('dropped');
  log.warn('kept', { token: 'abc', authError: new Error('x'), password: new Error('never shown') });
  assert.equal(lines.length, 1);
  const o = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(o.token, '[redacted]');
  assert.equal(o.password, '[redacted]');
  assert.equal((o.authError as { message: string }).message, 'x');
  assert.ok(!lines[0]!.includes('never shown'));
});

test('child loggers add their fields to every line', () => {
  const { lines, log } = capture('text');
  log.child({ worker: 2 }).error('boom', { err: new Error('bad') });
  assert.match(lines[0]!, / worker=2 err=bad err\.stack="Error: bad\\n/);
});
