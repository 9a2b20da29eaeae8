import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { test } from 'node:test';
import { buildConfig } from '../../src/config/config.js';
import { parseArgv } from '../../src/config/flags.js';

const cfg = (argv: string[], env: Record<string, string> = {}) => buildConfig(parseArgv(argv), env);

test('CHP defaults', () => {
  const c = cfg([]);
  assert.deepEqual(c.proxyListen, { kind: 'tcp', port: 8000, host: undefined });
  assert.deepEqual(c.apiListen, { kind: 'tcp', port: 8001, host: 'localhost' });
  assert.equal(c.metricsListen, undefined);
  assert.equal(c.xForward, true);
  assert.equal(c.prependPath, true);
  assert.equal(c.includePrefix, true);
  assert.equal(c.keepAliveTimeout, 5000);
  assert.equal(c.logLevel, 'info');
  assert.equal(c.authToken, undefined);
  assert.equal(c.workers, availableParallelism(), 'one data-plane worker per core by default');
  assert.equal(cfg(['--workers', '0']).workers, availableParallelism(), '0: one per core');
  assert.ok(Object.isFrozen(c));
});

test('flag forms and derived values', () => {
  const c = cfg(
    ['--port=9000', '--ip', '*', '--no-x-forward', '--no-prepend-path', '--no-include-prefix', '--custom-header', ' k1 : v1 ',
      '--custom-header', 'k2:v:2', '--metrics-port', '9100', '--log-level', 'DEBUG', '--host-routing'],
    { CONFIGPROXY_AUTH_TOKEN: 'tok' },
  );
  assert.deepEqual(c.proxyListen, { kind: 'tcp', port: 9000, host: undefined });
  assert.deepEqual(c.apiListen, { kind: 'tcp', port: 9001, host: 'localhost' });
  assert.deepEqual(c.metricsListen, { kind: 'tcp', port: 9100, host: undefined });
  assert.equal(c.xForward, false);
  assert.equal(c.prependPath, false);
  assert.equal(c.includePrefix, false);
  assert.deepEqual(c.customHeaders, [['k1', 'v1'], ['k2', 'v:2']]);
  assert.equal(c.logLevel, 'debug');
  assert.equal(c.hostRouting, true);
  assert.equal(c.authToken, 'tok');
});

test('bad configurations are refused with a clear message', () => {
  const cases: { desc: string; argv: string[]; re: RegExp }[] = [
    { desc: 'unknown flag', argv: ['--frobnicate'], re: /unknown option '--frobnicate'/ },
    { desc: 'missing value', argv: ['--port'], re: /argument missing/ },
    { desc: 'non-integer port', argv: ['--port', 'abc'], re: /expects an integer/ },
    { desc: 'port out of range', argv: ['--port', '70000'], re: /port number/ },
    { desc: 'derived API port out of range', argv: ['--port', '65535'], re: /port \+ 1 = 65536/ },
    { desc: 'socket with port', argv: ['--socket', '/tmp/s', '--port', '1'], re: /cannot be used/ },
    { desc: 'error target and path', argv: ['--error-target', 'http://x', '--error-path', '/tmp'], re: /Pick one/ },
    { desc: 'redirect without TLS', argv: ['--redirect-port', '80'], re: /certificates not provided/ },
    { desc: 'header without colon', argv: ['--custom-header', 'novalue'], re: /colon was expected/ },
    { desc: 'header name injection', argv: ['--custom-header', 'a b:c'], re: /not a valid HTTP token/ },
    { desc: 'header value injection', argv: ['--custom-header', 'x:a\r\nEvil: 1'], re: /control characters/ },
    // U+010D and U+010A would be sent as 0x0D and 0x0A (CR, LF) once written as latin1 bytes
    { desc: 'header value beyond latin1', argv: ['--custom-header', 'x: p\u0159e\u010Dt\u010A'], re: /beyond U\+00FF/ },
    { desc: 'bad log level', argv: ['--log-level', 'loud'], re: /--log-level/ },
    { desc: 'bad default target', argv: ['--default-target', 'ftp://x'], re: /--default-target: unsupported target scheme/ },
    { desc: 'unreadable key', argv: ['--ssl-key', '/nonexistent/key.pem'], re: /--ssl-key: cannot read file/ },
    { desc: 'unsupported store', argv: ['--store', 'redis://x'], re: /not supported/ },
    { desc: 'JS storage class', argv: ['--storage-backend', './my-store.js'], re: /JavaScript storage classes are not supported/ },
    { desc: 'bool with a value', argv: ['--insecure=yes'], re: /takes no value/ },
  ];
  for (const c of cases) assert.throws(() => cfg(c.argv), c.re, c.desc);
});

test('--help and --version are flags, not errors', () => {
  assert.equal(parseArgv(['--help']).help, true);
  assert.equal(parseArgv(['-V']).version, true);
});

test('dashboard, access log and per-route metrics flags', () => {
  const d = cfg([]);
  assert.equal(d.dashboard, true, 'the dashboard is on by default (it still needs the API token)');
  assert.equal(d.dashboardIntervalMs, 1000);
  assert.equal(d.accessLog, undefined, 'access log is opt-in');
  assert.equal(d.metricsRouteLabels, false, 'per-route series are opt-in');
  const c = cfg(['--no-dashboard', '--access-log', '-', '--access-log-format', 'combined', '--metrics-route-labels', '--dashboard-interval', '250']);
  assert.equal(c.dashboard, false);
  assert.deepEqual(c.accessLog, { dest: '-', format: 'combined' });
  assert.equal(c.metricsRouteLabels, true);
  assert.equal(c.dashboardIntervalMs, 250);
  assert.deepEqual(cfg(['--access-log', '/var/log/sy.log']).accessLog, { dest: '/var/log/sy.log', format: 'json' });
  assert.throws(() => cfg(['--access-log', '-', '--access-log-format', 'xml']), /json or combined/);
  assert.throws(() => cfg(['--access-log-format', 'json']), /needs --access-log/);
  assert.throws(() => cfg(['--access-log', ' ']), /needs a destination/);
  assert.throws(() => cfg(['--dashboard-interval', '5']), /10\.\.60000/);
  assert.throws(() => cfg(['--dashboard=1']), /unknown option/);
});
