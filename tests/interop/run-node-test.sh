#!/usr/bin/env bash
# Runs one Node test file of tests/interop, installing the pinned npm
# packages from package-lock.json first when node_modules is missing.
set -euo pipefail
cd "$(dirname "$0")"
if [[ ! -d node_modules ]]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
exec node --test "$@"
