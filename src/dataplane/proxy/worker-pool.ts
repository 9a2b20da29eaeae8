// Primary side of --workers N: starts N data-plane workers that share the public port, keeps each
// on the current table (a TableListener: a snapshot once, then deltas), and gathers what flows
// back: applied versions (so "201" can mean live on every worker), route activity, and metrics.
// Workers are node:cluster processes (they listen through cluster: one socket, the primary's) or
// threads of this process (each binds the port itself with SO_REUSEPORT; the kernel spreads new
// connections over their sockets); both speak worker-protocol.ts over worker-channel.ts.
//
// Contract: workers listen only when told, and at start-up all are told together once every one
// has applied its snapshot; `start()` resolves when every worker has the table and listens; `waitApplied(v)`
// resolves when every live worker applied version >= v; a worker that dies is replaced and gets
// the current table before it listens. `notReady()` says why the pool is not whole (a worker
// replaced and not yet listening), undefined when every worker listens: /api/health answers 503
// with it meanwhile. `close(drainMs)` asks workers to drain, then stops them.

import { ErrorCode, SwitchyardError } from '../../errors.js';
import { existsSync, unlinkSync } from 'node:fs';
import type { TableListener, TableUpdate } from '../../control/table-listener.js';
import type { Logger } from '../../observability/logger.js';
import type { RoutingTable } from '../../routing/table.js';
import type { Config, ListenTarget } from '../../config/config.js';
import type { PreforkedWorker } from './prefork.js';
import { setupWorkers } from './worker-exec-argv.js';
import { spawnWorker, type WorkerHandle } from './worker-channel.js';
import type { WorkerMode } from '../../config/worker-mode.js';
import { claimProxyPort, type PortClaim } from './port-claim.js';
import type { ToPrimary, ToWorker, WorkerVitals } from './worker-protocol.js';
import type { DataPlaneSettings } from './live-settings.js';
import type { ChallengeSource, KeyCert } from '../../tls/challenge-source.js';

export interface WorkerPoolOptions {
  readonly count: number;
  /** Processes or threads (config.ts resolves worker-mode; threads need a TCP listener). */
  readonly mode: WorkerMode;
  readonly log: Logger;
  readonly listen: ListenTarget;
  /** What a worker gets until the first table update (as every data plane takes one). */
  readonly initialTable: RoutingTable;
  readonly onActivity: (path: string, at: number) => void;
  /** A worker's per-route stats delta (route-stats.ts), once per second. */
  readonly onRouteStats?: (entries: readonly (readonly [string, number[]])[]) => void;
  /** Workers forked before the pool existed (prefork.ts): taken as members, the rest forked by start(). */
  readonly preforked?: readonly PreforkedWorker[];
  /** The live settings every worker runs (see applySettings). */
  readonly settings: DataPlaneSettings;
  /** The running configuration: what a worker, started now, runs (worker-protocol 'config'). */
  readonly config: () => Config;
  /** ACME: answers workers' challenge and on-demand questions; `certificates` go to each new worker. */
  readonly acme?: { readonly source: ChallengeSource; readonly certificates: () => ReadonlyMap<string, KeyCert> };
}

/**
 * Restart backoff. A worker that dies within QUICK_EXIT_MS of its start is replaced after a delay
 * that doubles from FIRST_RESTART_MS up to MAX_RESTART_MS, so that a worker that cannot live (a
 * broken install, a crash at start) does not turn the primary into a fork loop. The delay starts
 * over once no worker has died young for BACKOFF_RESET_MS. A worker that lived longer is replaced
 * at once.
 */
const QUICK_EXIT_MS = 10_000;
const FIRST_RESTART_MS = 100;
const MAX_RESTART_MS = 10_000;
const BACKOFF_RESET_MS = 60_000;

interface Member {
  worker: WorkerHandle;
  applied: number;
  listening: boolean;
  /** Got its snapshot: only then do deltas make sense to it. */
  synced: boolean;
  /** Told to listen (after it applied its snapshot). */
  told: boolean;
  /**
   * The table version it must have applied before it listens: the one loaded from the store
   * (a worker preforked before start() may hold the empty initial table), or for a worker synced
   * later, the snapshot it was sent. Undefined before start().
   */
  listensFrom: number | undefined;
  vitals: WorkerVitals | undefined;
  /** Its last answer to a metrics request (prom-client JSON); undefined until it first answered. */
  metrics: unknown;
  /** Metrics requests waiting on it: answered (as timed out) when it exits. */
  metricsWaits: Set<() => void>;
}

/** What workerMetrics() gathers for one /metrics scrape. */
export interface WorkerMetricsSnapshot {
  /** Each live worker's registry: its answer, or its last answer when it did not answer in 1 s. */
  readonly live: unknown[];
  /** The last answers of workers that exited since the previous call (each handed over once). */
  readonly retired: unknown[];
}

export function createWorkerPool(o: WorkerPoolOptions) {
  const members = new Map<number, Member>();
  /** The newest table: what a new (or replacement) worker gets first. */
  let current = o.initialTable;
  const waiters = new Set<() => void>();
  /** Scrapes waiting on a worker's answer, by request id (the answer itself goes to its member's `metrics`). */
  const metricWaits = new Map<number, () => void>();
  let nextMetricsId = 1;
  /** Last metrics answers of workers that exited, until workerMetrics() hands them over. */
  const retiredMetrics: unknown[] = [];
  /** Replacements waiting out their backoff, with when each is due (start() and close() clear them). */
  const restarts = new Map<NodeJS.Timeout, number>();
  const clearRestarts = (): void => {
    for (const timer of restarts.keys()) clearTimeout(timer);
    restarts.clear();
  };
  /** The backoff is the pool's, not a slot's: deaths of any workers double it. */
  let restartDelay = 0;
  let lastQuickExit = -Infinity;
  /** The delay before replacing a worker that ran `livedMs` (0: at once). */
  const nextRestartDelay = (livedMs: number): number => {
    if (livedMs >= QUICK_EXIT_MS) return 0;
    const now = Date.now();
    restartDelay = now - lastQuickExit > BACKOFF_RESET_MS ? FIRST_RESTART_MS : Math.min(restartDelay * 2, MAX_RESTART_MS);
    lastQuickExit = now;
    return restartDelay;
  };
  let settings = o.settings;
  const settingsWaits = new Map<number, (error: string | undefined) => void>();
  let nextSettingsId = 1;
  let stopping = false;
  /** Set when a worker could not bind the public port: nothing is respawned, start() rejects. */
  let listenFailure: SwitchyardError | undefined;
  /** The bound public port as the workers report it (processes share one: cluster binds it once; threads bind this one). */
  let boundPort: number | undefined;
  /** Threads: this instance's claim on the public port (port-claim.ts), held until close. */
  let claim: PortClaim | undefined;
  const threads = o.mode === 'threads';
  const fixedPort = o.listen.kind === 'tcp' && o.listen.port !== 0 ? o.listen.port : undefined;

  const send = (w: WorkerHandle, m: ToWorker): void => w.send(m);
  const minApplied = (): number => {
    let min = Infinity;
    for (const m of members.values()) min = Math.min(min, m.applied);
    return min === Infinity ? 0 : min;
  };
  const notify = (): void => {
    for (const w of waiters) w();
  };

  /**
   * Workers listen only once told: each as soon as it has applied the table loaded from the store
   * (`listensFrom`), not the empty initial one a preforked worker may hold. The
   * first one to have it opens the public port alone (it serves every connection until the others
   * join, tens of ms later at start-up: what makes the port answer as early as one worker can,
   * bench/README.md "Start-up"); start() still resolves, and so the API opens, only once all
   * listen. A replacement is told as soon as it has its snapshot (of the current table).
   */
  let started = false;
  const tellListen = (): void => {
    if (stopping || listenFailure !== undefined || !started) return;
    if (threads && fixedPort !== undefined && claim === undefined) return; // start() claims it first
    // Threads with --port 0: one binds port 0, the others (and replacements) the port it got.
    const port = threads ? (fixedPort ?? (claim !== undefined ? boundPort : undefined)) : undefined;
    if (threads && port === undefined) {
      // A port is bound and being claimed (onPortZeroBound tells the rest when it is): even if
      // the thread that bound it died meanwhile, no other thread may bind a port of its own.
      if (boundPort !== undefined) return;
      for (const m of members.values()) if (m.told) return; // the first one is binding
    }
    for (const m of members.values()) {
      if (!m.told && m.listensFrom !== undefined && m.applied >= Math.max(0, m.listensFrom)) {
        m.told = true;
        send(m.worker, port !== undefined ? { t: 'listen', port } : { t: 'listen' });
        if (threads && port === undefined) return;
      }
    }
  };

  /**
   * Threads with --port 0: the first thread got a port; claim it (port-claim.ts) and let the
   * others bind it. (No other instance can have it: the kernel does not hand out an ephemeral
   * port that is bound, SO_REUSEPORT or not.)
   */
  const onPortZeroBound = (port: number): void => {
    claimProxyPort(port).then(
      (c) => {
        if (stopping) c.release();
        else claim = c;
        tellListen();
      },
      (e: unknown) => {
        listenFailure ??= e as SwitchyardError;
        notify();
      },
    );
  };

  const snapshot = (table: RoutingTable): ToWorker => ({
    t: 'table',
    version: table.version,
    routes: [...table.routes()].map((r) => [r.path, r.data] as const),
  });

  const fork = (): Member => attach(spawnWorker(o.mode));

  /**
   * Test hook (SWITCHYARD_TEST_HOOKS=1 and SWITCHYARD_TEST_HOLD_SYNC=1): only the first worker to
   * say 'ready' gets its table; the others' 'ready' waits until the process gets SIGWINCH, as if
   * they were slow to boot (test/integration/readiness.test.ts: the port is served by one worker
   * while the API waits for the others).
   */
  let holdSync = process.env.SWITCHYARD_TEST_HOOKS === '1' && process.env.SWITCHYARD_TEST_HOLD_SYNC === '1';
  const heldReady: (() => void)[] = [];

  /** Make `worker` a member; `pre`: it was preforked (its messages and exit come through adopt). */
  const attach = (worker: WorkerHandle, pre?: PreforkedWorker): Member => {
    const m: Member = {
      worker,
      applied: -1,
      listening: false,
      synced: false,
      told: false,
      listensFrom: undefined,
      vitals: undefined,
      metrics: undefined,
      metricsWaits: new Set(),
    };
    const bornAt = Date.now();
    members.set(worker.id, m);
    const onMessage = (msg: ToPrimary): void => {
      switch (msg.t) {
        case 'config?':
          send(worker, { t: 'config', config: o.config() });
          break;
        case 'ready':
          if (holdSync && [...members.values()].some((x) => x !== m && x.synced)) {
            heldReady.push(() => onMessage(msg));
            break;
          }
          // Its message handler is installed (messages sent earlier would be lost). The current
          // table already holds every delta published before this point.
          if (stopping) {
            // SIGTERM while it was starting: the drain sent then was lost; it has nothing to drain.
            send(worker, { t: 'drain', ms: 0 });
            break;
          }
          for (const [name, pem] of o.acme?.certificates() ?? []) send(worker, { t: 'cert', name, cert: pem.cert, key: pem.key });
          send(worker, snapshot(current));
          send(worker, { t: 'settings', id: 0, settings });
          m.synced = true;
          if (started) m.listensFrom = current.version;
          break;
        case 'acme-ask': {
          const src = o.acme?.source;
          const ask =
            src === undefined
              ? Promise.resolve(undefined)
              : msg.kind === 'http01'
                ? src.http01(msg.key, msg.host ?? '')
                : msg.kind === 'alpn'
                  ? src.alpn(msg.key)
                  : (src.onDemand?.(msg.key) ?? Promise.resolve(undefined));
          ask.then(
            (value) => send(worker, { t: 'acme-answer', id: msg.id, value: value ?? null }),
            (e: unknown) => {
              o.log.warn(`ACME: answering a worker's ${msg.kind} question failed: ${(e as Error).message}`);
              send(worker, { t: 'acme-answer', id: msg.id, value: null });
            },
          );
          break;
        }
        case 'applied':
          m.applied = Math.max(m.applied, msg.version);
          tellListen();
          notify();
          break;
        case 'listening':
          m.listening = true;
          o.log.debug(`data-plane worker ${worker.label} listening${msg.port !== undefined ? ` on port ${msg.port}` : ''}`);
          if (msg.port !== undefined && boundPort === undefined) {
            boundPort = msg.port;
            if (threads && fixedPort === undefined) onPortZeroBound(msg.port);
          } else if (msg.port !== undefined && msg.port !== boundPort && !threads) {
            // node:cluster closes the shared socket when its last worker goes, and binds --port 0
            // anew for the next one.
            o.log.warn(`the public port is now ${msg.port}, not ${boundPort}: every data-plane worker had died (--port 0)`);
            boundPort = msg.port;
          }
          notify();
          break;
        case 'listen-failed':
          listenFailure ??= new SwitchyardError(ErrorCode.LISTEN_FAILED, `data-plane workers cannot listen: ${msg.message}`, {
            details: { errno: msg.errno },
          });
          notify();
          break;
        case 'activity':
          for (const [path, at] of msg.entries) o.onActivity(path, at);
          break;
        case 'metrics':
          // Kept even when the scrape that asked stopped waiting: a worker's answers come in
          // order, so its last one is its newest (a slow worker's counts do not freeze).
          m.metrics = msg.json;
          metricWaits.get(msg.id)?.();
          break;
        case 'settings-applied':
          if (msg.error !== undefined) o.log.error(`data-plane worker ${worker.label} could not apply settings: ${msg.error}`);
          settingsWaits.get(msg.id)?.(msg.error === undefined ? undefined : `worker ${worker.label}: ${msg.error}`);
          break;
        case 'stats':
          m.vitals = msg.proc;
          if (msg.routes.length > 0) o.onRouteStats?.(msg.routes);
          break;
      }
    };
    const onExit = (code: number | null, signal: string | null): void => {
      members.delete(worker.id);
      if (m.metrics !== undefined) retiredMetrics.push(m.metrics);
      for (const gone of m.metricsWaits) gone();
      notify();
      tellListen(); // threads on --port 0: if it was the one binding, the next one binds
      if (!stopping && listenFailure === undefined) {
        const lived = Date.now() - bornAt;
        const delay = nextRestartDelay(lived);
        o.log.error(
          `data-plane worker ${worker.label} exited (${signal ?? code}); starting a new one` +
            (delay > 0 ? ` in ${delay} ms (it ran ${(lived / 1000).toFixed(1)} s)` : ''),
        );
        if (delay === 0) fork();
        else {
          const timer = setTimeout(() => {
            restarts.delete(timer);
            if (!stopping && listenFailure === undefined && members.size < o.count) fork();
          }, delay);
          restarts.set(timer, Date.now() + delay);
        }
      }
    };
    if (pre !== undefined) pre.adopt(onMessage, onExit);
    else {
      worker.onMessage(onMessage);
      worker.onExit(onExit);
    }
    return m;
  };

  const until = (cond: () => boolean, timeoutMs: number): Promise<boolean> => {
    if (cond()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = (): void => {
        if (!cond()) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve(true);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        resolve(false);
      }, timeoutMs);
      waiters.add(check);
    });
  };

  const pool = {
    name: 'worker pool',
    async start(): Promise<void> {
      if (o.listen.kind === 'unix' && existsSync(o.listen.path)) unlinkSync(o.listen.path);
      // Applies to every later worker (also replacements); preforked workers got it in prefork.ts.
      // A process's script and args stay node:cluster's defaults (process.argv), and so does
      // --inspect handling (each worker gets its own port).
      await setupWorkers(o.mode);
      if (threads && fixedPort !== undefined) {
        try {
          claim = await claimProxyPort(fixedPort);
        } catch (e) {
          listenFailure = e as SwitchyardError;
          throw e;
        }
      }
      if (process.env.SWITCHYARD_TEST_HOOKS === '1') {
        // Test hook: SIGUSR2 makes the oldest worker die of an uncaught error (worker.ts).
        process.on('SIGUSR2', () => {
          const first = members.values().next().value;
          if (first !== undefined) send(first.worker, { t: 'test-crash' });
        });
        process.once('SIGWINCH', () => {
          holdSync = false;
          for (const ready of heldReady.splice(0)) ready();
        });
      }
      // The table loaded from the store: what a worker synced before now must apply first.
      for (const m of members.values()) m.listensFrom = current.version;
      started = true;
      // A preforked worker that died meanwhile is replaced now, not after its backoff.
      clearRestarts();
      for (let i = members.size; i < o.count; i++) fork();
      tellListen(); // preforked workers may have applied this table already
      const ok = await until(() => listenFailure !== undefined || (members.size === o.count && [...members.values()].every((m) => m.listening)), 60_000);
      if (listenFailure !== undefined) throw listenFailure;
      if (!ok) throw new SwitchyardError(ErrorCode.LISTEN_FAILED, 'data-plane workers did not start listening within 60 s');
    },
    /**
     * Undefined when all `count` workers listen (each with a table taken when it came up, plus
     * every delta since); otherwise why not. The survivors keep serving meanwhile.
     */
    notReady(): string | undefined {
      if (stopping) return 'stopping';
      const starting = [...members.values()].filter((m) => !m.listening);
      const listening = members.size - starting.length;
      if (listening === o.count) return undefined;
      const names = starting.map((m) => m.worker.label).join(', ');
      return (
        `${listening} of ${o.count} data-plane workers listening` +
        (names ? ` (starting: ${names})` : '') +
        (restarts.size > 0 ? ` (${restarts.size} to restart, the next in ${Math.max(0, Math.min(...restarts.values()) - Date.now())} ms: died young)` : '')
      );
    },
    /** ACME: every worker serves this certificate for `name` from its next handshake on. */
    pushCertificate(name: string, pem: KeyCert): void {
      for (const m of members.values()) if (m.synced) send(m.worker, { t: 'cert', name, cert: pem.cert, key: pem.key });
    },
    onTable(update: TableUpdate): void {
      current = update.table;
      const msg: ToWorker = update.changes === null ? snapshot(update.table) : { t: 'changes', version: update.table.version, changes: update.changes };
      for (const m of members.values()) if (m.synced) send(m.worker, msg);
    },
    waitApplied(version: number, timeoutMs: number): Promise<boolean> {
      return until(() => minApplied() >= version, timeoutMs);
    },
    /** The public TCP port the workers listen on (undefined before start, or on a unix socket). */
    port(): number | undefined {
      return boundPort;
    },
    /** Each live worker: pid (and thread id), whether it listens, the table version it serves, its latest vitals. */
    workers(): { pid: number | undefined; threadId?: number; listening: boolean; applied: number; vitals: WorkerVitals | undefined }[] {
      return [...members.values()].map((m) => ({
        pid: m.worker.pid,
        ...(m.worker.threadId !== undefined ? { threadId: m.worker.threadId } : {}),
        listening: m.listening,
        applied: m.applied,
        vitals: m.vitals,
      }));
    },
    /**
     * Every worker's metrics as prom-client JSON, for one scrape. Counters summed over workers must
     * never go down (Prometheus reads a drop as a reset): a worker that does not answer in 1 s is
     * counted with its last answer, and a worker that exited is handed over once in `retired`
     * with its last answer, for the caller to keep (worker-metrics.ts). A worker that exits
     * during the call is only in `retired`. One never asked before is left out until it answers.
     */
    async workerMetrics(): Promise<WorkerMetricsSnapshot> {
      // Only workers that have their snapshot: one still booting would not hear the question.
      const asked = [...members.values()].filter((m) => m.synced);
      await Promise.all(
        asked.map(
          (m) =>
            new Promise<void>((resolve) => {
              const id = nextMetricsId++;
              const done = (): void => {
                clearTimeout(timer);
                metricWaits.delete(id);
                m.metricsWaits.delete(done);
                resolve();
              };
              const timer = setTimeout(done, 1000);
              metricWaits.set(id, done); // the 'metrics' message keeps the answer in m.metrics
              m.metricsWaits.add(done); // an exit answers at once
              send(m.worker, { t: 'metrics', id });
            }),
        ),
      );
      const live = asked.filter((m) => members.get(m.worker.id) === m && m.metrics !== undefined).map((m) => m.metrics);
      return { live, retired: retiredMetrics.splice(0) };
    },
    /**
     * Every live worker applies `next` (a reload). Resolves once each answered; rejects with the
     * workers' errors, or when one does not answer within 5 s. A worker that starts later gets
     * `next` with its snapshot.
     */
    async applySettings(next: DataPlaneSettings): Promise<void> {
      settings = next;
      const errors = await Promise.all(
        [...members.values()]
          .filter((m) => m.synced)
          .map(
            (m) =>
              new Promise<string | undefined>((resolve) => {
                const id = nextSettingsId++;
                const timer = setTimeout(() => {
                  settingsWaits.delete(id);
                  resolve(`worker ${m.worker.label} did not answer within 5 s`);
                }, 5000);
                settingsWaits.set(id, (error) => {
                  clearTimeout(timer);
                  settingsWaits.delete(id);
                  resolve(error);
                });
                send(m.worker, { t: 'settings', id, settings: next });
              }),
          ),
      );
      const failed = errors.filter((e): e is string => e !== undefined);
      if (failed.length > 0) throw new Error(failed.join('; '));
    },
    async close(drainMs: number): Promise<void> {
      stopping = true;
      clearRestarts();
      const exits = [...members.values()].map((m) => new Promise<void>((r) => (m.worker.isDead() ? r() : m.worker.onExit(() => r()))));
      for (const m of members.values()) send(m.worker, { t: 'drain', ms: drainMs });
      const timer = setTimeout(() => {
        for (const m of members.values()) m.worker.kill();
      }, drainMs + 2000);
      await Promise.all(exits);
      clearTimeout(timer);
      claim?.release();
    },
  };
  for (const pre of o.preforked ?? []) attach(pre.worker, pre);
  return pool satisfies TableListener;
}

export type WorkerPool = ReturnType<typeof createWorkerPool>;
