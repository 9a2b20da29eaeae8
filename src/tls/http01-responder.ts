// HTTP-01 answers (RFC 8555 §8.3), run first on every plain-HTTP listener (the redirect port, the
// proxy port) before redirects and routing. Only `GET|HEAD /.well-known/acme-challenge/<token>`
// with a base64url token and a Host is taken (answered 200 or 404); the ChallengeSource checks
// the Host (port stripped) against the name being validated (a DNS-rebinding guard, as CertMagic
// does). Anything else is left to the caller untouched.
//
// Answers come from the ChallengeSource (the shared store: any replica answers any token). Found
// answers are cached for a few seconds (Pebble and Let's Encrypt validate from several vantage
// points at once); misses are not cached, as a token may be stored a moment after it is asked for.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ChallengeSource } from './challenge-source.js';

const PREFIX = '/.well-known/acme-challenge/';
const TOKEN = /^[A-Za-z0-9_-]{16,256}$/;
const CACHE_MS = 10_000;
const CACHE_MAX = 1000;

export type Http01Responder = (req: IncomingMessage, res: ServerResponse) => boolean;

function hostName(host: string | undefined): string | undefined {
  if (host === undefined) return undefined;
  const h = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!;
  return h.toLowerCase().replace(/\.$/, '');
}

export function createHttp01Responder(source: Pick<ChallengeSource, 'http01'>, onError?: (e: unknown) => void): Http01Responder {
  const cache = new Map<string, { answer: string; until: number }>();

  async function lookup(token: string, host: string): Promise<string | undefined> {
    const key = token + ' ' + host;
    const hit = cache.get(key);
    if (hit && hit.until > Date.now()) return hit.answer;
    const answer = await source.http01(token, host);
    if (answer !== undefined) {
      if (cache.size >= CACHE_MAX) cache.clear();
      cache.set(key, { answer, until: Date.now() + CACHE_MS });
    }
    return answer;
  }

  return (req, res) => {
    const url = req.url;
    if (url === undefined || !url.startsWith(PREFIX)) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const token = url.slice(PREFIX.length);
    if (!TOKEN.test(token)) return false;
    const host = hostName(req.headers.host);
    if (host === undefined || host === '') return false;
    lookup(token, host).then(
      (answer) => {
        if (answer === undefined) {
          res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
          res.end('no such ACME challenge\n');
          return;
        }
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(answer), connection: 'close' });
        res.end(req.method === 'HEAD' ? undefined : answer);
      },
      (e: unknown) => {
        onError?.(e);
        res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
        res.end('challenge lookup failed\n');
      },
    );
    return true;
  };
}
