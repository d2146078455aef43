#!/usr/bin/env bash
# Installs every Debian package cerrojo and its tests need, when missing.
# As a non-root user it prints the exact command instead of running it.
set -euo pipefail

packages=(
    build-essential cmake pkg-config git ca-certificates
    libgrpc-dev grpc-proto libprotobuf-c-dev protobuf-c-compiler
    protobuf-compiler libprotobuf-dev protobuf-compiler-grpc
    libpq-dev libhiredis-dev libssl-dev libsodium-dev libjansson-dev
    libcmocka-dev libmicrohttpd-dev libutf8proc-dev libicu-dev
    libcrack2-dev cracklib-runtime zlib1g-dev libcurl4-openssl-dev
    postgresql postgresql-client redis-server redis-tools
    python3 python3-grpcio python3-protobuf
    clang libclang-rt-14-dev clang-format cppcheck
    faketime nginx gnuplot debootstrap docker-compose curl openssl
    util-linux procps iproute2
)

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || missing+=("$p")
done

# Node.js and npm only when there is no node at all: a Node.js from
# elsewhere brings its own npm, and Debian's npm package conflicts with it.
if ! command -v node >/dev/null 2>&1; then
    missing+=(nodejs npm)
fi

# kubectl renders the Kubernetes overlays in the deploy tests. Debian's
# kubernetes-client (1.20) only when no kubectl is installed from elsewhere.
if ! command -v kubectl >/dev/null 2>&1; then
    missing+=(kubernetes-client)
fi

if ((${#missing[@]} == 0)); then
    echo "deps: every package is installed"
    exit 0
fi

cmd=(apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends
     "${missing[@]}")
if [[ $(id -u) -ne 0 ]]; then
    echo "deps: missing packages; run as root:" >&2
    echo "  sudo apt-get update && sudo ${cmd[*]}" >&2
    exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q -o DPkg::Lock::Timeout=300
"${cmd[@]}"
