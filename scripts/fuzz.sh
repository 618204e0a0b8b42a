#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang, ASan + UBSan) in build-fuzz/ and runs each for a
# bounded time from its seed corpus (fuzz/corpus/<target>/). New inputs go to a scratch corpus,
# never into the repository; a crash stops the run, leaves its input in build-fuzz/crashes/ and
# fails the script (turn it into a regression test: tests/unit/…).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET=60] [TARGET…]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${1:-60}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(routes write_plan ids warm_page snapshots config origin_query simple_message)

CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Release -DLAYER_FUZZ=ON \
  -DLAYER_BUILD_TESTS=OFF -DLAYER_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target "${TARGETS[@]/#/fuzz_}"

mkdir -p build-fuzz/crashes
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for t in "${TARGETS[@]}"; do
  scratch="build-fuzz/corpus/$t"
  rm -f build-fuzz/crashes/"$t"-*  # this run's findings only
  mkdir -p "$scratch"
  echo "== fuzz_$t for ${SECONDS_PER_TARGET}s"
  build-fuzz/fuzz/fuzz_"$t" "$scratch" "fuzz/corpus/$t" -max_total_time="$SECONDS_PER_TARGET" \
    -max_len=65536 -timeout=10 -rss_limit_mb=2048 -artifact_prefix="build-fuzz/crashes/$t-" \
    -print_final_stats=1 2>&1 | grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY)" || true
  if ls build-fuzz/crashes/"$t"-* >/dev/null 2>&1; then
    echo "fuzz_$t found a crash: $(ls build-fuzz/crashes/"$t"-*)" >&2
    exit 1
  fi
done
echo "fuzz: ${#TARGETS[@]} targets, ${SECONDS_PER_TARGET}s each, no crash"
