#include "snapshots/object_store.h"

#include <openssl/sha.h>

namespace layer::snapshots {

Status CheckObjectKey(std::string_view key) {
  constexpr size_t kMaxKeyBytes = 1024;  // S3's limit on a key
  if (key.empty()) return Status::InvalidArgument("object key is empty");
  if (key.size() > kMaxKeyBytes) return Status::InvalidArgument("object key is too long");
  if (key.front() == '/') return Status::InvalidArgument("object key must be relative");
  if (key.back() == '/') return Status::InvalidArgument("object key must not end with '/'");
  for (char c : key) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return Status::InvalidArgument(c == 0 ? "object key contains NUL"
                                            : "object key contains a control character");
    }
    if (c == '\\') return Status::InvalidArgument("object key contains a backslash");
  }
  size_t start = 0;
  while (start <= key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string_view::npos) end = key.size();
    std::string_view seg = key.substr(start, end - start);
    if (seg.empty()) return Status::InvalidArgument("object key has an empty segment");
    if (seg == "." || seg == "..") {
      return Status::InvalidArgument("object key has a '.' or '..' segment");
    }
    start = end + 1;
  }
  return Status::Ok();
}

std::string Sha256Hex(std::string_view bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * SHA256_DIGEST_LENGTH);
  for (unsigned char c : digest) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

}  // namespace layer::snapshots
