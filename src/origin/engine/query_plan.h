// Internal to the query engine: the parsed form of one query and the parse/execute steps shared
// by query.cc (single, multi, explain, recall). Not part of the engine's public surface.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "origin/engine/model.h"
#include "origin/engine/namespace_state.h"
#include "origin/engine/query.h"

namespace layer::origin {

inline constexpr int64_t kMaxTopK = 10000;
inline constexpr size_t kMaxSubQueries = 16;
inline constexpr int64_t kDefaultGroupLimit = 10;
inline constexpr uint64_t kMinBilledBytes = 256000000;

using DocRef = std::pair<const DocId*, const Document*>;

// ---- Rank expressions ---------------------------------------------------------------------

struct RankExpr {
  enum class Kind { kBm25, kSum, kMax, kProduct, kFilter, kSparse, kAttribute, kSaturate, kDecay };
  Kind kind = Kind::kBm25;
  std::string attr;
  std::vector<std::string> tokens;
  bool last_as_prefix = false;
  std::vector<RankExpr> children;
  double weight = 1;
  double midpoint = 1, exponent = 1;  // Saturate / Decay
  Filter filter;
  json::object sparse_query;
  std::vector<double> scores;  // kBm25: per document index, filled before evaluation
};

struct OrderKey {
  std::string attr;
  bool desc = false;
};

struct Query {
  enum class Rank { kNone, kAttributes, kVector, kScore };
  Rank rank = Rank::kNone;
  std::vector<OrderKey> order;
  std::string vector_attr;
  std::vector<float> query_vector;
  bool knn = false;
  RankExpr score;

  std::optional<Filter> filter;
  int64_t limit = 0;
  bool has_limit = false;
  std::vector<std::string> per_attrs;
  int64_t per_limit = 0;

  enum class Projection { kIdOnly, kAll, kList, kExclude };
  Projection projection = Projection::kIdOnly;
  std::vector<std::string> attrs;  // include list or exclude list
  bool base64 = false;

  bool aggregate = false;
  std::string agg_label;
  std::string agg_fn;    // "Count" or "Sum"
  std::string agg_attr;  // Sum attribute
  struct GroupKey {
    std::string out_name;
    std::string attr;
    bool for_each_unique = false;
  };
  std::vector<GroupKey> group_by;
};

// Validates an optional "consistency" field (queries and multi-query roots).
ApiStatus ValidateConsistency(const json::object& body);

// Parses a query body with the live 400/422 answers.
ApiStatus ParseQuery(const json::value& body, const Schema& schema, const QueryEnv& env, Query* q);

// Executes a parsed query; appends the result object ({"rows"|"aggregations"|
// "aggregation_groups", "billing", "performance"}) to `out` as JSON text, in SerializeJson's
// format. BM25 scores are computed into `q`, hence non-const.
void ExecuteQuery(Query& q, const NamespaceState& state, std::string* out);

json::object QueryBilling(uint64_t returned);
json::object QueryPerformance(const NamespaceState& state, size_t scanned);

}  // namespace layer::origin
