#!/usr/bin/env bash
# Runs one Node test file of tests/interop, installing the pinned npm
# packages from package-lock.json first when node_modules is missing or
# older than the lock file (npm ci records what it installed in
# node_modules/.package-lock.json).
# Without Node and npm it exits 77 (skipped), or fails under CI=true.
set -euo pipefail
cd "$(dirname "$0")"
for tool in node npm; do
    if ! command -v "$tool" >/dev/null; then
        if [[ ${CI:-} == true ]]; then
            echo "interop: $tool is not installed; failing because CI=true" >&2
            exit 1
        fi
        echo "interop: skipped: $tool is not installed"
        exit 77
    fi
done
if [[ ! -f node_modules/.package-lock.json ||
      package-lock.json -nt node_modules/.package-lock.json ]]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
exec node --test "$@"
