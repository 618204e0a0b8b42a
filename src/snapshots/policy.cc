#include "snapshots/policy.h"

#include <boost/json.hpp>

#include <algorithm>

#include "common/config.h"
#include "common/json_text.h"
#include "common/namespace_name.h"
#include "common/tenant.h"
#include "snapshots/snapshot.h"

namespace layer::snapshots {

namespace json = boost::json;

namespace {

constexpr size_t kMaxFacetFields = 64;

Status Invalid(std::string message) { return Status::InvalidArgument(std::move(message)); }

// A positive duration; `name` for the message.
Result<int64_t> PositiveDuration(const json::value& v, std::string_view name) {
  if (!v.is_string()) return Invalid(std::string(name) + " must be a duration string such as \"5m\"");
  auto ms = ParseDurationMs(v.as_string());
  if (!ms.ok() || *ms <= 0) {
    return Invalid(std::string(name) + " must be a positive duration such as \"1s\", \"5m\" or " +
                   "\"30d\" (got \"" + std::string(v.as_string()) + "\")");
  }
  return *ms;
}

}  // namespace

Result<SnapshotPolicy> ParseSnapshotPolicy(std::string_view text) {
  boost::system::error_code ec;
  json::value root = json::parse(text, ec);
  if (ec || !root.is_object()) return Invalid("the snapshot policy must be a JSON object");
  SnapshotPolicy p;
  for (const auto& [key, v] : root.as_object()) {
    if (key == "facetFields") {
      if (!v.is_array()) return Invalid("facetFields must be an array of attribute names");
      for (const auto& f : v.as_array()) {
        if (!f.is_string() || f.as_string().empty()) {
          return Invalid("facetFields must hold non-empty attribute names");
        }
        std::string_view name = f.as_string();
        if (name.find_first_not_of(" \t") == std::string_view::npos) {
          return Invalid("facetFields must hold non-empty attribute names");
        }
        if (name == "id" || name == "vector" || name.starts_with("_hevlayer_")) {
          return Invalid("facetFields may not name \"" + std::string(name) + "\"");
        }
        p.facet_fields.emplace_back(name);
      }
      if (p.facet_fields.size() > kMaxFacetFields) {
        return Invalid("facetFields may hold at most " + std::to_string(kMaxFacetFields) +
                       " names");
      }
    } else if (key == "interval") {
      auto ms = PositiveDuration(v, "interval");
      if (!ms.ok()) return ms.status();
      p.interval = std::string(v.as_string());
      p.interval_ms = *ms;
    } else if (key == "retention") {
      if (v.is_string() && v.as_string() == "never") {
        p.retention = "never";
        p.retention_ms.reset();
        continue;
      }
      auto ms = PositiveDuration(v, "retention");
      if (!ms.ok()) return Invalid("retention must be \"never\" or a positive duration such as \"30d\"");
      p.retention = std::string(v.as_string());
      p.retention_ms = *ms;
    } else {
      return Invalid("unknown snapshot policy member \"" + std::string(key) +
                     "\" (expected facetFields, interval, retention)");
    }
  }
  std::sort(p.facet_fields.begin(), p.facet_fields.end());
  p.facet_fields.erase(std::unique(p.facet_fields.begin(), p.facet_fields.end()),
                       p.facet_fields.end());
  return p;
}

std::string SerializeSnapshotPolicy(const SnapshotPolicy& p) {
  json::array fields;
  for (const auto& f : p.facet_fields) fields.emplace_back(f);
  json::object o;
  o["facetFields"] = std::move(fields);
  o["interval"] = p.interval;
  o["retention"] = p.retention;
  return SerializeJson(o);
}

std::string PolicyKey(std::string_view partition) {
  return PartitionObjectPrefix(partition) + std::string(kPolicyDir) +
         std::string(PartitionNamespace(partition)) + ".json";
}

std::optional<std::string> PolicyPartition(std::string_view key) {
  std::string_view tag;
  if (key.starts_with(kTenantsDir)) {
    std::string_view rest = key.substr(kTenantsDir.size());
    size_t slash = rest.find('/');
    if (slash == std::string_view::npos || slash == 0) return std::nullopt;
    tag = rest.substr(0, slash);
    key = rest.substr(slash + 1);
  }
  constexpr std::string_view kTail = ".json";
  if (!key.starts_with(kPolicyDir) || !key.ends_with(kTail)) return std::nullopt;
  std::string_view ns = key.substr(kPolicyDir.size(), key.size() - kPolicyDir.size() - kTail.size());
  if (CheckNamespaceName(ns) != NamespaceNameError::kNone) return std::nullopt;
  return PartitionName(ns, tag);
}

}  // namespace layer::snapshots
