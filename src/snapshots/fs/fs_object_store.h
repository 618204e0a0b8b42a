// FsObjectStore: an ObjectStore in a local directory (the default backend). Key "a/b/c.json" is
// the file <root>/a/b/c.json.
//
// Keys: non-empty, at most 1024 bytes, '/'-separated non-empty segments; refused with
// InvalidArgument when a segment is "." or "..", when the key is absolute or ends with '/', or
// when it contains NUL or '\\' or starts with the reserved segment ".staging". No key can name a
// file outside the root.
//
// Atomicity and durability: Put writes a temp file under <root>/.staging, fsyncs it and renames it
// over the target, then fsyncs the directory. PutIfAbsent hard-links the temp file to the target,
// which fails if the target exists, so two racing PutIfAbsent calls (also from different
// processes) cannot both win.
//
// Listing walks the directory under the deepest directory named by the prefix and sorts. Empty
// directories left by Delete are harmless.
//
// Blocking: file I/O and fsync. Thread-safe (no shared mutable state besides the filesystem).
#pragma once

#include <memory>
#include <string>

#include "snapshots/object_store.h"

namespace layer::snapshots {

class FsObjectStore final : public ObjectStore {
 public:
  // Creates `root` (and its staging directory) if missing. IoError when it cannot.
  static Result<std::unique_ptr<FsObjectStore>> Open(std::string root);

  // OK or InvalidArgument with the reason (the key rules above).
  static Status ValidateKey(std::string_view key);

  Status Put(std::string_view key, std::string_view bytes) override;
  Result<bool> PutIfAbsent(std::string_view key, std::string_view bytes) override;
  Result<std::string> Get(std::string_view key) override;
  Result<std::vector<std::string>> List(std::string_view prefix) override;
  Status Delete(std::string_view key) override;

  const std::string& root() const { return root_; }

 private:
  explicit FsObjectStore(std::string root) : root_(std::move(root)) {}
  // Writes `bytes` to a fresh fsynced temp file in the staging dir; returns its path.
  Result<std::string> WriteTemp(std::string_view bytes);
  // Creates the parent directories of `key`'s file.
  Status MakeParents(std::string_view key);

  const std::string root_;
};

}  // namespace layer::snapshots
