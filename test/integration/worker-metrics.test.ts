// /metrics with data-plane workers: counters and histograms summed over the workers never go
// down (Prometheus reads a drop as a counter reset and rate() jumps). A worker that does not
// answer the scrape in time counts with its last answer; a worker that died keeps its last
// totals in every later scrape. Over spawned processes, in both worker modes.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { WORKER_MODES, request, startSwitchyardProcess, waitFor, type SpawnedSwitchyard } from '../helpers/servers.js';

/** The sum over every series of `name` in a /metrics body. */
function total(body: string, name: string): number {
  let sum = 0;
  for (const m of body.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'gm'))) sum += Number(m[1]);
  return sum;
}

async function counts(p: SpawnedSwitchyard): Promise<{ requests: number; durations: number }> {
  const body = (await request(`${p.metricsUrl!}/metrics`)).body;
  return { requests: total(body, 'switchyard_requests_total'), durations: total(body, 'switchyard_request_duration_seconds_count') };
}

for (const mode of WORKER_MODES) {
  test(`/metrics summed over worker ${mode} never goes down: a stalled worker counts with its last answer, a dead one with its last totals`, { timeout: 120_000 }, async (t) => {
    const p = await startSwitchyardProcess(
      t,
      ['--workers', '2', '--worker-mode', mode, '--metrics-port', '0', '--metrics-ip', '127.0.0.1', '--log-level', 'debug'],
      { SWITCHYARD_TEST_HOOKS: '1' },
    );
    // 404s, each on a new connection, until both workers served some (each 404 is logged with its worker).
    let sent = 0;
    const servedBy = (): Set<string> => new Set([...p.output().matchAll(/404 GET \/m\/\d+ worker=("[^"]*"|\S+)/g)].map((m) => m[1]!));
    await waitFor(
      async () => {
        for (let i = 0; i < 10; i++) assert.equal((await request(`http://127.0.0.1:${p.proxyPort}/m/${sent++}`)).status, 404);
        return servedBy().size === 2;
      },
      30_000,
      'requests served by both workers',
    );
    await waitFor(async () => (await counts(p)).requests === sent, 10_000, `${sent} requests counted`);
    assert.deepEqual(await counts(p), { requests: sent, durations: sent });

    if (mode === 'processes') {
      // A worker that does not answer within the scrape's 1 s wait: its last answer still counts.
      const children = execFileSync('pgrep', ['-P', String(p.pid)], { encoding: 'utf8' }).trim().split('\n').map(Number);
      assert.equal(children.length, 2, `two worker processes: ${children.join(' ')}`);
      process.kill(children[0]!, 'SIGSTOP');
      try {
        assert.deepEqual(await counts(p), { requests: sent, durations: sent }, 'a stopped worker still counted');
      } finally {
        process.kill(children[0]!, 'SIGCONT');
      }
    }

    // The oldest worker dies (test hook) and is replaced: what it counted stays in the sums.
    process.kill(p.pid, 'SIGUSR2');
    const exits = (): number => [...p.output().matchAll(/data-plane worker [^\n]* exited \([^\n]*; starting a new one/g)].length;
    await waitFor(() => exits() === 1, 10_000, 'the worker exit line');
    await waitFor(async () => (await p.api('GET', '/api/health')).status === 200, 20_000, 'the replacement listening');
    assert.deepEqual(await counts(p), { requests: sent, durations: sent }, 'the dead worker still counted after its replacement');
    // New traffic adds to them, on the survivor and the replacement alike.
    for (let i = 0; i < 10; i++) assert.equal((await request(`http://127.0.0.1:${p.proxyPort}/m/${sent++}`)).status, 404);
    await waitFor(async () => (await counts(p)).requests === sent, 10_000, `${sent} requests counted after the replacement`);
    // A second death: the kept totals of the first are not counted twice.
    process.kill(p.pid, 'SIGUSR2');
    await waitFor(() => exits() === 2, 10_000, 'the second worker exit');
    await waitFor(async () => (await p.api('GET', '/api/health')).status === 200, 20_000, 'the second replacement listening');
    assert.deepEqual(await counts(p), { requests: sent, durations: sent });
  });
}
