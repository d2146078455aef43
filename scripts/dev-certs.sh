#!/usr/bin/env bash
# Makes a development CA and one certificate per service for mutual TLS
# between the gRPC services, in DIR (default var/certs):
#   ca.pem, ca.key                    the development platform CA
#   gateway, auth, kms, session,      CN = that name; usable as server and
#   platform-service .pem/.key        client (SAN DNS:localhost, IP:127.0.0.1)
#   other-ca.pem, other-ca.key,       a second CA and a certificate it signed
#   other.pem, other.key              (CN = gateway), for negative tests
# Keys are EC P-256. Existing files are kept, so running it again changes
# nothing. Development only: never use these outside the dev profile.
set -euo pipefail

dir=${1:-var/certs}
days=825 # validity of the development certificates, in days
identities=(gateway auth kms session platform-service)

mkdir -p "$dir"
chmod 700 "$dir"
umask 077

make_ca() { # name, subject
    local name=$1 subject=$2
    if [[ -s $dir/$name.pem && -s $dir/$name.key ]]; then
        return
    fi
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$dir/$name.key" 2>/dev/null
    openssl req -x509 -new -key "$dir/$name.key" -sha256 -days "$days" \
        -subj "$subject" -out "$dir/$name.pem" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign"
}

make_leaf() { # file name, CN, signing CA name
    local name=$1 cn=$2 ca=$3
    if [[ -s $dir/$name.pem && -s $dir/$name.key ]]; then
        return
    fi
    local ext
    ext=$(mktemp)
    cat >"$ext" <<CONF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
CONF
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$dir/$name.key" 2>/dev/null
    openssl req -new -key "$dir/$name.key" -subj "/O=cerrojo dev/CN=$cn" \
        -out "$dir/$name.csr"
    openssl x509 -req -in "$dir/$name.csr" -CA "$dir/$ca.pem" \
        -CAkey "$dir/$ca.key" -CAcreateserial -days "$days" -sha256 \
        -extfile "$ext" -out "$dir/$name.pem" 2>/dev/null
    rm -f "$dir/$name.csr" "$ext"
}

make_ca ca "/O=cerrojo dev/CN=cerrojo development CA"
for id in "${identities[@]}"; do
    make_leaf "$id" "$id" ca
done
make_ca other-ca "/O=not cerrojo/CN=unrelated development CA"
make_leaf other gateway other-ca

echo "dev-certs: certificates in $dir"
