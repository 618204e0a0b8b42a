// Where the object store lives, as an operator names it with `--object-store` (docs/design.md
// §7.3):
//
//   file:///abs/path        the fs/ backend in that directory (file://localhost/abs/path too)
//   s3://BUCKET             the s3/ backend, objects at the bucket's root
//   s3://BUCKET/PREFIX      the s3/ backend, object `k` stored as "PREFIX/k"
//
// The s3 prefix is a "directory": a trailing '/' is implied, so s3://b/layer and s3://b/layer/
// are the same store. Bucket names follow S3's rules (3-63 characters of a-z 0-9 . -, starting
// and ending with a letter or digit); prefix segments are non-empty runs of [A-Za-z0-9_.-] other
// than "." and "..". Anything else is refused with InvalidArgument and a message that says what
// to write instead. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace layer::snapshots {

struct ObjectStoreUrl {
  enum class Kind { kFile, kS3 };
  Kind kind = Kind::kFile;
  std::string path;    // kFile: the directory (absolute)
  std::string bucket;  // kS3
  std::string prefix;  // kS3: "" or ending in '/'
  friend bool operator==(const ObjectStoreUrl&, const ObjectStoreUrl&) = default;
};

Result<ObjectStoreUrl> ParseObjectStoreUrl(std::string_view url);

// OK or InvalidArgument saying why `bucket` is not a valid S3 bucket name.
Status ValidateBucketName(std::string_view bucket);

// The URL back in its canonical form (s3://bucket/prefix/ or file:///path), for logs.
std::string ToString(const ObjectStoreUrl& url);

}  // namespace layer::snapshots
