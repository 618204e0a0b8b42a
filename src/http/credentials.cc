#include "http/credentials.h"

#include <openssl/sha.h>

#include <mutex>

#include "common/tenant.h"

namespace layer::http {

std::string TenantTag(std::string_view token) {
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
