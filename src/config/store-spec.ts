// The --store flag: which store kinds exist and what their options are, checked without opening
// anything. A leaf module (errors only): config.ts validates with it, store/create-store.ts builds
// from it, and neither imports the other, so a process that parses flags (every data-plane worker)
// loads no store module.
//   memory          routes in this process (CHP's behaviour; the default)
//   file:PATH       a TOML (or .json) file: survives restarts, editable by hand
//   etcd://h:p[,h:p] etcd v3: many replicas share one table (HA)

import { ErrorCode, SwitchyardError } from '../errors.js';

export interface StoreOptions {
  readonly prefix: string;
  readonly replicaId: string | undefined;
  readonly etcdAuth: { readonly username: string; readonly password: string } | undefined;
  readonly etcdTls: { readonly ca?: Buffer; readonly cert?: Buffer; readonly key?: Buffer } | undefined;
}

/** Validate a --store spec without opening anything; throws SWY_CONFIG_* with a clear message. */
export function checkStoreSpec(spec: string): void {
  if (spec === 'memory') return;
  if (spec.startsWith('file:')) {
    if (spec.length === 'file:'.length) throw new SwitchyardError(ErrorCode.CONFIG_INVALID, '--store file:PATH needs a path');
    return;
  }
  if (spec.startsWith('etcd://')) {
    etcdEndpoints(spec);
    return;
  }
  throw new SwitchyardError(
    ErrorCode.CONFIG_UNSUPPORTED,
    `store '${spec}' is not supported; use memory, file:PATH or etcd://host:port[,host:port] (CHP JavaScript storage classes are not supported)`,
  );
}

/** "etcd://a:2379,b:2379" -> ["a:2379", "b:2379"]; every endpoint needs host and port. */
export function etcdEndpoints(spec: string): string[] {
  const list = spec.slice('etcd://'.length).split(',').map((e) => e.trim()).filter(Boolean);
  if (list.length === 0) throw new SwitchyardError(ErrorCode.CONFIG_INVALID, '--store etcd:// needs at least one host:port');
  for (const e of list) {
    if (!/^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(e)) {
      throw new SwitchyardError(ErrorCode.CONFIG_INVALID, `--store etcd endpoint '${e}' must be host:port`);
    }
  }
  return list;
}
