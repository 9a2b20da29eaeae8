#!/usr/bin/env node
// Process entry: argv/env/config file -> Config -> App. Signals and exit codes live here and only here.
//   exit 0: clean stop after SIGTERM/SIGINT (in-flight requests drained); check-config: valid
//   exit 1: bad configuration or a port that cannot be opened

import cluster from 'node:cluster';
import { unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { helpText } from './config/flags.js';
import { describeConfig, formatProblem, loadConfig } from './config/load.js';
import { isSwitchyardError } from './errors.js';
import { createLogger } from './observability/logger.js';
import { VERSION } from './version.js';

async function main(argv: string[]): Promise<void> {
  const loaded = await loadConfig({ argv, env: process.env });
  if (loaded.help) {
    process.stdout.write(helpText(VERSION));
    return;
  }
  if (loaded.version) {
    process.stdout.write(VERSION + '\n');
    return;
  }
  // Data-plane workers load the same configuration again: the main process already warned.
  if (cluster.isPrimary) for (const w of loaded.warnings) process.stderr.write(`switchyard: warning: ${w}\n`);
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
  if (cluster.isWorker) {
    // Each role loads only its own modules: a worker never loads the API, stores or etcd client
    // (test/unit/worker-imports.test.ts walks its import graph).
    const { runWorker } = await import('./worker.js');
    runWorker(config, log.child({ worker: cluster.worker?.id }));
    return;
  }
  const { createApp } = await import('./app.js');
  const app = await createApp(config, { log });
  // Signals are handled from here on, also while starting (workers can take a moment to listen).
  let stopping = false;
  const stop = (signal: string): void => {
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

void main(process.argv.slice(2));
