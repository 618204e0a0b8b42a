// The document model shared by storage, writes and queries.
//
// Stored attribute values are normalised JSON: nulls are never stored (null == absent), dense
// vectors are arrays of f32-exact doubles, datetimes are int64 epoch milliseconds, uuids are
// canonical lower-case hyphenated strings (tpuf/canonical.h). The schema says how to print them
// back.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "tpuf/canonical.h"

namespace layer::tpuf::model {

namespace json = boost::json;

enum class IdType { kUnset, kUint, kString, kUuid };

std::string_view IdTypeName(IdType t);  // "uint", "string", "uuid" ("" for kUnset)

// uint ids are numbers; string and uuid ids are strings (uuids canonical). Within a namespace all
// ids have one type, so variant ordering (numeric / byte-wise) is the live id order.
using DocId = std::variant<uint64_t, std::string>;

struct Document {
  json::object attrs;  // never holds "id" or null values
};

// Serde-level id parse ("untagged enum Id"): a non-negative integer or a string. False otherwise.
bool ParseRawId(const json::value& v, DocId* out);

// Converts a raw id to the namespace's id type. On failure returns the live 400 message (without
// the 💔 prefix), e.g. "namespace ID type is uuid, but a written ID could not be parsed as uuid".
std::optional<std::string> ConformId(IdType ns_type, DocId* id);

json::value IdToJson(const DocId& id);
std::string IdToDisplay(const DocId& id);

// Total order over stored values: null < bool < numbers (compared numerically) < strings
// (byte-wise) < arrays (lexicographic) < objects. Returns <0, 0, >0.
int CompareValues(const json::value& a, const json::value& b);
bool IsNumber(const json::value& v);
double NumberAsDouble(const json::value& v);

}  // namespace layer::tpuf::model
