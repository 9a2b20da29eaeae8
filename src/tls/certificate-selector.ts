// Certificate selection on the public TLS listener when certificates come from ACME.
//
// Contract:
// - `set(name, pem)` swaps the certificate for `name`: every handshake from then on gets the new
//   one; connections already open keep theirs (a SecureContext is chosen once per handshake).
// - A ClientHello that offers the `acme-tls/1` ALPN protocol is a TLS-ALPN-01 validation
//   (RFC 8737): it gets the stored challenge certificate for its SNI name, and the handshake then
//   carries no application data. Every other handshake (h2/http/1.1/no ALPN) is untouched.
//   Node calls ALPNCallback before SNICallback, and the context SNICallback returns wins, so the
//   ALPN callback only marks the socket and SNICallback serves the challenge certificate
//   (`this` is the TLSSocket in both: pinned by test/integration/acme-tls-alpn.test.ts).
// - An unknown SNI name is refused (handshake failure) unless on-demand TLS allows it; it never
//   causes an order by itself (ChallengeSource.onDemand decides).

import type { SecureContext, TLSSocket, TlsOptions } from 'node:tls';
import type { ChallengeSource, KeyCert } from './challenge-source.js';
import { tls } from '../node-http.js';

export const ACME_TLS_ALPN = 'acme-tls/1';
const ALPN_MARK = Symbol('acme-tls-alpn');

export interface CertificateSelector {
  set(name: string, pem: KeyCert): void;
  has(name: string): boolean;
  /** Options to spread into https.createServer (SNICallback, ALPNCallback). */
  serverOptions(): Pick<TlsOptions, 'SNICallback' | 'ALPNCallback'>;
}

function normalize(name: string | undefined): string {
  return (name ?? '').toLowerCase().replace(/\.$/, '');
}

export function createCertificateSelector(opts: {
  source: ChallengeSource;
  /** Names without SNI (IP clients) get this one: the first configured domain. */
  defaultName?: string | undefined;
  onError?: (e: unknown) => void;
}): CertificateSelector {
  const contexts = new Map<string, SecureContext>();
  const pending = new Map<string, Promise<KeyCert | undefined>>();

  function set(name: string, pem: KeyCert): void {
    contexts.set(normalize(name), tls().createSecureContext({ cert: pem.cert, key: pem.key }));
  }

  function lookup(name: string): SecureContext | undefined {
    const exact = contexts.get(name);
    if (exact) return exact;
    return opts.defaultName !== undefined && name === '' ? contexts.get(opts.defaultName) : undefined;
  }

  function onDemand(name: string): Promise<KeyCert | undefined> {
    let p = pending.get(name);
    if (!p) {
      p = opts.source.onDemand!(name).finally(() => pending.delete(name));
      pending.set(name, p);
    }
    return p;
  }

  return {
    set,
    has: (name) => contexts.has(normalize(name)),
    serverOptions: () => ({
      ALPNCallback(this: TLSSocket, info: { servername: string; protocols: string[] }) {
        if (info.protocols.includes(ACME_TLS_ALPN)) {
          (this as unknown as Record<symbol, boolean>)[ALPN_MARK] = true;
          return ACME_TLS_ALPN;
        }
        if (info.protocols.includes('http/1.1')) return 'http/1.1';
        if (info.protocols.includes('http/1.0')) return 'http/1.0';
        return undefined;
      },
      SNICallback(this: TLSSocket, servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) {
        const name = normalize(servername);
        if (this && (this as unknown as Record<symbol, boolean>)[ALPN_MARK]) {
          opts.source.alpn(name).then(
            (pem) => (pem ? cb(null, tls().createSecureContext({ cert: pem.cert, key: pem.key })) : cb(new Error(`no TLS-ALPN-01 challenge for ${name}`))),
            (e: unknown) => {
              opts.onError?.(e);
              cb(e as Error);
            },
          );
          return;
        }
        const ctx = lookup(name);
        if (ctx) return cb(null, ctx);
        if (opts.source.onDemand === undefined || name === '') return cb(new Error(`no certificate for '${name}'`));
        onDemand(name).then(
          (pem) => {
            if (!pem) return cb(new Error(`no certificate for '${name}'`));
            if (!contexts.has(name)) set(name, pem);
            cb(null, contexts.get(name));
          },
          (e: unknown) => {
            opts.onError?.(e);
            cb(e as Error);
          },
        );
      },
    }),
  };
}
