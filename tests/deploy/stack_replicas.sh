#!/usr/bin/env bash
# scripts/stack.sh with REPLICAS=2 and TLS=1 in a private copy of the
# scripts (so var/ is a temporary folder): every replica starts with mutual
# TLS on its gRPC port and is listed by
# status, `up` from elsewhere while a `make run` owns the stack exits 1,
# `make run` on a stack of `make up` exits 1 and leaves it running, `up`
# waits for a service that is stopping and starts a new one, a client
# registers, reads its profile, refreshes and logs out
# through the gateway, one auth replica is killed and the next calls still
# succeed, and `down` leaves no replica running.
#
# Usage: stack_replicas.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
source_dir=$1
build_dir=$(cd "$2" && pwd)
bin=$build_dir/bin
work=$(mktemp -d /tmp/cerrojo-replicas.XXXXXX)
REPLICAS=2
# Replica 2 uses the eight service ports of replica 1 plus this step, so
# the two sets never overlap.
PORT_STEP=10
# Attempts at finding a free block of ports.
PORT_TRIES=50
# Blocks are taken below Linux's ephemeral range (32768 and up by
# default), where client connections of this very test, to Postgres for
# one, would otherwise take ports of the block before the services bind.
PORT_MIN=20000
PORT_MAX=32768
# Seconds a `make run` that wrongly adopts the stack of `make up` may run
# (its walkthrough included) before the test ends it.
RUN_TIMEOUT_S=120

fail() {
    echo "replicas: FAIL $*" >&2
    exit 1
}

cleanup() {
    local rc=$?
    BUILD_DIR=$build_dir "$work/scripts/stack.sh" down >/dev/null 2>&1 || true
    local home
    home=$(cat "$work/var/pg/pg.location" 2>/dev/null || true)
    if [[ $home == /var/tmp/cerrojo-* ]]; then
        rm -rf "$home"
    fi
    rm -rf "$work"
    exit $rc
}
trap cleanup EXIT

# Free means no TCP socket of any state uses the port: a client socket
# bound to it also makes the bind of a server fail.
port_free() { [[ -z $(ss -Htan "sport = :$1" 2>/dev/null) ]]; }

# Prints the first port of a run of $1 free ports.
free_block() {
    local n=$1 try base p ok
    for ((try = 0; try < PORT_TRIES; try++)); do
        base=$((PORT_MIN + RANDOM % (PORT_MAX - PORT_MIN - n)))
        ok=1
        for ((p = base; p < base + n; p++)); do
            port_free "$p" || {
                ok=0
                break
            }
        done
        if ((ok)); then
            echo "$base"
            return 0
        fi
    done
    return 1
}

mkdir -p "$work/scripts"
cp "$source_dir"/scripts/*.sh "$work/scripts/"
ln -s "$source_dir/migrations" "$work/migrations"
chmod 0755 "$work"

base=$(free_block $((2 + PORT_STEP * REPLICAS))) || fail "no free block of ports"
TLS=1
export BUILD_DIR=$build_dir REPLICAS TLS CERROJO_REPLICA_PORT_STEP=$PORT_STEP
export CERROJO_PG_PORT=$base CERROJO_REDIS_PORT=$((base + 1))
b=$((base + 2))
export CERROJO_GATEWAY_PORT=$b CERROJO_GATEWAY_ADMIN_PORT=$((b + 1))
export CERROJO_AUTH_PORT=$((b + 2)) CERROJO_KMS_PORT=$((b + 3))
export CERROJO_SESSION_PORT=$((b + 4)) CERROJO_AUTH_METRICS_PORT=$((b + 5))
export CERROJO_KMS_METRICS_PORT=$((b + 6)) CERROJO_SESSION_METRICS_PORT=$((b + 7))

# The stack starts the way `make run` starts it. run.sh records its pid in
# var/run/make-run.pid and then calls `stack.sh up`, which must not take
# its own caller for another owner.
mkdir -p "$work/var/run"
# shellcheck disable=SC2016 # expanded by the inner shell
owner_up='echo $$ >var/run/make-run.pid; scripts/stack.sh up; rc=$?; rm -f var/run/make-run.pid; exit $rc'
(cd "$work" && bash -c "$owner_up" scripts/run.sh) >"$work/up.log" 2>&1 || {
    cat "$work/up.log" >&2
    fail "stack.sh up failed"
}
status_out=$("$work/scripts/stack.sh" status 2>&1) || fail "status reports a stopped part: $status_out"
for svc in kms session auth gateway; do
    grep -q "stack: $svc running" <<<"$status_out" || fail "$svc replica 1 not listed as running"
    grep -q "stack: $svc-2 running" <<<"$status_out" || fail "$svc replica 2 not listed as running"
done
# Every service gets var/stack.env and the port variables exported above;
# none of them may be reported as a variable the service does not read.
if unknown=$(grep -h '"event":"config.unknown_variable"' "$work"/var/log/cerrojo-*.log); then
    fail "a service reports variables it does not read: $unknown"
fi
grep -qx "CERROJO_AUTH_ADDR=127.0.0.1:$((b + 2)),127.0.0.1:$((b + 2 + PORT_STEP))" "$work/var/stack.env" ||
    fail "stack.env does not list both auth replicas"
# The services' loader keeps the first value of a name and the shell the
# last, so stack.env names each variable once.
if dup=$(grep -v '^#' "$work/var/stack.env" | cut -d= -f1 | sort | uniq -d | grep .); then
    fail "stack.env names a variable twice: $dup"
fi
# `up` in the other mode leaves the running stack and its settings alone.
env_before=$(cat "$work/var/stack.env")
if mode_out=$(TLS=0 "$work/scripts/stack.sh" up 2>&1); then
    fail "up with TLS=0 on a TLS stack succeeded: $mode_out"
fi
grep -q "uses mutual TLS (TLS=1)" <<<"$mode_out" || fail "up does not name the running mode: $mode_out"
[[ $(cat "$work/var/stack.env") == "$env_before" ]] || fail "up in the other mode rewrote stack.env"
# TLS=1: every gRPC listener of every replica serves mutual TLS.
for log in "$work"/var/log/cerrojo-{kms,session,auth}{,-2}.log; do
    grep -q '"event":"rpc.listening".*"tls":true' "$log" ||
        fail "$(basename "$log" .log) does not serve gRPC over TLS"
    if grep -q '"event":"rpc.listening".*"tls":false' "$log"; then
        fail "$(basename "$log" .log) serves plaintext gRPC"
    fi
done

# While a `make run` runs, `up` from elsewhere exits 1 and names it.
(cd "$work" && exec bash -c 'sleep 60; :' scripts/run.sh) &
owner=$!
for ((i = 0; i < 50; i++)); do
    [[ $(tr '\0' ' ' <"/proc/$owner/cmdline") == *run.sh* ]] && break
    sleep 0.1
done
echo "$owner" >"$work/var/run/make-run.pid"
if up_out=$("$work/scripts/stack.sh" up 2>&1); then
    fail "up succeeded while a make run owns the stack"
fi
grep -q "belongs to 'make run' (pid $owner)" <<<"$up_out" ||
    fail "up does not name the make run that owns the stack: $up_out"
# A second `make run` exits 1 before it touches the stack of the first.
if run_out=$("$work/scripts/run.sh" 2>&1); then
    fail "a second make run started while one runs"
fi
grep -q "already running in this checkout (pid $owner)" <<<"$run_out" ||
    fail "a second make run does not name the first: $run_out"
[[ $(cat "$work/var/run/make-run.pid") == "$owner" ]] ||
    fail "a second make run replaced the first one's marker"
"$work/scripts/stack.sh" status >/dev/null 2>&1 ||
    fail "a second make run stopped the first one's stack"
kill "$owner"
wait "$owner" 2>/dev/null || true
# A marker left by a run that has ended does not stop `up`.
"$work/scripts/stack.sh" up >>"$work/up.log" 2>&1 ||
    fail "up failed after the make run ended: $(tail -n 3 "$work/up.log")"
rm -f "$work/var/run/make-run.pid"

# The stack now belongs to `make up`. A `make run` exits 1 before it sets
# the traps that would stop the stack when it ends, and leaves every part
# running. The timeout ends a run that adopted the stack by mistake.
pids_before=$(cat "$work"/var/run/cerrojo-*.pid | sort)
if run_out=$(timeout "$RUN_TIMEOUT_S" "$work/scripts/run.sh" 2>&1); then
    fail "make run adopted a stack started by make up: $run_out"
fi
grep -q "a stack is running in this checkout" <<<"$run_out" ||
    fail "make run does not say that a stack is running: $run_out"
grep -q "'make up'" <<<"$run_out" || fail "make run does not name make up: $run_out"
grep -q "'make down'" <<<"$run_out" || fail "make run does not name make down: $run_out"
[[ ! -e $work/var/run/make-run.pid ]] || fail "make run marked the stack of make up as its own"
"$work/scripts/stack.sh" status >/dev/null 2>&1 || fail "make run stopped a part of the stack of make up"
[[ $(cat "$work"/var/run/cerrojo-*.pid | sort) == "$pids_before" ]] ||
    fail "make run restarted a service of the stack of make up"

# `up` right after a service got TERM does not take it for running. SIGSTOP
# pauses the service before it takes the TERM, so the test does not depend
# on how long its shutdown lasts.
# The TERM waits until the stop has taken effect: a main thread woken by the
# STOP could otherwise take the TERM in sigwait just before it stops, and
# then it would have neither a pending TERM nor a "stopping" line.
old_session=$(cat "$work/var/run/cerrojo-session.pid")
kill -STOP "$old_session"
for ((i = 0; i < 100; i++)); do
    [[ $(awk '{ print $3 }' "/proc/$old_session/stat" 2>/dev/null) == T ]] && break
    sleep 0.05
done
[[ $(awk '{ print $3 }' "/proc/$old_session/stat" 2>/dev/null) == T ]] ||
    fail "session (pid $old_session) did not stop on SIGSTOP"
kill -TERM "$old_session"
status_out=$("$work/scripts/stack.sh" status 2>&1) && fail "status exits 0 while session stops"
grep -q "stack: session stopping (pid $old_session)" <<<"$status_out" ||
    fail "status does not report session as stopping: $status_out"
# A service that does not exit within the stop timeout makes `up` fail.
if up_out=$("$work/scripts/stack.sh" up 2>&1); then
    kill -CONT "$old_session"
    fail "up succeeded while session was stopping: $up_out"
fi
grep -q "stack: session (pid $old_session) is still stopping after" <<<"$up_out" ||
    fail "up does not say that session is still stopping: $up_out"
# Once the service finishes its shutdown, `up` starts a new one.
"$work/scripts/stack.sh" up >"$work/up-restart.log" 2>&1 &
up_pid=$!
for ((i = 0; i < 200; i++)); do
    grep -q "session (pid $old_session) is stopping; waiting" "$work/up-restart.log" && break
    sleep 0.1
done
kill -CONT "$old_session"
wait "$up_pid" || fail "up failed after session stopped: $(tail -n 5 "$work/up-restart.log")"
grep -q "session (pid $old_session) is stopping; waiting" "$work/up-restart.log" ||
    fail "up did not wait for the stopping session: $(cat "$work/up-restart.log")"
# An exited process stays a zombie until init reaps it, and a zombie has no
# /proc/PID/exe.
[[ -z $(readlink "/proc/$old_session/exe" 2>/dev/null || true) ]] ||
    fail "the stopped session (pid $old_session) still runs"
new_session=$(cat "$work/var/run/cerrojo-session.pid")
[[ $new_session != "$old_session" ]] || fail "up did not start a new session"
status_out=$("$work/scripts/stack.sh" status 2>&1) || fail "status after the restart: $status_out"
grep -q "stack: session running .*(pid $new_session)" <<<"$status_out" ||
    fail "status does not report the new session as running: $status_out"

url=http://127.0.0.1:$b
state=$work/state.json
printf 'quiet orchard lantern 1\n' >"$work/password"
cli() { timeout 60 "$bin/cerrojo" --url "$url" --state "$state" "$@" >>"$work/client.log" 2>&1; }
cli keys || fail "keys"
cli register --username replica-user --email replica@example.test --password-file "$work/password" || fail "register"
cli me || fail "me"
cli refresh || fail "refresh"

auth2=$(cat "$work/var/run/cerrojo-auth-2.pid")
kill -KILL "$auth2"
for i in 1 2 3; do
    cli me || fail "me $i after killing auth replica 2"
    cli refresh || fail "refresh $i after killing auth replica 2"
done
cli logout || fail "logout"

pids=$(cat "$work"/var/run/cerrojo-*.pid)
"$work/scripts/stack.sh" down >/dev/null 2>&1 || fail "stack.sh down failed"
for pid in $pids; do
    ! kill -0 "$pid" 2>/dev/null || fail "pid $pid still runs after down"
done
if compgen -G "$work/var/run/cerrojo-*.pid" >/dev/null; then
    fail "pidfiles left after down"
fi
echo "replicas: ok"
