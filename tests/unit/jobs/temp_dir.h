// A temporary directory for the storage tests (no Asio, unlike tests/unit/cache/test_util.h).
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace layer::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class StorageTempDir {
 public:
  StorageTempDir() {
    const char* base = getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/layer_storage_test_XXXXXX";
    char* p = mkdtemp(tmpl.data());
    path_ = p ? p : "";
  }
  ~StorageTempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  StorageTempDir(const StorageTempDir&) = delete;
  StorageTempDir& operator=(const StorageTempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace layer::testing
