#!/usr/bin/env bash
# `make run`: starts the local stack (scripts/stack.sh up), prints where each
# part listens, then keeps the stack in the foreground until Ctrl-C, INT or
# TERM, or until a service exits, and stops it again (scripts/stack.sh down).
# It exits 1 and touches nothing when any part of the stack already runs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source=scripts/lib.sh
source "$root/scripts/lib.sh"

# Seconds between checks that every started service is still running.
WATCH_INTERVAL_S=2

# Marks the stack as this run's, so that a `stack.sh up` from another
# terminal is rejected with a message that the stack stops with this run.
run_marker=$root/var/run/make-run.pid

# A second `make run` in this checkout would adopt the first one's stack,
# and whichever ended first would stop it under the other, so it stops
# here, before it sets the traps that stop the stack.
other=$(cat "$run_marker" 2>/dev/null || true)
if [[ $other =~ ^[0-9]+$ && $other != "$$" ]] &&
    [[ $(tr '\0' ' ' <"/proc/$other/cmdline" 2>/dev/null || true) == *run.sh* ]] &&
    [[ $(readlink "/proc/$other/cwd" 2>/dev/null || true) == "$root" ]]; then
    echo "run: 'make run' is already running in this checkout (pid $other);" \
        "use its stack, or stop it (Ctrl-C in its terminal) first" >&2
    exit 1
fi

# A stack that `make up` started runs until `make down`, and so does one
# that a killed `make run` left behind. This run would adopt it and stop
# all of it at Ctrl-C, so it leaves such a stack alone.
if parts=$(scripts/stack.sh running 2>/dev/null); then
    echo "run: a stack is running in this checkout" \
        "($(echo "$parts" | paste -sd, - | sed 's/,/, /g')), started by" \
        "'make up' or left by a 'make run' that did not stop it. 'make run'" \
        "leaves it alone: use it as it is, or stop it with 'make down' and" \
        "run 'make run' again." >&2
    exit 1
fi

stopped=0
stop_stack() {
    if ((stopped)); then
        return
    fi
    stopped=1
    echo
    echo "run: stopping the stack"
    scripts/stack.sh down || true
    if [[ $(cat "$run_marker" 2>/dev/null || true) == "$$" ]]; then
        rm -f "$run_marker"
    fi
}
trap 'stop_stack; exit 0' INT TERM
trap stop_stack EXIT

mkdir -p "$root/var/run"
echo "$$" >"$run_marker"
scripts/stack.sh up
set -a
# shellcheck source=/dev/null
source var/stack.env
set +a

echo
echo "run: the stack, all on 127.0.0.1 (settings in var/stack.env, logs in var/log/):"
echo "  gateway   $CERROJO_STACK_GATEWAY_URL  admin and metrics :$CERROJO_GATEWAY_ADMIN_PORT"
echo "  auth      gRPC $CERROJO_AUTH_LISTEN  metrics :$CERROJO_AUTH_METRICS_PORT"
echo "  kms       gRPC $CERROJO_KMS_LISTEN  metrics :$CERROJO_KMS_METRICS_PORT"
echo "  session   gRPC $CERROJO_SESSION_LISTEN  metrics :$CERROJO_SESSION_METRICS_PORT"
echo "  postgres  127.0.0.1:$CERROJO_PG_PORT (database cerrojo)"
echo "  redis     127.0.0.1:$CERROJO_REDIS_PORT"
echo
if ! scripts/walkthrough.sh "$CERROJO_STACK_GATEWAY_URL" "$root/var/demo"; then
    echo "run: the walkthrough failed; the stack stays up, logs in var/log/" >&2
fi
echo
echo "run: try the client yourself:"
echo "  ${BUILD_DIR:-build}/bin/cerrojo --url $CERROJO_STACK_GATEWAY_URL --state var/demo/state.json keys"
echo
echo "run: press Ctrl-C to stop"

while true; do
    sleep "$WATCH_INTERVAL_S" &
    wait $! || true
    for pidfile in "$root"/var/run/cerrojo-*.pid; do
        [[ -e $pidfile ]] || continue
        pid=$(cat "$pidfile")
        if ! kill -0 "$pid" 2>/dev/null; then
            name=$(basename "$pidfile" .pid)
            echo "run: $name (pid $pid) exited; last lines of var/log/$name.log:" >&2
            cj_log_tail "var/log/$name.log"
            exit 1
        fi
    done
done
