#!/usr/bin/env bash
# read-bench.sh - read-path benchmark of repod over HTTPS (see
# docs/benchmarks.md, "Read path over HTTPS").
#
# Usage: tools/bench/read-bench.sh [--plugins N] [--iterations K]
#            [--mirror-iterations K2] [--connections C] [--keep DIR]
#            [--no-mirror] [--max-minutes M]
#
# Expects a built server (build/repod, or REPOD_BIN).  Loads N plugins
# (default 100000) through plugin/register, times the request mix and prints
# the tables on stdout (progress on stderr).  Exits non-zero if any request
# fails.  Everything runs on 127.0.0.1 and is removed at the end (unless
# --keep DIR).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec python3 "$here/read_bench.py" "$@"
