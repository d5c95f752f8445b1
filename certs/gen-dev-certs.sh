#!/usr/bin/env bash
# gen-dev-certs.sh - make a development CA and a server certificate for repod.
#
# Usage: certs/gen-dev-certs.sh [--force] [OUTPUT_DIR]
#
#   OUTPUT_DIR  where to write ca.crt, ca.key, server.crt, server.key
#               (default: the folder that holds this script)
#   --force     regenerate even if server.crt and server.key already exist
#
# The server certificate is EC P-256, valid 825 days, signed by a fresh dev
# CA, with subjectAltName DNS:localhost, IP:127.0.0.1, IP:::1 and the
# serverAuth extended key usage.  Private keys are written with mode 0600.
# Every run with --force makes a new, unrelated CA (tests use this to get a
# "wrong" certificate).  Without --force an existing pair is left alone, so
# the script is idempotent.  These files are for development only.
set -euo pipefail

usage() {
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
}

force=0
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        -f|--force) force=1 ;;
        -h|--help) usage; exit 0 ;;
        --) shift; [ $# -gt 0 ] && out="$1"; break ;;
        -*) echo "gen-dev-certs.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
        *)
            if [ -n "$out" ]; then
                echo "gen-dev-certs.sh: only one output dir may be given" >&2
                exit 2
            fi
            out="$1" ;;
    esac
    shift
done

if [ -z "$out" ]; then
    out="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
fi

command -v openssl >/dev/null 2>&1 || { echo "gen-dev-certs.sh: openssl not found" >&2; exit 1; }

mkdir -p "$out"

if [ "$force" -eq 0 ] && [ -s "$out/server.crt" ] && [ -s "$out/server.key" ]; then
    echo "gen-dev-certs.sh: $out/server.crt and server.key exist (use --force to regenerate)" >&2
    exit 0
fi

umask 077
work="$(mktemp -d "${TMPDIR:-/tmp}/gen-dev-certs.XXXXXX")"
trap 'rm -rf "$work"' EXIT

days=825
# A random tag so that two CAs made by this script never share a name.
tag="$(openssl rand -hex 4)"

cat > "$work/ca.cnf" <<CNF
[req]
distinguished_name = dn
prompt = no
[dn]
O = repod development
CN = repod dev CA $tag
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
CNF

cat > "$work/server.cnf" <<CNF
[req]
distinguished_name = dn
prompt = no
[dn]
O = repod development
CN = localhost
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
CNF

# The dev CA.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ca.key" 2>/dev/null
openssl req -new -x509 -sha256 -days "$days" -key "$work/ca.key" \
    -config "$work/ca.cnf" -extensions v3_ca -out "$work/ca.crt"

# The server key, request and certificate.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/server.key" 2>/dev/null
openssl req -new -sha256 -key "$work/server.key" -config "$work/server.cnf" -out "$work/server.csr"
openssl x509 -req -sha256 -days "$days" -in "$work/server.csr" \
    -CA "$work/ca.crt" -CAkey "$work/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
    -extfile "$work/server.cnf" -extensions v3_server -out "$work/server.crt" 2>/dev/null

openssl verify -CAfile "$work/ca.crt" "$work/server.crt" >/dev/null

chmod 0600 "$work/ca.key" "$work/server.key"
chmod 0644 "$work/ca.crt" "$work/server.crt"
# Move into place (keys first, so a server never sees a new cert with an old key for long).
for f in ca.key ca.crt server.key server.crt; do
    mv -f "$work/$f" "$out/$f"
done
chmod 0600 "$out/ca.key" "$out/server.key"

echo "gen-dev-certs.sh: wrote $out/ca.crt, ca.key, server.crt, server.key" >&2
