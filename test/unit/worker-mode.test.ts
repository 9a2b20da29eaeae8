// worker-mode: auto is threads exactly where threads can serve the public port (Linux, Node with
// net's reusePort, a TCP listener); threads asked for where they cannot is an error naming why.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildConfig } from '../../src/config/config.js';
import { parseArgv } from '../../src/config/flags.js';
import { nodeHasReusePort, threadsUnsupported } from '../../src/config/worker-mode.js';
import { reviveBuffers } from '../../src/dataplane/proxy/worker-channel.js';

const cfg = (argv: string[]) => buildConfig(parseArgv(argv), {});
const TCP = { kind: 'tcp', port: 8000, host: undefined } as const;

test('reusePort: Node 22.12+, 23.1+, 24+', () => {
  for (const v of ['20.19.0', '22.11.0', '23.0.0', '18.20.0']) assert.equal(nodeHasReusePort(v), false, v);
  for (const v of ['22.12.0', '22.23.3', '23.1.0', '24.0.0', '25.1.2']) assert.equal(nodeHasReusePort(v), true, v);
});

test('threadsUnsupported names the reason: platform, Node version, unix socket', () => {
  assert.equal(threadsUnsupported(TCP, 'linux', '24.1.0'), undefined);
  assert.match(threadsUnsupported(TCP, 'darwin', '24.1.0')!, /needs Linux \(this is darwin\)/);
  assert.match(threadsUnsupported(TCP, 'linux', '20.19.0')!, /Node 20\.19\.0 has no reusePort/);
  assert.match(threadsUnsupported({ kind: 'unix', path: '/tmp/x.sock' }, 'linux', '24.1.0')!, /unix socket/);
});

test('worker-mode in the configuration: auto resolves here; threads where unsupported is an error', () => {
  const why = threadsUnsupported(TCP);
  assert.equal(cfg(['--workers', '2']).workerMode, why === undefined ? 'threads' : 'processes', 'auto');
  assert.equal(cfg(['--workers', '2', '--worker-mode', 'processes']).workerMode, 'processes');
  if (why === undefined) assert.equal(cfg(['--workers', '2', '--worker-mode', 'threads']).workerMode, 'threads');
  else assert.throws(() => cfg(['--workers', '2', '--worker-mode', 'threads']), /--worker-mode: threads are not available here: .*Node/);
  // A unix socket cannot be shared with SO_REUSEPORT: auto falls back, threads is refused.
  assert.equal(cfg(['--workers', '2', '--socket', '/tmp/sy-test.sock']).workerMode, 'processes');
  const unixWhy = threadsUnsupported({ kind: 'unix', path: '/tmp/sy-test.sock' })!;
  assert.throws(
    () => cfg(['--workers', '2', '--worker-mode', 'threads', '--socket', '/tmp/sy-test.sock']),
    (e: Error) => e.message.startsWith(`--worker-mode: threads are not available here: ${unixWhy}`),
  );
  // One worker runs in the main process: nothing to refuse.
  assert.doesNotThrow(() => cfg(['--workers', '1', '--worker-mode', 'threads', '--socket', '/tmp/sy-test.sock']));
  assert.throws(() => cfg(['--worker-mode', 'fibers']), /--worker-mode: must be one of auto, threads, processes; got 'fibers'/);
});

test('reviveBuffers: a structured clone of the Config gets its Buffers back, the rest unchanged', () => {
  const config = { ssl: { key: Buffer.from('k'), ca: [Buffer.from('a')], ciphers: 'X' }, port: 1, list: ['a'], none: undefined };
  const cloned = structuredClone(config);
  assert.equal(Buffer.isBuffer(cloned.ssl.key), false, 'a clone has plain Uint8Arrays');
  const revived = reviveBuffers(cloned);
  assert.ok(Buffer.isBuffer(revived.ssl.key) && Buffer.isBuffer(revived.ssl.ca[0]));
  assert.deepEqual(revived, config);
});
