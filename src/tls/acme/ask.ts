// --acme-ask: on-demand TLS asks this URL whether a name may get a certificate, as Caddy's `ask`:
// GET <url>?domain=<name>; only a 2xx answer allows it; redirects are not followed (a 3xx is a
// no); 10 s timeout; any error is a no. Answers are cached for a minute (a burst of handshakes
// for one name asks once).

import { http, https } from '../../node-http.js';

const TIMEOUT_MS = 10_000;
const CACHE_MS = 60_000;
const cache = new Map<string, { allowed: boolean; until: number }>();

export async function askPermission(url: string, name: string): Promise<boolean> {
  const key = url + ' ' + name;
  const hit = cache.get(key);
  if (hit && hit.until > Date.now()) return hit.allowed;
  const u = new URL(url);
  u.searchParams.set('domain', name);
  const allowed = await new Promise<boolean>((resolve) => {
    const req = (u.protocol === 'https:' ? https() : http).get(u, { timeout: TIMEOUT_MS }, (res) => {
      res.resume();
      resolve(res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
  });
  if (cache.size > 10_000) cache.clear();
  cache.set(key, { allowed, until: Date.now() + CACHE_MS });
  return allowed;
}
