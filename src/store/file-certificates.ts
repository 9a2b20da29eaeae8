// The file store's CertificateStore: one directory beside the routes file, shared by every
// replica that uses the same routes file (same host, or a shared volume).
//
// Layout of <routes-file>.certs/ (mode 0700; every file 0600, as they hold private keys):
//   accounts/<sha256(directory URL)>.json   {"directoryUrl", "account"}
//   certs/<name>.json                       StoredCertificate
//   meta/<name>.json                        CertificateMeta
//   challenges/http-01/<token>.json         the challenge + "expiresAt"
//   challenges/tls-alpn-01/<name>.json
//   locks/<name>.lock                       {"owner", "pid", "host", "ttlMs", "heartbeat"}
// <name> is the certificate name with `*` and `:` percent-encoded. Nothing is created until the
// first write or watch.
//
// Contract (beyond CertificateStore's):
//  - Every value is written atomically: a 0600 temp file in the same directory, fsynced, then
//    renamed over the old one; readers see the old or the new value, never half.
//  - watchCertificates: a watch of certs/ (inotify), plus a rescan every `rescanMs` comparing
//    modification times, because a watch does not see writes by other hosts on a network volume.
//  - Locks: the lock file is created with O_EXCL and kept open by its holder, which rewrites its
//    heartbeat in place (same inode) every ttl/3. A lock whose file was not modified for its
//    holder's ttlMs is stale. Removing a lock file (stale takeover, release) happens only under
//    `<lock>.guard`, itself an O_EXCL file: the guard holder re-checks that the path is still the
//    inode judged stale and still stale, unlinks it, and only the O_EXCL create that follows
//    makes a holder; so two takers cannot both win, and nobody removes a live holder's file
//    (only one whose heartbeat is older than its TTL). A holder checks after each heartbeat that
//    the lock path is still its inode; `lost` fires when it is not. Hosts sharing the directory
//    need clocks synchronised well within the TTL (staleness compares file times with this clock).

import { createHash, randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, watch, type BigIntStats, type FSWatcher } from 'node:fs';
import { chmod, link, mkdir, open, readdir, readFile, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, SwitchyardError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import {
  challengeId,
  checkAccount,
  checkCertificate,
  checkChallenge,
  checkChallengeId,
  checkMeta,
  checkName,
  checkTtl,
  decodeAccount,
  decodeCertificate,
  decodeChallenge,
  decodeMeta,
  encodeAccount,
  encodeChallenge,
  entryOf,
} from './certificate-codec.js';
import { LockHandle, lockTtl, waitForLock } from './certificate-lock.js';
import type {
  AlpnChallenge,
  CertEntry,
  CertificateMeta,
  CertificateStore,
  CertLock,
  Challenge,
  HttpChallenge,
  LockOptions,
  StoredCertificate,
  WaitLockOptions,
} from './certificate-store.js';

export interface FileCertificatesOptions {
  /** The directory (created 0700 on first use). */
  readonly dir: string;
  readonly log: Logger;
  /** Rescan of certs/ for changes a file watch cannot see (other hosts); default 10 s. */
  readonly rescanMs?: number;
}

const encodeName = (name: string): string => encodeURIComponent(name).replace(/\*/g, '%2A');
const isErrno = (e: unknown, code: string): boolean => (e as NodeJS.ErrnoException)?.code === code;
/** A lock's removal guard older than this was left by a process that died holding it. */
const GUARD_STALE_MS = 10_000;

async function statIfAny(path: string): Promise<BigIntStats | undefined> {
  try {
    return await stat(path, { bigint: true });
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return undefined;
    throw e;
  }
}

export class FileCertificates implements CertificateStore {
  readonly #dir: string;
  readonly #log: Logger;
  readonly #rescanMs: number;
  #rootReady: Promise<void> | undefined;
  readonly #held = new Set<LockHandle>();
  readonly #watchers = new Set<(name: string) => void>();
  #fsWatcher: FSWatcher | undefined;
  #rescanTimer: NodeJS.Timeout | undefined;
  /** certs/ as last seen: file name -> mtime (ns); the rescan reports differences. */
  #seen: Map<string, bigint> | undefined;
  #pending = new Set<string>();
  #flushTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Bumped by every start and stop of the watch, so a start that finishes late does nothing. */
  #watchGen = 0;

  constructor(options: FileCertificatesOptions) {
    this.#dir = options.dir;
    this.#log = options.log;
    this.#rescanMs = options.rescanMs ?? 10_000;
  }

  // ------------------------------------------------------------ accounts

  async getAccount(directoryUrl: string): Promise<string | undefined> {
    const text = await this.#read(this.#accountPath(directoryUrl), 'ACME account', directoryUrl);
    return text === undefined ? undefined : decodeAccount(text, directoryUrl);
  }

  async putAccount(directoryUrl: string, account: string): Promise<void> {
    await this.#write('accounts', this.#accountPath(directoryUrl), encodeAccount(directoryUrl, checkAccount(directoryUrl, account)), 'ACME account', directoryUrl);
  }

  #accountPath(directoryUrl: string): string {
    return join(this.#dir, 'accounts', createHash('sha256').update(directoryUrl).digest('hex').slice(0, 40) + '.json');
  }

  // ------------------------------------------------------------ certificates and metadata

  async getCertificate(name: string): Promise<StoredCertificate | undefined> {
    const text = await this.#read(this.#path('certs', checkName(name)), 'certificate', name);
    return text === undefined ? undefined : decodeCertificate(text, name);
  }

  async putCertificate(cert: StoredCertificate): Promise<void> {
    const c = checkCertificate(cert);
    await this.#write('certs', this.#path('certs', c.name), JSON.stringify(c), 'certificate', c.name);
    this.#notify(c.name); // the watch would too, later; a rescan-only host learns it now
  }

  async deleteCertificate(name: string): Promise<boolean> {
    checkName(name);
    await this.#remove(this.#path('meta', name), 'certificate metadata', name);
    const existed = await this.#remove(this.#path('certs', name), 'certificate', name);
    if (existed) this.#notify(name);
    return existed;
  }

  listCertificates(): Promise<readonly CertEntry<StoredCertificate>[]> {
    return this.#list('certs', (name) => this.getCertificate(name));
  }

  watchCertificates(onChange: (name: string) => void): () => void {
    const w = (name: string): void => onChange(name);
    this.#watchers.add(w);
    if (this.#watchers.size === 1 && !this.#closed) this.#startWatch();
    return () => {
      this.#watchers.delete(w);
      if (this.#watchers.size === 0) this.#stopWatch();
    };
  }

  async getMeta(name: string): Promise<CertificateMeta | undefined> {
    const text = await this.#read(this.#path('meta', checkName(name)), 'certificate metadata', name);
    return text === undefined ? undefined : decodeMeta(text, name);
  }

  async putMeta(meta: CertificateMeta): Promise<void> {
    const m = checkMeta(meta);
    await this.#write('meta', this.#path('meta', m.name), JSON.stringify(m), 'certificate metadata', m.name);
  }

  listMeta(): Promise<readonly CertEntry<CertificateMeta>[]> {
    return this.#list('meta', (name) => this.getMeta(name));
  }

  // ------------------------------------------------------------ challenges

  async putChallenge(challenge: Challenge, options: { readonly ttlMs: number }): Promise<void> {
    const c = checkChallenge(challenge);
    const expiresAt = Date.now() + checkTtl(options.ttlMs);
    const sub = join('challenges', c.type);
    await this.#write(sub, this.#path(sub, challengeId(c)), encodeChallenge(c, expiresAt), `${c.type} challenge`, challengeId(c));
    void this.#sweepChallenges(sub);
  }

  getChallenge(type: 'http-01', token: string): Promise<HttpChallenge | undefined>;
  getChallenge(type: 'tls-alpn-01', name: string): Promise<AlpnChallenge | undefined>;
  async getChallenge(type: Challenge['type'], id: string): Promise<Challenge | undefined> {
    checkChallengeId(type, id);
    const text = await this.#read(this.#path(join('challenges', type), id), `${type} challenge`, id);
    return text === undefined ? undefined : decodeChallenge(text, type, id);
  }

  async deleteChallenge(type: Challenge['type'], id: string): Promise<void> {
    checkChallengeId(type, id);
    await this.#remove(this.#path(join('challenges', type), id), `${type} challenge`, id);
  }

  /** Remove expired (and unreadable) challenge files; best effort. */
  async #sweepChallenges(sub: string): Promise<void> {
    const dir = join(this.#dir, sub);
    const now = Date.now();
    for (const f of await readdir(dir).catch(() => [] as string[])) {
      if (!f.endsWith('.json') || f.startsWith('.')) continue;
      const text = await readFile(join(dir, f), 'utf8').catch(() => undefined);
      let expired = text !== undefined;
      try {
        expired = text !== undefined && !((JSON.parse(text) as { expiresAt?: unknown }).expiresAt as number > now);
      } catch {
        // unparseable: left for a human to see; get reports it
        expired = false;
      }
      if (expired) await unlink(join(dir, f)).catch(() => {});
    }
  }

  // ------------------------------------------------------------ locks

  async tryLock(name: string, options: LockOptions = {}): Promise<CertLock | undefined> {
    checkName(name);
    const ttlMs = lockTtl(options.ttlMs);
    if (this.#closed) throw this.#unavailable('lock', name, new Error('store closed'));
    await this.#ensureDir('locks');
    const path = this.#path('locks', name, '.lock');
    for (let attempt = 0; attempt < 2; attempt++) {
      const created = await this.#create(path, name, ttlMs);
      if (created) return created;
      const st = await stat(path, { bigint: true }).catch((e: unknown) => {
        if (isErrno(e, 'ENOENT')) return undefined; // released meanwhile: try again
        throw this.#unavailable('lock', name, e);
      });
      if (st === undefined) continue;
      const holderTtl = await this.#holderTtl(path);
      const age = Date.now() - Number(st.mtimeMs);
      if (age <= (holderTtl ?? ttlMs)) return undefined;
      const limit = holderTtl ?? ttlMs;
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

  lock(name: string, options: WaitLockOptions = {}): Promise<CertLock> {
    return waitForLock(name, () => this.tryLock(name, options), options);
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

  // ------------------------------------------------------------ lifecycle

  /** Release held locks (their `lost` fires), stop watching. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#stopWatch();
    await Promise.all([...this.#held].map((h) => h.release()));
    this.#watchers.clear();
  }

  // ------------------------------------------------------------ watching certs/

  /**
   * Synchronous up to the watch itself, so that every change after watchCertificates() returns
   * is seen (the caller lists once after subscribing). The rescan baseline follows asynchronously;
   * a change before it is taken is reported by the watch.
   */
  #startWatch(): void {
    const gen = ++this.#watchGen;
    const certs = join(this.#dir, 'certs');
    try {
      mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
      chmodSync(this.#dir, 0o700);
      mkdirSync(certs, { recursive: true, mode: 0o700 });
      this.#fsWatcher = watch(certs, (_event, file) => {
        const f = file?.toString();
        if (f && f.endsWith('.json') && !f.startsWith('.')) this.#notify(decodeURIComponent(f.slice(0, -'.json'.length)));
      });
      this.#fsWatcher.on('error', (e) => this.#log.error('certificate directory watch failed; rescans continue', { dir: this.#dir, err: e }));
    } catch (e) {
      this.#log.error('cannot watch the certificate directory; rescans continue', { dir: this.#dir, err: e });
    }
    this.#rescanTimer = setInterval(() => void this.#rescan(), this.#rescanMs);
    this.#rescanTimer.unref();
    void this.#scan().then((seen) => {
      if (gen === this.#watchGen) this.#seen = seen;
    });
  }

  #stopWatch(): void {
    this.#watchGen++;
    this.#fsWatcher?.close();
    this.#fsWatcher = undefined;
    clearInterval(this.#rescanTimer);
    this.#rescanTimer = undefined;
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    this.#pending.clear();
    this.#seen = undefined;
  }

  async #scan(): Promise<Map<string, bigint>> {
    const dir = join(this.#dir, 'certs');
    const out = new Map<string, bigint>();
    for (const f of await readdir(dir).catch(() => [] as string[])) {
      if (!f.endsWith('.json') || f.startsWith('.')) continue;
      const st = await stat(join(dir, f), { bigint: true }).catch(() => undefined);
      if (st) out.set(f, st.mtimeNs);
    }
    return out;
  }

  async #rescan(): Promise<void> {
    const before = this.#seen;
    if (!before) return;
    const now = await this.#scan();
    if (this.#seen !== before) return; // stopped or restarted meanwhile
    this.#seen = now;
    for (const [f, m] of now) if (before.get(f) !== m) this.#notify(decodeURIComponent(f.slice(0, -'.json'.length)));
    for (const f of before.keys()) if (!now.has(f)) this.#notify(decodeURIComponent(f.slice(0, -'.json'.length)));
  }

  /** Coalesced: one call per name per turn of events (a rename is reported more than once). */
  #notify(name: string): void {
    if (this.#watchers.size === 0) return;
    this.#pending.add(name);
    this.#flushTimer ??= setTimeout(() => {
      this.#flushTimer = undefined;
      const names = [...this.#pending];
      this.#pending.clear();
      for (const n of names) for (const w of [...this.#watchers]) w(n);
    }, 10);
  }

  // ------------------------------------------------------------ files

  #path(sub: string, id: string, ext = '.json'): string {
    return join(this.#dir, sub, encodeName(id) + ext);
  }

  async #list<T>(sub: string, read: (name: string) => Promise<T | undefined>): Promise<CertEntry<T>[]> {
    let files: string[];
    try {
      files = await readdir(join(this.#dir, sub));
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return [];
      throw this.#unavailable('list', sub, e);
    }
    const out: CertEntry<T>[] = [];
    for (const f of files.sort()) {
      if (!f.endsWith('.json') || f.startsWith('.')) continue;
      let name: string;
      try {
        name = checkName(decodeURIComponent(f.slice(0, -'.json'.length)));
      } catch {
        out.push({ name: f, error: `certificate store: file ${JSON.stringify(join(sub, f))} is not named after a certificate name` });
        continue;
      }
      const e = await entryOf(name, () => read(name));
      if (e) out.push(e);
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async #read(path: string, what: string, id: string): Promise<string | undefined> {
    try {
      return await readFile(path, 'utf8');
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return undefined;
      throw this.#unavailable(`read ${what}`, id, e);
    }
  }

  async #remove(path: string, what: string, id: string): Promise<boolean> {
    try {
      await unlink(path);
      return true;
    } catch (e) {
      if (isErrno(e, 'ENOENT')) return false;
      throw this.#unavailable(`delete ${what}`, id, e);
    }
  }

  /** Atomic 0600 write: temp file in the same directory, mode set and fsynced before the rename. */
  async #write(sub: string, path: string, text: string, what: string, id: string): Promise<void> {
    const tmp = `${path}.${process.pid}.${randomUUID()}.tmp`;
    try {
      await this.#ensureDir(sub);
      const fh = await open(tmp, 'wx', 0o600);
      try {
        await fh.chmod(0o600); // open's mode is only used when the file is created, and umask applies
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
    } catch (e) {
      await unlink(tmp).catch(() => {});
      throw this.#unavailable(`write ${what}`, id, e);
    }
  }

  /** The root directory (0700, tightened if it exists wider) and one subdirectory of it. */
  async #ensureDir(sub: string): Promise<void> {
    this.#rootReady ??= (async () => {
      await mkdir(this.#dir, { recursive: true, mode: 0o700 });
      await chmod(this.#dir, 0o700);
    })();
    try {
      await this.#rootReady;
    } catch (e) {
      this.#rootReady = undefined;
      throw e;
    }
    await mkdir(join(this.#dir, sub), { recursive: true, mode: 0o700 });
  }

  #unavailable(op: string, id: string, e: unknown): SwitchyardError {
    if (e instanceof SwitchyardError) return e;
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    return new SwitchyardError(ErrorCode.STORE_UNAVAILABLE, `certificate store ${this.#dir}: cannot ${op} ${JSON.stringify(id)}: ${why}`, { cause: e, details: { op } });
  }
}

export function createFileCertificates(options: FileCertificatesOptions): FileCertificates {
  return new FileCertificates(options);
}
