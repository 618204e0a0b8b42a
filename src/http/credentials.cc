#include "http/credentials.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <array>
#include <mutex>

#include "common/tenant.h"

namespace layer::http {

namespace {

std::string ComputeTenantTag(std::string_view token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string tag(16, '0');
  for (size_t i = 0; i < 8; ++i) {
    tag[2 * i] = kHex[digest[i] >> 4];
    tag[2 * i + 1] = kHex[digest[i] & 0xf];
  }
  return tag;
}

}  // namespace

std::string TenantTag(std::string_view token) {
  // A request thread sees the same few keys again and again: the last few tags are kept per
  // thread, so a request costs a comparison (constant-time) instead of a SHA-256.
  struct Recent {
    std::string token, tag;
  };
  constexpr size_t kRecent = 4;
  thread_local std::array<Recent, kRecent> recent;
  thread_local size_t next = 0;
  for (const Recent& r : recent) {
    if (!r.tag.empty() && r.token.size() == token.size() &&
        CRYPTO_memcmp(r.token.data(), token.data(), token.size()) == 0) {
      return r.tag;
    }
  }
  std::string tag = ComputeTenantTag(token);
  Recent& slot = recent[next++ % kRecent];
  slot.token.assign(token);
  slot.tag = tag;
  return tag;
}

Credentials::Credentials(std::string fixed_authorization, size_t capacity)
    : fixed_(std::move(fixed_authorization)), capacity_(capacity == 0 ? 1 : capacity) {}

void Credentials::Remember(std::string_view tag, std::string_view authorization) {
  if (!fixed_.empty() || authorization.empty()) return;
  {
    std::shared_lock lock(mu_);
    auto it = by_tag_.find(tag);
    if (it != by_tag_.end() && it->second.authorization == authorization) return;
  }
  std::unique_lock lock(mu_);
  Entry& e = by_tag_[std::string(tag)];
  e.authorization.assign(authorization);
  e.used = ++seq_;
  if (by_tag_.size() <= capacity_) return;
  auto oldest = by_tag_.begin();
  for (auto it = by_tag_.begin(); it != by_tag_.end(); ++it) {
    if (it->second.used < oldest->second.used) oldest = it;
  }
  by_tag_.erase(oldest);
}

std::optional<std::string> Credentials::ForTag(std::string_view tag) const {
  if (!fixed_.empty()) return fixed_;
  std::shared_lock lock(mu_);
  auto it = by_tag_.find(tag);
  if (it != by_tag_.end()) return it->second.authorization;
  if (tag.empty()) return std::string();
  return std::nullopt;
}

std::optional<std::string> Credentials::ForPartition(std::string_view partition) const {
  return ForTag(SplitPartition(partition).tag);
}

}  // namespace layer::http
