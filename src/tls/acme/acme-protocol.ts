// The ACME protocol (RFC 8555) through acme-client: account, order, challenges, finalize. No
// storage decisions, locks or scheduling here (acme-manager.ts owns those); challenge answers are
// handed to `present`/`cleanUp`, which write them to the shared store so any replica answers.

import https from 'node:https';
import { rootCertificates } from 'node:tls';
import acme from 'acme-client';
import type { AcmeConfig } from '../../config/acme-config.js';

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
/** acme-client uses one module-wide axios instance: point its HTTPS agent at our trust roots once. */
function configureTrust(directoryCa: Buffer | undefined): void {
  if (agentFor === directoryCa) return;
  agentFor = directoryCa;
  acme.axios.defaults.httpsAgent = new https.Agent({
    keepAlive: true,
    ...(directoryCa ? { ca: [...rootCertificates, directoryCa.toString('utf8')] } : {}),
  });
  // acme-client retries 429/5xx itself, up to 5 times: keep that short, our scheduler backs off.
  (acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }).acmeSettings.retryMaxAttempts = 2;
}

function describe(e: unknown): AcmeOrderError {
  if (e instanceof AcmeOrderError) return e;
  const err = e as Error & { response?: { headers?: Record<string, string>; data?: { type?: string; detail?: string } } };
  const msg = err.message ?? String(e);
  const m = /urn:ietf:params:acme:error:([A-Za-z]+)/.exec(msg);
  const type = err.response?.data?.type ?? (m ? `urn:ietf:params:acme:error:${m[1]}` : undefined);
  const ra = err.response?.headers?.['retry-after'];
  let retryAfterMs: number | undefined;
  if (ra !== undefined) {
    const secs = Number(ra);
    retryAfterMs = Number.isFinite(secs) ? secs * 1000 : Math.max(0, Date.parse(ra) - Date.now()) || undefined;
  }
  return new AcmeOrderError(msg, type, retryAfterMs, { cause: e });
}

export interface AcmeProtocol {
  /** Create an account (the caller stores it, under a lock). */
  createAccount(): Promise<AcmeAccount>;
  /** One order for one name, from newOrder to the PEM chain. */
  order(account: AcmeAccount, name: string, hooks: OrderHooks): Promise<{ certPem: string; keyPem: string }>;
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

  return {
    async createAccount() {
      try {
        const keyPem = (await acme.crypto.createPrivateEcdsaKey()).toString();
        const client = new acme.Client({ ...clientOpts, accountKey: keyPem });
        await client.createAccount({
          termsOfServiceAgreed: true,
          ...(config.email ? { contact: [`mailto:${config.email}`] } : {}),
        });
        return { keyPem, url: client.getAccountUrl() };
      } catch (e) {
        throw describe(e);
      }
    },

    async order(account, name, hooks) {
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
        throw describe(e);
      }
    },
  };
}
