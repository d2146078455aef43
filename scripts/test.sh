#!/usr/bin/env bash
# Runs every test (unit, integration, end-to-end, interop) with ctest against
# a fresh Postgres and Redis of its own, stopped again on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=${BUILD_DIR:-build}
cd "$build_dir"
ctest --output-on-failure ${CTEST_ARGS:-}
