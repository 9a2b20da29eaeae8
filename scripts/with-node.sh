#!/usr/bin/env bash
# Runs a command with another major version of Node.js first on PATH (and so under npm too):
#   bash scripts/with-node.sh 22 npm test
# The binary comes from the npm registry's `node` package (it ships the official binaries), cached
# in .tmp/node-<major>/ — no other download. CI uses it to run the test command on Node 22 and 24.
set -euo pipefail
major="$1"; shift
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/.tmp/node-$major"
if [ ! -x "$dir/node_modules/.bin/node" ]; then
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error "node@$major" >&2
fi
export PATH="$dir/node_modules/.bin:$PATH"
got="$(node --version)"
case "$got" in
  "v$major".*) ;;
  *) echo "with-node: wanted Node $major, got $got" >&2; exit 1 ;;
esac
echo "== node $got" >&2
exec "$@"
