#!/usr/bin/env bash
# Installs what repod needs to build, run and test on Debian 12.
# Runs apt-get as root (directly, or through sudo when not root).
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libevent-dev libssl-dev libjansson-dev librocksdb-dev libcmocka-dev
  openssl ca-certificates curl python3 python3-jsonschema python3-cryptography clang-format
  docker-registry apache2-utils haproxy
  chromium chromium-driver python3-selenium
  libsystemd-dev dpkg-dev fakeroot
)

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install-deps: run as root (or install sudo)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: everything is installed"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
