#!/usr/bin/env bash
# Creates development users through auth's Register RPC on the running local
# stack (`make up`) and prints each username with its generated password.
# Refused outside the dev profile. Users that already exist are reported
# and left unchanged.
#
#   scripts/seed.sh [COUNT]     (default 3 users: dev-alice, dev-bob, ...)
#
# Reads var/stack.env, written by scripts/stack.sh up; CERROJO_AUTH_ADDR
# there (or in the environment) names auth's gRPC address.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

count=${1:-3}
if ! [[ $count =~ ^[0-9]+$ ]] || ((count < 1 || count > 50)); then
    echo "seed: COUNT must be a number from 1 to 50, got '$count'" >&2
    exit 2
fi

if [[ -f $root/var/stack.env ]]; then
    set -a
    # shellcheck disable=SC1091
    . "$root/var/stack.env"
    set +a
fi
profile=${CERROJO_PROFILE:-dev}
if [[ $profile != dev ]]; then
    echo "seed: refused: CERROJO_PROFILE is '$profile'; development users" \
        "are created in the dev profile only" >&2
    exit 1
fi
if [[ ${CERROJO_GRPC_PLAINTEXT:-false} != true ]]; then
    echo "seed: CERROJO_GRPC_PLAINTEXT is not true; seed speaks plaintext" \
        "gRPC to the local dev stack only (run make up first)" >&2
    exit 1
fi
addr=${CERROJO_AUTH_ADDR:-127.0.0.1:50051}

stubs=$(mktemp -d /tmp/cerrojo-seed.XXXXXX)
trap 'rm -rf "$stubs"' EXIT
protoc -I "$root/proto" --python_out "$stubs" --grpc_python_out "$stubs" \
    --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" \
    "$root"/proto/cerrojo/v1/{common,auth}.proto
touch "$stubs/cerrojo/__init__.py" "$stubs/cerrojo/v1/__init__.py"

# Debian's python3-grpcio belongs to /usr/bin/python3.
PYTHONPATH=$stubs /usr/bin/python3 - "$addr" "$count" <<'PY'
import secrets
import string
import sys

import grpc

from cerrojo.v1 import auth_pb2, auth_pb2_grpc

NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
ALPHABET = string.ascii_letters + string.digits
PASSWORD_CHARS = 20
TIMEOUT_S = 20

addr, count = sys.argv[1], int(sys.argv[2])
stub = auth_pb2_grpc.AuthStub(grpc.insecure_channel(addr))
failed = 0
print("username\tpassword")
for i in range(count):
    base = NAMES[i % len(NAMES)]
    name = "dev-%s" % base if i < len(NAMES) else "dev-%s%d" % (base, i)
    password = "".join(secrets.choice(ALPHABET) for _ in range(PASSWORD_CHARS))
    try:
        stub.Register(auth_pb2.RegisterRequest(
            username=name, email=name + "@example.test", password=password),
            timeout=TIMEOUT_S)
        print("%s\t%s" % (name, password))
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.ALREADY_EXISTS:
            print("%s\t(already exists; password unchanged)" % name)
        else:
            failed += 1
            print("seed: %s: %s: %s" % (name, e.code().name, e.details()),
                  file=sys.stderr)
sys.exit(1 if failed else 0)
PY
