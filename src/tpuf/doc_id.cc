#include "tpuf/doc_id.h"

#include <boost/json.hpp>

#include <cassert>
#include <charconv>
#include <cstdio>

#include "common/url.h"

namespace layer::tpuf {
namespace {

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

// Parses 32 hex digits, with hyphens exactly at the canonical positions when `hyphenated`.
bool ParseUuidHex(std::string_view s, bool hyphenated, std::string* out) {
  if (s.size() != (hyphenated ? 36u : 32u)) return false;
  std::string bytes;
  bytes.reserve(16);
  int high = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (hyphenated && (i == 8 || i == 13 || i == 18 || i == 23)) {
      if (s[i] != '-') return false;
      continue;
    }
    int v = HexDigitValue(s[i]);
    if (v < 0) return false;
    if (high < 0) {
      high = v;
    } else {
      bytes.push_back(static_cast<char>((high << 4) | v));
      high = -1;
    }
  }
  *out = std::move(bytes);
  return true;
}

std::string UuidText(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    auto b = static_cast<unsigned char>(bytes[i]);
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

// JSON string literal; UTF-8 passes through, control characters are escaped.
std::string JsonQuote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned char>(c));
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace

DocId DocId::U64(uint64_t v) {
  DocId id;
  id.type = IdType::kU64;
  id.bytes.resize(8);
  for (int i = 7; i >= 0; --i) {
    id.bytes[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return id;
}

DocId DocId::String(std::string_view s) {
  DocId id;
  id.type = IdType::kString;
  id.bytes.assign(s);
  return id;
}

Result<DocId> DocId::Uuid(std::string_view text) {
  std::string_view s = text;
  bool ok = false;
  std::string bytes;
  if (StartsWithNoCase(s, "urn:uuid:")) {
    ok = ParseUuidHex(s.substr(9), /*hyphenated=*/true, &bytes);
  } else if (s.size() >= 2 && s.front() == '{' && s.back() == '}') {
    ok = ParseUuidHex(s.substr(1, s.size() - 2), /*hyphenated=*/true, &bytes);
  } else if (s.size() == 36) {
    ok = ParseUuidHex(s, /*hyphenated=*/true, &bytes);
  } else if (s.size() == 32) {
    ok = ParseUuidHex(s, /*hyphenated=*/false, &bytes);
  }
  if (!ok) return Status::InvalidArgument("invalid UUID: '" + std::string(text) + "'");
  DocId id;
  id.type = IdType::kUuid;
  id.bytes = std::move(bytes);
  return id;
}

uint64_t DocId::as_u64() const {
  assert(type == IdType::kU64 && bytes.size() == 8);
  uint64_t v = 0;
  for (char c : bytes) v = (v << 8) | static_cast<unsigned char>(c);
  return v;
}

std::string DocId::ToJson() const {
  switch (type) {
    case IdType::kU64:
      return std::to_string(as_u64());
    case IdType::kUuid:
      return "\"" + UuidText(bytes) + "\"";
    case IdType::kString:
      return JsonQuote(bytes);
  }
  return JsonQuote(bytes);
}

std::string DocId::ToText() const {
  switch (type) {
    case IdType::kU64:
      return std::to_string(as_u64());
    case IdType::kUuid:
      return UuidText(bytes);
    case IdType::kString:
      return bytes;
  }
  return bytes;
}

std::optional<DocId> ParseIdText(std::string_view text, IdType type) {
  switch (type) {
    case IdType::kU64: {
      uint64_t v = 0;
      auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (ec != std::errc() || p != text.data() + text.size() || text.empty()) return std::nullopt;
      return DocId::U64(v);
    }
    case IdType::kUuid: {
      auto id = DocId::Uuid(text);
      if (!id.ok()) return std::nullopt;
      return std::move(*id);
    }
    case IdType::kString:
      return DocId::String(text);
  }
  return std::nullopt;
}

std::optional<DocId> ParseIdJson(const boost::json::value& v, IdType type) {
  if (v.is_string()) return ParseIdText(v.as_string(), type);
  if (type == IdType::kU64) return TypeWrittenId(v, type);
  return std::nullopt;
}

std::optional<DocId> TypeWrittenId(const boost::json::value& v, StringIdType string_ids) {
  if (v.is_uint64()) return DocId::U64(v.as_uint64());
  if (v.is_int64() && v.as_int64() >= 0) return DocId::U64(static_cast<uint64_t>(v.as_int64()));
  if (!v.is_string()) return std::nullopt;
  return TypeWrittenIdString(v.as_string(), string_ids);
}

std::optional<DocId> TypeWrittenIdString(std::string_view s, StringIdType string_ids) {
  if (string_ids == IdType::kUuid) {
    auto id = DocId::Uuid(s);
    if (!id.ok()) return std::nullopt;
    return std::move(*id);
  }
  if (string_ids == IdType::kString || !DocId::Uuid(s).ok()) return DocId::String(s);
  return std::nullopt;
}

IdType IdTypeFromSchema(std::string_view schema_body) {
  boost::system::error_code ec;
  boost::json::value schema = boost::json::parse(schema_body, ec);
  if (ec) return IdType::kU64;
  return IdTypeOfSchema(schema);
}

IdType IdTypeOfSchema(const boost::json::value& schema) {
  std::string_view type = "uint";  // Turbopuffer's default id type
  if (schema.is_object()) {
    if (const auto* id = schema.as_object().if_contains("id")) {
      if (id->is_string()) type = id->as_string();
      if (id->is_object()) {
        if (const auto* t = id->as_object().if_contains("type"); t && t->is_string()) {
          type = t->as_string();
        }
      }
    }
  }
  return type == "uuid" ? IdType::kUuid : type == "string" ? IdType::kString : IdType::kU64;
}

}  // namespace layer::tpuf
