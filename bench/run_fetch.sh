#!/usr/bin/env bash
# Builds and runs the document-fetch benchmark (cache hits vs /health, batch hits, misses vs a
# direct upstream read, and hits again under a background write load).
#
#   bench/run_fetch.sh                                  # defaults: 10k docs of ~500 B, 16 conns
#   bench/run_fetch.sh --skip-write-load --max-seconds 8
#   BUILD_DIR=/path/to/build bench/run_fetch.sh --miss-rate 100
#
# Extra arguments go to fetch_bench (see --help). JSON lines on stdout, progress on stderr.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="${BUILD_DIR:-$here/../build}"
jobs="${JOBS:-1}"  # the reference machine has 2 shared cores
if [[ ! -f "$build/build.ninja" ]]; then
  cmake -S "$here/.." -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
ninja -C "$build" -j"$jobs" fetch_bench layer_bin >&2
exec "$build/bench/fetch_bench" "$@"
