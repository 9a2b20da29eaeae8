// The dashboard's static files (dashboard/ at the package root): a fixed list, read once and kept
// in memory, served with the headers every dashboard response carries.

import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';

/**
 * On every dashboard response: a strict Content-Security-Policy (scripts from this origin only) as
 * a second line against XSS, no sniffing, no framing, no referrer.
 */
export const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

const STATIC: Record<string, string> = {
  '/dashboard/': 'index.html',
  '/dashboard/index.html': 'index.html',
  '/dashboard/app.js': 'app.js',
  '/dashboard/style.css': 'style.css',
};
const MIME: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

export interface StaticFiles {
  /** The file a request path names, or undefined when it names none. */
  fileOf(path: string): string | undefined;
  serve(res: ServerResponse, file: string): void;
}

export function createStaticFiles(dir: URL): StaticFiles {
  const files = new Map<string, Buffer>();
  return {
    fileOf: (path) => STATIC[path],
    serve(res, file) {
      let body = files.get(file);
      if (body === undefined) {
        body = readFileSync(new URL(file, dir));
        files.set(file, body);
      }
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'content-type': MIME[file.split('.').pop()!]!,
        'content-length': body.length,
        'cache-control': 'no-cache',
      });
      res.end(body);
    },
  };
}
