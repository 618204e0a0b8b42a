// The upstream credentials of tenants (docs/design.md §9.7): what background work -- warm jobs,
// the hint's documents step, reactive warms, the consistency watcher -- sends upstream on behalf
// of the tenant whose request caused it.
//
// With an upstream key configured, every tenant's background work sends that key. Without one,
// the gateway forwards its callers' own keys, and background work sends the key of a caller of
// that tenant (in derive mode a tenant is one key, so that is the key itself). Keys are held in
// this process's memory only: never written to the job store, the cache, logs or metrics; a
// restarted gateway has none until callers come back. At most `capacity` tenants' keys are held;
// past that the least recently remembered one is forgotten.
//
// Thread-safe. Remember() of a key already held takes a shared lock only.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace layer::http {

// The tenant tag of a bearer token: the first 8 bytes of its SHA-256, as 16 lower-case hex
// digits. Names a tenant in partitions, job records and logs without revealing the key.
std::string TenantTag(std::string_view token);

class Credentials {
 public:
  // `fixed_authorization`: "Bearer <upstream key>" when one is configured, else empty.
  explicit Credentials(std::string fixed_authorization = {}, size_t capacity = 10000);

  // Records `authorization` ("Bearer <token>") as the credential of tenant `tag`. No-op with a
  // fixed credential or an empty `authorization`.
  void Remember(std::string_view tag, std::string_view authorization);
  // The "Bearer …" value for background work of the partition's tenant: the fixed credential,
  // else the remembered one; else, for the one tenant (tag ""), "" (send none, as its requests
  // do: keys mode without an upstream key, an open origin), and for a tenant of its own key
  // nullopt (the work must wait for a caller of that tenant).
  std::optional<std::string> ForPartition(std::string_view partition) const;
  std::optional<std::string> ForTag(std::string_view tag) const;
  bool fixed() const { return !fixed_.empty(); }

 private:
  struct Entry {
    std::string authorization;
    uint64_t used = 0;  // remember sequence, for eviction
  };
  const std::string fixed_;
  const size_t capacity_;
  struct TagHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  mutable std::shared_mutex mu_;  // guards by_tag_ and seq_
  std::unordered_map<std::string, Entry, TagHash, std::equal_to<>> by_tag_;
  uint64_t seq_ = 0;
};

}  // namespace layer::http
