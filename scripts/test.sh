#!/usr/bin/env bash
# Sets everything up and runs the whole test suite (unit + integration) with ctest.
#
#   scripts/test.sh [--build-dir DIR] [--sanitize] [-- extra ctest args]
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=build
SETUP_ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) BUILD_DIR="$2"; SETUP_ARGS+=(--build-dir "$2"); shift 2 ;;
    --sanitize) SETUP_ARGS+=(--sanitize); shift ;;
    --) shift; break ;;
    *) break ;;
  esac
done

scripts/setup.sh "${SETUP_ARGS[@]}"
cd "$BUILD_DIR"
ctest --output-on-failure --timeout 900 -j 2 "$@"
