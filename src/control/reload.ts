// Configuration reload (SIGHUP, POST /api/reload): re-load the configuration, apply what can
// change live, name what cannot.
//
// Contract:
//  - `reload()` loads a whole new Config (argv, env, --config file: the loader is the same one
//    that built the running config). A loader error changes nothing: the running configuration is
//    kept, the error is logged and returned.
//  - Every setting that differs is either LIVE (applied by the registered targets, in
//    registration order, without dropping connections) or needs a restart: those are named in one
//    log line and left as they were (the running config keeps their old values, so the next
//    reload names them again). Which is which: the schema's `reloadable` marks (config/schema.ts,
//    through the source's restartRequired), and the values themselves (a certificate file whose
//    content changed under the same path is live).
//  - TLS: a new certificate/key pair is live; it is checked (key matches certificate, PEM whole)
//    before anything is applied, so a bad pair refuses the whole reload. Other TLS options
//    (ciphers, CA, protocol) need a restart.
//  - Reloads run one at a time, in the order asked.

import type { Config } from '../config/config.js';
import { ErrorCode, SwitchyardError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { tls } from '../node-http.js';

/**
 * Settings a reload applies to the running process. The dashboard users are read from the
 * configuration file's [dashboard] users (config part A); absent in a Config built without one.
 */
export const LIVE_SETTINGS = [
  'logLevel',
  'accessLog',
  'customHeaders',
  'timeout',
  'proxyTimeout',
  'keepAliveTimeout',
  'requestBodyTimeout',
  'upstreamConnectTimeout',
  'dashboardUsers',
  'ssl',
  'apiSsl',
] as const;
export type LiveSetting = (typeof LIVE_SETTINGS)[number];

export type ReloadableConfig = Config;

/** Where a reload gets the new configuration (main.ts: config/load.ts). */
export interface ReloadSource<S = unknown> {
  /** The settings (name -> value and source) the running config was built from. */
  readonly initialSettings?: S;
  /** Builds the whole configuration again (throws SwitchyardError CONFIG_INVALID saying what is wrong and where). */
  load(): Promise<{ config: ReloadableConfig; settings?: S }>;
  /** Names of the settings that differ, split by the schema's reloadable marks (config/load.ts diffSettings). */
  diff?(before: S, after: S): { readonly reloadable: readonly string[]; readonly restartRequired: readonly string[] };
  /** `after` with the `names` settings as in `before`: what actually runs after a reload. */
  keep?(before: S, after: S, names: readonly string[]): S;
}

export interface ReloadResult {
  /** True when the new configuration was loaded and its live settings applied. */
  readonly ok: boolean;
  /** Settings applied live (flag names). */
  readonly applied: readonly string[];
  /** Settings that changed but need a restart: left as they were. */
  readonly restartRequired: readonly string[];
  readonly errors: readonly string[];
}

/** Something that applies live settings: the data plane, the dashboard, the API server, the logger. */
export interface LiveTarget {
  readonly name: string;
  /** `changed` lists the live settings that differ from the running config; throw to report a failure. */
  apply(next: ReloadableConfig, changed: ReadonlySet<LiveSetting>): void | Promise<void>;
}

export interface Reloader {
  reload(trigger: string): Promise<ReloadResult>;
  /** The running configuration (the initial one, then each applied reload's). */
  current(): ReloadableConfig;
  /** A certificate pair re-read from disk (cert-watch.ts): applied like a reload of that one setting. */
  applyCertificate(which: 'ssl' | 'apiSsl', pair: { key: Buffer; cert: Buffer }): Promise<ReloadResult>;
}

/** Config keys whose setting (config/schema.ts) is not named after them. */
const NAMES: Record<string, string> = {
  customHeaders: 'custom-header',
  dashboardUsers: 'dashboard.users',
  ssl: 'ssl-cert/ssl-key',
  apiSsl: 'api-ssl-cert/api-ssl-key',
};
/** The settings behind each live Config key (a key changed with none of them: a file's content changed). */
const SETTINGS_OF: Partial<Record<LiveSetting, readonly string[]>> = {
  accessLog: ['access-log', 'access-log-format'],
  ssl: ['ssl-cert', 'ssl-key', 'ssl-key-passphrase'],
  apiSsl: ['api-ssl-cert', 'api-ssl-key', 'api-ssl-key-passphrase'],
};

/** `logLevel` -> `log-level`: the setting (flag, config key) name an operator knows. */
export function settingName(key: string): string {
  return NAMES[key] ?? key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}

export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  }
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

const TLS_PAIR = ['key', 'cert', 'passphrase'] as const;
const withoutPair = (t: Config['ssl']): unknown => t && { ...t, key: undefined, cert: undefined, passphrase: undefined };

/** Which settings differ, split into what can be applied live and what needs a restart. */
export function classifyChanges(old: ReloadableConfig, next: ReloadableConfig): { live: Set<LiveSetting>; restart: string[] } {
  const live = new Set<LiveSetting>();
  const restart: string[] = [];
  const keys = new Set([...Object.keys(old), ...Object.keys(next)]);
  for (const key of keys) {
    const a = (old as unknown as Record<string, unknown>)[key];
    const b = (next as unknown as Record<string, unknown>)[key];
    if (sameValue(a, b)) continue;
    if (key === 'ssl' || key === 'apiSsl') {
      // The pair is live; turning TLS on or off, or its other options, is not.
      const ta = a as Config['ssl'];
      const tb = b as Config['ssl'];
      if (ta === undefined || tb === undefined || !sameValue(withoutPair(ta), withoutPair(tb))) restart.push(settingName(key));
      else if (TLS_PAIR.some((p) => !sameValue(ta[p], tb[p]))) live.add(key);
      continue;
    }
    if ((LIVE_SETTINGS as readonly string[]).includes(key)) live.add(key as LiveSetting);
    else restart.push(settingName(key));
  }
  return { live, restart };
}

/** Throws when the pair cannot serve (key does not match the certificate, truncated PEM...). */
export function checkCertificatePair(what: string, t: { key?: Buffer; cert?: Buffer; passphrase?: string }): void {
  try {
    tls().createSecureContext({ key: t.key, cert: t.cert, ...(t.passphrase !== undefined ? { passphrase: t.passphrase } : {}) });
  } catch (e) {
    throw new SwitchyardError(ErrorCode.CONFIG_INVALID, `${what}: certificate and key cannot be used together: ${(e as Error).message}`);
  }
}

export function createReloader<S>(o: {
  initial: ReloadableConfig;
  source: ReloadSource<S>;
  targets: readonly (LiveTarget | undefined)[];
  /** Checks a loaded config further before anything is applied (throw to refuse it). */
  validate?: (next: ReloadableConfig) => void;
  log: Logger;
}): Reloader {
  let current = o.initial;
  let settings = o.source.initialSettings;
  let chain: Promise<unknown> = Promise.resolve();
  const targets = o.targets.filter((t): t is LiveTarget => t !== undefined);

  const fail = (why: string, trigger: string): ReloadResult => {
    o.log.error(`reload (${trigger}): configuration not applied, the running configuration is kept: ${why}`);
    return { ok: false, applied: [], restartRequired: [], errors: [why] };
  };

  async function applyLive(next: ReloadableConfig, live: Set<LiveSetting>, trigger: string, names?: readonly string[]): Promise<ReloadResult> {
    // The running config with only the live settings taken from the new one.
    const effective = { ...current } as Record<string, unknown>;
    for (const k of live) effective[k] = (next as unknown as Record<string, unknown>)[k];
    const merged = Object.freeze(effective) as unknown as ReloadableConfig;
    const errors: string[] = [];
    for (const t of targets) {
      try {
        await t.apply(merged, live);
      } catch (e) {
        errors.push(`${t.name}: ${(e as Error).message}`);
      }
    }
    current = merged;
    // The settings' own names; a live key none of whose settings changed is a file's new content.
    const applied = new Set(names ?? []);
    for (const k of live) {
      const own = SETTINGS_OF[k] ?? [settingName(k)];
      if (!own.some((n) => applied.has(n))) applied.add(names && SETTINGS_OF[k] ? `${settingName(k)} (file content)` : settingName(k));
    }
    if (errors.length > 0) o.log.error(`reload (${trigger}): applying failed in part: ${errors.join('; ')}`);
    return { ok: errors.length === 0, applied: [...applied], restartRequired: [], errors };
  }

  async function run(trigger: string): Promise<ReloadResult> {
    let next: ReloadableConfig;
    let nextSettings: S | undefined;
    try {
      ({ config: next, settings: nextSettings } = await o.source.load());
      o.validate?.(next);
      for (const which of ['ssl', 'apiSsl'] as const) {
        const t = next[which];
        if (t?.key !== undefined || t?.cert !== undefined) checkCertificatePair(settingName(which), t);
      }
    } catch (e) {
      return fail((e as Error).message, trigger);
    }
    const classified = classifyChanges(current, next);
    const { live } = classified;
    const diff = o.source.diff && settings !== undefined && nextSettings !== undefined ? o.source.diff(settings, nextSettings) : undefined;
    const restart = diff ? [...diff.restartRequired] : classified.restart;
    if (restart.length > 0) {
      o.log.warn(`reload (${trigger}): changed settings that need a restart were left as they were: ${restart.join(', ')}`);
    }
    const result = await applyLive(next, live, trigger, diff?.reloadable);
    if (nextSettings !== undefined) settings = settings !== undefined && o.source.keep ? o.source.keep(settings, nextSettings, restart) : nextSettings;
    if (result.ok) o.log.info(`reload (${trigger}): ${live.size > 0 ? `applied ${result.applied.join(', ')}` : 'no live setting changed'}`);
    return { ...result, restartRequired: restart };
  }

  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = chain.then(fn);
    chain = p.catch(() => {});
    return p;
  };

  return {
    reload: (trigger) => serial(() => run(trigger)),
    current: () => current,
    applyCertificate: (which, pair) =>
      serial(async () => {
        const t = current[which];
        if (t === undefined) return fail(`${settingName(which)} is not configured`, 'certificate files');
        if (sameValue(t.key, pair.key) && sameValue(t.cert, pair.cert)) return { ok: true, applied: [], restartRequired: [], errors: [] };
        const next = { ...current, [which]: { ...t, key: pair.key, cert: pair.cert } } as ReloadableConfig;
        try {
          checkCertificatePair(settingName(which), next[which]!);
        } catch (e) {
          return fail((e as Error).message, 'certificate files');
        }
        const result = await applyLive(next, new Set([which]), 'certificate files');
        if (result.ok) o.log.info(`reload (certificate files): applied new ${settingName(which)} certificate`);
        return result;
      }),
  };
}
