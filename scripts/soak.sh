#!/usr/bin/env bash
# The long fault soak (tests/soak/soak.py) against the release build: raw HTTP and SDK clients on
# overlapping ids while cache, upstream and process faults come and go; passes with 0 stale,
# resurrected and partial reads. CI runs the same soak for 2 minutes (ctest -L soak).
#
#   scripts/soak.sh [SECONDS] [-- extra soak.py arguments, e.g. --cache redis --replicas 2]
#   (default 600 s; the build directory is build/, or LAYER_BUILD_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_ARG="${1:-600}"
[ $# -gt 0 ] && shift
[ "${1:-}" = "--" ] && shift
BUILD_DIR="${LAYER_BUILD_DIR:-build}"

scripts/setup.sh --no-build  # packages and the SDK (tests/node_modules)
scripts/rocksdb.sh           # the release RocksDB, once per machine
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j 2 --target layer_bin  # only the binary the soak runs
export LAYER_BIN="$PWD/$BUILD_DIR/layer"
exec /usr/bin/python3 tests/soak/soak.py --duration "$SECONDS_ARG" "$@"
