#!/usr/bin/env bash
# Builds the envelope-parser fuzzer with clang (libFuzzer, ASan, UBSan) into
# $FUZZ_BUILD_DIR and runs it for FUZZ_SECONDS (default 30, at most 60).
# A crashing input is written to tests/fuzz/regressions/, where the
# fuzz.envelope_replay ctest test replays it from then on: commit it with
# the fix. Without clang the step is skipped, and says so.
set -euo pipefail
cd "$(dirname "$0")/.."

max_seconds=60
seconds=${FUZZ_SECONDS:-30}
if ((seconds > max_seconds)); then
    seconds=$max_seconds
fi
build_dir=${FUZZ_BUILD_DIR:-build-fuzz}

if ! command -v clang >/dev/null 2>&1; then
    echo "fuzz: SKIPPED, clang is not installed (make deps installs it)"
    exit 0
fi

flags="-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer"
flags+=" -fno-sanitize-recover=undefined -g"
cmake -S . -B "$build_dir" -DCMAKE_C_COMPILER=clang -DCERROJO_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
cmake --build "$build_dir" -j 2 --target fuzz_envelope >/dev/null

# New corpus entries go to the build folder; the checked-in seeds stay as
# they are.
work_corpus="$build_dir/fuzz-corpus"
mkdir -p "$work_corpus" tests/fuzz/regressions
echo "fuzz: envelope parsers for ${seconds} s"
if ! "$build_dir/bin/fuzz_envelope" -max_total_time="$seconds" \
    -max_len=65536 -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
    -artifact_prefix=tests/fuzz/regressions/ \
    "$work_corpus" tests/fuzz/corpus 2>"$build_dir/fuzz.log"; then
    tail -n 40 "$build_dir/fuzz.log" >&2
    echo "fuzz: FAILED, the crashing input is in tests/fuzz/regressions/;" \
        "fix the bug and commit the input as a regression test" >&2
    exit 1
fi
grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" \
    "$build_dir/fuzz.log" || true
echo "fuzz: no crash"
