// Durable storage: one append-only, checksummed write-ahead log per namespace.
//
// Layout: <data_dir>/namespaces/<name>/wal.log. A record is [u32 length][u32 crc32][payload],
// little-endian; Append returns only after fdatasync, so an acknowledged write survives kill -9.
// Replay stops at the first torn or corrupt record and truncates it away. Deleting a namespace
// unlinks its log and fsyncs the directory before returning. A log may be compacted by atomically
// replacing it with a single snapshot record (write temp, fsync, rename, fsync dir).
//
// Thread-compatible: the engine serialises calls per namespace (and uses the catalog lock for
// create/delete).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace layer::origin {

class NamespaceLog {
 public:
  ~NamespaceLog();
  NamespaceLog(const NamespaceLog&) = delete;
  NamespaceLog& operator=(const NamespaceLog&) = delete;

  // Opens (creating directories and the file when `create`) the log in `dir`, calling `apply`
  // for each intact record in order. Returns kNotFound when !create and no log exists.
  static Result<std::unique_ptr<NamespaceLog>> Open(
      const std::string& dir, bool create,
      const std::function<bool(std::string_view payload)>& apply);

  Status Append(std::string_view payload);
  // Replaces the whole log with one record.
  Status Rewrite(std::string_view payload);
  // Removes the log and its directory durably. The object is unusable afterwards.
  Status Destroy();

  uint64_t size_bytes() const { return size_; }
  uint64_t records() const { return records_; }

 private:
  NamespaceLog(std::string dir, int fd, uint64_t size, uint64_t records)
      : dir_(std::move(dir)), fd_(fd), size_(size), records_(records) {}

  std::string dir_;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t records_ = 0;
};

// Creates `path` and parents; fsyncs the parent of each created directory.
Status EnsureDir(const std::string& path);
// Names of the subdirectories of `path` (empty if it does not exist).
std::vector<std::string> ListSubdirs(const std::string& path);

}  // namespace layer::origin
