// Dashboard users: `[dashboard] users = ["alice:$2y$10$..."]`, htpasswd lines with bcrypt hashes
// (`htpasswd -nbB alice secret` prints one), and the limit on failed sign-ins.
//
// Contract:
//  - Only bcrypt ($2a$, $2b$, $2y$) is accepted: htpasswd's MD5/SHA1/crypt variants are weak.
//  - `verify` takes the same time whether the user exists or not: an unknown name is checked
//    against a dummy hash of the same cost, and hashes are compared with timingSafeEqual. It
//    answers only true/false: nothing tells an unknown user from a wrong password.
//  - bcryptjs (pure JS, no native build) hashes asynchronously in slices, so a sign-in does not
//    stall the event loop for the whole hash.
//  - The rate limiter counts failed sign-ins per client address in a fixed window; memory is
//    bounded (at most MAX_TRACKED addresses; the oldest is forgotten first).

import { timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcryptjs';
import { ErrorCode, SwitchyardError } from '../errors.js';

const LINE = /^([^:\s]+):(\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53})$/;

export interface DashboardUser {
  readonly name: string;
  readonly hash: string;
}

/** Parses htpasswd lines; throws CONFIG_INVALID naming the line (never echoing a hash). */
export function parseUsers(lines: readonly string[]): ReadonlyMap<string, DashboardUser> {
  const users = new Map<string, DashboardUser>();
  lines.forEach((raw, i) => {
    const m = LINE.exec(raw.trim());
    if (m === null) {
      const name = raw.split(':', 1)[0];
      throw new SwitchyardError(
        ErrorCode.CONFIG_INVALID,
        `[dashboard] users[${i}] (${JSON.stringify(name)}): expected "name:<bcrypt hash>" as printed by htpasswd -nbB (only $2a$/$2b$/$2y$ hashes)`,
      );
    }
    const cost = Number(m[3]);
    if (cost < 4 || cost > 31) throw new SwitchyardError(ErrorCode.CONFIG_INVALID, `[dashboard] users[${i}]: bcrypt cost ${cost} out of range`);
    if (users.has(m[1]!)) throw new SwitchyardError(ErrorCode.CONFIG_INVALID, `[dashboard] users[${i}]: user ${JSON.stringify(m[1])} listed twice`);
    users.set(m[1]!, { name: m[1]!, hash: m[2]! });
  });
  return users;
}

export interface UserDirectory {
  /** The user's current hash (sessions are bound to it), or undefined. */
  hashOf(name: string): string | undefined;
  /** True when `password` is the user's; same time and answer for an unknown user as for a wrong password. */
  verify(name: string, password: string): Promise<boolean>;
  set(lines: readonly string[]): void;
  size(): number;
}

export function createUserDirectory(lines: readonly string[]): UserDirectory {
  let users = parseUsers(lines);
  // A dummy hash per cost in use, made ahead (when the users are set), so that an unknown name
  // costs one bcrypt run of the same cost as a known one, from the first attempt on.
  const dummies = new Map<string, Promise<string>>();
  const dummyFor = (hash: string): Promise<string> => {
    const cost = hash.slice(4, 6);
    let d = dummies.get(cost);
    if (d === undefined) {
      d = bcrypt.hash('switchyard-dummy-password', Number(cost));
      dummies.set(cost, d);
    }
    return d;
  };
  const prepare = (): void => {
    for (const u of users.values()) void dummyFor(u.hash);
  };
  prepare();
  return {
    hashOf: (name) => users.get(name)?.hash,
    async verify(name, password) {
      const user = users.get(name);
      // The cost of the first configured user stands for every unknown name.
      const reference = user?.hash ?? users.values().next().value?.hash ?? '$2b$10$';
      const hash = user?.hash ?? (await dummyFor(reference));
      // bcrypt.hash with the stored hash as salt recomputes it; $2y$ is read as $2b$ (the same algorithm).
      const computed = await bcrypt.hash(password, hash);
      const a = Buffer.from(computed.slice(4));
      const b = Buffer.from(hash.slice(4));
      const same = a.length === b.length && timingSafeEqual(a, b);
      return same && user !== undefined;
    },
    set(next) {
      users = parseUsers(next);
      prepare();
    },
    size: () => users.size,
  };
}

export interface SignInLimiter {
  /** Seconds until `address` may try again, or 0 when it may now. */
  retryAfter(address: string): number;
  failed(address: string): void;
  succeeded(address: string): void;
}

export const MAX_TRACKED = 10_000;

export function createSignInLimiter(o: { maxFailures?: number; windowMs?: number; now?: () => number } = {}): SignInLimiter {
  const max = o.maxFailures ?? 5;
  const windowMs = o.windowMs ?? 60_000;
  const now = o.now ?? Date.now;
  const seen = new Map<string, { count: number; since: number }>();
  const entry = (address: string): { count: number; since: number } | undefined => {
    const e = seen.get(address);
    if (e !== undefined && now() - e.since >= windowMs) {
      seen.delete(address);
      return undefined;
    }
    return e;
  };
  return {
    retryAfter(address) {
      const e = entry(address);
      return e !== undefined && e.count >= max ? Math.max(1, Math.ceil((e.since + windowMs - now()) / 1000)) : 0;
    },
    failed(address) {
      const e = entry(address);
      if (e !== undefined) {
        e.count++;
        return;
      }
      if (seen.size >= MAX_TRACKED) seen.delete(seen.keys().next().value!);
      seen.set(address, { count: 1, since: now() });
    },
    succeeded(address) {
      seen.delete(address);
    },
  };
}
