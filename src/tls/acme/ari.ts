// ACME Renewal Information (RFC 9773), the pure parts: the certificate's ARI identifier, the
// server's suggested window, the point chosen inside it and how long to wait before asking again.
// Fetching and scheduling belong to the caller (no I/O here).

import { X509Certificate } from 'node:crypto';

export interface RenewalWindow {
  readonly windowStart: number;
  readonly windowEnd: number;
}

const b64url = (b: Buffer): string => b.toString('base64url');

/** DER length at `i`: [length, header bytes]. */
function derLength(der: Buffer, i: number): [number, number] {
  const first = der[i]!;
  if (first < 0x80) return [first, 1];
  const n = first & 0x7f;
  let len = 0;
  for (let k = 1; k <= n; k++) len = len * 256 + der[i + k]!;
  return [len, 1 + n];
}

/** The keyIdentifier of the Authority Key Identifier extension (2.5.29.35), or undefined. */
export function authorityKeyId(der: Buffer): Buffer | undefined {
  const oid = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x23]);
  let i = der.indexOf(oid);
  if (i < 0) return undefined;
  i += oid.length;
  if (der[i] === 0x01) i += 2 + der[i + 1]!; // critical BOOLEAN
  if (der[i] !== 0x04) return undefined; // extnValue OCTET STRING
  i += 1 + derLength(der, i + 1)[1];
  if (der[i] !== 0x30) return undefined; // AuthorityKeyIdentifier SEQUENCE
  i += 1 + derLength(der, i + 1)[1];
  if (der[i] !== 0x80) return undefined; // [0] keyIdentifier
  const [len, hdr] = derLength(der, i + 1);
  return der.subarray(i + 1 + hdr, i + 1 + hdr + len);
}

/** RFC 9773 §4.1: base64url(keyIdentifier) "." base64url(serial's DER INTEGER value bytes). */
export function ariCertIdFrom(keyIdentifier: Buffer, serialHex: string): string {
  let hex = serialHex.replace(/[^0-9a-fA-F]/g, '');
  if (hex.length % 2 === 1) hex = '0' + hex;
  while (hex.length > 2 && hex.startsWith('00') && parseInt(hex.slice(2, 3), 16) < 8) hex = hex.slice(2);
  if (parseInt(hex.slice(0, 1), 16) >= 8) hex = '00' + hex; // a positive INTEGER keeps its sign byte
  return `${b64url(keyIdentifier)}.${b64url(Buffer.from(hex, 'hex'))}`;
}

/** The ARI identifier of the leaf (first certificate of the PEM chain); undefined without an AKI. */
export function ariCertId(certPem: string): string | undefined {
  const leaf = new X509Certificate(certPem);
  const aki = authorityKeyId(leaf.raw);
  return aki ? ariCertIdFrom(aki, leaf.serialNumber) : undefined;
}

/** The renewalInfo response body: `{"suggestedWindow": {"start", "end"}}` (RFC 3339). Throws when invalid. */
export function parseRenewalInfo(body: unknown): RenewalWindow {
  const w = (body as { suggestedWindow?: { start?: unknown; end?: unknown } } | null)?.suggestedWindow;
  const start = typeof w?.start === 'string' ? Date.parse(w.start) : NaN;
  const end = typeof w?.end === 'string' ? Date.parse(w.end) : NaN;
  if (Number.isNaN(start) || Number.isNaN(end)) throw new Error('renewalInfo: no valid suggestedWindow start/end');
  if (end <= start) throw new Error('renewalInfo: suggestedWindow end is not after its start');
  return { windowStart: start, windowEnd: end };
}

/** A uniformly random point in the window (§4.2), so that a fleet's renewals spread out. */
export function ariRenewalAt(w: RenewalWindow, random: () => number = Math.random): number {
  return Math.floor(w.windowStart + (w.windowEnd - w.windowStart) * random());
}

export const ARI_DEFAULT_RECHECK_MS = 6 * 3_600_000;
const ARI_MIN_RECHECK_MS = 60_000;
const ARI_MAX_RECHECK_MS = 24 * 3_600_000;

/** When to ask again (§4.3): the response's Retry-After, clamped to [1 min, 24 h]; 6 h without one. */
export function ariRecheckMs(retryAfter: string | undefined | null, now: number = Date.now()): number {
  if (!retryAfter) return ARI_DEFAULT_RECHECK_MS;
  const secs = Number(retryAfter);
  const ms = Number.isFinite(secs) ? secs * 1000 : Date.parse(retryAfter) - now;
  if (Number.isNaN(ms)) return ARI_DEFAULT_RECHECK_MS;
  return Math.min(Math.max(ms, ARI_MIN_RECHECK_MS), ARI_MAX_RECHECK_MS);
}
