// The canonical form of attribute values: how Turbopuffer normalises what is written and prints
// what it returns. A datetime is kept as epoch milliseconds and returned as RFC 3339 UTC with nine
// fractional digits; a uuid is returned lower-case and hyphenated; an int written as an integral
// float is an int, an integer written to a float attribute is a float; an f32 vector holds f32
// values. The local origin stores and answers values this way, and the gateway uses the same
// functions to cache the bytes Turbopuffer returns (docs/design.md §4.2.8).
//
// Pure functions, thread-safe.
#pragma once

#include <boost/json/fwd.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace layer::tpuf {

// Accepts hyphenated, simple (32 hex), {braced} and urn:uuid: forms, any case; returns the
// lower-case hyphenated form.
std::optional<std::string> CanonicalUuid(std::string_view text);

// ISO-8601 date or date-time (optional fraction and zone) -> epoch milliseconds (UTC). Digits
// below the millisecond are dropped.
std::optional<int64_t> ParseDatetime(std::string_view text);
// RFC 3339 UTC with nine fractional digits ("2026-05-30T00:00:00.000000000Z").
std::string FormatDatetime(int64_t epoch_ms);
// "2026-05-30T00:00:00Z" (second precision), used for namespace timestamps.
std::string FormatTimestamp(int64_t epoch_ms);

// The form Turbopuffer returns a datetime written as `text` in: FormatDatetime of its instant.
// nullopt when `text` is no datetime (ParseDatetime's forms, a real calendar day, years 0000 to
// 9999), or when the instant it names is not certain: non-zero digits below the millisecond
// (Turbopuffer keeps milliseconds; whether it rounds or truncates is not pinned) or a leap second.
std::optional<std::string> CanonicalDatetime(std::string_view text);

// ---- Attribute types and the form of values (docs/design.md §4.2.8) ----

// An attribute's type as a namespace schema names it, reduced to what decides the form in which
// Turbopuffer returns a value.
struct AttributeType {
  enum class Kind : uint8_t {
    kString,
    kInt,
    kUint,
    kFloat,
    kBool,
    kDatetime,
    kUuid,
    kVectorF32,  // "[N]f32", a dense vector
    kOther,      // any other type ("[N]f16", "[N]i8", "{}f16", "[][N]f32", one not known here)
  };
  Kind kind = Kind::kOther;
  bool array = false;  // "[]T" of a scalar T
  uint32_t dims = 0;   // kVectorF32 only

  friend bool operator==(const AttributeType&, const AttributeType&) = default;
};

// Parses a type name ("datetime", "[]uuid", "[768]f32", ...); kOther for what is not understood.
AttributeType ParseAttributeType(std::string_view name);

// The attribute types of a namespace, by attribute name (never "id").
using AttributeTypes = std::map<std::string, AttributeType, std::less<>>;

// The attribute types a schema map declares: the body of GET /v1/namespaces/{ns}/schema, or a
// write's `schema` field. An entry is a type name or an object with a "type"; "id", and entries
// without a type, are left out. Anything but an object declares nothing.
AttributeTypes AttributeTypesOfSchema(const boost::json::value& schema);

enum class ValueForm : uint8_t {
  kCanonical,  // the value is already in the form Turbopuffer returns
  kRewritten,  // *out was set to the form Turbopuffer returns
  kUnknown,    // that form cannot be known here: the type does not take the value as it is
               // known to (Turbopuffer would refuse it, or convert it in a way not pinned), or
               // the type itself is kOther
};

// The form in which Turbopuffer returns `value` (not null) written to an attribute of `type`:
// - string, bool, uint: as written (uint: a non-negative integer);
// - int: integers as written; an integral float within i64 becomes that integer (1.0 -> 1, 1e3
//   -> 1000, -0.0 -> 0);
// - float: floats as written; an integer becomes a float (1 -> 1.0);
// - datetime: a string as CanonicalDatetime; an integer is kUnknown (not pinned);
// - uuid: CanonicalUuid;
// - []T: each element as T; an empty array as written;
// - [N]f32: N numbers, or base64 of N little-endian f32, become N f32 values (printed in shortest
//   f32 form);
// - kOther: kUnknown.
// Only values that need rewriting allocate.
ValueForm CanonicalValue(const AttributeType& type, const boost::json::value& value,
                         boost::json::value* out);

// Whether Turbopuffer returns `value` as written whatever the type of its attribute (one that
// takes it at all), so that no type is needed: a bool, an empty array.
bool FormIndependentOfType(const boost::json::value& value);

}  // namespace layer::tpuf
