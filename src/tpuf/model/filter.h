// Filters: parsing Turbopuffer's filter grammar against a namespace schema, and evaluating it on
// documents (as the live service does: Eq null = missing, Lt/Lte match missing, In on arrays = any).
//
// A parsed Filter owns canonicalised operands (uuids, datetimes, ids) and may reference the
// incoming document through {"$ref_new": attr} (conditional writes). Thread-compatible.
#pragma once

#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "tpuf/model/api_error.h"
#include "tpuf/model/doc_model.h"
#include "tpuf/model/schema.h"

namespace layer::tpuf::model {

enum class FilterOp {
  kEq,
  kNotEq,
  kIn,
  kNotIn,
  kContains,
  kNotContains,
  kContainsAny,
  kNotContainsAny,
  kLt,
  kLte,
  kGt,
  kGte,
  kAnyLt,
  kAnyLte,
  kAnyGt,
  kAnyGte,
  kGlob,
  kNotGlob,
  kIGlob,
  kNotIGlob,
  kRegex,
  kContainsAllTokens,
  kContainsAnyToken,
  kContainsTokenSequence,
  kFuzzy,
};

struct Filter {
  enum class Kind { kAnd, kOr, kNot, kLeaf };
  Kind kind = Kind::kLeaf;
  std::vector<Filter> children;  // And/Or operands; Not has exactly one

  std::string attr;
  FilterOp op = FilterOp::kEq;
  json::value operand;                      // canonicalised; null for `null` operands
  std::string ref_new_attr;                 // set when the operand is {"$ref_new": attr}
  std::optional<FtsConfig> fts;             // token operators
  std::vector<std::string> tokens;          // token operators: the tokenised operand
  bool last_as_prefix = false;              // token operators: last token matches as a prefix
  std::shared_ptr<const std::regex> regex;  // kRegex
  int fuzzy_distance = 1;
  bool fuzzy_case_sensitive = false;
};

struct FilterContext {
  const Schema* schema = nullptr;
  std::string field = "filters";  // JSON path used in 422 messages
};

// Parses `v`; errors are the live 422 (shape) or 400 (type mismatch) answers.
ApiStatus ParseFilter(const json::value& v, const FilterContext& ctx, Filter* out);

// The document value of `attr` ("id" gives the id), or null when absent.
json::value AttrValue(const DocId& id, const Document& doc, std::string_view attr);

// Evaluates on a document. `ref_new` (may be null) supplies $ref_new operands; absent → null.
bool EvalFilter(const Filter& f, const DocId& id, const Document& doc, const Document* ref_new,
                const DocId* ref_new_id);

bool GlobMatch(std::string_view pattern, std::string_view text, bool case_insensitive);

}  // namespace layer::tpuf::model
