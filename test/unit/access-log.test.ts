// The access log: both formats, escaping and secret redaction, atomic line pieces, file output.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createAccessLog, formatAccessEntry, redactUrl, type AccessEntry } from '../../src/observability/access-log.js';
import { waitFor } from '../helpers/servers.js';

const entry: AccessEntry = {
  start: Date.UTC(2026, 10, 23, 9, 5, 7, 250),
  remote: '127.0.0.1',
  method: 'GET',
  url: '/user/mary/api?token=abc&x=1',
  httpVersion: '1.1',
  host: 'hub.example',
  status: 200,
  bytes: 1234,
  durationMs: 12.3456,
  route: '/user/mary',
  upstream: 'http://10.0.1.5:12345',
  kind: 'web',
  userAgent: 'curl/8 "quoted"',
  referer: undefined,
};

test('json format: every field, secrets redacted', () => {
  const j = JSON.parse(formatAccessEntry(entry, 'json'));
  assert.deepEqual(j, {
    time: '2026-11-23T09:05:07.250Z',
    kind: 'web',
    remote: '127.0.0.1',
    method: 'GET',
    url: '/user/mary/api?token=[redacted]&x=1',
    protocol: 'HTTP/1.1',
    host: 'hub.example',
    status: 200,
    bytes: 1234,
    duration_ms: 12.346,
    route: '/user/mary',
    upstream: 'http://10.0.1.5:12345',
    user_agent: 'curl/8 "quoted"',
  });
});

test('combined format: CLF fields, then rt/route/upstream; quotes and control bytes escaped', () => {
  const line = formatAccessEntry({ ...entry, url: '/a"b\n\u00e9', route: undefined, upstream: undefined, status: 404 }, 'combined');
  assert.equal(
    line,
    '127.0.0.1 - - [23/Nov/2026:09:05:07 +0000] "GET /a\\x22b\\x0a\\xe9 HTTP/1.1" 404 1234 "-" "curl/8 \\x22quoted\\x22" rt=0.012 route="-" upstream="-" kind=web',
  );
  assert.ok(!line.includes('\n'));
});

test('redaction covers the usual secret parameters and leaves others alone', () => {
  assert.equal(redactUrl('/x?access_token=s3&b=2&_xsrf=q'), '/x?access_token=[redacted]&b=2&_xsrf=[redacted]');
  assert.equal(redactUrl('/x?tokens=keep'), '/x?tokens=keep');
  assert.equal(redactUrl('/plain'), '/plain');
});

test('file destination: lines appended whole, in order, across many batches; close flushes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sy-access-'));
  try {
    const file = join(dir, 'access.log');
    const log = createAccessLog({ dest: file, format: 'json' });
    for (let i = 0; i < 5000; i++) log.log({ ...entry, url: `/r/${i}`, status: 200 + (i % 3) });
    // The rest is logged once the first batch has reached the file: a later batch, not the same one.
    await waitFor(() => existsSync(file) && statSync(file).size > 0, 5000, 'first batch written');
    for (let i = 5000; i < 6000; i++) log.log({ ...entry, url: `/r/${i}` });
    await log.close();
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    assert.equal(lines.length, 6000);
    lines.forEach((l, i) => assert.equal(JSON.parse(l).url, `/r/${i}`));
    assert.equal(log.dropped(), 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unwritable destination is reported once and never throws into the caller', async () => {
  const errors: Error[] = [];
  const log = createAccessLog({ dest: '/nonexistent-dir/x/access.log', format: 'combined', onError: (e) => errors.push(e) });
  for (let i = 0; i < 100; i++) log.log(entry);
  await waitFor(() => errors.length === 1, 5000, 'the failure reported'); // then more lines in the same streak
  for (let i = 0; i < 100; i++) log.log(entry);
  await log.close();
  assert.equal(errors.length, 1, 'one report per failure streak');
  assert.match(errors[0]!.message, /ENOENT/);
});

test('combined format survives any route string: non-latin1 as UTF-8 bytes, lone surrogates too', () => {
  const line = formatAccessEntry({ ...entry, route: '/ü/€/\ud800' }, 'combined');
  assert.ok(line.includes('route="/\\xfc/\\xe2\\x82\\xac/\\xef\\xbf\\xbd"'), line);
  const j = JSON.parse(formatAccessEntry({ ...entry, route: '/\ud800' }, 'json'));
  assert.equal(j.route, '/\ud800');
});

test('combined format: a character outside the BMP is its four UTF-8 bytes', () => {
  assert.ok(formatAccessEntry({ ...entry, route: '/\u{1F600}' }, 'combined').includes('route="/\\xf0\\x9f\\x98\\x80"'));
});
