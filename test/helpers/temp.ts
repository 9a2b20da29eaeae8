// Temporary directories for tests, removed when the test (or the process) ends: a test run must
// leave nothing in the OS temp dir (etcd data dirs are ~120 MB each; one session's leftovers once
// filled the disk).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The part of node:test's TestContext used here (also satisfied by a suite's `after` hook owner). */
export interface AfterHook {
  after(fn: () => void | Promise<void>): void;
}

/** A fresh directory under the OS temp dir, removed (recursively) in `t.after`. */
export function tempDir(t: AfterHook, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const atExit = new Set<string>();
/** A fresh directory removed when this test process exits (for per-process caches such as a test CA). */
export function processTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (atExit.size === 0) process.once('exit', () => { for (const d of atExit) rmSync(d, { recursive: true, force: true }); });
  atExit.add(dir);
  return dir;
}
