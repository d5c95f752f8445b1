#!/usr/bin/env bash
# Builds the Debian package repod_<version>_<arch>.deb with cpack -G DEB.
#   tools/package.sh [--out DIR] [--build-dir DIR]
# --out        where the .deb goes (default dist/)
# --build-dir  build folder to package from (default build-pkg/, configured
#              here as a Release build without the tests); an existing
#              build folder (e.g. build/) is packaged as it is built.
# Prints the path of the .deb on the last line.  Needs dpkg-dev and
# fakeroot (tools/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

out=dist
build_dir=
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a folder}; shift 2 ;;
    --build-dir) build_dir=${2:?--build-dir needs a folder}; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "package.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
for tool in cpack dpkg-deb dpkg-shlibdeps fakeroot; do
  command -v "$tool" >/dev/null || { echo "package.sh: $tool not found (tools/install-deps.sh)" >&2; exit 1; }
done
if [ -z "$build_dir" ]; then
  build_dir=build-pkg
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DREPOD_TESTS=OFF -DREPOD_WERROR=ON >/dev/null
fi
[ -f "$build_dir/CPackConfig.cmake" ] || { echo "package.sh: $build_dir is not a configured build folder" >&2; exit 1; }
cmake --build "$build_dir" -j"$(nproc)" >/dev/null
mkdir -p "$out"
out=$(cd "$out" && pwd)
# dpkg-deb records owners as given: fakeroot makes every file root:root.
fakeroot cpack -G DEB --config "$build_dir/CPackConfig.cmake" -B "$out/.cpack" >/dev/null
deb=$(ls -t "$out"/.cpack/repod_*.deb | head -n1)
mv -f "$deb" "$out/"
rm -rf "$out/.cpack"
echo "$out/$(basename "$deb")"
