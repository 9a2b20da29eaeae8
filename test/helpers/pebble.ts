// Let's Encrypt's test ACME server (Debian's `pebble` + `pebble-challtestsrv`) on loopback, for the
// ACME tests. challtestsrv is only the DNS server: every name resolves to 127.0.0.1 (and no AAAA,
// which Pebble would try first). Pebble's validation authority dials `httpPort` (HTTP-01) and
// `tlsPort` (TLS-ALPN-01) on 127.0.0.1: the test passes the ports of its own balancer there, and
// points the balancer at the Switchyard replicas once they listen.
//
// Both processes are killed and their temp dir removed in t.after. A fresh Pebble has a fresh root
// CA and no accounts (nothing survives a restart of Pebble itself).

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import https from 'node:https';
import net, { type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { freePort, waitFor, type TestContextLike } from './servers.js';
import { tempDir } from './temp.js';
import { testCert } from './tls.js';

export interface Pebble {
  /** The ACME directory URL (https, served with testCert()). */
  readonly directory: string;
  /** PEM file that Pebble's own HTTPS certificate chains to: pass as --acme-directory-ca. */
  readonly directoryCa: string;
  /** Pebble's issuing root (changes on every Pebble start), from its management port. */
  root(): Promise<string>;
  /** Everything Pebble printed so far. */
  log(): string;
  /** Orders created so far (one "POST /order-plz" log line each... counted by Pebble's log). */
  orders(): number;
  /** Challenge validations attempted so far. */
  validations(): number;
}

export interface PebbleOptions {
  /** Where the validation authority connects for HTTP-01 and TLS-ALPN-01 (on 127.0.0.1). */
  readonly httpPort: number;
  readonly tlsPort: number;
  /** certificateValidityPeriod in seconds (Pebble's default: 5 years). */
  readonly validitySeconds?: number;
}

function startProcess(t: TestContextLike, cmd: string, args: string[], env: Record<string, string>): { proc: ChildProcess; output: () => string } {
  const proc = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  t.after(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const gone = once(proc, 'exit');
      proc.kill('SIGKILL');
      await gone;
    }
  });
  return { proc, output: () => out };
}

export async function startPebble(t: TestContextLike, opts: PebbleOptions): Promise<Pebble> {
  const dir = tempDir(t, 'swy-pebble-');
  const tls = testCert();
  const [dnsPort, dnsMgmt, acmePort, mgmtPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const dns = startProcess(
    t,
    'pebble-challtestsrv',
    ['-dns01', `127.0.0.1:${dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${dnsMgmt}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', ''],
    {},
  );
  await waitFor(() => /Starting challenge servers|Answering A queries|DNS/.test(dns.output()) || dns.proc.exitCode !== null, 10_000, 'challtestsrv start');
  if (dns.proc.exitCode !== null) throw new Error(`pebble-challtestsrv exited: ${dns.output()}`);
  const config = {
    pebble: {
      listenAddress: `127.0.0.1:${acmePort}`,
      managementListenAddress: `127.0.0.1:${mgmtPort}`,
      certificate: tls.cert,
      privateKey: tls.key,
      httpPort: opts.httpPort,
      tlsPort: opts.tlsPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: false,
      ...(opts.validitySeconds !== undefined ? { certificateValidityPeriod: opts.validitySeconds } : {}),
    },
  };
  const configFile = join(dir, 'pebble-config.json');
  writeFileSync(configFile, JSON.stringify(config));
  const pebble = startProcess(t, 'pebble', ['-config', configFile, '-dnsserver', `127.0.0.1:${dnsPort}`], {
    PEBBLE_VA_NOSLEEP: '1',
    PEBBLE_WFE_NONCEREJECT: '0',
    // Deterministic order counts: an order never reuses an earlier authorization.
    PEBBLE_AUTHZREUSE: '0',
  });
  await waitFor(() => /ACME directory available at/.test(pebble.output()) || pebble.proc.exitCode !== null, 15_000, 'pebble start');
  if (pebble.proc.exitCode !== null) throw new Error(`pebble exited: ${pebble.output()}`);
  const count = (re: RegExp): number => pebble.output().match(re)?.length ?? 0;
  return {
    directory: `https://127.0.0.1:${acmePort}/dir`,
    directoryCa: tls.cert,
    log: pebble.output,
    orders: () => count(/POST \/order-plz/g),
    validations: () => count(/Attempting to validate/g),
    root: () =>
      new Promise<string>((resolve, reject) => {
        https
          .get(`https://127.0.0.1:${mgmtPort}/roots/0`, { ca: tls.certPem }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (body += c));
            res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`roots/0: ${res.statusCode}`))));
          })
          .on('error', reject);
      }),
  };
}

export interface Balancer {
  readonly port: number;
  /** Replace the backends (ports on 127.0.0.1); connections go round-robin over them. */
  setBackends(ports: number[]): void;
  /** Connections accepted so far, per backend port. */
  readonly counts: Map<number, number>;
}

/**
 * A round-robin TCP balancer on 127.0.0.1: the "load balancer in front of the replicas" that
 * Pebble's validation authority connects through. Connections that arrive before any backend is
 * set wait for one (replicas start ordering before the test knows their ports).
 */
export async function startBalancer(t: TestContextLike): Promise<Balancer> {
  let backends: number[] = [];
  let next = 0;
  const counts = new Map<number, number>();
  const sockets = new Set<Socket>();
  const queued: Socket[] = [];
  const server = net.createServer((client) => {
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    if (backends.length === 0) return void queued.push(client);
    route(client);
  });
  function route(client: Socket): void {
    if (client.destroyed) return;
    const port = backends[next++ % backends.length]!;
    counts.set(port, (counts.get(port) ?? 0) + 1);
    const upstream = net.connect(port, '127.0.0.1');
    sockets.add(upstream);
    upstream.once('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream).pipe(client);
  }
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });
  return {
    port: (server.address() as AddressInfo).port,
    setBackends(ports) {
      backends = [...ports];
      next = 0;
      if (backends.length > 0) for (const c of queued.splice(0)) route(c);
    },
    counts,
  };
}
