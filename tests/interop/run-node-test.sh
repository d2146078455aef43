#!/usr/bin/env bash
# Runs one Node test file of tests/interop, installing the pinned npm
# packages from package-lock.json first when node_modules is missing or
# older than the lock file (npm ci records what it installed in
# node_modules/.package-lock.json).
set -euo pipefail
cd "$(dirname "$0")"
if [[ ! -f node_modules/.package-lock.json ||
      package-lock.json -nt node_modules/.package-lock.json ]]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
exec node --test "$@"
