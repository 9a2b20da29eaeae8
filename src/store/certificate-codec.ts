// What every CertificateStore backend stores, and the one place it is validated: on the way in
// (put refuses bad data) and on the way out (data that reached the backend another way is
// reported for its name, never thrown past it). Values are stored as JSON text.

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { ErrorCode, SwitchyardError } from '../errors.js';
import type { AlpnChallenge, CertificateMeta, Challenge, HttpChallenge, StoredCertificate } from './certificate-store.js';

const NAME = /^[A-Za-z0-9*._:-]{1,253}$/;
const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;
const KEY_AUTHORIZATION = /^[A-Za-z0-9_-]{1,256}\.[A-Za-z0-9_-]{1,256}$/;
const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;
/** Bounds a stored error message (metadata is listed by the API). */
const MAX_ERROR_CHARS = 4096;

export function certInvalid(what: string, id: string, reason: string, cause?: unknown): SwitchyardError {
  return new SwitchyardError(ErrorCode.CERT_INVALID, `certificate store: ${what} ${JSON.stringify(id)} is unusable: ${reason}`, {
    ...(cause === undefined ? {} : { cause }),
    details: { what, id },
  });
}

/** A certificate name (DNS name, `*.` wildcard, IP literal); throws SWY_CERT_INVALID otherwise. */
export function checkName(name: unknown): string {
  if (typeof name !== 'string' || !NAME.test(name) || name === '.' || name === '..') {
    throw certInvalid('name', String(name), 'a name is 1-253 characters of [A-Za-z0-9*._:-]');
  }
  return name;
}

export function checkToken(token: unknown): string {
  if (typeof token !== 'string' || !TOKEN.test(token)) throw certInvalid('http-01 token', String(token), 'a token is 1-256 base64url characters');
  return token;
}

/** The id a challenge is stored under: its token (http-01) or name (tls-alpn-01). */
export function challengeId(c: Challenge): string {
  return c.type === 'http-01' ? c.token : c.name;
}

export function checkChallengeId(type: Challenge['type'], id: string): string {
  return type === 'http-01' ? checkToken(id) : checkName(id);
}

type Problem = string | undefined;

const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;
const optTime = (o: Record<string, unknown>, k: string): Problem => (o[k] === undefined || isTime(o[k]) ? undefined : `"${k}" must be a time (ms since epoch)`);
const optString = (o: Record<string, unknown>, k: string): Problem => (o[k] === undefined || typeof o[k] === 'string' ? undefined : `"${k}" must be a string`);

function asObject(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/** Every certificate in a PEM chain parses, and there is at least one; returns the leaf. */
function parseChain(pem: string): X509Certificate {
  const blocks = pem.match(PEM_CERT);
  if (!blocks) throw new Error('no PEM certificate');
  const certs = blocks.map((b) => new X509Certificate(b));
  return certs[0]!;
}

function certificateProblem(o: Record<string, unknown>, name: string): Problem {
  if (o.name !== name) return `"name" is ${JSON.stringify(o.name)}, expected ${JSON.stringify(name)}`;
  if (typeof o.certPem !== 'string') return '"certPem" must be a PEM string';
  if (typeof o.keyPem !== 'string') return '"keyPem" must be a PEM string';
  if (!isTime(o.notBefore) || !isTime(o.notAfter)) return '"notBefore" and "notAfter" must be times (ms since epoch)';
  if (o.notAfter <= o.notBefore) return '"notAfter" is not after "notBefore"';
  const p = optString(o, 'issuerDirectory') ?? optTime(o, 'storedAt');
  if (p) return p;
  let leaf: X509Certificate;
  try {
    leaf = parseChain(o.certPem);
  } catch (e) {
    return `"certPem" does not parse: ${(e as Error).message}`;
  }
  let key;
  try {
    key = createPrivateKey(o.keyPem);
  } catch (e) {
    return `"keyPem" does not parse: ${(e as Error).message}`;
  }
  if (!leaf.checkPrivateKey(key)) return '"keyPem" is not the key of the leaf certificate';
  return undefined;
}

/** Validated copy with only the known fields; throws SWY_CERT_INVALID. */
export function checkCertificate(value: unknown, name: string = checkName(asObject(value)?.name)): StoredCertificate {
  const o = asObject(value);
  const problem = o ? certificateProblem(o, name) : 'not a JSON object';
  if (problem !== undefined) throw certInvalid('certificate', name, problem);
  const c = o as unknown as StoredCertificate;
  return {
    name: c.name,
    certPem: c.certPem,
    keyPem: c.keyPem,
    notBefore: c.notBefore,
    notAfter: c.notAfter,
    ...(c.issuerDirectory === undefined ? {} : { issuerDirectory: c.issuerDirectory }),
    ...(c.storedAt === undefined ? {} : { storedAt: c.storedAt }),
  };
}

function metaProblem(o: Record<string, unknown>, name: string): Problem {
  if (o.name !== name) return `"name" is ${JSON.stringify(o.name)}, expected ${JSON.stringify(name)}`;
  for (const k of ['notBefore', 'notAfter', 'nextRenewalAt', 'lastErrorAt', 'lastOrderAt']) {
    const p = optTime(o, k);
    if (p) return p;
  }
  const p = optString(o, 'lastError') ?? optString(o, 'issuerDirectory');
  if (p) return p;
  if (o.attempts !== undefined && !(Number.isSafeInteger(o.attempts) && (o.attempts as number) >= 0)) return '"attempts" must be a whole number >= 0';
  if (o.ari !== undefined) {
    const a = asObject(o.ari);
    if (!a || !isTime(a.windowStart) || !isTime(a.windowEnd)) return '"ari" needs "windowStart" and "windowEnd" times';
    const q = optTime(a, 'selectedAt') ?? optTime(a, 'retryAfter');
    if (q) return `"ari": ${q}`;
  }
  return undefined;
}

/** Validated copy with only the known fields (lastError bounded); throws SWY_CERT_INVALID. */
export function checkMeta(value: unknown, name: string = checkName(asObject(value)?.name)): CertificateMeta {
  const o = asObject(value);
  const problem = o ? metaProblem(o, name) : 'not a JSON object';
  if (problem !== undefined) throw certInvalid('certificate metadata', name, problem);
  const m = o as unknown as CertificateMeta;
  const out: Record<string, unknown> = { name };
  for (const k of ['notBefore', 'notAfter', 'nextRenewalAt', 'lastError', 'lastErrorAt', 'attempts', 'lastOrderAt', 'issuerDirectory'] as const) {
    if (m[k] !== undefined) out[k] = k === 'lastError' ? m.lastError!.slice(0, MAX_ERROR_CHARS) : m[k];
  }
  if (m.ari) {
    const { windowStart, windowEnd, selectedAt, retryAfter } = m.ari;
    out.ari = { windowStart, windowEnd, ...(selectedAt === undefined ? {} : { selectedAt }), ...(retryAfter === undefined ? {} : { retryAfter }) };
  }
  return out as unknown as CertificateMeta;
}

/** Validated copy of a challenge; throws SWY_CERT_INVALID. */
export function checkChallenge(value: unknown, type?: Challenge['type'], id?: string): Challenge {
  const o = asObject(value);
  const t = type ?? o?.type;
  const what = `${String(t)} challenge`;
  const shownId = id ?? String(o?.token ?? o?.name);
  if (!o || o.type !== t) throw certInvalid(what, shownId, `"type" must be ${JSON.stringify(t)}`);
  if (t === 'http-01') {
    const token = checkToken(o.token);
    const name = checkName(o.name);
    if (id !== undefined && token !== id) throw certInvalid(what, shownId, `"token" is ${JSON.stringify(token)}`);
    if (typeof o.keyAuthorization !== 'string' || !KEY_AUTHORIZATION.test(o.keyAuthorization) || !o.keyAuthorization.startsWith(token + '.')) {
      throw certInvalid(what, shownId, '"keyAuthorization" must be "<token>.<thumbprint>"');
    }
    return { type: 'http-01', name, token, keyAuthorization: o.keyAuthorization } satisfies HttpChallenge;
  }
  if (t === 'tls-alpn-01') {
    const name = checkName(o.name);
    if (id !== undefined && name !== id) throw certInvalid(what, shownId, `"name" is ${JSON.stringify(name)}`);
    if (typeof o.certPem !== 'string' || typeof o.keyPem !== 'string') throw certInvalid(what, name, '"certPem" and "keyPem" must be PEM strings');
    try {
      const leaf = parseChain(o.certPem);
      if (!leaf.checkPrivateKey(createPrivateKey(o.keyPem))) throw new Error('"keyPem" is not the key of the certificate');
    } catch (e) {
      throw certInvalid(what, name, (e as Error).message, e);
    }
    return { type: 'tls-alpn-01', name, certPem: o.certPem, keyPem: o.keyPem } satisfies AlpnChallenge;
  }
  throw certInvalid('challenge', shownId, `unknown type ${JSON.stringify(t)}`);
}

export function checkTtl(ttlMs: unknown): number {
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) throw certInvalid('ttl', String(ttlMs), 'must be a positive number of ms');
  return ttlMs;
}

/** An account must be JSON text (opaque to the store). */
export function checkAccount(directoryUrl: string, account: unknown): string {
  if (typeof directoryUrl !== 'string' || directoryUrl.length === 0) throw certInvalid('ACME account', String(directoryUrl), 'the directory URL must be a non-empty string');
  if (typeof account !== 'string') throw certInvalid('ACME account', directoryUrl, 'must be a JSON string');
  try {
    JSON.parse(account);
  } catch {
    throw certInvalid('ACME account', directoryUrl, 'is not JSON');
  }
  return account;
}

// ---------------------------------------------------------------- stored records (JSON text)

/** Parse stored JSON text, or throw SWY_CERT_INVALID for `what` `id`. */
function parseStored(text: string, what: string, id: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw certInvalid(what, id, 'stored value is not JSON');
  }
}

export const decodeCertificate = (text: string, name: string): StoredCertificate => checkCertificate(parseStored(text, 'certificate', name), name);
export const decodeMeta = (text: string, name: string): CertificateMeta => checkMeta(parseStored(text, 'certificate metadata', name), name);

/** An account record: the directory URL beside the account, so a stored key can be checked against the URL asked for. */
export function encodeAccount(directoryUrl: string, account: string): string {
  return JSON.stringify({ directoryUrl, account });
}
export function decodeAccount(text: string, directoryUrl: string): string {
  const o = asObject(parseStored(text, 'ACME account', directoryUrl));
  if (!o || o.directoryUrl !== directoryUrl) throw certInvalid('ACME account', directoryUrl, 'stored record is for another directory or has no "directoryUrl"');
  return checkAccount(directoryUrl, o.account);
}

/** A challenge record: the challenge and when it expires (ms since epoch). */
export function encodeChallenge(c: Challenge, expiresAt: number): string {
  return JSON.stringify({ ...c, expiresAt });
}
/** The challenge, or undefined once expired; throws SWY_CERT_INVALID for a record that does not parse. */
export function decodeChallenge(text: string, type: Challenge['type'], id: string, now = Date.now()): Challenge | undefined {
  const o = asObject(parseStored(text, `${type} challenge`, id));
  if (!o || !isTime(o.expiresAt)) throw certInvalid(`${type} challenge`, id, '"expiresAt" must be a time');
  if (o.expiresAt <= now) return undefined;
  return checkChallenge(o, type, id);
}

/** Run `read` for one name; a SWY_CERT_INVALID becomes that name's list entry instead of failing the list. */
export async function entryOf<T>(name: string, read: () => T | Promise<T | undefined> | undefined): Promise<{ name: string; value: T } | { name: string; error: string } | undefined> {
  try {
    const value = await read();
    return value === undefined ? undefined : { name, value };
  } catch (e) {
    if (e instanceof SwitchyardError && e.code === ErrorCode.CERT_INVALID) return { name, error: e.message };
    throw e;
  }
}
