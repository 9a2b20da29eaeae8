// Data-plane workers are forked with a pinned young generation (worker-exec-argv.ts, WORKER_SEMI_SPACE_MB):
// V8 then neither grows nor shrinks their new space with the allocation rate, which is what made a
// worker's RSS move in steps of 7-16 MiB while its live memory stayed flat (bench/README.md, soak).
// Checked on the real processes: what each worker (also a replacement) was started with, and that an
// operator's own semi-space option, on the command line or in NODE_OPTIONS, is left alone.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { WORKER_SEMI_SPACE_MB, workerExecArgv } from '../../src/dataplane/proxy/worker-exec-argv.js';
import { startSwitchyardProcess, waitFor } from '../helpers/servers.js';

const children = (pid: number): number[] => {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
};
/** The Node options of a process: its command line up to the script. */
const nodeArgsOf = (pid: number): string[] => {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  const script = argv.findIndex((a) => a.endsWith('main.js'));
  return argv.slice(1, script);
};
const PINNED = [`--min-semi-space-size=${WORKER_SEMI_SPACE_MB}`, `--max-semi-space-size=${WORKER_SEMI_SPACE_MB}`];

test('workerExecArgv: adds the pinned size to the primary\'s options unless a semi-space size is already chosen', () => {
  assert.deepEqual(workerExecArgv([], undefined), PINNED);
  assert.deepEqual(workerExecArgv(['--enable-source-maps'], ''), ['--enable-source-maps', ...PINNED]);
  // The operator's choice wins, wherever it is and however it is spelled.
  assert.deepEqual(workerExecArgv(['--max-semi-space-size=2'], undefined), ['--max-semi-space-size=2']);
  assert.deepEqual(workerExecArgv(['--min_semi_space_size=1'], undefined), ['--min_semi_space_size=1']);
  assert.deepEqual(workerExecArgv([], '--max-old-space-size=512 --max-semi-space-size=32'), []);
  assert.deepEqual(workerExecArgv(['--inspect=127.0.0.1:0'], '--max-old-space-size=512'), ['--inspect=127.0.0.1:0', ...PINNED]);
});

test('--workers 2 (processes): every worker, also a replacement, runs with the pinned semi-space size', { timeout: 60_000 }, async (t) => {
  const p = await startSwitchyardProcess(t, ['--workers', '2', '--worker-mode', 'processes']);
  const pid = p.proc.pid!;
  // A just-forked child shows the primary's command line until it has exec'd node, and an empty
  // one (read inside execve, or of a dying child: seen once as a worker "without options"): wait
  // for a non-empty command line of its own (bounded), then compare. A worker without the options never
  // matches: the wait fails.
  const execd = (w: number): boolean => {
    const cmdline = readFileSync(`/proc/${w}/cmdline`, 'utf8');
    return cmdline !== '' && cmdline !== readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  };
  await waitFor(() => children(pid).length === 2 && children(pid).every(execd), 10_000, 'two workers');
  assert.deepEqual(nodeArgsOf(pid), [], 'the primary runs as started');
  for (const w of children(pid)) assert.deepEqual(nodeArgsOf(w), PINNED, `worker ${w}`);

  const [victim] = children(pid);
  process.kill(victim!, 'SIGKILL');
  await waitFor(() => children(pid).length === 2 && !children(pid).includes(victim!) && children(pid).every(execd), 15_000, 'worker replaced');
  for (const w of children(pid)) assert.deepEqual(nodeArgsOf(w), PINNED, `worker ${w} (after a replacement)`);
});

test('an operator\'s own semi-space size is what the workers get (command line or NODE_OPTIONS)', { timeout: 60_000 }, async (t) => {
  // (--workers 1 runs the data plane in the primary: no fork, so 2.)
  const own = await startSwitchyardProcess(t, ['--workers', '2', '--worker-mode', 'processes'], {}, 30_000, ['--max-semi-space-size=2']);
  await waitFor(() => children(own.proc.pid!).length === 2, 10_000, 'two workers');
  for (const w of children(own.proc.pid!)) assert.deepEqual(nodeArgsOf(w), ['--max-semi-space-size=2'], 'inherited from the primary, nothing added');

  const env = await startSwitchyardProcess(t, ['--workers', '2', '--worker-mode', 'processes'], { NODE_OPTIONS: '--max-semi-space-size=8' });
  await waitFor(() => children(env.proc.pid!).length === 2, 10_000, 'two workers');
  for (const w of children(env.proc.pid!)) {
    assert.deepEqual(nodeArgsOf(w), [], 'nothing added on top of NODE_OPTIONS');
    assert.match(readFileSync(`/proc/${w}/environ`, 'utf8'), /(^|\0)NODE_OPTIONS=--max-semi-space-size=8(\0|$)/, 'and the worker has it');
  }
});
