// Sample values for every setting of the schema, for tests that drive the loader from it
// (test/unit/config-load.test.ts, test/integration/config-cli.test.ts).

import { envName, type Setting, type SettingValue } from '../../src/config/schema.js';

/** Not a real certificate: settings that name a CA bundle only need PEM-shaped text while loading. */
export const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

/** Settings whose value names a file read while loading (keys, certificates). */
export const READS_FILE = new Set(['ssl-key', 'ssl-cert', 'ssl-ca', 'ssl-dhparam', 'client-ssl-key', 'client-ssl-cert', 'client-ssl-ca',
  'api-ssl-key', 'api-ssl-cert', 'api-ssl-ca', 'etcd-ca', 'etcd-cert', 'etcd-key', 'xds-ssl-key', 'xds-ssl-cert', 'xds-ssl-client-ca', 'acme-directory-ca']);

/** Three valid values per setting (flag, env, file levels), each different from the next. */
export function samples(s: Setting, files: string[]): [SettingValue, SettingValue, SettingValue] {
  const special: Record<string, [SettingValue, SettingValue, SettingValue]> = {
    'default-target': ['http://a:1', 'http://b:2', 'http://c:3'],
    'error-target': ['http://a:1', 'http://b:2', 'http://c:3'],
    store: ['memory', 'file:/x/routes.toml', 'etcd://h:2379'],
    'storage-backend': ['memory', 'file:/x/routes.toml', 'etcd://h:2379'],
    'log-level': ['debug', 'warn', 'error'],
    'log-format': ['json', 'text', 'json'],
    'access-log-format': ['combined', 'json', 'combined'],
    // (threads would be refused where unsupported, e.g. Node 20: the CLI must pass on every Node)
    'worker-mode': ['processes', 'auto', 'processes'],
    'custom-header': [['X-A: 1'], ['X-B: 2', 'X-C: 3'], ['X-D: 4']],
    'dashboard.users': [['a:h1'], ['b:h2', 'c:h3'], ['d:h4']],
    'acme-domain': [['a.test'], ['b.test', 'c.test'], ['d.test']],
    'acme-email': ['a@x.test', 'b@x.test', 'c@x.test'],
    'acme-directory': ['https://a.test/dir', 'https://b.test/dir', 'https://c.test/dir'],
    'acme-challenge': ['tls-alpn-01', 'http-01', 'tls-alpn-01'],
    'acme-ask': ['http://a.test/ask', 'http://b.test/ask', 'http://c.test/ask'],
    'acme-check-interval': [1000, 2000, 3000],
  };
  if (special[s.name]) return special[s.name]!;
  if (READS_FILE.has(s.name)) return [files[0]!, files[1]!, files[2]!];
  if (s.type === 'bool') return s.flag === 'negated' ? [false, true, false] : [true, false, true];
  if (s.type === 'int') return [11, 12, 13];
  if (s.type === 'list') return [['a'], ['b', 'c'], ['d']];
  return ['a', 'b', 'c'];
}

/** Settings that cannot be set alone (rules across settings): given at the file level with them. */
export function companions(name: string, files: string[]): Record<string, SettingValue> {
  const f = files[0]!;
  const map: Record<string, Record<string, SettingValue>> = {
    'redirect-port': { 'ssl-cert': f },
    'access-log-format': { 'access-log': '-' },
    'etcd-username': { 'etcd-password': 'pw' },
    'etcd-cert': { 'etcd-key': f },
    'etcd-key': { 'etcd-cert': f },
    'xds-ssl-key': { 'xds-ssl-cert': f },
    'xds-ssl-cert': { 'xds-ssl-key': f },
    'xds-ssl-client-ca': { 'xds-ssl-key': f, 'xds-ssl-cert': f },
    'envoy-xds-cert': { 'envoy-xds-key': 'k', 'envoy-xds-ca': 'c' },
    'envoy-xds-key': { 'envoy-xds-cert': 'c', 'envoy-xds-ca': 'c' },
    'acme-eab-kid': { 'acme-domain': ['x.test'], 'acme-eab-hmac': 'h' },
  };
  // Every other acme-* setting needs a name to manage (ACME is on once any acme-* is given).
  if (map[name] === undefined && name.startsWith('acme-') && name !== 'acme-domain' && name !== 'acme-on-demand') return { 'acme-domain': ['x.test'] };
  return map[name] ?? {};
}

export function argvFor(s: Setting, v: SettingValue): string[] {
  if (s.flag === 'switch') return v === true ? [`--${s.name}`] : [];
  if (s.flag === 'negated') return v === false ? [`--no-${s.name}`] : [];
  if (Array.isArray(v)) return v.flatMap((x) => [`--${s.name}`, x]);
  return [`--${s.name}`, String(v)];
}

export function envFor(s: Setting, v: SettingValue): Record<string, string> {
  return { [envName(s.name)]: Array.isArray(v) ? v.join('\n') : String(v) };
}

export function toml(entries: Record<string, SettingValue>): string {
  // TOML cannot hold `dashboard = false` beside `dashboard.users`: then the switch is dashboard.enabled.
  const hasTable = Object.keys(entries).some((k) => k.startsWith('dashboard.'));
  return Object.entries(entries).map(([k, v]) => `${k === 'dashboard' && hasTable ? 'dashboard.enabled' : k} = ${JSON.stringify(v)}`).join('\n') + '\n';
}
