#!/usr/bin/env bash
# Starts, stops or reports a project-local Postgres 15 cluster that listens
# on 127.0.0.1 only, with trust authentication (for development and tests).
#
#   scripts/pg.sh start|stop|status DIR [PORT]
#
# DIR contains the cluster (DIR/data) and its log. initdb and postgres refuse to
# run as root, so as root they run as the `postgres` user; when that user
# cannot reach DIR (a checkout inside a mode-0700 home) the cluster lives in
# /var/tmp/cerrojo-<hash of DIR>/ instead, and DIR/pg.location records where.
# `start` also creates the database named by CERROJO_PG_DATABASE (default
# cerrojo); CERROJO_PG_EXTRA_OPTS adds server options (scripts/test.sh turns
# fsync off). Every action is idempotent.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_BIN=${CERROJO_PG_BIN:-/usr/lib/postgresql/15/bin}
PG_DATABASE=${CERROJO_PG_DATABASE:-cerrojo}
START_TIMEOUT_S=60

usage() {
    echo "usage: $0 start|stop|status DIR [PORT]" >&2
    exit 2
}

(($# >= 2)) || usage
action=$1
dir=$2
port=${3:-${CERROJO_PG_PORT:-55432}}

if [[ ! -x $PG_BIN/postgres ]]; then
    echo "pg.sh: no Postgres 15 in $PG_BIN; run scripts/deps.sh (package postgresql-15)" >&2
    exit 1
fi

# Runs a command as the cluster's owner: `postgres` when we are root.
as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# Prints the folder that contains data/ and the log, choosing it on first use.
cluster_home() {
    mkdir -p "$dir"
    local abs
    abs=$(cd "$dir" && pwd -P)
    if [[ -f $abs/pg.location ]]; then
        cat "$abs/pg.location"
        return
    fi
    local home=$abs
    if [[ $(id -u) -eq 0 ]] && ! runuser -u postgres -- test -x "$abs"; then
        home=/var/tmp/cerrojo-$(printf '%s' "$abs" | sha256sum | cut -c1-16)
        echo "pg.sh: postgres cannot reach $abs; keeping the cluster in $home" >&2
    fi
    mkdir -p "$home"
    if [[ $(id -u) -eq 0 ]]; then
        chown postgres: "$home"
        chmod 0700 "$home"
    fi
    echo "$home" >"$abs/pg.location"
    echo "$home"
}

is_running() {
    local home=$1
    [[ -f $home/data/PG_VERSION ]] && as_owner "$PG_BIN/pg_ctl" -D "$home/data" status >/dev/null 2>&1
}

# Port of a running cluster, from the first line after the pid in postmaster.pid.
running_port() {
    sed -n 4p "$1/data/postmaster.pid" 2>/dev/null || true
}

psql_admin() {
    psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres "$@"
}

start() {
    local home
    home=$(cluster_home)
    if is_running "$home"; then
        local running
        running=$(running_port "$home")
        if [[ $running != "$port" ]]; then
            echo "pg.sh: the cluster in $home already runs on port $running, not $port; stop it first" >&2
            exit 1
        fi
        echo "pg.sh: already running on 127.0.0.1:$port ($home/data)"
    else
        if cj_port_in_use "$port"; then
            echo "pg.sh: port $port is already in use by another process; choose another with CERROJO_PG_PORT" >&2
            exit 1
        fi
        if [[ ! -f $home/data/PG_VERSION ]]; then
            echo "pg.sh: initdb in $home/data"
            as_owner "$PG_BIN/initdb" -D "$home/data" -U postgres -A trust \
                -E UTF8 --locale=C.UTF-8 --no-instructions >"$home/initdb.log" 2>&1 || {
                echo "pg.sh: initdb failed; see $home/initdb.log" >&2
                exit 1
            }
        fi
        # The socket goes to the cluster's own folder, so no system-wide
        # /var/run/postgresql is needed or touched.
        as_owner "$PG_BIN/pg_ctl" -D "$home/data" -l "$home/postgres.log" \
            -w -t "$START_TIMEOUT_S" \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $home ${CERROJO_PG_EXTRA_OPTS:-}" start >/dev/null || {
            echo "pg.sh: postgres did not start; see $home/postgres.log" >&2
            tail -n 20 "$home/postgres.log" >&2 || true
            exit 1
        }
        echo "pg.sh: started on 127.0.0.1:$port ($home/data)"
    fi
    if [[ -z $(psql_admin -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DATABASE'") ]]; then
        psql_admin -d postgres -c "CREATE DATABASE \"$PG_DATABASE\""
        echo "pg.sh: created database $PG_DATABASE"
    fi
}

stop() {
    local home
    home=$(cluster_home)
    if ! is_running "$home"; then
        echo "pg.sh: not running ($home/data)"
        return
    fi
    as_owner "$PG_BIN/pg_ctl" -D "$home/data" -m fast -w -t "$START_TIMEOUT_S" stop >/dev/null
    echo "pg.sh: stopped ($home/data)"
}

status() {
    local home
    home=$(cluster_home)
    if is_running "$home"; then
        echo "pg.sh: running on 127.0.0.1:$(running_port "$home") ($home/data)"
    else
        echo "pg.sh: not running ($home/data)"
        exit 3
    fi
}

case $action in
start) start ;;
stop) stop ;;
status) status ;;
*) usage ;;
esac
