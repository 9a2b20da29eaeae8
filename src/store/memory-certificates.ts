// The memory store's CertificateStore: everything in this process (one process is the whole
// fleet, so a lock is a mutex and never expires while its holder runs; ttlMs is accepted and
// ignored). Watchers and waiting lockers are told in a later microtask/turn, as other backends
// tell them asynchronously too.

import { challengeId, checkAccount, checkCertificate, checkChallenge, checkChallengeId, checkMeta, checkName, checkTtl } from './certificate-codec.js';
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

export class MemoryCertificates implements CertificateStore {
  readonly #accounts = new Map<string, string>();
  readonly #certs = new Map<string, StoredCertificate>();
  readonly #meta = new Map<string, CertificateMeta>();
  readonly #challenges = new Map<string, { challenge: Challenge; expiresAt: number }>();
  readonly #locks = new Map<string, LockHandle>();
  readonly #watchers = new Set<(name: string) => void>();
  readonly #freed = new Set<() => void>();

  async getAccount(directoryUrl: string): Promise<string | undefined> {
    return this.#accounts.get(directoryUrl);
  }

  async putAccount(directoryUrl: string, account: string): Promise<void> {
    this.#accounts.set(directoryUrl, checkAccount(directoryUrl, account));
  }

  async getCertificate(name: string): Promise<StoredCertificate | undefined> {
    return this.#certs.get(checkName(name));
  }

  async putCertificate(cert: StoredCertificate): Promise<void> {
    const c = checkCertificate(cert);
    this.#certs.set(c.name, c);
    this.#changed(c.name);
  }

  async deleteCertificate(name: string): Promise<boolean> {
    checkName(name);
    this.#meta.delete(name);
    if (!this.#certs.delete(name)) return false;
    this.#changed(name);
    return true;
  }

  async listCertificates(): Promise<readonly CertEntry<StoredCertificate>[]> {
    return sorted(this.#certs);
  }

  watchCertificates(onChange: (name: string) => void): () => void {
    const w = (name: string): void => onChange(name);
    this.#watchers.add(w);
    return () => this.#watchers.delete(w);
  }

  async getMeta(name: string): Promise<CertificateMeta | undefined> {
    return this.#meta.get(checkName(name));
  }

  async putMeta(meta: CertificateMeta): Promise<void> {
    const m = checkMeta(meta);
    this.#meta.set(m.name, m);
  }

  async listMeta(): Promise<readonly CertEntry<CertificateMeta>[]> {
    return sorted(this.#meta);
  }

  async putChallenge(challenge: Challenge, options: { readonly ttlMs: number }): Promise<void> {
    const c = checkChallenge(challenge);
    const now = Date.now();
    for (const [k, v] of this.#challenges) if (v.expiresAt <= now) this.#challenges.delete(k);
    this.#challenges.set(`${c.type}/${challengeId(c)}`, { challenge: c, expiresAt: now + checkTtl(options.ttlMs) });
  }

  getChallenge(type: 'http-01', token: string): Promise<HttpChallenge | undefined>;
  getChallenge(type: 'tls-alpn-01', name: string): Promise<AlpnChallenge | undefined>;
  async getChallenge(type: Challenge['type'], id: string): Promise<Challenge | undefined> {
    const key = `${type}/${checkChallengeId(type, id)}`;
    const v = this.#challenges.get(key);
    if (!v) return undefined;
    if (v.expiresAt > Date.now()) return v.challenge;
    this.#challenges.delete(key);
    return undefined;
  }

  async deleteChallenge(type: Challenge['type'], id: string): Promise<void> {
    this.#challenges.delete(`${type}/${checkChallengeId(type, id)}`);
  }

  async tryLock(name: string, options: LockOptions = {}): Promise<CertLock | undefined> {
    checkName(name);
    lockTtl(options.ttlMs);
    if (this.#locks.has(name)) return undefined;
    const handle: LockHandle = new LockHandle(async () => {
      if (this.#locks.get(name) !== handle) return;
      this.#locks.delete(name);
      for (const wake of [...this.#freed]) setImmediate(wake);
    });
    this.#locks.set(name, handle);
    return handle;
  }

  lock(name: string, options: WaitLockOptions = {}): Promise<CertLock> {
    return waitForLock(name, () => this.tryLock(name, options), options, (wake) => {
      this.#freed.add(wake);
      return () => this.#freed.delete(wake);
    });
  }

  /** Release every held lock (their `lost` fires) and forget watchers. */
  async close(): Promise<void> {
    for (const l of [...this.#locks.values()]) l.markLost('store closed');
    this.#watchers.clear();
  }

  #changed(name: string): void {
    for (const w of [...this.#watchers]) {
      queueMicrotask(() => {
        if (this.#watchers.has(w)) w(name);
      });
    }
  }
}

function sorted<T>(map: ReadonlyMap<string, T>): CertEntry<T>[] {
  return [...map.keys()].sort().map((name) => ({ name, value: map.get(name)! }));
}

export function createMemoryCertificates(): MemoryCertificates {
  return new MemoryCertificates();
}
