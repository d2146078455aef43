#!/usr/bin/env bash
# Runs the benchmarks and writes docs/benchmarks.md with plots under
# docs/bench/. Starts its own Postgres, Redis, kms, session, auth, gateway
# and two nginx instances on loopback ports in a temporary folder, drives
# them with build/bin/cerrojo-bench, and stops every process it started by
# pid on exit, whatever happened.
#
# BENCH_SECONDS  timed seconds per flow (default 10)
# BENCH_PORT_BASE first of 20 consecutive ports to use (default: free ports)
# BENCH_FLOWS    space-separated subset of steps to run (default: all); see
#                the step names in run_all below
# BENCH_ONLY     extended regular expression: measure only the flows whose
#                tag matches it (e.g. 'introspect|grpc-health'), for quick
#                comparisons; the report then lacks the other flows
# BENCH_OUT      report path (default docs/benchmarks.md)
# BENCH_PROFILE  folder: record a system-wide perf profile (cpu-clock
#                samples) of every measurement into FOLDER/<tag>.data and
#                a per-symbol text report beside it
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

build_dir=$(cj_build_dir "$root")
bin=$build_dir/bin
BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_OUT=${BENCH_OUT:-$root/docs/benchmarks.md}
plot_dir=$(dirname "$BENCH_OUT")/bench
# Readiness poll interval while timing a service's start, in seconds.
READY_POLL_S=0.01
READY_TIMEOUT_S=60
STOP_TIMEOUT_S=10
# perf sampling rate per CPU when BENCH_PROFILE is set.
PROFILE_HZ=499
# Connections per kind of flow: CPU-bound ceilings use one thread per core;
# the HTTP flows use the 64 connections the stateful target names.
cores=$(nproc)
CONNS_HTTP=64
CONNS_LOGIN=16
CONNS_REFRESH=32
CONNS_GRPC=16
CONNS_PG=16
ARGON2_MEMORY_BYTES=$((19 * 1024 * 1024))
ARGON2_PASSES=2

for exe in cerrojo-bench cerrojo-kms cerrojo-session cerrojo-auth cerrojo-gateway cerrojo-migrate; do
    if [[ ! -x $bin/$exe ]]; then
        echo "bench: $bin/$exe is missing; run scripts/build.sh first" >&2
        exit 1
    fi
done
for tool in nginx gnuplot; do
    if ! command -v "$tool" >/dev/null && [[ ! -x /usr/sbin/$tool ]]; then
        echo "bench: $tool is missing; run scripts/deps.sh (make deps)" >&2
        exit 1
    fi
done
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

tmp=$(mktemp -d /tmp/cerrojo-bench.XXXXXX)
chmod 0755 "$tmp"
results=$tmp/results.txt
meta=$tmp/meta.txt
: >"$results"
: >"$meta"
declare -A svc_pid=()
pg_dir=""
redis_dir=""
nginx_pids=()
bg_pids=()

# Sets the variable named $1 to the next port: BENCH_PORT_BASE + n, or a
# port the kernel reports free. Never called in a subshell, so the count
# carries over.
next_port_index=0
alloc_port() {
    local port
    if [[ -n ${BENCH_PORT_BASE:-} ]]; then
        port=$((BENCH_PORT_BASE + next_port_index))
    else
        port=$(cj_free_port)
    fi
    next_port_index=$((next_port_index + 1))
    if cj_port_in_use "$port"; then
        echo "bench: port $port is in use; set BENCH_PORT_BASE to a free range" >&2
        exit 1
    fi
    printf -v "$1" '%s' "$port"
}

stop_services() {
    local svc
    for svc in gateway auth session kms; do
        if [[ -n ${svc_pid[$svc]:-} ]]; then
            cj_stop_pid "${svc_pid[$svc]}" "$STOP_TIMEOUT_S"
            unset "svc_pid[$svc]"
        fi
    done
}

stop_stores() {
    cj_stop_stores "$pg_dir" "${pg_port:-0}" "$redis_dir" "${redis_port:-0}"
    pg_dir=""
    redis_dir=""
}

cleanup() {
    local pid
    for pid in "${bg_pids[@]}"; do
        cj_stop_pid "$pid" "$STOP_TIMEOUT_S"
    done
    for pid in "${nginx_pids[@]}"; do
        cj_stop_pid "$pid" "$STOP_TIMEOUT_S"
    done
    stop_services
    stop_stores
    rm -rf "$tmp"
}
trap 'rc=$?; cleanup; exit $rc' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now_ms() {
    echo $(($(date +%s%N) / 1000000))
}

# Writes the environment every service reads, like scripts/stack.sh.
write_env() {
    local alg=$1 env=$tmp/stack.env
    local pg="host=127.0.0.1 port=$pg_port dbname=cerrojo"
    cat >"$env" <<ENV
CERROJO_ENV_FILE=/dev/null
CERROJO_PROFILE=dev
CERROJO_LOG_LEVEL=warn
CERROJO_GRPC_PLAINTEXT=true
CERROJO_MIGRATE_DSN='$pg user=postgres'
CERROJO_MIGRATE_DIR=$root/migrations
CERROJO_MIGRATE_KMS_PASSWORD=bench-kms
CERROJO_MIGRATE_AUTH_PASSWORD=bench-auth
CERROJO_KMS_DATABASE_URL='$pg user=cerrojo_kms password=bench-kms'
CERROJO_AUTH_DATABASE_URL='$pg user=cerrojo_auth password=bench-auth'
CERROJO_REDIS_HOST=127.0.0.1
CERROJO_REDIS_PORT=$redis_port
CERROJO_REDIS_ADDR=127.0.0.1:$redis_port
CERROJO_AUTH_REDIS_HOST=127.0.0.1
CERROJO_AUTH_REDIS_PORT=$redis_port
CERROJO_KMS_LISTEN=127.0.0.1:$kms_port
CERROJO_SESSION_LISTEN=127.0.0.1:$session_port
CERROJO_AUTH_LISTEN=127.0.0.1:$auth_port
CERROJO_KMS_ADDR=127.0.0.1:$kms_port
CERROJO_SESSION_ADDR=127.0.0.1:$session_port
CERROJO_AUTH_ADDR=127.0.0.1:$auth_port
CERROJO_AUTH_KMS_TARGET=127.0.0.1:$kms_port
CERROJO_AUTH_SESSION_TARGET=127.0.0.1:$session_port
CERROJO_AUTH_METRICS_PORT=$auth_metrics_port
CERROJO_KMS_METRICS_PORT=$kms_metrics_port
CERROJO_SESSION_METRICS_PORT=$session_metrics_port
CERROJO_GATEWAY_HOST=127.0.0.1
CERROJO_GATEWAY_PORT=$gateway_port
CERROJO_GATEWAY_ADMIN_PORT=$gateway_admin_port
CERROJO_KMS_VAR_DIR=$tmp/kms-$alg
CERROJO_KMS_SIGNING_ALG=$alg
CERROJO_AUTH_ARGON2_MEMORY=$ARGON2_MEMORY_BYTES
CERROJO_AUTH_ARGON2_PASSES=$ARGON2_PASSES
CERROJO_GATEWAY_RATE_PER_MINUTE=1000000
CERROJO_GATEWAY_RATE_BURST=1000000
CERROJO_GATEWAY_HANDSHAKE_RATE_PER_MINUTE=1000000
CERROJO_GATEWAY_HANDSHAKE_RATE_BURST=1000000
CERROJO_GATEWAY_SESSION_RATE_PER_MINUTE=1000000
CERROJO_GATEWAY_SESSION_RATE_BURST=1000000
CERROJO_GATEWAY_REGISTER_RATE_PER_MINUTE=1000000
CERROJO_GATEWAY_REGISTER_RATE_BURST=1000000
CERROJO_GATEWAY_BENCH_ROUTE=true
ENV
    mkdir -p "$tmp/kms-$alg"
}

# A gRPC service is ready once one Health/Check from the load generator
# gets SERVING back. The services' own healthcheck command would do too, but
# it waits about 0.1 s at exit for the gRPC core's threads, which would
# count as start time.
is_ready() {
    local port
    case $1 in
    gateway)
        curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$gateway_port/readyz" 2>/dev/null
        return
        ;;
    kms) port=$kms_port ;;
    session) port=$session_port ;;
    auth) port=$auth_port ;;
    esac
    "$bin/cerrojo-bench" grpc-health --connections 1 --requests 1 \
        --grpc "127.0.0.1:$port" >/dev/null 2>&1
}

# Starts one service and records its start-to-ready time in ms.
start_service() {
    local svc=$1 alg=$2 log=$tmp/cerrojo-$1-$2.log t0 pid elapsed
    t0=$(now_ms)
    "$bin/cerrojo-$svc" >>"$log" 2>&1 </dev/null &
    pid=$!
    svc_pid[$svc]=$pid
    until is_ready "$svc"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "bench: $svc exited during start; last lines of its log:" >&2
            cj_log_tail "$log"
            exit 1
        fi
        if (($(now_ms) - t0 > READY_TIMEOUT_S * 1000)); then
            echo "bench: $svc not ready after ${READY_TIMEOUT_S}s" >&2
            cj_log_tail "$log"
            exit 1
        fi
        sleep "$READY_POLL_S"
    done
    elapsed=$(($(now_ms) - t0))
    echo "ready_ms.$alg.$svc=$elapsed" >>"$meta"
    echo "bench: $svc ready in ${elapsed} ms (pid $pid)"
}

# Starts fresh stores and the four services with signing algorithm $1.
start_stack() {
    local alg=$1 svc
    pg_dir=$tmp/pg-$alg
    redis_dir=$tmp/redis-$alg
    scripts/pg.sh start "$pg_dir" "$pg_port" >/dev/null
    scripts/redis.sh start "$redis_dir" "$redis_port" >/dev/null
    write_env "$alg"
    set -a
    # shellcheck source=/dev/null
    source "$tmp/stack.env"
    set +a
    "$bin/cerrojo-migrate" up >>"$tmp/migrate.log" 2>&1 || {
        echo "bench: migrations failed:" >&2
        tail -n 5 "$tmp/migrate.log" >&2
        exit 1
    }
    for svc in kms session auth gateway; do
        start_service "$svc" "$alg"
    done
    # Idle memory: after a short settle, before any load.
    sleep 1
    # RSS counts shared library pages too; Pss shares them out among the
    # processes mapping them, Anonymous is the private heap and stacks.
    for svc in kms session auth gateway; do
        local pid=${svc_pid[$svc]}
        echo "idle_rss_kb.$alg.$svc=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")" >>"$meta"
        echo "idle_pss_kb.$alg.$svc=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup")" >>"$meta"
        echo "idle_anon_kb.$alg.$svc=$(awk '/^Anonymous:/ {print $2}' "/proc/$pid/smaps_rollup")" >>"$meta"
    done
}

# Stops and starts the four services over the same stores, now holding
# their keys: the start-to-ready time of an ordinary restart.
restart_services() {
    local svc
    stop_services
    for svc in kms session auth gateway; do
        start_service "$svc" restart
    done
}

watch_args() {
    local svc
    for svc in kms session auth gateway; do
        if [[ -n ${svc_pid[$svc]:-} ]]; then
            printf -- '--watch %s=%s ' "$svc" "${svc_pid[$svc]}"
        fi
    done
}

# Runs one cerrojo-bench measurement: TAG FLOW CONNECTIONS [SECONDS] -- ARGS
measure() {
    local tag=$1 flow=$2 conns=$3 seconds=$4
    shift 4
    local line
    if [[ -n ${BENCH_ONLY:-} && ! $tag =~ ^($BENCH_ONLY)$ ]]; then
        return 0
    fi
    echo "bench: $tag ($flow, $conns connections, ${seconds}s)"
    local perf_pid=""
    if [[ -n ${BENCH_PROFILE:-} ]]; then
        mkdir -p "$BENCH_PROFILE"
        perf record -q -e cpu-clock -F "$PROFILE_HZ" -a -g \
            -o "$BENCH_PROFILE/$tag.data" >/dev/null 2>&1 &
        perf_pid=$!
        bg_pids+=("$perf_pid")
    fi
    # shellcheck disable=SC2046
    if ! line=$("$bin/cerrojo-bench" "$flow" --connections "$conns" \
        --seconds "$seconds" --label "$tag" \
        --series "$tmp/$tag.series" --percentiles "$tmp/$tag.pct" \
        "$@" 2>"$tmp/$tag.err"); then
        echo "bench: $tag failed:" >&2
        cat "$tmp/$tag.err" >&2
    fi
    if [[ -n $perf_pid ]]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
        bg_pids=("${bg_pids[@]/$perf_pid/}")
        perf report -i "$BENCH_PROFILE/$tag.data" --stdio --no-children \
            --sort comm,dso,symbol -g none --percent-limit 0.3 \
            >"$BENCH_PROFILE/$tag.txt" 2>/dev/null || true
    fi
    line=$(grep '^RESULT ' <<<"$line" || true)
    if [[ -n $line ]]; then
        echo "$line" >>"$results"
        echo "  ${line#RESULT }" | tr ' ' '\n' | grep -E '^(rps|p50_ms|p99_ms|errors)=' | tr '\n' ' '
        echo
    fi
}

url() {
    echo "http://127.0.0.1:$gateway_port"
}

stack_flows() {
    local alg=$1 tag=${1,,}
    local g=(--url "$(url)")
    # shellcheck disable=SC2207
    local w=($(watch_args))
    measure "login-stateless.$tag" login-stateless $CONNS_LOGIN "$BENCH_SECONDS" "${g[@]}" "${w[@]}"
    measure "refresh.$tag" refresh $CONNS_REFRESH "$BENCH_SECONDS" "${g[@]}" "${w[@]}"
    [[ $alg == RS256 ]] || return 0
    measure login-stateful login-stateful $CONNS_LOGIN "$BENCH_SECONDS" "${g[@]}" "${w[@]}"
    measure handshake handshake $CONNS_HTTP "$BENCH_SECONDS" "${g[@]}" "${w[@]}"
    measure me-stateless me-stateless $CONNS_HTTP "$BENCH_SECONDS" "${g[@]}" "${w[@]}"
    measure me-stateful me-stateful $CONNS_HTTP "$BENCH_SECONDS" "${g[@]}" "${w[@]}"
    measure jwks http $CONNS_HTTP "$BENCH_SECONDS" "${g[@]}" --path /.well-known/jwks.json "${w[@]}"
    measure introspect introspect $CONNS_GRPC "$BENCH_SECONDS" "${g[@]}" --grpc "127.0.0.1:$auth_port" "${w[@]}"
    measure grpc-health grpc-health $CONNS_GRPC "$BENCH_SECONDS" --grpc "127.0.0.1:$auth_port" "${w[@]}"
    measure one-hop http $CONNS_HTTP "$BENCH_SECONDS" "${g[@]}" --path /v1/bench/ping "${w[@]}"
    local dsn="host=127.0.0.1 port=$pg_port dbname=cerrojo user=postgres"
    measure pg-write pg-write $CONNS_PG "$BENCH_SECONDS" --pg "$dsn"
    # The 3 row writes of a refresh (mark the token used with its
    # successor's id, insert the successor, audit event) in one
    # transaction, as auth makes them.
    measure pg-refresh-writes pg-write $CONNS_PG "$BENCH_SECONDS" --pg "$dsn" --pg-writes 3
    flood_flows
}

# Introspect and stateful requests while a login flood saturates the CPUs.
flood_flows() {
    local g=(--url "$(url)") pid
    local inner
    inner=$(awk -v s="$BENCH_SECONDS" 'BEGIN { v = s - 2; if (v < 1) v = 1; print v }')
    for flow in introspect me-stateful; do
        "$bin/cerrojo-bench" login-stateless --connections $CONNS_LOGIN \
            --seconds "$BENCH_SECONDS" --label "flood-login.$flow" "${g[@]}" \
            >"$tmp/flood-$flow.out" 2>"$tmp/flood-$flow.err" &
        pid=$!
        bg_pids+=("$pid")
        # The flood's users register first (untimed); start once it runs.
        sleep 2
        if [[ $flow == introspect ]]; then
            measure "flood.$flow" introspect $CONNS_GRPC "$inner" "${g[@]}" --grpc "127.0.0.1:$auth_port"
        else
            # The gateway accepts 64 connections per client IP and the
            # flood holds CONNS_LOGIN of them.
            measure "flood.$flow" me-stateful $((CONNS_HTTP - CONNS_LOGIN)) "$inner" "${g[@]}"
        fi
        wait "$pid" || true
        bg_pids=("${bg_pids[@]/$pid/}")
        grep '^RESULT ' "$tmp/flood-$flow.out" >>"$results" || true
    done
}

ceiling_flows() {
    measure argon2 argon2 "$cores" "$BENCH_SECONDS" --argon2-memory "$ARGON2_MEMORY_BYTES" --argon2-passes "$ARGON2_PASSES"
    measure sign-rs256 sign-rs256 "$cores" "$BENCH_SECONDS"
    measure sign-eddsa sign-eddsa "$cores" "$BENCH_SECONDS"
    measure x25519 x25519 "$cores" "$BENCH_SECONDS"
}

# Two nginx instances: a static JSON file, and a proxy to it over a
# keep-alive upstream.
nginx_flows() {
    local dir=$tmp/nginx port_static port_proxy conf
    alloc_port port_static
    alloc_port port_proxy
    mkdir -p "$dir/www" "$dir/static" "$dir/proxy"
    printf '{"status":"ok","service":"bench","keys":[1,2,3]}\n' >"$dir/www/small.json"
    for role in static proxy; do
        conf=$dir/$role/nginx.conf
        {
            echo "worker_processes $cores;"
            echo "pid $dir/$role/nginx.pid;"
            echo "error_log $dir/$role/error.log warn;"
            echo "daemon off;"
            echo "events { worker_connections 1024; }"
            echo "http {"
            echo "  access_log off;"
            echo "  client_body_temp_path $dir/$role/body;"
            echo "  proxy_temp_path $dir/$role/proxy;"
            echo "  fastcgi_temp_path $dir/$role/fastcgi;"
            echo "  uwsgi_temp_path $dir/$role/uwsgi;"
            echo "  scgi_temp_path $dir/$role/scgi;"
            echo "  keepalive_requests 1000000;"
            if [[ $role == static ]]; then
                echo "  server { listen 127.0.0.1:$port_static; root $dir/www;"
                echo "    default_type application/json; }"
            else
                echo "  upstream backend { server 127.0.0.1:$port_static; keepalive 64; }"
                echo "  server { listen 127.0.0.1:$port_proxy;"
                echo "    location / { proxy_pass http://backend;"
                echo "      proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
            fi
            echo "}"
        } >"$conf"
        "$nginx_bin" -c "$conf" -p "$dir/$role" -e "$dir/$role/error.log" >"$dir/$role/stdout.log" 2>&1 &
        nginx_pids+=($!)
    done
    local waited=0
    until curl -fsS -o /dev/null "http://127.0.0.1:$port_static/small.json" 2>/dev/null &&
        curl -fsS -o /dev/null "http://127.0.0.1:$port_proxy/small.json" 2>/dev/null; do
        sleep 0.1
        waited=$((waited + 1))
        if ((waited > 100)); then
            echo "bench: nginx did not start; see $dir/*/error.log" >&2
            cat "$dir"/*/error.log >&2 || true
            return 1
        fi
    done
    # Every nginx process we started, masters and their workers (children
    # by parent pid), for CPU per request.
    local watch=() master child n=0
    for master in "${nginx_pids[@]}"; do
        for child in $master $(pgrep -P "$master" || true); do
            n=$((n + 1))
            watch+=(--watch "nginx$n=$child")
        done
    done
    measure nginx-static http $CONNS_HTTP "$BENCH_SECONDS" --url "http://127.0.0.1:$port_static" --path /small.json "${watch[@]}"
    measure nginx-proxy http $CONNS_HTTP "$BENCH_SECONDS" --url "http://127.0.0.1:$port_proxy" --path /small.json "${watch[@]}"
    local pid
    for pid in "${nginx_pids[@]}"; do
        cj_stop_pid "$pid" "$STOP_TIMEOUT_S"
    done
    nginx_pids=()
}

# perf stat exits 0 even where the VM exposes no hardware counters, so
# only its output shows whether they work. Sampling on the cpu-clock
# software event (what BENCH_PROFILE uses) works either way.
perf_counters() {
    local out
    if ! out=$(perf stat -x, -e instructions true 2>&1); then
        echo "no perf"
    elif grep -q 'not supported' <<<"$out"; then
        echo "no hardware counters (cpu-clock sampling only)"
    else
        echo "hardware counters"
    fi
}

versions() {
    {
        echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "nproc=$cores"
        echo "cpu=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
        echo "mem=$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
        echo "loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
        echo "gcc=$(gcc -dumpfullversion 2>/dev/null || gcc -dumpversion)"
        echo "openssl=$(openssl version 2>/dev/null | cut -d' ' -f2)"
        echo "libsodium=$(pkg-config --modversion libsodium 2>/dev/null)"
        echo "postgres=$(/usr/lib/postgresql/15/bin/postgres --version 2>/dev/null | awk '{print $3}')"
        echo "redis=$(redis-server --version 2>/dev/null | sed 's/.*v=\([^ ]*\).*/\1/')"
        echo "nginx=$("$nginx_bin" -v 2>&1 | sed 's|.*nginx/||')"
        echo "libcurl=$(pkg-config --modversion libcurl 2>/dev/null)"
        echo "grpc=$(pkg-config --modversion grpc 2>/dev/null)"
        echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
        echo "seconds=$BENCH_SECONDS"
        echo "argon2_memory=$ARGON2_MEMORY_BYTES"
        echo "argon2_passes=$ARGON2_PASSES"
        echo "perf=$(perf_counters)"
    } >>"$meta"
}

want() {
    [[ -z ${BENCH_FLOWS:-} || " $BENCH_FLOWS " == *" $1 "* ]]
}

alloc_port pg_port
alloc_port redis_port
alloc_port kms_port
alloc_port session_port
alloc_port auth_port
alloc_port gateway_port
alloc_port gateway_admin_port
alloc_port kms_metrics_port
alloc_port session_metrics_port
alloc_port auth_metrics_port

versions
if want ceilings; then
    ceiling_flows
fi
if want nginx; then
    nginx_flows
fi
if want rs256; then
    start_stack RS256
    stack_flows RS256
    restart_services
    stop_services
    stop_stores
fi
if want eddsa; then
    start_stack EdDSA
    stack_flows EdDSA
    stop_services
    stop_stores
fi

mkdir -p "$plot_dir"
/usr/bin/python3 bench/report.py --results "$results" --meta "$meta" \
    --data "$tmp" --out "$BENCH_OUT" --plots "$plot_dir"
echo "bench: wrote $BENCH_OUT"
