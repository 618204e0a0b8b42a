#!/usr/bin/env bash
# Installs every package the build and the tests need (Debian 12, as root), builds a release
# RocksDB from Debian's source package (scripts/rocksdb.sh, the first time only), then builds Layer.
# Idempotent: packages already present are not reinstalled, and the build is incremental.
#
#   scripts/setup.sh [--build-dir DIR] [--sanitize] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=build
SANITIZE=OFF
DO_BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) BUILD_DIR="$2"; shift 2 ;;
    --sanitize) SANITIZE=ON; shift ;;
    --no-build) DO_BUILD=0; shift ;;
    *) echo "setup.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

APT_PACKAGES=(
  cmake ninja-build g++ pkg-config git ca-certificates curl openssl
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libboost-system1.81-dev
  librocksdb-dev libsnappy-dev libsimdjson-dev libcurl4-openssl-dev libssl-dev zlib1g-dev
  libhiredis-dev libpq-dev libsqlite3-dev libxxhash-dev libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev libhnswlib-dev libzstd-dev
  redis-server postgresql wrk python3 python3-pytest python3-httpx python3-venv golang-go
  clang libclang-rt-14-dev  # the libFuzzer targets (scripts/fuzz.sh)
  python3-botocore python3-boto3  # the S3 tests' signature checks and reference client
  nginx  # bench/nginx_compare.py, bench/fleet_bench.py: the reference server (started by the bench, not as a service)
  ccache  # rebuilds in later clones (and the sanitizer and fuzz builds) reuse earlier objects
)
# Node.js may already come from another source (which bundles npm); only add Debian's if absent.
command -v node >/dev/null 2>&1 || APT_PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(npm)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# npm packages used by the tests (the conformance client; s3rver, the S3 emulator behind
# tests/s3/s3_front.py) are pinned in package.json and package-lock.json.
if [ -f tests/package.json ]; then
  (cd tests && npm ci --no-audit --no-fund --loglevel=error)
fi

# Compiler output is cached by ccache, keyed on paths relative to the checkout, so a fresh clone
# of the same sources on this machine compiles almost nothing.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
export CMAKE_CXX_COMPILER_LAUNCHER=ccache CMAKE_C_COMPILER_LAUNCHER=ccache

if [ "$DO_BUILD" = 1 ]; then
  scripts/rocksdb.sh  # a release RocksDB (Debian's has its assertions compiled in); once
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLAYER_SANITIZE="$SANITIZE" \
    >/dev/null
  cmake --build "$BUILD_DIR" -j "$(nproc)"
fi
