// Snapshot policies (docs/design.md §7.5): which facet fields of a namespace the automatic
// writer histograms, how often at most, and how long snapshots are kept.
//
// Wire and stored form (camelCase, as Turbopuffer index specs):
//   {"facetFields":["color","size"],"interval":"5m","retention":"never"}
// `facetFields` (default []: no automatic snapshots) are non-empty, distinct attribute names
// (sorted in the normalised form); `interval` (default "5m") is any positive duration
// ("1s", "5m", "1h"); `retention` (default "never") is "never" or a positive duration ("30d").
// Stored at "[tenants/{tag}/]snapshot-policies/{ns}.json" in the object store.
//
// Pure computation; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace layer::snapshots {

struct SnapshotPolicy {
  std::vector<std::string> facet_fields;  // sorted, distinct
  std::string interval = "5m";
  int64_t interval_ms = 300000;
  std::string retention = "never";
  std::optional<int64_t> retention_ms;  // nullopt: never pruned

  friend bool operator==(const SnapshotPolicy&, const SnapshotPolicy&) = default;
};

// Parses and validates a policy body. InvalidArgument, with a message fit for a 422, for anything
// but the shape above (unknown members included).
Result<SnapshotPolicy> ParseSnapshotPolicy(std::string_view json);
// The normalised policy as compact JSON.
std::string SerializeSnapshotPolicy(const SnapshotPolicy& policy);

// "[tenants/{tag}/]snapshot-policies/{ns}.json" of a partition (common/tenant.h).
std::string PolicyKey(std::string_view partition);
// The listing prefixes under which policies of every tenant live.
inline constexpr std::string_view kPolicyDir = "snapshot-policies/";
inline constexpr std::string_view kTenantsDir = "tenants/";
// The partition a policy key belongs to; nullopt for a key not of the scheme.
std::optional<std::string> PolicyPartition(std::string_view key);

}  // namespace layer::snapshots
