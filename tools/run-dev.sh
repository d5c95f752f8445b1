#!/usr/bin/env bash
# Builds repod, makes development certificates if missing, and serves on the
# embedded defaults of conf/repod.json (https://127.0.0.1:8443, data in data/).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/build.sh
certs/gen-dev-certs.sh
exec build/repod --config conf/repod.json
