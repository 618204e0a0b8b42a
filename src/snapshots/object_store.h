// ObjectStore: durable blobs under string keys (snapshot bodies, snapshot policies), implemented
// by sibling backends (fs/ a local directory, the default; s3/ S3-compatible).
//
// Keys are '/'-separated paths such as "snapshots/ns/0001779789600000-abc1234.json". Backends
// may refuse keys they cannot represent safely (InvalidArgument); every backend accepts keys made
// of non-empty segments of [A-Za-z0-9_.-] other than "." and "..".
//
// Semantics: a Put is atomic (readers see the old bytes or the new bytes, never a mix) and
// durable once it returns OK. List returns keys in lexical (byte) order, as S3 does, which is
// what makes "latest snapshot = last key of a prefix listing" work.
//
// Blocking: every call may block on disk or network I/O; callers run it off the event loop.
// Thread-safe.
//
// Failure: NotFound only where documented; IoError/Unavailable mean the store could not answer,
// and a failed write leaves the previous object (or its absence) in place.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace layer::snapshots {

// The key rules every backend enforces (see the top): non-empty, at most 1024 bytes, relative,
// '/'-separated non-empty segments other than "." and "..", no control character or backslash.
// InvalidArgument naming the broken rule.
Status CheckObjectKey(std::string_view key);

// Lowercase hex SHA-256 of `bytes` (snapshot shas, S3 payload hashes).
std::string Sha256Hex(std::string_view bytes);

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // Creates or replaces the object.
  virtual Status Put(std::string_view key, std::string_view bytes) = 0;
  // Creates the object unless one exists. Returns true if written, false if the key was taken
  // (the existing object is left untouched). Atomic with respect to other PutIfAbsent calls.
  virtual Result<bool> PutIfAbsent(std::string_view key, std::string_view bytes) = 0;
  // The object's bytes; NotFound when there is none.
  virtual Result<std::string> Get(std::string_view key) = 0;
  // Every key starting with `prefix` (a plain string prefix, not a directory), sorted lexically.
  virtual Result<std::vector<std::string>> List(std::string_view prefix) = 0;
  // Removes the object. Idempotent: a missing key is OK.
  virtual Status Delete(std::string_view key) = 0;
};

}  // namespace layer::snapshots
