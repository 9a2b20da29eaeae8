// The places the etcd store reaches into etcd3's private code (store/etcd-connection.ts):
// EtcdConnection#closeClient -> forgetWatchers depends on etcd3 1.1.2's WatchManager, and
// keepChannels on its ConnectionPool hosts (Host#resetAllServices, #close, #cachedServices). These
// tests fail when an etcd3 upgrade changes what that relies on, so the upgrade must revisit it. No
// etcd is needed: a client makes no connection until its first call.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { Etcd3 } from 'etcd3';
import { closeEtcdClient, createEtcdClient, hostsOf, watchManagerOf, type Etcd3HostInternals } from '../../src/store/etcd-connection.js';

const require = createRequire(import.meta.url);

test('etcd3 is the exact version whose internals the store relies on (package.json pins it)', () => {
  const pkg = require('etcd3/package.json') as { version: string };
  assert.equal(pkg.version, '1.1.2');
  const ours = require('../../../package.json') as { dependencies: Record<string, string> };
  assert.equal(ours.dependencies['etcd3'], '1.1.2', 'pinned exactly, no range');
});

test('etcd3 client has a private watchManager with a watchers array and an expectedClosers set', (t) => {
  // Closed the way the store closes its client: a plain close() would leave the watcher below
  // listed and its reconnect timer would keep this test file running forever.
  const client = new Etcd3({ hosts: 'http://127.0.0.1:1' });
  t.after(() => closeEtcdClient(client));
  const m = watchManagerOf(client);
  assert.ok(m, 'watchManagerOf finds the watch manager of the shape close() empties');
  assert.ok(Array.isArray(m.watchers));
  assert.ok(m.expectedClosers instanceof Set);
  // A watcher being created is listed there (what close() has to forget).
  const created = client.watch().key('k').create();
  created.catch(() => {});
  assert.equal(m.watchers.length, 1, 'a new watcher is listed in watchManager.watchers');
});

test('etcd3 WatchManager: a reconnect attempt with no listed watchers does nothing (why emptying the list stops the timers)', () => {
  const { WatchManager } = require('etcd3/lib/watch') as { WatchManager: new (client: unknown, backoff: unknown) => unknown };
  let streams = 0;
  const backoff = { duration: 1, next: () => backoff };
  const m = new WatchManager({ watch: () => (streams++, new Promise(() => {})) }, backoff) as {
    watchers: unknown[];
    expectedClosers: Set<unknown>;
    establishStream(): void;
    state: number;
  };
  m.expectedClosers.add({ emit() {} });
  m.establishStream();
  assert.equal(streams, 0, 'no stream opened when no watcher is listed');
  assert.equal(m.state, 0, 'still idle');
  // And the contrary, so the check above cannot pass for another reason.
  m.watchers.push({ emit() {} });
  m.establishStream();
  assert.equal(streams, 1, 'a listed watcher does open a stream');
});

test('etcd3 ConnectionPool hosts: one per endpoint, with cachedServices, resetAllServices and close (what keepChannels wraps)', (t) => {
  const client = new Etcd3({ hosts: ['http://127.0.0.1:1', 'http://127.0.0.1:2'] });
  t.after(() => closeEtcdClient(client));
  const hosts = hostsOf(client);
  assert.ok(hosts, 'hostsOf finds Etcd3#pool.hosts of the expected shape');
  assert.equal(hosts.length, 2);
  // etcd3 creates a host's gRPC client on first use and caches it; resetAllServices empties the cache.
  const { Host } = require('etcd3/lib/connection-pool') as { Host: new (host: string, creds: unknown, opts: unknown) => Etcd3HostInternals & { getServiceClient(name: string): unknown } };
  const host = new Host('127.0.0.1:1', grpc.credentials.createInsecure(), undefined);
  const kv = host.getServiceClient('KV');
  assert.equal(host.getServiceClient('KV'), kv, 'a cached client is reused');
  assert.equal(Object.keys(host.cachedServices).length, 1);
  host.resetAllServices();
  assert.equal(Object.keys(host.cachedServices).length, 0, 'resetAllServices drops the cached clients');
  assert.notEqual(host.getServiceClient('KV'), kv, 'and the next call creates a new client (a new channel)');
  host.close();
});

test('a client built by createEtcdClient keeps its channels on errors but closes them on close()', (t) => {
  const client = createEtcdClient({ endpoints: ['127.0.0.1:1'] });
  let closed = false;
  t.after(() => closed || closeEtcdClient(client));
  const [host] = hostsOf(client)!;
  const h = host as Etcd3HostInternals & { getServiceClient(name: string): { getChannel(): { getConnectivityState(c: boolean): number } } };
  const kv = h.getServiceClient('KV');
  host!.resetAllServices(); // what etcd3 calls after a recoverable error
  assert.equal(h.getServiceClient('KV'), kv, 'the same client (and channel) is kept');
  closeEtcdClient(client);
  closed = true;
  assert.equal(Object.keys(host!.cachedServices).length, 0, 'close() closed and dropped the clients');
  assert.equal(kv.getChannel().getConnectivityState(false), grpc.connectivityState.SHUTDOWN, "the kept client's channel is shut down");
});
