// The loader, driven by the schema: every setting reachable from flag, environment and config file
// with the documented precedence (flags > environment > file > defaults). A new setting in
// schema.ts is covered here without a new line (unless it needs a companion setting or a sample).

import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { diffSettings, loadConfig, type LoadResult, type LoadedConfig } from '../../src/config/load.js';
import { SETTINGS, type SettingValue } from '../../src/config/schema.js';
import { PEM, argvFor, companions, envFor, samples, toml } from '../helpers/config-samples.js';
import { tempDir } from '../helpers/temp.js';

function ok(r: LoadResult, what: string): LoadedConfig {
  if (!r.ok) assert.fail(`${what}: ${r.errors.map((e) => `${e.where}: ${e.key}: ${e.reason}`).join('; ')}`);
  return r;
}

test('every setting: reachable from flag, environment and file, with flags > environment > file', async (t) => {
  const dir = tempDir(t, 'swy-cfg-');
  const files = [1, 2, 3].map((i) => {
    const p = join(dir, `pem${i}.pem`);
    writeFileSync(p, PEM);
    return p;
  });
  const cfgFile = join(dir, 'c.toml');
  let covered = 0;
  for (const s of SETTINGS) {
    if (s.name === 'config') continue;
    const [vFlag, vEnv, vFile] = samples(s, files);
    const comp = companions(s.name, files);
    const load = async (levels: { flag?: boolean; env?: boolean; file?: boolean }): Promise<LoadedConfig> => {
      const any = levels.flag || levels.env || levels.file;
      writeFileSync(cfgFile, toml({ ...(any ? comp : {}), ...(levels.file ? { [s.name]: vFile } : {}) }));
      const argv = ['--config', cfgFile, ...(levels.flag ? argvFor(s, vFlag) : [])];
      const env = levels.env ? envFor(s, vEnv) : {};
      return ok(await loadConfig({ argv, env }), `${s.name} ${JSON.stringify(levels)}`);
    };
    const expect = (r: LoadedConfig, kind: string, value: SettingValue, what: string): void => {
      const got = r.settings.get(s.name);
      assert.equal(got?.source.kind, kind, `${s.name}: ${what}: source`);
      assert.deepEqual(got?.value, value, `${s.name}: ${what}: value`);
    };
    if (s.flag !== 'none') {
      expect(await load({ flag: true }), 'flag', vFlag, 'flag alone');
      expect(await load({ flag: true, env: true, file: true }), 'flag', vFlag, 'flag over env and file');
    } else {
      assert.ok(s.secret || !s.name.includes('-'), `${s.name}: only secrets and file-only settings have no flag`);
    }
    expect(await load({ env: true }), 'env', vEnv, 'env alone');
    expect(await load({ file: true }), 'file', vFile, 'file alone');
    expect(await load({ env: true, file: true }), 'env', vEnv, 'env over file');
    const none = await load({});
    assert.equal(none.settings.has(s.name), false, `${s.name}: given nowhere, the default applies`);
    covered++;
  }
  assert.equal(covered, SETTINGS.length - 1);
});

test('secrets: CHP variables, SWITCHYARD_ names first, files named by _FILE / -file, never a flag', async (t) => {
  const dir = tempDir(t, 'swy-sec-');
  const tok = join(dir, 'token');
  writeFileSync(tok, 'from-file\n');
  chmodSync(tok, 0o600);
  const users = join(dir, 'users');
  writeFileSync(users, '# dashboard users\nalice:$2y$10$abc\n\nbob:$2y$10$def\n');
  chmodSync(users, 0o600);
  const cfg = join(dir, 'c.toml');
  const load = async (argv: string[], env: Record<string, string>) => loadConfig({ argv, env });

  let r = ok(await load([], { CONFIGPROXY_AUTH_TOKEN: 'chp' }), 'chp');
  assert.equal(r.config.authToken, 'chp');
  r = ok(await load([], { CONFIGPROXY_AUTH_TOKEN: 'chp', SWITCHYARD_AUTH_TOKEN: 'sy' }), 'both');
  assert.equal(r.config.authToken, 'sy', 'the SWITCHYARD_ name wins over the CHP alias');
  r = ok(await load([], { SWITCHYARD_AUTH_TOKEN_FILE: tok }), 'env file');
  assert.equal(r.config.authToken, 'from-file', 'trailing newline dropped');
  assert.deepEqual(r.warnings, []);
  writeFileSync(cfg, `auth-token-file = ${JSON.stringify(tok)}\n[dashboard]\nusers-file = ${JSON.stringify(users)}\n`);
  r = ok(await load(['--config', cfg], {}), 'file -file keys');
  assert.equal(r.config.authToken, 'from-file');
  assert.deepEqual(r.config.dashboardUsers, ['alice:$2y$10$abc', 'bob:$2y$10$def']);
  r = ok(await load(['--config', cfg], { CONFIGPROXY_AUTH_TOKEN: 'env-wins' }), 'env over file');
  assert.equal(r.config.authToken, 'env-wins');
  writeFileSync(cfg, `auth-token_file = ${JSON.stringify(tok)}\n`);
  r = ok(await load(['--config', cfg], {}), 'the _file spelling');
  assert.equal(r.config.authToken, 'from-file');
  writeFileSync(cfg, `auth-token_file = ${JSON.stringify(tok)}\nauth-token-file = ${JSON.stringify(tok)}\n`);
  const twice = await load(['--config', cfg], {});
  assert.equal(twice.ok, false, 'both spellings: one too many');
  assert.match(!twice.ok ? twice.errors[0]!.reason : '', /already set by auth-token_file/);

  const both = await load([], { SWITCHYARD_AUTH_TOKEN: 'a', SWITCHYARD_AUTH_TOKEN_FILE: tok });
  assert.equal(both.ok, false);
  assert.deepEqual(!both.ok && both.errors, [{ where: 'environment', key: 'SWITCHYARD_AUTH_TOKEN_FILE', reason: 'set either SWITCHYARD_AUTH_TOKEN or SWITCHYARD_AUTH_TOKEN_FILE, not both' }]);
  const flag = await load(['--auth-token', 'x'], {});
  assert.equal(flag.ok, false, 'no flag for a secret');
  assert.match(!flag.ok ? flag.errors[0]!.reason : '', /unknown option '--auth-token'/);

  const etcd = ok(await load(['--etcd-username', 'u'], { SWITCHYARD_ETCD_PASSWORD: 'pw' }), 'etcd');
  assert.deepEqual(etcd.config.storeOptions.etcdAuth, { username: 'u', password: 'pw' });
  const noPw = await load(['--etcd-username', 'u'], {});
  assert.equal(noPw.ok, false);
  assert.match(!noPw.ok ? `${noPw.errors[0]!.where}: ${noPw.errors[0]!.key}: ${noPw.errors[0]!.reason}` : '', /^command line: --etcd-username: needs the etcd password/);
});

test('environment forms: booleans, lists (lines or JSON), empty = unset', async () => {
  const r = ok(await loadConfig({ argv: [], env: { SWITCHYARD_X_FORWARD: 'no', SWITCHYARD_INSECURE: 'on', SWITCHYARD_CUSTOM_HEADER: '["X-A: 1, 2", "X-B: 3"]', SWITCHYARD_PORT: '' } }), 'env');
  assert.equal(r.config.xForward, false);
  assert.equal(r.config.insecure, true);
  assert.deepEqual(r.config.customHeaders, [['X-A', '1, 2'], ['X-B', '3']]);
  assert.deepEqual(r.config.proxyListen, { kind: 'tcp', port: 8000, host: undefined });
  const bad = await loadConfig({ argv: [], env: { SWITCHYARD_INSECURE: 'maybe', SWITCHYARD_PORT: 'eighty' } });
  assert.deepEqual(!bad.ok && bad.errors.map((e) => `${e.where}: ${e.key}: ${e.reason}`), [
    "environment: SWITCHYARD_PORT: expected an integer, got 'eighty'",
    "environment: SWITCHYARD_INSECURE: expected a boolean (true/false, 1/0, yes/no, on/off), got 'maybe'",
  ]);
});

test('JSON config file, SWITCHYARD_CONFIG, [dashboard] enabled, and a rule across settings located', async (t) => {
  const dir = tempDir(t, 'swy-json-');
  const json = join(dir, 'c.json');
  writeFileSync(json, '{\n  "port": 9100,\n  "dashboard": { "enabled": false, "users": ["a:h"] },\n  "socket": "/tmp/x.sock"\n}\n');
  const r = await loadConfig({ argv: [], env: { SWITCHYARD_CONFIG: json } });
  assert.equal(r.ok, false);
  assert.deepEqual(!r.ok && r.errors, [{ where: `${json}:4`, key: 'socket', reason: 'cannot be used with port or ip' }]);
  writeFileSync(json, '{\n  "port": 9100,\n  "dashboard": { "enabled": false, "users": ["a:h"] }\n}\n');
  const good = ok(await loadConfig({ argv: [], env: { SWITCHYARD_CONFIG: json } }), 'json');
  assert.equal(good.config.dashboard, false);
  assert.deepEqual(good.config.dashboardUsers, ['a:h']);
  assert.equal(good.configFile, json);
});

test('diffSettings splits changes into reloadable and restart-required by the schema marks', async (t) => {
  const dir = tempDir(t, 'swy-diff-');
  const f = join(dir, 'c.toml');
  writeFileSync(f, 'port = 9000\nlog-level = "info"\n');
  const a = ok(await loadConfig({ argv: ['--config', f], env: {} }), 'a');
  writeFileSync(f, 'port = 9001\nlog-level = "debug"\ncustom-header = ["X-A: b"]\n[dashboard]\nusers = ["a:h"]\n');
  const b = ok(await loadConfig({ argv: ['--config', f], env: {} }), 'b');
  assert.deepEqual(diffSettings(a.settings, b.settings), { reloadable: ['custom-header', 'log-level', 'dashboard.users'], restartRequired: ['port'] });
  assert.deepEqual(diffSettings(a.settings, a.settings), { reloadable: [], restartRequired: [] });
  // Setting a value equal to its default is no change.
  writeFileSync(f, 'port = 9000\n');
  const c = ok(await loadConfig({ argv: ['--config', f], env: {} }), 'c');
  assert.deepEqual(diffSettings(a.settings, c.settings), { reloadable: [], restartRequired: [] });
  const marked = SETTINGS.filter((s) => s.reloadable).map((s) => s.name);
  assert.deepEqual(marked, ['ssl-key', 'ssl-key-passphrase', 'ssl-cert', 'api-ssl-key', 'api-ssl-key-passphrase', 'api-ssl-cert', 'custom-header', 'timeout',
    'proxy-timeout', 'keep-alive-timeout', 'request-body-timeout', 'upstream-connect-timeout', 'log-level', 'access-log', 'access-log-format', 'dashboard.users']);
});
