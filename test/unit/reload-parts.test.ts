// The pure parts of reload and dashboard users: which changes are live, the htpasswd parser, the
// bcrypt check (unknown user and wrong password alike), the sign-in limiter's window and bound.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import bcrypt from 'bcryptjs';
import { buildConfig } from '../../src/config/config.js';
import { parseArgv } from '../../src/config/flags.js';
import { classifyChanges, createReloader } from '../../src/control/reload.js';
import { MAX_TRACKED, createSignInLimiter, createUserDirectory, parseUsers } from '../../src/api/dashboard-users.js';
import { createLogger } from '../../src/observability/logger.js';
import { testCert } from '../helpers/tls.js';

const config = (argv: string[]) => buildConfig(parseArgv(argv), {});

test('classifyChanges: live settings, restart-only ones, and TLS (the pair is live, the rest is not)', () => {
  const base = config(['--port', '0', '--log-level', 'info', '--custom-header', 'A: 1']);
  const { live, restart } = classifyChanges(base, config(['--port', '0', '--log-level', 'debug', '--custom-header', 'A: 2', '--proxy-timeout', '5', '--host-routing']));
  assert.deepEqual([...live].sort(), ['customHeaders', 'logLevel', 'proxyTimeout']);
  assert.deepEqual(restart, ['host-routing']);
  const cert = testCert();
  const tls = config(['--ssl-key', cert.key, '--ssl-cert', cert.cert]);
  const sameFiles = { ...tls, ssl: { ...tls.ssl!, cert: Buffer.from(tls.ssl!.cert!) } };
  assert.equal(classifyChanges(tls, sameFiles).live.size, 0, 'equal bytes are no change');
  const newPair = { ...tls, ssl: { ...tls.ssl!, cert: Buffer.from('other') } };
  assert.deepEqual([...classifyChanges(tls, newPair).live], ['ssl']);
  const newCiphers = { ...tls, ssl: { ...tls.ssl!, ciphers: 'HIGH' } };
  assert.deepEqual(classifyChanges(tls, newCiphers), { live: new Set(), restart: ['ssl-cert/ssl-key'] });
  assert.deepEqual(classifyChanges(base, tls).restart.includes('ssl-cert/ssl-key'), true, 'turning TLS on needs a restart');
});

test('reloader: a loader error keeps the running config; targets get only live changes; reloads run one at a time', async () => {
  const lines: string[] = [];
  const log = createLogger({ write: (l) => lines.push(l) });
  let next = config(['--log-level', 'info']);
  let fail = false;
  const seen: string[][] = [];
  const r = createReloader({
    initial: next,
    source: {
      load: async () => {
        if (fail) throw new Error('file.toml:3: bad');
        return { config: next };
      },
    },
    targets: [{ name: 't', apply: (_c, changed) => void seen.push([...changed]) }],
    log,
  });
  next = config(['--log-level', 'debug', '--no-x-forward']);
  const [one, two] = await Promise.all([r.reload('a'), r.reload('b')]);
  assert.deepEqual(one, { ok: true, applied: ['log-level'], restartRequired: ['x-forward'], errors: [] });
  // The second saw the first's result as running: the restart-only change is named again, nothing live.
  assert.deepEqual(two, { ok: true, applied: [], restartRequired: ['x-forward'], errors: [] });
  assert.equal(r.current().logLevel, 'debug');
  assert.equal(r.current().xForward, true, 'restart-only setting kept');
  fail = true;
  const refused = await r.reload('c');
  assert.equal(refused.ok, false);
  assert.deepEqual(refused.errors, ['file.toml:3: bad']);
  assert.equal(r.current().logLevel, 'debug');
  assert.deepEqual(seen, [['logLevel'], []]);
  assert.ok(lines.some((l) => l.includes('reload (c): configuration not applied, the running configuration is kept: file.toml:3: bad')));
});

test('htpasswd lines: bcrypt $2a$/$2b$/$2y$ only; the password is checked, an unknown user fails like a wrong password', async () => {
  const h = bcrypt.hashSync('pw', 4);
  const users = [`a:${h}`, `b:${h.replace('$2b$', '$2a$')}`, `y:${h.replace('$2b$', '$2y$')}`];
  assert.equal(parseUsers(users).size, 3);
  assert.throws(() => parseUsers(['md5:$apr1$abcdefgh$0123456789abcdefghijkl']), /only \$2a\$\/\$2b\$\/\$2y\$/);
  assert.throws(() => parseUsers(['nocolon']), /users\[0\]/);
  assert.throws(() => parseUsers([`a:${h}`, `a:${h}`]), /listed twice/);
  assert.doesNotThrow(() => parseUsers([]));
  const dir = createUserDirectory(users);
  for (const name of ['a', 'b', 'y']) {
    assert.equal(await dir.verify(name, 'pw'), true, name);
    assert.equal(await dir.verify(name, 'pW'), false, name);
  }
  assert.equal(await dir.verify('nobody', 'pw'), false);
  assert.equal(await dir.verify('', ''), false);
  dir.set([`a:${bcrypt.hashSync('new', 4)}`]);
  assert.equal(await dir.verify('a', 'pw'), false);
  assert.equal(await dir.verify('a', 'new'), true);
  assert.equal(dir.hashOf('b'), undefined);
});

test('sign-in limiter: 5 failures per window, Retry-After until the window ends, success clears, memory bounded', () => {
  let now = 1_000_000;
  const l = createSignInLimiter({ now: () => now });
  for (let i = 0; i < 4; i++) l.failed('1.2.3.4');
  assert.equal(l.retryAfter('1.2.3.4'), 0);
  l.failed('1.2.3.4');
  assert.equal(l.retryAfter('1.2.3.4'), 60);
  now += 59_500;
  assert.equal(l.retryAfter('1.2.3.4'), 1);
  now += 500;
  assert.equal(l.retryAfter('1.2.3.4'), 0, 'the window is over');
  for (let i = 0; i < 5; i++) l.failed('5.6.7.8');
  l.succeeded('5.6.7.8');
  assert.equal(l.retryAfter('5.6.7.8'), 0);
  for (let i = 0; i < 5; i++) l.failed('9.9.9.9');
  // Past MAX_TRACKED addresses the oldest are forgotten (no unbounded growth).
  for (let i = 0; i < MAX_TRACKED; i++) l.failed(`10.0.${i >> 8}.${i & 255}`);
  assert.equal(l.retryAfter('9.9.9.9'), 0);
});
