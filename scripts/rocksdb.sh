#!/usr/bin/env bash
# Builds the RocksDB that Layer links: the release of Debian's own librocksdb-dev version (7.8.3),
# from Debian's source package, compiled as a release library into .deps/rocksdb-<version>/
# (include/ and lib/) under /var/cache/layer (LAYER_DEPS_DIR), where CMakeLists.txt finds it and
# where every later clone on the same machine reuses it; .deps/ in the repository when that
# directory cannot be written.
#
# Why not Debian's library: it is compiled without NDEBUG, so its ~6,400 assertions and its test
# sync points run in production. For the cache that is a third of the CPU of a batch write and a
# quarter of a flush (docs/benchmarks.md, Warm). The source is Debian's, checked against the
# SHA-256 of Debian's source index; the library keeps RTTI (as Debian's does) and is portable
# across x86-64 CPUs.
#
# Idempotent: does nothing when the library of this version is already in place. Takes ~15 min
# on two cores the first time.
#
#   scripts/rocksdb.sh [PREFIX]      (default /var/cache/layer/rocksdb-7.8.3)
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=7.8.3
TARBALL=rocksdb_${VERSION}.orig.tar.gz
SHA256=b85408a374770897332bf15e51620a5f35720dd416a4749e3899057f9cfaf84d
URL=http://deb.debian.org/debian/pool/main/r/rocksdb/${TARBALL}

DEPS=${LAYER_DEPS_DIR:-/var/cache/layer}
mkdir -p "$DEPS" 2>/dev/null && [ -w "$DEPS" ] || DEPS=.deps
PREFIX=${1:-${DEPS}/rocksdb-${VERSION}}
WORK=${DEPS}/work-rocksdb-${VERSION}
STAMP="${PREFIX}/.built"
WANT="rocksdb ${VERSION} release rtti portable snappy ${SHA256}"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  exit 0
fi

echo "rocksdb: building RocksDB ${VERSION} (release) into ${PREFIX}"
mkdir -p "$WORK"
if ! echo "${SHA256}  ${WORK}/${TARBALL}" | sha256sum -c --status 2>/dev/null; then
  curl -fsSL --retry 3 -o "${WORK}/${TARBALL}" "$URL"
  echo "${SHA256}  ${WORK}/${TARBALL}" | sha256sum -c --status ||
    { echo "rocksdb: ${TARBALL} does not match its SHA-256" >&2; exit 1; }
fi
rm -rf "${WORK}/src" "${WORK}/build"
mkdir -p "${WORK}/src"
tar -xzf "${WORK}/${TARBALL}" -C "${WORK}/src" --strip-components=1

cmake -S "${WORK}/src" -B "${WORK}/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DUSE_RTTI=ON -DPORTABLE=ON -DFAIL_ON_WARNINGS=OFF \
  -DWITH_SNAPPY=ON -DWITH_LZ4=OFF -DWITH_ZLIB=OFF -DWITH_ZSTD=OFF -DWITH_BZ2=OFF \
  -DWITH_GFLAGS=OFF -DWITH_TESTS=OFF -DWITH_TOOLS=OFF -DWITH_CORE_TOOLS=OFF \
  -DWITH_BENCHMARK_TOOLS=OFF -DWITH_TRACE_TOOLS=OFF -DROCKSDB_BUILD_SHARED=ON >/dev/null
# Only the shared library: the default targets would compile every source twice (static too).
if ! cmake --build "${WORK}/build" -j "$(nproc)" --target rocksdb-shared >"${WORK}/build.log" 2>&1
then
  tail -n 40 "${WORK}/build.log" >&2
  echo "rocksdb: the build failed (whole log: ${WORK}/build.log)" >&2
  exit 1
fi

rm -rf "$PREFIX"
mkdir -p "${PREFIX}/lib"
cp -a "${WORK}/src/include" "${PREFIX}/include"
cp -a "${WORK}/build"/librocksdb.so* "${PREFIX}/lib/"
echo "$WANT" > "$STAMP"
rm -rf "${WORK}/src" "${WORK}/build" "${WORK}/build.log"
echo "rocksdb: ${PREFIX} ready"
