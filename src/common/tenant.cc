#include "common/tenant.h"

namespace layer {

std::string PartitionName(std::string_view ns, std::string_view tag) {
  std::string out(ns);
  if (!tag.empty()) {
    out += kPartitionSeparator;
    out += tag;
  }
  return out;
}

PartitionParts SplitPartition(std::string_view partition) {
  size_t at = partition.rfind(kPartitionSeparator);
  if (at == std::string_view::npos) return {partition, {}};
  return {partition.substr(0, at), partition.substr(at + 1)};
}

std::string PartitionRegistryName(std::string_view ns) {
  std::string out(ns);
  out += kPartitionSeparator;
  return out;
}

}  // namespace layer
