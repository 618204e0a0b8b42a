#include "snapshots/object_store_url.h"

#include <fmt/format.h>

#include "common/url.h"

namespace layer::snapshots {
namespace {

constexpr std::string_view kForms = "use s3://BUCKET/PREFIX or file:///ABSOLUTE/PATH";

bool IsSegmentChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

Result<ObjectStoreUrl> ParseS3(std::string_view url, std::string_view rest) {
  size_t slash = rest.find('/');
  std::string_view bucket = rest.substr(0, slash);
  std::string_view prefix = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  if (bucket.empty()) {
    return Status::InvalidArgument(
        fmt::format("--object-store {}: the bucket is missing ({})", url, kForms));
  }
  if (Status st = ValidateBucketName(bucket); !st.ok()) {
    return Status::InvalidArgument(fmt::format("--object-store {}: {}", url, st.message()));
  }
  while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
  ObjectStoreUrl out;
  out.kind = ObjectStoreUrl::Kind::kS3;
  out.bucket = std::string(bucket);
  size_t start = 0;
  while (start < prefix.size()) {
    size_t end = prefix.find('/', start);
    if (end == std::string_view::npos) end = prefix.size();
    std::string_view seg = prefix.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == "..") {
      return Status::InvalidArgument(fmt::format(
          "--object-store {}: the prefix has an empty, '.' or '..' segment", url));
    }
    for (char c : seg) {
      if (!IsSegmentChar(c)) {
        return Status::InvalidArgument(fmt::format(
            "--object-store {}: the prefix may only hold letters, digits, '_', '.', '-' and '/'",
            url));
      }
    }
    start = end + 1;
  }
  if (!prefix.empty()) out.prefix = std::string(prefix) + "/";
  return out;
}

}  // namespace

Status ValidateBucketName(std::string_view b) {
  if (b.size() < 3 || b.size() > 63) {
    return Status::InvalidArgument(
        fmt::format("bucket name '{}' must be 3 to 63 characters long", b));
  }
  for (char c : b) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-')) {
      return Status::InvalidArgument(fmt::format(
          "bucket name '{}' may only hold lower-case letters, digits, '.' and '-'", b));
    }
  }
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(b.front()) || !alnum(b.back())) {
    return Status::InvalidArgument(
        fmt::format("bucket name '{}' must start and end with a letter or digit", b));
  }
  if (b.find("..") != std::string_view::npos) {
    return Status::InvalidArgument(fmt::format("bucket name '{}' may not contain '..'", b));
  }
  return Status::Ok();
}

Result<ObjectStoreUrl> ParseObjectStoreUrl(std::string_view url) {
  if (url.find_first_of("?#") != std::string_view::npos) {
    return Status::InvalidArgument(
        fmt::format("--object-store {}: a query string or fragment is not allowed", url));
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      return Status::InvalidArgument(
          fmt::format("--object-store '{}': spaces and control characters are not allowed", url));
    }
  }
  if (url.starts_with("s3://")) return ParseS3(url, url.substr(5));
  if (url.starts_with("file://")) {
    std::string_view rest = url.substr(7);
    if (rest.starts_with("localhost/")) rest.remove_prefix(9);
    if (!rest.starts_with("/")) {
      return Status::InvalidArgument(fmt::format(
          "--object-store {}: a file URL needs an absolute path, file:///ABSOLUTE/PATH", url));
    }
    std::string path;
    if (!PercentDecode(rest, &path) || path.find('\0') != std::string::npos) {
      return Status::InvalidArgument(
          fmt::format("--object-store {}: malformed percent-escape in the path", url));
    }
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    ObjectStoreUrl out;
    out.kind = ObjectStoreUrl::Kind::kFile;
    out.path = std::move(path);
    return out;
  }
  size_t colon = url.find("://");
  if (colon == std::string_view::npos) {
    return Status::InvalidArgument(fmt::format("--object-store '{}' is not a URL ({}; "
                                               "--object-store-dir takes a plain directory)",
                                               url, kForms));
  }
  return Status::InvalidArgument(fmt::format("--object-store {}: unsupported scheme '{}' ({})",
                                             url, url.substr(0, colon), kForms));
}

std::string ToString(const ObjectStoreUrl& url) {
  if (url.kind == ObjectStoreUrl::Kind::kFile) return "file://" + url.path;
  return "s3://" + url.bucket + "/" + url.prefix;
}

}  // namespace layer::snapshots
