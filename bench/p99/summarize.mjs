#!/usr/bin/env node
// Medians per side of bench/p99/probe.mjs's turns.jsonl files (given as arguments), with the tail
// shape (p99 / mean), and p99 ratios to the sides named in RATIO_TO (default "chp nginx").
//   node bench/p99/summarize.mjs bench/reference/p99-20261201/e4/turns.jsonl
import fs from 'node:fs';

const rows = process.argv.slice(2).flatMap((f) => fs.readFileSync(f, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)));
const med = (a) => { const b = [...a].sort((x, y) => x - y); const n = b.length; return n % 2 ? b[(n - 1) / 2] : (b[n / 2 - 1] + b[n / 2]) / 2; };
const sides = [...new Set(rows.map((r) => r.side))];
const m = {};
console.log('| side | turns | req/s | mean ms | p50 | p90 | p99 | p99.9 | max | p99 / mean | p99 / p50 | CPU µs/req |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const s of sides) {
  const my = rows.filter((r) => r.side === s);
  const f = (k) => med(my.map((r) => r[k]));
  m[s] = { p99: f('p99_us'), mean: f('mean_us') };
  const shape = med(my.map((r) => r.p99_us / r.mean_us));
  const shape50 = med(my.map((r) => r.p99_us / r.p50_us));
  console.log(`| ${s} | ${my.length} | ${Math.round(f('rps'))} | ${(f('mean_us') / 1000).toFixed(2)} | ${(f('p50_us') / 1000).toFixed(2)} | ${(f('p90_us') / 1000).toFixed(2)} | ${(f('p99_us') / 1000).toFixed(2)} | ${(f('p999_us') / 1000).toFixed(2)} | ${(f('max_us') / 1000).toFixed(1)} | ${shape.toFixed(2)} | ${shape50.toFixed(2)} | ${f('usPerReq').toFixed(2)} |`);
}
for (const to of (process.env.RATIO_TO ?? 'chp nginx').split(' ').filter((x) => m[x])) {
  console.log(`\np99 / ${to}'s p99 (medians): ` + sides.filter((s) => s !== to).map((s) => `${s} ${(m[s].p99 / m[to].p99).toFixed(2)}`).join(', '));
  // Paired per round: the ratio within each round, then the median.
  const rounds = [...new Set(rows.map((r) => r.round))];
  const paired = sides.filter((s) => s !== to).map((s) => {
    const rs = rounds.map((k) => {
      const a = rows.find((r) => r.side === s && r.round === k); const b = rows.find((r) => r.side === to && r.round === k);
      return a && b ? a.p99_us / b.p99_us : undefined;
    }).filter((x) => x !== undefined);
    return `${s} ${rs.length ? med(rs).toFixed(2) : '-'} [${rs.map((x) => x.toFixed(2)).join(' ')}]`;
  });
  console.log(`  paired by round (median [each]): ${paired.join('; ')}`);
}
