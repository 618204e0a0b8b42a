#!/usr/bin/env bash
# Builds the unit tests under ThreadSanitizer in build-tsan/ (GCC, -DLAYER_TSAN=ON) and runs them
# (ctest -L unit). The first race stops the test it happened in and fails the script. Extra
# arguments go to ctest (e.g. -R 'Server|Cache').
#
#   scripts/tsan.sh [ctest args…]
#
# LAYER_TSAN_JOBS: build parallelism (default: the number of cores).
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${LAYER_TSAN_JOBS:-$(nproc)}"
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=Release -DLAYER_TSAN=ON \
  -DLAYER_BUILD_BENCH=OFF >/dev/null
cmake --build build-tsan -j "$JOBS" --target unit_tests
# scripts/tsan.supp silences reports inside third-party libraries only, never Layer's code.
TSAN_BASE="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/scripts/tsan.supp"
cd build-tsan
if TSAN_OPTIONS="$TSAN_BASE" ctest --output-on-failure -L unit -j 2 "$@"; then
  exit 0
fi
# TSan's lock-order checker follows at most 64 mutexes held by one thread, and stops the process
# with a CHECK failure beyond that. A cache batch holds one mutex per lock stripe it touches (up
# to 256, taken in ascending order, so they cannot deadlock). The tests that stopped on that limit
# -- and only those -- run again with the lock-order checker off; races are still reported.
mapfile -t LIMITED < <(awk '
  /^[0-9]+\/[0-9]+ Testing: / { name = $0; sub(/^[0-9]+\/[0-9]+ Testing: /, "", name) }
  /CHECK failed: sanitizer_deadlock_detector\.h/ { print name }' Testing/Temporary/LastTest.log |
  sort -u)
[ ${#LIMITED[@]} -gt 0 ] || exit 1
echo "== again without the lock-order checker (more than 64 mutexes held): ${LIMITED[*]}"
OTHERS=0  # a test that failed for another reason fails the script whatever the rerun says
for t in $(sed 's/^[0-9]*://' Testing/Temporary/LastTestsFailed.log); do
  printf '%s\n' "${LIMITED[@]}" | grep -qxF "$t" || OTHERS=1
done
REGEX="^($(printf '%s|' "${LIMITED[@]}" | sed 's/[][().*+?^$]/\\&/g; s/|$//'))\$"
TSAN_OPTIONS="$TSAN_BASE:detect_deadlocks=0" ctest --output-on-failure -L unit -j 2 -R "$REGEX"
exit "$OTHERS"
