#include <set>

#include "origin/engine/model.h"
#include "origin/engine/query_plan.h"

namespace layer::origin {
namespace {

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
    return Unprocessable("aggregate_by: invalid type: " + SerdeUnexpected(agg) +
                         ", expected a map");
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

}  // namespace

ApiStatus ValidateConsistency(const json::object& body) {
  const auto* c = body.if_contains("consistency");
  if (c == nullptr || c->is_null()) return {};
  if (!c->is_object()) {
    return Unprocessable("consistency: invalid type: " + SerdeUnexpected(*c) +
                         ", expected struct Consistency");
  }
  const auto* level = c->get_object().if_contains("level");
  if (level == nullptr) return Unprocessable("consistency: missing field `level`");
  if (!level->is_string()) {
    // Live answers this one with axum's syntax-error text and a 400.
    return BadRequestRaw(
        "Failed to parse the request body as JSON: consistency.level: expected value");
  }
  if (level->get_string() != "strong" && level->get_string() != "eventual") {
    return Unprocessable("consistency.level: unknown variant `" + std::string(level->get_string()) +
                         "`, expected `strong` or `eventual`");
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
  ORIGIN_RETURN_IF_ERROR(ValidateConsistency(body));
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
    return Unprocessable(
        "include_attributes: data did not match any variant of untagged enum "
        "IncludeAttributes");
  }
  if (inc != nullptr && inc->is_array()) {
    for (const auto& e : inc->get_array()) {
      if (!e.is_string()) {
        return Unprocessable(
            "include_attributes: data did not match any variant of untagged "
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

}  // namespace layer::origin
