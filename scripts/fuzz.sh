#!/usr/bin/env bash
# Builds the fuzzers (envelope parsers; JWT verifier and JWK Set parser;
# the gateway's parsers of client input) with clang (libFuzzer, ASan,
# UBSan) into $FUZZ_BUILD_DIR and runs each for FUZZ_SECONDS (default 30,
# at most 60). A crashing input is written to the target's regressions
# folder (tests/fuzz/regressions/, tests/fuzz/regressions-jwt/ or
# tests/fuzz/regressions-gateway/), where its fuzz.*_replay ctest test
# replays it from then on: commit it with the fix. Without clang the step is
# skipped with a message.
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
cmake --build "$build_dir" -j 2 --target fuzz_envelope fuzz_jwt fuzz_gateway \
    >/dev/null

# Runs one fuzzer: name, corpus folder, regressions folder. New corpus
# entries go to the build folder; the checked-in seeds stay as they are.
run_fuzzer() {
    local name=$1 corpus=$2 regressions=$3
    local work_corpus="$build_dir/fuzz-corpus-$name"
    local log="$build_dir/fuzz-$name.log"

    mkdir -p "$work_corpus" "$regressions"
    echo "fuzz: $name for ${seconds} s"
    if ! "$build_dir/bin/fuzz_$name" -max_total_time="$seconds" \
        -max_len=65536 -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
        -artifact_prefix="$regressions/" \
        "$work_corpus" "$corpus" 2>"$log"; then
        tail -n 40 "$log" >&2
        echo "fuzz: $name FAILED, the crashing input is in $regressions/;" \
            "fix the bug and commit the input as a regression test" >&2
        return 1
    fi
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$log" ||
        true
    echo "fuzz: $name, no crash"
}

rc=0
run_fuzzer envelope tests/fuzz/corpus tests/fuzz/regressions || rc=1
run_fuzzer jwt tests/fuzz/corpus-jwt tests/fuzz/regressions-jwt || rc=1
run_fuzzer gateway tests/fuzz/corpus-gateway tests/fuzz/regressions-gateway ||
    rc=1
exit "$rc"
