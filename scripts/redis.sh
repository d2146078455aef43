#!/usr/bin/env bash
# Starts, stops or reports a project-local Redis on 127.0.0.1 with
# append-only persistence and maxmemory-policy noeviction, as the services
# expect.
#
#   scripts/redis.sh start|stop|status DIR [PORT]
#
# DIR contains the data, the log and the pidfile. Every action is idempotent.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

START_TIMEOUT_S=30
STOP_TIMEOUT_S=30

usage() {
    echo "usage: $0 start|stop|status DIR [PORT]" >&2
    exit 2
}

(($# >= 2)) || usage
action=$1
dir=$2
port=${3:-${CERROJO_REDIS_PORT:-56379}}

if ! command -v redis-server >/dev/null; then
    echo "redis.sh: redis-server not found; run scripts/deps.sh (package redis-server)" >&2
    exit 1
fi

mkdir -p "$dir"
dir=$(cd "$dir" && pwd -P)
pidfile=$dir/redis.pid

# Prints the pid of our Redis when it is alive, else nothing.
running_pid() {
    local pid
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null &&
        [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */redis-server* || $(readlink "/proc/$pid/exe" 2>/dev/null) == */redis-check-rdb* ]]; then
        echo "$pid"
    fi
}

ping() {
    [[ $(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null) == PONG ]]
}

start() {
    local pid
    pid=$(running_pid)
    if [[ -n $pid ]]; then
        local running
        running=$(cat "$dir/redis.port" 2>/dev/null || echo "?")
        if [[ $running != "$port" ]]; then
            echo "redis.sh: the Redis in $dir already runs on port $running, not $port; stop it first" >&2
            exit 1
        fi
        echo "redis.sh: already running on 127.0.0.1:$port (pid $pid)"
        return
    fi
    if cj_port_in_use "$port"; then
        echo "redis.sh: port $port is already in use by another process; choose another with CERROJO_REDIS_PORT" >&2
        exit 1
    fi
    rm -f "$pidfile"
    echo "$port" >"$dir/redis.port"
    redis-server --bind 127.0.0.1 --port "$port" --protected-mode yes \
        --daemonize yes --pidfile "$pidfile" --dir "$dir" \
        --logfile "$dir/redis.log" --appendonly yes \
        --maxmemory-policy noeviction --save "" >/dev/null
    local waited=0
    until ping "$port"; do
        if ((waited >= START_TIMEOUT_S * 10)); then
            echo "redis.sh: Redis did not respond on port $port; see $dir/redis.log" >&2
            tail -n 20 "$dir/redis.log" >&2 || true
            exit 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    echo "redis.sh: started on 127.0.0.1:$port (pid $(cat "$pidfile"), data in $dir)"
}

stop() {
    local pid
    pid=$(running_pid)
    if [[ -z $pid ]]; then
        echo "redis.sh: not running ($dir)"
        rm -f "$pidfile"
        return
    fi
    # SIGTERM makes Redis flush the append-only file and exit cleanly.
    kill -TERM "$pid"
    local waited=0
    while kill -0 "$pid" 2>/dev/null; do
        if ((waited >= STOP_TIMEOUT_S * 10)); then
            echo "redis.sh: Redis (pid $pid) did not stop within ${STOP_TIMEOUT_S}s" >&2
            exit 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    rm -f "$pidfile"
    echo "redis.sh: stopped (pid $pid)"
}

status() {
    local pid
    pid=$(running_pid)
    if [[ -n $pid ]]; then
        echo "redis.sh: running on 127.0.0.1:$(cat "$dir/redis.port" 2>/dev/null) (pid $pid)"
    else
        echo "redis.sh: not running ($dir)"
        exit 3
    fi
}

case $action in
start) start ;;
stop) stop ;;
status) status ;;
*) usage ;;
esac
