#include "tpuf/model/schema.h"

#include <charconv>
#include <cmath>
#include <cstring>

#include "common/base64.h"
#include "tpuf/model/json_out.h"

namespace layer::tpuf::model {

json::object FtsConfig::ToJson() const {
  json::object o;
  o["k1"] = k1;
  o["b"] = b;
  o["k3"] = k3;
  o["language"] = language;
  o["stemming"] = stemming;
  o["remove_stopwords"] = remove_stopwords;
  o["ascii_folding"] = ascii_folding;
  o["case_sensitive"] = case_sensitive;
  o["max_token_length"] = max_token_length;
  o["tokenizer"] = tokenizer;
  return o;
}

std::optional<TypeInfo> ParseTypeName(std::string_view type) {
  TypeInfo info;
  if (type == "{}f16" || type == "{}f32") {
    info.base = TypeInfo::Base::kSparse;
    return info;
  }
  if (type.size() > 2 && type[0] == '[' && type[1] != ']') {
    size_t close = type.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    std::string_view num = type.substr(1, close - 1);
    std::string_view elem = type.substr(close + 1);
    int64_t dims = 0;
    auto res = std::from_chars(num.data(), num.data() + num.size(), dims);
    if (res.ec != std::errc() || res.ptr != num.data() + num.size() || dims <= 0) {
      return std::nullopt;
    }
    if (elem != "f32" && elem != "f16" && elem != "i8") return std::nullopt;
    info.base = TypeInfo::Base::kDenseVector;
    info.dims = dims;
    return info;
  }
  if (type.substr(0, 2) == "[]") {
    info.array = true;
    type.remove_prefix(2);
  }
  if (type == "string") {
    info.base = TypeInfo::Base::kString;
  } else if (type == "int") {
    info.base = TypeInfo::Base::kInt;
  } else if (type == "uint") {
    info.base = TypeInfo::Base::kUint;
  } else if (type == "float") {
    info.base = TypeInfo::Base::kFloat;
  } else if (type == "bool") {
    info.base = TypeInfo::Base::kBool;
  } else if (type == "datetime") {
    info.base = TypeInfo::Base::kDatetime;
  } else if (type == "uuid") {
    info.base = TypeInfo::Base::kUuid;
  } else {
    return std::nullopt;
  }
  return info;
}

std::string ElementTypeName(std::string_view type) {
  if (type.substr(0, 2) == "[]") type.remove_prefix(2);
  return std::string(type);
}

bool AttrSchema::IsDenseVector() const {
  auto info = ParseTypeName(type);
  return info && info->base == TypeInfo::Base::kDenseVector;
}

const AttrSchema* Schema::Find(std::string_view name) const {
  for (const auto& [n, a] : attrs_) {
    if (n == name) return &a;
  }
  return nullptr;
}

AttrSchema* Schema::Find(std::string_view name) {
  for (auto& [n, a] : attrs_) {
    if (n == name) return &a;
  }
  return nullptr;
}

void Schema::Set(const std::string& name, AttrSchema attr) {
  if (AttrSchema* existing = Find(name)) {
    *existing = std::move(attr);
    return;
  }
  if (name == "id") {
    attrs_.emplace(attrs_.begin(), name, std::move(attr));  // ids list first, as live does
    return;
  }
  attrs_.emplace_back(name, std::move(attr));
}

IdType Schema::id_type() const {
  const AttrSchema* id = Find("id");
  if (id == nullptr) return IdType::kUnset;
  if (id->type == "uint") return IdType::kUint;
  if (id->type == "uuid") return IdType::kUuid;
  if (id->type == "string") return IdType::kString;
  return IdType::kUnset;
}

std::string Schema::VectorAttr() const {
  for (const auto& [n, a] : attrs_) {
    if (a.IsDenseVector()) return n;
  }
  return "";
}

namespace {

void PutFlags(const AttrSchema& a, json::object* o) {
  if (a.regex) (*o)["regex"] = *a.regex;
  if (a.glob) (*o)["glob"] = *a.glob;
  if (a.fuzzy) (*o)["fuzzy"] = *a.fuzzy;
}

}  // namespace

json::object Schema::ToSchemaJson() const {
  json::object out;
  for (const auto& [name, a] : attrs_) {
    json::object o;
    o["type"] = a.type;
    if (a.IsDenseVector()) o["ann"] = true;
    PutFlags(a, &o);
    o["filterable"] = a.filterable ? json::value(*a.filterable) : json::value(nullptr);
    o["full_text_search"] = a.fts ? json::value(a.fts->ToJson()) : json::value(nullptr);
    out[name] = std::move(o);
  }
  return out;
}

json::object Schema::ToMetadataJson(const std::string& distance_metric) const {
  json::object out;
  for (const auto& [name, a] : attrs_) {
    json::object o;
    o["type"] = a.type;
    if (a.IsDenseVector()) {
      json::object ann;
      ann["distance_metric"] = distance_metric;
      o["ann"] = std::move(ann);
    }
    if (a.sparse_knn) {
      json::object sk;
      sk["distance_metric"] = "dot_product";
      o["sparse_knn"] = std::move(sk);
    }
    PutFlags(a, &o);
    if (a.filterable) o["filterable"] = *a.filterable;
    if (a.fts) o["full_text_search"] = a.fts->ToJson();
    out[name] = std::move(o);
  }
  return out;
}

json::object Schema::ToStorageJson() const {
  json::object out;
  for (const auto& [name, a] : attrs_) {
    json::object o;
    o["type"] = a.type;
    PutFlags(a, &o);
    o["filterable"] = a.filterable ? json::value(*a.filterable) : json::value(nullptr);
    o["full_text_search"] = a.fts ? json::value(a.fts->ToJson()) : json::value(nullptr);
    o["ann"] = a.ann;
    o["sparse_knn"] = a.sparse_knn;
    out[name] = std::move(o);
  }
  return out;
}

namespace {

FtsConfig ParseFtsObject(const json::object& o) {
  FtsConfig c;
  auto num = [&](const char* k, double* out) {
    if (const auto* v = o.if_contains(k); v && IsNumber(*v)) *out = NumberAsDouble(*v);
  };
  auto flag = [&](const char* k, bool* out) {
    if (const auto* v = o.if_contains(k); v && v->is_bool()) *out = v->get_bool();
  };
  auto str = [&](const char* k, std::string* out) {
    if (const auto* v = o.if_contains(k); v && v->is_string()) *out = v->get_string();
  };
  num("k1", &c.k1);
  num("b", &c.b);
  num("k3", &c.k3);
  str("language", &c.language);
  flag("stemming", &c.stemming);
  flag("remove_stopwords", &c.remove_stopwords);
  flag("ascii_folding", &c.ascii_folding);
  flag("case_sensitive", &c.case_sensitive);
  if (const auto* v = o.if_contains("max_token_length"); v && IsNumber(*v)) {
    c.max_token_length = static_cast<int64_t>(NumberAsDouble(*v));
  }
  str("tokenizer", &c.tokenizer);
  return c;
}

std::optional<bool> OptBool(const json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || !v->is_bool()) return std::nullopt;
  return v->get_bool();
}

}  // namespace

Schema Schema::FromStorageJson(const json::object& obj) {
  Schema s;
  for (const auto& kv : obj) {
    if (!kv.value().is_object()) continue;
    const auto& o = kv.value().get_object();
    AttrSchema a;
    if (const auto* t = o.if_contains("type"); t && t->is_string()) a.type = t->get_string();
    a.filterable = OptBool(o, "filterable");
    if (const auto* f = o.if_contains("full_text_search"); f && f->is_object()) {
      a.fts = ParseFtsObject(f->get_object());
    }
    a.regex = OptBool(o, "regex");
    a.glob = OptBool(o, "glob");
    a.fuzzy = OptBool(o, "fuzzy");
    a.ann = OptBool(o, "ann").value_or(false);
    a.sparse_knn = OptBool(o, "sparse_knn").value_or(false);
    s.Set(std::string(kv.key()), std::move(a));
  }
  return s;
}

namespace {

ApiError NoVariant(std::string_view prefix, std::string_view name) {
  return Unprocessable(std::string(prefix) + std::string(name) +
                       ": data did not match any variant of untagged enum AttributeSchemaInput");
}

}  // namespace

ApiStatus ParseSchemaInput(const json::value& body, std::string_view path_prefix,
                           std::vector<std::pair<std::string, AttrSchema>>* out) {
  if (!body.is_object()) {
    std::string where = path_prefix.empty()
                            ? ""
                            : std::string(path_prefix.substr(0, path_prefix.size() - 1)) + ": ";
    return Unprocessable(where + "invalid type: " + SerdeUnexpected(body) + ", expected a map");
  }
  for (const auto& kv : body.get_object()) {
    std::string name(kv.key());
    const json::value& v = kv.value();
    AttrSchema a;
    if (v.is_string()) {
      a.type = v.get_string();
    } else if (v.is_object()) {
      const auto& o = v.get_object();
      const auto* t = o.if_contains("type");
      if (t == nullptr || !t->is_string()) return NoVariant(path_prefix, name);
      a.type = t->get_string();
      if (const auto* f = o.if_contains("filterable")) {
        if (!f->is_bool() && !f->is_null()) return NoVariant(path_prefix, name);
        if (f->is_bool()) a.filterable = f->get_bool();
      }
      if (const auto* f = o.if_contains("full_text_search")) {
        if (f->is_bool()) {
          if (f->get_bool()) a.fts = FtsConfig{};
        } else if (f->is_object()) {
          a.fts = ParseFtsObject(f->get_object());
        } else if (!f->is_null()) {
          return NoVariant(path_prefix, name);
        }
      }
      a.regex = OptBool(o, "regex");
      a.glob = OptBool(o, "glob");
      a.fuzzy = OptBool(o, "fuzzy");
      if (const auto* ann = o.if_contains("ann")) {
        if (ann->is_bool()) {
          a.ann = ann->get_bool();
        } else if (ann->is_object()) {
          if (ann->get_object().contains("distance_metric")) {
            return BadRequest(
                "`distance_metric` must be specified as a field at the top level of the write "
                "request, not in the `ann` configuration for an attribute");
          }
          a.ann = true;
        }
      }
      if (const auto* sk = o.if_contains("sparse_knn"); sk && !sk->is_null()) a.sparse_knn = true;
    } else {
      return NoVariant(path_prefix, name);
    }
    auto info = ParseTypeName(a.type);
    if (name == "id") {
      if (a.type != "uint" && a.type != "string" && a.type != "uuid") {
        return BadRequest(a.type + " is not a valid ID type");
      }
      a.filterable.reset();
      out->emplace_back(name, std::move(a));
      continue;
    }
    if (!info) {
      return Unprocessable(std::string(path_prefix) + name + ".type: unknown variant `" + a.type +
                           "`");
    }
    if (info->base == TypeInfo::Base::kDenseVector) {
      if (!a.ann) {
        if (name == "vector") {
          return BadRequest(
              "the `vector` attribute must have `ann` set to `true`, eg: `\"vector\": { \"type\": "
              "\"[1024]f32\", \"ann\": true }`");
        }
        return BadRequest("vector attribute '" + name + "' must have ann:true");
      }
      a.filterable.reset();
    } else if (!a.filterable) {
      // Documented default: filterable unless a text index (full-text, regex, glob, fuzzy) is
      // enabled; sparse vectors are never filterable. This matches every live observation
      // (SC-02's fuzzy `title`, FTS `text`, `sparse_vector`).
      bool text_index = a.fts.has_value() || a.regex.value_or(false) || a.glob.value_or(false) ||
                        a.fuzzy.value_or(false);
      a.filterable = !text_index && info->base != TypeInfo::Base::kSparse;
    }
    if (info->base == TypeInfo::Base::kSparse) a.sparse_knn = true;
    out->emplace_back(name, std::move(a));
  }
  return {};
}

ApiStatus MergeSchema(const std::vector<std::pair<std::string, AttrSchema>>& updates,
                      Schema* schema) {
  for (const auto& [name, a] : updates) {
    if (const AttrSchema* existing = schema->Find(name); existing && existing->type != a.type) {
      ApiError e;
      e.http_status = 400;
      e.message = "🙅 invalid schema update for attribute '" + name +
                  "': cannot change attribute type from " + existing->type + " to " + a.type;
      e.attribute = name;
      return e;
    }
  }
  for (const auto& [name, a] : updates) schema->Set(name, a);
  return {};
}

bool DecodeVector(const json::value& v, std::vector<float>* out) {
  out->clear();
  if (v.is_string()) {
    auto bytes = Base64Decode(v.get_string());
    if (!bytes.ok() || bytes->size() % 4 != 0) return false;
    out->resize(bytes->size() / 4);
    // Little-endian f32; this host is little-endian (x86-64/arm64). (An empty vector's data() may
    // be null, which memcpy must not get even for 0 bytes.)
    if (!bytes->empty()) std::memcpy(out->data(), bytes->data(), bytes->size());
    return true;
  }
  if (!v.is_array()) return false;
  out->reserve(v.get_array().size());
  for (const auto& e : v.get_array()) {
    if (!IsNumber(e)) return false;
    out->push_back(static_cast<float>(NumberAsDouble(e)));
  }
  return true;
}

namespace {

ApiError ValueTypeError(std::string_view name, std::string_view type, const json::value& v) {
  return BadRequest("invalid value for attribute '" + std::string(name) + "': expected " +
                    std::string(type) + ", got " + SerdeUnexpected(v));
}

}  // namespace

bool ConvertScalar(TypeInfo::Base base, const json::value& v, json::value* out) {
  using B = TypeInfo::Base;
  switch (base) {
    case B::kString:
      if (!v.is_string()) return false;
      *out = v;
      return true;
    case B::kInt:
      if (v.is_int64()) {
        *out = v;
        return true;
      }
      if (v.is_uint64() && v.get_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
        *out = static_cast<int64_t>(v.get_uint64());
        return true;
      }
      if (v.is_double() && std::trunc(v.get_double()) == v.get_double()) {
        *out = static_cast<int64_t>(v.get_double());
        return true;
      }
      return false;
    case B::kUint:
      if (v.is_uint64()) {
        *out = v;
        return true;
      }
      if (v.is_int64() && v.get_int64() >= 0) {
        *out = static_cast<uint64_t>(v.get_int64());
        return true;
      }
      return false;
    case B::kFloat:
      if (!IsNumber(v)) return false;
      *out = NumberAsDouble(v);
      return true;
    case B::kBool:
      if (!v.is_bool()) return false;
      *out = v;
      return true;
    case B::kDatetime:
      if (v.is_string()) {
        auto ms = tpuf::ParseDatetime(v.get_string());
        if (!ms) return false;
        *out = *ms;
        return true;
      }
      if (v.is_int64() || v.is_uint64()) {
        *out = static_cast<int64_t>(NumberAsDouble(v));
        return true;
      }
      return false;
    case B::kUuid: {
      if (!v.is_string()) return false;
      auto canon = tpuf::CanonicalUuid(v.get_string());
      if (!canon) return false;
      *out = *canon;
      return true;
    }
    case B::kDenseVector:
    case B::kSparse:
      return false;
  }
  return false;
}

ApiStatus NormalizeValue(std::string_view name, const json::value& value,
                         const AttrSchema* declared, std::optional<AttrSchema>* inferred,
                         json::value* out) {
  inferred->reset();
  if (declared == nullptr) {
    AttrSchema a;
    a.filterable = true;
    if (name == "vector" && (value.is_string() || (value.is_array() && !value.get_array().empty() &&
                                                   IsNumber(value.get_array()[0])))) {
      std::vector<float> vec;
      if (!DecodeVector(value, &vec) || vec.empty()) {
        return BadRequest("invalid vector for attribute 'vector'");
      }
      a.type = "[" + std::to_string(vec.size()) + "]f32";
      a.ann = true;
      a.filterable.reset();
      json::array arr;
      arr.reserve(vec.size());
      for (float f : vec) arr.push_back(static_cast<double>(f));
      *out = std::move(arr);
      *inferred = std::move(a);
      return {};
    }
    if (value.is_string()) {
      a.type = "string";
    } else if (value.is_bool()) {
      a.type = "bool";
    } else if (value.is_int64() || value.is_uint64()) {
      a.type = "int";
    } else if (value.is_double()) {
      a.type = "float";
    } else if (value.is_array()) {
      const auto& arr = value.get_array();
      if (arr.empty()) {
        *out = value;  // type fixed by a later, non-empty value
        return {};
      }
      const auto& first = arr[0];
      if (first.is_string()) {
        a.type = "[]string";
      } else if (first.is_bool()) {
        a.type = "[]bool";
      } else if (first.is_int64() || first.is_uint64()) {
        a.type = "[]int";
        for (const auto& e : arr) {
          if (e.is_double()) a.type = "[]float";
        }
      } else if (first.is_double()) {
        a.type = "[]float";
      } else {
        return ValueTypeError(name, "a scalar or array of scalars", value);
      }
    } else {
      return BadRequest("could not infer type for attribute '" + std::string(name) +
                        "', declare it in the schema");
    }
    ApiStatus st = NormalizeValue(name, value, &a, inferred, out);
    if (!st.ok()) return st;
    *inferred = std::move(a);
    return {};
  }

  auto info = ParseTypeName(declared->type);
  if (!info) return BadRequest("unknown type for attribute '" + std::string(name) + "'");
  if (info->base == TypeInfo::Base::kDenseVector) {
    std::vector<float> vec;
    if (!DecodeVector(value, &vec)) return ValueTypeError(name, declared->type, value);
    if (static_cast<int64_t>(vec.size()) != info->dims) {
      return BadRequest("vector dimension mismatch for attribute '" + std::string(name) +
                        "': expected " + std::to_string(info->dims) + ", got " +
                        std::to_string(vec.size()));
    }
    json::array arr;
    arr.reserve(vec.size());
    for (float f : vec) arr.push_back(static_cast<double>(f));
    *out = std::move(arr);
    return {};
  }
  if (info->base == TypeInfo::Base::kSparse) {
    if (!value.is_object()) return ValueTypeError(name, declared->type, value);
    json::object o;
    for (const auto& kv : value.get_object()) {
      if (!IsNumber(kv.value())) return ValueTypeError(name, declared->type, value);
      o[kv.key()] = static_cast<double>(static_cast<float>(NumberAsDouble(kv.value())));
    }
    *out = std::move(o);
    return {};
  }
  if (info->array) {
    if (!value.is_array()) return ValueTypeError(name, declared->type, value);
    json::array arr;
    arr.reserve(value.get_array().size());
    for (const auto& e : value.get_array()) {
      json::value conv;
      if (!ConvertScalar(info->base, e, &conv)) return ValueTypeError(name, declared->type, value);
      arr.push_back(std::move(conv));
    }
    *out = std::move(arr);
    return {};
  }
  if (!ConvertScalar(info->base, value, out)) return ValueTypeError(name, declared->type, value);
  return {};
}

}  // namespace layer::tpuf::model
