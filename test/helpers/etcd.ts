// Real etcd servers (Debian's etcd-server) on loopback ports, for store and HA tests.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { waitFor, type TestContextLike } from './servers.js';

/**
 * A free loopback port *below* the kernel's ephemeral range (32768-60999 by default). etcd needs its
 * ports up front, and a member that is killed and restarted binds them again: a port from the
 * ephemeral range (what listening on port 0 gives) can meanwhile be taken by any outgoing
 * connection on the machine, and the restart then fails with EADDRINUSE. Random ports in
 * 20000-32767 are only taken by explicit binds; each is checked free before use.
 */
const takenHere = new Set<number>();
async function etcdPort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_768);
    if (takenHere.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) {
      takenHere.add(port);
      return port;
    }
  }
  throw new Error('no free port for etcd in 20000-32767');
}

export interface EtcdMember {
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  proc: ChildProcess | undefined;
  log: string;
}

export interface EtcdCluster {
  members: EtcdMember[];
  /** "127.0.0.1:p1,127.0.0.1:p2,..." for --store etcd://... */
  endpoints: string;
  start(m: EtcdMember): Promise<void>;
  stop(m: EtcdMember, signal?: NodeJS.Signals): Promise<void>;
  /** The current leader, asked through each member's maintenance status API. */
  leader(): Promise<EtcdMember>;
  /** Wait until `m` answers healthy; fails at once, with the member's log, if it exits. */
  waitHealthy(m: EtcdMember, ms?: number): Promise<void>;
}

async function healthy(port: number, scheme = 'http'): Promise<boolean> {
  if (scheme === 'https') {
    // fetch cannot trust a private CA here; a TLS handshake plus etcd's startup log is enough.
    const tls = await import('node:tls');
    return new Promise((resolve) => {
      const s = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
  }
  try {
    const r = await fetch(`http://127.0.0.1:${port}/health`);
    return r.status === 200 && ((await r.json()) as { health: string }).health === 'true';
  } catch {
    return false;
  }
}

/**
 * A real etcd cluster of `size` members on loopback ports, killed in t.after. `extraArgs` are
 * added to every member's command line (e.g. auto-compaction for long runs).
 */
export async function startEtcd(t: TestContextLike, size = 1, tls?: { cert: string; key: string }, extraArgs: readonly string[] = []): Promise<EtcdCluster> {
  const scheme = tls ? 'https' : 'http';
  const base = mkdtempSync(join(tmpdir(), 'swy-etcd-'));
  const members: EtcdMember[] = [];
  for (let i = 0; i < size; i++) {
    members.push({ name: `m${i}`, clientPort: await etcdPort(), peerPort: await etcdPort(), dataDir: join(base, `m${i}`), proc: undefined, log: '' });
  }
  const initialCluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).join(',');
  const cluster: EtcdCluster = {
    members,
    endpoints: members.map((m) => `127.0.0.1:${m.clientPort}`).join(','),
    async start(m) {
      const proc = spawn('etcd', [
        '--name', m.name, '--data-dir', m.dataDir,
        '--listen-client-urls', `${scheme}://127.0.0.1:${m.clientPort}`, '--advertise-client-urls', `${scheme}://127.0.0.1:${m.clientPort}`,
        ...(tls ? ['--cert-file', tls.cert, '--key-file', tls.key] : []),
        '--listen-peer-urls', `http://127.0.0.1:${m.peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peerPort}`,
        '--initial-cluster', initialCluster, '--initial-cluster-state', 'new', '--initial-cluster-token', base,
        '--heartbeat-interval', '50', '--election-timeout', '500', '--logger', 'zap', '--log-level', 'warn',
        ...extraArgs,
      ], { stdio: ['ignore', 'pipe', 'pipe'] });
      m.proc = proc;
      proc.stdout!.on('data', (c: Buffer) => (m.log = (m.log + c).slice(-65536))); // the tail: bounded in long runs
      proc.stderr!.on('data', (c: Buffer) => (m.log = (m.log + c).slice(-65536)));
    },
    async stop(m, signal = 'SIGTERM') {
      const p = m.proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill(signal);
      await exited;
      m.proc = undefined;
    },
    async leader() {
      for (const m of members) {
        if (!m.proc) continue;
        try {
          const r = await fetch(`http://127.0.0.1:${m.clientPort}/v3/maintenance/status`, { method: 'POST', body: '{}' });
          const j = (await r.json()) as { header: { member_id: string }; leader: string };
          if (j.leader && j.leader === j.header.member_id) return m;
        } catch {
          // member down
        }
      }
      throw new Error('no leader');
    },
    async waitHealthy(m, ms = 30_000) {
      await waitFor(async () => {
        if (!m.proc || m.proc.exitCode !== null || m.proc.signalCode !== null) throw new Error(`etcd ${m.name} exited:\n${m.log.slice(-3000)}`);
        return healthy(m.clientPort, scheme);
      }, ms, `etcd ${m.name} healthy`);
    },
  };
  await Promise.all(members.map((m) => cluster.start(m)));
  t.after(async () => {
    for (const m of members) await cluster.stop(m, 'SIGKILL');
    rmSync(base, { recursive: true, force: true }); // ~120 MB per member (preallocated WAL)
  });
  await waitFor(async () => (await Promise.all(members.map((m) => healthy(m.clientPort, scheme)))).every(Boolean), 60_000, 'etcd healthy');
  return cluster;
}

export { healthy as etcdHealthy };
