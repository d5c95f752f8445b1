#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ with clang into build-fuzz/
# and runs them: tools/fuzz.sh [TARGET|all] [SECONDS]  (default: all 20).
# Each run starts from the committed corpus (tests/fuzz/corpus/<target>,
# its new inputs go to build-fuzz/corpus/<target>), uses the dictionary
# tests/fuzz/dict/<target>.dict when there is one, allows 5 s per input.
# A finding (crash, leak, timeout, UB, broken invariant) makes the script
# exit 1; its input is kept in build-fuzz/findings/<target>/ - add it to
# tests/fuzz/regressions/<target>/ so that the unit suite replays it.
# FUZZ_SEED=N fixes libFuzzer's seed, so that a run can be replayed exactly
# (CI sets it; by hand each run explores from a new random seed).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-all}
seconds=${2:-20}
build=${FUZZ_BUILD_DIR:-build-fuzz}

# clang 14 and its libFuzzer runtime (Debian 12)
if ! command -v clang >/dev/null 2>&1 || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then as_root=(); else as_root=(sudo); fi
  "${as_root[@]}" apt-get update -q
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q clang libclang-rt-14-dev
fi

if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang cmake -S . -B "$build" -DREPOD_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -j "${FUZZ_JOBS:-2}"

if [ "$target" = all ]; then
  targets=$(ls tests/fuzz/fuzz_*.c | sed 's#.*/fuzz_##; s#\.c$##')
else
  targets=$target
fi

failed=()
for t in $targets; do
  bin="$build/tests/fuzz/fuzz_$t"
  [ -x "$bin" ] || { echo "fuzz: no target $t" >&2; exit 2; }
  mkdir -p "$build/corpus/$t" "$build/findings/$t" "tests/fuzz/corpus/$t"
  dict=()
  [ -f "tests/fuzz/dict/$t.dict" ] && dict=(-dict="tests/fuzz/dict/$t.dict")
  [ -n "${FUZZ_SEED:-}" ] && dict+=(-seed="$FUZZ_SEED")
  echo "== fuzz $t for ${seconds}s"
  if "$bin" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -max_len=8192 \
       -print_final_stats=1 "${dict[@]}" -artifact_prefix="$build/findings/$t/" \
       "$build/corpus/$t" "tests/fuzz/corpus/$t" >"$build/fuzz_$t.log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' "$build/fuzz_$t.log" | tr '\n' ' '
    echo
  else
    echo "fuzz: FINDING in $t (log $build/fuzz_$t.log, input in $build/findings/$t/):" >&2
    grep -E 'ERROR|SUMMARY|runtime error|invariant' "$build/fuzz_$t.log" | head -5 >&2 || true
    ls "$build/findings/$t/" >&2
    failed+=("$t")
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: findings in ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: no findings"
