// A process's TCP sockets, read from /proc (Linux): its socket fds matched by inode against
// /proc/net/tcp and /proc/net/tcp6 (the test's network namespace). Exact where a connect probe is
// not: a probe to a closed ephemeral port can connect to itself (TCP simultaneous open, when the
// kernel happens to pick that port as the probe's own source port) or reach another test's
// server that took the port meanwhile.

import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

export interface TcpSocket {
  localPort: number;
  remotePort: number;
  listening: boolean;
}

function socketsByInode(): Map<string, TcpSocket> {
  const out = new Map<string, TcpSocket>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const c = line.trim().split(/\s+/);
      if (c.length < 10) continue;
      out.set(c[9]!, { localPort: parseInt(c[1]!.split(':')[1]!, 16), remotePort: parseInt(c[2]!.split(':')[1]!, 16), listening: c[3] === '0A' });
    }
  }
  return out;
}

/** The TCP sockets `pid` holds now (fds closed while reading are skipped; a process gone holds none). */
export function tcpSocketsOf(pid: number): TcpSocket[] {
  const byInode = socketsByInode();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return [];
  }
  const out: TcpSocket[] = [];
  for (const fd of fds) {
    let link: string;
    try {
      link = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    const s = byInode.get(/^socket:\[(\d+)\]$/.exec(link)?.[1] ?? '');
    if (s) out.push(s);
  }
  return out;
}

/** The ports `pid` listens on (TCP). */
export function listeningPorts(pid: number): Set<number> {
  return new Set(tcpSocketsOf(pid).filter((s) => s.listening).map((s) => s.localPort));
}

/** The direct children of `pid` (worker processes). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}
