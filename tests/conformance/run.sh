#!/usr/bin/env bash
# Runs the SDK conformance suite (node's test runner) against `layer origin` and `layer serve`.
# LAYER_BIN: the layer binary (default build/layer of this repository). Installs the pinned npm deps if
# they are missing. Prints node's test summary; exits non-zero on any failure.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tests_dir="$(dirname "$here")"
export LAYER_BIN="${LAYER_BIN:-$(cd "$(dirname "$0")/../.." && pwd)/build/layer}"
if [ ! -f "$tests_dir/node_modules/@turbopuffer/turbopuffer/package.json" ]; then
  (cd "$tests_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi
cd "$tests_dir"
exec node --test --test-reporter=tap "$here"/*.test.mjs
