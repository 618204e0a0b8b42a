#include "gateway/auth.h"

#include <boost/json/object.hpp>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "gateway/tenancy.h"
#include "http/bearer.h"
#include "http/credentials.h"
#include "http/errors.h"

namespace layer::gateway {
namespace {

// "Bearer " + token, in one allocation.
std::string BearerHeader(std::string_view token) {
  std::string out;
  out.reserve(7 + token.size());
  out.append("Bearer ", 7).append(token);
  return out;
}

http::Response Unauthorized() {
  return http::MakeJson(http::Code::unauthorized,
                        boost::json::object{{"error", "missing or malformed Authorization: Bearer header"}});
}

http::Response InvalidKey() {
  return http::MakeJson(http::Code::forbidden, boost::json::object{{"error", "invalid API key"}});
}

http::Response InsufficientScope(unsigned required) {
  const char* name = required & kScopeAdmin ? "admin" : required & kScopeWrite ? "write" : "read";
  return http::MakeJson(http::Code::forbidden,
                        boost::json::object{{"error", "insufficient API key scope"},
                                            {"required_scope", name}});
}

}  // namespace

Authenticator::Digest Authenticator::Hash(std::string_view s) {
  Digest d;
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d.data());
  return d;
}

Authenticator::Authenticator(const ServeConfig& cfg)
    : mode_(cfg.auth_mode), per_key_tenancy_(PerKeyTenancy(cfg)) {
  if (!cfg.upstream_api_key.empty()) {
    upstream_authorization_ = "Bearer " + cfg.upstream_api_key;
  }
  if (mode_ == AuthMode::kKeys) {
    for (const auto& k : cfg.gateway_keys) keys_.push_back({Hash(k.key), k.scopes});
  } else if (mode_ == AuthMode::kDerive && !cfg.upstream_api_key.empty()) {
    keys_.push_back({Hash(cfg.upstream_api_key), kScopeRead | kScopeWrite | kScopeAdmin});
  }
}

AuthResult Authenticator::Check(std::string_view authorization, unsigned required) const {
  AuthResult r;
  auto token = http::ParseBearer(authorization);
  if (mode_ == AuthMode::kOpen) {
    r.upstream_authorization = !upstream_authorization_.empty() ? upstream_authorization_
                               : token ? BearerHeader(*token)
                                       : std::string();
    return r;
  }
  if (!token) {
    r.denied = Unauthorized();
    return r;
  }
  if (keys_.empty()) {  // derive mode without an upstream key: the upstream validates the token
    r.upstream_authorization = BearerHeader(*token);
    if (per_key_tenancy_) r.tenant = http::TenantTag(*token);
    return r;
  }
  Digest d = Hash(*token);
  unsigned scopes = 0;
  bool found = false;
  for (const auto& k : keys_) {  // no early exit: every key is compared
    bool eq = CRYPTO_memcmp(d.data(), k.digest.data(), d.size()) == 0;
    found |= eq;
    scopes |= eq ? k.scopes : 0;
  }
  if (!found) {
    r.denied = InvalidKey();
    return r;
  }
  if (required != 0 && !(scopes & kScopeAdmin) && !(scopes & required)) {
    r.denied = InsufficientScope(required);
    return r;
  }
  // Gateway keys are Layer's own secrets and never leave the process; derive mode's only key
  // is the upstream key itself.
  r.upstream_authorization = upstream_authorization_;
  return r;
}

}  // namespace layer::gateway
