#!/usr/bin/env bash
# Configures and builds everything into $BUILD_DIR (default build/).
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=${BUILD_DIR:-build}
build_type=${BUILD_TYPE:-RelWithDebInfo}
sanitize=${SANITIZE:-OFF}
jobs=$(nproc 2>/dev/null || echo 2)

cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" \
    -DCERROJO_SANITIZE="$sanitize" ${CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j "$jobs"
