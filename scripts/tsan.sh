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
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/scripts/tsan.supp"
cd build-tsan
ctest --output-on-failure -L unit -j 2 "$@"
