// The CertificateStore contract (store/certificate-store.ts): one suite every store's
// `certificates` runs, with several store instances on one backend standing for replicas.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test, type TestContext } from 'node:test';
import { ErrorCode, SwitchyardError } from '../../src/errors.js';
import type { CertLock, StoredCertificate } from '../../src/store/certificate-store.js';
import type { RouteStore } from '../../src/store/route-store.js';
import { selfSigned } from '../helpers/self-signed.js';
import { waitFor } from '../helpers/servers.js';

const HOLDER = fileURLToPath(new URL('../fixtures/cert-lock-holder.js', import.meta.url));

export interface CertBackend {
  /**
   * `n` started stores on one fresh backend (replicas sharing it), closed in t.after. A backend
   * confined to one process (memory) returns the same store n times.
   */
  open(t: TestContext, n: number): Promise<RouteStore[]>;
  /** Shared backends: argv (store spec, etcd prefix) for a holder process on the stores' backend. */
  holderArgs?(stores: RouteStore[]): [spec: string, prefix: string];
  /** Shared backends: store `text` as `name`'s certificate or metadata by the backend's own means (a hand edit, another tool). */
  writeRaw?(stores: RouteStore[], kind: 'certs' | 'meta', name: string, text: string): Promise<void>;
  /** Shared backends: remove `name`'s lock behind its holder (what an expiry or a takeover does). */
  breakLock?(stores: RouteStore[], name: string): Promise<void>;
}

export function certOf(name: string, extra: Partial<StoredCertificate> = {}): StoredCertificate {
  const p = selfSigned(name);
  return { name, certPem: p.certPem, keyPem: p.keyPem, notBefore: p.notBefore, notAfter: p.notAfter, ...extra };
}

function isCode(code: string, text?: RegExp): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof SwitchyardError, `a SwitchyardError, got ${String(e)}`);
    assert.equal(e.code, code);
    if (text) assert.match(e.message, text);
    return true;
  };
}

export function runCertificateStoreContract(label: string, backend: CertBackend): void {
  test(`${label} certificates: accounts per directory, seen by every replica`, async (t) => {
    const [a, b] = await backend.open(t, 2);
    const dir = 'https://acme.example.test/directory';
    assert.equal(await a!.certificates.getAccount(dir), undefined);
    const account = JSON.stringify({ keyPem: 'k', url: 'https://acme.example.test/acct/1' });
    await a!.certificates.putAccount(dir, account);
    assert.equal(await b!.certificates.getAccount(dir), account);
    assert.equal(await b!.certificates.getAccount(dir + '2'), undefined, 'per directory URL');
    await assert.rejects(a!.certificates.putAccount(dir, '{not json'), isCode(ErrorCode.CERT_INVALID));
    assert.equal(await b!.certificates.getAccount(dir), account, 'a refused put changes nothing');
  });

  test(`${label} certificates: put/get/list/delete; bad data refused on put`, async (t) => {
    const [a, b] = await backend.open(t, 2);
    const one = certOf('one.example.test', { issuerDirectory: 'https://ca/dir', storedAt: 1 });
    const wild = certOf('*.example.test');
    await a!.certificates.putCertificate(one);
    await a!.certificates.putCertificate(wild);
    assert.deepEqual(await b!.certificates.getCertificate('one.example.test'), one);
    assert.equal(await b!.certificates.getCertificate('none.example.test'), undefined);
    const list = await b!.certificates.listCertificates();
    assert.deepEqual(list.map((e) => e.name), ['*.example.test', 'one.example.test']);
    assert.deepEqual(list[1]!.value, one);
    const two = certOf('two.example.test');
    await assert.rejects(a!.certificates.putCertificate({ ...two, certPem: 'garbage' }), isCode(ErrorCode.CERT_INVALID, /two\.example\.test.*certPem/));
    await assert.rejects(a!.certificates.putCertificate({ ...two, keyPem: one.keyPem }), isCode(ErrorCode.CERT_INVALID, /not the key/));
    await assert.rejects(a!.certificates.putCertificate({ ...two, notAfter: two.notBefore }), isCode(ErrorCode.CERT_INVALID));
    await assert.rejects(a!.certificates.putCertificate({ ...two, name: '../etc/passwd' }), isCode(ErrorCode.CERT_INVALID));
    await assert.rejects(a!.certificates.getCertificate('a/b'), isCode(ErrorCode.CERT_INVALID));
    assert.equal(await b!.certificates.getCertificate('two.example.test'), undefined);
    await a!.certificates.putMeta({ name: 'one.example.test', attempts: 0 });
    assert.equal(await b!.certificates.deleteCertificate('one.example.test'), true);
    assert.equal(await a!.certificates.deleteCertificate('one.example.test'), false);
    assert.equal(await a!.certificates.getCertificate('one.example.test'), undefined);
    assert.equal(await a!.certificates.getMeta('one.example.test'), undefined, 'delete takes the metadata too');
  });

  test(`${label} certificates: a put or delete on one replica reaches another's watch`, async (t) => {
    const [a, b] = await backend.open(t, 2);
    const seenB: string[] = [];
    const seenA: string[] = [];
    const unB = b!.certificates.watchCertificates((n) => seenB.push(n));
    const unA = a!.certificates.watchCertificates((n) => seenA.push(n));
    await a!.certificates.putCertificate(certOf('w1.example.test'));
    await waitFor(() => seenB.includes('w1.example.test'), 10_000, 'the other replica sees the put');
    await waitFor(() => seenA.includes('w1.example.test'), 10_000, 'the writing replica sees its own put');
    assert.equal((await b!.certificates.getCertificate('w1.example.test'))?.name, 'w1.example.test', 'and can read it');
    seenB.length = 0;
    await a!.certificates.deleteCertificate('w1.example.test');
    await waitFor(() => seenB.includes('w1.example.test'), 10_000, 'the other replica sees the delete');
    unB();
    unA();
    // After unsubscribing nothing more arrives; a later watcher proves the put went through.
    const before = seenB.length;
    const later: string[] = [];
    const unL = b!.certificates.watchCertificates((n) => later.push(n));
    await a!.certificates.putCertificate(certOf('w2.example.test'));
    await waitFor(() => later.includes('w2.example.test'), 10_000, 'a later watcher sees the put');
    unL();
    assert.equal(seenB.length, before, 'an unsubscribed watcher hears nothing');
  });

  test(`${label} certificates: metadata separately, no key material`, async (t) => {
    const [a, b] = await backend.open(t, 2);
    const meta = {
      name: 'm.example.test', notBefore: 1, notAfter: 2, nextRenewalAt: 3, lastError: 'rate limited', lastErrorAt: 4,
      attempts: 2, lastOrderAt: 5, issuerDirectory: 'https://ca/dir', ari: { windowStart: 6, windowEnd: 7, selectedAt: 6 },
    };
    await a!.certificates.putMeta({ ...meta, keyPem: 'SECRET' } as typeof meta);
    const got = await b!.certificates.getMeta('m.example.test');
    assert.deepEqual(got, meta, 'unknown fields (a stray key) are not stored');
    await a!.certificates.putMeta({ name: 'a.example.test' });
    assert.deepEqual((await b!.certificates.listMeta()).map((e) => e.name), ['a.example.test', 'm.example.test']);
    assert.equal(await b!.certificates.getCertificate('m.example.test'), undefined, 'metadata alone is no certificate');
    await assert.rejects(a!.certificates.putMeta({ name: 'x.example.test', attempts: -1 }), isCode(ErrorCode.CERT_INVALID, /attempts/));
  });

  test(`${label} certificates: challenges answered by any replica until their TTL`, async (t) => {
    const [a, b] = await backend.open(t, 2);
    const http = { type: 'http-01', name: 'http.example.test', token: 'tok_en-1', keyAuthorization: 'tok_en-1.thumb-print' } as const;
    await a!.certificates.putChallenge(http, { ttlMs: 60_000 });
    const got = await b!.certificates.getChallenge('http-01', 'tok_en-1');
    assert.deepEqual(got, http);
    assert.equal(got?.name, 'http.example.test', 'the name the token is for is kept (the responder checks the Host against it)');
    assert.equal(await b!.certificates.getChallenge('http-01', 'other'), undefined);
    const alpnPair = selfSigned('alpn.example.test');
    const alpn = { type: 'tls-alpn-01', name: 'alpn.example.test', certPem: alpnPair.certPem, keyPem: alpnPair.keyPem } as const;
    await a!.certificates.putChallenge(alpn, { ttlMs: 60_000 });
    assert.deepEqual(await b!.certificates.getChallenge('tls-alpn-01', 'alpn.example.test'), alpn);
    await b!.certificates.deleteChallenge('http-01', 'tok_en-1');
    assert.equal(await a!.certificates.getChallenge('http-01', 'tok_en-1'), undefined, 'deleted everywhere');
    await assert.rejects(a!.certificates.putChallenge({ ...http, keyAuthorization: 'other.x' }, { ttlMs: 1000 }), isCode(ErrorCode.CERT_INVALID));
    await assert.rejects(a!.certificates.putChallenge({ ...http, token: 'a/b' }, { ttlMs: 1000 }), isCode(ErrorCode.CERT_INVALID));
    await assert.rejects(a!.certificates.putChallenge({ ...http, name: 'a/b' }, { ttlMs: 1000 }), isCode(ErrorCode.CERT_INVALID));
    await assert.rejects(a!.certificates.putChallenge({ type: 'http-01', token: 'tok_en-1', keyAuthorization: 'tok_en-1.x' } as never, { ttlMs: 1000 }), isCode(ErrorCode.CERT_INVALID), 'an http-01 challenge without its name is refused');
    const short = { type: 'http-01', name: 'short.example.test', token: 'short', keyAuthorization: 'short.tp' } as const;
    const putAt = Date.now();
    await a!.certificates.putChallenge(short, { ttlMs: 2000 }); // long enough for a put and a get on a slow disk or etcd
    assert.deepEqual(await b!.certificates.getChallenge('http-01', 'short'), short);
    await waitFor(async () => (await b!.certificates.getChallenge('http-01', 'short')) === undefined, 10_000, 'the challenge expires');
    assert.ok(Date.now() - putAt >= 2000, 'not before its TTL');
    assert.deepEqual(await b!.certificates.getChallenge('tls-alpn-01', 'alpn.example.test'), alpn, 'others keep theirs');
  });

  test(`${label} certificates: one of N concurrent lockers wins; release lets the next in`, async (t) => {
    const stores = await backend.open(t, 4);
    const results = await Promise.all(stores.map((s) => s.certificates.tryLock('lock.example.test', { ttlMs: 5000 })));
    const winners = results.filter((l): l is CertLock => l !== undefined);
    assert.equal(winners.length, 1, 'exactly one tryLock wins');
    const winner = winners[0]!;
    assert.equal(winner.lost.aborted, false);
    const other = stores[results.indexOf(winner) === 0 ? 1 : 0]!;
    assert.equal(await other.certificates.tryLock('lock.example.test', { ttlMs: 5000 }), undefined, 'still held');
    const otherName = await other.certificates.tryLock('other.example.test', { ttlMs: 5000 });
    assert.ok(otherName, 'locks are per name');
    await otherName.release();
    await assert.rejects(other.certificates.lock('lock.example.test', { ttlMs: 5000, waitMs: 150 }), isCode(ErrorCode.CERT_LOCK_TIMEOUT));
    const waiting = other.certificates.lock('lock.example.test', { ttlMs: 5000, waitMs: 20_000 });
    let got = false;
    void waiting.then(() => (got = true), () => {});
    // The waiter is not let in while the lock is held (checked after it has tried at least once).
    assert.equal(await other.certificates.tryLock('lock.example.test', { ttlMs: 5000 }), undefined);
    assert.equal(got, false);
    await winner.release();
    assert.equal(winner.lost.aborted, true, 'release aborts the holder\'s signal');
    await winner.release(); // idempotent
    const next = await waiting;
    assert.equal(next.lost.aborted, false);
    await next.release();
  });

  test(`${label} certificates: lock() serialises N replicas, each gets its turn`, async (t) => {
    const stores = await backend.open(t, 3);
    let inside = 0;
    let maxInside = 0;
    const order: number[] = [];
    await Promise.all(
      stores.map(async (s, i) => {
        const l = await s.certificates.lock('serial.example.test', { ttlMs: 5000, waitMs: 30_000 });
        inside++;
        maxInside = Math.max(maxInside, inside);
        order.push(i);
        // Hold across a round trip to the backend, so overlapping holders would show.
        await s.certificates.getCertificate('serial.example.test');
        await s.certificates.putMeta({ name: 'serial.example.test', attempts: order.length });
        inside--;
        await l.release();
      }),
    );
    assert.equal(maxInside, 1, 'never two holders');
    assert.deepEqual([...order].sort(), [0, 1, 2]);
  });

  test(`${label} certificates: close() releases held locks and fires lost`, async (t) => {
    const [a, b] = await backend.open(t, 2);
    const l = await a!.certificates.tryLock('close.example.test', { ttlMs: 5000 });
    assert.ok(l);
    const lost = new Promise<void>((r) => l.lost.addEventListener('abort', () => r()));
    await a!.close();
    await lost;
    if (a !== b) {
      const again = await b!.certificates.lock('close.example.test', { ttlMs: 5000, waitMs: 3000 });
      await again.release();
    }
  });

  if (backend.holderArgs) {
    const holderArgs = backend.holderArgs.bind(backend);
    test(`${label} certificates: a holder that dies loses the lock to a waiter after the TTL`, async (t) => {
      const [a] = await backend.open(t, 1);
      const [spec, prefix] = holderArgs([a!]);
      const ttlMs = 1500;
      const proc = spawn(process.execPath, [HOLDER, spec, prefix, 'dies.example.test', String(ttlMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      proc.stdout.on('data', (c: Buffer) => (out += c));
      proc.stderr.on('data', (c: Buffer) => (out += c));
      const exited = new Promise((r) => proc.once('exit', r));
      t.after(() => {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      });
      await waitFor(() => out.includes('locked') || proc.exitCode !== null, 20_000, 'the holder process takes the lock');
      assert.match(out, /^locked/, out);
      // Held by a live process: not free, even when waited on for longer than the TTL (the
      // holder keeps it alive).
      await assert.rejects(a!.certificates.lock('dies.example.test', { ttlMs, waitMs: ttlMs * 2 }), isCode(ErrorCode.CERT_LOCK_TIMEOUT));
      const waiting = a!.certificates.lock('dies.example.test', { ttlMs, waitMs: 30_000 });
      proc.kill('SIGKILL');
      await exited;
      const killedAt = Date.now();
      const l = await waiting;
      assert.equal(l.lost.aborted, false);
      assert.ok(Date.now() - killedAt < 20_000);
      await l.release();
    });
  }

  if (backend.breakLock) {
    const breakLock = backend.breakLock.bind(backend);
    test(`${label} certificates: a lock removed behind its holder fires lost`, async (t) => {
      const stores = await backend.open(t, 2);
      const l = await stores[0]!.certificates.tryLock('broken.example.test', { ttlMs: 1500 });
      assert.ok(l);
      const lost = new Promise<unknown>((r) => l.lost.addEventListener('abort', () => r(l.lost.reason)));
      await breakLock(stores, 'broken.example.test');
      const reason = await lost;
      assert.match(String((reason as Error).message), /lost/);
      const next = await stores[1]!.certificates.lock('broken.example.test', { ttlMs: 1500, waitMs: 10_000 });
      await next.release();
      await l.release(); // a lost lock's release is harmless
      assert.equal(next.lost.aborted, true);
    });
  }

  if (backend.writeRaw) {
    const writeRaw = backend.writeRaw.bind(backend);
    test(`${label} certificates: corrupt stored data is an error for that name only`, async (t) => {
      const stores = await backend.open(t, 2);
      const [a, b] = stores;
      for (const n of ['good', 'torn', 'badpem', 'wrongkey']) await a!.certificates.putCertificate(certOf(`${n}.example.test`));
      await a!.certificates.putMeta({ name: 'good.example.test', attempts: 1 });
      const seen: string[] = [];
      b!.certificates.watchCertificates((n) => seen.push(n));
      await writeRaw(stores, 'certs', 'torn.example.test', '{"name": "torn.example.test", "certPem": "-----BEGIN CERT');
      const badPem = { ...certOf('badpem.example.test'), certPem: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' };
      await writeRaw(stores, 'certs', 'badpem.example.test', JSON.stringify(badPem));
      const wrongKey = { ...certOf('wrongkey.example.test'), keyPem: certOf('good.example.test').keyPem };
      await writeRaw(stores, 'certs', 'wrongkey.example.test', JSON.stringify(wrongKey));
      await writeRaw(stores, 'meta', 'torn.example.test', '[1, 2');
      await waitFor(() => seen.includes('torn.example.test') && seen.includes('badpem.example.test'), 10_000, 'the watch reports the changed names');
      await assert.rejects(b!.certificates.getCertificate('torn.example.test'), isCode(ErrorCode.CERT_INVALID, /torn\.example\.test.*not JSON/));
      await assert.rejects(b!.certificates.getCertificate('badpem.example.test'), isCode(ErrorCode.CERT_INVALID, /badpem\.example\.test.*certPem/));
      await assert.rejects(b!.certificates.getCertificate('wrongkey.example.test'), isCode(ErrorCode.CERT_INVALID, /wrongkey\.example\.test.*not the key/));
      await assert.rejects(b!.certificates.getMeta('torn.example.test'), isCode(ErrorCode.CERT_INVALID, /metadata "torn\.example\.test"/));
      assert.equal((await b!.certificates.getCertificate('good.example.test'))?.name, 'good.example.test');
      const list = await b!.certificates.listCertificates();
      assert.deepEqual(
        list.map((e) => [e.name, e.error === undefined]),
        [['badpem.example.test', false], ['good.example.test', true], ['torn.example.test', false], ['wrongkey.example.test', false]],
      );
      assert.match(list[2]!.error!, /torn\.example\.test/);
      const metas = await b!.certificates.listMeta();
      assert.deepEqual(metas.map((e) => [e.name, e.error === undefined]), [['good.example.test', true], ['torn.example.test', false]]);
      await a!.certificates.putCertificate(certOf('torn.example.test'));
      assert.equal((await b!.certificates.getCertificate('torn.example.test'))?.name, 'torn.example.test', 'a good put repairs it');
    });
  }
}
