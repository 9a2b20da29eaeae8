#!/usr/bin/env node
// Large-transfer scenario: one download and one upload of --mb MiB through a proxy (or direct),
// while sampling the proxy's RSS (every process in process group --pgid) every 50 ms.
//   node transfer.js --base http://127.0.0.1:18200/user/u1 [--mb 100] [--pgid N]
// The backend (bench/backend.js) answers GET .../bytes/N with N bytes and drains PUT bodies.
// Prints one JSON object: MiB/s each way, and RSS before, peak during and after (KiB) with the
// peak's growth over the start in percent (the issue-4 target: flat within 10%).
'use strict';
const http = require('http');
const { rssKb: procRss } = require('./proc');

function arg(name, def) {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 ? process.argv[i + 1] : def;
}
const base = new URL(arg('base', 'http://127.0.0.1:18001/user/u1'));
const mb = Number(arg('mb', 100));
const pgid = Number(arg('pgid', 0));
const bytes = mb * 1024 * 1024;
const BLOCK = Buffer.alloc(1 << 20, 'u');

const rssKb = () => procRss(pgid);

function sampler() {
  let peak = 0;
  const tick = () => { peak = Math.max(peak, rssKb()); };
  tick();
  const h = setInterval(tick, 50);
  return () => { clearInterval(h); tick(); return peak; };
}

function download() {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.get({ host: base.hostname, port: base.port, path: `${base.pathname}/bytes/${bytes}`, agent: false }, (res) => {
      let n = 0;
      res.on('data', (c) => { n += c.length; });
      res.on('end', () => {
        if (res.statusCode !== 200 || n !== bytes) return reject(new Error(`download: HTTP ${res.statusCode}, ${n} of ${bytes} bytes`));
        resolve(Number(process.hrtime.bigint() - t0) / 1e9);
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(120000, () => req.destroy(new Error('download timed out')));
  });
}

function upload() {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.request({
      host: base.hostname, port: base.port, path: `${base.pathname}/upload`, method: 'PUT', agent: false,
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': bytes },
    }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => {
        if (res.statusCode !== 200 || body.trim() !== `received ${bytes}`) return reject(new Error(`upload: HTTP ${res.statusCode}, ${body.trim()}`));
        resolve(Number(process.hrtime.bigint() - t0) / 1e9);
      });
    });
    req.on('error', reject);
    req.setTimeout(120000, () => req.destroy(new Error('upload timed out')));
    let left = bytes;
    const pump = () => {
      while (left > 0) {
        left -= BLOCK.length;
        if (!req.write(BLOCK) && left > 0) return req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

async function main() {
  const out = { base: base.href, mb, rss_start_kb: rssKb() };
  let stop = sampler();
  const dl = await download();
  out.download = { s: +dl.toFixed(3), mib_per_s: Math.round(mb / dl), rss_peak_kb: stop() };
  stop = sampler();
  const ul = await upload();
  out.upload = { s: +ul.toFixed(3), mib_per_s: Math.round(mb / ul), rss_peak_kb: stop() };
  await new Promise((r) => setTimeout(r, 500));
  out.rss_end_kb = rssKb();
  const peak = Math.max(out.download.rss_peak_kb, out.upload.rss_peak_kb);
  out.rss_growth_pct = out.rss_start_kb ? +((peak / out.rss_start_kb - 1) * 100).toFixed(1) : null;
  process.stdout.write(JSON.stringify(out) + '\n');
}
main().catch((e) => { console.error(e); process.exit(1); });
