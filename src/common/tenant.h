// Tenants and cache partitions (docs/design.md §9.7).
//
// A tenant is one upstream credential's view of Turbopuffer. When the gateway forwards its
// callers' own keys (derive mode with no upstream key), each key is its own tenant, named by its
// tag (TenantTag in http/credentials.h: a hash, never the key); in every other mode there is one
// tenant, whose tag is empty.
//
// Everything Layer keeps about a namespace (cached documents, namespace records, id types, jobs,
// watermarks, snapshots) is kept per partition: the namespace as one tenant sees it. Its name is
// the namespace's own for the one tenant, and "<namespace>@<tag>" otherwise. '@' never occurs in a
// Turbopuffer namespace name, so no partition of one tenant is ever a namespace or partition of
// another. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace layer {

inline constexpr char kPartitionSeparator = '@';

// The partition of namespace `ns` for tenant `tag` ("" = the one tenant).
std::string PartitionName(std::string_view ns, std::string_view tag);

// The namespace and tenant tag of a partition name (views into `partition`).
struct PartitionParts {
  std::string_view ns;
  std::string_view tag;
};
PartitionParts SplitPartition(std::string_view partition);

// The namespace of a partition: what the upstream calls it.
inline std::string_view PartitionNamespace(std::string_view partition) {
  return SplitPartition(partition).ns;
}

// The name of the record that lists a namespace's partitions (docs/design.md §9.7): a name that
// is neither a namespace nor a partition (a partition's tag is never empty).
std::string PartitionRegistryName(std::string_view ns);

}  // namespace layer
