#!/usr/bin/env bash
# Proves the runtime stage of the Dockerfile without a Docker engine: a
# clean Debian 12 root made by debootstrap (--variant=minbase) gets exactly
# the packages of deploy/runtime-packages.txt and the built programs, and
# inside it (chroot, as the image's non-root user 10001) every program's
# libraries resolve and each service starts and passes its health check
# against a Postgres and a Redis started on the host on free ports.
#
# The root is cached under $CERROJO_IMAGE_CACHE (default
# /var/tmp/cerrojo-image): the debootstrap base per mirror, and the root with
# the packages per content of the package list, so a second run is fast.
# The mirror is the Debian one apt uses here (/etc/apt/sources.list*), or
# CERROJO_IMAGE_MIRROR. Programs come from a build without sanitizers, as in
# the Dockerfile: $BUILD_DIR when it is one, else build-image/. Needs root
# (debootstrap, chroot, mount).
set -euo pipefail
cd "$(dirname "$0")/.."
root_dir=$(pwd)
# shellcheck source=scripts/lib.sh
source "$root_dir/scripts/lib.sh"

SUITE=bookworm
# Seconds allowed for the mirror probe, debootstrap and the package install.
MIRROR_PROBE_TIMEOUT_S=15
DEBOOTSTRAP_TIMEOUT_S=420
APT_TIMEOUT_S=300
# Seconds a service gets to pass its health check after start.
READY_TIMEOUT_S=30
PROGRAMS=(cerrojo-kms cerrojo-session cerrojo-auth cerrojo-gateway
    cerrojo-migrate cerrojo)
IMAGE_UID=10001

cache=${CERROJO_IMAGE_CACHE:-/var/tmp/cerrojo-image}
packages_file=$root_dir/deploy/runtime-packages.txt

die() {
    echo "image-check: $*" >&2
    exit 1
}

[[ $(id -u) -eq 0 ]] || die "needs root (debootstrap, chroot and mount); run it with sudo"
command -v debootstrap >/dev/null || die "debootstrap not found; run scripts/deps.sh"

# The first Debian archive URI of the apt sources (deb822 or one-line form)
# that is not the security archive.
find_mirror() {
    local files=() f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] && files+=("$f")
    done
    ((${#files[@]} > 0)) || return 0
    grep -hoE '(^URIs:[[:space:]]*|^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)https?://[^[:space:]]+' \
        "${files[@]}" | grep -oE 'https?://[^[:space:]]+' |
        grep -E '/debian/?$' | grep -v security | head -n 1
}

mirror=${CERROJO_IMAGE_MIRROR:-$(find_mirror)}
[[ -n $mirror ]] || die "no Debian mirror in /etc/apt/sources.list*; set CERROJO_IMAGE_MIRROR"
mirror=${mirror%/}

packages=()
while read -r line; do
    line=${line%%#*}
    line=${line//[[:space:]]/}
    [[ -n $line ]] && packages+=("$line")
done <"$packages_file"
((${#packages[@]} > 0)) || die "$packages_file lists no package"

# --- the programs, built without sanitizers ------------------------------
build_dir=$(cj_build_dir "$root_dir")
if ! grep -q '^CERROJO_SANITIZE:BOOL=OFF' "$build_dir/CMakeCache.txt" 2>/dev/null; then
    build_dir=$root_dir/build-image
    echo "image-check: building the programs without sanitizers in $build_dir"
    cmake -S "$root_dir" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCERROJO_SANITIZE=OFF >/dev/null
    cmake --build "$build_dir" -j "$(nproc)" --target "${PROGRAMS[@]}"
fi
for p in "${PROGRAMS[@]}"; do
    [[ -x $build_dir/bin/$p ]] || die "$build_dir/bin/$p is missing; run scripts/build.sh"
done

# --- the Debian root -----------------------------------------------------
mkdir -p "$cache"
mirror_key=$(printf '%s %s' "$SUITE" "$mirror" | sha256sum | cut -c1-12)
base=$cache/base-$SUITE-$mirror_key
list_key=$( (
    printf '%s\n' "$base"
    printf '%s\n' "${packages[@]}"
) | sha256sum | cut -c1-12)
image_root=$cache/root-$list_key

probe_mirror() {
    if ! curl -fsS -o /dev/null --max-time "$MIRROR_PROBE_TIMEOUT_S" \
        "$mirror/dists/$SUITE/Release"; then
        die "cannot reach the Debian mirror $mirror (no $SUITE Release file within ${MIRROR_PROBE_TIMEOUT_S}s); check the network or set CERROJO_IMAGE_MIRROR"
    fi
}

if [[ ! -f $base/.cerrojo-complete ]]; then
    probe_mirror
    rm -rf "$base"
    echo "image-check: debootstrap --variant=minbase $SUITE from $mirror into $base"
    if ! timeout "$DEBOOTSTRAP_TIMEOUT_S" debootstrap --variant=minbase \
        "$SUITE" "$base" "$mirror" >"$cache/debootstrap.log" 2>&1; then
        tail -n 20 "$cache/debootstrap.log" >&2
        die "debootstrap failed or timed out after ${DEBOOTSTRAP_TIMEOUT_S}s; full log in $cache/debootstrap.log"
    fi
    touch "$base/.cerrojo-complete"
fi

# Mounts kept while the root is in use; undone on every exit path.
mounts=()
mount_into() { # root, then the mount arguments without the target
    local target=$1/$2
    shift 2
    mount "$@" "$target"
    mounts+=("$target")
}
unmount_all() {
    local i
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
        umount -l "${mounts[i]}" 2>/dev/null || true
    done
    mounts=()
}

if [[ ! -f $image_root/.cerrojo-complete ]]; then
    probe_mirror
    # One package list at a time: roots of earlier lists only take space.
    rm -rf --one-file-system "$cache"/root-*
    cp -a "$base" "$image_root"
    rm -f "$image_root/.cerrojo-complete"
    cp /etc/resolv.conf "$image_root/etc/resolv.conf" 2>/dev/null || true
    echo "deb $mirror $SUITE main" >"$image_root/etc/apt/sources.list"
    echo "image-check: installing the runtime packages: ${packages[*]}"
    mount_into "$image_root" proc -t proc proc
    if ! timeout "$APT_TIMEOUT_S" chroot "$image_root" /usr/bin/env -i \
        PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        sh -c 'apt-get update -q && apt-get install -y -q --no-install-recommends "$@"' \
        sh "${packages[@]}" >"$cache/apt.log" 2>&1; then
        unmount_all
        tail -n 20 "$cache/apt.log" >&2
        die "installing the runtime packages failed or timed out after ${APT_TIMEOUT_S}s; full log in $cache/apt.log"
    fi
    chroot "$image_root" groupadd --gid "$IMAGE_UID" cerrojo
    chroot "$image_root" useradd --no-create-home --uid "$IMAGE_UID" --gid cerrojo \
        --home-dir /var/lib/cerrojo --shell /usr/sbin/nologin cerrojo
    unmount_all
    touch "$image_root/.cerrojo-complete"
fi

# --- a working copy of the root with the programs --------------------------
work=$(mktemp -d /tmp/cerrojo-image-check.XXXXXX)
chmod 0755 "$work"
chroot_dir=$work/root
pg_dir=$work/pg
redis_dir=$work/redis
pids=()

pg_port=$(cj_free_port)
redis_port=$(cj_free_port)

cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        timeout 10 tail --pid="$pid" -f /dev/null 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    done
    unmount_all
    cj_stop_stores "$pg_dir" "$pg_port" "$redis_dir" "$redis_port"
    rm -rf --one-file-system "$work"
}
trap 'rc=$?; cleanup; exit $rc' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cp -a "$image_root" "$chroot_dir"
install -m 0755 "${PROGRAMS[@]/#/$build_dir/bin/}" "$chroot_dir/usr/local/bin/"
mkdir -p "$chroot_dir/usr/local/share/cerrojo"
cp -r "$root_dir/migrations" "$chroot_dir/usr/local/share/cerrojo/migrations"
cp "$root_dir/docs/api/openapi.json" "$chroot_dir/usr/local/share/cerrojo/openapi.json"
install -d -o "$IMAGE_UID" -g "$IMAGE_UID" -m 0700 "$chroot_dir/var/lib/cerrojo"
mount_into "$chroot_dir" proc -t proc proc
mount_into "$chroot_dir" dev --bind /dev

# --- every library resolves ----------------------------------------------
failed=0
for p in "${PROGRAMS[@]}"; do
    if ! out=$(chroot "$chroot_dir" ldd "/usr/local/bin/$p" 2>&1); then
        echo "image-check: ldd $p failed: $out" >&2
        failed=1
    elif grep -q 'not found' <<<"$out"; then
        echo "image-check: $p has unresolved libraries in the runtime root:" >&2
        grep 'not found' <<<"$out" >&2
        failed=1
    else
        echo "image-check: $p: $(grep -c '=>' <<<"$out") libraries resolve"
    fi
done
((failed == 0)) || die "add the packages that provide the missing libraries to deploy/runtime-packages.txt"

# --- each service starts and passes its health check -----------------------
scripts/pg.sh start "$pg_dir" "$pg_port" >/dev/null
scripts/redis.sh start "$redis_dir" "$redis_port" >/dev/null

kms_port=$(cj_free_port)
session_port=$(cj_free_port)
auth_port=$(cj_free_port)
gateway_port=$(cj_free_port)
admin_port=$(cj_free_port)
auth_metrics=$(cj_free_port)
kms_metrics=$(cj_free_port)
session_metrics=$(cj_free_port)
pg="host=127.0.0.1 port=$pg_port dbname=cerrojo"

# The environment of every program in the root: the development profile
# with plaintext gRPC on loopback, as the stack of scripts/stack.sh.
image_env=(
    PATH=/usr/local/bin:/usr/bin:/bin HOME=/var/lib/cerrojo
    CERROJO_ENV_FILE=/dev/null CERROJO_PROFILE=dev CERROJO_GRPC_PLAINTEXT=true
    CERROJO_MIGRATE_DSN="$pg user=postgres"
    CERROJO_MIGRATE_DIR=/usr/local/share/cerrojo/migrations
    CERROJO_GATEWAY_OPENAPI_FILE=/usr/local/share/cerrojo/openapi.json
    CERROJO_KMS_DATABASE_URL="$pg user=cerrojo_kms password=cerrojo-kms-dev"
    CERROJO_AUTH_DATABASE_URL="$pg user=cerrojo_auth password=cerrojo-auth-dev"
    CERROJO_KMS_VAR_DIR=/var/lib/cerrojo
    CERROJO_KMS_LISTEN=127.0.0.1:$kms_port
    CERROJO_SESSION_LISTEN=127.0.0.1:$session_port
    CERROJO_AUTH_LISTEN=127.0.0.1:$auth_port
    CERROJO_KMS_METRICS_PORT=$kms_metrics
    CERROJO_SESSION_METRICS_PORT=$session_metrics
    CERROJO_AUTH_METRICS_PORT=$auth_metrics
    CERROJO_REDIS_HOST=127.0.0.1 CERROJO_REDIS_PORT=$redis_port
    CERROJO_AUTH_REDIS_HOST=127.0.0.1 CERROJO_AUTH_REDIS_PORT=$redis_port
    CERROJO_REDIS_ADDR=127.0.0.1:$redis_port
    CERROJO_AUTH_KMS_TARGET=127.0.0.1:$kms_port
    CERROJO_AUTH_SESSION_TARGET=127.0.0.1:$session_port
    CERROJO_KMS_ADDR=127.0.0.1:$kms_port
    CERROJO_SESSION_ADDR=127.0.0.1:$session_port
    CERROJO_AUTH_ADDR=127.0.0.1:$auth_port
    CERROJO_GATEWAY_HOST=127.0.0.1 CERROJO_GATEWAY_PORT=$gateway_port
    CERROJO_GATEWAY_ADMIN_PORT=$admin_port
)

in_root() { # runs a command in the root as the image's user, from its home
    chroot --userspec="$IMAGE_UID:$IMAGE_UID" "$chroot_dir" /usr/bin/env -i \
        "${image_env[@]}" sh -c 'cd /var/lib/cerrojo && exec "$@"' sh "$@"
}

# Starts a service in the background: exec turns the background subshell
# into the service itself, so $! is the pid that cleanup's kill must reach.
in_root_background() {
    exec chroot --userspec="$IMAGE_UID:$IMAGE_UID" "$chroot_dir" /usr/bin/env -i \
        "${image_env[@]}" sh -c 'cd /var/lib/cerrojo && exec "$@"' sh "$@"
}

if ! out=$(in_root cerrojo-migrate up 2>&1); then
    echo "$out" >&2
    die "cerrojo-migrate up failed in the runtime root"
fi
echo "image-check: cerrojo-migrate up applied the migrations"

is_ready() {
    if [[ $1 == gateway ]]; then
        in_root curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$gateway_port/healthz"
    else
        in_root "cerrojo-$1" healthcheck
    fi
}

for svc in kms session auth gateway; do
    log=$work/cerrojo-$svc.log
    in_root_background "cerrojo-$svc" >"$log" 2>&1 &
    pids+=($!)
    pid=$!
    cj_wait_ready "image-check: cerrojo-$svc in the runtime root" "$pid" "$log" \
        "$READY_TIMEOUT_S" is_ready "$svc" || exit 1
    echo "image-check: cerrojo-$svc started as uid $IMAGE_UID in the runtime root and passed its health check"
done
in_root curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$gateway_port/openapi.json" ||
    die "the gateway does not serve /usr/local/share/cerrojo/openapi.json at /openapi.json"
echo "image-check: the gateway serves the installed API description"
in_root cerrojo --help >/dev/null 2>&1 || die "the client cerrojo --help failed in the runtime root"
echo "image-check: runtime stage proven (${#packages[@]} packages, root cached in $image_root)"
