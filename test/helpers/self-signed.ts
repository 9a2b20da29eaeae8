// Small self-signed EC certificates (openssl CLI) for certificate-store tests: one per name,
// cached for the test process; the temp dir is removed at exit.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { processTempDir } from './temp.js';

export interface CertPair {
  readonly certPem: string;
  readonly keyPem: string;
  readonly notBefore: number;
  readonly notAfter: number;
}

let dir: string | undefined;
const cache = new Map<string, CertPair>();

export function selfSigned(cn: string): CertPair {
  const hit = cache.get(cn);
  if (hit) return hit;
  dir ??= processTempDir('swy-selfsigned-');
  const base = join(dir, String(cache.size));
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', `${base}.key`, '-out', `${base}.crt`, '-days', '2', '-subj', `/CN=${cn}`,
  ], { stdio: 'ignore' });
  const certPem = readFileSync(`${base}.crt`, 'utf8');
  const now = Date.now();
  const pair = { certPem, keyPem: readFileSync(`${base}.key`, 'utf8'), notBefore: now - 60_000, notAfter: now + 2 * 86_400_000 };
  cache.set(cn, pair);
  return pair;
}
