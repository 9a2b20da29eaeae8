// ACME test helpers: Switchyard replicas that get their certificates from a test Pebble, and TLS
// handshakes that verify what they serve against Pebble's root.

import type { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import type { Pebble } from './pebble.js';
import { startSwitchyardProcess, waitFor, type SpawnedSwitchyard, type TestContextLike } from './servers.js';

export interface CertStatus {
  name: string;
  served: boolean;
  notBefore?: number;
  notAfter?: number;
  nextRenewalAt?: number;
  lastError?: string;
  attempts?: number;
}

export interface AcmeReplica extends SpawnedSwitchyard {
  /** The --redirect-port listener (HTTP-01 answers), bound on port 0. */
  redirectPort: number;
  certificates(): Promise<CertStatus[]>;
}

export async function startAcmeReplica(t: TestContextLike, pebble: Pebble, argv: string[], env: Record<string, string> = {}): Promise<AcmeReplica> {
  const sw = await startSwitchyardProcess(t, ['--workers', '1', '--acme-directory', pebble.directory, '--acme-directory-ca', pebble.directoryCa, '--redirect-port', '0', ...argv], env);
  // Logged right after the proxy and API lines, possibly in a later chunk of output.
  const re = /Added HTTP to HTTPS redirection from (\d+)/;
  await waitFor(() => re.test(sw.output()), 10_000, `the redirect port in the output:\n${sw.output()}`);
  const m = re.exec(sw.output())!;
  return {
    ...sw,
    redirectPort: Number(m[1]),
    async certificates() {
      const r = await sw.api('GET', '/api/certificates');
      if (r.status !== 200) throw new Error(`/api/certificates: ${r.status} ${r.body}`);
      return r.json<{ certificates: CertStatus[] }>().certificates;
    },
  };
}

/** Waits until `replica` serves a certificate for `name` (by its status API). */
export async function waitServed(replica: AcmeReplica, name: string, ms = 30_000, notAfterAbove = 0): Promise<CertStatus> {
  let found: CertStatus | undefined;
  await waitFor(
    async () => {
      found = (await replica.certificates()).find((c) => c.name === name && c.served && (c.notAfter ?? 0) > notAfterAbove);
      return found !== undefined;
    },
    ms,
    `a certificate for ${name} served by pid ${replica.pid}:\n${replica.output().slice(-3000)}`,
  );
  return found!;
}

export interface Handshake {
  /** The leaf certificate as served. */
  leaf: X509Certificate;
  /** The TLS socket, still open (the caller ends it). */
  socket: tls.TLSSocket;
}

/** A TLS handshake with SNI `name`, verified against `rootPem` (chain and hostname). */
export function handshake(port: number, name: string, rootPem: string, alpn?: string[]): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: name, ca: rootPem, ...(alpn ? { ALPNProtocols: alpn } : {}) }, () => {
      socket.setTimeout(0);
      const peer = socket.getPeerX509Certificate();
      if (!peer) return reject(new Error('no peer certificate'));
      resolve({ leaf: peer, socket });
    });
    socket.once('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error('handshake timeout')));
  });
}

/** The serial of the certificate served for `name` (verified), connection closed. */
export async function servedSerial(port: number, name: string, rootPem: string): Promise<string> {
  const h = await handshake(port, name, rootPem);
  h.socket.destroy();
  return h.leaf.serialNumber;
}
