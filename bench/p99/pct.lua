-- wrk script for bench/p99/probe.mjs: one machine-readable line with more percentiles than --latency.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "P99RESULT requests=%d rps=%.1f mean_us=%.1f p50_us=%d p75_us=%d p90_us=%d p95_us=%d p99_us=%d p995_us=%d p999_us=%d max_us=%d errors=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6), latency.mean,
    latency:percentile(50), latency:percentile(75), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency:percentile(99.5), latency:percentile(99.9), latency.max,
    e.connect + e.read + e.write + e.status + e.timeout))
end
