// What the three CertificateStore lock implementations share: the handle given to a holder, and
// the waiting loop of lock() over a backend's tryLock (bounded by waitMs, woken early by a
// backend's "a lock was freed" signal where it has one, otherwise backing off up to ttl/4).

import { ErrorCode, SwitchyardError } from '../errors.js';
import { DEFAULT_LOCK_TTL_MS, DEFAULT_LOCK_WAIT_MS, type CertLock, type WaitLockOptions } from './certificate-store.js';
import { certInvalid } from './certificate-codec.js';

export function lockTtl(ttlMs: number | undefined): number {
  const ttl = ttlMs ?? DEFAULT_LOCK_TTL_MS;
  if (!Number.isFinite(ttl) || ttl <= 0) throw certInvalid('lock ttl', String(ttlMs), 'must be a positive number of ms');
  return ttl;
}

/**
 * A holder's handle. `giveUp` runs once, on the first release() or loss: it removes the lock from
 * the backend (release) or stops keeping it (loss); its failure is the backend's to log.
 */
export class LockHandle implements CertLock {
  readonly #controller = new AbortController();
  readonly #giveUp: (lost: boolean) => Promise<void>;
  #done: Promise<void> | undefined;

  constructor(giveUp: (lost: boolean) => Promise<void>) {
    this.#giveUp = giveUp;
  }

  get lost(): AbortSignal {
    return this.#controller.signal;
  }

  /** The backend can no longer vouch for the lock: abort `lost` and stop keeping it. */
  markLost(reason: string): void {
    if (this.#done) return;
    this.#done = this.#giveUp(true).catch(() => {});
    this.#controller.abort(new SwitchyardError(ErrorCode.STORE_UNAVAILABLE, `certificate lock lost: ${reason}`));
  }

  release(): Promise<void> {
    if (!this.#done) {
      this.#done = this.#giveUp(false).catch(() => {});
      this.#controller.abort(new SwitchyardError(ErrorCode.STORE_UNAVAILABLE, 'certificate lock released'));
    }
    return this.#done;
  }
}

/**
 * lock(): tryLock until it succeeds, `waitMs` passes (SWY_CERT_LOCK_TIMEOUT) or `signal` aborts.
 * `onFreed` (optional) subscribes to "a lock may have been freed" to retry at once.
 */
export async function waitForLock(
  name: string,
  tryLock: () => Promise<CertLock | undefined>,
  options: WaitLockOptions,
  onFreed?: (wake: () => void) => () => void,
): Promise<CertLock> {
  const waitMs = options.waitMs ?? DEFAULT_LOCK_WAIT_MS;
  const maxDelay = Math.max(20, Math.min(1000, lockTtl(options.ttlMs) / 4));
  const deadline = Date.now() + waitMs;
  let delay = 20;
  for (;;) {
    options.signal?.throwIfAborted();
    const lock = await tryLock();
    if (lock) {
      if (options.signal?.aborted) {
        await lock.release();
        options.signal.throwIfAborted();
      }
      return lock;
    }
    const left = deadline - Date.now();
    if (left <= 0) throw new SwitchyardError(ErrorCode.CERT_LOCK_TIMEOUT, `certificate lock ${JSON.stringify(name)} still held elsewhere after ${waitMs} ms`, { details: { name } });
    await pause(Math.min(left, delay * (0.5 + Math.random())), options.signal, onFreed);
    delay = Math.min(delay * 2, maxDelay);
  }
}

function pause(ms: number, signal: AbortSignal | undefined, onFreed?: (wake: () => void) => () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: unknown): void => {
      clearTimeout(timer);
      unsubscribe?.();
      signal?.removeEventListener('abort', aborted);
      if (err === undefined) resolve();
      else reject(err);
    };
    const aborted = (): void => done(signal!.reason);
    const timer = setTimeout(() => done(), ms);
    const unsubscribe = onFreed?.(() => done());
    signal?.addEventListener('abort', aborted, { once: true });
  });
}
