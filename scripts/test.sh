#!/usr/bin/env bash
# Runs every test (unit, integration, end-to-end, interop) with ctest against
# a fresh Postgres and Redis of its own on free ports in a temporary folder,
# migrated with build/bin/cerrojo-migrate, and stopped again on exit whatever
# happened. ctest's summary is the last thing printed.
#
# Exported for the tests: CERROJO_TEST_PG_ADMIN_DSN, CERROJO_TEST_PG_PORT,
# CERROJO_TEST_REDIS_HOST, CERROJO_TEST_REDIS_PORT and CERROJO_VECTORS.
# CTEST_ARGS passes extra arguments to ctest (e.g. "-L unit" or "-R db").
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

build_dir=$(cj_build_dir "$root")
if [[ ! -x $build_dir/bin/cerrojo-migrate ]]; then
    echo "test: $build_dir/bin/cerrojo-migrate is missing; run scripts/build.sh first" >&2
    exit 1
fi

tmp=$(mktemp -d /tmp/cerrojo-test.XXXXXX)
# The postgres user must be able to reach the cluster folder.
chmod 0755 "$tmp"
pg_port=$(cj_free_port)
redis_port=$(cj_free_port)
while [[ $redis_port == "$pg_port" ]]; do
    redis_port=$(cj_free_port)
done

cleanup() {
    cj_stop_stores "$tmp/pg" "$pg_port" "$tmp/redis" "$redis_port"
    rm -rf "$tmp"
}
trap 'rc=$?; cleanup; exit $rc' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export CERROJO_PG_EXTRA_OPTS="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
scripts/pg.sh start "$tmp/pg" "$pg_port"
scripts/redis.sh start "$tmp/redis" "$redis_port"

export CERROJO_TEST_PG_PORT=$pg_port
export CERROJO_TEST_PG_ADMIN_DSN="host=127.0.0.1 port=$pg_port dbname=cerrojo user=postgres"
export CERROJO_TEST_REDIS_HOST=127.0.0.1
export CERROJO_TEST_REDIS_PORT=$redis_port
if [[ -z ${CERROJO_VECTORS:-} ]]; then
    export CERROJO_VECTORS=$root/../shared/vectors
fi

# A developer's .env must not change what the tests see.
if ! migrate_output=$(CERROJO_ENV_FILE=/dev/null CERROJO_PROFILE=dev \
    CERROJO_MIGRATE_DSN=$CERROJO_TEST_PG_ADMIN_DSN \
    CERROJO_MIGRATE_DIR=$root/migrations \
    "$build_dir/bin/cerrojo-migrate" up 2>&1); then
    echo "$migrate_output" >&2
    echo "test: migrations failed" >&2
    exit 1
fi
echo "$migrate_output" | grep -v '"level":"info"' || true

# Bounded fuzzing of the envelope parsers, the JWT verifier and the
# gateway's input parsers runs before ctest, so that ctest's summary stays
# last. It is skipped with a message when clang is absent, and off with
# FUZZ_SECONDS=0.
# The unit tests that check published vectors and print their counts.
VECTOR_TESTS='unit\.test_(aead|hkdf|hmac|hpke|jws|jwt|jwk|ohttp|x25519)$'

fuzz_rc=0
if [[ ${FUZZ_SECONDS:-30} != 0 ]]; then
    "$root/scripts/fuzz.sh" || fuzz_rc=$?
fi

echo "test: Postgres on 127.0.0.1:$pg_port, Redis on 127.0.0.1:$redis_port"
cd "$build_dir"
# ctest hides the output of passing tests, so the published-vector counts
# ("wycheproof aes_gcm: 316 tests, 0 mismatches") are printed here first;
# the full run below repeats these fast tests and ends with the summary.
echo "test: published test vectors from ${CERROJO_VECTORS}"
ctest -R "$VECTOR_TESTS" -V 2>&1 |
    grep -E "mismatch|VECTOR TESTS SKIPPED" | sed 's/^[0-9]*: /  /' || true
ctest_rc=0
ctest --output-on-failure ${CTEST_ARGS:-} || ctest_rc=$?
if ((fuzz_rc != 0)); then
    echo "test: fuzzing failed (exit $fuzz_rc), see its output above" >&2
    exit 1
fi
exit "$ctest_rc"
