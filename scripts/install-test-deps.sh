#!/usr/bin/env bash
# Installs the Debian packages the test suite runs against (real components, never mocks), when
# missing. Runs before every `npm test` (npm's pretest hook); a no-op once they are there.
#   jupyterhub (with its notebook server and ipykernel): test/e2e/jupyterhub.test.ts
#   etcd-server: the etcd store and high-availability tests (real etcd on loopback ports)
#   openssl: self-signed certificates for the TLS tests
#   pebble: Let's Encrypt's test ACME server and pebble-challtestsrv (test/integration/acme-*.test.ts)
#   chromium: the dashboard's browser tests (test/e2e/dashboard.test.ts, via playwright-core with
#             executablePath /usr/bin/chromium; Playwright's own browser download is not used)
set -euo pipefail
need=()
command -v jupyterhub >/dev/null 2>&1 && command -v jupyterhub-singleuser >/dev/null 2>&1 || need+=(jupyterhub)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v pebble >/dev/null 2>&1 && command -v pebble-challtestsrv >/dev/null 2>&1 || need+=(pebble)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "test dependencies missing: ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
  exit 1
fi
echo "installing test dependencies: ${need[*]}" >&2
log=$(mktemp)
if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"; } >"$log" 2>&1; then
  tail -50 "$log" >&2
  exit 1
fi
