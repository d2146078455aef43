#!/usr/bin/env bash
# The restore drill of docs/operations.md, on a private stack: a user
# registers, logs in and stores private data; the schemas auth and kms are
# dumped one by one (pg_dump -Fc -n); the database is dropped, created
# again and restored (pg_restore, then cerrojo-migrate up to verify the
# checksums and restore the grants); Redis is flushed as if lost. After a
# restart of the services the same user logs in again, reads the private
# data (so kms still unwraps the user's data key), and the row counts
# match the backup.
#
# Usage: restore_drill.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
STACK_SOURCE=$1
STACK_BIN=$2/bin
STACK_WORK=$(mktemp -d /tmp/cerrojo-restore.XXXXXX)
# Seconds the first login after the restore may take to succeed: auth
# reloads the revocation cache that the flush removed, and until then the
# gateway fails closed.
LOGIN_RETRY_S=60
PG_BIN=${CERROJO_PG_BIN:-/usr/lib/postgresql/15/bin}
source "$STACK_SOURCE/tests/deploy/stack_lib.sh"
trap 'rc=$?; stack_stop_all; rm -rf "$STACK_WORK"; exit $rc' EXIT

fail() {
    echo "restore: FAIL $*" >&2
    for log in "$STACK_WORK"/log/*.log; do
        echo "--- $log" >&2
        tail -n 5 "$log" >&2
    done
    exit 1
}

client() {
    timeout 60 "$STACK_BIN/cerrojo" --url "$STACK_GATEWAY_URL" --state "$STACK_WORK/state.json" --json "$@"
}
psql_admin() {
    "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$STACK_PG_PORT" -U postgres "$@"
}
counts() {
    psql_admin -d cerrojo -c "SELECT
        (SELECT count(*) FROM auth.users) || ' users, ' ||
        (SELECT count(*) FROM auth.data_private) || ' private rows, ' ||
        (SELECT count(*) FROM auth.refresh_tokens) || ' refresh tokens, ' ||
        (SELECT count(*) FROM kms.data_key_versions) || ' data key versions'"
}

stack_start_stores || fail "Postgres, Redis or the migrations did not start"
stack_start_services 1 || fail "the services did not start"

umask 077
printf 'backup-lantern-harbor-7\n' >"$STACK_WORK/password"
printf 'private value before the backup' >"$STACK_WORK/value"
client register --username drill --email drill@example.com --password-file "$STACK_WORK/password" >/dev/null || fail "register"
client login --login drill --password-file "$STACK_WORK/password" >/dev/null || fail "login before the backup"
client data put private --value-file "$STACK_WORK/value" >/dev/null || fail "data put private"
before=$(counts)
echo "restore: before the backup: $before"

# Back up: one custom-format dump per schema, as each schema's owner
# would restore it alone.
for schema in auth kms; do
    "$PG_BIN/pg_dump" -h 127.0.0.1 -p "$STACK_PG_PORT" -U postgres -d cerrojo \
        -Fc -n "$schema" -f "$STACK_WORK/$schema.dump" || fail "pg_dump of $schema"
done
echo "restore: dumped $(du -cb "$STACK_WORK"/*.dump | tail -n1 | cut -f1) bytes"

# Lose everything: the services stop, the database is dropped, Redis is
# flushed.
stack_stop_services
psql_admin -d postgres -c "DROP DATABASE cerrojo" || fail "drop database"
redis-cli -p "$STACK_REDIS_PORT" flushall >/dev/null
psql_admin -d postgres -c "CREATE DATABASE cerrojo" || fail "create database"

# Restore: the roles live outside the database, so they still exist here;
# on a new server cerrojo-migrate up creates them again.
for schema in kms auth; do
    "$PG_BIN/pg_restore" -h 127.0.0.1 -p "$STACK_PG_PORT" -U postgres -d cerrojo \
        --exit-on-error "$STACK_WORK/$schema.dump" || fail "pg_restore of $schema"
done
stack_migrate || fail "cerrojo-migrate up after the restore (a checksum differs?)"
after=$(counts)
echo "restore: after the restore:  $after"
[[ $after == "$before" ]] || fail "row counts differ: before '$before', after '$after'"

stack_start_services 1 || fail "the services did not start after the restore"
rm -f "$STACK_WORK/state.json"
waited=0
until client login --login drill --password-file "$STACK_WORK/password" >"$STACK_WORK/login.json" 2>"$STACK_WORK/login.err"; do
    ((waited < LOGIN_RETRY_S)) || fail "login after the restore: $(cat "$STACK_WORK/login.err")"
    sleep 1
    waited=$((waited + 1))
done
echo "restore: logged in again after ${waited}s"
value=$(client data get private) || fail "data get private after the restore"
grep -q 'private value before the backup' <<<"$value" ||
    fail "the private data did not decrypt to the stored value: $value"
client refresh >/dev/null || fail "refresh after the restore"
echo "restore: the private data decrypts and the refresh token rotates; drill passed"
