// Turbopuffer document ids: the three id types (u64, UUID, string), their canonical bytes, and the
// codecs between them and the forms ids take on the wire (URL segments, JSON values, schema
// bodies). The cache keys records by DocId, so u64 7, the string "7" and a UUID never collide.
#pragma once

#include <boost/json/fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace layer::tpuf {

enum class IdType : uint8_t { kU64 = 1, kUuid = 2, kString = 3 };

// A typed document id in canonical form: u64 as 8 big-endian bytes, UUID as 16 bytes, string as
// its UTF-8 bytes.
struct DocId {
  IdType type = IdType::kString;
  std::string bytes;

  static DocId U64(uint64_t v);
  static DocId String(std::string_view s);
  // Accepts the four textual UUID forms Turbopuffer accepts (hyphenated or not, any case,
  // optionally braced); InvalidArgument otherwise.
  static Result<DocId> Uuid(std::string_view text);

  uint64_t as_u64() const;  // type must be kU64
  // The id as Turbopuffer returns it in JSON: a number for u64, a string otherwise (UUIDs in
  // lower-case hyphenated form).
  std::string ToJson() const;
  // The id as plain text (u64 in decimal, UUID hyphenated lower-case, string as is).
  std::string ToText() const;

  friend bool operator==(const DocId&, const DocId&) = default;
};

// An id given as text (a URL segment) in a namespace whose ids are of `type`: u64 in decimal,
// a UUID in any accepted form, any string. nullopt when no id of that type has this text.
std::optional<DocId> ParseIdText(std::string_view text, IdType type);
// An id given as a JSON value (a fetch request) in a namespace whose ids are of `type`: numbers
// and decimal strings for u64, strings otherwise. nullopt when no id of that type is meant.
std::optional<DocId> ParseIdJson(const boost::json::value& v, IdType type);

// How string ids of a namespace are typed: kUuid, kString, or unknown (nullopt).
using StringIdType = std::optional<IdType>;

// Types an id as a write names it: a non-negative integer is a u64; a string is a UUID or a
// string as `string_ids` says. A string that looks like a UUID in a namespace whose string id
// type is unknown cannot be typed (nullopt), nor can any other JSON value.
std::optional<DocId> TypeWrittenId(const boost::json::value& id, StringIdType string_ids);
// The same for an id that is a JSON string (`s` unescaped).
std::optional<DocId> TypeWrittenIdString(std::string_view s, StringIdType string_ids);

// The id type a schema body (GET /v1/namespaces/{ns}/schema) declares; u64 when it says none
// (Turbopuffer's default).
IdType IdTypeFromSchema(std::string_view schema_body);
// The same for a parsed schema body.
IdType IdTypeOfSchema(const boost::json::value& schema);

}  // namespace layer::tpuf
