// Automatic HTTPS: obtains, shares and renews certificates across every replica that uses the
// same store (CertMagic's design, on Switchyard's route stores).
//
// Contract:
// - One order per name across the fleet: an order runs only under the store's lock for that name
//   (`tryLock`), and storage is read again after the lock is taken: a replica that finds a
//   certificate stored meanwhile just serves it. A replica that cannot take the lock waits for the
//   store watch (the holder's certificate arrives there) and checks again later.
// - A restart never re-orders a certificate that is stored and not yet due for renewal.
// - Renewal is due with a third of the lifetime left (schedule.ts); each name is checked at that
//   time and at least every `checkIntervalMs` (jittered).
// - Failures keep the old certificate served; the error, attempt count and next attempt go to the
//   name's metadata in the store, so every replica shows them and respects the same backoff
//   (minutes growing to hours, Retry-After honoured): no replica hammers the CA.
// - Certificates reach the data planes through `install` (hot swap: new handshakes get the new
//   certificate, open connections keep theirs); other replicas' renewals arrive by the store watch.
// - On-demand TLS (off by default): a name is ordered at its first handshake only if it has a
//   route (`hostAllowed`) or --acme-ask answers 2xx; any other name never causes an order.

import { X509Certificate } from 'node:crypto';
import type { AcmeConfig } from '../../config/acme-config.js';
import { isAcmeName } from '../../config/acme-config.js';
import type { Logger } from '../../observability/logger.js';
import type { CertificateMeta, CertificateStore, StoredCertificate } from '../../store/certificate-store.js';
import type { ChallengeSource, KeyCert } from '../challenge-source.js';
import { AcmeOrderError, createAcmeProtocol, type AcmeAccount, type AcmeProtocol, type PresentedChallenge } from './acme-protocol.js';
import { ariRenewalAt } from './ari.js';
import { askPermission } from './ask.js';
import { jitter, needsRenewal, renewalAt, retryDelay } from './schedule.js';

const LOCK_TTL_MS = 30_000;
const CHALLENGE_TTL_MS = 10 * 60_000;
/** A replica that found the lock held looks again after about this long (the holder may die). */
const LOCK_BUSY_RECHECK_MS = 45_000;
/** Retry after the CA refused a (now replaced) account: a new account is made at once. */
const DEAD_ACCOUNT_RETRY_MS = 2_000;
const ON_DEMAND_WAIT_MS = 120_000;
const ACCOUNT_LOCK = 'acme-account';

/** What GET /api/certificates shows for a name: its stored metadata (no key material) and whether it is served here. */
export interface CertificateStatus extends CertificateMeta {
  /** Served by this replica right now. */
  readonly served: boolean;
}

export interface AcmeManagerOptions {
  readonly config: AcmeConfig;
  readonly store: CertificateStore;
  readonly log: Logger;
  /** Hand a certificate to every data plane of this replica (hot swap). */
  readonly install: (name: string, pem: KeyCert) => void;
  /** On-demand TLS: does a route exist for this host? */
  readonly hostAllowed: (host: string) => boolean;
  readonly onOrder?: (result: 'success' | 'failure') => void;
  /** Tests and embedders: the ACME protocol implementation. */
  readonly protocol?: AcmeProtocol;
}

export interface AcmeManager {
  start(): Promise<void>;
  close(): Promise<void>;
  /** Per-name state, fleet-wide (from the store's metadata) plus what this replica serves; no keys. */
  status(): Promise<CertificateStatus[]>;
  /** Certificates served by this replica (for data-plane workers that start later). */
  installed(): ReadonlyMap<string, KeyCert & { readonly notAfter: number }>;
  /** Challenge answers and on-demand decisions for this replica's data planes. */
  readonly source: ChallengeSource;
}

function parseValidity(certPem: string): { notBefore: number; notAfter: number } {
  const x = new X509Certificate(certPem);
  return { notBefore: Date.parse(x.validFrom), notAfter: Date.parse(x.validTo) };
}

/**
 * The key authorization for an HTTP-01 token, only when `host` (the request's Host: lower case, no
 * port, no trailing dot) is the very name the challenge was stored for (a DNS-rebinding guard: a
 * token for a.test is not served under b.test even when this replica also manages b.test).
 */
export async function http01Answer(store: Pick<CertificateStore, 'getChallenge'>, token: string, host: string): Promise<string | undefined> {
  const c = await store.getChallenge('http-01', token);
  if (!c || c.name.toLowerCase().replace(/\.$/, '') !== host) return undefined;
  return c.keyAuthorization;
}

export function createAcmeManager(opts: AcmeManagerOptions): AcmeManager {
  const { config, store, log } = opts;
  const protocol = opts.protocol ?? createAcmeProtocol(config);
  const managed = new Set<string>(config.domains);
  const served = new Map<string, KeyCert & { notBefore: number; notAfter: number }>();
  const busy = new Map<string, Promise<void>>();
  const timers = new Map<string, NodeJS.Timeout>();
  /** Local view of the backoff (the store's metadata is the fleet's). */
  const notBefore = new Map<string, number>();
  let closed = false;
  let unwatch: (() => void) | undefined;
  let account: Promise<AcmeAccount> | undefined;

  function install(cert: StoredCertificate): void {
    const cur = served.get(cert.name);
    if (cur && (cur.cert === cert.certPem || cur.notAfter > cert.notAfter)) return;
    served.set(cert.name, { cert: cert.certPem, key: cert.keyPem, notBefore: cert.notBefore, notAfter: cert.notAfter });
    opts.install(cert.name, { cert: cert.certPem, key: cert.keyPem });
    log.info(`ACME: serving the certificate for ${cert.name} (valid until ${new Date(cert.notAfter).toISOString()})`);
  }

  /** The stored certificate, or undefined when there is none or it is unusable (logged). */
  async function readStored(name: string): Promise<StoredCertificate | undefined> {
    try {
      return await store.getCertificate(name);
    } catch (e) {
      log.warn(`ACME: the stored certificate for ${name} is unusable: ${(e as Error).message}`);
      return undefined;
    }
  }

  function schedule(name: string, at: number): void {
    if (closed) return;
    clearTimeout(timers.get(name));
    const delay = Math.min(Math.max(at - Date.now(), 0), jitter(config.checkIntervalMs));
    const timer = setTimeout(() => {
      timers.delete(name);
      void maintain(name);
    }, delay);
    timer.unref();
    timers.set(name, timer);
  }

  /** The URL of a stored account the CA no longer knows (accountDoesNotExist): replaced, not reused. */
  let deadAccountUrl: string | undefined;
  const usable = (raw: string | undefined): AcmeAccount | undefined => {
    const a = raw === undefined ? undefined : (JSON.parse(raw) as AcmeAccount);
    return a && a.url !== deadAccountUrl ? a : undefined;
  };

  function getAccount(): Promise<AcmeAccount> {
    account ??= (async () => {
      const stored = usable(await store.getAccount(config.directory));
      if (stored) return stored;
      const lock = await store.lock(ACCOUNT_LOCK, { ttlMs: LOCK_TTL_MS });
      try {
        const again = usable(await store.getAccount(config.directory));
        if (again) return again;
        const created = await protocol.createAccount();
        await store.putAccount(config.directory, JSON.stringify(created));
        log.info(`ACME: account created at ${config.directory}`);
        return created;
      } finally {
        await lock.release();
      }
    })();
    account.catch(() => (account = undefined));
    return account;
  }

  async function present(c: PresentedChallenge): Promise<void> {
    if (c.type === 'http-01') await store.putChallenge({ type: 'http-01', name: c.name, token: c.token, keyAuthorization: c.keyAuthorization }, { ttlMs: CHALLENGE_TTL_MS });
    else await store.putChallenge({ type: 'tls-alpn-01', name: c.name, certPem: c.certPem, keyPem: c.keyPem }, { ttlMs: CHALLENGE_TTL_MS });
  }
  async function cleanUp(c: PresentedChallenge): Promise<void> {
    await store.deleteChallenge(c.type, c.type === 'http-01' ? c.token : c.name);
  }

  /**
   * When `stored` is due for renewal: the point chosen in the CA's ARI window (RFC 9773) when the
   * metadata holds one for this very certificate, else a third of the lifetime before expiry.
   */
  function storedDue(stored: StoredCertificate, meta: CertificateMeta | undefined): number {
    const sel = meta?.ari?.selectedAt;
    if (sel !== undefined && meta?.notAfter === stored.notAfter) return Math.min(sel, stored.notAfter);
    return renewalAt(stored.notBefore, stored.notAfter);
  }

  /**
   * The renewal time of a stored certificate, asking the CA's renewalInfo (RFC 9773) when the
   * directory has one and the last answer's Retry-After has passed; the window and the chosen
   * point are kept in the name's metadata (`ari`, `nextRenewalAt`). Falls back to the 1/3 ratio.
   * Returns when to look again as well (the ARI re-check), never later than the renewal.
   */
  async function renewalTime(name: string, stored: StoredCertificate, now: number): Promise<{ due: number; next: number }> {
    const meta = await store.getMeta(name).catch(() => undefined);
    const ari = meta?.notAfter === stored.notAfter ? meta.ari : undefined;
    if (!protocol.renewalInfo) return { due: storedDue(stored, meta), next: storedDue(stored, meta) };
    if (ari?.selectedAt !== undefined && ari.retryAfter !== undefined && now < ari.retryAfter) {
      const due = storedDue(stored, meta);
      return { due, next: Math.min(due, ari.retryAfter) };
    }
    try {
      const info = await protocol.renewalInfo(stored.certPem);
      if (!info) return { due: storedDue(stored, meta), next: storedDue(stored, meta) };
      const { windowStart, windowEnd } = info.window;
      const same = ari?.selectedAt !== undefined && ari.windowStart === windowStart && ari.windowEnd === windowEnd;
      const selectedAt = same ? ari.selectedAt! : ariRenewalAt(info.window);
      const retryAfter = now + info.recheckMs;
      if (!same) log.info(`ACME: renewal window for ${name} from the CA: ${new Date(windowStart).toISOString()} to ${new Date(windowEnd).toISOString()}; renewing at ${new Date(selectedAt).toISOString()}`);
      const updated: CertificateMeta = {
        ...(meta ?? {}),
        name,
        notBefore: stored.notBefore,
        notAfter: stored.notAfter,
        nextRenewalAt: Math.min(selectedAt, stored.notAfter),
        ari: { windowStart, windowEnd, selectedAt, retryAfter },
      };
      await store.putMeta(updated).catch((e: unknown) => log.warn(`ACME: cannot record the renewal window for ${name}: ${(e as Error).message}`));
      const due = storedDue(stored, updated);
      return { due, next: Math.min(due, retryAfter) };
    } catch (e) {
      log.warn(`ACME: renewal information for ${name} unavailable (${(e as Error).message}); renewing by the 1/3 ratio`);
      const due = renewalAt(stored.notBefore, stored.notAfter);
      return { due, next: due };
    }
  }

  /** Fleet backoff: a failed name is retried by nobody before its metadata says so. */
  function backingOff(meta: CertificateMeta | undefined, now: number): number | undefined {
    return meta?.attempts && meta.nextRenewalAt !== undefined && now < meta.nextRenewalAt ? meta.nextRenewalAt : undefined;
  }

  async function orderUnderLock(name: string): Promise<number> {
    const lock = await store.tryLock(name, { ttlMs: LOCK_TTL_MS });
    if (!lock) {
      log.debug(`ACME: ${name} is being ordered by another replica`);
      return Date.now() + jitter(LOCK_BUSY_RECHECK_MS);
    }
    let meta: CertificateMeta | undefined;
    let usedAccount: string | undefined;
    try {
      // Storage again, inside the lock: the certificate may have been stored while we looked.
      const again = await readStored(name);
      const now = Date.now();
      meta = await store.getMeta(name).catch(() => undefined);
      if (again && now < storedDue(again, meta)) {
        install(again);
        return storedDue(again, meta);
      }
      const wait = backingOff(meta, now);
      if (wait !== undefined) return wait;
      log.info(`ACME: ordering a certificate for ${name} from ${config.directory}`);
      const acct = await getAccount();
      usedAccount = acct.url;
      const result = await protocol.order(acct, name, { present, cleanUp, signal: lock.lost });
      if (lock.lost.aborted) throw new AcmeOrderError(`order for ${name} done after the fleet lock was lost; not stored`, undefined, undefined);
      const validity = parseValidity(result.certPem);
      const cert: StoredCertificate = { name, certPem: result.certPem, keyPem: result.keyPem, ...validity, issuerDirectory: config.directory, storedAt: Date.now() };
      await store.putCertificate(cert);
      const next = renewalAt(validity.notBefore, validity.notAfter);
      await store.putMeta({ name, ...validity, nextRenewalAt: next, attempts: 0, lastOrderAt: Date.now(), issuerDirectory: config.directory });
      opts.onOrder?.('success');
      install(cert);
      notBefore.delete(name);
      return next;
    } catch (e) {
      opts.onOrder?.('failure');
      const err = e instanceof AcmeOrderError ? e : new AcmeOrderError((e as Error).message ?? String(e), undefined, undefined, { cause: e });
      // The CA forgot the account (a reset test CA) or refuses it (deactivated or revoked: Pebble and
      // Boulder answer `unauthorized` "Account has been deactivated"): the next attempt makes a new
      // one, soon (not after the usual backoff) but only once per dead account, so no tight loop.
      const deadAccount =
        usedAccount !== undefined &&
        usedAccount !== deadAccountUrl &&
        (err.problemType?.endsWith(':accountDoesNotExist') === true || (err.problemType?.endsWith(':unauthorized') === true && /deactivated|revoked/i.test(err.message)));
      if (deadAccount) {
        deadAccountUrl = usedAccount;
        account = undefined;
      }
      const attempts = (meta?.attempts ?? 0) + 1;
      const next = Date.now() + (deadAccount ? jitter(DEAD_ACCOUNT_RETRY_MS) : retryDelay(attempts, err.retryAfterMs));
      const message = err.problemType ? `${err.message} (${err.problemType})` : err.message;
      log.warn(`ACME: order for ${name} failed (attempt ${attempts}, next at ${new Date(next).toISOString()}): ${message}`);
      notBefore.set(name, next);
      await store
        .putMeta({
          ...(meta ?? {}),
          name,
          lastError: message.slice(0, 2000),
          lastErrorAt: Date.now(),
          attempts,
          nextRenewalAt: next,
        })
        .catch((pe: unknown) => log.warn(`ACME: cannot record the failure for ${name}: ${(pe as Error).message}`));
      return next;
    } finally {
      await lock.release();
    }
  }

  /** One check of one name: serve what is stored; order under the fleet lock when due. */
  function maintain(name: string): Promise<void> {
    const running = busy.get(name);
    if (running) return running;
    const p = (async () => {
      let next: number;
      try {
        const now = Date.now();
        const stored = await readStored(name);
        if (stored) install(stored);
        const when = stored ? await renewalTime(name, stored, now) : undefined;
        if (stored && when && now < when.due) {
          next = when.next;
        } else if ((notBefore.get(name) ?? 0) > now) {
          next = notBefore.get(name)!;
        } else {
          const wait = backingOff(await store.getMeta(name).catch(() => undefined), now);
          next = wait ?? (closed ? now : await orderUnderLock(name));
        }
      } catch (e) {
        // The store is unreachable, or a bug: keep serving, look again later.
        log.warn(`ACME: cannot check ${name}: ${(e as Error).message}`);
        next = Date.now() + jitter(60_000);
      }
      schedule(name, next);
    })().finally(() => busy.delete(name));
    busy.set(name, p);
    return p;
  }

  async function onWatch(name: string): Promise<void> {
    if (closed || !(managed.has(name) || served.has(name))) return;
    const cert = await readStored(name);
    if (cert) {
      install(cert);
      if (!needsRenewal(cert, Date.now())) schedule(name, renewalAt(cert.notBefore, cert.notAfter));
    }
  }

  async function allowedOnDemand(name: string): Promise<boolean> {
    if (!config.onDemand || !isAcmeName(name)) return false;
    if (managed.has(name) || opts.hostAllowed(name)) return true;
    return config.ask !== undefined && (await askPermission(config.ask, name));
  }

  const source: ChallengeSource = {
    http01: (token, host) => http01Answer(store, token, host),
    async alpn(name) {
      const c = await store.getChallenge('tls-alpn-01', name);
      return c ? { cert: c.certPem, key: c.keyPem } : undefined;
    },
    ...(config.onDemand
      ? {
          async onDemand(name: string) {
            if (!(await allowedOnDemand(name))) {
              log.info(`ACME on-demand: refused a handshake for '${name}' (no route for it${config.ask ? ', and --acme-ask did not allow it' : ''})`);
              return undefined;
            }
            managed.add(name);
            const done = maintain(name);
            let timer: NodeJS.Timeout | undefined;
            await Promise.race([done, new Promise((r) => (timer = setTimeout(r, ON_DEMAND_WAIT_MS)))]);
            clearTimeout(timer);
            const s = served.get(name);
            return s ? { cert: s.cert, key: s.key } : undefined;
          },
        }
      : {}),
  };

  return {
    source,
    installed: () => served,
    async start() {
      unwatch = store.watchCertificates((name) => void onWatch(name).catch((e: unknown) => log.warn(`ACME: reload of ${name}: ${(e as Error).message}`)));
      // Whatever is stored is served before the public port opens; orders run in the background.
      for (const name of managed) {
        const stored = await readStored(name);
        if (stored) install(stored);
      }
      for (const name of managed) void maintain(name);
    },
    async close() {
      closed = true;
      unwatch?.();
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
      await Promise.allSettled([...busy.values()]);
    },
    async status() {
      const metas = new Map<string, CertificateMeta>();
      for (const e of await store.listMeta()) if (e.value) metas.set(e.name, e.value);
      const names = new Set([...managed, ...served.keys()]);
      return [...names].sort().map((name) => {
        const m = metas.get(name);
        const s = served.get(name);
        return {
          name,
          served: s !== undefined,
          ...(m ?? {}),
          // Validity describes what this replica serves: the store's metadata may already name a
          // certificate another replica just obtained that this one has not installed yet.
          ...(s ? { notBefore: s.notBefore, notAfter: s.notAfter } : {}),
        };
      });
    },
  };
}
