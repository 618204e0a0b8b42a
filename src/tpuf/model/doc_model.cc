#include "tpuf/model/doc_model.h"

#include <cctype>
#include <cstdio>
#include <ctime>

namespace layer::tpuf::model {

std::string_view IdTypeName(IdType t) {
  switch (t) {
    case IdType::kUint:
      return "uint";
    case IdType::kString:
      return "string";
    case IdType::kUuid:
      return "uuid";
    case IdType::kUnset:
      break;
  }
  return "";
}

bool ParseRawId(const json::value& v, DocId* out) {
  if (v.is_uint64()) {
    *out = v.get_uint64();
    return true;
  }
  if (v.is_int64()) {
    if (v.get_int64() < 0) return false;
    *out = static_cast<uint64_t>(v.get_int64());
    return true;
  }
  if (v.is_string()) {
    *out = std::string(v.get_string());
    return true;
  }
  return false;
}

std::optional<std::string> ConformId(IdType ns_type, DocId* id) {
  bool is_uint = std::holds_alternative<uint64_t>(*id);
  switch (ns_type) {
    case IdType::kUnset:
      return std::nullopt;
    case IdType::kUint:
      if (is_uint) return std::nullopt;
      return "namespace ID type is uint, but you sent string; you are not allowed to mix ID types "
             "in the same namespace";
    case IdType::kString:
      if (!is_uint) return std::nullopt;
      return "namespace ID type is string, but you sent uint; you are not allowed to mix ID types "
             "in the same namespace";
    case IdType::kUuid: {
      if (is_uint) {
        return "namespace ID type is uuid, but you sent uint; you are not allowed to mix ID types "
               "in the same namespace";
      }
      auto canon = tpuf::CanonicalUuid(std::get<std::string>(*id));
      if (!canon) return "namespace ID type is uuid, but a written ID could not be parsed as uuid";
      *id = *canon;
      return std::nullopt;
    }
  }
  return std::nullopt;
}

json::value IdToJson(const DocId& id) {
  if (const auto* u = std::get_if<uint64_t>(&id)) return json::value(*u);
  return json::value(std::get<std::string>(id));
}

std::string IdToDisplay(const DocId& id) {
  if (const auto* u = std::get_if<uint64_t>(&id)) return std::to_string(*u);
  return std::get<std::string>(id);
}

namespace {

int KindRank(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return 0;
    case json::kind::bool_:
      return 1;
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return 2;
    case json::kind::string:
      return 3;
    case json::kind::array:
      return 4;
    case json::kind::object:
      return 5;
  }
  return 6;
}

}  // namespace


bool IsNumber(const json::value& v) { return v.is_int64() || v.is_uint64() || v.is_double(); }

double NumberAsDouble(const json::value& v) {
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  if (v.is_double()) return v.get_double();
  return 0;
}

int CompareValues(const json::value& a, const json::value& b) {
  int ra = KindRank(a), rb = KindRank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  switch (a.kind()) {
    case json::kind::null:
      return 0;
    case json::kind::bool_:
      return static_cast<int>(a.get_bool()) - static_cast<int>(b.get_bool());
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_: {
      // Exact integer comparison where both are integers.
      if (!a.is_double() && !b.is_double()) {
        bool an = a.is_int64() && a.get_int64() < 0, bn = b.is_int64() && b.get_int64() < 0;
        if (an != bn) return an ? -1 : 1;
        if (an) {
          int64_t x = a.get_int64(), y = b.get_int64();
          return x < y ? -1 : (x > y ? 1 : 0);
        }
        uint64_t x = a.is_int64() ? static_cast<uint64_t>(a.get_int64()) : a.get_uint64();
        uint64_t y = b.is_int64() ? static_cast<uint64_t>(b.get_int64()) : b.get_uint64();
        return x < y ? -1 : (x > y ? 1 : 0);
      }
      double x = NumberAsDouble(a), y = NumberAsDouble(b);
      return x < y ? -1 : (x > y ? 1 : 0);
    }
    case json::kind::string: {
      int c = a.get_string().subview().compare(b.get_string().subview());
      return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    case json::kind::array: {
      const auto& x = a.get_array();
      const auto& y = b.get_array();
      for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
        int c = CompareValues(x[i], y[i]);
        if (c != 0) return c;
      }
      return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
    }
    case json::kind::object:
      return 0;
  }
  return 0;
}

}  // namespace layer::tpuf::model
