// The etcd store's CertificateStore: ACME state under <prefix>acme/, shared by every replica on
// the same etcd and key prefix.
//
// Layout under <prefix>acme/:
//   accounts/<sha256(directory URL)>   {"directoryUrl", "account"}
//   certs/<name>                       StoredCertificate (JSON)
//   meta/<name>                        CertificateMeta (JSON)
//   challenges/http-01/<token>         the challenge + "expiresAt", on a lease of about its TTL
//   challenges/tls-alpn-01/<name>
//   locks/<name>                       the holder's id, on the holder's lease
//
// Contract (beyond CertificateStore's):
//  - Every operation goes through the connection's bounded-retry `call` (etcd-connection.ts):
//    while etcd is unreachable, operations fail with SWY_STORE_UNAVAILABLE.
//  - watchCertificates: one watch of certs/, opened on the first subscription from the revision
//    the store has seen (so nothing after the subscription is missed; earlier changes may be
//    reported again), resumed by etcd3 after a disconnect, and reopened after a cancellation
//    (history compacted), which reports every stored name.
//  - Locks: a key created only if absent (a transaction comparing its create revision with 0) on
//    a lease of ceil(ttlMs / 1 s) that etcd3 keeps alive every ttl/3. A killed holder stops its
//    keep-alives, and etcd deletes the key when the lease expires. `lost` fires when the lease is
//    reported lost, when no keep-alive succeeded for 2/3 of the lease TTL (before etcd can expire it),
//    or when a watch of the key sees it deleted or written by another lease. release() revokes
//    the lease, which deletes the key.

import type { Watcher } from 'etcd3';
import { createHash, randomUUID } from 'node:crypto';
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
import { bounded, type EtcdConnection } from './etcd-connection.js';

export class EtcdCertificates implements CertificateStore {
  readonly #conn: EtcdConnection;
  readonly #prefix: string;
  /** The newest etcd revision this store has seen (the route mirror's): where a cert watch starts. */
  readonly #seenRevision: () => number;
  readonly #held = new Set<LockHandle>();
  readonly #watchers = new Set<(name: string) => void>();
  #watcher: Watcher | undefined;
  /** Bumped by every open and close of the cert watch, so a late open does nothing. */
  #watchGen = 0;
  #closed = false;

  constructor(conn: EtcdConnection, acmePrefix: string, seenRevision: () => number) {
    this.#conn = conn;
    this.#prefix = acmePrefix;
    this.#seenRevision = seenRevision;
  }

  // ------------------------------------------------------------ accounts

  async getAccount(directoryUrl: string): Promise<string | undefined> {
    const text = await this.#get(this.#accountKey(directoryUrl));
    return text === undefined ? undefined : decodeAccount(text, directoryUrl);
  }

  async putAccount(directoryUrl: string, account: string): Promise<void> {
    await this.#put(this.#accountKey(directoryUrl), encodeAccount(directoryUrl, checkAccount(directoryUrl, account)));
  }

  #accountKey(directoryUrl: string): string {
    return `${this.#prefix}accounts/${createHash('sha256').update(directoryUrl).digest('hex').slice(0, 40)}`;
  }

  // ------------------------------------------------------------ certificates and metadata

  async getCertificate(name: string): Promise<StoredCertificate | undefined> {
    const text = await this.#get(this.#key('certs', checkName(name)));
    return text === undefined ? undefined : decodeCertificate(text, name);
  }

  async putCertificate(cert: StoredCertificate): Promise<void> {
    const c = checkCertificate(cert);
    await this.#put(this.#key('certs', c.name), JSON.stringify(c));
  }

  async deleteCertificate(name: string): Promise<boolean> {
    checkName(name);
    const client = this.#conn.client;
    const res = await this.#conn.call('delete', () =>
      client
        .if(this.#key('certs', name), 'Version', '>', 0)
        .then(client.delete().key(this.#key('certs', name)), client.delete().key(this.#key('meta', name)))
        .else(client.delete().key(this.#key('meta', name)))
        .commit(),
    );
    return res.succeeded;
  }

  listCertificates(): Promise<readonly CertEntry<StoredCertificate>[]> {
    return this.#list('certs', decodeCertificate);
  }

  watchCertificates(onChange: (name: string) => void): () => void {
    const w = (name: string): void => onChange(name);
    this.#watchers.add(w);
    if (this.#watchers.size === 1 && !this.#closed) void this.#openWatch(this.#seenRevision() + 1, false);
    return () => {
      this.#watchers.delete(w);
      if (this.#watchers.size === 0) void this.#closeWatch();
    };
  }

  async getMeta(name: string): Promise<CertificateMeta | undefined> {
    const text = await this.#get(this.#key('meta', checkName(name)));
    return text === undefined ? undefined : decodeMeta(text, name);
  }

  async putMeta(meta: CertificateMeta): Promise<void> {
    const m = checkMeta(meta);
    await this.#put(this.#key('meta', m.name), JSON.stringify(m));
  }

  listMeta(): Promise<readonly CertEntry<CertificateMeta>[]> {
    return this.#list('meta', decodeMeta);
  }

  // ------------------------------------------------------------ challenges

  async putChallenge(challenge: Challenge, options: { readonly ttlMs: number }): Promise<void> {
    const c = checkChallenge(challenge);
    const ttlMs = checkTtl(options.ttlMs);
    const text = encodeChallenge(c, Date.now() + ttlMs);
    const key = this.#key(`challenges/${c.type}`, challengeId(c));
    // The lease removes the key about a second after "expiresAt"; reads check "expiresAt" itself.
    const ttlS = Math.ceil(ttlMs / 1000) + 1;
    await this.#conn.call('write', async () => {
      const lease = this.#conn.client.lease(ttlS, { autoKeepAlive: false });
      lease.on('lost', () => {}); // a failed grant also rejects the put below
      await lease.put(key).value(text).exec();
    });
  }

  getChallenge(type: 'http-01', token: string): Promise<HttpChallenge | undefined>;
  getChallenge(type: 'tls-alpn-01', name: string): Promise<AlpnChallenge | undefined>;
  async getChallenge(type: Challenge['type'], id: string): Promise<Challenge | undefined> {
    const text = await this.#get(this.#key(`challenges/${type}`, checkChallengeId(type, id)));
    return text === undefined ? undefined : decodeChallenge(text, type, id);
  }

  async deleteChallenge(type: Challenge['type'], id: string): Promise<void> {
    const key = this.#key(`challenges/${type}`, checkChallengeId(type, id));
    await this.#conn.call('delete', () => this.#conn.client.delete().key(key).exec());
  }

  // ------------------------------------------------------------ locks

  async tryLock(name: string, options: LockOptions = {}): Promise<CertLock | undefined> {
    checkName(name);
    const ttlMs = lockTtl(options.ttlMs);
    if (this.#closed) return undefined;
    const client = this.#conn.client;
    const key = this.#key('locks', name);
    const ttlS = Math.max(1, Math.ceil(ttlMs / 1000));
    // etcd expires the lease ttlS after the last keep-alive it answered; keep-alives go every
    // ttlS/3. Two thirds of ttlS without one: report the lock lost before etcd can drop it.
    const silentLimitMs = (ttlS * 1000 * 2) / 3;
    const lease = client.lease(ttlS);
    let lastKeepAlive = Date.now();
    lease.on('keepaliveSucceeded', () => (lastKeepAlive = Date.now()));
    let onLost = (_why: string): void => {};
    lease.on('lost', (e: Error) => onLost(`lease lost (${e.message})`));
    let leaseId: string;
    let revision: number;
    try {
      leaseId = await this.#conn.call('lock', () => lease.grant());
      const owner = `${randomUUID()} pid ${process.pid}`;
      // On a retry after an attempt that may have been applied, the key may already be ours:
      // the else branch reads it, and its lease tells.
      const res = await this.#conn.call('lock', () =>
        client.if(key, 'Create', '==', 0).then(client.put(key).value(owner).lease(leaseId)).else(client.get(key)).commit(),
      );
      const holder = res.succeeded ? leaseId : String(res.responses[0]?.response_range?.kvs[0]?.lease ?? '');
      if (holder !== leaseId) {
        await bounded(lease.revoke());
        return undefined;
      }
      revision = Number(res.header.revision);
    } catch (e) {
      await bounded(lease.revoke());
      throw e;
    }
    let keyWatch: Watcher | undefined;
    let cancelled = false;
    const stopWatch = (): Promise<unknown> => {
      cancelled = true;
      return bounded(keyWatch?.cancel());
    };
    const handle = new LockHandle(async () => {
      clearInterval(check);
      this.#held.delete(handle);
      // Together, so a close with etcd unreachable waits one bound, not two. Revoking the lease
      // deletes the key if it is still ours.
      await Promise.all([stopWatch(), bounded(lease.revoke())]);
    });
    this.#held.add(handle);
    onLost = (why) => handle.markLost(`${JSON.stringify(name)}: ${why}`);
    const check = setInterval(() => {
      if (Date.now() - lastKeepAlive > silentLimitMs) onLost(`no keep-alive succeeded for ${Math.round(silentLimitMs)} ms`);
    }, Math.max(50, Math.floor(silentLimitMs / 4)));
    check.unref();
    // From the revision of our own write: a delete or a foreign put after it is a loss.
    void client
      .watch()
      .key(key)
      .startRevision(String(revision + 1))
      .create()
      .then((w) => {
        keyWatch = w;
        if (cancelled) void bounded(w.cancel());
        w.on('delete', () => onLost('lock key deleted'));
        w.on('put', (kv) => {
          if (String(kv.lease) !== leaseId) onLost('lock key written by another holder');
        });
        w.on('error', () => onLost('lock key watch cancelled'));
      })
      .catch(() => onLost('cannot watch the lock key'));
    return handle;
  }

  lock(name: string, options: WaitLockOptions = {}): Promise<CertLock> {
    return waitForLock(name, () => this.tryLock(name, options), options);
  }

  // ------------------------------------------------------------ lifecycle

  /** Release held locks (revoking their leases; `lost` fires) and cancel the cert watch; bounded. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#watchers.clear();
    await Promise.all([...[...this.#held].map((h) => h.release()), this.#closeWatch()]);
  }

  // ------------------------------------------------------------ the cert watch

  async #openWatch(fromRevision: number, reportAll: boolean): Promise<void> {
    const gen = ++this.#watchGen;
    const prefix = this.#key('certs', '');
    try {
      const w = await this.#conn.client.watch().prefix(prefix).startRevision(String(Math.max(1, fromRevision))).create();
      if (gen !== this.#watchGen) {
        await bounded(w.cancel());
        return;
      }
      this.#watcher = w;
      w.on('data', (res) => {
        if (w !== this.#watcher) return;
        for (const ev of res.events) this.#notify(ev.kv.key.toString().slice(prefix.length));
      });
      w.on('error', (e: Error) => {
        if (w !== this.#watcher || this.#closed) return;
        // Cancelled: etcd does this (with an empty reason, seen with etcd 3.4) to a watch that
        // starts behind compacted history, which happens when routes are quiet (the store's
        // revision is then old). Reopen from now and report every stored name.
        this.#conn.log.warn('etcd certificate watch cancelled; reopening', { err: e.message });
        this.#watcher = undefined;
        void this.#reopen();
      });
      if (reportAll) for (const name of await this.#names()) this.#notify(name);
    } catch (e) {
      if (gen !== this.#watchGen || this.#closed) return;
      this.#conn.log.warn('cannot open the etcd certificate watch; retrying', { err: (e as Error).message });
      setTimeout(() => {
        if (gen === this.#watchGen) void this.#reopen();
      }, 1000).unref();
    }
  }

  async #reopen(): Promise<void> {
    if (this.#watchers.size === 0 || this.#closed) return;
    let rev: number;
    try {
      rev = Number((await this.#conn.client.kv.range({ key: Buffer.from(this.#prefix), limit: 1 })).header.revision);
    } catch {
      rev = this.#seenRevision();
    }
    await this.#openWatch(rev + 1, true);
  }

  async #closeWatch(): Promise<void> {
    this.#watchGen++;
    const w = this.#watcher;
    this.#watcher = undefined;
    await bounded(w?.cancel());
  }

  #notify(name: string): void {
    for (const w of [...this.#watchers]) w(name);
  }

  // ------------------------------------------------------------ keys

  #key(sub: string, id: string): string {
    return `${this.#prefix}${sub}/${id}`;
  }

  async #get(key: string): Promise<string | undefined> {
    const v = await this.#conn.call('read', () => this.#conn.client.get(key).string());
    return v ?? undefined;
  }

  async #put(key: string, value: string): Promise<void> {
    await this.#conn.call('write', () => this.#conn.client.put(key).value(value).exec());
  }

  async #names(): Promise<string[]> {
    const prefix = this.#key('certs', '');
    const keys = await this.#conn.call('read', () => this.#conn.client.getAll().prefix(prefix).keys());
    return keys.map((k) => k.slice(prefix.length));
  }

  async #list<T>(sub: string, decode: (text: string, name: string) => T): Promise<CertEntry<T>[]> {
    const prefix = this.#key(sub, '');
    const all = await this.#conn.call('read', () => this.#conn.client.getAll().prefix(prefix).strings());
    const out: CertEntry<T>[] = [];
    for (const key of Object.keys(all).sort()) {
      const name = key.slice(prefix.length);
      const e = await entryOf(name, () => decode(all[key]!, checkName(name)));
      if (e) out.push(e);
    }
    return out;
  }
}

