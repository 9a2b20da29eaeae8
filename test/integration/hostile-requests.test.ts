// Hostile requests against a spawned Switchyard, as raw bytes, under `--workers 1` (proxy in the
// main process) and the default workers. The corpus (test/helpers/hostile-corpus.ts) names the RFC
// 9110/9112 rule of each case. For every case: exactly the expected responses, each completely
// framed and nothing after them (or a clean close); a refusal closes the connection; the recording
// upstreams got exactly the listed requests (request line, header lines, body bytes); and a request
// on another connection to a healthy route still works. Each refusal counts once in
// switchyard_bad_requests_total.

import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { request, startBackend, startSwitchyardProcess, waitFor, type SpawnedSwitchyard } from '../helpers/servers.js';
import { exchange, headerLines, startRecorder, type RecordedRequest, type Recorder } from '../helpers/raw-http.js';
import { tables, type CaseTable, type HostileCase, type UpstreamExpectation } from '../helpers/hostile-corpus.js';

function checkUpstream(c: HostileCase, got: RecordedRequest[], garbage: string[]): void {
  const what = `${c.desc}\n  sent ${JSON.stringify(c.send.slice(0, 300))}`;
  assert.deepEqual(garbage, [], `${what}\n  the upstream received bytes that are not a well-framed request`);
  assert.deepEqual(
    got.map((r) => `${r.to} ${r.line}`),
    c.upstream.map((e) => `${e.to} ${e.line}`),
    `${what}\n  upstream requests`,
  );
  c.upstream.forEach((e: UpstreamExpectation, i) => {
    const r = got[i]!;
    for (const line of e.has ?? []) {
      const name = line.slice(0, line.indexOf(':'));
      assert.deepEqual(headerLines(r.headers, name), [line], `${what}\n  upstream header ${name} (got ${JSON.stringify(r.headers)})`);
    }
    for (const name of e.lacks ?? []) {
      assert.deepEqual(headerLines(r.headers, name), [], `${what}\n  upstream must not get ${name}`);
    }
    if (e.body !== undefined) assert.equal(r.body.toString('latin1'), e.body, `${what}\n  upstream body`);
    for (const s of e.framedLacks ?? []) {
      assert.ok(!r.framedBody.toString('latin1').includes(s), `${what}\n  framed body must not contain ${s}: ${JSON.stringify(r.framedBody.toString('latin1'))}`);
    }
  });
}

async function runTable(t: TestContext, table: CaseTable, workers: string[]): Promise<void> {
  const log: RecordedRequest[] = [];
  const garbage: string[] = [];
  const recorders = new Map<string, Recorder>();
  for (const name of new Set(Object.values(table.routes))) recorders.set(name, await startRecorder(t, name, log, garbage));
  const healthy = await startBackend(t, 'healthy');
  const flags = [...workers, ...table.flags, '--metrics-port', '0', '--metrics-ip', '127.0.0.1'];
  if (table.routes[''] !== undefined) flags.push('--default-target', recorders.get(table.routes['']!)!.url);
  const sy = await startSwitchyardProcess(t, flags);
  const metricsPort = sy.metricsPort!;
  for (const [path, name] of Object.entries(table.routes)) {
    if (path === '') continue;
    const r = await sy.api('POST', `/api/routes${path}`, { target: recorders.get(name)!.url });
    assert.equal(r.status, 201, `route ${path}`);
  }
  const healthyPath = table.flags.includes('--host-routing') ? '/127.0.0.1' : '/healthy';
  assert.equal((await sy.api('POST', `/api/routes${healthyPath}`, { target: healthy.url })).status, 201);

  for (const c of table.cases) {
    // One subtest per case, so that every failing case is reported, not only the first.
    await t.test(c.desc, async () => {
      await runCase(sy, table, workers, c, log, garbage);
    });
  }
  assert.doesNotMatch(sy.output(), /internal error|uncaught|TypeError/i, 'no internal errors logged');
  // Every refusal is counted once in switchyard_bad_requests_total (summed over workers).
  const refusals = table.cases.flatMap((c) => c.responses).filter((s) => REFUSAL.has(s)).length;
  const metrics = (await request(`http://127.0.0.1:${metricsPort}/metrics`)).body;
  assert.match(metrics, new RegExp(`^switchyard_bad_requests_total ${refusals}$`, 'm'), 'one count per refusal');
}

const REFUSAL = new Set([400, 408, 413, 414, 431, 501, 505]);

async function runCase(sy: SpawnedSwitchyard, table: CaseTable, workers: string[], c: HostileCase, log: RecordedRequest[], garbage: string[]): Promise<void> {
  {
    log.length = 0;
    garbage.length = 0;
    const what = `${table.name} ${workers.join(' ') || 'default workers'}: ${c.desc}\n  sent ${JSON.stringify(c.send.slice(0, 300))}`;
    const ex = await exchange(sy.proxyPort, c.send, { expected: c.responses.length, halfClose: c.halfClose });
    const got = `\n  got ${JSON.stringify(ex.raw.slice(0, 600))}`;
    assert.deepEqual(
      ex.responses.map((r) => r.status),
      c.responses,
      what + got,
    );
    assert.equal(ex.leftover, '', `${what}\n  bytes after the last complete response${got}`);
    const last = ex.responses.at(-1);
    if (last === undefined || last.status >= 400) {
      assert.ok(ex.closedByServer, `${what}\n  the connection is closed after a refusal${got}`);
      if (last !== undefined) assert.deepEqual(headerLines(last.headers, 'connection'), ['connection: close'], `${what}\n  refusal says Connection: close${got}`);
    }
    // Another connection to a healthy route still works (and, once it has, nothing else is in flight upstream).
    const ok = await request(`${sy.proxyUrl}/healthy`);
    assert.equal(ok.status, 200, `${what}\n  healthy route afterwards`);
    checkUpstream(c, log.slice(), garbage.slice());
  }
}

// Both data-plane paths: the fast path (the default) and node:http alone (--no-fast-path).
for (const workers of [['--workers', '1'], [], ['--workers', '1', '--no-fast-path'], ['--no-fast-path']]) {
  for (const table of tables) {
    test(`hostile requests (${table.name}) with ${workers.length ? workers.join(' ') : 'the default workers'}`, async (t) => {
      await runTable(t, table, workers);
    });
  }
}

// The statuses the proxy produces itself for CONNECT, an unsupported major version and an
// oversized request target: counted under their codes (switchyard_requests_total) and as refusals,
// logged once (debug) and access-logged once each, on both paths.
for (const workers of [['--workers', '1'], [], ['--workers', '1', '--no-fast-path'], ['--no-fast-path']]) {
  test(`CONNECT 501, HTTP/3.0 505, long target 414: counted, logged and access-logged once (${workers.join(' ') || 'default workers'})`, async (t) => {
    const sy = await startSwitchyardProcess(t, [...workers, '--log-level', 'debug', '--access-log', '-', '--metrics-port', '0', '--metrics-ip', '127.0.0.1']);
    const metricsPort = sy.metricsPort!;
    const sends: [string, number][] = [
      ['CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n', 501],
      ['GET /x HTTP/3.0\r\nHost: a.example\r\n\r\n', 505],
      [`GET /${'p'.repeat(17000)} HTTP/1.1\r\nHost: a.example\r\n\r\n`, 414],
    ];
    for (const [bytes, status] of sends) {
      const ex = await exchange(sy.proxyPort, bytes, { expected: 1 });
      assert.deepEqual(ex.responses.map((r) => r.status), [status], JSON.stringify(ex.raw));
      assert.ok(ex.closedByServer);
    }
    const connect = exchangeBody(await exchange(sy.proxyPort, sends[0]![0], { expected: 1 }));
    assert.equal(connect, 'Not Implemented: CONNECT not implemented (this proxy opens no tunnels)\n');
    await waitFor(async () => {
      const m = (await request(`http://127.0.0.1:${metricsPort}/metrics`)).body;
      return (
        /^switchyard_requests_total\{kind="web",code="501"\} 2$/m.test(m) &&
        /^switchyard_requests_total\{kind="web",code="505"\} 1$/m.test(m) &&
        /^switchyard_requests_total\{kind="web",code="414"\} 1$/m.test(m) &&
        /^switchyard_bad_requests_total 4$/m.test(m)
      );
    }, 10_000, 'the refusals counted under their codes');
    // Worker processes' lines reach the output in any order: wait for all of them, then count.
    const lines: [RegExp, number][] = [
      [/501 CONNECT refused: CONNECT not implemented/g, 2],
      [/505 refused by the HTTP parser: HPE_INVALID_VERSION/g, 1],
      [/414 refused by the HTTP parser: HPE_HEADER_OVERFLOW/g, 1],
      [/"method":"CONNECT","url":"a\.example:443".*?"status":501/g, 2],
      [/"status":505/g, 1],
      [/"status":414/g, 1],
    ];
    await waitFor(() => lines.every(([re, n]) => (sy.output().match(re)?.length ?? 0) >= n), 10_000, 'the log and access-log lines');
    const out = sy.output();
    for (const [re, n] of lines) assert.equal(out.match(re)?.length, n, `${re}\n${out}`);
  });
}

function exchangeBody(ex: { responses: { body: Buffer }[] }): string {
  return ex.responses[0]!.body.toString('latin1');
}
