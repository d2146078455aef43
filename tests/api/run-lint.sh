#!/usr/bin/env bash
# Lints docs/api/openapi.json with the Redocly CLI pinned in package-lock.json
# and the rules in redocly.yaml. Runs `npm ci` first when node_modules is
# missing or older than the lock file. Without Node and npm it exits 77 (skipped), or fails under
# CI=true.
set -euo pipefail
cd "$(dirname "$0")"
for tool in node npm; do
    if ! command -v "$tool" >/dev/null; then
        if [[ ${CI:-} == true ]]; then
            echo "api lint: $tool is not installed; failing because CI=true" >&2
            exit 1
        fi
        echo "api lint: skipped: $tool is not installed"
        exit 77
    fi
done
if [[ ! -f node_modules/.package-lock.json ||
      package-lock.json -nt node_modules/.package-lock.json ]]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
# No usage reports or update checks from a test run.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
exec npx --no-install redocly lint --config redocly.yaml ../../docs/api/openapi.json
