// Standard output and standard error that may go away under a running Switchyard.
//
// Why: when the reader of a pipe or socket on fd 1/2 goes away (a supervisor restarted, a
// `| tee` killed, journald restarted, a test harness that died), every write fails with EPIPE
// and the stream emits 'error'. Unhandled, that is an uncaught exception; the uncaught-exception
// handler logs it to the same stderr, which fails again: the process spun at 100% CPU writing one
// line forever and stopped answering requests.
//
// Contract: after `guardStdio()` an error on either stream is never thrown; the stream is marked
// gone and `stdioGone(stream)` says so, so the logger and the access log drop their lines quietly
// (there is nowhere left to report it). Idempotent; per thread (a worker thread's stdio is its
// own stream object, relayed by the main thread).

import type { Writable } from 'node:stream';

const gone = new WeakSet<Writable>();
const guarded = new WeakSet<Writable>();

export function guardStdio(): void {
  for (const stream of [process.stdout, process.stderr] as Writable[]) {
    if (guarded.has(stream)) continue;
    guarded.add(stream);
    stream.on('error', () => gone.add(stream));
  }
}

/** True once a write to `stream` failed (its reader is gone): further writes are dropped. */
export function stdioGone(stream: Writable): boolean {
  return gone.has(stream);
}

/** Writes `text` to stderr unless it is gone. */
export function writeStderr(text: string): void {
  if (!gone.has(process.stderr)) process.stderr.write(text);
}
