#include "origin/engine/query.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include "common/base64.h"
#include "origin/engine/filter.h"
#include "origin/engine/json_out.h"
#include "origin/engine/text.h"

namespace layer::origin {
namespace {

constexpr int64_t kMaxTopK = 10000;
constexpr size_t kMaxSubQueries = 16;
constexpr int64_t kDefaultGroupLimit = 10;
constexpr uint64_t kMinBilledBytes = 256000000;

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

ApiError RankShape() {
  return Unprocessable("data did not match any variant of enum a valid variant of RankInput");
}

bool IsFilterHead(const json::value& v) {
  if (!v.is_array() || v.get_array().empty() || !v.get_array()[0].is_string()) return false;
  std::string_view head = v.get_array()[0].get_string();
  if (head == "And" || head == "Or" || head == "Not") return true;
  return v.get_array().size() >= 3 && v.get_array()[1].is_string() &&
         v.get_array()[1].get_string() != "BM25" && v.get_array()[1].get_string() != "SparseKNN";
}

ApiStatus ParseRankExpr(const json::value& v, const Schema& schema, RankExpr* out) {
  if (!v.is_array() || v.get_array().empty()) return RankShape();
  const auto& arr = v.get_array();
  if (arr[0].is_string()) {
    std::string_view head = arr[0].get_string();
    if ((head == "Sum" || head == "Max") && arr.size() == 2 && arr[1].is_array()) {
      out->kind = head == "Sum" ? RankExpr::Kind::kSum : RankExpr::Kind::kMax;
      for (const auto& c : arr[1].get_array()) {
        RankExpr child;
        ORIGIN_RETURN_IF_ERROR(ParseRankExpr(c, schema, &child));
        out->children.push_back(std::move(child));
      }
      return {};
    }
    if (head == "Product") {
      const json::value* weight = nullptr;
      const json::value* expr = nullptr;
      if (arr.size() == 3) {
        if (IsNumber(arr[1])) {
          weight = &arr[1];
          expr = &arr[2];
        } else if (IsNumber(arr[2])) {
          weight = &arr[2];
          expr = &arr[1];
        }
      } else if (arr.size() == 2 && arr[1].is_array() && arr[1].get_array().size() == 2) {
        const auto& inner = arr[1].get_array();
        if (IsNumber(inner[0])) {
          weight = &inner[0];
          expr = &inner[1];
        }
      }
      if (weight == nullptr) return RankShape();
      out->kind = RankExpr::Kind::kProduct;
      out->weight = NumberAsDouble(*weight);
      if (out->weight < 0) return BadRequest("Product weight must be non-negative");
      RankExpr child;
      ORIGIN_RETURN_IF_ERROR(ParseRankExpr(*expr, schema, &child));
      out->children.push_back(std::move(child));
      return {};
    }
    if (head == "Attribute" && arr.size() == 2 && arr[1].is_string()) {
      out->kind = RankExpr::Kind::kAttribute;
      out->attr = arr[1].get_string();
      return {};
    }
    if ((head == "Saturate" || head == "Decay") && arr.size() == 3 && arr[2].is_object()) {
      out->kind = head == "Saturate" ? RankExpr::Kind::kSaturate : RankExpr::Kind::kDecay;
      const auto& opts = arr[2].get_object();
      const auto* m = opts.if_contains("midpoint");
      const auto* e = opts.if_contains("exponent");
      if (m == nullptr || !IsNumber(*m)) return RankShape();
      out->midpoint = NumberAsDouble(*m);
      if (e != nullptr && IsNumber(*e)) out->exponent = NumberAsDouble(*e);
      RankExpr child;
      ORIGIN_RETURN_IF_ERROR(ParseRankExpr(arr[1], schema, &child));
      out->children.push_back(std::move(child));
      return {};
    }
    if (arr.size() >= 3 && arr[1].is_string() && arr[1].get_string() == "BM25") {
      out->kind = RankExpr::Kind::kBm25;
      out->attr = arr[0].get_string();
      const AttrSchema* a = schema.Find(out->attr);
      if (a == nullptr || !a->fts) {
        return BadRequest("attribute \"" + out->attr +
                          "\" is not configured for full-text search, cannot rank by BM25");
      }
      if (arr.size() == 4 && arr[3].is_object()) {
        if (const auto* p = arr[3].get_object().if_contains("last_as_prefix"); p && p->is_bool()) {
          out->last_as_prefix = p->get_bool();
        }
      }
      const json::value& q = arr[2];
      if (a->fts->pre_tokenized()) {
        if (!q.is_array()) {
          return BadRequest("invalid input '" + DisplayValue(q) + "' for rank_by field \"" +
                            out->attr + "\", expecting []string");
        }
        for (const auto& t : q.get_array()) {
          if (!t.is_string()) return RankShape();
          out->tokens.emplace_back(t.get_string());
        }
      } else {
        if (!q.is_string()) {
          return BadRequest("invalid input '" + DisplayValue(q) + "' for rank_by field \"" +
                            out->attr + "\", expecting string");
        }
        out->tokens = TokenizeText(q.get_string(), *a->fts);
      }
      return {};
    }
    if (arr.size() == 3 && arr[1].is_string() && arr[1].get_string() == "SparseKNN") {
      if (!arr[2].is_object()) return RankShape();
      out->kind = RankExpr::Kind::kSparse;
      out->attr = arr[0].get_string();
      out->sparse_query = arr[2].get_object();
      return {};
    }
  }
  if (IsFilterHead(v)) {
    out->kind = RankExpr::Kind::kFilter;
    ApiStatus st = ParseFilter(v, FilterContext{&schema, "rank_by"}, &out->filter);
    if (!st.ok() && st.error().http_status == 422) return RankShape();
    return st;
  }
  return RankShape();
}

ApiStatus ParseRankBy(const json::value& v, const Schema& schema, Query* q) {
  if (!v.is_array()) return RankShape();
  const auto& arr = v.get_array();
  if (arr.empty()) return BadRequest("rank_by cannot be empty");
  // Multiple attribute keys: [[a, "asc"], [b, "desc"]].
  if (arr[0].is_array() && arr[0].get_array().size() == 2 && arr[0].get_array()[1].is_string() &&
      (arr[0].get_array()[1].get_string() == "asc" ||
       arr[0].get_array()[1].get_string() == "desc")) {
    for (const auto& k : arr) {
      if (!k.is_array() || k.get_array().size() != 2 || !k.get_array()[0].is_string() ||
          !k.get_array()[1].is_string()) {
        return RankShape();
      }
      std::string_view dir = k.get_array()[1].get_string();
      if (dir != "asc" && dir != "desc") return RankShape();
      q->order.push_back(OrderKey{std::string(k.get_array()[0].get_string()), dir == "desc"});
    }
    q->rank = Query::Rank::kAttributes;
    return {};
  }
  if (arr.size() == 2 && arr[0].is_string() && arr[1].is_string() &&
      (arr[1].get_string() == "asc" || arr[1].get_string() == "desc")) {
    q->order.push_back(OrderKey{std::string(arr[0].get_string()), arr[1].get_string() == "desc"});
    q->rank = Query::Rank::kAttributes;
    return {};
  }
  if (arr.size() == 3 && arr[0].is_string() && arr[1].is_string() &&
      (arr[1].get_string() == "ANN" || arr[1].get_string() == "kNN")) {
    q->rank = Query::Rank::kVector;
    q->knn = arr[1].get_string() == "kNN";
    q->vector_attr = arr[0].get_string();
    if (!DecodeVector(arr[2], &q->query_vector)) return RankShape();
    const AttrSchema* a = schema.Find(q->vector_attr);
    if (a == nullptr || !a->IsDenseVector()) {
      return BadRequest("attribute \"" + q->vector_attr +
                        "\" is not a vector attribute, cannot rank by " +
                        std::string(arr[1].get_string()));
    }
    auto info = ParseTypeName(a->type);
    if (static_cast<int64_t>(q->query_vector.size()) != info->dims) {
      return BadRequest("query vector has " + std::to_string(q->query_vector.size()) +
                        " dimensions, but attribute \"" + q->vector_attr + "\" has " +
                        std::to_string(info->dims));
    }
    return {};
  }
  q->rank = Query::Rank::kScore;
  return ParseRankExpr(v, schema, &q->score);
}

ApiStatus ParseLimitValue(const json::value& v, int64_t* out) {
  if (v.is_int64()) {
    *out = v.get_int64();
  } else if (v.is_uint64()) {
    *out = v.get_uint64() > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX
                                                            : static_cast<int64_t>(v.get_uint64());
  } else {
    return Unprocessable("data did not match any variant of untagged enum LimitInput");
  }
  return {};
}

ApiStatus ParseAggregation(const json::object& body, const Schema& schema, Query* q) {
  const auto& agg = body.at("aggregate_by");
  if (!agg.is_object()) {
    return Unprocessable("aggregate_by: invalid type: " + SerdeUnexpected(agg) + ", expected a map");
  }
  if (agg.get_object().size() != 1) {
    return BadRequest("aggregate_by currently requires exactly one function");
  }
  const auto& kv = *agg.get_object().begin();
  q->aggregate = true;
  q->agg_label = kv.key();
  const auto& fn = kv.value();
  if (!fn.is_array() || fn.get_array().empty() || !fn.get_array()[0].is_string()) {
    return Unprocessable("aggregate_by." + q->agg_label +
                         ": data did not match any variant of untagged enum AggregateFunction");
  }
  const auto& f = fn.get_array();
  q->agg_fn = f[0].get_string();
  if (q->agg_fn == "Count") {
    if (f.size() == 2) {
      if (!f[1].is_string() || f[1].get_string() != "id") {
        return BadRequest("aggregate_by with attributes other than \"id\" not yet supported");
      }
    } else if (f.size() != 1) {
      return Unprocessable("aggregate_by." + q->agg_label +
                           ": data did not match any variant of untagged enum AggregateFunction");
    }
  } else if (q->agg_fn == "Sum") {
    if (f.size() != 2 || !f[1].is_string()) {
      return Unprocessable("aggregate_by." + q->agg_label +
                           ": data did not match any variant of untagged enum AggregateFunction");
    }
    q->agg_attr = f[1].get_string();
    const AttrSchema* a = schema.Find(q->agg_attr);
    if (a != nullptr) {
      auto info = ParseTypeName(a->type);
      if (!info || info->array ||
          (info->base != TypeInfo::Base::kInt && info->base != TypeInfo::Base::kUint &&
           info->base != TypeInfo::Base::kFloat)) {
        return BadRequest("Sum aggregation requires a numeric attribute, but \"" + q->agg_attr +
                          "\" has type " + a->type);
      }
    }
  } else {
    return Unprocessable("aggregate_by." + q->agg_label +
                         ": data did not match any variant of untagged enum AggregateFunction");
  }
  if (const auto* gb = body.if_contains("group_by"); gb && !gb->is_null()) {
    if (!gb->is_array()) {
      return Unprocessable("group_by: invalid type: " + SerdeUnexpected(*gb) +
                           ", expected a sequence");
    }
    for (const auto& g : gb->get_array()) {
      Query::GroupKey key;
      if (g.is_string()) {
        key.out_name = key.attr = g.get_string();
      } else if (g.is_object() && g.get_object().size() == 1) {
        const auto& e = *g.get_object().begin();
        const auto& spec = e.value();
        if (!spec.is_array() || spec.get_array().size() != 2 || !spec.get_array()[0].is_string() ||
            spec.get_array()[0].get_string() != "ForEachUnique" ||
            !spec.get_array()[1].is_string()) {
          return Unprocessable("group_by: data did not match any variant of untagged enum GroupBy");
        }
        key.out_name = e.key();
        key.attr = spec.get_array()[1].get_string();
        key.for_each_unique = true;
      } else {
        return Unprocessable("group_by: data did not match any variant of untagged enum GroupBy");
      }
      q->group_by.push_back(std::move(key));
    }
  }
  if (body.contains("limit")) {
    return Unprocessable(
        "unknown field `limit`, expected one of `aggregate_by`, `filters`, `group_by`, `top_k`");
  }
  if (q->group_by.empty() && body.contains("top_k")) {
    return BadRequest("top_k is not supported in aggregation queries without group_by");
  }
  return {};
}

ApiStatus ParseQuery(const json::value& body_value, const Schema& schema, const QueryEnv& env,
                     Query* q) {
  if (!body_value.is_object()) {
    return Unprocessable("invalid type: " + SerdeUnexpected(body_value) +
                         ", expected struct QueryRankBy");
  }
  const auto& body = body_value.get_object();
  if (const auto* c = body.if_contains("consistency"); c && !c->is_null()) {
    if (!c->is_object()) {
      return Unprocessable("consistency: invalid type: " + SerdeUnexpected(*c) +
                           ", expected struct Consistency");
    }
    const auto* level = c->get_object().if_contains("level");
    if (level == nullptr) return Unprocessable("consistency: missing field `level`");
    if (!level->is_string()) {
      return BadRequestRaw("Failed to parse the request body as JSON: consistency.level: expected "
                           "value");
    }
    if (level->get_string() != "strong" && level->get_string() != "eventual") {
      return Unprocessable("consistency.level: unknown variant `" +
                           std::string(level->get_string()) +
                           "`, expected `strong` or `eventual`");
    }
  }
  auto parse_encoding = [&](const json::value& e) -> ApiStatus {
    std::string got = e.is_string() ? std::string(e.get_string()) : SerializeJson(e);
    if (!e.is_string() || (got != "float" && got != "base64")) {
      return Unprocessable("vector_encoding: unknown variant `" + got +
                           "`, expected `float` or `base64`");
    }
    q->base64 = got == "base64";
    return {};
  };
  if (const auto* e = body.if_contains("vector_encoding"); e && !e->is_null()) {
    ORIGIN_RETURN_IF_ERROR(parse_encoding(*e));
  }
  if (!env.forced_vector_encoding.empty()) q->base64 = env.forced_vector_encoding == "base64";

  const auto* inc = body.if_contains("include_attributes");
  const auto* exc = body.if_contains("exclude_attributes");
  if (inc && inc->is_null()) inc = nullptr;
  if (exc && exc->is_null()) exc = nullptr;
  if (exc != nullptr) {
    if (!exc->is_array()) {
      return Unprocessable("invalid type: " + SerdeUnexpected(*exc) + ", expected a sequence");
    }
    for (const auto& e : exc->get_array()) {
      if (!e.is_string()) {
        return Unprocessable("invalid type: " + SerdeUnexpected(e) + ", expected a string");
      }
    }
  }
  if (inc != nullptr && !inc->is_bool() && !inc->is_array()) {
    return Unprocessable("include_attributes: data did not match any variant of untagged enum "
                         "IncludeAttributes");
  }
  if (inc != nullptr && inc->is_array()) {
    for (const auto& e : inc->get_array()) {
      if (!e.is_string()) {
        return Unprocessable("include_attributes: data did not match any variant of untagged "
                             "enum IncludeAttributes");
      }
    }
  }

  if (const auto* f = body.if_contains("filters"); f && !f->is_null()) {
    Filter filter;
    ORIGIN_RETURN_IF_ERROR(ParseFilter(*f, FilterContext{&schema, "filters"}, &filter));
    q->filter = std::move(filter);
  }

  if (body.contains("aggregate_by") && !body.at("aggregate_by").is_null()) {
    ORIGIN_RETURN_IF_ERROR(ParseAggregation(body, schema, q));
    q->limit = kDefaultGroupLimit;
    if (const auto* tk = body.if_contains("top_k"); tk && !tk->is_null()) {
      ORIGIN_RETURN_IF_ERROR(ParseLimitValue(*tk, &q->limit));
      if (q->limit < 1 || q->limit > kMaxTopK) {
        return BadRequest("top_k must be between 1 and 10000");
      }
    }
    return {};
  }

  const json::value* rank_by = body.if_contains("rank_by");
  if (rank_by != nullptr && !rank_by->is_null()) {
    ORIGIN_RETURN_IF_ERROR(ParseRankBy(*rank_by, schema, q));
  }
  const json::value* per = nullptr;
  if (const auto* tk = body.if_contains("top_k"); tk && !tk->is_null()) {
    ORIGIN_RETURN_IF_ERROR(ParseLimitValue(*tk, &q->limit));
    q->has_limit = true;
  }
  if (const auto* lim = body.if_contains("limit"); lim && !lim->is_null()) {
    if (lim->is_object()) {
      const auto* total = lim->get_object().if_contains("total");
      if (total == nullptr) {
        return Unprocessable("data did not match any variant of untagged enum LimitInput");
      }
      ORIGIN_RETURN_IF_ERROR(ParseLimitValue(*total, &q->limit));
      per = lim->get_object().if_contains("per");
      if (per && per->is_null()) per = nullptr;
    } else {
      ORIGIN_RETURN_IF_ERROR(ParseLimitValue(*lim, &q->limit));
    }
    q->has_limit = true;
  }
  if (q->rank == Query::Rank::kNone) {
    return BadRequest("rank_by is required for queries without aggregate_by");
  }
  if (!q->has_limit) return BadRequest("rank_by queries must specify top_k or limit");
  if (q->limit < 1 || q->limit > kMaxTopK) return BadRequest("top_k must be between 1 and 10000");
  if (per != nullptr) {
    if (q->rank != Query::Rank::kAttributes) {
      return BadRequest("`limit.per` is only supported when ranking by an attribute");
    }
    const auto* attrs = per->is_object() ? per->get_object().if_contains("attributes") : nullptr;
    const auto* plimit = per->is_object() ? per->get_object().if_contains("limit") : nullptr;
    if (attrs == nullptr || !attrs->is_array() || plimit == nullptr) {
      return Unprocessable("data did not match any variant of untagged enum LimitInput");
    }
    for (const auto& a : attrs->get_array()) {
      if (!a.is_string()) {
        return Unprocessable("data did not match any variant of untagged enum LimitInput");
      }
      q->per_attrs.emplace_back(a.get_string());
    }
    ORIGIN_RETURN_IF_ERROR(ParseLimitValue(*plimit, &q->per_limit));
  }
  if (q->knn && !q->filter) return BadRequest("kNN queries require filters");

  if (inc != nullptr && exc != nullptr) {
    return BadRequest("cannot specify both include_attributes and exclude_attributes");
  }
  if (inc != nullptr) {
    if (inc->is_bool()) {
      q->projection = inc->get_bool() ? Query::Projection::kAll : Query::Projection::kIdOnly;
    } else {
      q->projection = Query::Projection::kList;
      for (const auto& e : inc->get_array()) {
        std::string name(e.get_string());
        if (name == "id") continue;
        if (schema.Find(name) == nullptr) {
          return BadRequest("attribute \"" + name +
                            "\" not found in schema, cannot be part of `include_attributes`. "
                            "consider passing `include_attributes=True` to return all attribute "
                            "data instead");
        }
        q->attrs.push_back(std::move(name));
      }
    }
  } else if (exc != nullptr) {
    q->projection = Query::Projection::kExclude;
    for (const auto& e : exc->get_array()) q->attrs.emplace_back(e.get_string());
  }
  return {};
}

// ---- Execution ------------------------------------------------------------------------------

double VectorDistance(const std::string& metric, const std::vector<float>& q,
                      const json::array& v) {
  double dot = 0, qn = 0, vn = 0, sq = 0;
  for (size_t i = 0; i < q.size() && i < v.size(); ++i) {
    double a = q[i];
    double b = NumberAsDouble(v[i]);
    dot += a * b;
    qn += a * a;
    vn += b * b;
    sq += (a - b) * (a - b);
  }
  if (metric == "euclidean_squared") return sq;
  if (metric == "euclidean") return std::sqrt(sq);
  if (qn == 0 || vn == 0) return 1.0;
  return 1.0 - dot / (std::sqrt(qn) * std::sqrt(vn));
}

void PrepareBm25(RankExpr* e, const NamespaceState& state, const std::vector<DocRef>& all) {
  for (auto& c : e->children) PrepareBm25(&c, state, all);
  if (e->kind != RankExpr::Kind::kBm25) return;
  const AttrSchema* a = state.meta.schema.Find(e->attr);
  const FtsConfig& cfg = *a->fts;
  std::vector<std::vector<std::string>> tokens(all.size());
  std::vector<bool> has(all.size(), false);
  for (size_t i = 0; i < all.size(); ++i) {
    const auto* v = all[i].second->attrs.if_contains(e->attr);
    if (v == nullptr) continue;
    has[i] = true;
    tokens[i] = TokenizeValue(*v, cfg);
  }
  Bm25Scorer scorer(cfg, tokens, has, e->tokens, e->last_as_prefix);
  e->scores.resize(all.size());
  for (size_t i = 0; i < all.size(); ++i) e->scores[i] = has[i] ? scorer.Score(i) : 0;
}

double EvalRank(const RankExpr& e, size_t index, const DocRef& doc) {
  switch (e.kind) {
    case RankExpr::Kind::kBm25: return e.scores[index];
    case RankExpr::Kind::kSum: {
      double s = 0;
      for (const auto& c : e.children) s += EvalRank(c, index, doc);
      return s;
    }
    case RankExpr::Kind::kMax: {
      double s = 0;
      for (const auto& c : e.children) s = std::max(s, EvalRank(c, index, doc));
      return s;
    }
    case RankExpr::Kind::kProduct: return e.weight * EvalRank(e.children[0], index, doc);
    case RankExpr::Kind::kAttribute: {
      const auto* v = doc.second->attrs.if_contains(e.attr);
      return v != nullptr && IsNumber(*v) ? NumberAsDouble(*v) : 0.0;
    }
    case RankExpr::Kind::kSaturate:
    case RankExpr::Kind::kDecay: {
      double x = std::pow(std::max(0.0, EvalRank(e.children[0], index, doc)), e.exponent);
      double m = std::pow(e.midpoint, e.exponent);
      if (x + m == 0) return 0;
      return e.kind == RankExpr::Kind::kSaturate ? x / (x + m) : m / (x + m);
    }
    case RankExpr::Kind::kFilter:
      return EvalFilter(e.filter, *doc.first, *doc.second, nullptr, nullptr) ? 1.0 : 0.0;
    case RankExpr::Kind::kSparse: {
      const auto* v = doc.second->attrs.if_contains(e.attr);
      if (v == nullptr || !v->is_object()) return 0;
      double s = 0;
      for (const auto& kv : e.sparse_query) {
        const auto* w = v->get_object().if_contains(kv.key());
        if (w != nullptr && IsNumber(kv.value())) {
          s += static_cast<double>(static_cast<float>(NumberAsDouble(kv.value()))) *
               NumberAsDouble(*w);
        }
      }
      return s;
    }
  }
  return 0;
}

json::value RowsProjection(const Query& q, const Schema& schema, const DocRef& doc,
                           std::optional<double> dist) {
  json::object row;
  row["id"] = IdToJson(*doc.first);
  if (dist) row["$dist"] = F32AsPrintableDouble(static_cast<float>(*dist));
  const auto& attrs = doc.second->attrs;
  switch (q.projection) {
    case Query::Projection::kIdOnly: break;
    case Query::Projection::kAll:
      for (const auto& kv : attrs) {
        row[kv.key()] = RenderAttr(schema.Find(kv.key()), kv.value(), q.base64);
      }
      break;
    case Query::Projection::kList:
      for (const auto& name : q.attrs) {
        if (const auto* v = attrs.if_contains(name)) {
          row[name] = RenderAttr(schema.Find(name), *v, q.base64);
        }
      }
      break;
    case Query::Projection::kExclude:
      for (const auto& kv : attrs) {
        if (std::find(q.attrs.begin(), q.attrs.end(), std::string_view(kv.key())) !=
            q.attrs.end()) {
          continue;
        }
        row[kv.key()] = RenderAttr(schema.Find(kv.key()), kv.value(), q.base64);
      }
      break;
  }
  return row;
}

json::object Performance(const NamespaceState& state, size_t scanned) {
  json::object perf;
  perf["approx_namespace_size"] = static_cast<uint64_t>(state.docs.size());
  perf["cache_hit_ratio"] = 1.0;
  perf["cache_temperature"] = "hot";
  perf["exhaustive_search_count"] = static_cast<uint64_t>(scanned);
  perf["query_execution_ms"] = 1;
  perf["server_total_ms"] = 1;
  return perf;
}

json::object Billing(uint64_t returned) {
  json::object b;
  b["billable_logical_bytes_queried"] = kMinBilledBytes;
  b["billable_logical_bytes_returned"] = returned;
  return b;
}

json::value GroupValue(const Schema& schema, const std::string& attr, const json::value& v) {
  if (v.is_null()) return nullptr;
  return RenderAttr(schema.Find(attr), v, false);
}

void RunAggregation(const Query& q, const NamespaceState& state,
                    const std::vector<DocRef>& matched, json::object* out) {
  const Schema& schema = state.meta.schema;
  auto contribution = [&](const DocRef& d, bool* is_float) -> json::value {
    if (q.agg_fn == "Count") return 1;
    json::value v = AttrValue(*d.first, *d.second, q.agg_attr);
    if (v.is_double()) *is_float = true;
    return IsNumber(v) ? v : json::value(0);
  };
  struct Acc {
    int64_t i = 0;
    double f = 0;
    bool is_float = false;
    json::value Result() const { return is_float ? json::value(f) : json::value(i); }
    void Add(const json::value& v, bool flt) {
      is_float = is_float || flt;
      f += NumberAsDouble(v);
      if (v.is_int64()) {
        i += v.get_int64();
      } else if (v.is_uint64()) {
        i += static_cast<int64_t>(v.get_uint64());
      } else {
        i += static_cast<int64_t>(v.get_double());
      }
    }
  };
  if (q.group_by.empty()) {
    Acc acc;
    if (q.agg_fn == "Sum") {
      const AttrSchema* a = schema.Find(q.agg_attr);
      acc.is_float = a != nullptr && a->type == "float";
    }
    for (const auto& d : matched) {
      bool flt = false;
      json::value c = contribution(d, &flt);
      acc.Add(c, flt);
    }
    json::object aggs;
    aggs[q.agg_label] = acc.Result();
    (*out)["aggregations"] = std::move(aggs);
    return;
  }
  struct KeyLess {
    bool operator()(const std::vector<json::value>& a, const std::vector<json::value>& b) const {
      for (size_t i = 0; i < a.size(); ++i) {
        int c = CompareValues(a[i], b[i]);
        if (c != 0) return c < 0;
      }
      return false;
    }
  };
  std::map<std::vector<json::value>, Acc, KeyLess> groups;
  for (const auto& d : matched) {
    std::vector<std::vector<json::value>> keys(1);
    for (const auto& g : q.group_by) {
      json::value v = AttrValue(*d.first, *d.second, g.attr);
      std::vector<json::value> options;
      if (g.for_each_unique && v.is_array()) {
        std::vector<json::value> uniq;
        for (const auto& e : v.get_array()) {
          bool dup = false;
          for (const auto& u : uniq) dup = dup || CompareValues(u, e) == 0;
          if (!dup) uniq.push_back(e);
        }
        options = std::move(uniq);
      } else {
        options.push_back(v);
      }
      std::vector<std::vector<json::value>> next;
      for (const auto& k : keys) {
        for (const auto& o : options) {
          auto nk = k;
          nk.push_back(o);
          next.push_back(std::move(nk));
        }
      }
      keys = std::move(next);
    }
    bool flt = false;
    json::value c = contribution(d, &flt);
    for (auto& k : keys) groups[std::move(k)].Add(c, flt);
  }
  json::array out_groups;
  int64_t n = 0;
  for (const auto& [key, acc] : groups) {
    if (n++ >= q.limit) break;
    json::object g;
    for (size_t i = 0; i < q.group_by.size(); ++i) {
      g[q.group_by[i].out_name] = GroupValue(schema, q.group_by[i].attr, key[i]);
    }
    g[q.agg_label] = acc.Result();
    out_groups.push_back(std::move(g));
  }
  (*out)["aggregation_groups"] = std::move(out_groups);
}

// Executes a parsed query; rows carry `$dist` scores as doubles (rounded on output).
void Execute(Query& q, const NamespaceState& state, json::object* out) {
  const Schema& schema = state.meta.schema;
  std::vector<DocRef> all;
  all.reserve(state.docs.size());
  for (const auto& [id, doc] : state.docs) all.emplace_back(&id, &doc);
  std::vector<size_t> matched;
  for (size_t i = 0; i < all.size(); ++i) {
    if (!q.filter || EvalFilter(*q.filter, *all[i].first, *all[i].second, nullptr, nullptr)) {
      matched.push_back(i);
    }
  }
  if (q.aggregate) {
    std::vector<DocRef> docs;
    for (size_t i : matched) docs.push_back(all[i]);
    RunAggregation(q, state, docs, out);
    (*out)["billing"] = Billing(0);
    (*out)["performance"] = Performance(state, all.size());
    return;
  }
  size_t limit = static_cast<size_t>(q.limit);
  std::vector<std::pair<size_t, double>> ranked;  // (doc index, score)
  bool has_dist = true;
  if (q.rank == Query::Rank::kVector) {
    for (size_t i : matched) {
      const auto* v = all[i].second->attrs.if_contains(q.vector_attr);
      if (v == nullptr || !v->is_array()) continue;
      ranked.emplace_back(i, VectorDistance(state.meta.distance_metric, q.query_vector,
                                            v->get_array()));
    }
    auto less = [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second < b.second : a.first < b.first;
    };
    size_t k = std::min(limit, ranked.size());
    std::partial_sort(ranked.begin(), ranked.begin() + static_cast<long>(k), ranked.end(), less);
    ranked.resize(k);
  } else if (q.rank == Query::Rank::kScore) {
    PrepareBm25(&q.score, state, all);
    for (size_t i : matched) {
      double s = EvalRank(q.score, i, all[i]);
      if (s > 0) ranked.emplace_back(i, s);
    }
    auto more = [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second > b.second : a.first < b.first;
    };
    size_t k = std::min(limit, ranked.size());
    std::partial_sort(ranked.begin(), ranked.begin() + static_cast<long>(k), ranked.end(), more);
    ranked.resize(k);
  } else {
    has_dist = false;
    static const json::value kNull;
    auto less = [&](size_t a, size_t b) {
      for (const auto& key : q.order) {
        int c;
        if (key.attr == "id") {
          c = *all[a].first < *all[b].first ? -1 : (*all[b].first < *all[a].first ? 1 : 0);
        } else {
          const json::value* va = all[a].second->attrs.if_contains(key.attr);
          const json::value* vb = all[b].second->attrs.if_contains(key.attr);
          c = CompareValues(va ? *va : kNull, vb ? *vb : kNull);
        }
        if (c != 0) return key.desc ? c > 0 : c < 0;
      }
      return a < b;  // document order is id order
    };
    if (q.per_attrs.empty()) {
      size_t k = std::min(limit, matched.size());
      std::partial_sort(matched.begin(), matched.begin() + static_cast<long>(k), matched.end(),
                        less);
      matched.resize(k);
      for (size_t i : matched) ranked.emplace_back(i, 0);
    } else {
      std::sort(matched.begin(), matched.end(), less);
      std::map<std::vector<json::value>, int64_t,
               bool (*)(const std::vector<json::value>&, const std::vector<json::value>&)>
          per_counts([](const std::vector<json::value>& a, const std::vector<json::value>& b) {
            for (size_t i = 0; i < a.size(); ++i) {
              int c = CompareValues(a[i], b[i]);
              if (c != 0) return c < 0;
            }
            return false;
          });
      for (size_t i : matched) {
        if (ranked.size() >= limit) break;
        std::vector<json::value> key;
        for (const auto& a : q.per_attrs) key.push_back(AttrValue(*all[i].first, *all[i].second, a));
        if (per_counts[key]++ >= q.per_limit) continue;
        ranked.emplace_back(i, 0);
      }
    }
  }
  json::array rows;
  uint64_t returned = 0;
  for (const auto& [i, score] : ranked) {
    json::value row = RowsProjection(q, schema, all[i], has_dist ? std::optional<double>(score)
                                                                 : std::nullopt);
    returned += SerializeJson(row).size();
    rows.push_back(std::move(row));
  }
  (*out)["rows"] = std::move(rows);
  (*out)["billing"] = Billing(returned);
  (*out)["performance"] = Performance(state, all.size());
}

}  // namespace

json::value RenderAttr(const AttrSchema* schema, const json::value& v, bool base64_vectors) {
  if (schema == nullptr) return v;
  auto info = ParseTypeName(schema->type);
  if (!info) return v;
  if (info->base == TypeInfo::Base::kDenseVector && v.is_array()) {
    if (base64_vectors) {
      std::string bytes;
      bytes.resize(v.get_array().size() * 4);
      size_t off = 0;
      for (const auto& e : v.get_array()) {
        float f = static_cast<float>(NumberAsDouble(e));
        std::memcpy(bytes.data() + off, &f, 4);
        off += 4;
      }
      return json::value(Base64Encode(bytes));
    }
    json::array arr;
    arr.reserve(v.get_array().size());
    for (const auto& e : v.get_array()) {
      arr.push_back(F32AsPrintableDouble(static_cast<float>(NumberAsDouble(e))));
    }
    return arr;
  }
  if (info->base == TypeInfo::Base::kDatetime) {
    if (v.is_int64()) return json::value(FormatDatetime(v.get_int64()));
    if (v.is_array()) {
      json::array arr;
      for (const auto& e : v.get_array()) {
        arr.push_back(e.is_int64() ? json::value(FormatDatetime(e.get_int64())) : e);
      }
      return arr;
    }
  }
  if (info->base == TypeInfo::Base::kSparse && v.is_object()) {
    json::object o;
    for (const auto& kv : v.get_object()) {
      o[kv.key()] = F32AsPrintableDouble(static_cast<float>(NumberAsDouble(kv.value())));
    }
    return o;
  }
  return v;
}

ApiStatus RunQuery(const json::value& body, const NamespaceState& state, const QueryEnv& env,
                   json::object* result) {
  Query q;
  ORIGIN_RETURN_IF_ERROR(ParseQuery(body, state.meta.schema, env, &q));
  Execute(q, state, result);
  return {};
}

ApiStatus RunMultiQuery(const json::object& body, const NamespaceState& state,
                        json::object* result) {
  const auto& queries = body.at("queries");
  if (!queries.is_array()) {
    return Unprocessable("queries: invalid type: " + SerdeUnexpected(queries) +
                         ", expected a sequence");
  }
  const auto& arr = queries.get_array();
  for (const auto& sub : arr) {
    if (!sub.is_object()) {
      return Unprocessable("invalid type: " + SerdeUnexpected(sub) +
                           ", expected struct QueryRankBy");
    }
  }
  if (arr.empty()) return BadRequest("must send at least one sub-query");
  if (arr.size() > kMaxSubQueries) {
    return BadRequest("multi-query exceeds per-namespace concurrency budget: requires " +
                      std::to_string(arr.size()) + " permits, max is 16 (see "
                      "https://turbopuffer.com/docs/limits)");
  }
  QueryEnv env;
  if (const auto* e = body.if_contains("vector_encoding"); e && !e->is_null()) {
    std::string got = e->is_string() ? std::string(e->get_string()) : SerializeJson(*e);
    if (got != "float" && got != "base64") {
      return Unprocessable("vector_encoding: unknown variant `" + got +
                           "`, expected `float` or `base64`");
    }
    env.forced_vector_encoding = got;
  }
  // Validate root consistency the same way as a single query does.
  if (const auto* c = body.if_contains("consistency"); c && !c->is_null()) {
    json::object probe;
    probe["consistency"] = *c;
    probe["aggregate_by"] = json::object{{"c", json::array{"Count"}}};
    Query unused;
    ORIGIN_RETURN_IF_ERROR(ParseQuery(probe, state.meta.schema, env, &unused));
  }
  std::vector<Query> parsed(arr.size());
  for (size_t i = 0; i < arr.size(); ++i) {
    ORIGIN_RETURN_IF_ERROR(ParseQuery(arr[i], state.meta.schema, env, &parsed[i]));
  }
  json::array results;
  uint64_t returned = 0;
  for (auto& q : parsed) {
    json::object r;
    Execute(q, state, &r);
    returned += r["billing"].as_object()["billable_logical_bytes_returned"].to_number<uint64_t>();
    r.erase("billing");
    r.erase("performance");
    results.push_back(std::move(r));
  }
  if (const auto* rr = body.if_contains("rerank_by"); rr && !rr->is_null()) {
    if (!rr->is_array() || rr->get_array().empty() || !rr->get_array()[0].is_string() ||
        rr->get_array()[0].get_string() != "RRF") {
      return Unprocessable("rerank_by: data did not match any variant of untagged enum RerankBy");
    }
    double k = 60;
    std::vector<double> weights(results.size(), 1.0);
    if (rr->get_array().size() > 1 && rr->get_array()[1].is_object()) {
      const auto& opts = rr->get_array()[1].get_object();
      if (const auto* rc = opts.if_contains("rank_constant"); rc && IsNumber(*rc)) {
        k = NumberAsDouble(*rc);
      }
      if (const auto* w = opts.if_contains("weights"); w && w->is_array()) {
        for (size_t i = 0; i < w->get_array().size() && i < weights.size(); ++i) {
          weights[i] = NumberAsDouble(w->get_array()[i]);
        }
      }
    }
    std::map<DocId, std::pair<double, json::object>> fused;
    size_t max_limit = 0;
    for (size_t i = 0; i < results.size(); ++i) {
      max_limit = std::max(max_limit, static_cast<size_t>(parsed[i].limit));
      const auto* rows = results[i].as_object().if_contains("rows");
      if (rows == nullptr) continue;
      size_t rank = 0;
      for (const auto& row : rows->get_array()) {
        ++rank;
        DocId id;
        if (!ParseRawId(row.get_object().at("id"), &id)) continue;
        auto& entry = fused[id];
        entry.first += weights[i] / (k + static_cast<double>(rank));
        for (const auto& kv : row.get_object()) {
          if (kv.key() != "$dist") entry.second[kv.key()] = kv.value();
        }
      }
    }
    std::vector<std::pair<DocId, std::pair<double, json::object>>> list(fused.begin(),
                                                                         fused.end());
    std::stable_sort(list.begin(), list.end(),
                     [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
    if (list.size() > max_limit) list.resize(max_limit);
    json::array rows;
    for (auto& [id, entry] : list) {
      json::object row;
      row["id"] = IdToJson(id);
      row["$dist"] = F32AsPrintableDouble(static_cast<float>(entry.first));
      for (auto& kv : entry.second) {
        if (kv.key() != "id") row[kv.key()] = kv.value();
      }
      rows.push_back(std::move(row));
    }
    results = json::array{json::object{{"rows", std::move(rows)}}};
  }
  (*result)["results"] = std::move(results);
  (*result)["billing"] = Billing(returned);
  (*result)["performance"] = Performance(state, state.docs.size());
  return {};
}

ApiStatus ExplainQuery(const json::value& body, const NamespaceState& state,
                       json::object* result) {
  Query q;
  ORIGIN_RETURN_IF_ERROR(ParseQuery(body, state.meta.schema, QueryEnv{}, &q));
  std::string plan = "ExhaustiveScan(namespace_size=" + std::to_string(state.docs.size()) + ")";
  if (q.filter) plan = "Filter(" + plan + ")";
  switch (q.rank) {
    case Query::Rank::kVector:
      plan = std::string(q.knn ? "ExactKnn" : "Ann") + "(attr=" + q.vector_attr + ", " + plan + ")";
      break;
    case Query::Rank::kScore: plan = "Bm25Rank(" + plan + ")"; break;
    case Query::Rank::kAttributes: plan = "OrderBy(" + plan + ")"; break;
    case Query::Rank::kNone: plan = "Aggregate(" + plan + ")"; break;
  }
  if (q.has_limit) plan = "Limit(" + std::to_string(q.limit) + ", " + plan + ")";
  (*result)["plan_text"] = plan;
  return {};
}

ApiStatus RunRecall(const json::value& body_value, const NamespaceState& state,
                    json::object* result) {
  if (!body_value.is_object()) {
    return Unprocessable("invalid type: " + SerdeUnexpected(body_value) + ", expected struct Recall");
  }
  const auto& body = body_value.get_object();
  int64_t num = 25, top_k = 10;
  bool num_given = false;
  if (const auto* v = body.if_contains("num"); v && !v->is_null()) {
    if (!v->is_int64() && !v->is_uint64()) {
      return Unprocessable("num: invalid type: " + SerdeUnexpected(*v) + ", expected usize");
    }
    num = v->is_int64() ? v->get_int64() : static_cast<int64_t>(v->get_uint64());
    num_given = true;
  }
  if (const auto* v = body.if_contains("top_k"); v && !v->is_null()) {
    if (!v->is_int64() && !v->is_uint64()) {
      return Unprocessable("top_k: invalid type: " + SerdeUnexpected(*v) + ", expected usize");
    }
    top_k = v->is_int64() ? v->get_int64() : static_cast<int64_t>(v->get_uint64());
  }
  if (const auto* v = body.if_contains("include_ground_truth"); v && !v->is_null() && !v->is_bool()) {
    return Unprocessable("include_ground_truth: invalid type: " + SerdeUnexpected(*v) +
                         ", expected a boolean");
  }
  std::optional<Filter> filter;
  if (const auto* f = body.if_contains("filters"); f && !f->is_null()) {
    Filter parsed;
    ApiStatus st = ParseFilter(*f, FilterContext{&state.meta.schema, "filters"}, &parsed);
    if (!st.ok()) {
      if (st.error().http_status == 422) {
        return Unprocessable("filters: data did not match any variant of untagged enum FiltersInput");
      }
      return st;
    }
    filter = std::move(parsed);
  }
  bool has_rank = body.contains("rank_by") && !body.at("rank_by").is_null();
  if (has_rank && num_given && num != 1) {
    return BadRequest("rank_by and num cannot be specified together");
  }
  if (num < 1 || num > 200) return BadRequest("samples must be between 1 and 200");
  if (top_k < 1 || top_k > kMaxTopK) return BadRequest("top_k must be between 1 and 10000");
  size_t matching = 0;
  std::string vattr = state.meta.schema.VectorAttr();
  for (const auto& [id, doc] : state.docs) {
    if (!vattr.empty() && !doc.attrs.contains(vattr)) continue;
    if (!filter || EvalFilter(*filter, id, doc, nullptr, nullptr)) ++matching;
  }
  double count = static_cast<double>(std::min<size_t>(matching, static_cast<size_t>(top_k)));
  (*result)["avg_recall"] = 1.0;
  (*result)["avg_exhaustive_count"] = count;
  (*result)["avg_ann_count"] = count;
  return {};
}

}  // namespace layer::origin
