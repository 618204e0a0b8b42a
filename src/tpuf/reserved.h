// Attribute names Layer reserves in Turbopuffer namespaces. Clients may not write them; readers
// through the gateway never see them unless they name them.
#pragma once

#include <string_view>

namespace layer::tpuf {

// Every reserved name starts with this prefix.
inline constexpr std::string_view kReservedPrefix = "_hevlayer_";
// The write stamp: epoch milliseconds at which the gateway accepted the write of the row.
inline constexpr std::string_view kStampAttribute = "_hevlayer_upserted_at";

inline bool IsReservedAttribute(std::string_view name) { return name.starts_with(kReservedPrefix); }

}  // namespace layer::tpuf
