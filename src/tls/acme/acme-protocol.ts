// The ACME protocol (RFC 8555) through acme-client: account, order, challenges, finalize. No
// storage decisions, locks or scheduling here (acme-manager.ts owns those); challenge answers are
// handed to `present`/`cleanUp`, which write them to the shared store so any replica answers.

import acme from 'acme-client';
import type { AcmeConfig } from '../../config/acme-config.js';
import { ariCertId, ariRecheckMs, parseRenewalInfo, type RenewalWindow } from './ari.js';
import { https, tls } from '../../node-http.js';

export interface AcmeAccount {
  readonly keyPem: string;
  readonly url: string;
}

export type PresentedChallenge =
  | { readonly type: 'http-01'; readonly name: string; readonly token: string; readonly keyAuthorization: string }
  | { readonly type: 'tls-alpn-01'; readonly name: string; readonly certPem: string; readonly keyPem: string };

export interface OrderHooks {
  present(c: PresentedChallenge): Promise<void>;
  cleanUp(c: PresentedChallenge): Promise<void>;
  /** Aborts the order between steps (the fleet lock was lost). */
  readonly signal: AbortSignal;
}

/** An ACME failure with what the scheduler needs: the server's problem type and Retry-After. */
export class AcmeOrderError extends Error {
  constructor(
    message: string,
    readonly problemType: string | undefined,
    readonly retryAfterMs: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

let agentFor: Buffer | undefined | null = null;

/**
 * The last ACME problem (RFC 8555 §6.7) any request of this process got back, with its
 * Retry-After: acme-client's errors carry only the problem's `detail`, and the scheduler needs the
 * type (rateLimited, badNonce...) and Retry-After. Orders of different names may run at once, so
 * an order only takes a problem recorded after it started (a rare mix-up costs one backoff step).
 */
let lastProblem: { at: number; type: string | undefined; retryAfterMs: number | undefined } | undefined;

/**
 * The last connection-level failure (refused, reset, TLS verification) of any request to the ACME
 * server. With retries off, acme-client's axios interceptor replaces such an error with a
 * TypeError ("Cannot read properties of undefined (reading 'config')": it validates a response
 * that never came), so the socket's own error is kept here and named instead.
 */
let lastNetworkError: { at: number; message: string } | undefined;

function retryAfterMs(header: unknown): number | undefined {
  if (typeof header !== 'string' || header === '') return undefined;
  const secs = Number(header);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function record(resp: { status?: number; headers?: Record<string, unknown>; data?: unknown } | undefined): void {
  if (!resp || resp.status === undefined || resp.status < 400) return;
  const data = resp.data as { type?: unknown } | undefined;
  lastProblem = {
    at: Date.now(),
    type: typeof data?.type === 'string' ? data.type : undefined,
    retryAfterMs: retryAfterMs(resp.headers?.['retry-after']),
  };
}

/** acme-client uses one module-wide axios instance: point its HTTPS agent at our trust roots once. */
function configureTrust(directoryCa: Buffer | undefined): void {
  if (agentFor === directoryCa) return;
  const first = agentFor === null;
  agentFor = directoryCa;
  const agent = new (https().Agent)({
    keepAlive: true,
    ...(directoryCa ? { ca: [...tls().rootCertificates, directoryCa.toString('utf8')] } : {}),
  });
  const connect = agent.createConnection.bind(agent);
  agent.createConnection = (options, callback) => {
    const socket = connect(options, callback);
    socket?.once('error', (e: NodeJS.ErrnoException) => {
      lastNetworkError = { at: Date.now(), message: `cannot reach the ACME server: ${e.message}` };
    });
    return socket;
  };
  acme.axios.defaults.httpsAgent = agent;
  if (!first) return;
  // acme-client would retry 429/5xx itself, sleeping for the whole Retry-After (hours, when rate
  // limited) while this replica holds the fleet lock: no retries there; the scheduler backs off.
  (acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }).acmeSettings.retryMaxAttempts = 0;
  acme.axios.interceptors.response.use(
    (resp) => {
      record(resp as unknown as Parameters<typeof record>[0]);
      return resp;
    },
    (e: unknown) => {
      record((e as { response?: Parameters<typeof record>[0] }).response);
      return Promise.reject(e);
    },
  );
}

function describe(e: unknown, since: number): AcmeOrderError {
  if (e instanceof AcmeOrderError) return e;
  const net = lastNetworkError && lastNetworkError.at >= since ? lastNetworkError : undefined;
  // acme-client's TypeError for a request that got no response: name the socket's error instead.
  const msg = net && e instanceof TypeError ? net.message : ((e as Error).message ?? String(e));
  const problem = lastProblem && lastProblem.at >= since ? lastProblem : undefined;
  return new AcmeOrderError(msg, problem?.type, problem?.retryAfterMs, { cause: e });
}

export interface AcmeProtocol {
  /** Create an account (the caller stores it, under a lock). */
  createAccount(): Promise<AcmeAccount>;
  /** One order for one name, from newOrder to the PEM chain. */
  order(account: AcmeAccount, name: string, hooks: OrderHooks): Promise<{ certPem: string; keyPem: string }>;
  /**
   * ACME Renewal Information (RFC 9773) for a certificate: the suggested window and when to ask
   * again, or undefined when the directory has no `renewalInfo` (or the certificate no AKI).
   * Throws when the server's answer is unusable (the caller falls back to the 1/3 ratio).
   */
  renewalInfo?(certPem: string): Promise<{ window: RenewalWindow; recheckMs: number } | undefined>;
}

export function createAcmeProtocol(config: AcmeConfig): AcmeProtocol {
  configureTrust(config.directoryCa);
  const clientOpts = {
    directoryUrl: config.directory,
    // Polling: acme-client's default minimum of 5 s makes every order take > 5 s.
    backoffAttempts: 12,
    backoffMin: 250,
    backoffMax: 10_000,
    ...(config.eab ? { externalAccountBinding: { kid: config.eab.kid, hmacKey: config.eab.hmacKey } } : {}),
  };

  let renewalInfoUrl: Promise<string | undefined> | undefined;
  const http = acme.axios as unknown as {
    get(url: string, opts?: { validateStatus?: (s: number) => boolean }): Promise<{ status: number; data: unknown; headers: Record<string, string | undefined> }>;
  };

  return {
    async renewalInfo(certPem) {
      renewalInfoUrl ??= http.get(config.directory).then((r) => {
        const u = (r.data as { renewalInfo?: unknown } | null)?.renewalInfo;
        return typeof u === 'string' ? u : undefined;
      });
      renewalInfoUrl.catch(() => (renewalInfoUrl = undefined));
      const base = await renewalInfoUrl;
      const id = base === undefined ? undefined : ariCertId(certPem);
      if (base === undefined || id === undefined) return undefined;
      const r = await http.get(`${base.replace(/\/$/, '')}/${id}`);
      return { window: parseRenewalInfo(r.data), recheckMs: ariRecheckMs(r.headers['retry-after']) };
    },
    async createAccount() {
      const since = Date.now();
      try {
        const keyPem = (await acme.crypto.createPrivateEcdsaKey()).toString();
        const client = new acme.Client({ ...clientOpts, accountKey: keyPem });
        await client.createAccount({
          termsOfServiceAgreed: true,
          ...(config.email ? { contact: [`mailto:${config.email}`] } : {}),
        });
        return { keyPem, url: client.getAccountUrl() };
      } catch (e) {
        throw describe(e, since);
      }
    },

    async order(account, name, hooks) {
      const since = Date.now();
      const client = new acme.Client({ ...clientOpts, accountKey: account.keyPem, accountUrl: account.url });
      const check = (): void => {
        if (hooks.signal.aborted) throw new AcmeOrderError(`order for ${name} abandoned: the fleet lock was lost`, undefined, undefined);
      };
      try {
        const order = await client.createOrder({ identifiers: [{ type: 'dns', value: name }] });
        const authorizations = await client.getAuthorizations(order);
        for (const authz of authorizations) {
          check();
          if (authz.status === 'valid') continue;
          const challenge = authz.challenges.find((c) => c.type === config.challenge);
          if (!challenge) throw new AcmeOrderError(`the ACME server offers no ${config.challenge} challenge for ${name}`, undefined, undefined);
          const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
          let presented: PresentedChallenge;
          if (challenge.type === 'http-01') {
            presented = { type: 'http-01', name, token: challenge.token, keyAuthorization };
          } else {
            const [key, cert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization);
            presented = { type: 'tls-alpn-01', name, certPem: cert.toString(), keyPem: key.toString() };
          }
          await hooks.present(presented);
          try {
            await client.completeChallenge(challenge);
            await client.waitForValidStatus(challenge);
          } finally {
            await hooks.cleanUp(presented).catch(() => {});
          }
        }
        check();
        const keyPem = await acme.crypto.createPrivateEcdsaKey();
        const [, csr] = await acme.crypto.createCsr({ commonName: name, altNames: [name] }, keyPem);
        const finalized = await client.finalizeOrder(order, csr);
        const certPem = await client.getCertificate(finalized);
        return { certPem, keyPem: keyPem.toString() };
      } catch (e) {
        throw describe(e, since);
      }
    },
  };
}
