// The settings a reload changes in a running data plane — in this process (--workers 1) or in each
// worker, which gets them over IPC (worker-protocol.ts 'settings') — and the one function that
// applies them, so both places behave alike.
//
// Contract: `applyDataPlaneSettings` is idempotent (applying the same settings twice changes
// nothing, and an unchanged access log is not reopened); connections stay open; the certificate
// pair is applied to new TLS connections only. Settings are plain JSON (PEM as text) so that they
// cross IPC unchanged.

import type { Config } from '../../config/config.js';
import type { LogLevel } from '../../observability/logger.js';
import { createAccessLog, type AccessLog } from '../../observability/access-log.js';
import type { ProxyDataPlane, ProxyLiveSettings } from './proxy-server.js';

export interface DataPlaneSettings {
  readonly logLevel: LogLevel;
  readonly accessLog: Config['accessLog'];
  readonly proxy: ProxyLiveSettings;
  /** The proxy's certificate and key, PEM text (undefined without TLS). */
  readonly tls: { readonly key: string; readonly cert: string; readonly passphrase?: string | undefined } | undefined;
}

export function dataPlaneSettingsOf(config: Config): DataPlaneSettings {
  return {
    logLevel: config.logLevel,
    accessLog: config.accessLog && { dest: config.accessLog.dest, format: config.accessLog.format },
    proxy: {
      customHeaders: config.customHeaders,
      timeout: config.timeout,
      proxyTimeout: config.proxyTimeout,
      keepAliveTimeout: config.keepAliveTimeout,
      requestBodyTimeout: config.requestBodyTimeout,
      upstreamConnectTimeout: config.upstreamConnectTimeout,
    },
    tls:
      config.ssl?.key && config.ssl.cert
        ? { key: config.ssl.key.toString('utf8'), cert: config.ssl.cert.toString('utf8'), ...(config.ssl.passphrase !== undefined ? { passphrase: config.ssl.passphrase } : {}) }
        : undefined,
  };
}

/** The access log of one data plane: opened from the config, reopened when a reload changes it. */
export interface AccessLogHolder {
  current(): AccessLog | undefined;
  /** Open the new one (undefined = off) and close the old one, unless nothing changed. */
  set(cfg: Config['accessLog'], proxy: ProxyDataPlane): Promise<void>;
  close(): Promise<void>;
}

export function createAccessLogHolder(initial: Config['accessLog'], onError: (e: Error) => void): AccessLogHolder {
  let cfg = initial;
  let log = cfg ? createAccessLog({ ...cfg, onError }) : undefined;
  return {
    current: () => log,
    async set(next, proxy) {
      if (next?.dest === cfg?.dest && next?.format === cfg?.format) return;
      const old = log;
      cfg = next;
      log = next ? createAccessLog({ ...next, onError }) : undefined;
      // The proxy writes to the new one from its next line; the old one flushes what it holds.
      proxy.setAccessLog(log);
      await old?.close();
    },
    close: () => log?.close() ?? Promise.resolve(),
  };
}

export interface DataPlaneTargets {
  readonly proxy: ProxyDataPlane;
  readonly accessLog: AccessLogHolder;
  readonly setLogLevel: (level: LogLevel) => void;
}

export function createSettingsApplier(t: DataPlaneTargets, initial: DataPlaneSettings) {
  let tls = initial.tls;
  return async function applyDataPlaneSettings(s: DataPlaneSettings): Promise<void> {
    t.setLogLevel(s.logLevel);
    t.proxy.applySettings(s.proxy);
    if (s.tls && (s.tls.key !== tls?.key || s.tls.cert !== tls?.cert || s.tls.passphrase !== tls?.passphrase)) {
      t.proxy.setCertificate({ key: Buffer.from(s.tls.key), cert: Buffer.from(s.tls.cert), passphrase: s.tls.passphrase });
      tls = s.tls;
    }
    await t.accessLog.set(s.accessLog, t.proxy);
  };
}
