// The etcd replica registry seen through a watch: <prefix>replicas/<id> -> {"revision": n}, kept
// in a ReplicaBoard so `?wait=all` and the dashboard learn of each report as etcd delivers it
// instead of polling. Started on the first subscription (most replicas never need it) and kept
// until close.
//
// Contract: one range read, then a watch from the read's revision + 1, so no report is missed
// between the two. A cancelled watch (compacted history) starts over with a fresh read. While
// etcd is unreachable listeners simply hear nothing new (a waiter's own timeout still runs).

import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import type { Logger } from '../observability/logger.js';
import { ReplicaBoard, type ReplicaListener } from './replica-registry.js';
import type { ReplicaInfo, Unsubscribe } from './route-store.js';

const RETRY_MS = 1000;

export interface EtcdReplicaWatch {
  subscribe(listener: ReplicaListener): Unsubscribe;
  close(): Promise<void>;
}

/** A registry value: {"revision": n}; anything else under the prefix is not a replica. */
export function parseReplica(kv: IKeyValue, prefix: string): ReplicaInfo | undefined {
  try {
    const v = JSON.parse(kv.value.toString()) as { revision: number };
    return { id: kv.key.toString().slice(prefix.length), revision: Number(v.revision) };
  } catch {
    return undefined; // a foreign or half-written key
  }
}

export function createEtcdReplicaWatch(client: Etcd3, prefix: string, log: Logger): EtcdReplicaWatch {
  const board = new ReplicaBoard(false);
  let watcher: Watcher | undefined;
  let starting = false;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;

  const start = async (): Promise<void> => {
    if (starting || closed) return;
    starting = true;
    try {
      const old = watcher;
      watcher = undefined;
      await old?.cancel().catch(() => {});
      const res = await client.getAll().prefix(prefix).exec();
      const list: ReplicaInfo[] = [];
      for (const kv of res.kvs) {
        const r = parseReplica(kv, prefix);
        if (r) list.push(r);
      }
      const w = await client.watch().prefix(prefix).startRevision(String(Number(res.header.revision) + 1)).create();
      if (closed) {
        await w.cancel().catch(() => {});
        return;
      }
      watcher = w;
      board.reset(list);
      w.on('put', (kv) => {
        const r = parseReplica(kv, prefix);
        if (r && w === watcher) board.set(r.id, r.revision);
      });
      w.on('delete', (kv) => {
        if (w === watcher) board.delete(kv.key.toString().slice(prefix.length));
      });
      w.on('error', (e: Error) => {
        if (closed || w !== watcher) return;
        log.debug('etcd replica registry watch cancelled; reading it again', { err: e.message });
        void start();
      });
    } catch (e) {
      log.debug('etcd replica registry watch could not start; retrying', { err: e });
      if (!closed) {
        retry = setTimeout(() => void start(), RETRY_MS);
        retry.unref();
      }
    } finally {
      starting = false;
    }
  };

  return {
    subscribe(listener) {
      const un = board.watch(listener);
      if (watcher === undefined) void start();
      return un;
    },
    async close() {
      closed = true;
      clearTimeout(retry);
      board.clear();
      const w = watcher;
      watcher = undefined;
      await w?.cancel().catch(() => {});
    },
  };
}
