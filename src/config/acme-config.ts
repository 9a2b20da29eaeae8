// ACME settings (--acme-*): validated here, into plain values. Kept out of config.ts so the
// whole ACME surface of the configuration is in one place.

import { readFileSync } from 'node:fs';
import { ErrorCode, SwitchyardError } from '../errors.js';

export const LETSENCRYPT_PRODUCTION = 'https://acme-v02.api.letsencrypt.org/directory';
export const LETSENCRYPT_STAGING = 'https://acme-staging-v02.api.letsencrypt.org/directory';

export type AcmeChallenge = 'http-01' | 'tls-alpn-01';

export interface AcmeConfig {
  /** Names ordered at start-up and kept renewed (--acme-domain, repeatable). */
  readonly domains: readonly string[];
  readonly email: string | undefined;
  readonly directory: string;
  /** PEM certificates trusted (besides the system roots) for the ACME server's own HTTPS. */
  readonly directoryCa: Buffer | undefined;
  readonly challenge: AcmeChallenge;
  /** External account binding: key id (acme-eab-kid) and HMAC key (base64url; the secret acme-eab-hmac). */
  readonly eab: { readonly kid: string; readonly hmacKey: string } | undefined;
  /** On-demand TLS: order at the first handshake for a name that has a route (or that --acme-ask allows). */
  readonly onDemand: boolean;
  readonly ask: string | undefined;
  /** How often certificates are checked for renewal (jittered by up to 10%). */
  readonly checkIntervalMs: number;
}

/** As config.ts: the message and details name the setting (`key`) and the `reason`. */
function invalid(key: string, reason: string): SwitchyardError {
  return new SwitchyardError(ErrorCode.CONFIG_INVALID, `--${key}: ${reason}`, { details: { key, reason } });
}

// A DNS name as ACME accepts it for http-01/tls-alpn-01: letters, digits, hyphens, dots; no wildcard.
const DNS_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function isAcmeName(name: string): boolean {
  return DNS_NAME.test(name) && !/^[0-9.]+$/.test(name);
}

/**
 * `v`: the settings as given (no defaults applied: schema.ts has the same ones). undefined when no
 * acme-* setting is given (ACME off).
 */
export function buildAcmeConfig(v: Readonly<Record<string, unknown>>): AcmeConfig | undefined {
  const str = (k: string): string | undefined => v[k] as string | undefined;
  const domains = ((v['acme-domain'] as readonly string[] | undefined) ?? []).map((d) => d.trim().toLowerCase().replace(/\.$/, ''));
  const onDemand = v['acme-on-demand'] === true;
  const any = Object.keys(v).some((k) => k.startsWith('acme-') && v[k] !== undefined && v[k] !== false);
  if (!any) return undefined;
  if (domains.length === 0 && !onDemand) throw invalid('acme-domain', 'ACME needs at least one name (or acme-on-demand)');
  for (const d of domains) {
    if (!isAcmeName(d)) throw invalid('acme-domain', `'${d}' is not a DNS name (wildcards need DNS-01, which is not supported)`);
  }
  let directory = str('acme-directory') ?? LETSENCRYPT_PRODUCTION;
  if (directory === 'letsencrypt-staging') directory = LETSENCRYPT_STAGING;
  else if (directory === 'letsencrypt') directory = LETSENCRYPT_PRODUCTION;
  let url: URL;
  try {
    url = new URL(directory);
  } catch {
    throw invalid('acme-directory', `must be an https URL, 'letsencrypt' or 'letsencrypt-staging'; got '${directory}'`);
  }
  if (url.protocol !== 'https:') throw invalid('acme-directory', `must be an https URL; got '${directory}'`);
  let directoryCa: Buffer | undefined;
  if (str('acme-directory-ca') !== undefined) {
    try {
      directoryCa = readFileSync(str('acme-directory-ca')!);
    } catch (e) {
      throw invalid('acme-directory-ca', `cannot read file ${str('acme-directory-ca')}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
  }
  const challenge = str('acme-challenge') ?? 'http-01';
  if (challenge !== 'http-01' && challenge !== 'tls-alpn-01') throw invalid('acme-challenge', `must be http-01 or tls-alpn-01; got '${challenge}'`);
  let eab: AcmeConfig['eab'];
  if (str('acme-eab-kid') !== undefined) {
    const hmacKey = str('acme-eab-hmac');
    if (!hmacKey) throw invalid('acme-eab-kid', 'needs the HMAC key: acme-eab-hmac (SWITCHYARD_ACME_EAB_HMAC, or acme-eab-hmac-file)');
    eab = { kid: str('acme-eab-kid')!, hmacKey };
  }
  const ask = str('acme-ask');
  if (ask !== undefined) {
    let u: URL;
    try {
      u = new URL(ask);
    } catch {
      throw invalid('acme-ask', `must be an http(s) URL; got '${ask}'`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw invalid('acme-ask', `must be an http(s) URL; got '${ask}'`);
  }
  const check = v['acme-check-interval'] as number | undefined;
  if (check !== undefined && (check < 100 || check > 86_400_000)) throw invalid('acme-check-interval', `must be 100..86400000 ms; got ${check}`);
  const email = str('acme-email');
  if (email !== undefined && !/^[^@\s]+@[^@\s]+$/.test(email)) throw invalid('acme-email', `'${email}' is not an email address`);
  return {
    domains: [...new Set(domains)],
    email,
    directory,
    directoryCa,
    challenge,
    eab,
    onDemand,
    ask,
    checkIntervalMs: check ?? 10 * 60_000,
  };
}
