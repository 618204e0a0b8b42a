// Inbound authentication and the upstream credential (docs/design.md §9.6).
//
// Modes: derive (default; with an upstream key only that key is accepted, without one any
// well-formed bearer is accepted and forwarded upstream), keys (gateway keys with scopes) and
// open. A missing or malformed Authorization header is 401 in every mode but open. Keys are
// compared in constant time over their SHA-256 digests, so neither content nor length leaks.
// Gateway keys are never sent upstream: in keys and open modes the upstream gets the configured
// upstream key (or, in open mode without one, the caller's own bearer token).
// Thread-safe (immutable after construction). Tokens are never logged.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.h"
#include "http/message.h"

namespace layer::gateway {

struct AuthResult {
  std::optional<http::Response> denied;  // set when the request must be refused
  std::string upstream_authorization;    // "Bearer …" to send upstream, or empty for none
  std::string tenant;  // the caller's tenant tag when keys are tenants (gateway/tenancy.h), or ""
};

class Authenticator {
 public:
  explicit Authenticator(const ServeConfig& cfg);

  // `authorization` is the raw header value ("" when absent); `required` a kScope* bit.
  AuthResult Check(std::string_view authorization, unsigned required) const;

 private:
  using Digest = std::array<unsigned char, 32>;
  struct Key {
    Digest digest;
    unsigned scopes;
  };
  static Digest Hash(std::string_view s);

  AuthMode mode_;
  bool per_key_tenancy_;
  std::vector<Key> keys_;              // keys mode: gateway keys; derive mode: the upstream key
  std::string upstream_authorization_; // "Bearer <upstream key>" or empty
};

}  // namespace layer::gateway
