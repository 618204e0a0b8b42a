// Namespace schema: attribute types and index options, their two live JSON representations,
// schema updates, and normalisation/inference of written attribute values.
//
// Representations (as the live service answers them; docs/origin.md): GET /schema lists type, filterable and full_text_search
// for every attribute with explicit nulls and shows dense vectors as "ann": true; metadata omits
// nulls and shows "ann": {"distance_metric": ...}. Not thread-safe; the namespace lock guards it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tpuf/model/api_error.h"
#include "tpuf/model/doc_model.h"

namespace layer::tpuf::model {

struct FtsConfig {
  double k1 = 1.2;
  double b = 0.75;
  double k3 = 8.0;
  std::string language = "english";
  bool stemming = false;
  bool remove_stopwords = false;
  bool ascii_folding = false;
  bool case_sensitive = false;
  int64_t max_token_length = 39;
  std::string tokenizer = "word_v3";

  bool pre_tokenized() const { return tokenizer == "pre_tokenized_array"; }
  json::object ToJson() const;
};

// Parsed form of a type string such as "string", "[]int", "[768]f32", "{}f16".
struct TypeInfo {
  enum class Base { kString, kInt, kUint, kFloat, kBool, kDatetime, kUuid, kDenseVector, kSparse };
  Base base = Base::kString;
  bool array = false;  // "[]T"
  int64_t dims = 0;    // dense vectors only
};
std::optional<TypeInfo> ParseTypeName(std::string_view type);
// The scalar type name an element of `type` has ("string" for "[]string").
std::string ElementTypeName(std::string_view type);

struct AttrSchema {
  std::string type;
  std::optional<bool> filterable;  // nullopt prints as null (ids and dense vectors)
  std::optional<FtsConfig> fts;
  std::optional<bool> regex, glob, fuzzy;
  bool ann = false;         // dense vector with an ANN index
  bool sparse_knn = false;  // sparse vector

  bool IsDenseVector() const;
};

class Schema {
 public:
  const AttrSchema* Find(std::string_view name) const;
  AttrSchema* Find(std::string_view name);
  void Set(const std::string& name, AttrSchema attr);
  const std::vector<std::pair<std::string, AttrSchema>>& attrs() const { return attrs_; }
  bool empty() const { return attrs_.empty(); }

  IdType id_type() const;
  // Name of the first dense vector attribute, or "".
  std::string VectorAttr() const;

  json::object ToSchemaJson() const;                                      // GET /schema form
  json::object ToMetadataJson(const std::string& distance_metric) const;  // metadata form
  json::object ToStorageJson() const;
  static Schema FromStorageJson(const json::object& obj);

 private:
  std::vector<std::pair<std::string, AttrSchema>> attrs_;  // in first-seen order
};

// Parses a schema map (a write's "schema" field when `path_prefix` is "schema.", or the bare
// POST /schema body when it is ""). Errors are the live 400/422s.
ApiStatus ParseSchemaInput(const json::value& body, std::string_view path_prefix,
                           std::vector<std::pair<std::string, AttrSchema>>* out);

// Applies parsed updates; a type change is the live 🙅 400 with an "attribute" key.
ApiStatus MergeSchema(const std::vector<std::pair<std::string, AttrSchema>>& updates,
                      Schema* schema);

// Normalises a written value of attribute `name` (see doc_model.h). When `declared` is null the
// type is inferred; the inferred schema entry is returned through `inferred` (unset when the
// value cannot fix a type yet, e.g. an empty array). `value` must not be null.
ApiStatus NormalizeValue(std::string_view name, const json::value& value,
                         const AttrSchema* declared, std::optional<AttrSchema>* inferred,
                         json::value* out);

// Converts one scalar to the stored form of `base` (datetime → epoch ms, uuid → canonical);
// false on a type mismatch.
bool ConvertScalar(TypeInfo::Base base, const json::value& v, json::value* out);

// Decodes a dense vector given as a number array or a base64 little-endian f32 string.
bool DecodeVector(const json::value& v, std::vector<float>* out);

}  // namespace layer::tpuf::model
