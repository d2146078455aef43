#!/usr/bin/env bash
# Installs the pinned schema package (npm ci, only when package-lock.json
# changed since the last install) and validates deploy/k8s with
# k8s_validate.mjs. Needs node, npm and kubectl (for kustomize).
#
# Usage: k8s_check.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
source_dir=$1
here=$source_dir/tests/deploy
# Seconds npm ci gets to install from the registry.
NPM_TIMEOUT_S=240

for tool in node npm kubectl; do
    if ! command -v "$tool" >/dev/null; then
        echo "k8s: $tool not found; run scripts/deps.sh" >&2
        exit 1
    fi
done

stamp=$here/node_modules/.cerrojo-lock.sha256
want=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
    echo "k8s: npm ci in $here"
    (cd "$here" && timeout "$NPM_TIMEOUT_S" npm ci --no-audit --no-fund --loglevel=error) || {
        echo "k8s: npm ci failed or timed out after ${NPM_TIMEOUT_S}s" >&2
        exit 1
    }
    echo "$want" >"$stamp"
fi
exec node "$here/k8s_validate.mjs" "$source_dir" "$2"
