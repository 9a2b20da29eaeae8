// The configuration from the real CLI: --config files, SWITCHYARD_* environment, check-config, and
// each class of configuration error with its exact `PLACE: KEY: REASON` message and exit status.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SETTINGS, envName, type SettingValue } from '../../src/config/schema.js';
import { PEM, argvFor, envFor, samples, toml } from '../helpers/config-samples.js';
import { MAIN, listen0, request, startSwitchyardProcess } from '../helpers/servers.js';
import { tempDir } from '../helpers/temp.js';

const EXAMPLE = fileURLToPath(new URL('../../../docs/switchyard.toml', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the CLI in `cwd` with only PATH and `env` in its environment (no stray SWITCHYARD_* from the runner). */
function cli(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { cwd: opts.cwd, env: { PATH: process.env.PATH ?? '', ...opts.env }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

/** A directory with the given files (mode 0600 unless given), for runs with cwd = it. */
function files(t: Parameters<typeof tempDir>[0], list: Record<string, string | { text: string; mode: number }>): string {
  const dir = tempDir(t, 'swy-cli-cfg-');
  for (const [name, f] of Object.entries(list)) {
    const { text, mode } = typeof f === 'string' ? { text: f, mode: 0o600 } : f;
    writeFileSync(join(dir, name), text);
    chmodSync(join(dir, name), mode);
  }
  return dir;
}

test('each class of config error: exit 1, one line per problem, PLACE: KEY: REASON', async (t) => {
  const cases: { what: string; files: Record<string, string>; args: string[]; env?: Record<string, string>; stderr: string | RegExp }[] = [
    { what: 'unknown key, with the nearest name', files: { 'c.toml': 'port = 8000\napi_port = 8001\n' }, args: ['--config', 'c.toml'],
      stderr: 'switchyard: error: c.toml:2: api_port: unknown key; did you mean api-port?\n' },
    { what: 'unknown key in a table', files: { 'c.toml': '[dashboard]\nuser = ["a:h"]\n' }, args: ['--config', 'c.toml'],
      stderr: 'switchyard: error: c.toml:2: dashboard.user: unknown key; did you mean dashboard.users?\n' },
    { what: 'wrong type', files: { 'c.toml': 'port = 8000\ntimeout = "5"\n' }, args: ['--config', 'c.toml'],
      stderr: 'switchyard: error: c.toml:2: timeout: expected an integer, got a string ("5")\n' },
    { what: 'wrong type: a list', files: { 'c.toml': 'custom-header = "X-A: b"\n' }, args: ['--config', 'c.toml'],
      stderr: 'switchyard: error: c.toml:1: custom-header: expected an array of strings, got a string ("X-A: b")\n' },
    { what: 'wrong type for a secret: the value is not quoted back', files: { 'c.toml': 'auth-token = 12345678\n' }, args: ['--config', 'c.toml'],
      stderr: 'switchyard: error: c.toml:1: auth-token: expected a string, got an integer\n' },
    { what: 'invalid value', files: { 'c.toml': '\n\nlog-level = "loud"\n' }, args: ['--config', 'c.toml'],
      stderr: "switchyard: error: c.toml:3: log-level: must be one of debug, info, warn, error; got 'loud'\n" },
    { what: 'invalid value: port', files: { 'c.toml': 'port = 70000\n' }, args: ['--config', 'c.toml'],
      stderr: 'switchyard: error: c.toml:1: port: must be a port number (0-65535), got 70000\n' },
    { what: 'invalid dashboard user line (never quoted: it may hold a hash)', files: { 'c.toml': '[dashboard]\nusers = ["alice:$2y$10$x", "bob"]\n' }, args: ['--config', 'c.toml'],
      stderr: 'switchyard: error: c.toml:2: dashboard.users: each entry must be "user:hash" (an htpasswd line); entry 2 is not\n' },
    { what: 'TOML syntax error', files: { 'c.toml': 'port = 8000\nx-forward = \nip = "a"\n' }, args: ['--config', 'c.toml'],
      stderr: 'switchyard: error: c.toml:2:13: TOML syntax error: invalid value\n' },
    { what: 'a half-written TOML file', files: { 'c.toml': 'port = 8000\ncustom-header = ["X-A: b",\n' }, args: ['--config', 'c.toml'],
      stderr: 'switchyard: error: c.toml:3:1: TOML syntax error: invalid value (at the end of the file: is it complete?)\n' },
    { what: 'a half-written JSON file', files: { 'c.json': '{\n  "port": 8000,\n' }, args: ['--config', 'c.json'],
      // The parser's own words differ between Node versions, and so does whether they give a
      // column (Node 22+ reports "line 3 column 1"); the line and the hint do not.
      stderr: /^switchyard: error: c\.json:3(:\d+)?: JSON syntax error: [^\n]+ \(at the end of the file: is it complete\?\)\n$/ },
    { what: 'a config file that does not exist', files: {}, args: ['--config', 'nope.toml'],
      stderr: "switchyard: error: command line: --config: cannot read config file nope.toml: ENOENT (no such file or directory, stat 'nope.toml')\n" },
    { what: 'a config file named by the environment that is a directory', files: {}, args: [], env: { SWITCHYARD_CONFIG: '.' },
      stderr: 'switchyard: error: environment: SWITCHYARD_CONFIG: cannot read config file .: EISDIR (is a directory)\n' },
    { what: 'a missing secret file (config file)', files: { 'c.toml': 'auth-token-file = "missing-token"\n' }, args: ['--config', 'c.toml'],
      stderr: 'switchyard: error: c.toml:1: auth-token-file: cannot read secret file missing-token: ENOENT\n' },
    { what: 'a missing secret file (environment)', files: {}, args: [], env: { SWITCHYARD_ETCD_PASSWORD_FILE: 'missing' },
      stderr: 'switchyard: error: environment: SWITCHYARD_ETCD_PASSWORD_FILE: cannot read secret file missing: ENOENT\n' },
    { what: 'environment: wrong type', files: {}, args: [], env: { SWITCHYARD_API_PORT: 'eighty' },
      stderr: "switchyard: error: environment: SWITCHYARD_API_PORT: expected an integer, got 'eighty'\n" },
    { what: 'flag: invalid value', files: {}, args: ['--port', '70000'],
      stderr: 'switchyard: error: command line: --port: must be a port number (0-65535), got 70000\n' },
    { what: 'flag: unknown, with the nearest name', files: {}, args: ['--defualt-target', 'http://x'],
      stderr: "switchyard: error: command line: unknown option '--defualt-target' (see --help); did you mean --default-target?\n" },
    { what: 'a rule across settings, at the place of the setting it names', files: { 'c.toml': 'port = 8000\nsocket = "/tmp/s.sock"\n' }, args: ['--config', 'c.toml'],
      stderr: 'switchyard: error: c.toml:2: socket: cannot be used with port or ip\n' },
    { what: 'several problems: all of them, command line, environment, then the file by line', files: { 'c.toml': 'workers = 1000\nprot = 1\n' },
      args: ['--config', 'c.toml', '--ip'], env: { SWITCHYARD_TIMEOUT: 'soon' },
      stderr: "switchyard: error: command line: option '--ip <ip-address>' argument missing\n" +
        "switchyard: error: environment: SWITCHYARD_TIMEOUT: expected an integer, got 'soon'\n" +
        'switchyard: error: c.toml:1: workers: must be 0..256, got 1000\n' +
        'switchyard: error: c.toml:2: prot: unknown key; did you mean port?\n' },
  ];
  for (const c of cases) {
    const dir = files(t, c.files);
    const r = await cli(c.args, { cwd: dir, env: c.env });
    if (typeof c.stderr === 'string') assert.equal(r.stderr, c.stderr, c.what);
    else assert.match(r.stderr, c.stderr, c.what);
    assert.equal(r.code, 1, c.what);
    assert.equal(r.stdout, '', c.what);
  }
});

test('warnings: unknown SWITCHYARD_ variable, secret files readable by every user (the start goes on)', async (t) => {
  const dir = files(t, {
    tok: { text: 'tok\n', mode: 0o644 },
    'c.toml': { text: 'auth-token-file = "tok"\n', mode: 0o644 },
    'inline.toml': { text: 'auth-token = "tok"\n', mode: 0o644 },
  });
  const r = await cli(['check-config', '--config', 'c.toml'], { cwd: dir, env: { SWITCHYARD_PORTT: '1' } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr,
    'switchyard: warning: environment: SWITCHYARD_PORTT: unknown SWITCHYARD_ variable, ignored; did you mean SWITCHYARD_PORT?\n' +
    'switchyard: warning: c.toml:1: auth-token-file: secret file tok is readable by every user (chmod o-r tok)\n' +
    'switchyard: configuration is valid\n');
  const inline = await cli(['check-config', '--config', 'inline.toml'], { cwd: dir });
  assert.equal(inline.code, 0);
  assert.match(inline.stderr, /^switchyard: warning: inline\.toml: holds secrets and is readable by every user \(chmod o-r inline\.toml/m);
  chmodSync(join(dir, 'tok'), 0o600);
  chmodSync(join(dir, 'inline.toml'), 0o600);
  for (const f of ['c.toml', 'inline.toml']) {
    const quiet = await cli(['check-config', '--config', f], { cwd: dir });
    assert.equal(quiet.stderr, 'switchyard: configuration is valid\n', `${f} private: no warning`);
  }
});

test('check-config: the annotated example is valid; secrets redacted; sources named; the output loads back', async (t) => {
  const dir = tempDir(t, 'swy-cc-');
  const env = { CONFIGPROXY_AUTH_TOKEN: 'sekrit-token-value', SWITCHYARD_LOG_LEVEL: 'debug' };
  const r = await cli(['check-config', '--config', EXAMPLE, '--port', '9100'], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, 'switchyard: configuration is valid\n');
  assert.doesNotMatch(r.stdout, /sekrit-token-value/);
  assert.doesNotMatch(r.stdout, /\$2y\$/, 'no password hash');
  assert.match(r.stdout, /^auth-token = "<redacted>" {2}# env CONFIGPROXY_AUTH_TOKEN$/m);
  assert.match(r.stdout, /^users = \["alice:<redacted>"\] {2}# .*switchyard\.toml:\d+ \(dashboard\.users\)$/m);
  assert.match(r.stdout, /^port = 9100 {2}# flag --port$/m);
  assert.match(r.stdout, /^log-level = "debug" {2}# env SWITCHYARD_LOG_LEVEL$/m);
  assert.match(r.stdout, /^default-target = "http:\/\/127\.0\.0\.1:8081" {2}# .*switchyard\.toml:\d+ \(default-target\)$/m);
  assert.match(r.stdout, /^drain-timeout = 10000 {2}# .*switchyard\.toml/m);
  assert.match(r.stdout, /^# redirect-to is not set$/m);
  assert.match(r.stdout, /^# access-log-format = "json" {2}# default$/m);
  // The printed configuration is itself a valid config file.
  writeFileSync(join(dir, 'effective.toml'), r.stdout);
  chmodSync(join(dir, 'effective.toml'), 0o600);
  const again = await cli(['check-config', '--config', 'effective.toml'], { cwd: dir });
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /^port = 9100 {2}# effective\.toml:\d+ \(port\)$/m);

  const bad = await cli(['check-config', '--port', 'x']);
  assert.equal(bad.code, 1);
  assert.equal(bad.stdout, '');
  assert.equal(bad.stderr, "switchyard: error: command line: option '--port' expects an integer, got 'x'\nswitchyard: configuration is invalid\n");
});

test('precedence over the real CLI: flag > environment > file > default', async (t) => {
  const dir = files(t, { 'c.toml': 'port = 9000\n' });
  const portLine = async (args: string[], env: Record<string, string>): Promise<string> => {
    const r = await cli(['check-config', ...args], { cwd: dir, env });
    assert.equal(r.code, 0, r.stderr);
    return /^(# )?port = .*$/m.exec(r.stdout)![0];
  };
  assert.equal(await portLine([], {}), '# port = 8000  # default');
  assert.equal(await portLine(['--config', 'c.toml'], {}), 'port = 9000  # c.toml:1 (port)');
  assert.equal(await portLine(['--config', 'c.toml'], { SWITCHYARD_PORT: '9001' }), 'port = 9001  # env SWITCHYARD_PORT');
  assert.equal(await portLine(['--config', 'c.toml', '--port', '9002'], { SWITCHYARD_PORT: '9001' }), 'port = 9002  # flag --port');
  assert.equal(await portLine(['--port=9003'], { SWITCHYARD_CONFIG: 'c.toml' }), 'port = 9003  # flag --port');
});

test('a proxy started from a config file: target, headers and the API token file (data-plane workers read it too)', async (t) => {
  const seen: http.IncomingHttpHeaders[] = [];
  const backend = http.createServer((req, res) => {
    seen.push(req.headers);
    res.end('from backend');
  });
  const bport = await listen0(backend);
  t.after(() => new Promise((r) => backend.close(r)));
  const dir = tempDir(t, 'swy-run-');
  mkdirSync(join(dir, 'secrets'));
  writeFileSync(join(dir, 'secrets/token'), 'file-token\n', { mode: 0o600 });
  const cfg = join(dir, 'switchyard.toml');
  writeFileSync(cfg, [
    `default-target = "http://127.0.0.1:${bport}"`,
    'custom-header = ["X-From-Config: yes"]',
    'workers = 2',
    `auth-token-file = ${JSON.stringify(join(dir, 'secrets/token'))}`,
  ].join('\n') + '\n', { mode: 0o600 });
  // The helper's default token is an environment variable: empty = unset, so the file's applies.
  const p = await startSwitchyardProcess(t, ['--config', cfg], { CONFIGPROXY_AUTH_TOKEN: '' });
  const r = await request(`${p.proxyUrl}/anything`);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'from backend');
  assert.equal(seen[0]?.['x-from-config'], 'yes');
  assert.equal((await request(`${p.apiUrl}/api/routes`)).status, 403);
  assert.equal((await request(`${p.apiUrl}/api/routes`, { headers: { authorization: 'token file-token' } })).status, 200);
  assert.doesNotMatch(p.output(), /warning/, 'no warning: private files, no unknown variables');
});

test('every setting through the real CLI: check-config shows flag > environment > file for each, from the schema', async (t) => {
  const dir = tempDir(t, 'swy-every-');
  const pems = [1, 2, 3].map((i) => {
    writeFileSync(join(dir, `pem${i}.pem`), PEM);
    return join(dir, `pem${i}.pem`);
  });
  // Two runs, because a few settings exclude others (socket vs port/ip, storage-backend vs store,
  // error-path vs error-target); within a run every setting is set at every level at once.
  // ACME (acme-*) excludes ssl-key/ssl-cert: a third run.
  const alone = new Set(['socket', 'api-socket', 'metrics-socket', 'storage-backend', 'error-path']);
  const acme = (name: string): boolean => name.startsWith('acme-');
  const runs = [
    SETTINGS.filter((s) => s.name !== 'config' && !alone.has(s.name) && !acme(s.name)),
    SETTINGS.filter((s) => alone.has(s.name)),
    SETTINGS.filter((s) => acme(s.name)),
  ];
  const esc = (x: string): string => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  // The value as check-config prints it (TOML), as a pattern; secrets are redacted (checked elsewhere).
  const printed = (s: (typeof SETTINGS)[number], v: SettingValue): string =>
    s.secret ? '.*' : esc(Array.isArray(v) ? `[${v.map((x) => JSON.stringify(x)).join(', ')}]` : typeof v === 'string' ? JSON.stringify(v) : String(v));
  let checked = 0;
  for (const list of runs) {
    const level = (i: 0 | 1 | 2) => Object.fromEntries(list.map((s) => [s.name, samples(s, pems)[i]]));
    const file = join(dir, 'c.toml');
    writeFileSync(file, toml(level(2)));
    const argv = list.flatMap((s) => (s.flag === 'none' ? [] : argvFor(s, samples(s, pems)[0])));
    const env = Object.assign({}, ...list.map((s) => envFor(s, samples(s, pems)[1]))) as Record<string, string>;
    const outputs = {
      flag: await cli(['check-config', '--config', 'c.toml', ...argv], { cwd: dir, env }),
      env: await cli(['check-config', '--config', 'c.toml'], { cwd: dir, env }),
      file: await cli(['check-config', '--config', 'c.toml'], { cwd: dir }),
    };
    for (const [what, r] of Object.entries(outputs)) assert.equal(r.code, 0, `${what}: ${r.stderr}`);
    for (const s of list) {
      const key = s.name === 'dashboard' ? 'enabled' : s.name.replace(/^dashboard\./, '');
      const [vFlag, vEnv, vFile] = samples(s, pems);
      const flagNote = s.flag === 'none' ? `env ${envName(s.name)}` : `flag ${s.flag === 'negated' ? '--no-' : '--'}${s.name}`;
      const expect: [string, string, RegExp][] = [
        ['flag', outputs.flag.stdout, new RegExp(`^${esc(key)} = ${printed(s, s.flag === 'none' ? vEnv : vFlag)}  # ${esc(flagNote)}$`, 'm')],
        ['env', outputs.env.stdout, new RegExp(`^${esc(key)} = ${printed(s, vEnv)}  # env ${envName(s.name)}$`, 'm')],
        ['file', outputs.file.stdout, new RegExp(`^${esc(key)} = ${printed(s, vFile)}  # c\\.toml:\\d+ \\(${esc(s.name === 'dashboard' ? 'dashboard.enabled' : s.name)}\\)$`, 'm')],
      ];
      for (const [what, out, re] of expect) assert.match(out, re, `${s.name} (${what} level)`);
      checked++;
    }
  }
  assert.equal(checked, SETTINGS.length - 1, 'every setting but config itself');
});
