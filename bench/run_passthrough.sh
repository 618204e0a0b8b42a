#!/usr/bin/env bash
# Builds and runs the passthrough benchmark (direct vs through the gateway).
#
#   bench/run_passthrough.sh                       # latency mode: 2000 req/s, 16 conns, 10 s
#   bench/run_passthrough.sh --mode max --duration 5
#   BUILD_DIR=/path/to/build bench/run_passthrough.sh --rate 1000
#
# Extra arguments go to passthrough_bench (see --help). JSON lines on stdout, progress on stderr.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="${BUILD_DIR:-$here/../build}"
jobs="${JOBS:-1}"  # the reference machine has 2 shared cores
if [[ ! -f "$build/build.ninja" ]]; then
  cmake -S "$here/.." -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
ninja -C "$build" -j"$jobs" passthrough_bench layer_bin >&2
exec "$build/bench/passthrough_bench" "$@"
