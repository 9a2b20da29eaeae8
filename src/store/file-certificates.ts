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
//    each file's inode and modification time with the last scan (the first is taken when the
//    watch starts), because a watch does not see writes by other hosts on a network volume.
//  - Locks: O_EXCL lock files with a heartbeat and a guarded stale takeover (file-lock.ts).

import { createHash, randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import { chmod, mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
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
import { lockTtl, waitForLock } from './certificate-lock.js';
import { FileLocks } from './file-lock.js';
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
  /** False: no inotify watch, rescans only (filesystems where watches fail or mislead). Default true. */
  readonly fsWatch?: boolean;
}

const encodeName = (name: string): string => encodeURIComponent(name).replace(/\*/g, '%2A');
const isErrno = (e: unknown, code: string): boolean => (e as NodeJS.ErrnoException)?.code === code;
export class FileCertificates implements CertificateStore {
  readonly #dir: string;
  readonly #log: Logger;
  readonly #rescanMs: number;
  readonly #fsWatchOn: boolean;
  #rootReady: Promise<void> | undefined;
  readonly #locks: FileLocks;
  readonly #watchers = new Set<(name: string) => void>();
  #fsWatcher: FSWatcher | undefined;
  #rescanTimer: NodeJS.Timeout | undefined;
  /** certs/ as last seen: file name -> mtime (ns); the rescan reports differences. */
  #seen: Map<string, string> | undefined;
  #scanning = false;
  #pending = new Set<string>();
  #flushTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Bumped by every start and stop of the watch, so a start that finishes late does nothing. */
  #watchGen = 0;

  constructor(options: FileCertificatesOptions) {
    this.#dir = options.dir;
    this.#log = options.log;
    this.#rescanMs = options.rescanMs ?? 10_000;
    this.#fsWatchOn = options.fsWatch ?? true;
    this.#locks = new FileLocks(options.log, (op, name, e) => this.#unavailable(op, name, e));
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
    return this.#locks.tryLock(this.#path('locks', name, '.lock'), name, ttlMs);
  }

  lock(name: string, options: WaitLockOptions = {}): Promise<CertLock> {
    return waitForLock(name, () => this.tryLock(name, options), options);
  }

  // ------------------------------------------------------------ lifecycle

  /** Release held locks (their `lost` fires), stop watching. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#stopWatch();
    await this.#locks.releaseAll();
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
      if (this.#fsWatchOn) this.#fsWatcher = watch(certs, (_event, file) => {
        const f = file?.toString();
        if (f && f.endsWith('.json') && !f.startsWith('.')) this.#notify(decodeURIComponent(f.slice(0, -'.json'.length)));
      });
      this.#fsWatcher?.on('error', (e) => this.#log.error('certificate directory watch failed; rescans continue', { dir: this.#dir, err: e }));
    } catch (e) {
      this.#log.error('cannot watch the certificate directory; rescans continue', { dir: this.#dir, err: e });
    }
    // The baseline is read here, synchronously, so that rescans alone (no inotify) also see every
    // change after the subscription.
    this.#seen = this.#scanSync();
    this.#rescanTimer = setInterval(() => void this.#rescan(gen), this.#rescanMs);
    this.#rescanTimer.unref();
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

  /** certs/ now: file name -> "inode:mtime" (a rename replaces the inode, a rewrite moves the time). */
  #scanSync(): Map<string, string> {
    const dir = join(this.#dir, 'certs');
    const out = new Map<string, string>();
    let files: string[];
    try {
      files = readdirSync(dir);
    } catch {
      return out;
    }
    for (const f of files) {
      if (!f.endsWith('.json') || f.startsWith('.')) continue;
      try {
        const st = statSync(join(dir, f), { bigint: true });
        out.set(f, `${st.ino}:${st.mtimeNs}`);
      } catch {
        // removed meanwhile
      }
    }
    return out;
  }

  async #scan(): Promise<Map<string, string>> {
    const dir = join(this.#dir, 'certs');
    const out = new Map<string, string>();
    for (const f of await readdir(dir).catch(() => [] as string[])) {
      if (!f.endsWith('.json') || f.startsWith('.')) continue;
      const st = await stat(join(dir, f), { bigint: true }).catch(() => undefined);
      if (st) out.set(f, `${st.ino}:${st.mtimeNs}`);
    }
    return out;
  }

  async #rescan(gen: number): Promise<void> {
    const before = this.#seen;
    if (!before || this.#scanning) return;
    this.#scanning = true;
    try {
      const now = await this.#scan();
      if (gen !== this.#watchGen) return; // stopped or restarted meanwhile
      this.#seen = now;
      const names = (f: string): string => decodeURIComponent(f.slice(0, -'.json'.length));
      for (const [f, sig] of now) if (before.get(f) !== sig) this.#notify(names(f));
      for (const f of before.keys()) if (!now.has(f)) this.#notify(names(f));
    } finally {
      this.#scanning = false;
    }
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
