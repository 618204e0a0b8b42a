#!/usr/bin/env bash
# Builds and runs the document-fetch benchmark (cache hits vs /health, batch hits, misses vs a
# direct upstream read, and hits again under a background write load).
#
#   bench/run_fetch.sh                                  # defaults: 10k docs of ~500 B, 16 conns
#   bench/run_fetch.sh --skip-write-load --max-seconds 8
#   BUILD_DIR=/path/to/build bench/run_fetch.sh --miss-rate 100
#   PIN=0 bench/run_fetch.sh                            # unpinned, gateway on 2 threads
#
# By default the bench runs with --pin-cpus --gateway-threads 1: the load generator (and the
# origin) on one CPU, the gateway with one I/O thread on another. A load generator that shares the
# gateway's cores measures the scheduler more than the gateway (on a 2-core machine the hit tail
# at half the max rate is set by who gets the CPU next), and a real client runs on another
# machine. With fewer than 2 CPUs the bench says so and runs unpinned. PIN=0 turns the defaults
# off; later arguments override them (e.g. --gateway-threads 2).
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
defaults=()
if [[ "${PIN:-1}" != 0 ]]; then
  defaults=(--pin-cpus --gateway-threads 1)
fi
exec "$build/bench/fetch_bench" "${defaults[@]}" "$@"
