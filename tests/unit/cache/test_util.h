// Helpers for the cache tests: a temporary directory and a way to run a coroutine to completion.
#pragma once

#include <stdlib.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <utility>

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
