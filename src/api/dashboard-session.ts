// Dashboard sign-in: the API token, or a dashboard user's name and password ([dashboard] users,
// bcrypt: dashboard-users.ts); either sets a session cookie.
//
// Contract:
//  - Sessions are stateless: a token session is <expiry>.<HMAC(key, expiry)>, a user session
//    u.<name>.<expiry>.<HMAC(key, name, expiry, the user's current hash)>, with a key derived from
//    the token, so any replica sharing the token accepts them and the server keeps no per-session
//    state. Changing the token logs everyone out; changing (or removing) a user's hash, then
//    reloading, logs that user out. Without a token (users only) the key is random per process:
//    sessions then last as long as the process. HttpOnly, SameSite=Strict, Path=/dashboard.
//  - Login and logout accept JSON bodies only: a cross-site HTML form cannot send one.
//  - Failures say only "invalid token" / "invalid user or password" / "login required" (401);
//    a failed login answers after a fixed delay; after 5 failures in a minute from one address,
//    429 with Retry-After until the minute is over (the password is not even checked then).
//  - Without a token and without users the dashboard is off (403).

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, SwitchyardError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { SECURITY_HEADERS } from './dashboard-static.js';
import { createTokenMatcher, readBody, sha256 } from './request.js';
import { createSignInLimiter, createUserDirectory } from './dashboard-users.js';

const COOKIE = 'switchyard_dashboard';
const SESSION_S = 12 * 3600;
const FAILED_LOGIN_DELAY_MS = 300;

export interface DashboardSession {
  /** Throws 403 when the dashboard is off, 401 without a valid session or token. */
  requireAuth(req: IncomingMessage): void;
  /** POST /dashboard/login: {"token": "..."} or {"user": "...", "password": "..."} -> 204 + session cookie | 401 | 429. */
  login(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** POST /dashboard/logout: clears the cookie. */
  logout(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** New [dashboard] users (a reload): a user whose hash changed or who is gone is signed out. */
  setUsers(lines: readonly string[]): void;
}

export function createDashboardSession(o: {
  authToken: string | undefined;
  users?: readonly string[];
  secureCookie: boolean;
  log: Logger;
}): DashboardSession {
  const tokenMatches = createTokenMatcher(o.authToken);
  const users = createUserDirectory(o.users ?? []);
  const limiter = createSignInLimiter();
  const key = o.authToken ? sha256('switchyard-dashboard-session-v1\0' + o.authToken) : randomBytes(32);
  const enabled = (): boolean => tokenMatches !== undefined || users.size() > 0;

  const mac = (text: string): Buffer => Buffer.from(createHmac('sha256', key).update(text).digest('base64url'));
  const sign = (expiry: number): string => mac(String(expiry)).toString();
  const signUser = (name: string, expiry: number, hash: string): string => mac(`u\0${name}\0${expiry}\0${hash}`).toString();
  const same = (want: Buffer, got: string): boolean => {
    const g = Buffer.from(got);
    return want.length === g.length && timingSafeEqual(want, g);
  };

  function sessionValid(req: IncomingMessage): boolean {
    const cookie = req.headers.cookie;
    if (!cookie) return false;
    const m = new RegExp(`(?:^|;\\s*)${COOKIE}=(?:u\\.([A-Za-z0-9_-]+)\\.)?(\\d+)\\.([A-Za-z0-9_-]+)`).exec(cookie);
    if (m === null) return false;
    const expiry = Number(m[2]);
    if (!(expiry > Date.now() / 1000)) return false;
    if (m[1] === undefined) return tokenMatches !== undefined && same(mac(String(expiry)), m[3]!);
    const name = Buffer.from(m[1], 'base64url').toString('utf8');
    const hash = users.hashOf(name);
    return hash !== undefined && same(mac(`u\0${name}\0${expiry}\0${hash}`), m[3]!);
  }

  function tokenValid(token: string): boolean {
    return tokenMatches !== undefined && tokenMatches(token);
  }

  function authorized(req: IncomingMessage): boolean {
    const m = /^token\s+(\S+)/.exec(req.headers.authorization ?? '');
    if (m !== null) return tokenValid(m[1]!);
    return sessionValid(req);
  }

  function cookie(value: string, maxAge: number): string {
    return `${COOKIE}=${value}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${o.secureCookie ? '; Secure' : ''}`;
  }

  async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
      throw new SwitchyardError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, 'send JSON (Content-Type: application/json)');
    }
    const text = await readBody(req, 4096);
    try {
      const v: unknown = JSON.parse(text);
      return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
    } catch (e) {
      throw new SwitchyardError(ErrorCode.BODY_INVALID_JSON, `Body not valid JSON: ${e as Error}`);
    }
  }

  const disabled = (): SwitchyardError => new SwitchyardError(ErrorCode.DASHBOARD_DISABLED, 'dashboard disabled: no API token and no dashboard users');

  return {
    requireAuth(req) {
      if (!enabled()) throw disabled();
      if (!authorized(req)) throw new SwitchyardError(ErrorCode.UNAUTHENTICATED, 'login required');
    },
    async login(req, res) {
      if (!enabled()) throw disabled();
      const address = req.socket.remoteAddress ?? '';
      const wait = limiter.retryAfter(address);
      if (wait > 0) {
        o.log.warn('dashboard login refused: too many failed attempts', { remote: address });
        res.setHeader('retry-after', String(wait));
        throw new SwitchyardError(ErrorCode.TOO_MANY_ATTEMPTS, `too many failed sign-ins; try again in ${wait} s`);
      }
      const body = await readJson(req);
      const expiry = Math.floor(Date.now() / 1000) + SESSION_S;
      let value: string;
      if (typeof body.user === 'string' || typeof body.password === 'string') {
        const name = typeof body.user === 'string' ? body.user : '';
        const ok = await users.verify(name, typeof body.password === 'string' ? body.password : '');
        const hash = users.hashOf(name);
        if (!ok || hash === undefined) return failed(address, 'invalid user or password');
        value = `u.${Buffer.from(name).toString('base64url')}.${expiry}.${signUser(name, expiry, hash)}`;
        o.log.info('dashboard login', { user: name, remote: address });
      } else {
        if (!tokenValid(typeof body.token === 'string' ? body.token : '')) return failed(address, 'invalid token');
        value = `${expiry}.${sign(expiry)}`;
      }
      limiter.succeeded(address);
      res.writeHead(204, { ...SECURITY_HEADERS, 'set-cookie': cookie(value, SESSION_S), 'cache-control': 'no-store' });
      res.end();
    },
    async logout(req, res) {
      await readJson(req);
      res.writeHead(204, { ...SECURITY_HEADERS, 'set-cookie': cookie('', 0) });
      res.end();
    },
    setUsers(lines) {
      users.set(lines);
    },
  };

  async function failed(address: string, message: string): Promise<never> {
    limiter.failed(address);
    o.log.warn('dashboard login failed', { remote: address });
    await new Promise((r) => setTimeout(r, FAILED_LOGIN_DELAY_MS));
    throw new SwitchyardError(ErrorCode.UNAUTHENTICATED, message);
  }
}
