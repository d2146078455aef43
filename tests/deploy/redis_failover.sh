#!/usr/bin/env bash
# Shows that a service reconnects to Redis by itself after a failover.
# cerrojo-session reaches Redis through one address (tcp_forward.py, as a
# Service that follows the primary would). Redis B replicates Redis A; then
# A stops, B is promoted and the forwarder points at B. The same session
# process must notice the loss (health NOT_SERVING, redis_up 0), then
# serve again on B (SERVING, redis_up 1, its own commands counted by B)
# without a restart, and data written before the failover is still there.
#
# Usage: redis_failover.sh SOURCE_DIR BUILD_DIR
# Starts its own two Redis instances on free ports.
set -euo pipefail
source_dir=$1
bin=$2/bin
# Seconds allowed for each transition (start, loss noticed, recovery).
TRANSITION_TIMEOUT_S=30

# shellcheck source=scripts/lib.sh
source "$source_dir/scripts/lib.sh"

work=$(mktemp -d /tmp/cerrojo-failover.XXXXXX)
port_a=$(cj_free_port)
port_b=$(cj_free_port)
forward_port=$(cj_free_port)
grpc_port=$(cj_free_port)
metrics_port=$(cj_free_port)
session_pid=
forward_pid=

cleanup() {
    local pid
    for pid in $session_pid $forward_pid; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    "$source_dir/scripts/redis.sh" stop "$work/a" "$port_a" >/dev/null 2>&1 || true
    "$source_dir/scripts/redis.sh" stop "$work/b" "$port_b" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap 'rc=$?; cleanup; exit $rc' EXIT

fail() {
    echo "failover: FAIL $*" >&2
    echo "failover: last lines of the session log:" >&2
    tail -n 10 "$work/session.log" >&2 || true
    exit 1
}

# Waits until the command succeeds, at most TRANSITION_TIMEOUT_S.
wait_until() {
    local waited=0
    until "$@" >/dev/null 2>&1; do
        ((waited < TRANSITION_TIMEOUT_S * 5)) || return 1
        sleep 0.2
        waited=$((waited + 1))
    done
}

session_env=(
    CERROJO_ENV_FILE=/dev/null CERROJO_PROFILE=dev CERROJO_GRPC_PLAINTEXT=true
    CERROJO_SESSION_LISTEN=127.0.0.1:$grpc_port
    CERROJO_SESSION_METRICS_PORT=$metrics_port
    CERROJO_REDIS_HOST=127.0.0.1 CERROJO_REDIS_PORT=$forward_port
)
healthy() { env "${session_env[@]}" "$bin/cerrojo-session" healthcheck; }
unhealthy() { ! healthy; }
redis_up() { # expected value of cerrojo_session_redis_up
    [[ $(curl -fsS --max-time 2 "http://127.0.0.1:$metrics_port/metrics" |
        awk '$1 == "cerrojo_session_redis_up" { print $2 }') == "$1" ]]
}
# Commands Redis B executed for clients other than redis-cli's INFO.
commands_on_b() {
    redis-cli -p "$port_b" info commandstats |
        awk -F'[:=,]' '/^cmdstat_/ && $1 != "cmdstat_info" && $1 != "cmdstat_ping" && $1 != "cmdstat_replicaof" { n += $3 } END { print n + 0 }'
}

"$source_dir/scripts/redis.sh" start "$work/a" "$port_a" >/dev/null
"$source_dir/scripts/redis.sh" start "$work/b" "$port_b" >/dev/null
# Redis 7 waits 5 s before a diskless sync by default; none is needed here.
redis-cli -p "$port_a" config set repl-diskless-sync-delay 0 >/dev/null
redis-cli -p "$port_b" replicaof 127.0.0.1 "$port_a" >/dev/null
echo "127.0.0.1:$port_a" >"$work/target"
python3 "$source_dir/tests/deploy/tcp_forward.py" "$forward_port" "$work/target" >"$work/forward.log" 2>&1 &
forward_pid=$!
wait_until redis-cli -p "$forward_port" ping || fail "the forwarder did not start"

redis-cli -p "$forward_port" set cerrojo:test:before-failover 1 >/dev/null
env "${session_env[@]}" "$bin/cerrojo-session" >"$work/session.log" 2>&1 &
session_pid=$!
wait_until healthy || fail "session did not become healthy on Redis A"
wait_until redis_up 1 || fail "cerrojo_session_redis_up is not 1 on Redis A"
echo "failover: session serving through 127.0.0.1:$forward_port on Redis A ($port_a)"
b_has_key() { # a function, so that each retry asks Redis B again
    [[ $(redis-cli -p "$port_b" exists cerrojo:test:before-failover) == 1 ]]
}
wait_until b_has_key || fail "Redis B did not replicate from A"

# The failover: the primary goes away, the replica is promoted and the
# address is switched to it.
"$source_dir/scripts/redis.sh" stop "$work/a" "$port_a" >/dev/null
wait_until unhealthy || fail "session did not notice that Redis A went away"
wait_until redis_up 0 || fail "cerrojo_session_redis_up did not drop to 0"
echo "failover: session not serving after Redis A stopped"
redis-cli -p "$port_b" replicaof no one >/dev/null
before=$(commands_on_b)
echo "127.0.0.1:$port_b" >"$work/target"

wait_until healthy || fail "session did not recover on Redis B"
wait_until redis_up 1 || fail "cerrojo_session_redis_up did not return to 1"
kill -0 "$session_pid" || fail "the session process exited"
b_was_used() { (($(commands_on_b) > before)); }
wait_until b_was_used || fail "session sent no command to Redis B"
[[ $(redis-cli -p "$port_b" exists cerrojo:test:before-failover) == 1 ]] ||
    fail "the key written before the failover is missing on Redis B"
echo "failover: the same session process (pid $session_pid) serves again on Redis B ($port_b): $(($(commands_on_b) - before)) commands"
