// Soak and chaos harness (issue 11, item 8): a 3-member etcd, 3 Switchyard replicas (the real CLI,
// default --workers), steady keep-alive load on stable routes through every live replica, route
// churn through the APIs, and a chaos schedule:
//   at 1/3 of the run  one replica is SIGKILLed and restarted;
//   at 2/3 of the run  one etcd member (the leader) is SIGKILLed and restarted.
// File descriptors and RSS of every process (replica primaries and their workers, etcd members)
// are sampled from /proc throughout.
//
// What counts as a failure (so the result does not depend on machine speed):
//  - a stable-route request that does not answer 200 from its own backend, or errors, or takes
//    longer than REQUEST_TIMEOUT_MS, on a replica the load client considers live. Before a replica
//    is killed the load client stops sending to it and waits for its in-flight requests (so nothing
//    is in flight at the kill); it resumes once the restarted process has printed its start-up
//    lines (the CLI serves the loaded table from then on).
//  - a churn write that does not answer 201/204. Reported with its time and reason, and whether it
//    fell inside a chaos window (a kill until CHAOS_SETTLE_MS after the restart is ready).
// Every loop is bounded in time; every process is killed at the end, also on failure
// (runSoak's finally, and killAll() for a signal handler).
//
// Entry points: runSoak() (used by test/soak/soak.test.ts for the short CI run) and
// bench/soak.mjs (the long run: DURATION=600 node bench/soak.mjs).

import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { startEtcd, type EtcdCluster, type EtcdMember } from '../helpers/etcd.js';
import { connectInspector, type LiveMemory } from '../helpers/inspector.js';
import { MAIN, waitFor } from '../helpers/servers.js';

export interface SoakOptions {
  /** Length of the measured run (load, churn and chaos), seconds. */
  readonly durationS: number;
  /** Stable-route requests per second, over all live replicas. */
  readonly loadRate?: number;
  /** Route changes per second through the APIs, over all live replicas. */
  readonly churnRate?: number;
  readonly stableRoutes?: number;
  readonly sampleMs?: number;
  /** `--workers` of each replica; undefined = the CLI's default (one per core). */
  readonly workers?: number;
  /** How long the killed etcd member stays down, ms. */
  readonly etcdDownMs?: number;
  /**
   * Seconds of etcd warm-up before the measured run (0 = none, the default): etcd in production is a
   * long-running service, not one started with Switchyard. After the cluster starts and before the
   * measured replicas do, 3 throwaway replicas on the same cluster (prefix WARMUP_PREFIX) carry the
   * run's workload (same stable routes, load rate and churn rate) for this long, then stop
   * (SIGTERM); what they wrote stays in etcd (see warmEtcd). The measured run, its chaos and its
   * judgement are unchanged; t=0 is after the warm-up.
   */
  readonly etcdWarmupS?: number;
  /** With a warm-up: SIGKILL the etcd leader at 1/3 of it and restart it after etcdDownMs (default true). */
  readonly etcdWarmupLeaderKill?: boolean;
  /**
   * Also read live memory (process.memoryUsage() after full GCs, test/helpers/inspector.ts) of every
   * replica primary and worker at the baseline and at the end, through the inspector: the replicas
   * are started with `--inspect=127.0.0.1:<free port>`, and cluster workers inherit it (Node gives each forked
   * worker the primary's inspector port + n). Why: RSS right after load is mostly garbage V8 has not
   * collected yet, so an RSS rise cannot tell a leak from a heap that has not levelled off. The
   * flatness verdict then judges Node processes on live memory (heapUsed + external); RSS is still
   * reported. Off by default: the forced full GCs perturb the RSS series and pause a busy process.
   */
  readonly liveMemory?: boolean;
  /** Progress lines (stderr in bench/soak.mjs, diagnostics in the test). */
  readonly log?: (line: string) => void;
}

const TOKEN = 'soak-token';
const REQUEST_TIMEOUT_MS = 10_000;
const CHAOS_SETTLE_MS = 10_000;
const MAX_INFLIGHT_PER_REPLICA = 16;
const CHURN_PATHS = 200;

interface Sample {
  readonly t: number; // seconds since the run started
  readonly fds: number;
  readonly rssKb: number;
  /** RSS split (/proc/<pid>/status): anonymous memory (heaps) and file-backed pages (the binary; etcd's mmapped bbolt file). */
  readonly rssAnonKb?: number;
  readonly rssFileKb?: number;
  /** The fds by kind: TCP to etcd / to backends / accepted from clients / listening, other sockets, files. */
  readonly kinds?: Record<string, number>;
  /**
   * The fds that do not follow the load's concurrency, i.e. what the ±10% fd target judges: all
   * fds except a worker's pooled upstream sockets (`to-backend`: undici opens one per concurrent
   * request to an origin and closes it after 4 s idle, so their number follows how many requests
   * were in flight at once in the last seconds; they are checked against a bound instead, see
   * ProcessFigures.upstream) and the harness's own HTTP connections to an etcd member
   * (`from-harness`: its /metrics scrapes and health/leader checks, not the system under test).
   */
  readonly steadyFds?: number;
  /** etcd members: the Go runtime's and bbolt's figures from /metrics at this sample (KiB), once the scrape answered. */
  go?: GoSample;
}

/** An etcd member's memory as its Go runtime and bbolt see it (KiB), from /metrics. */
export interface GoSample {
  /** Heap spans in use (objects live or not yet swept). */
  readonly heapInuseKb: number;
  /** Heap memory held but idle and not returned to the OS (heap_idle - heap_released): resident once touched. */
  readonly heapRetainedKb: number;
  /** The heap size at which the next GC starts: ~ live heap at the end of the last GC x (1 + GOGC/100) (Go 1.18+ adds stacks and globals to the growth), the Go analogue of live memory after a GC. */
  readonly nextGcKb: number;
  readonly stackInuseKb: number;
  /** All memory the Go runtime has mapped (heap, stacks, runtime structures). */
  readonly sysKb: number;
  /** bbolt database file (mmapped: its touched pages are file-backed RSS) and the part of it in use. */
  readonly dbSizeKb: number;
  readonly dbInUseKb: number;
}

interface TrackedProcess {
  readonly name: string; // e.g. "r1#0 primary", "r1#0 worker 12345", "etcd m0#1"
  readonly pid: number;
  readonly role: 'primary' | 'worker' | 'etcd';
  readonly startedAt: number; // seconds since the run started (0 for processes up before it)
  samples: Sample[];
  gone: boolean;
  /** The replica a primary or worker belongs to (its inspector URLs are in that replica's output). */
  readonly replica?: Replica;
  /** An etcd member's client port (its /metrics), for the Go heap and bbolt figures. */
  readonly etcdPort?: number;
  live: { baseline?: LiveReading; end?: LiveReading; error?: string; queued?: boolean };
  etcdMem: { baseline?: EtcdMemory; end?: EtcdMemory };
}

/** An etcd member's memory from its /metrics (liveMemory only): Go heap and the bbolt file (mmapped, so in RSS as file pages). */
export interface EtcdMemory {
  readonly t: number;
  readonly goHeapAlloc: number;
  readonly goHeapInuse: number;
  /** Heap spans free but not returned to the OS (idle - released): counted in RSS, reusable by Go. */
  readonly goHeapRetained: number;
  readonly dbSize: number;
  readonly dbInUse: number;
}

export interface ProcessFigures {
  name: string;
  pid: number;
  role: string;
  startedAtS: number;
  baseline: Sample | undefined;
  end: Sample | undefined;
  fdChangePct: number | undefined;
  rssChangePct: number | undefined;
  maxRssKb: number;
  maxFds: number;
  samples: number;
  /** RSS change over the second half of baseline → end only: near 0 when growth has levelled off. */
  rssChangeSecondHalfPct: number | undefined;
  /**
   * RSS level: the median sample of the minute from the baseline and of the last minute (a quarter
   * of the window in a short run), and its change: what the ±10% RSS target judges (set by
   * judgeFlat, from `series`). Why not two single samples: one sample can fall into a transient of
   * seconds that is neither growth nor a leak: V8 gives a worker's idle semi-space (from-space,
   * 16 MiB) back to the OS at a GC when the allocation rate is low and takes it again at the next
   * scavenge (dips of 16 MiB), and a primary's old space holds up to ~30 MiB of garbage before a
   * major GC (spikes). The median of a minute (12 samples) passes over both; growth that lasts
   * moves it.
   */
  rssLevel?: { baselineKb: number; endKb: number; changePct: number; windowS: number };
  /** fds without the load-following ones (Sample.steadyFds), baseline -> end: what the ±10% fd target judges. */
  steadyFds: { baseline: number | undefined; end: number | undefined; changePct: number | undefined };
  /**
   * Workers: their pooled upstream sockets against the bound that holds for a pool that does not
   * leak: at most one per request in flight to an origin within the pool's 4-s idle timeout, and a
   * worker has at most one request in flight per accepted client connection (HTTP/1.1), so at every
   * sample to-backend <= (origins the load uses) x (accepted connections).
   */
  upstream?: { max: number; origins: number; overBound: Array<[number, number, number]> };
  /** RSS (KiB) at each whole minute of the run the process was up (the first sample at or after it). */
  rssPerMinute: Array<[number, number]>;
  /** Every sample: [seconds, fds, RSS KiB, steady fds]. */
  series: Array<[number, number, number, number | undefined]>;
  /** etcd: every sample's Go figures: [seconds, heap in use, heap retained idle, next GC, stacks, Go sys, bbolt size, RssAnon, RssFile] (KiB). */
  goSeries?: Array<[number, number, number, number, number, number, number, number | undefined, number | undefined]>;
  /**
   * etcd: the Go live heap (next GC target, which is the live heap marked at the last GC x 2 with
   * GOGC=100) and the resident anonymous memory, each as the median over the baseline's minute and
   * over the last minute (one sample falls anywhere in a GC cycle; a minute spans several cycles).
   */
  goWindows?: { nextGcKb: [number, number]; nextGcChangePct: number; rssAnonKb: [number, number]; rssAnonChangePct: number };
  /**
   * Per-process verdict, from the baseline to the end: RSS level (rssLevel) and steady fds within ±10%,
   * pooled upstream sockets within their bound; etcd members also on their Go live heap
   * (goWindows.nextGc within ±10%), which is what the overall verdict judges them on (see judgeFlat).
   */
  within: { rss: boolean | undefined; fds: boolean | undefined; upstream: boolean | undefined; goLive?: boolean };
  /** With liveMemory: live memory after full GCs at the baseline and at the end (Node processes only). */
  live?: { baseline?: LiveReading; end?: LiveReading; changePct?: number; error?: string };
  /** With liveMemory: an etcd member's Go heap and bbolt size at the baseline and at the end. */
  etcdMemory?: { baseline?: EtcdMemory; end?: EtcdMemory };
}

/** A live-memory reading: when (seconds since the run started) and process.memoryUsage() after full GCs. */
export interface LiveReading extends LiveMemory {
  readonly t: number;
}

/** What the flatness verdict compares for a Node process: V8 heap in use plus memory of C++ objects bound to JS (Buffers). */
const liveBytes = (m: LiveMemory): number => m.heapUsed + m.external;

export interface Failure {
  readonly t: number; // seconds since the run started
  readonly where: string;
  readonly reason: string;
}

export interface ChaosEvent {
  what: string;
  target: string;
  startS: number;
  readyS?: number;
  details?: Record<string, unknown>;
}

export interface SoakReport {
  options: Required<Omit<SoakOptions, 'log' | 'workers' | 'liveMemory'>> & { workers: number | 'default'; liveMemory: boolean };
  startedAt: string;
  node: string;
  etcd: string;
  measuredS: number;
  chaos: ChaosEvent[];
  /** The etcd warm-up before t=0 (etcdWarmupS > 0); not part of the verdict, reported. */
  warmup?: WarmupReport;
  load: {
    sent: number;
    ok: number;
    failed: number;
    byReason: Record<string, number>;
    perReplica: Record<string, { sent: number; ok: number; failed: number }>;
    latencyMs: { p50: number; p99: number; max: number };
    failures: Failure[];
  };
  churn: {
    attempted: number;
    ok: number;
    failed: number;
    failedOutsideChaos: number;
    byOp: Record<string, { ok: number; failed: number }>;
    byReason: Record<string, number>;
    okAfterLastChaos: number;
    latencyMs: { p50: number; p99: number; max: number };
    failures: Failure[];
  };
  consistency: { ok: boolean; detail: string };
  unexpectedExits: string[];
  orphanWorkers: string[];
  processes: ProcessFigures[];
  verdict: { zeroStableFailures: boolean; churnOkOutsideChaos: boolean; noCrash: boolean; consistent: boolean; flat: boolean; flatDetail: string[] };
}

/** What the etcd warm-up did (times in seconds from the warm-up's start). */
export interface WarmupReport {
  seconds: number;
  prefix: string;
  replicas: string[];
  load: { sent: number; ok: number; failed: number };
  churn: { attempted: number; ok: number; failed: number };
  /** The first failures (stable requests and churn writes), with their time: none expected outside the leader kill. */
  failures: Failure[];
  unexpectedExits: string[];
  leaderKill?: { member: string; startS: number; readyS?: number; downMs: number; newLeader?: string };
  /** What happened to the warm-up's data (kept under its own prefix). */
  data: string;
  /** Every sample of each etcd member: [seconds, VmRSS, RssAnon, RssFile, Go next-GC target, bbolt file] (KiB). */
  etcd: Record<string, Array<[number, number, number, number, number | null, number | null]>>;
}

const WARMUP_PREFIX = '/soak-warmup/';

// ------------------------------------------------------------------ cleanup registry

const cleanups = new Set<() => unknown>();
let closing = false; // set by killAll: a chaos step still running must not start new processes

/** Kill everything a running soak started (for signal handlers); runSoak does this itself at its end. */
export async function killAll(): Promise<void> {
  closing = true;
  for (const wake of [...sleeping]) wake();
  const all = [...cleanups].reverse();
  cleanups.clear();
  for (const c of all) {
    try {
      await c();
    } catch {
      // best effort: keep killing the rest
    }
  }
}

// ------------------------------------------------------------------ /proc

function readStat(pid: number): { ppid: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]) };
  } catch {
    return undefined;
  }
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    if (readStat(Number(p))?.ppid === pid) out.push(Number(p));
  }
  return out;
}

/** socket inode -> TCP local/remote port and state, from /proc/net/tcp{,6} (one network namespace). */
function tcpSockets(): Map<string, { lport: number; rport: number; listen: boolean }> {
  const out = new Map<string, { lport: number; rport: number; listen: boolean }>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const c = line.trim().split(/\s+/);
      if (c.length < 10) continue;
      out.set(c[9]!, { lport: parseInt(c[1]!.split(':')[1]!, 16), rport: parseInt(c[2]!.split(':')[1]!, 16), listen: c[3] === '0A' });
    }
  }
  return out;
}

interface PortRoles {
  etcd: Set<number>;
  backend: Set<number>;
  served: Set<number>; // proxy and API ports of replicas, client ports of etcd members
  harness: Set<number>; // local ports of this process's own TCP sockets
}

/** Local ports of this (the harness's) process's TCP sockets: its connections to etcd show up in etcd's fds. */
function ownPorts(tcp: ReturnType<typeof tcpSockets>): Set<number> {
  const out = new Set<number>();
  try {
    for (const fd of readdirSync('/proc/self/fd')) {
      try {
        const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1];
        const s = inode === undefined ? undefined : tcp.get(inode);
        if (s && !s.listen) out.add(s.lport);
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    // no /proc/self: nothing is classified as the harness's
  }
  return out;
}

function sampleOf(pid: number, t: number, tcp: ReturnType<typeof tcpSockets>, ports: PortRoles): Sample | undefined {
  try {
    const kinds: Record<string, number> = {};
    const add = (k: string): void => void (kinds[k] = (kinds[k] ?? 0) + 1);
    const fds = readdirSync(`/proc/${pid}/fd`);
    for (const fd of fds) {
      let link = '';
      try {
        link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue; // closed meanwhile
      }
      const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
      if (!inode) add(link.startsWith('anon_inode:') ? 'anon' : link.startsWith('pipe:') ? 'pipe' : 'file');
      else {
        const s = tcp.get(inode);
        if (!s) add('other-socket');
        else if (s.listen) add('listen');
        else if (ports.served.has(s.lport)) add(ports.etcd.has(s.lport) && ports.harness.has(s.rport) ? 'from-harness' : 'inbound');
        else if (ports.etcd.has(s.rport)) add('to-etcd');
        else if (ports.backend.has(s.rport)) add('to-backend');
        else add('tcp-other'); // e.g. etcd peer connections
      }
    }
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
    const steadyFds = fds.length - (kinds['to-backend'] ?? 0) - (kinds['from-harness'] ?? 0);
    return { t, fds: fds.length, rssKb: kb('VmRSS'), rssAnonKb: kb('RssAnon'), rssFileKb: kb('RssFile'), kinds, steadyFds };
  } catch {
    return undefined; // gone
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

const pct = (a: number, b: number): number => (a === 0 ? 0 : ((b - a) / a) * 100);

function secondHalf(samples: Sample[], baseline: Sample | undefined, end: Sample | undefined): number | undefined {
  if (!baseline || !end || end === baseline) return undefined;
  const mid = samples.find((s) => s.t >= (baseline.t + end.t) / 2);
  return mid ? Math.round(pct(mid.rssKb, end.rssKb) * 10) / 10 : undefined;
}
/** A sleep that killAll() cuts short, so no timer outlives the run (node --test waits for timers). */
const sleeping = new Set<() => void>();
const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      sleeping.delete(done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    sleeping.add(done);
  });

function percentiles(xs: number[]): { p50: number; p99: number; max: number } {
  if (xs.length === 0) return { p50: 0, p99: 0, max: 0 };
  const s = Float64Array.from(xs).sort();
  const at = (q: number): number => Math.round(s[Math.min(s.length - 1, Math.floor(q * s.length))]! * 10) / 10;
  return { p50: at(0.5), p99: at(0.99), max: Math.round(s[s.length - 1]! * 10) / 10 };
}

/** An etcd member's Go runtime and bbolt figures (KiB) from its /metrics; rejects after 3 s. */
async function scrapeGo(port: number): Promise<GoSample> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(3000) });
  const text = await res.text();
  const kb = (name: string): number => Math.round(Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) / 1024);
  return {
    heapInuseKb: kb('go_memstats_heap_inuse_bytes'),
    heapRetainedKb: kb('go_memstats_heap_idle_bytes') - kb('go_memstats_heap_released_bytes'),
    nextGcKb: kb('go_memstats_next_gc_bytes'),
    stackInuseKb: kb('go_memstats_stack_inuse_bytes'),
    sysKb: kb('go_memstats_sys_bytes'),
    dbSizeKb: kb('etcd_mvcc_db_total_size_in_bytes'),
    dbInUseKb: kb('etcd_mvcc_db_total_size_in_use_in_bytes'),
  };
}

// ------------------------------------------------------------------ replicas

interface Replica {
  readonly name: string;
  incarnation: number;
  proc: ChildProcess;
  tail: string;
  proxyPort: number;
  apiPort: number;
  agent: http.Agent;
  /** API calls (churn) have their own pool, warmed like the proxy's. */
  apiAgent: http.Agent;
  state: 'up' | 'draining' | 'down';
  inflight: number;
  expectedExit: boolean;
  /** Inspector URLs printed by the primary and its workers (liveMemory only); pid -> URL once asked. */
  inspectorUrls: Set<string>;
  inspectorPids: Map<number, string>;
  /** "Starting inspector on …: address already in use": a worker's port (primary's + n) was taken. */
  inspectorFailures: Set<string>;
}

const INSPECTOR_URL_RE = /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/g;
const INSPECTOR_FAILED_RE = /Starting inspector on \S+ failed: [^\n]+/g;

/**
 * The first of `span` free loopback ports below the ephemeral range, for a replica's inspectors
 * (liveMemory): node:cluster gives worker n the primary's inspector port + n. With
 * `--inspect=127.0.0.1:0` the primary's port is in the ephemeral range, and on this busy machine a
 * worker's port + n was often held by some connection's socket ("Starting inspector on … failed:
 * address already in use": one worker unread in the 10-minute run, one in a 30-s check); below that
 * range only listeners bind.
 */
async function freePortBlock(span: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * (12_000 - span));
    const servers: net.Server[] = [];
    let free = true;
    for (let port = base; port < base + span && free; port++) {
      const srv = net.createServer();
      free = await new Promise<boolean>((resolve) => {
        srv.once('error', () => resolve(false));
        srv.listen(port, '127.0.0.1', () => resolve(true));
      });
      if (free) servers.push(srv);
    }
    await Promise.all(servers.map((srv) => new Promise((resolve) => srv.close(resolve))));
    if (free) return base;
  }
  throw new Error('no free block of loopback ports for the inspectors');
}

async function spawnReplica(name: string, incarnation: number, endpoints: string, workers: number | undefined, inspect: boolean, onExit: (r: Replica, code: number | null, signal: string | null) => void, prefix = '/soak/'): Promise<Replica> {
  if (closing) throw new Error('soak is closing');
  const argv = ['--ip', '127.0.0.1', '--port', '0', '--api-ip', '127.0.0.1', '--api-port', '0',
    '--store', `etcd://${endpoints}`, '--store-prefix', prefix, '--replica-id', name,
    ...(workers === undefined ? [] : ['--workers', String(workers)]),
    // The soak tracks and kills workers as processes (their pids, /proc); threads are not soaked here.
    '--worker-mode', 'processes'];
  const inspectArg = inspect ? [`--inspect=127.0.0.1:${await freePortBlock(16)}`] : [];
  const proc = spawn(process.execPath, [...inspectArg, MAIN, ...argv], { env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: TOKEN }, stdio: ['ignore', 'pipe', 'pipe'] });
  const r: Replica = {
    name, incarnation, proc, tail: '', proxyPort: 0, apiPort: 0,
    // fifo: every pooled connection is used in turn, so none idles into the server's keep-alive
    // timeout and the connection count (the replicas' fds) stays steady instead of churning.
    agent: new http.Agent({ keepAlive: true, maxSockets: MAX_INFLIGHT_PER_REPLICA, scheduling: 'fifo' }),
    apiAgent: new http.Agent({ keepAlive: true, maxSockets: MAX_INFLIGHT_PER_REPLICA, scheduling: 'fifo' }),
    state: 'down', inflight: 0, expectedExit: false, inspectorUrls: new Set(), inspectorPids: new Map(), inspectorFailures: new Set(),
  };
  // Only the start-up lines and a bounded tail are kept (every route change logs a line).
  let head = '';
  const onData = (c: Buffer): void => {
    if (head.length < 8192) head += c.toString();
    // A line split over two chunks is found with the end of the previous tail in front of it.
    if (inspect) {
      const text = r.tail.slice(-200) + c.toString();
      for (const m of text.matchAll(INSPECTOR_URL_RE)) r.inspectorUrls.add(m[1]!);
      for (const m of text.matchAll(INSPECTOR_FAILED_RE)) r.inspectorFailures.add(m[0]);
    }
    r.tail = (r.tail + c.toString()).slice(-16384);
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  const kill = (): void => {
    r.expectedExit = true;
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  };
  cleanups.add(kill);
  proc.once('exit', (code, signal) => {
    cleanups.delete(kill);
    onExit(r, code, signal);
  });
  const proxyRe = /Proxying https?:\/\/[^\s]*:(\d+) to/;
  const apiRe = /Proxy API at https?:\/\/[^\s]*:(\d+)\/api\/routes/;
  await waitFor(() => {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`replica ${name} exited before it started:\n${r.tail}`);
    return proxyRe.test(head) && apiRe.test(head);
  }, 60_000, `replica ${name} start-up lines`);
  r.proxyPort = Number(proxyRe.exec(head)![1]);
  r.apiPort = Number(apiRe.exec(head)![1]);
  r.state = 'up';
  return r;
}

interface Answer {
  status: number;
  body: string;
}

function call(r: Replica, port: number, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const agent = port === r.apiPort ? r.apiAgent : r.agent;
    const req = http.request({ host: '127.0.0.1', port, method, path, agent, headers, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

const api = (r: Replica, method: string, path: string, data?: unknown): Promise<Answer> =>
  call(r, r.apiPort, method, path, data === undefined ? undefined : JSON.stringify(data), { authorization: `token ${TOKEN}` });

// ------------------------------------------------------------------ etcd warm-up

/**
 * Drives the fresh etcd cluster with the measured run's workload for o.etcdWarmupS seconds, so that
 * at t=0 its members are past their start-up growth (Go GC envelope, bbolt high-water mark, raft log
 * and snapshots) as a long-running production cluster would be. The workload is the run's own: 3
 * throwaway replicas (the real CLI, same --workers) on the same cluster under WARMUP_PREFIX, the same
 * stable routes, the same stable-route load and route churn rates through them, and (etcdWarmupLeaderKill)
 * the run's etcd chaos step once, at 1/3 of the warm-up: the leader SIGKILLed, down etcdDownMs, restarted.
 * Then the replicas are stopped with SIGTERM (as a deploy would). Their data stays under WARMUP_PREFIX:
 * the measured replicas do not watch it, and a production cluster holds older keys too; deleting
 * it would be a burst of writes just before t=0. Failures are counted and reported, not judged.
 */
async function warmEtcd(
  o: { etcdWarmupS: number; etcdWarmupLeaderKill: boolean; etcdDownMs: number; loadRate: number; churnRate: number; stableRoutes: number; sampleMs: number },
  etcd: EtcdCluster, backends: Map<string, string>, workers: number | undefined, log: (line: string) => void,
): Promise<WarmupReport> {
  const w0 = Date.now();
  const now = (): number => (Date.now() - w0) / 1000;
  const report: WarmupReport = {
    seconds: o.etcdWarmupS, prefix: WARMUP_PREFIX, replicas: [], load: { sent: 0, ok: 0, failed: 0 }, churn: { attempted: 0, ok: 0, failed: 0 },
    failures: [], unexpectedExits: [], data: `kept under ${WARMUP_PREFIX} (not deleted)`, etcd: {},
  };
  const fail = (where: string, reason: string): void => void (report.failures.length < 50 && report.failures.push({ t: now(), where, reason }));
  const onExit = (r: Replica, code: number | null, signal: string | null): void => {
    r.state = 'down';
    if (!r.expectedExit) report.unexpectedExits.push(`warm-up ${r.name} exited (code ${code}, signal ${signal}) at ${now().toFixed(1)} s:\n${r.tail.slice(-2000)}`);
  };
  const reps: Replica[] = [];
  for (const name of ['w1', 'w2', 'w3']) reps.push(await spawnReplica(name, 0, etcd.endpoints, workers, false, onExit, WARMUP_PREFIX));
  report.replicas = reps.map((r) => `${r.name} (pid ${r.proc.pid})`);
  const stable: Array<{ path: string; backend: string }> = [];
  for (let i = 0; i < o.stableRoutes; i++) {
    const backend = i % 2 === 0 ? 'A' : 'B';
    const path = `/stable/${i}`;
    const res = await api(reps[i % 3]!, 'POST', `/api/routes${path}`, { target: backends.get(backend) });
    if (res.status !== 201) throw new Error(`warm-up stable route ${path}: ${res.status} ${res.body}`);
    stable.push({ path, backend });
  }
  for (const r of reps) {
    await waitFor(async () => {
      const res = await api(r, 'GET', '/api/routes');
      return res.status === 200 && Object.keys(JSON.parse(res.body) as object).length >= o.stableRoutes;
    }, 20_000, `warm-up stable routes on ${r.name}`);
  }
  log(`etcd warm-up: ${o.etcdWarmupS} s, 3 throwaway replicas under ${WARMUP_PREFIX}, ${o.loadRate} req/s, ${o.churnRate} changes/s${o.etcdWarmupLeaderKill ? ', leader kill at 1/3' : ''}`);

  // The members' memory while the warm-up runs (the figures the measured run judges).
  const sampleEtcd = (): void => {
    const t = Math.round(now());
    for (const m of etcd.members) {
      const pid = m.proc?.pid;
      if (pid === undefined) continue;
      let status = '';
      try {
        status = readFileSync(`/proc/${pid}/status`, 'utf8');
      } catch {
        continue;
      }
      const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
      const row: [number, number, number, number, number | null, number | null] = [t, kb('VmRSS'), kb('RssAnon'), kb('RssFile'), null, null];
      (report.etcd[m.name] ??= []).push(row);
      void scrapeGo(m.clientPort).then((g) => ((row[4] = g.nextGcKb), (row[5] = g.dbSizeKb)), () => {});
    }
  };

  const inflight = new Set<Promise<void>>();
  const model = new Map<string, string>();
  const busy = new Set<string>();
  let loadIssued = 0;
  let churnIssued = 0;
  let next = 0;
  const fireLoad = (): void => {
    const r = reps[next++ % reps.length]!;
    if (r.state !== 'up' || r.inflight >= MAX_INFLIGHT_PER_REPLICA) return;
    const route = stable[loadIssued++ % stable.length]!;
    report.load.sent++;
    r.inflight++;
    const p = call(r, r.proxyPort, 'GET', `${route.path}/x?i=${loadIssued}`).then(
      (res) => {
        if (res.status === 200 && res.body === route.backend) report.load.ok++;
        else {
          report.load.failed++;
          fail(`${r.name} ${route.path}`, `status ${res.status} ${res.body.slice(0, 40)}`);
        }
      },
      (e: Error & { code?: string }) => {
        report.load.failed++;
        fail(`${r.name} ${route.path}`, e.code ?? e.message);
      },
    ).finally(() => (r.inflight--, inflight.delete(p)));
    inflight.add(p);
  };
  const fireChurn = (): void => {
    const live = reps.filter((r) => r.state === 'up' && r.inflight < MAX_INFLIGHT_PER_REPLICA);
    if (live.length === 0) return;
    const r = live[churnIssued % live.length]!;
    let path = '';
    for (let k = 0; k < 10 && !path; k++) {
      const cand = `/churn/${(churnIssued * 7 + k * 13) % CHURN_PATHS}`;
      if (!busy.has(cand)) path = cand;
    }
    churnIssued++;
    if (!path) return;
    const current = model.get(path);
    const op = current === undefined ? 'add' : churnIssued % 3 === 0 ? 'remove' : 'retarget';
    const target = current === 'B' ? 'C' : 'B';
    busy.add(path);
    report.churn.attempted++;
    r.inflight++;
    const p = (async () => {
      const tStart = now();
      try {
        const res = op === 'remove' ? await api(r, 'DELETE', `/api/routes${path}`) : await api(r, 'POST', `/api/routes${path}`, { target: backends.get(target) });
        if (res.status === (op === 'remove' ? 204 : 201)) {
          report.churn.ok++;
          if (op === 'remove') model.delete(path);
          else model.set(path, target);
        } else {
          report.churn.failed++;
          fail(`${r.name} ${path} (${tStart.toFixed(1)} s)`, `${op} ${res.status} ${res.body.slice(0, 80)}`);
        }
      } catch (e) {
        report.churn.failed++;
        fail(`${r.name} ${path} (${tStart.toFixed(1)} s)`, `${op} ${(e as Error & { code?: string }).code ?? (e as Error).message}`);
      }
    })().finally(() => (busy.delete(path), r.inflight--, inflight.delete(p)));
    inflight.add(p);
  };

  const d0 = Date.now();
  const ticks = { load: 0, churn: 0 };
  const ticker = setInterval(() => {
    const elapsed = (Date.now() - d0) / 1000;
    for (let due = Math.min(50, Math.floor(elapsed * o.loadRate) - ticks.load); due > 0; due--, ticks.load++) fireLoad();
    ticks.load = Math.max(ticks.load, Math.floor(elapsed * o.loadRate) - 50);
    for (let due = Math.min(10, Math.floor(elapsed * o.churnRate) - ticks.churn); due > 0; due--, ticks.churn++) fireChurn();
    ticks.churn = Math.max(ticks.churn, Math.floor(elapsed * o.churnRate) - 10);
  }, 10);
  sampleEtcd();
  const sampler = setInterval(sampleEtcd, o.sampleMs);
  const progress = setInterval(() => log(`warm-up ${now().toFixed(0)} s: load ${report.load.ok}/${report.load.sent} ok; churn ${report.churn.ok}/${report.churn.attempted} ok`), 60_000);
  const stopTimers = (): void => (clearInterval(ticker), clearInterval(sampler), clearInterval(progress));
  cleanups.add(stopTimers);
  try {
    const until = (s: number): Promise<void> => sleep(Math.max(0, d0 + s * 1000 - Date.now()));
    if (o.etcdWarmupLeaderKill) {
      await until(o.etcdWarmupS / 3);
      let leader: EtcdMember | undefined;
      await waitFor(async () => (leader = await etcd.leader().catch(() => undefined)) !== undefined, 15_000, 'an etcd leader (warm-up)');
      if (!leader) throw new Error('no etcd leader (warm-up)');
      const kill: NonNullable<WarmupReport['leaderKill']> = { member: leader.name, startS: now(), downMs: o.etcdDownMs };
      report.leaderKill = kill;
      await etcd.stop(leader, 'SIGKILL');
      log(`warm-up ${now().toFixed(1)} s: etcd ${leader.name} (leader) killed (-9)`);
      await sleep(o.etcdDownMs);
      if (closing) throw new Error('soak is closing');
      await etcd.start(leader);
      await etcd.waitHealthy(leader, 30_000);
      kill.readyS = Math.round(now() * 10) / 10;
      kill.newLeader = (await etcd.leader().catch(() => undefined))?.name;
      log(`warm-up ${kill.readyS} s: etcd ${leader.name} restarted and healthy; leader ${kill.newLeader}`);
    }
    await until(o.etcdWarmupS);
    clearInterval(ticker);
    sampleEtcd();
    await waitFor(() => inflight.size === 0, REQUEST_TIMEOUT_MS + 5000, 'warm-up in-flight requests').catch(() => {});
  } finally {
    stopTimers();
    cleanups.delete(stopTimers);
  }
  // Stop the throwaway replicas as a deploy would (SIGTERM; SIGKILL after 15 s).
  for (const r of reps) {
    r.expectedExit = true;
    if (r.proc.exitCode === null && r.proc.signalCode === null) {
      const exited = once(r.proc, 'exit');
      r.proc.kill('SIGTERM');
      const timer = setTimeout(() => r.proc.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    r.agent.destroy();
    r.apiAgent.destroy();
  }
  log(`etcd warm-up over after ${now().toFixed(1)} s: load ${report.load.ok}/${report.load.sent} ok, ${report.load.failed} failed; churn ${report.churn.ok}/${report.churn.attempted} ok, ${report.churn.failed} failed; replicas stopped`);
  return report;
}

// ------------------------------------------------------------------ the run

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const o = {
    durationS: options.durationS,
    loadRate: options.loadRate ?? 300,
    churnRate: options.churnRate ?? 50,
    stableRoutes: options.stableRoutes ?? 20,
    sampleMs: options.sampleMs ?? 5000,
    etcdDownMs: options.etcdDownMs ?? Math.min(10_000, Math.max(3000, options.durationS * 1000 * 0.05)),
    liveMemory: options.liveMemory ?? false,
    etcdWarmupS: options.etcdWarmupS ?? 0,
    etcdWarmupLeaderKill: options.etcdWarmupLeaderKill ?? true,
  };
  const log = options.log ?? (() => {});
  closing = false;
  try {
    return await soak(o, options.workers, log);
  } finally {
    await killAll();
  }
}

async function soak(o: Omit<SoakReport['options'], 'workers'>, workers: number | undefined, log: (line: string) => void): Promise<SoakReport> {
  const startedAt = new Date().toISOString();
  const fakeT = { after: (fn: () => unknown) => void cleanups.add(fn) };

  // --- etcd: 3 members; auto-compaction and a small snapshot count as a long-running cluster would
  // use (without them etcd's own memory grows with every revision and the fd/RSS figures measure that).
  const etcd: EtcdCluster = await startEtcd(fakeT, 3, undefined, ['--auto-compaction-mode', 'revision', '--auto-compaction-retention', '1000', '--snapshot-count', '5000']);
  const etcdVersion = await fetch(`http://127.0.0.1:${etcd.members[0]!.clientPort}/version`).then((r) => r.json() as Promise<{ etcdserver: string }>).then((j) => j.etcdserver, () => '?');

  // --- backends: one keep-alive HTTP server per name; answers its name.
  const backends = new Map<string, string>();
  for (const name of ['A', 'B', 'C']) {
    const srv = http.createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': name.length });
      res.end(name);
    });
    srv.keepAliveTimeout = 60_000;
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    cleanups.add(() => {
      srv.closeAllConnections();
      srv.close();
    });
    backends.set(name, `http://127.0.0.1:${(srv.address() as AddressInfo).port}`);
  }

  // --- etcd warm-up (etcdWarmupS > 0): the cluster carries the run's workload before t=0
  const warmup = o.etcdWarmupS > 0 ? await warmEtcd(o, etcd, backends, workers, log) : undefined;

  // --- replicas
  let t0 = 0; // set when the measured run starts
  const now = (): number => (t0 === 0 ? 0 : (Date.now() - t0) / 1000);
  const unexpectedExits: string[] = [];
  const onExit = (r: Replica, code: number | null, signal: string | null): void => {
    r.state = 'down';
    if (!r.expectedExit) unexpectedExits.push(`${r.name}#${r.incarnation} exited (code ${code}, signal ${signal}) at ${now().toFixed(1)} s:\n${r.tail.slice(-2000)}`);
  };
  const replicas: Replica[] = [];
  for (const name of ['r1', 'r2', 'r3']) replicas.push(await spawnReplica(name, 0, etcd.endpoints, workers, o.liveMemory, onExit));
  for (const r of replicas) cleanups.add(() => (r.agent.destroy(), r.apiAgent.destroy()));
  log(`3-member etcd ${etcdVersion} and 3 replicas up (proxy ports ${replicas.map((r) => r.proxyPort).join(', ')})`);

  // --- stable routes, written once, live everywhere before the run starts
  const stable: Array<{ path: string; backend: string }> = [];
  for (let i = 0; i < o.stableRoutes; i++) {
    const backend = i % 2 === 0 ? 'A' : 'B';
    const path = `/stable/${i}`;
    const res = await api(replicas[i % 3]!, 'POST', `/api/routes${path}`, { target: backends.get(backend) });
    if (res.status !== 201) throw new Error(`stable route ${path}: ${res.status} ${res.body}`);
    stable.push({ path, backend });
  }
  for (const r of replicas) {
    await waitFor(async () => {
      const res = await api(r, 'GET', '/api/routes');
      return res.status === 200 && Object.keys(JSON.parse(res.body) as object).length >= o.stableRoutes;
    }, 20_000, `stable routes on ${r.name}`);
  }

  // --- process tracking; figures compare the baseline (2 minutes after a process started, or 1/5
  // of a shorter run) with the end
  const baselineAfterS = Math.min(120, o.durationS * 0.2);
  let stopped = false;
  const tracked = new Map<number, TrackedProcess>();
  const track = (pid: number | undefined, name: string, role: TrackedProcess['role'], replica?: Replica, etcdPort?: number): void => {
    if (pid !== undefined && !tracked.has(pid)) tracked.set(pid, { name, pid, role, startedAt: now(), samples: [], gone: false, replica, etcdPort, live: {}, etcdMem: {} });
  };
  // A member restarted by the warm-up's leader kill is its #1 from the start.
  const etcdIncarnation = new Map<EtcdMember, number>(etcd.members.map((m) => [m, warmup?.leaderKill?.member === m.name ? 1 : 0]));
  const trackAll = (): void => {
    for (const r of replicas) {
      if (r.state === 'down' || r.proc.pid === undefined) continue;
      track(r.proc.pid, `${r.name}#${r.incarnation} primary`, 'primary', r);
      for (const w of childrenOf(r.proc.pid)) track(w, `${r.name}#${r.incarnation} worker ${w}`, 'worker', r);
    }
    for (const m of etcd.members) track(m.proc?.pid, `etcd ${m.name}#${etcdIncarnation.get(m)}`, 'etcd', undefined, m.clientPort);
  };
  const sampleAll = (): void => {
    trackAll();
    const t = now();
    const tcp = tcpSockets();
    const ports: PortRoles = {
      etcd: new Set(etcd.members.map((m) => m.clientPort)),
      backend: new Set([...backends.values()].map((u) => Number(new URL(u).port))),
      served: new Set([...replicas.flatMap((r) => [r.proxyPort, r.apiPort]), ...etcd.members.flatMap((m) => [m.clientPort, m.peerPort])]),
      harness: ownPorts(tcp),
    };
    for (const p of tracked.values()) {
      if (p.gone) continue;
      const s = sampleOf(p.pid, t, tcp, ports);
      if (s) p.samples.push(s);
      else p.gone = true;
      // An etcd member's Go and bbolt figures, attached to the sample when the scrape answers
      // (bounded; a member that is down has none).
      if (s && p.etcdPort !== undefined && !stopped) {
        void scrapeGo(p.etcdPort).then((g) => void (s.go = g), () => {});
      }
    }
    // The live-memory baseline of a Node process: with the same sample as its RSS baseline.
    if (o.liveMemory && !stopped) {
      for (const p of tracked.values()) {
        if (p.gone || p.live.queued || t < p.startedAt + baselineAfterS) continue;
        p.live.queued = true;
        queueLive(p, 'baseline');
      }
    }
  };

  // --- live memory (liveMemory only): one reading at a time (each forces full GCs in a busy
  // process), each bounded in time; a process whose reading fails is judged on RSS.
  let liveQueue: Promise<void> = Promise.resolve();
  const urlsDead = new Set<string>();
  const inspectorFor = async (p: TrackedProcess): Promise<string> => {
    const r = p.replica!;
    // The output does not say which process printed which URL: ask each unknown one for its pid.
    for (const url of r.inspectorUrls) {
      if (r.inspectorPids.has(p.pid)) break;
      if (urlsDead.has(url) || [...r.inspectorPids.values()].includes(url)) continue;
      try {
        const insp = await connectInspector(fakeT, url);
        try {
          const res = await insp.call<{ result: { value?: unknown } }>('Runtime.evaluate', { expression: 'process.pid', returnByValue: true }, 10_000);
          if (typeof res.result.value === 'number') r.inspectorPids.set(res.result.value, url);
        } finally {
          insp.close();
        }
      } catch {
        urlsDead.add(url); // a process that is gone (the killed replica's, a respawned worker's)
      }
    }
    const url = r.inspectorPids.get(p.pid);
    if (url === undefined) throw new Error(`no inspector URL for pid ${p.pid} among ${r.inspectorUrls.size} printed${r.inspectorFailures.size ? ` (${[...r.inspectorFailures].join('; ')})` : ''}`);
    return url;
  };
  const readLive = async (p: TrackedProcess): Promise<LiveReading> => {
    const insp = await connectInspector(fakeT, await inspectorFor(p));
    try {
      const t = Math.round(now() * 10) / 10;
      return { t, ...(await insp.memory()) };
    } finally {
      insp.close();
    }
  };
  const readEtcd = async (p: TrackedProcess): Promise<EtcdMemory> => {
    const res = await fetch(`http://127.0.0.1:${p.etcdPort}/metrics`, { signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    const metric = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    return {
      t: Math.round(now() * 10) / 10,
      goHeapAlloc: metric('go_memstats_heap_alloc_bytes'),
      goHeapInuse: metric('go_memstats_heap_inuse_bytes'),
      goHeapRetained: metric('go_memstats_heap_idle_bytes') - metric('go_memstats_heap_released_bytes'),
      dbSize: metric('etcd_mvcc_db_total_size_in_bytes'),
      dbInUse: metric('etcd_mvcc_db_total_size_in_use_in_bytes'),
    };
  };
  const queueLive = (p: TrackedProcess, which: 'baseline' | 'end'): void => {
    liveQueue = liveQueue.then(async () => {
      if (p.gone || closing) return;
      if (p.etcdPort !== undefined) {
        p.etcdMem[which] = await readEtcd(p).catch((e: unknown) => (log(`${p.name} /metrics (${which}) failed: ${(e as Error).message}`), undefined));
        return;
      }
      if (!p.replica) return;
      let timer: NodeJS.Timeout | undefined;
      try {
        const reading = await Promise.race([
          readLive(p),
          new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('no reading within 60 s')), 60_000))),
        ]);
        p.live[which] = reading;
        log(`${now().toFixed(1)} s: ${p.name} live memory (${which}): heapUsed ${(reading.heapUsed / 2 ** 20).toFixed(1)} MiB + external ${(reading.external / 2 ** 20).toFixed(1)} MiB; RSS after GC ${(reading.rss / 2 ** 20).toFixed(1)} MiB`);
      } catch (e) {
        // Killed meanwhile (the chaos step's replica, before a sample marked it gone): no figure is due.
        if (!isAlive(p.pid)) return void log(`${p.name} gone before its ${which} live-memory reading`);
        p.live.error = `${which}: ${(e as Error).message}`;
        log(`${p.name} live memory (${which}) failed: ${(e as Error).message}`);
      } finally {
        clearTimeout(timer);
      }
    });
  };

  // --- load: a fixed request rate, spread over the live replicas, keep-alive
  const load = { sent: 0, ok: 0, failed: 0, byReason: {} as Record<string, number>, perReplica: {} as Record<string, { sent: number; ok: number; failed: number }>, latency: [] as number[], failures: [] as Failure[] };
  for (const r of replicas) load.perReplica[r.name] = { sent: 0, ok: 0, failed: 0 };
  const loadFail = (r: Replica, path: string, reason: string): void => {
    load.failed++;
    load.perReplica[r.name]!.failed++;
    load.byReason[reason] = (load.byReason[reason] ?? 0) + 1;
    if (load.failures.length < 50) load.failures.push({ t: now(), where: `${r.name}#${r.incarnation} ${path}`, reason });
  };
  let loadIssued = 0;
  let nextReplica = 0;
  const fireLoad = (): void => {
    const r = replicas[nextReplica++ % replicas.length]!;
    if (r.state !== 'up' || r.inflight >= MAX_INFLIGHT_PER_REPLICA) return;
    const route = stable[loadIssued % stable.length]!;
    loadIssued++;
    load.sent++;
    load.perReplica[r.name]!.sent++;
    r.inflight++;
    const started = performance.now();
    call(r, r.proxyPort, 'GET', `${route.path}/x?i=${loadIssued}`).then(
      (res) => {
        if (res.status !== 200) loadFail(r, route.path, `status ${res.status}`);
        else if (res.body !== route.backend) loadFail(r, route.path, `wrong backend ${res.body.slice(0, 20)}`);
        else {
          load.ok++;
          load.perReplica[r.name]!.ok++;
          if (load.latency.length < 2_000_000) load.latency.push(performance.now() - started);
        }
      },
      (e: Error & { code?: string }) => loadFail(r, route.path, e.code ?? e.message),
    ).finally(() => r.inflight--);
  };

  // Open the replica's whole connection pool at once (counted as load): with fifo scheduling the
  // connections then stay open, and the workers' fd counts measure the proxy, not the client.
  const warm = async (r: Replica): Promise<void> => {
    const burst = Array.from({ length: MAX_INFLIGHT_PER_REPLICA }, (_, i) => {
      const route = stable[i % stable.length]!;
      load.sent++;
      load.perReplica[r.name]!.sent++;
      return call(r, r.proxyPort, 'GET', `${route.path}/warm`).then(
        (res) => {
          if (res.status === 200 && res.body === route.backend) {
            load.ok++;
            load.perReplica[r.name]!.ok++;
          } else loadFail(r, route.path, `warm-up status ${res.status}`);
        },
        (e: Error & { code?: string }) => loadFail(r, route.path, `warm-up ${e.code ?? e.message}`),
      );
    });
    // The API pool too (GET /api/routes: a read, not a change).
    const apiBurst = Array.from({ length: MAX_INFLIGHT_PER_REPLICA }, () => api(r, 'GET', '/api/routes').catch(() => undefined));
    await Promise.all([...burst, ...apiBurst]);
  };

  // --- churn: add / retarget / remove churn routes through the APIs of live replicas
  const churn = { attempted: 0, ok: 0, failed: 0, failedOutsideChaos: 0, okAfterLastChaos: 0, byOp: {} as Record<string, { ok: number; failed: number }>, byReason: {} as Record<string, number>, latency: [] as number[], failures: [] as Failure[] };
  const churnModel = new Map<string, string>(); // path -> backend name, as acknowledged
  const churnBusy = new Set<string>();
  const unknownOutcome = new Set<string>(); // failed writes: their path's state is whatever etcd has
  let churnIssued = 0;
  const chaos: ChaosEvent[] = [];
  const inChaos = (t: number): boolean => chaos.some((c) => t >= c.startS && t <= (c.readyS ?? Number.POSITIVE_INFINITY) + CHAOS_SETTLE_MS / 1000);
  const churnInflight = new Set<Promise<void>>();
  const fireChurn = (): void => {
    const live = replicas.filter((r) => r.state === 'up' && r.inflight < MAX_INFLIGHT_PER_REPLICA);
    if (live.length === 0) return;
    const r = live[churnIssued % live.length]!;
    // A path with no change in flight (concurrent changes to one path would race each other).
    let path = '';
    for (let k = 0; k < 10 && !path; k++) {
      const p = `/churn/${(churnIssued * 7 + k * 13) % CHURN_PATHS}`;
      if (!churnBusy.has(p)) path = p;
    }
    churnIssued++;
    if (!path) return;
    const current = churnModel.get(path);
    const op = current === undefined ? 'add' : churnIssued % 3 === 0 ? 'remove' : 'retarget';
    const target = current === 'B' ? 'C' : 'B';
    churnBusy.add(path);
    churn.attempted++;
    r.inflight++;
    const started = performance.now();
    const p = (async () => {
      const tStart = now();
      let reason: string | undefined;
      try {
        const res = op === 'remove' ? await api(r, 'DELETE', `/api/routes${path}`) : await api(r, 'POST', `/api/routes${path}`, { target: backends.get(target) });
        const want = op === 'remove' ? 204 : 201;
        if (res.status !== want) reason = `${op} ${res.status} ${res.body.slice(0, 80)}`;
      } catch (e) {
        reason = `${op} ${(e as Error & { code?: string }).code ?? (e as Error).message}`;
      }
      const byOp = (churn.byOp[op] ??= { ok: 0, failed: 0 });
      if (reason === undefined) {
        churn.ok++;
        byOp.ok++;
        churn.latency.push(performance.now() - started);
        if (op === 'remove') churnModel.delete(path);
        else churnModel.set(path, target);
        unknownOutcome.delete(path);
        const last = chaos[chaos.length - 1];
        if (chaos.length === 2 && last?.readyS !== undefined && tStart > last.readyS) churn.okAfterLastChaos++;
      } else {
        churn.failed++;
        byOp.failed++;
        unknownOutcome.add(path);
        const key = reason.replace(/\d{2,}/g, 'N').slice(0, 100);
        churn.byReason[key] = (churn.byReason[key] ?? 0) + 1;
        const outside = !inChaos(tStart) && !inChaos(now());
        if (outside) churn.failedOutsideChaos++;
        if (churn.failures.length < 50) churn.failures.push({ t: tStart, where: `${r.name}#${r.incarnation} ${path}${outside ? '' : ' (chaos window)'}`, reason });
      }
    })().finally(() => {
      churnBusy.delete(path);
      r.inflight--;
      churnInflight.delete(p);
    });
    churnInflight.add(p);
  };

  // --- drivers: one 10 ms ticker for load and churn (fixed rates), one sampler
  const ticks = { load: 0, churn: 0 };
  for (const r of replicas) await warm(r);
  t0 = Date.now();
  sampleAll();
  const ticker = setInterval(() => {
    if (stopped) return;
    const elapsed = (Date.now() - t0) / 1000;
    // Due counts are capped so a stalled event loop does not fire a burst afterwards.
    for (let due = Math.min(50, Math.floor(elapsed * o.loadRate) - ticks.load); due > 0; due--, ticks.load++) fireLoad();
    ticks.load = Math.max(ticks.load, Math.floor(elapsed * o.loadRate) - 50);
    for (let due = Math.min(10, Math.floor(elapsed * o.churnRate) - ticks.churn); due > 0; due--, ticks.churn++) fireChurn();
    ticks.churn = Math.max(ticks.churn, Math.floor(elapsed * o.churnRate) - 10);
  }, 10);
  const sampler = setInterval(sampleAll, o.sampleMs);
  cleanups.add(() => clearInterval(ticker));
  cleanups.add(() => clearInterval(sampler));
  const orphanWorkers: string[] = [];

  // --- chaos
  const at = (fraction: number): Promise<void> => sleep(Math.max(0, t0 + o.durationS * 1000 * fraction - Date.now()));
  const chaosRun = (async () => {
    await at(1 / 3);
    // 1. SIGKILL a replica: stop sending to it, wait for its in-flight requests, kill, restart.
    const victim = replicas[1]!;
    const ev: ChaosEvent = { what: 'replica SIGKILL + restart', target: `${victim.name}#${victim.incarnation}`, startS: now() };
    chaos.push(ev);
    victim.state = 'draining';
    await waitFor(() => victim.inflight === 0, 15_000, `${victim.name} drained`).catch(() => log(`${victim.name}: ${victim.inflight} requests still in flight at the kill`));
    const workersBefore = childrenOf(victim.proc.pid!);
    victim.expectedExit = true;
    victim.proc.kill('SIGKILL');
    await once(victim.proc, 'exit');
    victim.agent.destroy();
    victim.apiAgent.destroy();
    log(`${now().toFixed(1)} s: ${ev.target} killed (-9); its workers ${workersBefore.join(', ') || '(none)'}`);
    // Its workers must not outlive it (they would hold the port and memory).
    const killedAt = Date.now();
    while (Date.now() < killedAt + 10_000 && workersBefore.some(isAlive)) await sleep(50);
    const workersExitedMs = Date.now() - killedAt;
    const orphans = workersBefore.filter(isAlive);
    for (const w of orphans) {
      orphanWorkers.push(`worker ${w} of ${ev.target} alive 10 s after its primary was killed`);
      process.kill(w, 'SIGKILL');
    }
    ev.details = { workers: workersBefore.length, workersGoneAfterMs: workersExitedMs, orphans: orphans.length };
    const next = await spawnReplica(victim.name, victim.incarnation + 1, etcd.endpoints, workers, o.liveMemory, onExit);
    next.state = 'draining'; // not in the rotation until its pool is open
    replicas[1] = next;
    await warm(next);
    next.state = 'up';
    cleanups.add(() => (next.agent.destroy(), next.apiAgent.destroy()));
    ev.readyS = now();
    log(`${ev.readyS.toFixed(1)} s: ${next.name}#${next.incarnation} restarted and ready (proxy port ${next.proxyPort})`);
    trackAll();

    await at(2 / 3);
    // 2. SIGKILL the etcd leader, keep it down a while, restart it.
    let leader: EtcdMember | undefined;
    await waitFor(async () => (leader = await etcd.leader().catch(() => undefined)) !== undefined, 15_000, 'an etcd leader');
    if (!leader) throw new Error('no etcd leader');
    const ev2: ChaosEvent = { what: 'etcd leader SIGKILL + restart', target: `etcd ${leader.name}#${etcdIncarnation.get(leader)}`, startS: now() };
    chaos.push(ev2);
    await etcd.stop(leader, 'SIGKILL');
    log(`${now().toFixed(1)} s: ${ev2.target} (leader) killed (-9)`);
    await sleep(o.etcdDownMs);
    etcdIncarnation.set(leader, etcdIncarnation.get(leader)! + 1);
    await etcd.start(leader);
    await etcd.waitHealthy(leader, 30_000);
    ev2.readyS = now();
    ev2.details = { downMs: o.etcdDownMs, newLeader: (await etcd.leader().catch(() => undefined))?.name };
    log(`${ev2.readyS.toFixed(1)} s: etcd ${leader.name} restarted and healthy`);
    trackAll();
  })();
  let chaosError: unknown;
  chaosRun.catch((e: unknown) => {
    chaosError = e;
  });

  // --- progress, then the end of the run
  const progress = setInterval(() => log(`${now().toFixed(0)} s: load ${load.ok}/${load.sent} ok, ${load.failed} failed; churn ${churn.ok}/${churn.attempted} ok, ${churn.failed} failed`), Math.max(10_000, o.durationS * 100));
  cleanups.add(() => clearInterval(progress));
  await at(1);
  const slowChaos = sleep(60_000);
  await Promise.race([chaosRun, slowChaos]); // a chaos step still running (slow restart) ends first, bounded
  for (const wake of [...sleeping]) wake(); // slowChaos's timer must not keep the process alive
  // Load and churn go on for a tail after the last chaos step is over (a slow restart on a loaded
  // machine must not leave the run without writes after it): 1/10 of the run, at least 3 s.
  const lastReady = chaos[chaos.length - 1]?.readyS;
  if (lastReady !== undefined) await sleep(Math.max(0, (lastReady + Math.max(3, o.durationS / 10)) * 1000 - (Date.now() - t0)));
  sampleAll(); // the final sample, taken under load
  // No later sample: with liveMemory it would land after the forced GCs of the end readings and
  // become a process's "end" RSS (a lower, post-GC figure).
  clearInterval(sampler);
  if (o.liveMemory) {
    // The end readings, also under load (as the baselines were); bounded: 60 s per process at most.
    for (const p of tracked.values()) if (!p.gone) queueLive(p, 'end');
    await liveQueue;
  }
  stopped = true;
  clearInterval(progress);
  const measuredS = now();
  // In-flight requests end (bounded by their timeouts) before the books close.
  await waitFor(() => replicas.every((r) => r.inflight === 0) && churnInflight.size === 0, REQUEST_TIMEOUT_MS + 5000, 'in-flight requests').catch(() => {});
  if (chaosError) throw chaosError;
  log(`run over after ${measuredS.toFixed(1)} s; checking that every replica serves the same table`);

  // --- consistency: every replica's table = stable routes + acknowledged churn routes
  let consistency = { ok: true, detail: 'every replica serves the acknowledged table' };
  try {
    await waitFor(async () => {
      for (const r of replicas) {
        const res = await api(r, 'GET', '/api/routes');
        if (res.status !== 200) return false;
        const table = JSON.parse(res.body) as Record<string, { target: string }>;
        for (const s of stable) if (table[s.path]?.target !== backends.get(s.backend)) return false;
        for (const [p, b] of churnModel) if (!unknownOutcome.has(p) && table[p]?.target !== backends.get(b)) return false;
        for (const p of Object.keys(table)) if (p.startsWith('/churn/') && !churnModel.has(p) && !unknownOutcome.has(p)) return false;
      }
      return true;
    }, 15_000, 'tables equal to the acknowledged changes');
  } catch (e) {
    consistency = { ok: false, detail: (e as Error).message };
  }

  // --- figures
  const processes: ProcessFigures[] = [];
  const origins = new Set(stable.map((s) => s.backend)).size;
  for (const p of tracked.values()) {
    if (p.samples.length === 0) continue;
    const wantT = p.startedAt + baselineAfterS;
    const baseline = p.samples.find((s) => s.t >= wantT);
    const end = p.gone ? undefined : p.samples[p.samples.length - 1];
    const measured = baseline && end && end !== baseline;
    const round1 = (x: number): number => Math.round(x * 10) / 10;
    const steadyChange = measured && baseline.steadyFds !== undefined && end.steadyFds !== undefined ? round1(pct(baseline.steadyFds, end.steadyFds)) : undefined;
    const inWindow = baseline ? p.samples.filter((s) => s.t >= baseline.t) : [];
    const upstream = p.role === 'worker' && baseline ? {
      max: Math.max(...inWindow.map((s) => s.kinds?.['to-backend'] ?? 0)),
      origins,
      overBound: inWindow.filter((s) => (s.kinds?.['to-backend'] ?? 0) > origins * (s.kinds?.['inbound'] ?? 0)).map((s): [number, number, number] => [Math.round(s.t), s.kinds?.['to-backend'] ?? 0, s.kinds?.['inbound'] ?? 0]),
    } : undefined;
    const rssPerMinute: Array<[number, number]> = [];
    for (let m = Math.ceil(p.startedAt / 60); m * 60 <= (end?.t ?? p.samples[p.samples.length - 1]!.t) + 1; m++) {
      const at = p.samples.find((s) => s.t >= m * 60 - 1);
      if (at) rssPerMinute.push([m, at.rssKb]);
    }
    let goWindows: ProcessFigures['goWindows'];
    if (p.role === 'etcd' && measured) {
      const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
      const first = p.samples.filter((s) => s.t >= baseline.t && s.t < baseline.t + 60 && s.go);
      const last = p.samples.filter((s) => s.t > end.t - 60 && s.go);
      if (first.length > 0 && last.length > 0) {
        const ng: [number, number] = [med(first.map((s) => s.go!.nextGcKb)), med(last.map((s) => s.go!.nextGcKb))];
        const ra: [number, number] = [med(first.map((s) => s.rssAnonKb ?? 0)), med(last.map((s) => s.rssAnonKb ?? 0))];
        goWindows = { nextGcKb: ng, nextGcChangePct: round1(pct(ng[0], ng[1])), rssAnonKb: ra, rssAnonChangePct: round1(pct(ra[0], ra[1])) };
      }
    }
    processes.push({
      name: p.name, pid: p.pid, role: p.role, startedAtS: Math.round(p.startedAt * 10) / 10, baseline, end,
      fdChangePct: baseline && end && end !== baseline ? Math.round(pct(baseline.fds, end.fds) * 10) / 10 : undefined,
      rssChangePct: baseline && end && end !== baseline ? Math.round(pct(baseline.rssKb, end.rssKb) * 10) / 10 : undefined,
      maxRssKb: Math.max(...p.samples.map((s) => s.rssKb)),
      maxFds: Math.max(...p.samples.map((s) => s.fds)),
      samples: p.samples.length,
      rssChangeSecondHalfPct: secondHalf(p.samples, baseline, end),
      steadyFds: { baseline: baseline?.steadyFds, end: end?.steadyFds, changePct: steadyChange },
      upstream,
      rssPerMinute,
      series: p.samples.map((s) => [Math.round(s.t), s.fds, s.rssKb, s.steadyFds]),
      goSeries: p.role === 'etcd' ? p.samples.filter((s) => s.go).map((s) => [Math.round(s.t), s.go!.heapInuseKb, s.go!.heapRetainedKb, s.go!.nextGcKb, s.go!.stackInuseKb, s.go!.sysKb, s.go!.dbSizeKb, s.rssAnonKb, s.rssFileKb]) : undefined,
      goWindows,
      within: { rss: undefined, fds: undefined, upstream: undefined },
      live: o.liveMemory && p.replica ? {
        baseline: p.live.baseline, end: p.live.end, error: p.live.error,
        changePct: p.live.baseline && p.live.end ? Math.round(pct(liveBytes(p.live.baseline), liveBytes(p.live.end)) * 10) / 10 : undefined,
      } : undefined,
      etcdMemory: o.liveMemory && p.etcdPort !== undefined ? { baseline: p.etcdMem.baseline, end: p.etcdMem.end } : undefined,
    });
  }
  const flatDetail = judgeFlat(processes);

  return {
    options: { ...o, workers: workers ?? 'default' },
    startedAt,
    node: process.version,
    etcd: etcdVersion,
    measuredS: Math.round(measuredS * 10) / 10,
    chaos,
    warmup,
    load: { sent: load.sent, ok: load.ok, failed: load.failed, byReason: load.byReason, perReplica: load.perReplica, latencyMs: percentiles(load.latency), failures: load.failures },
    churn: {
      attempted: churn.attempted, ok: churn.ok, failed: churn.failed, failedOutsideChaos: churn.failedOutsideChaos, byOp: churn.byOp,
      byReason: churn.byReason, okAfterLastChaos: churn.okAfterLastChaos, latencyMs: percentiles(churn.latency), failures: churn.failures,
    },
    consistency,
    unexpectedExits,
    orphanWorkers,
    processes,
    verdict: {
      zeroStableFailures: load.failed === 0,
      churnOkOutsideChaos: churn.failedOutsideChaos === 0,
      noCrash: unexpectedExits.length === 0 && orphanWorkers.length === 0,
      consistent: consistency.ok,
      flat: flatDetail.length === 0,
      flatDetail,
    },
  };
}

/**
 * The ±10% flatness verdict, per process (sets `within`) and as the list of what is not flat: RSS
 * (or live memory with liveMemory), the steady fds, and a worker's pooled upstream sockets against
 * their bound. Exported so that a recorded report can be judged again (bench/soak.mjs REJUDGE).
 */
/** ProcessFigures.rssLevel from a process's series (undefined without a baseline and an end). */
function rssLevelOf(p: ProcessFigures): ProcessFigures['rssLevel'] {
  if (!p.baseline || !p.end || p.end === p.baseline) return undefined;
  const b = p.baseline.t;
  const e = p.end.t;
  const windowS = Math.min(60, (e - b) / 4);
  const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  // series rows are [rounded seconds, fds, RSS KiB, steady fds]; the end sample is the last row.
  const first = p.series.filter(([t]) => t >= Math.round(b) && t < b + windowS).map((r) => r[2]);
  const last = p.series.filter(([t]) => t > e - windowS).map((r) => r[2]);
  if (first.length === 0 || last.length === 0) return undefined;
  const baselineKb = median(first);
  const endKb = median(last);
  return { baselineKb, endKb, changePct: Math.round(pct(baselineKb, endKb) * 10) / 10, windowS: Math.round(windowS) };
}

export function judgeFlat(processes: ProcessFigures[]): string[] {
  const flatDetail: string[] = [];
  for (const p of processes) {
    if (p.fdChangePct === undefined || p.rssChangePct === undefined) continue;
    // fds: the steady ones (Sample.steadyFds); a worker's pooled upstream sockets against their bound.
    const fdPct = p.steadyFds.changePct ?? p.fdChangePct;
    p.within.fds = Math.abs(fdPct) <= 10;
    if (!p.within.fds) flatDetail.push(`${p.name}: fds (without load-following ones) ${p.steadyFds.baseline} -> ${p.steadyFds.end} (${fdPct}%; all fds ${p.baseline!.fds} -> ${p.end!.fds})`);
    if (p.upstream) {
      p.within.upstream = p.upstream.overBound.length === 0;
      if (!p.within.upstream) flatDetail.push(`${p.name}: pooled upstream sockets above ${p.upstream.origins} x accepted connections at ${p.upstream.overBound.length} samples, e.g. ${JSON.stringify(p.upstream.overBound.slice(0, 3))} ([s, to-backend, accepted])`);
    }
    // RSS: its level (ProcessFigures.rssLevel). With liveMemory a Node process is judged on live
    // memory instead (as before).
    p.rssLevel = rssLevelOf(p);
    const live = p.live?.changePct;
    const rssPct = p.rssLevel?.changePct ?? p.rssChangePct;
    p.within.rss = Math.abs(live ?? rssPct) <= 10;
    if (p.goWindows) {
      // An etcd member is judged on its Go live heap; its RSS is reported (within.rss) but cannot be
      // flat from minute 2 and is not a leak measure: from there it rises to a plateau, (1) the Go
      // heap touching the rest of its GC envelope (in use + retained idle spans reach the next-GC
      // target, which the scavenger keeps mapped), and (2) the mmapped bbolt file growing to its
      // high-water mark under compaction (file-backed RSS). bench/README.md shows both with the
      // per-sample series; a leak would show as a rising next-GC target.
      p.within.goLive = Math.abs(p.goWindows.nextGcChangePct) <= 10;
      if (!p.within.goLive) flatDetail.push(`${p.name}: Go live heap (next-GC target, medians of the first and last minute) ${p.goWindows.nextGcKb[0]} -> ${p.goWindows.nextGcKb[1]} KiB (${p.goWindows.nextGcChangePct}%)`);
      continue;
    }
    if (live !== undefined) {
      if (!p.within.rss) flatDetail.push(`${p.name}: live memory (heapUsed + external after full GC) ${liveBytes(p.live!.baseline!)} -> ${liveBytes(p.live!.end!)} B (${live}%)`);
    } else if (!p.within.rss) flatDetail.push(`${p.name}: RSS level (median of the first and of the last minute) ${p.rssLevel?.baselineKb ?? p.baseline!.rssKb} -> ${p.rssLevel?.endKb ?? p.end!.rssKb} KiB (${rssPct}%)`);
  }
  return flatDetail;
}

// ------------------------------------------------------------------ summary

const kib = (k: number): string => `${(k / 1024).toFixed(1)} MiB`;
const signed = (x: number | undefined): string => (x === undefined ? '–' : `${x > 0 ? '+' : ''}${x.toFixed(1)}%`);

function kindsDiff(b: Sample | undefined, e: Sample | undefined): string {
  if (!b?.kinds || !e?.kinds) return '';
  const keys = [...new Set([...Object.keys(b.kinds), ...Object.keys(e.kinds)])].sort();
  return keys.filter((k) => (b.kinds![k] ?? 0) !== (e.kinds![k] ?? 0)).map((k) => `${k} ${b.kinds![k] ?? 0}→${e.kinds![k] ?? 0}`).join(', ');
}

/** A human summary (Markdown) of a report. */
export function summarize(r: SoakReport): string {
  const lines: string[] = [];
  lines.push(`Soak: ${r.measuredS} s measured, started ${r.startedAt}, Node ${r.node}, etcd ${r.etcd}, workers ${r.options.workers}`);
  lines.push(`load ${r.options.loadRate} req/s on ${r.options.stableRoutes} stable routes (achieved ${(r.load.sent / r.measuredS).toFixed(0)}/s); churn ${r.options.churnRate} changes/s (achieved ${(r.churn.attempted / r.measuredS).toFixed(1)}/s); samples every ${r.options.sampleMs} ms`);
  lines.push('');
  const w = r.warmup;
  if (w) {
    lines.push(`etcd warm-up before t=0: ${w.seconds} s, 3 throwaway replicas (${w.replicas.join(', ')}) under ${w.prefix}, the run's load and churn rates; load ${w.load.ok}/${w.load.sent} ok, ${w.load.failed} failed; churn ${w.churn.ok}/${w.churn.attempted} ok, ${w.churn.failed} failed; replicas stopped (SIGTERM) at its end; data ${w.data}`);
    if (w.leaderKill) lines.push(`  warm-up leader kill: etcd ${w.leaderKill.member} SIGKILLed at ${w.leaderKill.startS.toFixed(1)} s, down ${w.leaderKill.downMs} ms, healthy at ${w.leaderKill.readyS ?? '?'} s, leader then ${w.leaderKill.newLeader ?? '?'}`);
    for (const f of w.failures.slice(0, 10)) lines.push(`  warm-up failure at ${f.t.toFixed(1)} s: ${f.where}: ${f.reason}`);
    for (const e of w.unexpectedExits) lines.push(`  warm-up exit: ${e.split('\n')[0]}`);
    lines.push('  etcd members during the warm-up, RSS (MiB) at each minute (last: its end)' + ' / Go next-GC target / bbolt file (MiB) at its end:');
    const mib = (kb: number | null | undefined): string => (kb == null ? '?' : (kb / 1024).toFixed(0));
    for (const [name, rows] of Object.entries(w.etcd)) {
      const perMinute: string[] = [];
      for (let m = 0; m * 60 <= w.seconds; m++) {
        const row = rows.find((x) => x[0] >= m * 60);
        if (row && (m === 0 || row[0] < (m + 1) * 60)) perMinute.push(mib(row[1]));
      }
      const last = rows[rows.length - 1];
      lines.push(`  - ${name}: ${perMinute.join(' ')} → ${mib(last?.[1])}; next GC ${mib(last?.[4])}, bbolt ${mib(last?.[5])}`);
    }
    lines.push('');
  }
  lines.push('Chaos:');
  for (const c of r.chaos) lines.push(`- ${c.startS.toFixed(1)} s: ${c.what} of ${c.target}; ready again at ${c.readyS?.toFixed(1) ?? '?'} s ${c.details ? JSON.stringify(c.details) : ''}`);
  lines.push('');
  lines.push(`Stable-route requests: ${r.load.sent} sent, ${r.load.ok} ok, **${r.load.failed} failed** ${JSON.stringify(r.load.byReason)}; latency p50 ${r.load.latencyMs.p50} ms, p99 ${r.load.latencyMs.p99} ms, max ${r.load.latencyMs.max} ms`);
  lines.push(`  per replica: ${Object.entries(r.load.perReplica).map(([n, v]) => `${n} ${v.ok}/${v.sent}`).join(', ')}`);
  lines.push(`Churn writes: ${r.churn.attempted} attempted, ${r.churn.ok} ok, ${r.churn.failed} failed (${r.churn.failedOutsideChaos} outside chaos windows); ${r.churn.okAfterLastChaos} ok started after the etcd member was back; latency p50 ${r.churn.latencyMs.p50} ms, p99 ${r.churn.latencyMs.p99} ms, max ${r.churn.latencyMs.max} ms`);
  lines.push(`  by op: ${Object.entries(r.churn.byOp).map(([k, v]) => `${k} ${v.ok} ok / ${v.failed} failed`).join(', ')}`);
  if (r.churn.failed > 0) lines.push(`  failures: ${JSON.stringify(r.churn.byReason)}`);
  lines.push(`Consistency: ${r.consistency.ok ? 'ok' : 'FAILED'} (${r.consistency.detail})`);
  lines.push(`Unexpected exits: ${r.unexpectedExits.length}; orphan workers: ${r.orphanWorkers.length}`);
  lines.push('');
  lines.push('| process | started (s) | fds at baseline → end | Δ fds | RSS at baseline → end | Δ RSS | of which 2nd half | max RSS | fd kinds at baseline → end (where they differ) |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const p of r.processes) {
    const b = p.baseline;
    const e = p.end;
    lines.push(`| ${p.name} | ${p.startedAtS} | ${b ? b.fds : '–'} (${b ? b.t.toFixed(0) + ' s' : '–'}) → ${e ? e.fds : 'gone'} | ${signed(p.fdChangePct)} | ${b ? kib(b.rssKb) : '–'} → ${e ? kib(e.rssKb) : 'gone'} | ${signed(p.rssChangePct)} | ${signed(p.rssChangeSecondHalfPct)} | ${kib(p.maxRssKb)} | ${kindsDiff(b, e)} |`);
  }
  lines.push('');
  lines.push('Flatness, each process from its baseline (minute 2, or 2 minutes after it started; 1/5 of a shorter run) to the end of the run: RSS (`VmRSS`) as its level, the median sample of the first and of the last minute (a single sample can fall into a transient of seconds: an idle semi-space given back, garbage before a major GC), etcd members judged on their Go live heap; and the fds that do not follow the load (a worker\'s pooled upstream sockets and the harness\'s own connections to etcd left out; the pooled upstream sockets checked against their bound instead):');
  lines.push('');
  lines.push('| process | RSS baseline → end (samples) | Δ | RSS level: median of first → last minute | Δ | ±10% | fds baseline → end | Δ fds | ±10% | pooled upstream sockets: max (≤ origins × accepted at every sample) | RSS each minute (MiB) |');
  lines.push('|---|---:|---:|---:|---:|:-:|---:|---:|:-:|---|---|');
  const mark = (ok: boolean | undefined): string => (ok === undefined ? '–' : ok ? 'yes' : '**NO**');
  for (const p of r.processes) {
    const b = p.baseline;
    const e = p.end;
    const up = p.upstream ? `${p.upstream.max} (${p.upstream.overBound.length === 0 ? 'yes' : `**NO** at ${p.upstream.overBound.length} samples`})` : '';
    const rssWithin = p.live?.changePct !== undefined ? `${mark(p.within.rss)} (live memory ${signed(p.live.changePct)})`
      : p.within.goLive !== undefined ? `${mark(p.within.rss)}; Go live heap ${signed(p.goWindows!.nextGcChangePct)}: ${mark(p.within.goLive)}` : mark(p.within.rss);
    const level = p.rssLevel ? `${kib(p.rssLevel.baselineKb)} → ${kib(p.rssLevel.endKb)}` : '–';
    lines.push(`| ${p.name} | ${b ? `${kib(b.rssKb)} (${b.t.toFixed(0)} s)` : '–'} → ${e ? kib(e.rssKb) : 'gone'} | ${signed(p.rssChangePct)} | ${level} | ${signed(p.rssLevel?.changePct)} | ${rssWithin} | ${p.steadyFds.baseline ?? '–'} → ${e ? (p.steadyFds.end ?? '–') : 'gone'} | ${signed(p.steadyFds.changePct)} | ${mark(p.within.fds)} | ${up} | ${p.rssPerMinute.map(([, k]) => (k / 1024).toFixed(0)).join(' ')} |`);
  }
  const etcdRows = r.processes.filter((p) => p.goWindows);
  if (etcdRows.length > 0) {
    lines.push('');
    lines.push('etcd members, from /metrics at every sample: median over the baseline\'s minute → median over the last minute (MiB). Go\'s next-GC target is its live heap at the last GC × 2 (GOGC=100): the Go analogue of live memory after a GC; RssAnon is the resident heap, stacks and runtime:');
    lines.push('');
    lines.push('| process | Go next-GC target | Δ | RssAnon | Δ | heap in use → end | heap retained idle → end | bbolt file → end |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|');
    const mb = (k: number | undefined): string => (k === undefined ? '–' : (k / 1024).toFixed(1));
    for (const p of etcdRows) {
      const w = p.goWindows!;
      const g = p.goSeries ?? [];
      const gb = g.find((x) => x[0] >= (p.baseline?.t ?? 0));
      const ge = g[g.length - 1];
      lines.push(`| ${p.name} | ${mb(w.nextGcKb[0])} → ${mb(w.nextGcKb[1])} | ${signed(w.nextGcChangePct)} | ${mb(w.rssAnonKb[0])} → ${mb(w.rssAnonKb[1])} | ${signed(w.rssAnonChangePct)} | ${mb(gb?.[1])} → ${mb(ge?.[1])} | ${mb(gb?.[2])} → ${mb(ge?.[2])} | ${mb(gb?.[6])} → ${mb(ge?.[6])} |`);
    }
  }
  if (r.options.liveMemory) {
    lines.push('');
    lines.push('Live memory of the Node processes (process.memoryUsage() after full GCs, read through the inspector; the flatness verdict uses heapUsed + external where both readings exist):');
    lines.push('');
    lines.push('| process | read at (s) | heapUsed + external | Δ | heapUsed | external | arrayBuffers | RSS after GC | RSS sampled (Δ) |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    const mib = (b: number | undefined): string => (b === undefined ? '–' : (b / 2 ** 20).toFixed(1));
    const pair = (b: LiveReading | undefined, e: LiveReading | undefined, f: (m: LiveMemory) => number): string => `${mib(b && f(b))} → ${mib(e && f(e))}`;
    for (const p of r.processes) {
      if (!p.live) continue;
      const { baseline: b, end: e } = p.live;
      lines.push(`| ${p.name} | ${b?.t ?? '–'} → ${e?.t ?? '–'} | ${pair(b, e, liveBytes)} MiB | ${signed(p.live.changePct)} | ${pair(b, e, (m) => m.heapUsed)} | ${pair(b, e, (m) => m.external)} | ${pair(b, e, (m) => m.arrayBuffers)} | ${pair(b, e, (m) => m.rss)} | ${signed(p.rssChangePct)} |${p.live.error ? ` ${p.live.error}` : ''}`);
    }
    lines.push('');
    lines.push('etcd members (/metrics, MiB; Go heap retained = idle spans not returned to the OS; bbolt file mmapped, so in RSS as file pages):');
    lines.push('');
    lines.push('| process | read at (s) | Go heap alloc | Go heap in use | Go heap retained | bbolt size (in use) | RssAnon / RssFile sampled |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|');
    for (const p of r.processes) {
      if (!p.etcdMemory) continue;
      const { baseline: b, end: e } = p.etcdMemory;
      const two = (f: (m: EtcdMemory) => number): string => `${mib(b && f(b))} → ${mib(e && f(e))}`;
      const split = (x: Sample | undefined): string => (x?.rssAnonKb === undefined ? '–' : `${(x.rssAnonKb / 1024).toFixed(1)} / ${((x.rssFileKb ?? 0) / 1024).toFixed(1)}`);
      lines.push(`| ${p.name} | ${b?.t ?? '–'} → ${e?.t ?? '–'} | ${two((m) => m.goHeapAlloc)} | ${two((m) => m.goHeapInuse)} | ${two((m) => m.goHeapRetained)} | ${two((m) => m.dbSize)} (${two((m) => m.dbInUse)}) | ${split(p.baseline)} → ${split(p.end)} |`);
    }
  }
  lines.push('');
  const v = r.verdict;
  lines.push(`Verdict: stable failures 0: ${v.zeroStableFailures ? 'yes' : 'NO'}; churn ok outside chaos: ${v.churnOkOutsideChaos ? 'yes' : 'NO'}; no crash: ${v.noCrash ? 'yes' : 'NO'}; consistent: ${v.consistent ? 'yes' : 'NO'}; fd/RSS flat (±10%; etcd members on their Go live heap): ${v.flat ? 'yes' : 'NO'}`);
  for (const d of v.flatDetail) lines.push(`  not flat: ${d}`);
  return lines.join('\n');
}
