# shellcheck shell=bash
# Shell functions shared by the scripts under scripts/ and tests/deploy/:
# free ports, waiting for a process to become ready, stopping a process by
# pid, and stopping the Postgres and Redis of scripts/pg.sh and redis.sh.
# Source it from bash; it sets no shell options and starts nothing.

# The folder of this file, so that the functions find pg.sh and redis.sh
# beside it wherever the caller runs (tests/deploy copies scripts/ away).
CJ_SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Seconds between two readiness checks in cj_wait_ready.
CJ_READY_POLL_S=0.2
# Seconds between two checks whether a stopped process is gone.
CJ_STOP_POLL_S=0.1
# Lines of a log that a failure message shows.
CJ_LOG_TAIL_LINES=20

# Prints the absolute build folder, $BUILD_DIR (default build), which is
# taken relative to the repository root $1 unless it is absolute.
cj_build_dir() {
    local build_dir=${BUILD_DIR:-build}
    case $build_dir in
    /*) ;;
    *) build_dir=$1/$build_dir ;;
    esac
    echo "$build_dir"
}

# Range of the ports cj_free_port picks, and how many it tries.
CJ_TEST_PORT_LOW=20000
CJ_TEST_PORT_HIGH=32000
CJ_TEST_PORT_TRIES=200

# Prints a random TCP port on 127.0.0.1 that is free now. Another process
# may still take it before the caller binds it. The port is below Linux's
# default ephemeral range (32768 and up), because the kernel takes the
# source port of each outgoing connection from that range.
cj_free_port() {
    python3 - "$CJ_TEST_PORT_LOW" "$CJ_TEST_PORT_HIGH" "$CJ_TEST_PORT_TRIES" <<'PY'
import random, socket, sys
low, high, tries = (int(a) for a in sys.argv[1:4])
for _ in range(tries):
    port = random.randrange(low, high)
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
    print(port)
    sys.exit(0)
sys.exit("no free port found between %d and %d in %d tries" % (low, high, tries))
PY
}

# Succeeds when a TCP socket listens on port $1.
cj_port_in_use() {
    [[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]
}

# Prints the last CJ_LOG_TAIL_LINES lines of log $1 to stderr. A missing
# log prints nothing and is no error.
cj_log_tail() {
    tail -n "$CJ_LOG_TAIL_LINES" "$1" >&2 2>/dev/null || true
}

# Runs the command after the first four arguments every CJ_READY_POLL_S
# seconds, output discarded, until it succeeds. Arguments: a label for the
# messages (such as "stack: kms"), the pid of the process that must become
# ready, its log, and the number of seconds of polling allowed. Returns 1,
# with a message and the end of the log on stderr, when the process exits
# first or the time runs out. The time counts polls, not the time that
# the checks themselves take.
cj_wait_ready() {
    local label=$1 pid=$2 log=$3 timeout_s=$4
    shift 4
    local polls=0 max_polls
    max_polls=$(awk -v t="$timeout_s" -v p="$CJ_READY_POLL_S" 'BEGIN { printf "%d", t / p }')
    until "$@" >/dev/null 2>&1; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$label exited during start; last lines of $log:" >&2
            cj_log_tail "$log"
            return 1
        fi
        if ((polls >= max_polls)); then
            echo "$label (pid $pid) not ready after ${timeout_s}s; last lines of $log:" >&2
            cj_log_tail "$log"
            return 1
        fi
        sleep "$CJ_READY_POLL_S"
        polls=$((polls + 1))
    done
}

# Stops process $1: TERM, then KILL when it still runs after $2 seconds,
# then reaps it when it is a child of this shell. With a label as $3, it
# prints a message on stderr when KILL was needed. Always returns 0.
cj_stop_pid() {
    local pid=$1 timeout_s=$2 label=${3:-}
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    local polls=0 max_polls
    max_polls=$(awk -v t="$timeout_s" -v p="$CJ_STOP_POLL_S" 'BEGIN { printf "%d", t / p }')
    while kill -0 "$pid" 2>/dev/null; do
        if ((polls >= max_polls)); then
            if [[ -n $label ]]; then
                echo "$label (pid $pid) ignored TERM for ${timeout_s}s; sending KILL" >&2
            fi
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep "$CJ_STOP_POLL_S"
        polls=$((polls + 1))
    done
    wait "$pid" 2>/dev/null || true
}

# Stops the Postgres in folder $1 (port $2) and the Redis in folder $3
# (port $4), skipping an empty folder argument, and removes the cluster
# that pg.sh had to place under /var/tmp/cerrojo-* (see pg.location).
# Output and failures are ignored, because this runs from EXIT traps.
cj_stop_stores() {
    local pg_dir=$1 pg_port=$2 redis_dir=$3 redis_port=$4
    if [[ -n $pg_dir ]]; then
        "$CJ_SCRIPTS_DIR/pg.sh" stop "$pg_dir" "$pg_port" >/dev/null 2>&1 || true
    fi
    if [[ -n $redis_dir ]]; then
        "$CJ_SCRIPTS_DIR/redis.sh" stop "$redis_dir" "$redis_port" >/dev/null 2>&1 || true
    fi
    if [[ -n $pg_dir ]]; then
        local home
        home=$(cat "$pg_dir/pg.location" 2>/dev/null || true)
        if [[ $home == /var/tmp/cerrojo-* ]]; then
            rm -rf "$home"
        fi
    fi
}
