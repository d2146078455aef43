#!/usr/bin/env bash
# Two replicas of every service on one machine, the callers balancing
# round-robin across them. Two client streams of logins and refreshes run
# (one per gateway, moving to the other gateway when theirs is gone, as a
# load balancer would) while one replica of each service is killed with
# SIGKILL. Checks: every failed request falls just after a kill, no more
# fail than the streams can have in flight on the killed processes, the
# streams keep succeeding afterwards, and no refresh family ends with two
# live tokens (auth.refresh_tokens).
#
# Usage: scale_out.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
STACK_SOURCE=$1
STACK_BIN=$2/bin
STACK_WORK=$(mktemp -d /tmp/cerrojo-scale.XXXXXX)
REPLICAS=2
STREAMS=2
# Seconds of traffic before the first kill, between kills and after the last.
WARMUP_S=4
BETWEEN_KILLS_S=3
AFTER_S=6
# Seconds after a kill within which a failed request counts as in flight
# on the killed process.
KILL_WINDOW_S=3
# Requests a stream must complete after the last kill.
MIN_SUCCESSES_AFTER=3
PG_BIN=${CERROJO_PG_BIN:-/usr/lib/postgresql/15/bin}
source "$STACK_SOURCE/tests/deploy/stack_lib.sh"
stream_pids=()
trap 'rc=$?; for p in "${stream_pids[@]}"; do kill "$p" 2>/dev/null || true; done; stack_stop_all; rm -rf "$STACK_WORK"; exit $rc' EXIT

fail() {
    echo "scale: FAIL $*" >&2
    exit 1
}

now_ms() { date +%s%3N; }

# One stream: log in, then refresh again and again; a new login every
# fifth request and after any failure (a lost refresh response leaves the
# client with a token that the server already rotated).
stream() { # number
    local n=$1 i=0 url need_login=1 op rc start_ms
    local state=$STACK_WORK/stream-$n.json
    local urls=("http://127.0.0.1:${STACK_PORTS[gateway/$n]}")
    local other
    for other in $(seq 1 "$REPLICAS"); do
        [[ $other == "$n" ]] || urls+=("http://127.0.0.1:${STACK_PORTS[gateway/$other]}")
    done
    while [[ ! -f $STACK_WORK/stop ]]; do
        # The first gateway that answers /healthz, as a load balancer's
        # health check would pick.
        url=${urls[0]}
        for u in "${urls[@]}"; do
            if curl -fsS -o /dev/null --max-time 1 "$u/healthz" 2>/dev/null; then
                url=$u
                break
            fi
        done
        start_ms=$(now_ms)
        if ((need_login || i % 5 == 0)); then
            op=login
            rc=0
            timeout 30 "$STACK_BIN/cerrojo" --url "$url" --state "$state" login \
                --login "scale$n" --password-file "$STACK_WORK/password" >/dev/null 2>>"$STACK_WORK/stream-$n.err" || rc=$?
        else
            op=refresh
            rc=0
            timeout 30 "$STACK_BIN/cerrojo" --url "$url" --state "$state" refresh \
                >/dev/null 2>>"$STACK_WORK/stream-$n.err" || rc=$?
        fi
        need_login=$((rc != 0))
        echo "$start_ms $(now_ms) $op $rc"
        i=$((i + 1))
    done >"$STACK_WORK/stream-$n.log"
}

stack_start_stores || fail "Postgres, Redis or the migrations did not start"
stack_start_services "$REPLICAS" || fail "the services did not start"
echo "scale: $REPLICAS replicas each; gateways ${STACK_PORTS[gateway/1]} and ${STACK_PORTS[gateway/2]}"

umask 077
printf 'scale-out-password-31\n' >"$STACK_WORK/password"
for n in $(seq 1 "$STREAMS"); do
    timeout 60 "$STACK_BIN/cerrojo" --url "$STACK_GATEWAY_URL" --state "$STACK_WORK/register-$n.json" \
        register --username "scale$n" --email "scale$n@example.com" \
        --password-file "$STACK_WORK/password" >/dev/null || fail "register scale$n"
done

for n in $(seq 1 "$STREAMS"); do
    stream "$n" &
    stream_pids+=($!)
done
sleep "$WARMUP_S"
kills=()
for svc in kms session auth gateway; do
    pid=${STACK_PIDS[$svc/1]}
    # The time is taken before the signal: a request the kill breaks can
    # fail before wait returns, and must still count as in flight.
    kills+=("$(now_ms)")
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || true
    unset "STACK_PIDS[$svc/1]"
    echo "scale: killed $svc replica 1 (pid $pid)"
    sleep "$BETWEEN_KILLS_S"
done
sleep "$AFTER_S"
touch "$STACK_WORK/stop"
for p in "${stream_pids[@]}"; do
    wait "$p" || true
done
stream_pids=()

last_kill=${kills[-1]}
total=0
failed=0
for n in $(seq 1 "$STREAMS"); do
    after=0
    while read -r start end op rc; do
        total=$((total + 1))
        if ((start > last_kill + KILL_WINDOW_S * 1000)) && [[ $rc == 0 ]]; then
            after=$((after + 1))
        fi
        [[ $rc == 0 ]] && continue
        failed=$((failed + 1))
        # In flight at a kill: it started before the kill and ended after
        # it. A request that starts within KILL_WINDOW_S after a kill also
        # counts, because its connection may still be the one the kill
        # broke (the client has not seen the reset yet).
        near=0
        for k in "${kills[@]}"; do
            if ((start <= k + KILL_WINDOW_S * 1000 && end >= k)); then
                near=1
            fi
        done
        if ((!near)); then
            tail -n 5 "$STACK_WORK/stream-$n.err" >&2 || true
            fail "stream $n: $op failed (started $start, ended $end), not in flight at a kill (kills at ${kills[*]})"
        fi
        echo "scale: stream $n: $op in flight at a kill failed (started $start, ended $end)"
    done <"$STACK_WORK/stream-$n.log"
    ((after >= MIN_SUCCESSES_AFTER)) || fail "stream $n: only $after successful requests after the last kill"
done
max_failed=$((STREAMS * ${#kills[@]}))
echo "scale: $total requests, $failed failed (at most $max_failed may be in flight on killed processes)"
((total > 0)) || fail "no request was made"
((failed <= max_failed)) || fail "$failed requests failed, more than the $max_failed in flight"

doubles=$("$PG_BIN/psql" -X -At -h 127.0.0.1 -p "$STACK_PG_PORT" -U postgres -d cerrojo -c "
    SELECT count(*) FROM (
        SELECT family_id FROM auth.refresh_tokens
        WHERE used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
        GROUP BY family_id HAVING count(*) > 1) AS doubled")
families=$("$PG_BIN/psql" -X -At -h 127.0.0.1 -p "$STACK_PG_PORT" -U postgres -d cerrojo -c \
    "SELECT count(DISTINCT family_id) FROM auth.refresh_tokens")
[[ $doubles == 0 ]] || fail "$doubles refresh families have two live tokens"
echo "scale: $families refresh families, none with two live tokens"
