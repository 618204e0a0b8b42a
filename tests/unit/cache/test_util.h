// Helpers for the cache tests: a temporary directory and a way to run a coroutine to completion.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

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

// A free loopback TCP port (bound, then released for a server to take) whose Redis Cluster bus
// port (port + 10000) is a valid port too; 0 when none was found.
inline int FreePort() {
  for (int attempt = 0; attempt < 100; ++attempt) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    int port = 0;
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
    close(fd);
    if (port > 0 && port + 10000 <= 65535) return port;
  }
  return 0;
}

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
