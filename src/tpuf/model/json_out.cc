#include "tpuf/model/json_out.h"

namespace layer::tpuf::model {

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

}  // namespace layer::tpuf::model
