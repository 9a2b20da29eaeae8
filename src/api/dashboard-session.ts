// Dashboard sign-in: the API token, or a session cookie that login sets.
//
// Contract:
//  - Sessions are stateless: the cookie is <expiry>.<HMAC-SHA256(key, expiry)> with a key derived
//    from the token, so any replica sharing the token accepts it and the server keeps no per-
//    session state. Changing the token logs everyone out. HttpOnly, SameSite=Strict, Path=/dashboard.
//  - Login and logout accept JSON bodies only: a cross-site HTML form cannot send one.
//  - Failures say only "invalid token" / "login required" (401); a failed login answers after a
//    fixed delay. Without a token the dashboard is off (403).

import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, SwitchyardError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { SECURITY_HEADERS } from './dashboard-static.js';
import { createTokenMatcher, readBody, sha256 } from './request.js';

const COOKIE = 'switchyard_dashboard';
const SESSION_S = 12 * 3600;
const FAILED_LOGIN_DELAY_MS = 300;

export interface DashboardSession {
  /** Throws 403 when the dashboard is off, 401 without a valid session or token. */
  requireAuth(req: IncomingMessage): void;
  /** POST /dashboard/login: {"token": "..."} -> 204 + session cookie | 401. */
  login(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** POST /dashboard/logout: clears the cookie. */
  logout(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

export function createDashboardSession(o: { authToken: string | undefined; secureCookie: boolean; log: Logger }): DashboardSession {
  const tokenMatches = createTokenMatcher(o.authToken);
  const key = o.authToken ? sha256('switchyard-dashboard-session-v1\0' + o.authToken) : undefined;

  const sign = (expiry: number): string => createHmac('sha256', key!).update(String(expiry)).digest('base64url');

  function sessionValid(req: IncomingMessage): boolean {
    const cookie = req.headers.cookie;
    if (!cookie || key === undefined) return false;
    const m = new RegExp(`(?:^|;\\s*)${COOKIE}=(\\d+)\\.([A-Za-z0-9_-]+)`).exec(cookie);
    if (m === null) return false;
    const expiry = Number(m[1]);
    if (!(expiry > Date.now() / 1000)) return false;
    const want = Buffer.from(sign(expiry));
    const got = Buffer.from(m[2]!);
    return want.length === got.length && timingSafeEqual(want, got);
  }

  function tokenValid(token: string): boolean {
    return tokenMatches !== undefined && tokenMatches(token);
  }

  function authorized(req: IncomingMessage): boolean {
    if (tokenMatches === undefined) return false;
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

  return {
    requireAuth(req) {
      if (tokenMatches === undefined) throw new SwitchyardError(ErrorCode.DASHBOARD_DISABLED, 'dashboard disabled: no API token');
      if (!authorized(req)) throw new SwitchyardError(ErrorCode.UNAUTHENTICATED, 'login required');
    },
    async login(req, res) {
      if (tokenMatches === undefined) throw new SwitchyardError(ErrorCode.DASHBOARD_DISABLED, 'dashboard disabled: no API token');
      const body = await readJson(req);
      const token = typeof body.token === 'string' ? body.token : '';
      if (!tokenValid(token)) {
        o.log.warn('dashboard login failed', { remote: req.socket.remoteAddress });
        await new Promise((r) => setTimeout(r, FAILED_LOGIN_DELAY_MS));
        throw new SwitchyardError(ErrorCode.UNAUTHENTICATED, 'invalid token');
      }
      const expiry = Math.floor(Date.now() / 1000) + SESSION_S;
      res.writeHead(204, { ...SECURITY_HEADERS, 'set-cookie': cookie(`${expiry}.${sign(expiry)}`, SESSION_S), 'cache-control': 'no-store' });
      res.end();
    },
    async logout(req, res) {
      await readJson(req);
      res.writeHead(204, { ...SECURITY_HEADERS, 'set-cookie': cookie('', 0) });
      res.end();
    },
  };
}
