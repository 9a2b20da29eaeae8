// Which etcd call failures mark a member as unreachable (skipped for a moment by the host gate in
// etcd-connection.ts). The messages are the ones grpc-js/etcd3 produced in
// test/integration/etcd-leader-change.test.ts: only a failed connect counts; calls broken on a
// live member's reset channel and errors the member answered never do (counting "Connection
// dropped" skipped all three members of a healthy cluster during an election).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isUnreachable } from '../../src/store/etcd-connection.js';

class GRPCUnavailableError extends Error {}
class GRPCDeadlineExceededError extends Error {}
class GRPCCancelledError extends Error {}

const cases: Array<[Error, boolean]> = [
  [new GRPCUnavailableError('14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:2379. Resolution note:'), true],
  [new GRPCUnavailableError('14 UNAVAILABLE: connect EHOSTUNREACH 10.0.0.9:2379'), true],
  [new GRPCUnavailableError('14 UNAVAILABLE: Connection dropped'), false],
  [new GRPCUnavailableError('14 UNAVAILABLE: read ECONNRESET'), false],
  [new GRPCUnavailableError('14 UNAVAILABLE: etcdserver: leader changed'), false],
  [new GRPCUnavailableError('14 UNAVAILABLE: etcdserver: request timed out'), false],
  [new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: Deadline exceeded after 3.000s,remote_addr=127.0.0.1:2379'), false],
  [new GRPCCancelledError('1 CANCELLED: Cancelled on client'), false],
  [new Error('connect ECONNREFUSED 127.0.0.1:2379'), false], // not a gRPC UNAVAILABLE: not etcd3's transport error
];

for (const [err, expected] of cases) {
  test(`${err.constructor.name} "${err.message.slice(0, 60)}": ${expected ? 'unreachable' : 'not unreachable'}`, () => {
    assert.equal(isUnreachable(err), expected);
  });
}

test('a code-14 error object without the class name counts the same way', () => {
  assert.equal(isUnreachable(Object.assign(new Error('No connection established. Last error: connect ECONNREFUSED'), { code: 14 })), true);
  assert.equal(isUnreachable(Object.assign(new Error('Connection dropped'), { code: 14 })), false);
});
