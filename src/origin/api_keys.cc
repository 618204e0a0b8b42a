#include "origin/api_keys.h"

#include <boost/json.hpp>

#include "common/config.h"
#include "http/bearer.h"

namespace layer::origin {

namespace json = boost::json;

ApiKeys::ApiKeys(std::vector<std::string> keys) : enforced_(true), keys_(std::move(keys)) {}

bool ApiKeys::ConstantTimeEqual(std::string_view a, std::string_view b) {
  // Walk a (the attacker's bytes) in full and index b cyclically, so neither b's content nor its
  // length changes how many steps run; the length difference enters the result, not the loop.
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  const size_t n = b.size();
  for (size_t i = 0; i < a.size(); ++i) {
    unsigned char bc = n == 0 ? 0 : static_cast<unsigned char>(b[i % n]);
    diff |= static_cast<unsigned char>(a[i]) ^ bc;
  }
  return diff == 0;
}

ApiKeys::Verdict ApiKeys::Check(std::string_view authorization) const {
  std::lock_guard lock(mu_);
  if (!enforced_) return Verdict::kAllowed;
  auto token = http::ParseBearer(authorization);
  if (!token) return Verdict::kMissing;
  bool found = false;
  for (const auto& key : keys_) found |= ConstantTimeEqual(*token, key);  // no early exit
  return found ? Verdict::kAllowed : Verdict::kUnknown;
}

Status ApiKeys::ReplaceFromJson(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  const json::object* obj = ec ? nullptr : v.if_object();
  const json::value* list = obj ? obj->if_contains("keys") : nullptr;
  if (!list || !list->is_array() || obj->size() != 1) {
    return Status::InvalidArgument(R"(the body must be {"keys":["key",...]})");
  }
  std::vector<std::string> keys;
  for (const auto& k : list->as_array()) {
    if (!k.is_string()) return Status::InvalidArgument("every key must be a string");
    std::string key(k.as_string());
    if (Status st = ValidateApiKey(key); !st.ok()) return st;
    keys.push_back(std::move(key));
  }
  std::lock_guard lock(mu_);
  enforced_ = true;
  keys_ = std::move(keys);
  return Status::Ok();
}

void ApiKeys::Open() {
  std::lock_guard lock(mu_);
  enforced_ = false;
  keys_.clear();
}

std::string ApiKeys::ToJson() const {
  std::lock_guard lock(mu_);
  return json::serialize(
      json::object{{"enforced", enforced_}, {"count", static_cast<uint64_t>(keys_.size())}});
}

http::Response UnauthorizedResponse(ApiKeys::Verdict verdict) {
  http::Response res{http::Code::unauthorized, 11};
  res.set(http::Field::content_type, "application/json");
  res.body() =
      verdict == ApiKeys::Verdict::kMissing
          ? R"({"status":"error","error":"missing API key: send Authorization: Bearer <key>"})"
          : R"({"status":"error","error":"invalid API key"})";
  return res;
}

}  // namespace layer::origin
