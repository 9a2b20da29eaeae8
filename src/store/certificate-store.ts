// CertificateStore: the state automatic HTTPS (ACME) shares between replicas, kept in the same
// backend as the routes (every RouteStore has one: `store.certificates`). Memory keeps it in this
// process, file in `<routes-file>.certs/`, etcd under `<prefix>acme/`.
//
// Contract (checked for all three by test/contract/certificate-store-contract.ts):
//  - Accounts (one per ACME directory URL), certificates and per-name metadata are get/put/list.
//    A certificate and its metadata are written separately: metadata (renewal schedule, last
//    error) changes often and carries no key material — it is what an API may show; certificates
//    and accounts hold private keys and must never be serialised by an API or the dashboard.
//  - Names are certificate names (a DNS name, `*.` wildcard or IP literal), 1-253 characters of
//    [A-Za-z0-9*._:-]; anything else is refused with SWY_CERT_INVALID. Names are stored as given
//    (callers normalise case).
//  - put validates what it writes (PEM that parses, a key that matches the certificate, numbers
//    that are times) and refuses bad data with SWY_CERT_INVALID. Data that reaches the backend
//    another way and does not parse (a hand edit, a torn disk, another tool) is reported for that
//    name only: get throws SWY_CERT_INVALID naming it, list returns it as `{ name, error }`, and
//    every other name stays readable. The store itself never fails because of one bad entry.
//  - watchCertificates(onChange) calls onChange(name) after a certificate of that name was put or
//    deleted by any replica, this one included, so a renewal on one replica reaches every other
//    one. Calls may be repeated or spurious (re-read the certificate; never trust order), and a
//    watcher that lost events (an etcd history compaction) is called for every stored name.
//    It does not replay: subscribe, then read listCertificates() once; every change made after
//    watchCertificates() returns is reported.
//  - Challenges (HTTP-01 key authorizations by token, TLS-ALPN-01 certificates by name) expire
//    `ttlMs` after put: get answers undefined after that, on every replica.
//  - Locks serialise ACME orders per name across the fleet: at most one holder per name at a time,
//    as long as holders keep running (see "Lock safety"). `tryLock` answers at once (undefined
//    when held elsewhere); `lock` waits up to `waitMs` (then SWY_CERT_LOCK_TIMEOUT). A held lock
//    stays held while its holder lives (etcd: lease keep-alive; file: heartbeat) and expires
//    `ttlMs` after the holder stops (process killed, etcd unreachable, host paused).
//  - **Callers must re-read storage after taking a lock**: another replica may have stored the
//    certificate while this one waited ("obtained during lock"). Order only if it is still needed.
//  - Lock safety: `lost` aborts when the store can no longer vouch for the lock (etcd: lease
//    expired or key gone; file: the lock file was taken over or removed; any store: close()).
//    A holder paused for longer than the TTL may learn this only at its next heartbeat, so check
//    `lost.aborted` right before storing an order's result and again before acting on it.
//    release() is idempotent and never throws for a lock already lost.
//  - close() (called by the owning RouteStore's close) releases every held lock, firing `lost`.

export interface StoredCertificate {
  readonly name: string;
  /** The leaf certificate, then the chain, PEM. */
  readonly certPem: string;
  /** The leaf's private key, PEM (PKCS#8 or traditional). */
  readonly keyPem: string;
  /** Validity of the leaf, ms since epoch. */
  readonly notBefore: number;
  readonly notAfter: number;
  /** The ACME directory URL that issued it. */
  readonly issuerDirectory?: string;
  /** When it was stored (ms since epoch); set by the caller. */
  readonly storedAt?: number;
}

/** Per-name state of automatic HTTPS; no key material (safe for GET /api/certificates). */
export interface CertificateMeta {
  readonly name: string;
  readonly notBefore?: number;
  readonly notAfter?: number;
  /** When the next renewal attempt is due (ms since epoch). */
  readonly nextRenewalAt?: number;
  readonly lastError?: string;
  readonly lastErrorAt?: number;
  /** Failed attempts since the last success. */
  readonly attempts?: number;
  readonly lastOrderAt?: number;
  readonly issuerDirectory?: string;
  /** ACME Renewal Information (RFC 9773), as last fetched. */
  readonly ari?: {
    readonly windowStart: number;
    readonly windowEnd: number;
    readonly selectedAt?: number;
    readonly retryAfter?: number;
  };
}

/** One entry of a list: a usable value, or why the stored value for that name is unusable. */
export type CertEntry<T> =
  | { readonly name: string; readonly value: T; readonly error?: undefined }
  | { readonly name: string; readonly value?: undefined; readonly error: string };

export interface HttpChallenge {
  readonly type: 'http-01';
  /** The identifier being validated: the responder answers only a request whose Host is this name. */
  readonly name: string;
  readonly token: string;
  readonly keyAuthorization: string;
}

export interface AlpnChallenge {
  readonly type: 'tls-alpn-01';
  /** The identifier being validated (the SNI the CA sends). */
  readonly name: string;
  /** The self-signed challenge certificate with the acmeIdentifier extension, and its key. */
  readonly certPem: string;
  readonly keyPem: string;
}

export type Challenge = HttpChallenge | AlpnChallenge;

export interface CertLock {
  /** Aborts when the lock can no longer be vouched for (see "Lock safety"), or on release/close. */
  readonly lost: AbortSignal;
  /** Give the lock up (idempotent). */
  release(): Promise<void>;
}

export interface LockOptions {
  /** How long the lock outlives a holder that stops (crash, partition). Default 30 s. */
  readonly ttlMs?: number;
}

export interface WaitLockOptions extends LockOptions {
  /** How long lock() waits for the holder to release or expire. Default 60 s. */
  readonly waitMs?: number;
  /** Stop waiting (rejects with the signal's reason). */
  readonly signal?: AbortSignal;
}

export interface CertificateStore {
  getAccount(directoryUrl: string): Promise<string | undefined>;
  /** `account`: opaque JSON (key PEM, account URL...); refused unless it parses as JSON. */
  putAccount(directoryUrl: string, account: string): Promise<void>;

  getCertificate(name: string): Promise<StoredCertificate | undefined>;
  putCertificate(cert: StoredCertificate): Promise<void>;
  /** Removes the certificate and its metadata; false when there was none. */
  deleteCertificate(name: string): Promise<boolean>;
  listCertificates(): Promise<readonly CertEntry<StoredCertificate>[]>;
  watchCertificates(onChange: (name: string) => void): () => void;

  getMeta(name: string): Promise<CertificateMeta | undefined>;
  putMeta(meta: CertificateMeta): Promise<void>;
  listMeta(): Promise<readonly CertEntry<CertificateMeta>[]>;

  putChallenge(challenge: Challenge, options: { readonly ttlMs: number }): Promise<void>;
  getChallenge(type: 'http-01', token: string): Promise<HttpChallenge | undefined>;
  getChallenge(type: 'tls-alpn-01', name: string): Promise<AlpnChallenge | undefined>;
  deleteChallenge(type: Challenge['type'], id: string): Promise<void>;

  tryLock(name: string, options?: LockOptions): Promise<CertLock | undefined>;
  lock(name: string, options?: WaitLockOptions): Promise<CertLock>;
}

export const DEFAULT_LOCK_TTL_MS = 30_000;
export const DEFAULT_LOCK_WAIT_MS = 60_000;
