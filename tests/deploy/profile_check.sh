#!/usr/bin/env bash
# Starts each program with CERROJO_PROFILE=prod and one setting that only
# the dev profile accepts (plaintext gRPC, a generated or missing key, a
# key file that other users can read, a development password, a wildcard
# CORS origin, no trusted-proxy setting)
# and checks that it exits non-zero with a message naming that variable.
# Each case also runs with the setting fixed, where the message must no
# longer name it, so that the check cannot pass by accident.
#
# Usage: profile_check.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
source_dir=$1
bin=$2/bin
# Seconds a program gets before it counts as started (not rejected).
RUN_TIMEOUT_S=5

# shellcheck source=tests/deploy/closed_port.sh
source "$source_dir/tests/deploy/closed_port.sh"

work=$(mktemp -d /tmp/cerrojo-profile.XXXXXX)
trap 'closed_port_release; rm -rf "$work"' EXIT
# The stores' address for every program: connections to it are refused.
closed_port_hold || {
    echo "profile: could not hold a closed port on 127.0.0.1" >&2
    exit 1
}
"$source_dir/scripts/dev-certs.sh" "$work/certs" >/dev/null
head -c 32 /dev/urandom | base64 >"$work/root-key"
{
    printf 'generated:'
    head -c 32 /dev/urandom | base64
} >"$work/generated-root-key"
head -c 32 /dev/urandom | base64 >"$work/session-key"
# session rejects a previous wrapping key equal to the current one.
head -c 32 /dev/urandom | base64 >"$work/previous-session-key"
chmod 600 "$work"/*-key
# Key files that every local user can read, and ones only the group can
# read, as Kubernetes mounts Secrets (defaultMode 0440).
for key in root-key session-key previous-session-key; do
    cp "$work/$key" "$work/$key-0644"
    cp "$work/$key" "$work/$key-0440"
    chmod 644 "$work/$key-0644"
    chmod 440 "$work/$key-0440"
done

failures=0
cases=0

# Settings every program gets: prod, mutual TLS with the development
# certificates, and Postgres and Redis at a port that refuses connections.
base_env() { # service
    local svc=$1
    echo "PATH=/usr/bin:/bin"
    echo "CERROJO_ENV_FILE=/dev/null"
    echo "CERROJO_PROFILE=prod"
    echo "CERROJO_TLS_CA=$work/certs/ca.pem"
    echo "CERROJO_${svc^^}_TLS_CERT=$work/certs/$svc.pem"
    echo "CERROJO_${svc^^}_TLS_KEY=$work/certs/$svc.key"
    echo "CERROJO_GATEWAY_TRUSTED_PROXIES="
    echo "CERROJO_KMS_ROOT_KEY_FILE=$work/root-key"
    echo "CERROJO_SESSION_KEY_FILE=$work/session-key"
    echo "CERROJO_MIGRATE_DSN=host=127.0.0.1 port=$CLOSED_PORT dbname=cerrojo user=postgres connect_timeout=1"
    echo "CERROJO_MIGRATE_KMS_PASSWORD=a-long-random-kms-password"
    echo "CERROJO_MIGRATE_AUTH_PASSWORD=a-long-random-auth-password"
    echo "CERROJO_KMS_DATABASE_URL=host=127.0.0.1 port=$CLOSED_PORT dbname=cerrojo connect_timeout=1"
    echo "CERROJO_AUTH_DATABASE_URL=host=127.0.0.1 port=$CLOSED_PORT dbname=cerrojo connect_timeout=1"
    echo "CERROJO_REDIS_ADDR=127.0.0.1:$CLOSED_PORT"
    echo "CERROJO_REDIS_PORT=$CLOSED_PORT"
    echo "CERROJO_AUTH_REDIS_PORT=$CLOSED_PORT"
    echo "CERROJO_KMS_LISTEN=127.0.0.1:0"
    echo "CERROJO_SESSION_LISTEN=127.0.0.1:0"
    echo "CERROJO_AUTH_LISTEN=127.0.0.1:0"
    echo "CERROJO_GATEWAY_PORT=1"
    echo "CERROJO_GATEWAY_ADMIN_PORT=2"
}

# Runs `program args` with the base settings changed by NAME=VALUE (an
# empty VALUE unsets NAME); prints the exit status then the output.
run_with() { # program, change, args...
    local program=$1 change=$2 svc name value
    shift 2
    svc=${program#cerrojo-}
    [[ $svc == migrate ]] && svc=kms
    name=${change%%=*}
    value=${change#*=}
    local env_args=()
    while read -r line; do
        [[ ${line%%=*} == "$name" ]] && continue
        env_args+=("$line")
    done < <(base_env "$svc")
    [[ -n $value ]] && env_args+=("$change")
    local rc=0 out
    out=$(cd "$work" && timeout "$RUN_TIMEOUT_S" env -i "${env_args[@]}" "$bin/$program" "$@" 2>&1) || rc=$?
    printf '%s\n%s' "$rc" "$out"
}

# One rule: `bad` must be rejected naming `var`, `good` must not be.
expect_rejected() { # program, var, bad, good, args...
    local program=$1 var=$2 bad=$3 good=$4 result rc bad_rc out what
    shift 4
    cases=$((cases + 1))
    what=$bad
    [[ $bad == *= ]] && what="${bad%=} unset"
    result=$(run_with "$program" "$bad" "$@")
    rc=${result%%$'\n'*}
    bad_rc=$rc
    out=${result#*$'\n'}
    if [[ $rc == 0 || $rc == 124 ]]; then
        echo "profile: FAIL $program with $what: not rejected (exit $rc)" >&2
        failures=$((failures + 1))
        return
    fi
    if ! grep -q -- "$var" <<<"$out"; then
        echo "profile: FAIL $program with $what: exit $rc but the message does not name $var:" >&2
        echo "$out" | tail -n 3 >&2
        failures=$((failures + 1))
        return
    fi
    result=$(run_with "$program" "$good" "$@")
    rc=${result%%$'\n'*}
    out=${result#*$'\n'}
    if grep -q -- "$var" <<<"$out"; then
        echo "profile: FAIL $program with $good: the message still names $var (exit $rc):" >&2
        echo "$out" | tail -n 3 >&2
        failures=$((failures + 1))
        return
    fi
    echo "profile: ok   $program rejects $what naming $var (exit $bad_rc)"
}

# The same rule for --print-config, which prints every variable's name:
# `bad` must exit 2 with a message naming `var`, and `good` must exit 0.
expect_print_config_rejected() { # program, var, bad, good
    local program=$1 var=$2 bad=$3 good=$4 result rc out
    cases=$((cases + 1))
    result=$(run_with "$program" "$bad" --print-config)
    rc=${result%%$'\n'*}
    out=${result#*$'\n'}
    if [[ $rc != 2 ]] || ! grep -q -- "^$program: $var: " <<<"$out"; then
        echo "profile: FAIL $program --print-config with $bad: exit $rc, expected 2 and a message naming $var:" >&2
        echo "$out" | tail -n 3 >&2
        failures=$((failures + 1))
        return
    fi
    result=$(run_with "$program" "$good" --print-config)
    rc=${result%%$'\n'*}
    out=${result#*$'\n'}
    if [[ $rc != 0 ]]; then
        echo "profile: FAIL $program --print-config with $good: exit $rc:" >&2
        echo "$out" | tail -n 3 >&2
        failures=$((failures + 1))
        return
    fi
    echo "profile: ok   $program --print-config rejects $bad naming $var"
}

for program in cerrojo-kms cerrojo-session cerrojo-auth cerrojo-gateway; do
    expect_rejected "$program" CERROJO_GRPC_PLAINTEXT \
        CERROJO_GRPC_PLAINTEXT=true CERROJO_GRPC_PLAINTEXT=false
done
expect_rejected cerrojo-kms CERROJO_KMS_ROOT_KEY_FILE \
    "CERROJO_KMS_ROOT_KEY_FILE=$work/generated-root-key" \
    "CERROJO_KMS_ROOT_KEY_FILE=$work/root-key"
expect_rejected cerrojo-kms CERROJO_KMS_ROOT_KEY_FILE \
    CERROJO_KMS_ROOT_KEY_FILE= "CERROJO_KMS_ROOT_KEY_FILE=$work/root-key"
expect_rejected cerrojo-session CERROJO_SESSION_KEY \
    CERROJO_SESSION_KEY_FILE= "CERROJO_SESSION_KEY_FILE=$work/session-key"
key_file_cases=(
    "cerrojo-kms CERROJO_KMS_ROOT_KEY_FILE root-key"
    "cerrojo-session CERROJO_SESSION_KEY_FILE session-key"
    "cerrojo-session CERROJO_SESSION_KEY_PREVIOUS_FILE previous-session-key"
)
for key_file_case in "${key_file_cases[@]}"; do
    read -r program var file <<<"$key_file_case"
    expect_rejected "$program" "$var" "$var=$work/$file-0644" \
        "$var=$work/$file-0440"
    expect_print_config_rejected "$program" "$var" "$var=$work/$file-0644" \
        "$var=$work/$file-0440"
done
expect_rejected cerrojo-migrate CERROJO_MIGRATE_KMS_PASSWORD \
    CERROJO_MIGRATE_KMS_PASSWORD= \
    CERROJO_MIGRATE_KMS_PASSWORD=a-long-random-kms-password up
expect_rejected cerrojo-gateway CERROJO_GATEWAY_CORS_ORIGINS \
    'CERROJO_GATEWAY_CORS_ORIGINS=*' \
    CERROJO_GATEWAY_CORS_ORIGINS=https://app.example
expect_rejected cerrojo-gateway CERROJO_GATEWAY_TRUSTED_PROXIES \
    CERROJO_GATEWAY_TRUSTED_PROXIES= CERROJO_GATEWAY_TRUSTED_PROXIES=10.0.0.0/8

if ((failures > 0)); then
    echo "profile: $failures of $cases rules failed" >&2
    exit 1
fi
echo "profile: all $cases rules hold in the prod profile"
