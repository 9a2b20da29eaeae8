// What the REST API and the dashboard share about incoming requests: reading a bounded body and
// comparing a presented token with the configured one.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ErrorCode, SwitchyardError } from '../errors.js';

export function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/**
 * A constant-time check of a presented token against `token` (both hashed first, so lengths never
 * leak), or undefined when no token is configured.
 */
export function createTokenMatcher(token: string | undefined): ((candidate: string) => boolean) | undefined {
  if (!token) return undefined;
  const want = sha256(token);
  return (candidate) => timingSafeEqual(sha256(candidate), want);
}

/** The whole body as UTF-8; SWY_BODY_TOO_LARGE past `limit` bytes (declared or received). */
export function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) {
      reject(new SwitchyardError(ErrorCode.BODY_TOO_LARGE, `Body larger than ${limit} bytes`));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(new SwitchyardError(ErrorCode.BODY_TOO_LARGE, `Body larger than ${limit} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
