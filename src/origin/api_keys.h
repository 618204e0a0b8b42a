// The local origin's API-key check (docs/origin.md "API keys").
//
// Turbopuffer answers a request without a valid `Authorization: Bearer <key>` with 401 and its
// error envelope. `layer origin --api-key K` reproduces that so the gateway's tests can see an
// upstream refuse a key; without --api-key the set is open and every request passes, bearer or
// not.
//
// Keys are compared in constant time: the time of a check depends on the presented token's
// length and the number of keys, never on a key's content or length. Keys never leave this
// object (ToJson reports a count only) and are never logged.
//
// Thread-safe: Check runs on every request while /_test/keys may Replace or Open the set.
#pragma once

#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "http/message.h"

namespace layer::origin {

class ApiKeys {
 public:
  enum class Verdict {
    kAllowed,  // open set, or a known key
    kMissing,  // no well-formed `Authorization: Bearer <token>` header
    kUnknown,  // a bearer token that is not in the set
  };

  // Open: every request is allowed.
  ApiKeys() = default;
  // Enforced with `keys`; each must pass ValidateApiKey (common/config.h), which OriginConfig
  // already checked. An empty list refuses every request.
  explicit ApiKeys(std::vector<std::string> keys);

  // `authorization` is the raw header value, "" when absent.
  Verdict Check(std::string_view authorization) const;

  // Replaces the set from a JSON body {"keys":["k1",...]} and enforces it (an empty list refuses
  // every request). Invalid input changes nothing.
  Status ReplaceFromJson(std::string_view json);
  // Opens the set: every request is allowed, as without --api-key.
  void Open();
  // {"enforced":bool,"count":N}; never the keys themselves.
  std::string ToJson() const;

  // True when a and b are equal, in time that depends only on a.size() (a is the presented
  // token, b the secret).
  static bool ConstantTimeEqual(std::string_view a, std::string_view b);

 private:
  mutable std::mutex mu_;  // guards enforced_ and keys_
  bool enforced_ = false;
  std::vector<std::string> keys_;
};

// Turbopuffer's 401 for a refused request: {"status":"error","error":…}, application/json. The
// live service's wording is not recorded (docs/origin.md "Known differences"), so the texts say
// plainly what was wrong.
http::Response UnauthorizedResponse(ApiKeys::Verdict verdict);

}  // namespace layer::origin
