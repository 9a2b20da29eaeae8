#!/usr/bin/env bash
# The fast parser's differential fuzz (test/unit/fast-parser.test.ts) for longer than CI's 20 s.
# Usage: bench/fuzz-parser.sh [seconds]   (default 300). Build first: npx tsc -p tsconfig.json
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-300}"
FUZZ_MS=$((secs * 1000)) node --test --test-timeout=$(((secs + 120) * 1000)) --test-reporter=spec dist/test/unit/fast-parser.test.js
