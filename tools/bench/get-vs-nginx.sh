#!/usr/bin/env bash
# get-vs-nginx.sh - plugin get req/s of repod (local get and a mirror's cached
# remote get) against nginx serving the same PluginInfo bytes as a static
# file over TLS, in the same run (see docs/benchmarks.md).
#
# Usage: tools/bench/get-vs-nginx.sh [--plugins N] [--duration S]
#            [--connections C] [--threads T] [--keep DIR] [--max-minutes M]
#
# Installs Debian's nginx-light and wrk with apt-get when they are missing
# (needs root).  Expects a built server (build/repod, or REPOD_BIN).  Exits
# non-zero if any request fails.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "get-vs-nginx.sh: missing ${missing[*]}; run as root or install them" >&2
        exit 1
    fi
    echo "get-vs-nginx.sh: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
    # Debian starts the packaged nginx on port 80; the benchmark runs its own.
    if command -v systemctl >/dev/null 2>&1; then
        systemctl stop nginx >/dev/null 2>&1 || true
    fi
fi
exec python3 "$here/get_vs_nginx.py" "$@"
