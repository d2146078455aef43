#!/usr/bin/env bash
# Runs each service under faketime and checks its clock check against the
# store it uses (kms and auth: Postgres; session and the gateway: Redis).
# At a 3 s offset: the offset in its metric, a warning in its log, still
# ready. At 10 s, above a bound of 5 s: not ready (gRPC health NOT_SERVING;
# the gateway's /readyz shows Redis as "clock_skew"). With the real clock:
# ready, offset under a second, no warning.
#
# Usage: clock_check.sh SOURCE_DIR BUILD_DIR
# Starts its own Postgres and Redis (tests/deploy/stack_lib.sh).
set -euo pipefail
STACK_SOURCE=$1
STACK_BIN=$2/bin
STACK_WORK=$(mktemp -d /tmp/cerrojo-clock.XXXXXX)
source "$STACK_SOURCE/tests/deploy/stack_lib.sh"
# shellcheck source=tests/deploy/closed_port.sh
source "$STACK_SOURCE/tests/deploy/closed_port.sh"
# Seconds a service gets to publish its first offset after start.
START_TIMEOUT_S=30
pid=
stop_service() {
    if [[ -n $pid ]]; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        pid=
    fi
}
trap 'rc=$?; stop_service; closed_port_release; stack_stop_all; rm -rf "$STACK_WORK"; exit $rc' EXIT
# The library is preloaded directly rather than through the faketime
# wrapper: the wrapper keeps a named semaphore and a shared-memory file per
# process id in /dev/shm, which a killed service leaves behind, and a later
# process that gets the same id then fails with "sem_open: File exists".
faketime_lib=
for candidate in /usr/lib/*/faketime/libfaketime.so.1; do
    [[ -f $candidate ]] && faketime_lib=$candidate
done
[[ -n $faketime_lib ]] || {
    echo "clock: libfaketime not found; run scripts/deps.sh" >&2
    exit 1
}

# Each service names its bound, metric and log event its own way.
declare -A BOUND=(
    [kms]=CERROJO_CLOCK_MAX_OFFSET=5 [session]=CERROJO_CLOCK_MAX_OFFSET=5
    [auth]=CERROJO_AUTH_CLOCK_MAX_OFFSET=5
    [gateway]=CERROJO_GATEWAY_REDIS_CLOCK_OFFSET_MAX_MS=5000
)
declare -A METRIC=(
    [kms]=cerrojo_kms_clock_offset_seconds
    [session]=cerrojo_session_clock_offset_seconds
    [auth]=auth_clock_offset_seconds
    [gateway]=cerrojo_gateway_redis_clock_offset_seconds
)
declare -A EVENT=(
    [kms]=kms.clock_offset [session]=session.clock_offset
    [auth]=auth.clock_offset [gateway]=gateway.redis_clock_offset
)

failures=0
check() { # description, then the command
    local what=$1
    shift
    if "$@"; then
        echo "clock: ok   $what"
    else
        echo "clock: FAIL $what" >&2
        failures=$((failures + 1))
    fi
}

metric() { # url, name
    curl -fsS --max-time 3 "$1" 2>/dev/null | awk -v name="$2" '$1 == name { print $2 }'
}
between() { # value, low, high
    [[ -n $1 ]] && awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v >= lo && v <= hi) }'
}
# Ready: gRPC health SERVING, or for the gateway Redis "up" in /readyz.
readiness() { # service, port, env file
    if [[ $1 == gateway ]]; then
        curl -sS --max-time 3 "http://127.0.0.1:$2/readyz" | python3 -c \
            'import json, sys; print("ready" if json.load(sys.stdin)["dependencies"]["redis"] == "up" else "not_ready")'
    elif (set -a && source "$3" && "$STACK_BIN/cerrojo-$1" healthcheck) >/dev/null 2>&1; then
        echo ready
    else
        echo not_ready
    fi
}

# Starts one service shifted by `skew` ("none": the real clock) and checks
# the offset range, the readiness and the log.
clock_case() { # service, skew, expected readiness, offset low, offset high
    local svc=$1 skew=$2 expected=$3 low=$4 high=$5
    local port admin_port env_file=$STACK_WORK/$svc$skew.env log=$STACK_WORK/$svc$skew.log
    port=$(cj_free_port)
    admin_port=$(cj_free_port)
    stack_env "$svc" 1 "$port" "$admin_port" | sed "s/'/'\\\\''/g; s/=\(.*\)/='\1'/" >"$env_file"
    echo "${BOUND[$svc]}" >>"$env_file"
    local wrapper=()
    if [[ $skew != none ]]; then
        # The monotonic clock stays real, so timers keep their length. Under
        # AddressSanitizer, libfaketime comes first in the preload list,
        # which ASan accepts only with verify_asan_link_order=0.
        wrapper=(env FAKETIME_DONT_FAKE_MONOTONIC=1 "FAKETIME=$skew"
            "LD_PRELOAD=$faketime_lib${LD_PRELOAD:+:$LD_PRELOAD}"
            "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0")
    fi
    (
        cd "$STACK_WORK"
        set -a
        source "$env_file"
        exec "${wrapper[@]}" "$STACK_BIN/cerrojo-$svc"
    ) >"$log" 2>&1 &
    pid=$!
    local url=http://127.0.0.1:$admin_port/metrics offset= waited=0
    until offset=$(metric "$url" "${METRIC[$svc]}") && [[ -n $offset ]] &&
        { [[ $skew == none ]] || ! between "$offset" -0.5 0.5; }; do
        if ! kill -0 "$pid" 2>/dev/null || ((waited >= START_TIMEOUT_S * 5)); then
            echo "clock: FAIL $svc ($skew): no ${METRIC[$svc]} published; log:" >&2
            tail -n 5 "$log" >&2
            failures=$((failures + 1))
            stop_service
            return
        fi
        sleep 0.2
        waited=$((waited + 1))
    done
    # The readiness follows the first reading within a probe round.
    local state waited=0
    state=$(readiness "$svc" "$port" "$env_file" || true)
    while [[ $state != "$expected" ]] && ((waited < 50)); do
        sleep 0.2
        waited=$((waited + 1))
        state=$(readiness "$svc" "$port" "$env_file" || true)
    done
    check "$svc ($skew): ${METRIC[$svc]} $offset in [$low, $high]" between "$offset" "$low" "$high"
    check "$svc ($skew): $state, expected $expected" test "$state" = "$expected"
    if [[ $skew == none ]]; then
        check "$svc ($skew): no ${EVENT[$svc]} warning" bash -c "! grep -q '\"${EVENT[$svc]}\"' '$log'"
    else
        check "$svc ($skew): ${EVENT[$svc]} logged" grep -q "\"${EVENT[$svc]}\"" "$log"
    fi
    stop_service
}

stack_start_stores || {
    echo "clock: Postgres, Redis or the migrations did not start" >&2
    exit 1
}
# Callers need targets, but the clock check does not need the callees, so
# every target is a port that refuses connections.
closed_port_hold || {
    echo "clock: could not hold a closed port on 127.0.0.1" >&2
    exit 1
}
STACK_PORTS[kms/1]=$CLOSED_PORT
STACK_PORTS[session/1]=$CLOSED_PORT
STACK_PORTS[auth/1]=$CLOSED_PORT
# The service's clock is behind, so the store's clock is ahead: positive.
for svc in ${CLOCK_SERVICES:-kms session auth gateway}; do
    clock_case "$svc" none ready -1 1
    clock_case "$svc" -3s ready 2 4
    clock_case "$svc" -10s not_ready 9 11
done

if ((failures > 0)); then
    echo "clock: $failures checks failed" >&2
    exit 1
fi
echo "clock: every check passed"
