#!/usr/bin/env bash
# Starts, stops or reports the local development stack, all on 127.0.0.1:
# Postgres and Redis under var/, the migrations, then each service binary
# found in build/bin (cerrojo-kms, cerrojo-session, cerrojo-auth,
# cerrojo-gateway) in the background, logs in var/log/, pidfiles in var/run/.
#
#   [REPLICAS=N] [TLS=1] scripts/stack.sh up|down|status|running
#
# `running` prints the parts that run (postgres, redis, service replicas),
# one a line, and exits 3 when none runs. scripts/run.sh uses it to leave a
# stack of `make up` alone.
#
# REPLICAS (1 to 4, default 1) starts that many replicas of each service.
# TLS=1 runs gRPC between the services over mutual TLS, with development
# certificates that scripts/dev-certs.sh makes in var/certs (once; later
# runs keep them). The default, TLS=0, runs gRPC in plaintext.
# Replica 1 uses the ports below; replica r uses each of them plus
# (r - 1) * CERROJO_REPLICA_PORT_STEP (default 100), its gRPC or HTTP port
# and its metrics or admin port alike. Every caller gets the comma-separated
# addresses of all replicas of its callees. Replica 1 keeps the pidfile and
# log names cerrojo-<service>.pid/.log; replica r adds "-r" to the service.
#
# `up` returns once every started service is ready and writes the settings
# it used to var/stack.env (source it to reach the stack from a script).
# Every port is configurable through the variable named below; `up` and
# `down` are idempotent. A service whose binary is missing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

build_dir=$(cj_build_dir "$root")
bin=$build_dir/bin
var=$root/var

: "${CERROJO_PG_PORT:=55432}"
: "${CERROJO_REDIS_PORT:=56379}"
: "${CERROJO_GATEWAY_PORT:=8080}"
: "${CERROJO_GATEWAY_ADMIN_PORT:=9090}"
: "${CERROJO_AUTH_PORT:=50051}"
: "${CERROJO_KMS_PORT:=50052}"
: "${CERROJO_SESSION_PORT:=50053}"
: "${CERROJO_AUTH_METRICS_PORT:=9091}"
: "${CERROJO_KMS_METRICS_PORT:=9092}"
: "${CERROJO_SESSION_METRICS_PORT:=9093}"
: "${CERROJO_REPLICA_PORT_STEP:=100}"
: "${CERROJO_MIGRATE_KMS_PASSWORD:=cerrojo-kms-dev}"
: "${CERROJO_MIGRATE_AUTH_PASSWORD:=cerrojo-auth-dev}"
# Seconds a service gets to become ready after start, and to exit on TERM.
READY_TIMEOUT_S=${CERROJO_STACK_READY_TIMEOUT:-60}
STOP_TIMEOUT_S=10
# Seconds between two checks whether a stopping service has exited.
STOP_POLL_S=0.1
# SIGINT (2) and SIGTERM (15) as bits of a pending-signal mask in
# /proc/PID/status, where signal n is bit n - 1.
SHUTDOWN_SIGNAL_BITS=$(((1 << (2 - 1)) | (1 << (15 - 1))))
# The most replicas of one service; `down` and `status` look at all of them.
MAX_REPLICAS=4
REPLICAS=${REPLICAS:-1}
if [[ ! $REPLICAS =~ ^[1-9][0-9]*$ ]] || ((REPLICAS > MAX_REPLICAS)); then
    echo "stack: REPLICAS must be 1 to $MAX_REPLICAS, not '$REPLICAS'" >&2
    exit 2
fi

TLS=${TLS:-0}
if [[ $TLS != 0 && $TLS != 1 ]]; then
    echo "stack: TLS must be 0 or 1, not '$TLS'" >&2
    exit 2
fi

# Start order: each service comes after the ones it calls.
SERVICES=(kms session auth gateway)

# The port of replica $2 (default 1) of service $1.
service_port() {
    local base
    case $1 in
    kms) base=$CERROJO_KMS_PORT ;;
    session) base=$CERROJO_SESSION_PORT ;;
    auth) base=$CERROJO_AUTH_PORT ;;
    gateway) base=$CERROJO_GATEWAY_PORT ;;
    esac
    echo $((base + (${2:-1} - 1) * CERROJO_REPLICA_PORT_STEP))
}

# The metrics port (the admin port for the gateway) of replica $2 of $1.
service_admin_port() {
    local base
    case $1 in
    kms) base=$CERROJO_KMS_METRICS_PORT ;;
    session) base=$CERROJO_SESSION_METRICS_PORT ;;
    auth) base=$CERROJO_AUTH_METRICS_PORT ;;
    gateway) base=$CERROJO_GATEWAY_ADMIN_PORT ;;
    esac
    echo $((base + ($2 - 1) * CERROJO_REPLICA_PORT_STEP))
}

# Prints "127.0.0.1:a,127.0.0.1:b": the addresses of every replica of $1.
service_targets() {
    local list="" r
    for ((r = 1; r <= REPLICAS; r++)); do
        list+="${list:+,}127.0.0.1:$(service_port "$1" "$r")"
    done
    echo "$list"
}

# The name of replica $2 of $1 in pidfiles, logs and messages.
replica_name() {
    if (($2 == 1)); then echo "$1"; else echo "$1-$2"; fi
}

# The port inputs of this script that no service reads; they are removed
# from each service's environment, where they would be reported as unknown.
SCRIPT_ONLY_VARS=(-u CERROJO_AUTH_PORT -u CERROJO_KMS_PORT -u CERROJO_SESSION_PORT)

# The variables that set replica $2 of $1 apart from the others, one
# NAME=value a line for env(1).
replica_env() {
    local svc=$1 r=$2
    if [[ $svc == gateway ]]; then
        echo "CERROJO_GATEWAY_PORT=$(service_port gateway "$r")"
        echo "CERROJO_GATEWAY_ADMIN_PORT=$(service_admin_port gateway "$r")"
    else
        echo "CERROJO_${svc^^}_LISTEN=127.0.0.1:$(service_port "$svc" "$r")"
        echo "CERROJO_${svc^^}_METRICS_PORT=$(service_admin_port "$svc" "$r")"
    fi
}

# Writes var/stack.env: what the services read, in the names they declare,
# and CERROJO_STACK_* for scripts that reach the stack. Every service gets
# the whole file, so it contains no name that a service would report as
# unknown (config.unknown_variable).
write_env() {
    local pg="host=127.0.0.1 port=$CERROJO_PG_PORT dbname=cerrojo"
    local kms session auth
    kms=$(service_targets kms)
    session=$(service_targets session)
    auth=$(service_targets auth)
    cat >"$var/stack.env" <<EOF
# Written by scripts/stack.sh up; development settings only.
CERROJO_PROFILE=dev
CERROJO_GRPC_PLAINTEXT=$( ((TLS)) && echo false || echo true)
CERROJO_PG_PORT=$CERROJO_PG_PORT
CERROJO_REDIS_PORT=$CERROJO_REDIS_PORT
CERROJO_MIGRATE_DSN='$pg user=postgres'
CERROJO_MIGRATE_DIR=$root/migrations
CERROJO_MIGRATE_KMS_PASSWORD='$CERROJO_MIGRATE_KMS_PASSWORD'
CERROJO_MIGRATE_AUTH_PASSWORD='$CERROJO_MIGRATE_AUTH_PASSWORD'
CERROJO_KMS_DATABASE_URL='$pg user=cerrojo_kms password=$CERROJO_MIGRATE_KMS_PASSWORD'
CERROJO_AUTH_DATABASE_URL='$pg user=cerrojo_auth password=$CERROJO_MIGRATE_AUTH_PASSWORD'
CERROJO_REDIS_HOST=127.0.0.1
CERROJO_REDIS_ADDR=127.0.0.1:$CERROJO_REDIS_PORT
CERROJO_AUTH_REDIS_HOST=127.0.0.1
CERROJO_AUTH_REDIS_PORT=$CERROJO_REDIS_PORT
CERROJO_KMS_LISTEN=127.0.0.1:$CERROJO_KMS_PORT
CERROJO_SESSION_LISTEN=127.0.0.1:$CERROJO_SESSION_PORT
CERROJO_AUTH_LISTEN=127.0.0.1:$CERROJO_AUTH_PORT
CERROJO_KMS_ADDR=$kms
CERROJO_SESSION_ADDR=$session
CERROJO_AUTH_ADDR=$auth
CERROJO_AUTH_KMS_TARGET=$kms
CERROJO_AUTH_SESSION_TARGET=$session
CERROJO_AUTH_METRICS_PORT=$CERROJO_AUTH_METRICS_PORT
CERROJO_KMS_METRICS_PORT=$CERROJO_KMS_METRICS_PORT
CERROJO_SESSION_METRICS_PORT=$CERROJO_SESSION_METRICS_PORT
CERROJO_GATEWAY_HOST=127.0.0.1
CERROJO_GATEWAY_PORT=$CERROJO_GATEWAY_PORT
CERROJO_GATEWAY_ADMIN_PORT=$CERROJO_GATEWAY_ADMIN_PORT
CERROJO_KMS_VAR_DIR=$var/kms
CERROJO_STACK_GATEWAY_URL=http://127.0.0.1:$CERROJO_GATEWAY_PORT
CERROJO_STACK_REPLICAS=$REPLICAS
CERROJO_STACK_GATEWAY_ADDRS=$(service_targets gateway)
EOF
    if ((TLS)); then
        write_tls_env
    fi
}

# Makes the development certificates and adds their paths to
# var/stack.env. No name appears twice in the file: the services' loader
# (CERROJO_ENV_FILE) keeps the first value of a name and the shell's
# `source` the last. Each service reads only its own certificate
# variables.
write_tls_env() {
    local certs=$var/certs svc
    scripts/dev-certs.sh "$certs" >/dev/null
    {
        echo "CERROJO_TLS_CA=$certs/ca.pem"
        for svc in "${SERVICES[@]}"; do
            echo "CERROJO_${svc^^}_TLS_CERT=$certs/$svc.pem"
            echo "CERROJO_${svc^^}_TLS_KEY=$certs/$svc.key"
        done
        echo "CERROJO_STACK_TLS=1"
    } >>"$var/stack.env"
}

# Prints the pid in the pidfile of replica $2 of $1 when that process still
# runs the service's binary (a recycled pid is never taken for ours).
service_pid() {
    local pidfile pid exe
    pidfile=$var/run/cerrojo-$(replica_name "$1" "$2").pid
    pid=$(cat "$pidfile" 2>/dev/null || true)
    [[ -n $pid ]] || return 0
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
    if [[ $exe == "$bin/cerrojo-$1" || $exe == "$bin/cerrojo-$1 (deleted)" ]]; then
        echo "$pid"
    fi
}

# The file that records the size in bytes of the log of replica $2 of $1
# when `up` started its current process. Every start appends to the same
# log, so the lines past that offset are the current process's own.
log_start_file() {
    echo "$var/run/cerrojo-$(replica_name "$1" "$2").logstart"
}

# Succeeds when process $3, the current one of replica $2 of $1, is
# shutting down. A TERM or INT that it has not taken yet shows in the
# shared pending set, because the services block both in every thread and
# take them with sigwait. A service that took one has logged
# "<service>.stopping" after its "<service>.started", and finishes its calls
# in flight before it exits. Without a recorded start, the whole log is read.
service_stopping() {
    local svc=$1 pid=$3 pending log offset last
    pending=$(awk '$1 == "ShdPnd:" { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    if [[ $pending =~ ^[0-9a-f]+$ ]] && (((16#$pending & SHUTDOWN_SIGNAL_BITS) != 0)); then
        return 0
    fi
    log=$var/log/cerrojo-$(replica_name "$1" "$2").log
    offset=$(cat "$(log_start_file "$1" "$2")" 2>/dev/null || true)
    [[ $offset =~ ^[0-9]+$ ]] || offset=0
    last=$(tail -c "+$((offset + 1))" "$log" 2>/dev/null |
        grep -o "\"event\":\"$svc\.\(started\|stopping\)\"" | tail -n 1 || true)
    [[ $last == *stopping* ]]
}

# Waits up to STOP_TIMEOUT_S seconds for process $1 to exit. Returns 1 when
# it still runs. A zombie has no /proc/PID/exe and counts as exited.
wait_exit() {
    local pid=$1 polls=0 max_polls
    max_polls=$(awk -v t="$STOP_TIMEOUT_S" -v p="$STOP_POLL_S" 'BEGIN { printf "%d", t / p }')
    while [[ -n $(readlink "/proc/$pid/exe" 2>/dev/null || true) ]]; do
        if ((polls >= max_polls)); then
            return 1
        fi
        sleep "$STOP_POLL_S"
        polls=$((polls + 1))
    done
}

is_ready() {
    local svc=$1 r=$2
    if [[ $svc == gateway ]]; then
        curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$(service_port gateway "$r")/healthz" 2>/dev/null
    else
        # The healthcheck calls the address in the replica's LISTEN variable.
        local vars
        mapfile -t vars < <(replica_env "$svc" "$r")
        env "${SCRIPT_ONLY_VARS[@]}" "${vars[@]}" "$bin/cerrojo-$svc" healthcheck >/dev/null 2>&1
    fi
}

# Starts replica $2 of service $1 and waits until it is ready.
start_service() {
    local svc=$1 r=$2 name
    name=$(replica_name "$1" "$2")
    local exe=$bin/cerrojo-$svc log=$var/log/cerrojo-$name.log
    if [[ ! -x $exe ]]; then
        echo "stack: $exe not built; skipping $name"
        return
    fi
    local pid
    pid=$(service_pid "$svc" "$r")
    # A process that is shutting down is about to exit, so it does not count
    # as running: `up` waits for it and starts a new one.
    if [[ -n $pid ]] && service_stopping "$svc" "$r" "$pid"; then
        echo "stack: $name (pid $pid) is stopping; waiting up to ${STOP_TIMEOUT_S}s for it to exit"
        if ! wait_exit "$pid"; then
            echo "stack: $name (pid $pid) is still stopping after ${STOP_TIMEOUT_S}s;" \
                "run 'scripts/stack.sh up' again once it has exited, or 'make down' to stop it" >&2
            exit 1
        fi
        pid=""
    fi
    if [[ -n $pid ]]; then
        echo "stack: $name already running (pid $pid)"
        return
    fi
    local port
    port=$(service_port "$svc" "$r")
    if cj_port_in_use "$port"; then
        echo "stack: port $port for $name is already in use by another process; set CERROJO_${svc^^}_PORT" >&2
        exit 1
    fi
    # setsid: a Ctrl-C in the terminal reaches run.sh, which stops the
    # stack in order, not each service at once.
    local vars
    mapfile -t vars < <(replica_env "$svc" "$r")
    local log_start=0
    if [[ -f $log ]]; then
        log_start=$(stat -c %s "$log")
    fi
    echo "$log_start" >"$(log_start_file "$svc" "$r")"
    setsid env "${SCRIPT_ONLY_VARS[@]}" "${vars[@]}" "$exe" >>"$log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$var/run/cerrojo-$name.pid"
    if ! cj_wait_ready "stack: $name" "$pid" "$log" "$READY_TIMEOUT_S" \
        is_ready "$svc" "$r"; then
        # A service that timed out still runs, so its pidfile stays for `down`.
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$var/run/cerrojo-$name.pid" "$(log_start_file "$svc" "$r")"
        fi
        exit 1
    fi
    echo "stack: $name ready on 127.0.0.1:$port (pid $pid, log $log)"
}

# Stops replica $2 of service $1: TERM, then KILL after the timeout.
stop_service() {
    local svc=$1 r=$2 name pid
    name=$(replica_name "$1" "$2")
    pid=$(service_pid "$svc" "$r")
    if [[ -z $pid ]]; then
        rm -f "$var/run/cerrojo-$name.pid" "$(log_start_file "$svc" "$r")"
        return
    fi
    cj_stop_pid "$pid" "$STOP_TIMEOUT_S" "stack: $name"
    rm -f "$var/run/cerrojo-$name.pid" "$(log_start_file "$svc" "$r")"
    echo "stack: $name stopped (pid $pid)"
}

# Prints the pid of the `make run` (scripts/run.sh) whose stack this is,
# when one runs in this checkout and did not call this script itself.
run_owner_pid() {
    local pid cmdline cwd
    pid=$(cat "$var/run/make-run.pid" 2>/dev/null || true)
    if [[ ! $pid =~ ^[0-9]+$ || $pid == "$PPID" ]]; then
        return 0
    fi
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
    cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null || true)
    # A pid that was recycled for another program is no owner.
    if [[ $cmdline == *run.sh* && $cwd == "$root" ]]; then
        echo "$pid"
    fi
}

# Prints the parts of the stack in this checkout that run, one a line:
# postgres, redis and the name of each running service replica.
running_parts() {
    local svc r
    if [[ -d $var/pg ]] && scripts/pg.sh status "$var/pg" "$CERROJO_PG_PORT" >/dev/null 2>&1; then
        echo postgres
    fi
    if [[ -d $var/redis ]] && scripts/redis.sh status "$var/redis" "$CERROJO_REDIS_PORT" >/dev/null 2>&1; then
        echo redis
    fi
    for svc in "${SERVICES[@]}"; do
        for ((r = 1; r <= MAX_REPLICAS; r++)); do
            if [[ -n $(service_pid "$svc" "$r") ]]; then
                replica_name "$svc" "$r"
            fi
        done
    done
}

# Exits 1 when a service of the stack runs in the other gRPC mode than
# the one TLS selects. `up` leaves running services alone, so it would report a
# mixed stack as up, and var/stack.env would describe a mode that the
# running services do not use.
check_tls_mode() {
    local svc r running_tls
    for svc in "${SERVICES[@]}"; do
        for ((r = 1; r <= MAX_REPLICAS; r++)); do
            [[ -n $(service_pid "$svc" "$r") ]] || continue
            running_tls=0
            if grep -qx "CERROJO_STACK_TLS=1" "$var/stack.env" 2>/dev/null; then
                running_tls=1
            fi
            if ((running_tls != TLS)); then
                echo "stack: the running stack uses $( ((running_tls)) && echo "mutual TLS (TLS=1)" || echo "plaintext gRPC (TLS=0)")" \
                    "between its services; run 'make up' with TLS=$running_tls," \
                    "or 'make down' first to change the mode." >&2
                exit 1
            fi
            return 0
        done
    done
}

# `running`: lists the running parts and returns 0, or returns 3 when none
# runs.
running() {
    local parts
    parts=$(running_parts)
    if [[ -z $parts ]]; then
        return 3
    fi
    echo "$parts"
}

up() {
    local owner
    owner=$(run_owner_pid)
    if [[ -n $owner ]]; then
        echo "stack: the running stack belongs to 'make run' (pid $owner)" \
            "and stops when 'make run' ends. Use it while 'make run' runs," \
            "or stop 'make run' (Ctrl-C in its terminal) and run 'make up'" \
            "again." >&2
        exit 1
    fi
    check_tls_mode
    mkdir -p "$var/log" "$var/run" "$var/kms"
    write_env
    CERROJO_PG_PORT=$CERROJO_PG_PORT scripts/pg.sh start "$var/pg" "$CERROJO_PG_PORT"
    scripts/redis.sh start "$var/redis" "$CERROJO_REDIS_PORT"
    set -a
    # shellcheck source=/dev/null
    source "$var/stack.env"
    set +a
    if [[ -x $bin/cerrojo-migrate ]]; then
        "$bin/cerrojo-migrate" up 2>>"$var/log/cerrojo-migrate.log" || {
            echo "stack: migrations failed; see $var/log/cerrojo-migrate.log" >&2
            tail -n 5 "$var/log/cerrojo-migrate.log" >&2
            exit 1
        }
    else
        echo "stack: $bin/cerrojo-migrate not built; migrations not applied" >&2
    fi
    local svc r
    for svc in "${SERVICES[@]}"; do
        for ((r = 1; r <= REPLICAS; r++)); do
            start_service "$svc" "$r"
        done
    done
    echo "stack: up; settings in $var/stack.env"
}

down() {
    # Every replica that has a pidfile, whatever REPLICAS `up` was given.
    local i r
    for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
        for ((r = MAX_REPLICAS; r >= 1; r--)); do
            stop_service "${SERVICES[i]}" "$r"
        done
    done
    if [[ -d $var/redis ]]; then
        scripts/redis.sh stop "$var/redis" "$CERROJO_REDIS_PORT"
    fi
    if [[ -d $var/pg ]]; then
        scripts/pg.sh stop "$var/pg" "$CERROJO_PG_PORT"
    fi
}

status() {
    local rc=0 svc r name pid
    scripts/pg.sh status "$var/pg" "$CERROJO_PG_PORT" || rc=3
    scripts/redis.sh status "$var/redis" "$CERROJO_REDIS_PORT" || rc=3
    # Replicas past REPLICAS are listed only when they run.
    for svc in "${SERVICES[@]}"; do
        for ((r = 1; r <= MAX_REPLICAS; r++)); do
            name=$(replica_name "$svc" "$r")
            pid=$(service_pid "$svc" "$r")
            if [[ -n $pid ]] && service_stopping "$svc" "$r" "$pid"; then
                echo "stack: $name stopping (pid $pid)"
                rc=3
            elif [[ -n $pid ]]; then
                echo "stack: $name running on 127.0.0.1:$(service_port "$svc" "$r") (pid $pid)"
            elif ((r > REPLICAS)); then
                continue
            elif [[ -x $bin/cerrojo-$svc ]]; then
                echo "stack: $name not running"
                rc=3
            else
                echo "stack: $name not built"
            fi
        done
    done
    return $rc
}

case ${1:-} in
up) up ;;
down) down ;;
status) status ;;
running) running ;;
*)
    echo "usage: $0 up|down|status|running" >&2
    exit 2
    ;;
esac
