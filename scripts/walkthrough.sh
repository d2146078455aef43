#!/usr/bin/env bash
# The client walkthrough of `make run`: keys, handshake, register, login,
# me, private data, refresh and logout against a running stack, printing
# each step and what crossed the wire sealed (CERROJO_TRACE).
#
#   scripts/walkthrough.sh GATEWAY_URL STATE_DIR
#
# The demo user's password is generated once into STATE_DIR (mode 0600), so
# a second run logs the same user in again instead of registering it.
set -euo pipefail
cd "$(dirname "$0")/.."

url=${1:?usage: walkthrough.sh GATEWAY_URL STATE_DIR}
dir=${2:?usage: walkthrough.sh GATEWAY_URL STATE_DIR}
client=${BUILD_DIR:-build}/bin/cerrojo
user=demo
email=demo@example.com

mkdir -p "$dir"
chmod 700 "$dir"
state=$dir/state.json
password_file=$dir/password
if [[ ! -s $password_file ]]; then
    (umask 077 && openssl rand -base64 24 >"$password_file")
fi

step() {
    local title=$1
    shift
    echo
    echo "walkthrough: $title"
    echo "  \$ cerrojo $*"
    CERROJO_TRACE=1 "$client" --url "$url" --state "$state" "$@"
}

step "fetch the signed HPKE key list (trust on first use: pin its signer)" \
    keys
signer=$("$client" --url "$url" --state "$state" --json keys |
    sed -n 's/.*"signer":"\([^"]*\)".*/\1/p')
echo "  pinned key-list signer: $signer"
pin=(--pin "$signer")

step "open a stateful session: a 32-byte secret sealed to the server key" \
    "${pin[@]}" handshake

if step "register '$user' with a handshake in the same round trip" \
    "${pin[@]}" register --username "$user" --email "$email" \
    --password-file "$password_file"; then
    :
else
    echo "  ('$user' exists from an earlier run; logging in instead)"
fi

step "log in again, stateful: credentials checked, new session bound" \
    "${pin[@]}" login --login "$user" --password-file "$password_file"
step "read the profile over the session" "${pin[@]}" me
echo '{"note":"kept encrypted under the user data key"}' >"$dir/value.json"
step "write private data (encrypted at rest under the user's data key)" \
    "${pin[@]}" data put private --value-file "$dir/value.json"
rm -f "$dir/value.json"
step "read it back" "${pin[@]}" data get private
step "rotate the refresh token" "${pin[@]}" refresh
step "log out: refresh family, session and access token revoked" \
    "${pin[@]}" logout
echo
echo "walkthrough: done; every body above crossed HTTP sealed"
