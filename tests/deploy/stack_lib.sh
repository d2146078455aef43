# Sourced by the deploy tests: a private stack on 127.0.0.1 in a temporary
# folder (Postgres, Redis, the migrations, then N replicas of kms, session,
# auth and the gateway on free ports, in the dev profile with plaintext
# gRPC). The replicas of a service share its keys; each caller's target is
# the comma-separated list of the replicas it calls, balanced round-robin
# by the gRPC client.
#
# Set STACK_SOURCE (repository root), STACK_BIN (build/bin) and STACK_WORK
# (an empty folder) before sourcing this file. stack_stop_all stops
# everything it started, so call it from an EXIT trap.

# shellcheck source=scripts/lib.sh
source "$STACK_SOURCE/scripts/lib.sh"

# Seconds a service gets to become ready after start, and to exit on TERM.
STACK_READY_TIMEOUT_S=60
STACK_STOP_TIMEOUT_S=10
STACK_SERVICES=(kms session auth gateway)
declare -A STACK_PIDS=()
declare -A STACK_PORTS=()

stack_start_stores() {
    chmod 0755 "$STACK_WORK"
    STACK_PG_PORT=$(cj_free_port)
    STACK_REDIS_PORT=$(cj_free_port)
    CERROJO_PG_EXTRA_OPTS="-c fsync=off" "$STACK_SOURCE/scripts/pg.sh" start "$STACK_WORK/pg" "$STACK_PG_PORT" >/dev/null
    "$STACK_SOURCE/scripts/redis.sh" start "$STACK_WORK/redis" "$STACK_REDIS_PORT" >/dev/null
    STACK_PG_ADMIN="host=127.0.0.1 port=$STACK_PG_PORT dbname=cerrojo user=postgres"
    mkdir -p "$STACK_WORK/var" "$STACK_WORK/log"
    head -c 32 /dev/urandom | base64 >"$STACK_WORK/root-key"
    head -c 32 /dev/urandom | base64 >"$STACK_WORK/session-key"
    chmod 600 "$STACK_WORK/root-key" "$STACK_WORK/session-key"
    stack_migrate
}

stack_migrate() {
    CERROJO_ENV_FILE=/dev/null CERROJO_PROFILE=dev \
        CERROJO_MIGRATE_DSN="$STACK_PG_ADMIN" \
        CERROJO_MIGRATE_DIR="$STACK_SOURCE/migrations" \
        "$STACK_BIN/cerrojo-migrate" up 2>>"$STACK_WORK/log/migrate.log"
}

# Prints "a:1,b:2": the gRPC addresses of every running replica of $1.
stack_targets() {
    local svc=$1 list="" key
    for key in $(printf '%s\n' "${!STACK_PORTS[@]}" | grep "^$svc/" | sort); do
        list+="${list:+,}127.0.0.1:${STACK_PORTS[$key]}"
    done
    echo "$list"
}

# The environment of replica $2 of service $1.
stack_env() {
    local svc=$1 replica=$2 port=$3 admin_port=$4
    local pg="host=127.0.0.1 port=$STACK_PG_PORT dbname=cerrojo"
    echo "CERROJO_ENV_FILE=/dev/null"
    echo "CERROJO_PROFILE=dev"
    echo "CERROJO_GRPC_PLAINTEXT=true"
    echo "CERROJO_KMS_DATABASE_URL=$pg user=cerrojo_kms password=cerrojo-kms-dev"
    echo "CERROJO_AUTH_DATABASE_URL=$pg user=cerrojo_auth password=cerrojo-auth-dev"
    echo "CERROJO_KMS_ROOT_KEY_FILE=$STACK_WORK/root-key"
    echo "CERROJO_KMS_VAR_DIR=$STACK_WORK/var"
    echo "CERROJO_SESSION_KEY_FILE=$STACK_WORK/session-key"
    echo "CERROJO_REDIS_HOST=127.0.0.1"
    echo "CERROJO_REDIS_PORT=$STACK_REDIS_PORT"
    echo "CERROJO_AUTH_REDIS_HOST=127.0.0.1"
    echo "CERROJO_AUTH_REDIS_PORT=$STACK_REDIS_PORT"
    echo "CERROJO_REDIS_ADDR=127.0.0.1:$STACK_REDIS_PORT"
    echo "CERROJO_KMS_LISTEN=127.0.0.1:$port"
    echo "CERROJO_SESSION_LISTEN=127.0.0.1:$port"
    echo "CERROJO_AUTH_LISTEN=127.0.0.1:$port"
    if [[ $svc != gateway ]]; then
        echo "CERROJO_${svc^^}_METRICS_PORT=$admin_port"
    fi
    echo "CERROJO_AUTH_KMS_TARGET=$(stack_targets kms)"
    echo "CERROJO_AUTH_SESSION_TARGET=$(stack_targets session)"
    echo "CERROJO_KMS_ADDR=$(stack_targets kms)"
    echo "CERROJO_SESSION_ADDR=$(stack_targets session)"
    echo "CERROJO_AUTH_ADDR=$(stack_targets auth)"
    echo "CERROJO_GATEWAY_HOST=127.0.0.1"
    echo "CERROJO_GATEWAY_PORT=$port"
    echo "CERROJO_GATEWAY_ADMIN_PORT=$admin_port"
    # Every request comes from 127.0.0.1; these tests are not about the
    # per-IP limits, which a fast machine would otherwise reach (logins
    # that open a session spend the session limit too).
    echo "CERROJO_GATEWAY_RATE_PER_MINUTE=100000"
    echo "CERROJO_GATEWAY_RATE_BURST=10000"
    echo "CERROJO_GATEWAY_HANDSHAKE_RATE_PER_MINUTE=100000"
    echo "CERROJO_GATEWAY_HANDSHAKE_RATE_BURST=10000"
    echo "CERROJO_GATEWAY_SESSION_RATE_PER_MINUTE=100000"
    echo "CERROJO_GATEWAY_SESSION_RATE_BURST=10000"
    echo "CERROJO_GATEWAY_REGISTER_RATE_PER_MINUTE=100000"
    echo "CERROJO_GATEWAY_REGISTER_RATE_BURST=10000"
}

stack_is_ready() { # service, port, env file
    if [[ $1 == gateway ]]; then
        curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$2/healthz"
    else
        (set -a && source "$3" && "$STACK_BIN/cerrojo-$1" healthcheck)
    fi
}

# Starts replica $2 of service $1 and waits until it is ready.
stack_start_one() {
    local svc=$1 replica=$2 key=$1/$2
    local port=${STACK_PORTS[$key]:-$(cj_free_port)}
    local admin_port
    admin_port=$(cj_free_port)
    STACK_PORTS[$key]=$port
    local env_file=$STACK_WORK/$svc-$replica.env
    stack_env "$svc" "$replica" "$port" "$admin_port" | sed "s/'/'\\\\''/g; s/=\(.*\)/='\1'/" >"$env_file"
    (
        cd "$STACK_WORK"
        set -a
        source "$env_file"
        exec "$STACK_BIN/cerrojo-$svc"
    ) >>"$STACK_WORK/log/$svc-$replica.log" 2>&1 &
    STACK_PIDS[$key]=$!
    cj_wait_ready "stack: $svc replica $replica" "${STACK_PIDS[$key]}" \
        "$STACK_WORK/log/$svc-$replica.log" "$STACK_READY_TIMEOUT_S" \
        stack_is_ready "$svc" "$port" "$env_file"
}

# Starts $1 replicas (default 1) of every service, callees first. The
# ports are chosen first, so that every caller knows every replica.
stack_start_services() {
    local replicas=${1:-1} svc r
    for svc in "${STACK_SERVICES[@]}"; do
        for ((r = 1; r <= replicas; r++)); do
            STACK_PORTS[$svc/$r]=${STACK_PORTS[$svc/$r]:-$(cj_free_port)}
        done
    done
    for svc in "${STACK_SERVICES[@]}"; do
        for ((r = 1; r <= replicas; r++)); do
            stack_start_one "$svc" "$r" || return 1
        done
    done
    STACK_GATEWAY_URL=http://127.0.0.1:${STACK_PORTS[gateway/1]}
}

# Stops replica $2 of service $1: TERM, then KILL after the timeout.
stack_stop_one() {
    local key=$1/$2 pid
    pid=${STACK_PIDS[$key]:-}
    [[ -n $pid ]] || return 0
    cj_stop_pid "$pid" "$STACK_STOP_TIMEOUT_S"
    unset "STACK_PIDS[$key]"
}

stack_stop_services() {
    local i key
    for ((i = ${#STACK_SERVICES[@]} - 1; i >= 0; i--)); do
        for key in $(printf '%s\n' "${!STACK_PIDS[@]}" | grep "^${STACK_SERVICES[i]}/" || true); do
            stack_stop_one "${key%/*}" "${key#*/}"
        done
    done
}

stack_stop_all() {
    stack_stop_services
    cj_stop_stores "$STACK_WORK/pg" "${STACK_PG_PORT:-0}" \
        "$STACK_WORK/redis" "${STACK_REDIS_PORT:-0}"
}
