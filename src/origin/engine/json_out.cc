#include "origin/engine/json_out.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

namespace layer::origin {
namespace {

void AppendEscaped(std::string_view s, std::string* out) {
  out->push_back('"');
  for (char c : s) {
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      case '\b':
        *out += "\\b";
        break;
      case '\f':
        *out += "\\f";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned char>(c));
          *out += buf;
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

}  // namespace

std::string FormatDouble(double d) {
  if (!std::isfinite(d)) return "null";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), d);
  std::string s(buf, res.ptr);
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

double F32AsPrintableDouble(float f) {
  if (!std::isfinite(f)) return static_cast<double>(f);
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), f);
  *res.ptr = '\0';
  return std::strtod(buf, nullptr);
}

void AppendJson(const json::value& v, std::string* out) {
  switch (v.kind()) {
    case json::kind::null:
      *out += "null";
      break;
    case json::kind::bool_:
      *out += v.get_bool() ? "true" : "false";
      break;
    case json::kind::int64:
      *out += std::to_string(v.get_int64());
      break;
    case json::kind::uint64:
      *out += std::to_string(v.get_uint64());
      break;
    case json::kind::double_:
      *out += FormatDouble(v.get_double());
      break;
    case json::kind::string:
      AppendEscaped(v.get_string(), out);
      break;
    case json::kind::array: {
      out->push_back('[');
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out->push_back(',');
        first = false;
        AppendJson(e, out);
      }
      out->push_back(']');
      break;
    }
    case json::kind::object: {
      out->push_back('{');
      bool first = true;
      for (const auto& kv : v.get_object()) {
        if (!first) out->push_back(',');
        first = false;
        AppendEscaped(kv.key(), out);
        out->push_back(':');
        AppendJson(kv.value(), out);
      }
      out->push_back('}');
      break;
    }
  }
}

std::string SerializeJson(const json::value& v) {
  std::string out;
  AppendJson(v, &out);
  return out;
}

std::string SerdeUnexpected(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return std::string("boolean `") + (v.get_bool() ? "true" : "false") + "`";
    case json::kind::int64:
      return "integer `" + std::to_string(v.get_int64()) + "`";
    case json::kind::uint64:
      return "integer `" + std::to_string(v.get_uint64()) + "`";
    case json::kind::double_:
      return "floating point `" + FormatDouble(v.get_double()) + "`";
    case json::kind::string:
      return "string \"" + std::string(v.get_string()) + "\"";
    case json::kind::array:
      return "sequence";
    case json::kind::object:
      return "map";
  }
  return "value";
}

std::string DisplayValue(const json::value& v) {
  switch (v.kind()) {
    case json::kind::string:
      return std::string(v.get_string());
    case json::kind::array: {
      std::string out = "[";
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out += ", ";
        first = false;
        out += DisplayValue(e);
      }
      return out + "]";
    }
    default:
      return SerializeJson(v);
  }
}

}  // namespace layer::origin
