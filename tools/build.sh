#!/usr/bin/env bash
# Configures and builds repod into build/ (or $BUILD_DIR).
# Options: --sanitize (ASan + UBSan build into build-asan/), --release.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=${BUILD_DIR:-build}
args=(-DREPOD_WERROR=ON)
# The integration tests run on Debian's interpreter, the one whose modules
# (python3-jsonschema, python3-cryptography) tools/install-deps.sh installs,
# even when another python3 comes first on PATH.
if [ -x /usr/bin/python3 ]; then
  args+=(-DPython3_EXECUTABLE=/usr/bin/python3)
fi
for a in "$@"; do
  case "$a" in
    --sanitize) build_dir=${BUILD_DIR:-build-asan}; args+=(-DREPOD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug) ;;
    --release) args+=(-DCMAKE_BUILD_TYPE=Release) ;;
    *) echo "build.sh: unknown option $a" >&2; exit 2 ;;
  esac
done
cmake -S . -B "$build_dir" "${args[@]}" >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
