// docs/jupyterhub.md: every code block is either one of docs/examples/jupyterhub/* (byte for byte,
// so the guide shows what the tests run) or a command whose comment names the test that runs it;
// every Switchyard config file in the guide passes `switchyard check-config` (the real CLI).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MAIN } from '../helpers/servers.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

interface Block {
  marker: string;
  body: string;
}

function blocks(md: string): Block[] {
  const out: Block[] = [];
  const re = /(?:^|\n)([^\n]*)\n```[a-z]*\n([\s\S]*?)\n```/g;
  for (let m = re.exec(md); m !== null; m = re.exec(md)) out.push({ marker: m[1]!.trim(), body: m[2]! });
  return out;
}

test('docs/jupyterhub.md: each block is an example file or names the test that runs it; its config files pass check-config', () => {
  const md = readFileSync(`${ROOT}docs/jupyterhub.md`, 'utf8');
  const all = blocks(md);
  assert.ok(all.length >= 10, `${all.length} blocks`);
  const files: string[] = [];
  for (const b of all) {
    assert.match(b.marker, /^<!-- .* -->$/, `a block without its marker comment:\n${b.body.slice(0, 200)}`);
    const file = /file: (\S+?);/.exec(b.marker)?.[1];
    if (file !== undefined) {
      assert.equal(b.body, readFileSync(ROOT + file, 'utf8').replace(/\n$/, ''), `${file} as shown in the guide`);
      files.push(file);
    }
    for (const t of b.marker.match(/test\/[\w/.-]+\.ts/g) ?? []) assert.ok(existsSync(ROOT + t), `${t} (named in the guide) exists`);
    if (b.marker !== '<!-- diagram -->') assert.ok(file !== undefined || /test\//.test(b.marker), `block names its file or test: ${b.marker}`);
  }
  assert.deepEqual(files.sort(), [
    'docs/examples/jupyterhub/jupyterhub_config.py',
    'docs/examples/jupyterhub/jupyterhub_config_activity.py',
    'docs/examples/jupyterhub/jupyterhub_config_ha.py',
    'docs/examples/jupyterhub/jupyterhub_config_tls.py',
    'docs/examples/jupyterhub/switchyard-ha.toml',
    'docs/examples/jupyterhub/switchyard.toml',
  ]);
  // `switchyard check-config --config FILE`, as the guide says to run it.
  assert.ok(all.some((b) => b.body === 'switchyard check-config --config /etc/switchyard/switchyard.toml'));
  for (const f of files.filter((x) => x.endsWith('.toml'))) {
    const r = spawnSync(process.execPath, [MAIN, 'check-config', '--config', ROOT + f], { encoding: 'utf8', env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: 'x' } });
    assert.equal(r.status, 0, `${f}: ${r.stderr}`);
    assert.match(r.stderr, /configuration is valid/);
  }
});
