// Bodies are streamed, never buffered: a 1 GB upload and a 1 GB download through the real
// process leave its peak RSS (VmHWM) flat.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { test } from 'node:test';
import { listen0, writeBlocks, request, startSwitchyardProcess } from '../helpers/servers.js';

const GB = 1024 * 1024 * 1024;

function memKb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN);
}

test('1 GB upload and 1 GB download with flat proxy memory', { timeout: 240_000 }, async (t) => {
  const block = Buffer.alloc(1024 * 1024, 0x5a);
  const sink = http.createServer((req, res) => {
    if (req.url === '/big/down') {
      res.writeHead(200, { 'content-length': String(GB) });
      writeBlocks(res, block, 1024);
      return;
    }
    let len = 0;
    req.on('data', (c: Buffer) => (len += c.length));
    req.on('end', () => res.end(String(len)));
  });
  const sinkPort = await listen0(sink);
  t.after(() => new Promise((r) => sink.close(r)));
  // One process (--workers 1), so the RSS we read is the data plane's.
  const p = await startSwitchyardProcess(t, ['--workers', '1', '--default-target', `http://127.0.0.1:${sinkPort}`]);
  const port = p.proxyPort;
  // Warm up the code paths, then take the baseline.
  for (let i = 0; i < 20; i++) await request(`http://127.0.0.1:${port}/warm`, { method: 'POST', body: Buffer.alloc(256 * 1024) });
  const pid = p.pid;
  const base = memKb(pid, 'VmHWM');

  const uploaded = await new Promise<string>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: '/big/up', method: 'POST', headers: { 'content-length': String(GB) } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    let sent = 0;
    const pump = (): void => {
      while (sent < GB) {
        sent += block.length;
        if (!req.write(block)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
  assert.equal(uploaded, String(GB));
  const afterUp = memKb(pid, 'VmHWM');

  const downloaded = await new Promise<number>((resolve, reject) =>
    http
      .get({ host: '127.0.0.1', port, path: '/big/down' }, (res) => {
        let n = 0;
        res.on('data', (c: Buffer) => (n += c.length));
        res.on('end', () => resolve(n));
      })
      .on('error', reject),
  );
  assert.equal(downloaded, GB);
  const afterDown = memKb(pid, 'VmHWM');
  const growthMb = (afterDown - base) / 1024;
  process.stderr.write(`# peak RSS: baseline ${(base / 1024).toFixed(0)} MB, after 1 GB up ${(afterUp / 1024).toFixed(0)} MB, after 1 GB down ${(afterDown / 1024).toFixed(0)} MB\n`);
  assert.ok(growthMb < 64, `peak RSS grew by ${growthMb.toFixed(1)} MB across 2 GB of transfer`);
});
