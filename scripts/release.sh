#!/usr/bin/env bash
# Builds the release binary with profile-guided optimisation: an instrumented build, a training
# run through the gateway's request paths (bench/pgo_train.py), then the optimised build
# (build-release/layer) from the profile that run wrote, in the same build directory. GCC lays the hot
# paths out together, predicts their branches and turns their indirect calls (the coroutine and
# executor machinery) into direct ones: about a sixth less user CPU per proxied request
# (docs/benchmarks.md, "Fourth round"). Every run trains afresh: a profile of other sources
# fails the build.
#
#   scripts/release.sh [--seconds S]    # S: seconds per training phase (default 3)
#
# Prints the binary's path on its last line. Installs what the build needs (scripts/setup.sh
# --no-build) and builds the release RocksDB the first time (scripts/rocksdb.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_PHASE=3
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_PER_PHASE="$2"; shift 2 ;;
    *) echo "release.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

scripts/setup.sh --no-build
scripts/rocksdb.sh
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true

# One build directory for both builds: the profile is keyed by its object and header paths.
PROFILE="$PWD/build-release/pgo-profile"
rm -rf "$PROFILE"
# The instrumented build goes through ccache; the optimised one does not (each training run's
# profile differs, so it would never hit).
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DLAYER_BUILD_TESTS=OFF \
  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DLAYER_PGO=generate -DLAYER_PGO_DIR="$PROFILE" >/dev/null
cmake --build build-release -j "$(nproc)" --target layer_bin fixed_origin

/usr/bin/python3 bench/pgo_train.py --layer-bin build-release/layer \
  --origin-bin build-release/bench/fixed_origin --seconds "$SECONDS_PER_PHASE"

cmake -S . -B build-release -DCMAKE_CXX_COMPILER_LAUNCHER= -DLAYER_PGO=use >/dev/null
cmake --build build-release -j "$(nproc)" --target layer_bin
echo "release build: $PWD/build-release/layer"
