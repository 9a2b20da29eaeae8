// File-store certificate locks: one lock file per name, shared by every process that uses the
// same directory (see file-certificates.ts for the contract). Kept apart from the value storage
// because it is the subtle part: exclusive create, heartbeat, stale takeover and release.
//
//  - A holder creates the lock file with O_EXCL, keeps it open, and rewrites its heartbeat in
//    place (same inode, so the file time moves) every ttl/3. After each heartbeat it checks that
//    the lock path is still its inode; `lost` fires when it is not.
//  - A lock whose file was not modified for its holder's ttlMs (read from the file; the caller's
//    when unreadable) is stale. Removing a lock file (stale takeover, release) happens only under
//    `<lock>.guard`, itself an O_EXCL file held for a few file operations: the guard holder
//    re-checks that the path is still the inode judged stale and still stale, then unlinks it.
//    Only the O_EXCL create that follows makes a holder, so two takers cannot both win, and
//    nobody removes the file of a holder whose heartbeat is younger than its TTL.
//  - Staleness compares file times with this host's clock: hosts sharing the directory need
//    clocks synchronised well within the TTL.

import { randomUUID } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { link, open, readFile, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { SwitchyardError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { LockHandle } from './certificate-lock.js';

/** A lock's removal guard older than this was left by a process that died holding it. */
const GUARD_STALE_MS = 10_000;

const isErrno = (e: unknown, code: string): boolean => (e as NodeJS.ErrnoException)?.code === code;

async function statIfAny(path: string): Promise<BigIntStats | undefined> {
  try {
    return await stat(path, { bigint: true });
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return undefined;
    throw e;
  }
}

export class FileLocks {
  readonly #log: Logger;
  readonly #unavailable: (op: string, name: string, e: unknown) => SwitchyardError;
  readonly #held = new Set<LockHandle>();

  constructor(log: Logger, unavailable: (op: string, name: string, e: unknown) => SwitchyardError) {
    this.#log = log;
    this.#unavailable = unavailable;
  }

  /** The lock at `path` (its directory exists) for `name`, or undefined when held elsewhere. */
  async tryLock(path: string, name: string, ttlMs: number): Promise<LockHandle | undefined> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const created = await this.#create(path, name, ttlMs);
      if (created) return created;
      const st = await stat(path, { bigint: true }).catch((e: unknown) => {
        if (isErrno(e, 'ENOENT')) return undefined; // released meanwhile: try again
        throw this.#unavailable('lock', name, e);
      });
      if (st === undefined) continue;
      const limit = (await this.#holderTtl(path)) ?? ttlMs;
      const age = Date.now() - Number(st.mtimeMs);
      if (age <= limit) return undefined;
      const gone = await this.#withGuard(path, async () => {
        // Under the guard nobody else removes or creates-after-removing this lock: remove it
        // only if it is still the file judged stale, and still stale.
        const now = await statIfAny(path);
        if (!now) return true;
        if (now.ino !== st.ino || now.mtimeNs !== st.mtimeNs || Date.now() - Number(now.mtimeMs) <= limit) return false;
        await unlink(path);
        return true;
      }).catch((e: unknown) => {
        throw this.#unavailable('take over the stale lock of', name, e);
      });
      if (!gone) return undefined;
      this.#log.warn('certificate lock was stale; taken over', { name, staleMs: age });
    }
    return undefined;
  }

  /** Release every held lock (their `lost` fires). */
  async releaseAll(): Promise<void> {
    await Promise.all([...this.#held].map((h) => h.release()));
  }

  /** O_EXCL create; the holder's handle, or undefined when the file exists. */
  async #create(path: string, name: string, ttlMs: number): Promise<LockHandle | undefined> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'wx', 0o600);
    } catch (e) {
      if (isErrno(e, 'EEXIST')) return undefined;
      throw this.#unavailable('lock', name, e);
    }
    const owner = randomUUID();
    // Fixed width (a 13-digit ms time until 2286): the heartbeat rewrites it in place.
    const content = (): Buffer => Buffer.from(JSON.stringify({ owner, pid: process.pid, host: hostname(), ttlMs, heartbeat: Date.now() }));
    let ino: bigint;
    try {
      await fh.write(content(), 0, undefined, 0);
      ino = (await fh.stat({ bigint: true })).ino;
    } catch (e) {
      await fh.close().catch(() => {});
      await unlink(path).catch(() => {});
      throw this.#unavailable('lock', name, e);
    }
    const handle: LockHandle = new LockHandle(async (lost) => {
      clearInterval(timer);
      this.#held.delete(handle);
      try {
        if (!lost) await this.#removeIfOurs(path, ino);
      } finally {
        await fh.close().catch(() => {});
      }
    });
    this.#held.add(handle);
    let beating = false;
    // Referenced by giveUp above, which cannot run before this line.
    const timer = setInterval(() => {
      if (beating) return;
      beating = true;
      void (async () => {
        try {
          await fh.write(content(), 0, undefined, 0);
          const now = await stat(path, { bigint: true }).catch((e: unknown) => (isErrno(e, 'ENOENT') ? undefined : Promise.reject(e)));
          if (now?.ino !== ino) handle.markLost(`the lock file of ${JSON.stringify(name)} was removed or taken over`);
        } catch (e) {
          handle.markLost(`heartbeat of ${JSON.stringify(name)} failed: ${(e as Error).message}`);
        } finally {
          beating = false;
        }
      })();
    }, Math.max(10, Math.floor(ttlMs / 3)));
    return handle;
  }

  async #holderTtl(path: string): Promise<number | undefined> {
    try {
      const t = (JSON.parse(await readFile(path, 'utf8')) as { ttlMs?: unknown }).ttlMs;
      return typeof t === 'number' && t > 0 ? t : undefined;
    } catch {
      return undefined; // being written, or torn: the caller's TTL applies
    }
  }

  /**
   * Run `fn` holding `<lock>.guard` (O_EXCL), the mutex of every removal of the lock file (stale
   * takeover, release); undefined when another process holds it. A guard is held for a few file
   * operations; one older than GUARD_STALE_MS was left by a process that died holding it and is
   * removed (only that file: renamed aside, checked, else put back).
   */
  async #withGuard<T>(lockPath: string, fn: () => Promise<T>): Promise<T | undefined> {
    const guard = lockPath + '.guard';
    let fh: FileHandle;
    try {
      fh = await open(guard, 'wx', 0o600);
    } catch (e) {
      if (!isErrno(e, 'EEXIST')) throw e;
      const st = await statIfAny(guard);
      if (st && Date.now() - Number(st.mtimeMs) > GUARD_STALE_MS) await this.#removeExact(guard, st);
      return undefined;
    }
    try {
      return await fn();
    } finally {
      await fh.close().catch(() => {});
      await unlink(guard).catch(() => {});
    }
  }

  /** Remove `path` only if it is still the inode with the mtime `seen` (rename aside, check, else link back). */
  async #removeExact(path: string, seen: { ino: bigint; mtimeNs: bigint }): Promise<void> {
    const aside = `${path}.${randomUUID()}.stale`;
    try {
      await rename(path, aside);
    } catch {
      return;
    }
    const moved = await statIfAny(aside);
    if (moved && (moved.ino !== seen.ino || moved.mtimeNs !== seen.mtimeNs)) await link(aside, path).catch(() => {});
    await unlink(aside).catch(() => {});
  }

  /**
   * Release: remove the lock file if it is still ours, under the guard (retried for about a
   * second; if a takeover keeps it, the file is left to go stale after its TTL).
   */
  async #removeIfOurs(path: string, ino: bigint): Promise<void> {
    for (let i = 0; i < 20; i++) {
      const done = await this.#withGuard(path, async () => {
        const st = await statIfAny(path);
        if (st?.ino === ino) await unlink(path);
        return true;
      }).catch(() => true);
      if (done) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
