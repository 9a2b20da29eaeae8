#!/usr/bin/env node
// Process entry: argv/env/config file -> Config -> App. Signals and exit codes live here and only here.
//   exit 0: clean stop after SIGTERM/SIGINT (in-flight requests drained); check-config: valid
//   exit 1: bad configuration or a port that cannot be opened

import cluster from 'node:cluster';
import { unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { helpText } from './config/flags.js';
import { describeConfig, diffSettings, formatProblem, loadConfig } from './config/load.js';
import { ErrorCode, SwitchyardError, isSwitchyardError } from './errors.js';
import { createLogger } from './observability/logger.js';
import { VERSION } from './version.js';
import type { App, AppDeps } from './app.js';
import type { Config } from './config/config.js';
import { threadsUnsupported } from './config/worker-mode.js';
import type { ToPrimary, ToWorker } from './dataplane/proxy/worker-protocol.js';

async function main(argv: string[]): Promise<void> {
  if (cluster.isWorker) {
    // A data-plane worker runs the primary's running configuration, sent over IPC (it does not
    // read the file again: the file may have changed, or be broken, since the primary loaded it).
    // Each role loads only its own modules: a worker never loads the API, stores or etcd client
    // (test/unit/worker-imports.test.ts walks its import graph).
    // (Its modules load while the answer comes: a preforked worker asks before the app exists.)
    const [config, { runWorker }, { processLink }] = await Promise.all([configFromPrimary(), import('./worker.js'), import('./dataplane/proxy/worker-channel.js')]);
    const log = createLogger({ level: config.logLevel, format: config.logFormat });
    runWorker(config, log.child({ worker: cluster.worker?.id }), (l) => log.setLevel(l), processLink());
    return;
  }
  const loaded = await loadConfig({ argv, env: process.env });
  if (loaded.help) {
    process.stdout.write(helpText(VERSION));
    return;
  }
  if (loaded.version) {
    process.stdout.write(VERSION + '\n');
    return;
  }
  for (const w of loaded.warnings) process.stderr.write(`switchyard: warning: ${w}\n`);
  if (!loaded.ok) {
    for (const e of loaded.errors) process.stderr.write(`switchyard: error: ${formatProblem(e)}\n`);
    if (loaded.command === 'check-config') process.stderr.write('switchyard: configuration is invalid\n');
    process.exitCode = 1;
    return;
  }
  const config = loaded.config;
  if (loaded.command === 'check-config') {
    process.stdout.write(describeConfig(loaded));
    process.stderr.write('switchyard: configuration is valid\n');
    return;
  }
  if (loaded.command === 'envoy-bootstrap') {
    const { envoyBootstrapYaml } = await import('./dataplane/envoy/bootstrap.js');
    process.stdout.write(envoyBootstrapYaml(config.envoyBootstrap, hostname()));
    return;
  }

  const log = createLogger({ level: config.logLevel, format: config.logFormat });
  const pair = (key: string, cert: string): { key: string; cert: string } | undefined => {
    const k = loaded.settings.get(key)?.value;
    const c = loaded.settings.get(cert)?.value;
    return typeof k === 'string' && typeof c === 'string' ? { key: k, cert: c } : undefined;
  };
  const sslFiles = pair('ssl-key', 'ssl-cert');
  const apiSslFiles = pair('api-ssl-key', 'api-ssl-cert');
  const appDeps: AppDeps<typeof loaded.settings> = {
    log,
    setLogLevel: (l) => log.setLevel(l),
    // A reload loads the configuration as start-up did: flags, env, the config file and the files it names.
    reload: {
      initialSettings: loaded.settings,
      load: async () => {
        const again = await loadConfig({ argv, env: process.env });
        if (!again.ok) throw new SwitchyardError(ErrorCode.CONFIG_INVALID, again.errors.map(formatProblem).join('; '));
        return { config: again.config, settings: again.settings };
      },
      diff: diffSettings,
      keep: (before, after, names) => {
        const running = new Map(after);
        for (const n of names) {
          const b = before.get(n);
          if (b === undefined) running.delete(n);
          else running.set(n, b);
        }
        return running;
      },
    },
    // Certificate files are also re-read when they change on disk (control/cert-watch.ts).
    certFiles: { ...(sslFiles ? { ssl: sslFiles } : {}), ...(apiSslFiles ? { apiSsl: apiSslFiles } : {}) },
  };
  // Signals are handled from here on, also while starting (workers can take a moment to listen).
  // One that comes before the app exists (the workers are forked first) stops it once it does.
  let app: App | undefined = undefined;
  let stopping = false;
  let pending: string | undefined;
  const stop = (signal: string): void => {
    if (app === undefined) {
      pending ??= signal;
      return;
    }
    if (stopping) {
      log.warn(`${signal} again: exiting now`);
      process.exit(1);
    }
    stopping = true;
    log.warn(`${signal}: draining connections (at most ${config.drainTimeout} ms), then exiting`);
    app.close().then(
      () => process.exit(0),
      (e: unknown) => {
        log.error('error while stopping', { err: e });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // SIGHUP: reload (control/reload.ts logs what was applied, what needs a restart, or why not).
  process.on('SIGHUP', () => {
    if (!stopping && app !== undefined) void app.reload('SIGHUP');
  });
  log.info(dataPlaneLine(config));
  // With --workers N the workers boot and load their modules while this process loads its own.
  const preforked =
    config.workers > 1 ? await (await import('./dataplane/proxy/prefork.js')).preforkWorkers(config.workers, config.workerMode, config) : undefined;
  const { createApp } = await import('./app.js');
  app = await createApp(config, { ...appDeps, ...(preforked ? { preforked } : {}) });
  if (pending !== undefined) {
    stop(pending);
    return;
  }
  try {
    await app.start();
  } catch (e) {
    log.error(`failed to start: ${(e as Error).message}`, { code: isSwitchyardError(e) ? e.code : (e as NodeJS.ErrnoException).code });
    await app.close().catch(() => {});
    process.exit(1);
  }

  const pidFile = config.pidFile;
  if (pidFile) {
    log.info(`Writing pid ${process.pid} to ${pidFile}`);
    writeFileSync(pidFile, String(process.pid));
    process.on('exit', () => {
      try {
        unlinkSync(pidFile);
      } catch {
        // already gone
      }
    });
  }

  // As CHP: once running, an unexpected exception is logged and the proxy keeps serving.
  process.on('uncaughtException', (e) => log.error(`Uncaught Exception: ${e.message}`, { err: e }));
}

/** The start-up line that says what runs the data plane (and why not threads, when auto chose processes). */
function dataPlaneLine(config: Config): string {
  if (config.workers <= 1) return 'Data plane: in the main process (1 worker)';
  if (config.workerMode === 'threads') return `Data plane: ${config.workers} worker threads, each listening on the public port (SO_REUSEPORT)`;
  const why = threadsUnsupported(config.proxyListen);
  return `Data plane: ${config.workers} worker processes (node:cluster)` + (why !== undefined ? `; not threads: ${why}` : '');
}

/** Asks the primary for its running configuration (worker-protocol.ts 'config?' / 'config'). */
function configFromPrimary(): Promise<Config> {
  return new Promise((resolve) => {
    const on = (m: ToWorker): void => {
      if (m.t !== 'config') return;
      process.off('message', on);
      resolve(m.config);
    };
    process.on('message', on);
    process.send!({ t: 'config?' } satisfies ToPrimary);
  });
}

void main(process.argv.slice(2));
