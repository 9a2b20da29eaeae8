// The CertificateStore contract for the memory and file stores, and what only the file store
// has: file modes, atomic writes, stale lock files.

import assert from 'node:assert/strict';
import { readdirSync, statSync, utimesSync, writeFileSync, openSync, closeSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { createLogger } from '../../src/observability/logger.js';
import { createFileCertificates, type FileCertificates } from '../../src/store/file-certificates.js';
import { createFileStore, type FileStore } from '../../src/store/file-store.js';
import { createMemoryStore } from '../../src/store/memory-store.js';
import type { RouteStore } from '../../src/store/route-store.js';
import { certOf, runCertificateStoreContract } from '../contract/certificate-store-contract.js';
import { waitFor } from '../helpers/servers.js';
import { tempDir } from '../helpers/temp.js';

const silent = createLogger({ level: 'error', write: () => {} });

runCertificateStoreContract('memory store', {
  async open(t: TestContext, n: number) {
    const s = createMemoryStore();
    await s.start();
    t.after(() => s.close());
    return Array.from({ length: n }, () => s);
  },
});

/** `n` file stores on one routes file (replicas sharing a volume), closed once in t.after. */
async function fileStores(t: TestContext, n: number, path = join(tempDir(t, 'swy-certs-'), 'routes.toml')): Promise<FileStore[]> {
  const stores: FileStore[] = [];
  for (let i = 0; i < n; i++) {
    const s = createFileStore({ path, log: silent });
    const closeOnce = s.close.bind(s);
    let closing: Promise<void> | undefined;
    s.close = () => (closing ??= closeOnce());
    t.after(() => s.close());
    await s.start();
    stores.push(s);
  }
  return stores;
}

/** The routes file each contract store was opened on. */
const certDirs = new WeakMap<RouteStore, string>();
const routesPath = (s: RouteStore): string => certDirs.get(s)!;

runCertificateStoreContract('file store', {
  async open(t, n) {
    const path = join(tempDir(t, 'swy-certs-'), 'routes.toml');
    const stores = await fileStores(t, n, path);
    for (const s of stores) certDirs.set(s, path);
    return stores;
  },
  holderArgs(stores) {
    return [`file:${routesPath(stores[0]!)}`, '/unused/'];
  },
  async writeRaw(stores, kind, name, text) {
    writeFileSync(join(routesPath(stores[0]!) + '.certs', kind, `${name}.json`), text);
  },
  async breakLock(stores, name) {
    unlinkSync(join(routesPath(stores[0]!) + '.certs', 'locks', `${name}.lock`));
  },
});

test('file store certificates: nothing on disk until used; then a 0700 directory of 0600 files, no temp files', async (t) => {
  const dir = tempDir(t, 'swy-certs-');
  const path = join(dir, 'routes.toml');
  const [s] = await fileStores(t, 1, path);
  await s!.put('/r', { target: 'http://127.0.0.1:1' });
  assert.deepEqual(readdirSync(dir).sort(), ['routes.toml'], 'routes alone create no certificate directory');
  const c = s!.certificates;
  await c.putAccount('https://ca/dir', JSON.stringify({ keyPem: 'k' }));
  await c.putCertificate(certOf('modes.example.test'));
  await c.putMeta({ name: 'modes.example.test', attempts: 1 });
  await c.putChallenge({ type: 'http-01', name: 'modes.example.test', token: 't1', keyAuthorization: 't1.x' }, { ttlMs: 60_000 });
  const l = await c.tryLock('modes.example.test', { ttlMs: 5000 });
  assert.ok(l);
  const root = path + '.certs';
  assert.equal(statSync(root).mode & 0o777, 0o700);
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        assert.equal(statSync(p).mode & 0o777, 0o700, p);
        walk(p);
      } else files.push(p);
    }
  };
  walk(root);
  assert.equal(files.length, 5, files.join('\n'));
  for (const f of files) assert.equal(statSync(f).mode & 0o777, 0o600, f);
  assert.deepEqual(files.filter((f) => f.endsWith('.tmp')), [], 'no temp files left');
  await l.release();
  assert.deepEqual(readdirSync(join(root, 'locks')), [], 'release removes the lock file');
});

test('file store certificates: a directory that exists with a wider mode is tightened to 0700', async (t) => {
  const dir = tempDir(t, 'swy-certs-');
  const path = join(dir, 'routes.toml');
  const { mkdirSync, chmodSync } = await import('node:fs');
  mkdirSync(path + '.certs');
  chmodSync(path + '.certs', 0o755);
  const [s] = await fileStores(t, 1, path);
  await s!.certificates.putCertificate(certOf('tight.example.test'));
  assert.equal(statSync(path + '.certs').mode & 0o777, 0o700);
});

test('file store certificates: N replicas racing for one stale lock file: exactly one takes it over', async (t) => {
  const dir = tempDir(t, 'swy-certs-');
  const path = join(dir, 'routes.toml');
  const stores = await fileStores(t, 6, path);
  // A lock left by a holder that died 10 s ago (its heartbeat stopped).
  await stores[0]!.certificates.putMeta({ name: 'stale.example.test' }); // creates the directory
  const { mkdirSync } = await import('node:fs');
  mkdirSync(join(path + '.certs', 'locks'), { mode: 0o700 });
  const lockFile = join(path + '.certs', 'locks', 'stale.example.test.lock');
  writeFileSync(lockFile, JSON.stringify({ owner: 'dead', pid: 1, host: 'x', ttlMs: 1000, heartbeat: Date.now() - 10_000 }), { mode: 0o600 });
  const old = new Date(Date.now() - 10_000);
  utimesSync(lockFile, old, old);
  for (let round = 0; round < 20; round++) {
    const got = await Promise.all(stores.map((s) => s.certificates.tryLock('stale.example.test', { ttlMs: 1000 })));
    const winners = got.filter((l) => l !== undefined);
    assert.equal(winners.length, 1, `round ${round}: one winner`);
    await winners[0]!.release();
    // Make it stale again for the next round: a fresh dead holder.
    const fd = openSync(lockFile, 'wx', 0o600);
    closeSync(fd);
    utimesSync(lockFile, old, old);
  }
});

test('file store certificates: a fresh lock file is not taken over, whatever its content', async (t) => {
  const dir = tempDir(t, 'swy-certs-');
  const path = join(dir, 'routes.toml');
  const [a] = await fileStores(t, 1, path);
  await a!.certificates.putMeta({ name: 'fresh.example.test' });
  const { mkdirSync } = await import('node:fs');
  mkdirSync(join(path + '.certs', 'locks'), { mode: 0o700 });
  // Torn or empty content (a holder that crashed between create and write) is judged by its file time.
  writeFileSync(join(path + '.certs', 'locks', 'fresh.example.test.lock'), '', { mode: 0o600 });
  assert.equal(await a!.certificates.tryLock('fresh.example.test', { ttlMs: 60_000 }), undefined);
  const l = await a!.certificates.lock('fresh.example.test', { ttlMs: 300, waitMs: 10_000 });
  assert.equal(l.lost.aborted, false, 'taken once older than the TTL');
  await l.release();
});

test('file store certificates: a removal guard left by a process that died mid-takeover goes stale too', async (t) => {
  const dir = tempDir(t, 'swy-certs-');
  const path = join(dir, 'routes.toml');
  const [a] = await fileStores(t, 1, path);
  await a!.certificates.putMeta({ name: 'guard.example.test' });
  const { mkdirSync } = await import('node:fs');
  const locks = join(path + '.certs', 'locks');
  mkdirSync(locks, { mode: 0o700 });
  const old = new Date(Date.now() - 60_000);
  for (const f of ['guard.example.test.lock', 'guard.example.test.lock.guard']) {
    writeFileSync(join(locks, f), '', { mode: 0o600 });
    utimesSync(join(locks, f), old, old);
  }
  const l = await a!.certificates.lock('guard.example.test', { ttlMs: 1000, waitMs: 10_000 });
  assert.equal(l.lost.aborted, false);
  await l.release();
  assert.deepEqual(readdirSync(locks), [], 'lock, guard and aside files all gone');
});

test('file store certificates: with rescans alone (no inotify, as on a network volume) another instance\'s puts, rewrites and deletes are seen', async (t) => {
  const dir = join(tempDir(t, 'swy-certs-'), 'routes.toml.certs');
  const mk = (): FileCertificates => {
    const c = createFileCertificates({ dir, log: silent, rescanMs: 50, fsWatch: false });
    t.after(() => c.close());
    return c;
  };
  const a = mk();
  const b = mk();
  await a.putCertificate(certOf('r0.example.test'));
  const seen: string[] = [];
  b.watchCertificates((n) => seen.push(n));
  await a.putCertificate(certOf('r1.example.test'));
  await waitFor(() => seen.includes('r1.example.test'), 10_000, 'a put seen by the rescan');
  assert.equal(seen.includes('r0.example.test'), false, 'what was there at subscription is not reported');
  seen.length = 0;
  await a.putCertificate(certOf('r0.example.test', { storedAt: 2 }));
  await waitFor(() => seen.includes('r0.example.test'), 10_000, 'a rewrite seen by the rescan');
  seen.length = 0;
  await a.deleteCertificate('r1.example.test');
  await waitFor(() => seen.includes('r1.example.test'), 10_000, 'a delete seen by the rescan');
});
