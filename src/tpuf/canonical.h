// The canonical form of attribute values: how Turbopuffer normalises what is written and prints
// what it returns. A datetime is kept as epoch milliseconds and returned as RFC 3339 UTC with nine
// fractional digits; a uuid is returned lower-case and hyphenated. The local origin stores and
// answers values this way, and the gateway uses the same functions to produce the bytes
// Turbopuffer returns (docs/design.md §4.8).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace layer::tpuf {

// Accepts hyphenated, simple (32 hex), {braced} and urn:uuid: forms, any case; returns the
// lower-case hyphenated form.
std::optional<std::string> CanonicalUuid(std::string_view text);

// ISO-8601 date or date-time (optional fraction and zone) -> epoch milliseconds (UTC).
std::optional<int64_t> ParseDatetime(std::string_view text);
// RFC 3339 UTC with nine fractional digits ("2026-05-30T00:00:00.000000000Z").
std::string FormatDatetime(int64_t epoch_ms);
// "2026-05-30T00:00:00Z" (second precision), used for namespace timestamps.
std::string FormatTimestamp(int64_t epoch_ms);

}  // namespace layer::tpuf
