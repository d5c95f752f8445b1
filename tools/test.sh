#!/usr/bin/env bash
# Builds repod and runs the whole test suite (cmocka unit tests and the
# integration tests that start real servers on 127.0.0.1) with ctest.
# Options: --sanitize runs the suite against an ASan + UBSan build.
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=build
if [ "${1:-}" = "--sanitize" ]; then
  build_dir=build-asan
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi
BUILD_DIR=$build_dir tools/build.sh "$@"
cd "$build_dir"
ctest --output-on-failure -j2 --timeout 600
