// Cache benchmark: the embedded RocksDB cache's batch write path, in process, as a warm drives it.
//
//   fresh      --docs documents of --doc-bytes attribute bytes, written in pages of --page with
//              PutIfNewerBatch (ascending u64 ids: a warm's pages), then Close() (which flushes
//              what the memtables still hold). Reports the writing thread's CPU per document and
//              the whole process's (the writer plus RocksDB's flush threads).
//   overwrite  the same documents again with a newer stamp after reopening: every key is found
//              by the read-before-write and replaced.
//
// `--compress` turns on the block compression the cache leaves off (RocksDbCacheOptions), to
// measure what it would cost. Output: one JSON line per measurement on stdout.
#include <time.h>

#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "bench_util.h"
#include "cache/rocksdb/rocksdb_cache.h"

namespace {

using layer::bench::JsonLine;
using layer::cache::CachedDoc;
using layer::cache::DocId;
using layer::cache::RocksDbCache;
using layer::cache::RocksDbCacheOptions;
using Page = std::vector<std::pair<DocId, CachedDoc>>;

double CpuSeconds(clockid_t clock) {
  timespec t{};
  clock_gettime(clock, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// The attributes of warm_bench's documents, {"n":I,"tag":"tK","body":"…"}, of exactly `bytes`.
std::string Attributes(uint64_t id, size_t bytes) {
  return layer::bench::PaddedJson(fmt::format(R"({{"n":{},"tag":"t{}","body":")", id, id % 16),
                                  bytes, layer::bench::Mix(id));
}

struct Options {
  uint64_t docs = 100000;
  size_t doc_bytes = 1024;
  size_t page = 1000;
  bool compress = false;
  std::string dir;
};

// Writes every page with `stamp`, then closes the cache (flushing it); prints one line.
bool Pass(const Options& o, const std::string& measurement, std::vector<Page>& pages,
          uint64_t stamp) {
  for (Page& p : pages) {
    for (auto& [id, doc] : p) doc.upserted_at = stamp;
  }
  RocksDbCacheOptions co;
  co.path = o.dir;
  co.compress = o.compress;
  auto cache = RocksDbCache::Open(co);
  if (!cache.ok()) {
    fmt::print(stderr, "error: open {}: {}\n", o.dir, cache.status().message());
    return false;
  }
  const auto w0 = std::chrono::steady_clock::now();
  const double p0 = CpuSeconds(CLOCK_PROCESS_CPUTIME_ID);
  double put_cpu = 0;
  uint64_t stored = 0;
  for (const Page& p : pages) {
    const double t0 = CpuSeconds(CLOCK_THREAD_CPUTIME_ID);
    auto r = (*cache)->PutIfNewerBatch("big", p);
    put_cpu += CpuSeconds(CLOCK_THREAD_CPUTIME_ID) - t0;
    if (!r.ok()) {
      fmt::print(stderr, "error: put: {}\n", r.status().message());
      return false;
    }
    for (bool s : *r) stored += s ? 1 : 0;
  }
  const double put_wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
  if (layer::Status st = (*cache)->Close(); !st.ok()) {
    fmt::print(stderr, "error: close: {}\n", st.message());
    return false;
  }
  const double total_cpu = CpuSeconds(CLOCK_PROCESS_CPUTIME_ID) - p0;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
  const double n = static_cast<double>(o.docs);
  JsonLine()
      .Str("bench", "cache")
      .Str("measurement", measurement)
      .Bool("compress", o.compress)
      .Int("docs", static_cast<int64_t>(o.docs))
      .Int("doc_bytes", static_cast<int64_t>(o.doc_bytes))
      .Int("page", static_cast<int64_t>(o.page))
      .Int("stored", static_cast<int64_t>(stored))
      .Num("put_seconds", put_wall, 3)
      .Num("put_docs_per_s", n / std::max(put_wall, 1e-9), 0)
      .Num("writer_cpu_us_per_doc", put_cpu * 1e6 / n, 2)
      .Num("process_cpu_us_per_doc", total_cpu * 1e6 / n, 2)
      .Num("seconds_with_flush", wall, 3)
      .Num("load_average", layer::bench::LoadAverage(), 2)
      .Print();
  return stored == o.docs;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Cache benchmark: RocksDB cache batch writes, CPU per document"};
  app.add_option("--docs", o.docs, "documents")->capture_default_str();
  app.add_option("--doc-bytes", o.doc_bytes, "attribute JSON bytes per document")
      ->capture_default_str();
  app.add_option("--page", o.page, "documents per PutIfNewerBatch")->capture_default_str();
  app.add_flag("--compress", o.compress, "compress the cache's file blocks (off by default)");
  app.add_option("--dir", o.dir, "cache directory (default: a fresh temp dir, removed after)");
  CLI11_PARSE(app, argc, argv);
  if (o.page == 0) o.page = 1;

  const bool own_dir = o.dir.empty();
  if (own_dir) {
    o.dir = (std::filesystem::temp_directory_path() /
             fmt::format("layer-cache-bench-{}", ::getpid()))
                .string();
  }
  std::filesystem::remove_all(o.dir);

  // Built before any timing: the pages a warm would hand the cache.
  std::vector<Page> pages;
  for (uint64_t id = 1; id <= o.docs;) {
    Page& p = pages.emplace_back();
    p.reserve(o.page);
    for (size_t i = 0; i < o.page && id <= o.docs; ++i, ++id) {
      p.emplace_back(DocId::U64(id), CachedDoc{Attributes(id, o.doc_bytes), 0, false});
    }
  }
  bool ok = Pass(o, "fresh", pages, 1000) && Pass(o, "overwrite", pages, 2000);
  if (own_dir) std::filesystem::remove_all(o.dir);
  return ok ? 0 : 1;
}
