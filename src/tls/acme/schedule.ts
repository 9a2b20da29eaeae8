// When to renew and when to retry (pure; no timers here).
//
// Renewal: with a third of the lifetime left (a ratio, not a number of days: 90-, 45- and 6-day
// certificates all renew in time), as CertMagic does; `needsRenewal` is also true once expired.
// Retries after failures: minutes growing to hours (CertMagic's intervals, capped at 6 h), with
// ±10% jitter so that replicas and restarts do not retry in step; a server-sent Retry-After (429,
// rateLimited) is honoured when it is later.

export const RENEW_RATIO = 1 / 3;

export function renewalAt(notBefore: number, notAfter: number): number {
  return notAfter - (notAfter - notBefore) * RENEW_RATIO;
}

export function needsRenewal(cert: { notBefore: number; notAfter: number }, now: number): boolean {
  return now >= renewalAt(cert.notBefore, cert.notAfter);
}

const MIN = 60_000;
const RETRY_STEPS = [1, 2, 2, 5, 10, 10, 10, 20, 20, 20, 20, 30, 30, 30, 30, 30, 30, 60, 60, 60, 120, 120, 180, 180, 360].map((m) => m * MIN);

/** Delay before retry number `attempts` (1 = after the first failure). */
export function retryDelay(attempts: number, retryAfterMs: number | undefined, random: () => number = Math.random): number {
  const base = RETRY_STEPS[Math.min(Math.max(attempts, 1), RETRY_STEPS.length) - 1]!;
  const jittered = base * (0.9 + 0.2 * random());
  return Math.round(Math.max(jittered, retryAfterMs ?? 0));
}

/** Interval jitter for the periodic check: up to ±10%. */
export function jitter(ms: number, random: () => number = Math.random): number {
  return Math.round(ms * (0.9 + 0.2 * random()));
}
