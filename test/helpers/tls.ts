// Self-signed certificates for TLS tests, made with the openssl CLI into a temp dir.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { processTempDir } from './temp.js';

export interface TestCert {
  dir: string;
  key: string;
  cert: string;
  certPem: Buffer;
  keyPem: Buffer;
}

let cached: TestCert | undefined;

export function testCert(): TestCert {
  if (cached) return cached;
  const dir = processTempDir('swy-tls-');
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ], { stdio: 'ignore' });
  cached = { dir, key, cert, certPem: readFileSync(cert), keyPem: readFileSync(key) };
  return cached;
}
