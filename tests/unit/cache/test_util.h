// Helpers for the cache tests: a temporary directory and a way to run a coroutine to completion.
#pragma once

#include <stdlib.h>

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "cache/rocksdb/rocksdb_cache.h"
#include "common/task.h"

namespace layer::cache::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/layer_cache_test_XXXXXX";
    char* p = mkdtemp(tmpl.data());
    path_ = p ? p : "";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A RocksDB cache in `dir`/cache, sized as the cache tests size it (64 MiB), on the system clock.
// A failure to open is reported to gtest and answered with null.
inline std::unique_ptr<RocksDbCache> OpenTestRocksDb(const TempDir& dir) {
  RocksDbCacheOptions o;
  o.path = dir.Sub("cache");
  o.max_bytes = 64 << 20;
  auto r = RocksDbCache::Open(std::move(o));
  if (!r.ok()) {
    ADD_FAILURE() << r.status().ToString();
    return nullptr;
  }
  return std::move(r).value();
}

// Runs `task` on `io` until it completes and returns its value.
template <typename T>
T RunTask(boost::asio::io_context& io, Task<T> task) {
  std::optional<T> out;
  boost::asio::co_spawn(
      io,
      [&out, t = std::move(task)]() mutable -> Task<void> {
        out.emplace(co_await std::move(t));
      },
      boost::asio::detached);
  io.restart();
  io.run();
  return std::move(*out);
}

template <typename T>
T RunTask(Task<T> task) {
  boost::asio::io_context io;
  return RunTask(io, std::move(task));
}

}  // namespace layer::cache::testing
